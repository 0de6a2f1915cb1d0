"""GPU variants (``--device cupy``): a hand-written CuPy floor, PyTorch CUDA and gradx on CuPy.

CuPy is imported only here and only when asked for; without it, or without a CUDA device,
the run prints why and skips. Every sample ends with a device-wide synchronize, so queued
kernels are paid for inside the timing.
"""

from __future__ import annotations

from typing import Any

from benchmarks.cells import Cell, floor_cell, gradx_cell

FLOOR = "cupy"
FRAMEWORKS = ("cupy", "gradx", "torch")
WORKLOADS = ("tiny_ops", "mlp_step", "deep_narrow", "hvp")


def unavailable() -> str | None:
    """None when CuPy imports and sees a CUDA device; otherwise the reason to print."""
    try:
        import cupy
    except Exception as exc:
        return (f"CuPy not installed ({type(exc).__name__}: {exc}); "
                'pip install "gradx[cuda12]"')
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return f"no CUDA device ({type(exc).__name__}: {exc})"
    return None if n > 0 else "no CUDA device"


def framework_unavailable(framework: str) -> str | None:
    """Why ``framework`` cannot run on the GPU here, or None."""
    if framework == "cupy":
        return None
    if framework == "torch":
        try:
            import torch
        except Exception as exc:
            return f"torch not importable ({type(exc).__name__}: {exc})"
        return None if torch.cuda.is_available() else "this torch build has no CUDA"
    if framework == "gradx":
        try:
            import gradx as gx
        except Exception as exc:
            return f"gradx not importable ({type(exc).__name__}: {exc})"
        return None if "cupy" in gx.available_backends() else "gradx cupy backend unavailable"
    return f"no GPU cell for {framework} (GPU frameworks: {', '.join(FRAMEWORKS)})"


def _sync() -> None:
    import cupy

    cupy.cuda.Device().synchronize()


def build_cell(workload: str, framework: str, data: dict[str, Any]) -> Cell:
    """The GPU cell of ``framework``; data arrive on the host and are copied once."""
    import cupy

    if framework == "cupy":
        return floor_cell(workload, data, cupy, to_host=cupy.asnumpy, sync=_sync)
    if framework == "gradx":
        cell = gradx_cell(workload, data, "cupy")
        cell.sync = _sync
        return cell
    if framework == "torch":
        from benchmarks.peers import torch_cell

        return torch_cell(workload, data, device="cuda")
    raise ValueError(f"no GPU cell for {framework!r}")
