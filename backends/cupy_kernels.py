"""Fused kernels for CuPy: optimizer updates (one ``cupy.ElementwiseKernel`` launch per
parameter and step, where the array code in ``gradx.optim`` launches about a dozen small
kernels) and dropout masks (one launch, no host draw).

Each kernel is written twice, side by side: the CUDA C body that CuPy compiles with NVRTC,
and ``emulate``, the same statements in array code, which the tests run in its place where no
GPU is present (the CuPy stand-in cannot run CUDA C). Read together, they are the review of
the C; the first GPU run compares the compiled kernels with ``gradx.optim``'s array code
(``tests/test_optim_fused.py``).

Conventions, from CuPy's ``ElementwiseKernel`` documentation: ``T`` is a type placeholder
bound by the array arguments (float32 or float64 here); output parameters are read-write
references, so ``p``, ``m`` and ``v`` are updated in place when the caller passes the
parameter's and the state's arrays as outputs; scalars are passed as NumPy scalars of the
parameter's dtype, so nothing is promoted. Only C-level ``if``s on scalars, no divergence
across elements.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class KernelSpec:
    name: str
    in_params: str
    out_params: str
    operation: str
    emulate: Callable[..., None]  # (xp, *inputs, *outputs): the operation in array code


# -- SGD -------------------------------------------------------------------------------

def _sgd_emulate(xp: Any, g: Any, lr: Any, wd: Any, maximize: bool, p: Any) -> None:
    gg = -g if maximize else g
    if wd != 0:
        gg = gg + wd * p
    p[...] = p - lr * gg


SGD = KernelSpec(
    "gradx_sgd", "T g, T lr, T wd, bool maximize", "T p",
    """
    T gg = maximize ? -g : g;
    if (wd != 0) gg = gg + wd * p;
    p = p - lr * gg;
    """,
    _sgd_emulate,
)


def _sgd_momentum_emulate(xp: Any, g: Any, lr: Any, wd: Any, momentum: Any, damp: Any,
                          maximize: bool, nesterov: bool, first: bool, p: Any,
                          buf: Any) -> None:
    gg = -g if maximize else g
    if wd != 0:
        gg = gg + wd * p
    buf[...] = gg if first else buf * momentum + damp * gg
    gg = gg + momentum * buf if nesterov else buf
    p[...] = p - lr * gg


SGD_MOMENTUM = KernelSpec(
    "gradx_sgd_momentum",
    "T g, T lr, T wd, T momentum, T damp, bool maximize, bool nesterov, bool first",
    "T p, T buf",
    """
    T gg = maximize ? -g : g;
    if (wd != 0) gg = gg + wd * p;
    buf = first ? gg : buf * momentum + damp * gg;
    gg = nesterov ? gg + momentum * buf : buf;
    p = p - lr * gg;
    """,
    _sgd_momentum_emulate,
)


# -- Adam, AdamW -----------------------------------------------------------------------
# decay is 1 - lr * weight_decay for AdamW (1 otherwise); l2 the weight decay added to the
# gradient for Adam (0 for AdamW); omb1, omb2 are 1 - beta1, 1 - beta2; step_size is
# lr / (1 - beta1**step) and bc2 is sqrt(1 - beta2**step), computed on the host in float64.

def _adam_emulate(xp: Any, g: Any, l2: Any, decay: Any, b1: Any, omb1: Any, b2: Any,
                  omb2: Any, eps: Any, step_size: Any, bc2: Any, maximize: bool, p: Any,
                  m: Any, v: Any, vmax: Any = None) -> None:
    gg = -g if maximize else g
    if l2 != 0:
        gg = gg + l2 * p
    p[...] = p * decay
    m[...] = m * b1 + omb1 * gg
    v[...] = v * b2 + omb2 * (gg * gg)
    if vmax is not None:  # AMSGrad
        vmax[...] = xp.maximum(vmax, v)
        v = vmax
    p[...] = p - step_size * (m / (xp.sqrt(v) / bc2 + eps))


_ADAM_IN = ("T g, T l2, T decay, T b1, T omb1, T b2, T omb2, T eps, T step_size, T bc2, "
            "bool maximize")
_ADAM_MOMENTS = """
    T gg = maximize ? -g : g;
    if (l2 != 0) gg = gg + l2 * p;
    p = p * decay;
    m = m * b1 + omb1 * gg;
    v = v * b2 + omb2 * (gg * gg);
"""

ADAM = KernelSpec(
    "gradx_adam", _ADAM_IN, "T p, T m, T v",
    _ADAM_MOMENTS + """
    p = p - step_size * (m / (sqrt(v) / bc2 + eps));
    """,
    _adam_emulate,
)

ADAM_AMSGRAD = KernelSpec(
    "gradx_adam_amsgrad", _ADAM_IN, "T p, T m, T v, T vmax",
    _ADAM_MOMENTS + """
    vmax = (v > vmax || v != v) ? v : vmax;  // NaN propagates, as xp.maximum
    p = p - step_size * (m / (sqrt(vmax) / bc2 + eps));
    """,
    _adam_emulate,
)


# -- dropout mask ----------------------------------------------------------------------
# base.splitmix_uniform in C: ``i`` is CuPy's flat element index (C order: ``out`` is a fresh
# C-contiguous array), unsigned arithmetic wraps modulo 2**64 as NumPy's uint64 does.

def _dropout_mask_emulate(xp: Any, key: Any, p: Any, scale: Any, out: Any) -> None:
    from .base import splitmix_uniform

    u = splitmix_uniform(xp, int(key), out.size).reshape(out.shape)
    out[...] = (u >= p).astype(out.dtype) * out.dtype.type(scale)


DROPOUT_MASK = KernelSpec(
    "gradx_dropout_mask", "uint64 key, float64 p, float64 scale", "T out",
    """
    unsigned long long z = key + (unsigned long long)(i + 1) * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z = z ^ (z >> 31);
    double u = (double)(z >> 11) * (1.0 / 9007199254740992.0);
    out = u >= p ? (T)scale : (T)0;
    """,
    _dropout_mask_emulate,
)

SPECS = {s.name: s for s in (SGD, SGD_MOMENTUM, ADAM, ADAM_AMSGRAD, DROPOUT_MASK)}


class FusedKernel:
    """One spec compiled on first use. ``__call__`` returns True when the kernel ran and
    False when this CuPy cannot run it (no NVRTC, a build that cannot compile, the CPU
    stand-in): the first call's failure is remembered with its reason, and the caller runs
    its array code instead, so a kernel that does not build never breaks training. Compile
    errors surface before anything is written, so the fallback starts from intact arrays."""

    def __init__(self, cupy: Any, spec: KernelSpec) -> None:
        self.spec = spec
        self.failure: str | None = None
        self._cupy = cupy
        self._kernel: Any = None

    def __call__(self, *args: Any) -> bool:
        if self._kernel is not None:
            self._kernel(*args)
            return True
        if self.failure is not None:
            return False
        try:
            kernel = self._cupy.ElementwiseKernel(
                self.spec.in_params, self.spec.out_params, self.spec.operation,
                self.spec.name, no_return=True)
            kernel(*args)
        except Exception as exc:  # NVRTC missing or failing, or no CUDA at all
            self.failure = f"{type(exc).__name__}: {exc}"
            return False
        self._kernel = kernel
        return True
