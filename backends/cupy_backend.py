"""CuPy: the CUDA backend. Imported lazily; asking for it without CuPy or without a CUDA
device raises BackendUnavailableError saying which is missing and how to install."""

from __future__ import annotations

import contextlib
import math
import types
from typing import Any

import numpy as np

from .base import Backend, _mask_from_uniform, splitmix_uniform

INSTALL_HINT = 'pip install "gradx[cuda12]" (or "gradx[cuda13]" for CUDA 13)'

# Array API names that older CuPy releases spell the NumPy 1 way.
_ALIASES = {
    "acos": "arccos", "asin": "arcsin", "atan": "arctan", "atan2": "arctan2",
    "acosh": "arccosh", "asinh": "arcsinh", "atanh": "arctanh", "pow": "power",
    "concat": "concatenate", "permute_dims": "transpose", "bitwise_invert": "invert",
}


def _namespace(cp: Any) -> Any:
    """cupy's functions under their Array API names and keywords: a thin table, no wrappers
    on the names CuPy already spells the standard way."""
    extra = {
        "astype": lambda x, dtype, /, *, copy=True: x.astype(dtype, copy=copy),
        "matrix_transpose": lambda x, /: cp.swapaxes(x, -1, -2),
        "cumulative_sum": lambda x, /, *, axis=None, dtype=None: cp.cumsum(x, axis=axis,
                                                                           dtype=dtype),
        "isdtype": np.isdtype,
    }
    # CuPy spells these keywords the NumPy 1 way (ddof, a_min/a_max) or lacks them (stable)
    override = {
        "var": lambda x, /, *, axis=None, correction=0.0, keepdims=False:
            cp.var(x, axis=axis, ddof=correction, keepdims=keepdims),
        "clip": lambda x, /, min=None, max=None: cp.clip(x, min, max),
        "sort": lambda x, /, *, axis=-1, descending=False, stable=True:
            cp.flip(cp.sort(x, axis=axis), axis=axis) if descending else cp.sort(x, axis=axis),
        "argsort": lambda x, /, *, axis=-1, descending=False, stable=True:
            cp.argsort(-x if descending else x, axis=axis),
    }
    ns = types.SimpleNamespace(**{k: getattr(cp, k) for k in dir(cp) if not k.startswith("__")})
    ns.__name__ = "cupy"
    for new, old in _ALIASES.items():
        if not hasattr(cp, new):
            setattr(ns, new, getattr(cp, old))
    for k, fn in extra.items():
        if not hasattr(cp, k):
            setattr(ns, k, fn)
    for k, fn in override.items():
        setattr(ns, k, fn)
    return ns


