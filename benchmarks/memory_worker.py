"""Peak memory growth of one forward+backward of the ``memory`` workload, one framework.

Run by ``benchmarks.run`` as ``python -m benchmarks.memory_worker FRAMEWORK`` in a fresh
process per framework, so one library's caches and allocator never count against another.
Prints one JSON line: the peak resident-set growth in MiB over a baseline taken after the
data and parameters exist and one warm-up step has run, plus per-gradient norms that the
parent compares with the floor's.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys


def _status_mib(field: str) -> float | None:
    """A ``Vm*`` line of /proc/self/status in MiB, or None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Reset the kernel's resident high-water mark (Linux: write 5 to clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return _status_mib("VmHWM") is not None


def _mmap_large_blocks() -> None:
    """Serve blocks over 128 KiB from mmap and return them on free (glibc; else a no-op).

    Otherwise glibc keeps the warm-up step's freed arrays in its heap, they count in the
    baseline, and the measured step reuses them unseen. Same effect as the parent's
    MALLOC_MMAP_THRESHOLD_, for a worker started by hand."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def measure(framework: str, size: dict[str, int]) -> dict:
    """Build the cell, warm it up, then measure the peak growth of one more step."""
    import numpy as np

    from benchmarks.cells import build_cell
    from benchmarks.data import make_data

    data = make_data("memory", size)
    cell = build_cell("memory", framework, data)
    can_reset = _reset_peak()
    if can_reset:
        # One warm-up step keeps lazy initialisation (kernel caches, first-call setup) out.
        cell.step()
        cell.sync()
        cell.clear()  # drop the warm-up's gradients so baseline and step both start without
    gc.collect()
    if can_reset:
        baseline = _status_mib("VmRSS")
        _reset_peak()
    else:  # without a resettable high-water mark, measure the first step from ru_maxrss
        baseline = _maxrss_mib()
    cell.step()
    cell.sync()
    peak = _status_mib("VmHWM") if can_reset else _maxrss_mib()
    norms = [float(np.linalg.norm(g.astype(np.float64))) for g in cell.grads()]
    return {
        "framework": framework,
        "peak_growth_mib": peak - baseline,
        "baseline_mib": baseline,
        "method": "VmHWM after clear_refs" if can_reset else "ru_maxrss delta, no warm-up",
        "grad_norms": norms,
    }


def main(argv: list[str] | None = None) -> int:
    """Command line entry; parent passes sizes and the pinned thread environment."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("framework")
    p.add_argument("--layers", type=int, default=32)
    p.add_argument("--width", type=int, default=2048)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    _mmap_large_blocks()
    if args.threads is not None and "numpy" not in sys.modules:
        from benchmarks._threads import pin_threads

        pin_threads(args.threads)
    if args.framework == "torch":
        from benchmarks._threads import pin_torch

        pin_torch(int(os.environ.get("OMP_NUM_THREADS", "1")))
    size = {"layers": args.layers, "width": args.width, "batch": args.batch}
    try:
        out = measure(args.framework, size)
    except Exception as exc:  # reported by the parent as this cell's error
        out = {"framework": args.framework, "error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
