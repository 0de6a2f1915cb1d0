"""A cell is one (workload, framework) pair: a forward+backward callable and its gradients.

This module holds the floor and gradx cells, the dispatch over frameworks, the check that
a framework is installed, and the gradient comparison against the floor.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmarks import floor

FRAMEWORKS = ("numpy", "gradx", "torch", "autograd", "jax")
# Import name and install hint of each framework that is not always present.
_MODULES = {
    "gradx": ("gradx", 'pip install -e .'),
    "torch": ("torch", 'pip install -e ".[bench]"'),
    "autograd": ("autograd", 'pip install -e ".[bench]"'),
    "jax": ("jax", 'pip install -e ".[bench]"'),
}


@dataclass
class Cell:
    """``step()`` runs one forward+backward; ``grads()`` returns its gradients on the host.

    ``sync()`` waits for queued device work; ``clear()`` drops the last step's gradients so a
    memory measurement starts from the same state in every framework.
    """

    step: Callable[[], Any]
    grads: Callable[[], list[np.ndarray]]
    sync: Callable[[], Any] = field(default=lambda: None)
    clear: Callable[[], Any] = field(default=lambda: None)


def unavailable(framework: str) -> str | None:
    """None when ``framework`` imports; otherwise the reason to print when skipping it."""
    if framework == "numpy":
        return None
    if framework not in _MODULES:
        return f"unknown framework (choose from {', '.join(FRAMEWORKS)})"
    module, hint = _MODULES[framework]
    try:
        importlib.import_module(module)
    except Exception as exc:  # a broken install is as unavailable as a missing one
        return f"{module} not importable ({type(exc).__name__}: {exc}); {hint}"
    return None


def build_cell(workload: str, framework: str, data: dict[str, Any]) -> Cell:
    """The CPU cell of ``framework`` for ``workload`` on ``data`` from ``data.make_data``."""
    if framework == "numpy":
        return floor_cell(workload, data, np)
    if framework == "gradx":
        return gradx_cell(workload, data, "numpy")
    from benchmarks import peers

    if framework == "torch":
        return peers.torch_cell(workload, data)
    if framework == "autograd":
        return peers.autograd_cell(workload, data)
    if framework == "jax":
        return peers.jax_cell(workload, data)
    raise ValueError(f"unknown framework {framework!r}; choose from {', '.join(FRAMEWORKS)}")


def floor_cell(workload: str, data: dict[str, Any], xp: Any, to_host: Callable = np.asarray,
               sync: Callable[[], Any] = lambda: None) -> Cell:
    """The hand-written forward and backward of ``benchmarks.floor`` on namespace ``xp``."""
    d = {k: ([xp.asarray(p) for p in v] if k == "params" else xp.asarray(v))
         for k, v in data.items()}
    ps = d["params"]
    if workload == "tiny_ops":
        half = len(ps) // 2
        run = lambda: floor.tiny_ops_grads(xp, d["y0"], ps[:half], ps[half:])
    elif workload == "mlp_step":
        run = lambda: floor.mlp_step_grads(xp, d["x"], d["labels"], ps)
    elif workload in ("deep_narrow", "memory"):
        act = "tanh" if workload == "deep_narrow" else "relu"
        run = lambda: floor.stack_grads(xp, d["x"], d["y"], ps, act)
    elif workload == "hvp":
        run = lambda: floor.hvp(xp, d["a"], d["x"], d["v"])
    else:
        raise ValueError(f"the floor has no cell for workload {workload!r}")
    out: list = [[]]

    def step() -> None:
        # drop the last step's gradients first, as the framework cells do (grad = None
        # before backward): freeing them after would keep glibc's heap top in use and spare
        # the floor the page faults of a trimmed heap that every framework cell pays
        out[0] = []
        out[0] = run()

    return Cell(step, lambda: [to_host(g) for g in out[0]], sync, lambda: out.__setitem__(0, []))


def gradx_cell(workload: str, data: dict[str, Any], backend: str = "numpy") -> Cell:
    """gradx through its public API only: tensors, operators, ``backward()`` and ``.grad``."""
    import gradx as gx
    import gradx.nn.functional as F

    def const(a: np.ndarray) -> Any:
        return gx.tensor(a, backend=backend)

    params = [gx.tensor(p, requires_grad=True, backend=backend) for p in data["params"]]
    sync = lambda: None  # the GPU driver installs a device-wide synchronize

    def zero() -> None:
        for p in params:
            p.grad = None

    if workload == "tiny_ops":
        y0, half = const(data["y0"]), len(params) // 2
        ws, bs = params[:half], params[half:]

        def step() -> None:
            zero()
            y = y0
            for w, b in zip(ws, bs, strict=True):
                y = gx.tanh(y * w + b)
            y.sum().backward()

    elif workload == "mlp_step":
        x, labels = const(data["x"]), const(data["labels"])
        w1, b1, w2, b2, w3, b3 = params

        def step() -> None:
            zero()
            h = F.relu(x @ w1 + b1)
            h = F.relu(h @ w2 + b2)
            F.cross_entropy(h @ w3 + b3, labels).backward()

    elif workload in ("deep_narrow", "memory"):
        x, y = const(data["x"]), const(data["y"])
        act = gx.tanh if workload == "deep_narrow" else F.relu

        def step() -> None:
            zero()
            h = x
            for i in range(0, len(params), 2):
                h = act(h @ params[i] + params[i + 1])
            F.mse_loss(h, y).backward()

    elif workload == "hvp":
        a, x, v = const(data["a"]), const(data["x"]), const(data["v"])
        out: list = [None]

        def step() -> None:
            # gx.hvp answers with a tuple shaped like the primals: here (H v,).
            (out[0],) = gx.hvp(lambda x: gx.logsumexp(a @ x), (x,), (v,))

        return Cell(step, lambda: [_host(out[0])], sync, lambda: out.__setitem__(0, None))
    else:
        raise ValueError(f"gradx has no cell for workload {workload!r}")
    return Cell(step, lambda: [p.grad.numpy() for p in params], sync, zero)


def _host(x: Any) -> np.ndarray:
    return x.numpy() if hasattr(x, "numpy") else np.asarray(x)


def grad_mismatch(got: list[np.ndarray], want: list[np.ndarray]) -> str | None:
    """None when every gradient matches the floor's within its dtype's tolerance, else why.

    float32 rounding grows through 200 chained steps or 64 layers, so the absolute part of
    the tolerance scales with each gradient's largest entry.
    """
    if len(got) != len(want):
        return f"{len(got)} gradients, the floor has {len(want)}"
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        g = np.asarray(g)
        if g.shape != w.shape:
            return f"gradient {i}: shape {g.shape}, the floor's is {w.shape}"
        rtol, atol = (1e-7, 1e-9) if w.dtype == np.float64 else (2e-3, 1e-4)
        scale = max(float(np.max(np.abs(w), initial=0.0)), 1e-30)
        err = np.abs(g.astype(np.float64) - w)
        bad = err > atol * scale + rtol * np.abs(w)
        if not np.all(np.isfinite(g)) or bad.any():
            return (f"gradient {i} {w.shape}: max abs diff {float(np.nanmax(err)):.3g}, "
                    f"largest entry {scale:.3g}")
    return None