class CupyBackend(Backend):
    name = "cupy"
    host_resident = False

    def __init__(self) -> None:
        super().__init__(None)
        self._cp: Any = None
        self._xp: Any = None
        self._reason: list[str | None] = []  # the probe's verdict, once it has run
        self._kernels: dict[str, Any] = {}

    def unavailable_reason(self) -> str | None:
        """Probed once per process: CuPy imports, sees a device, and a tiny elementwise
        kernel and a tiny matmul run. The libraries CuPy loads lazily (NVRTC compiles the
        kernel, cuBLAS runs the matmul) are otherwise missing only at the first real op.
        Cached, so the hot path (every ``resolve``) asks the device nothing."""
        if not self._reason:
            self._reason.append(self._probe())
        return self._reason[0]

    def _probe(self) -> str | None:
        try:
            import cupy
        except ImportError:
            return f"CuPy is not installed; install it with {INSTALL_HINT}"
        except Exception as exc:  # a broken CUDA install raises at import time
            return f"CuPy failed to import ({exc}); reinstall it with {INSTALL_HINT}"
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:
            return f"CuPy is installed but no CUDA device is usable ({exc})"
        if count < 1:
            return "CuPy is installed but this machine has no CUDA device"
        try:
            _run_tiny_kernels(cupy)
        except Exception as exc:
            return (f"CuPy sees {count} CUDA device(s) but a tiny kernel or matmul failed "
                    f"({type(exc).__name__}: {exc}); the CUDA libraries CuPy loads lazily "
                    f"(NVRTC, cuBLAS) are probably missing: install {INSTALL_HINT}, which "
                    'brings them through "cupy-cuda12x[ctk]"')
        return None

    def _load(self) -> Any:
        if self._cp is None:
            import cupy

            self._cp = cupy
            self._xp = _namespace(cupy)
        return self._cp

    @property
    def xp(self) -> Any:
        self._load()
        return self._xp

    @property
    def device(self) -> str:  # type: ignore[override]
        return f"cuda:{self._load().cuda.runtime.getDevice()}"

    @property
    def array_types(self) -> tuple[type, ...]:
        return (self._load().ndarray,)

    def asarray(self, obj: Any, dtype: Any = None, copy: bool | None = None) -> Any:
        cp = self._load()
        try:
            return cp.array(obj, dtype=dtype) if copy else cp.asarray(obj, dtype=dtype)
        except (TypeError, ValueError) as exc:
            _refuse_non_numeric(obj, exc)
            raise

    def from_numpy(self, a: np.ndarray, dtype: Any = None) -> Any:
        return self._load().asarray(a, dtype=dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        return self._load().asnumpy(x)

    def copy(self, x: Any) -> Any:
        return x.copy()

    def dlpack(self, x: Any, **kwargs: Any) -> Any:
        """A host copy's capsule when the consumer names neither a device nor a stream, as
        NumPy's ``from_dlpack(t)`` does (NumPy 2.4 cannot read a CUDA capsule and does not
        ask for the CPU); a CUDA consumer (CuPy, PyTorch) passes its stream and gets the
        zero-copy device capsule."""
        if kwargs.get("dl_device") is None and kwargs.get("stream") is None:
            kwargs = {**kwargs, "dl_device": (1, 0), "copy": True}  # kDLCPU, device 0
        return x.__dlpack__(**kwargs)

    def owned(self, x: Any) -> Any:
        """``x`` when it owns its memory, else a row-major copy: a view (a transposed
        gradient, a broadcast) kept as ``.grad`` would be read-only to ``writable``, so every
        later accumulation and ``zero_grad(set_to_none=False)`` would allocate."""
        if x.base is None:
            return x
        return self._load().array(x, order="C")

    def writable(self, x: Any) -> bool:
        return type(x) is self._load().ndarray and x.base is None  # views keep their base

    def scatter_add(self, target: Any, key: Any, values: Any) -> Any:
        """``cupyx.scatter_add`` on a copy; complex values go in as two real halves, which
        it accepts (it has no complex kernels)."""
        import cupyx

        cp = self._load()
        if target.dtype.kind != "c":
            out = target.copy()
            cupyx.scatter_add(out, key, values)
            return out
        values = cp.asarray(values, dtype=target.dtype)
        re, im = cp.ascontiguousarray(target.real), cp.ascontiguousarray(target.imag)
        cupyx.scatter_add(re, key, cp.ascontiguousarray(values.real))
        cupyx.scatter_add(im, key, cp.ascontiguousarray(values.imag))
        out = cp.empty_like(target)
        out.real[...] = re
        out.imag[...] = im
        return out

    def index_update(self, x: Any, key: Any, values: Any) -> Any:
        out = x.copy()
        out[key] = values
        return out

    def sliding_windows(self, x: Any, window_shape: tuple[int, ...],
                        axes: tuple[int, ...]) -> Any:
        """A strided view (``as_strided``, no copy; never written to) of the base class's
        windows; the base class's gather where this CuPy has no ``stride_tricks``."""
        try:
            from cupy.lib.stride_tricks import as_strided
        except ImportError:
            return super().sliding_windows(x, window_shape, axes)
        shape = list(x.shape)
        for k, ax in zip(window_shape, axes, strict=True):
            shape[ax] -= k - 1
        strides = tuple(x.strides) + tuple(x.strides[ax] for ax in axes)
        return as_strided(x, shape=tuple(shape) + tuple(window_shape), strides=strides)

    def synchronize(self) -> None:
        self._load().cuda.get_current_stream().synchronize()

    def fused_kernel(self, name: str) -> Any:
        kernel = self._kernels.get(name)
        if kernel is None:
            from .cupy_kernels import SPECS, FusedKernel

            kernel = self._kernels[name] = FusedKernel(self._load(), SPECS[name])
        return kernel

    def fused_kernel_failures(self) -> dict[str, str]:
        """Kernels that could not run here, with why (the optimizers fell back to array code
        for them): what a first GPU run prints."""
        return {n: k.failure for n, k in self._kernels.items() if k.failure is not None}

    def dropout_mask(self, key: int, shape: tuple[int, ...], p: float, dtype: Any) -> Any:
        """The base class's mask, computed on the device: one fused kernel, or the same
        SplitMix64 arithmetic in CuPy array code where the kernel cannot run. No host draw,
        no copy, no sync."""
        cp = self._load()
        if dtype in (np.float32, np.float64):
            out = cp.empty(shape, dtype=dtype)
            if self.fused_kernel("gradx_dropout_mask")(np.uint64(key), np.float64(p),
                                                       np.float64(1.0 / (1.0 - p)), out):
                return out
        u = splitmix_uniform(cp, key, math.prod(shape))
        return _mask_from_uniform(cp, u, p, dtype).reshape(shape)


def _run_tiny_kernels(cupy: Any) -> None:
    """An elementwise kernel (compiled by NVRTC) and a matmul (cuBLAS), read back."""
    try:
        import cupyx

        allowed = cupyx.allow_synchronize(True)  # the read-back below is meant
    except (ImportError, AttributeError):
        allowed = contextlib.nullcontext()
    with allowed:
        a = cupy.arange(4, dtype=cupy.float32).reshape(2, 2)
        b = a * 2.0 + 1.0
        got = cupy.asnumpy(b @ a)
    want = (np.arange(4.0).reshape(2, 2) * 2 + 1) @ np.arange(4.0).reshape(2, 2)
    if not np.allclose(got, want):
        raise RuntimeError(f"wrong result {got.tolist()}, expected {want.tolist()}")


def _refuse_non_numeric(obj: Any, exc: Exception) -> None:
    """Raise DTypeError when ``obj`` (Python data CuPy refused) is not numbers at all, as
    the NumPy backend's ``tensor`` check does; anything else keeps CuPy's own error."""
    if hasattr(obj, "__cuda_array_interface__") or hasattr(obj, "__dlpack__"):
        return
    try:
        host = np.asarray(obj)
    except Exception:
        return
    if not np.isdtype(host.dtype, ("bool", "numeric")):
        from gradx.errors import DTypeError

        raise DTypeError(
            f"tensor: {type(obj).__name__} data gives dtype {host.dtype}, which no op can "
            "compute with on backend 'cupy'; pass numbers (bool, integer, float or complex)"
        ) from exc
