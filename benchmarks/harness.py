"""The timing loop: gradient check against the floor, warm-up, then round-robin repeats.

All frameworks of a workload are measured in one process and interleaved repeat by repeat
(the starting framework rotates), so drift in clock speed or load spreads over all of them.
"""

from __future__ import annotations

import gc
import math
import time
import traceback
from collections.abc import Callable
from typing import Any

from benchmarks import data as D
from benchmarks.cells import Cell, grad_mismatch
from benchmarks.report import add_ratios, row

Builder = Callable[[str, str, dict[str, Any]], Cell]


def measure(cell: Cell, number: int) -> float:
    """Seconds per call over ``number`` back-to-back calls, device work included."""
    gc.collect()
    t0 = time.perf_counter()
    for _ in range(number):
        cell.step()
    cell.sync()
    return (time.perf_counter() - t0) / number


def calibrate(cell: Cell, warmup: int, min_time: float) -> int:
    """Warm up (caches, lazy compilation), then pick calls per sample to last ``min_time``."""
    for _ in range(warmup):
        cell.step()
    cell.sync()
    once = measure(cell, 1)
    return max(1, min(10_000, math.ceil(min_time / max(once, 1e-9))))


def _error(exc: BaseException) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" at {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}" if frame else ""
    return f"{type(exc).__name__}: {exc}{where}".replace("\n", " ")[:300]


def timed_rows(workload: str, frameworks: list[str], floor: str, build: Builder,
               size: dict[str, int], repeats: int, warmup: int = 2, min_time: float = 0.05,
               device: str = "cpu", log: Callable[[str], Any] = print) -> list[dict[str, Any]]:
    """Check every framework's gradients against ``floor``'s, then time the ones that agree."""
    data = D.make_data(workload, size)
    try:
        ref_cell = build(workload, floor, data)
        ref_cell.step()
        want = ref_cell.grads()
    except Exception as exc:
        return [row(workload, fw, device, "error", f"floor failed: {_error(exc)}")
                for fw in frameworks]
    rows: dict[str, dict[str, Any]] = {}
    cells: dict[str, Cell] = {}
    for fw in frameworks:
        try:
            cell = ref_cell if fw == floor else build(workload, fw, data)
            cell.step()
            cell.sync()
            why = grad_mismatch(cell.grads(), want)
        except Exception as exc:
            rows[fw] = row(workload, fw, device, "error", _error(exc))
            continue
        if why:
            rows[fw] = row(workload, fw, device, "grad mismatch", why)
        else:
            cells[fw] = cell
    numbers = {}
    for fw, cell in cells.items():
        numbers[fw] = calibrate(cell, warmup, min_time)
    log(f"  {workload}: gradients agree for {', '.join(cells) or 'none'}; "
        f"timing {repeats} rounds")
    samples: dict[str, list[float]] = {fw: [] for fw in cells}
    order = list(cells)
    for r in range(repeats):
        k = r % len(order) if order else 0
        for fw in order[k:] + order[:k]:
            samples[fw].append(measure(cells[fw], numbers[fw]))
    for fw in cells:
        rows[fw] = row(workload, fw, device, samples=samples[fw], number=numbers[fw])
    out = [rows[fw] for fw in frameworks if fw in rows]
    add_ratios(out, floor, size)
    return out
