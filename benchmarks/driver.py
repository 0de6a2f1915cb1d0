"""Runs the selected workloads on the selected device and prints the table (see ``run``)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from benchmarks import data as D
from benchmarks.report import hot_path, row, table, write_json


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _available(frameworks: list[str], check: Any, threads: int,
               skipped: dict[str, str]) -> list[str]:
    """Frameworks that import here; prints (and records) the reason for each one skipped."""
    ok = []
    for fw in frameworks:
        why = check(fw)
        if why:
            print(f"skipping {fw}: {why}")
            skipped[fw] = why
        else:
            ok.append(fw)
            if fw == "torch":
                from benchmarks._threads import pin_torch

                pin_torch(threads)
    return ok


def run(args: argparse.Namespace) -> int:
    """Measure every requested (workload, framework) cell; return the process exit code."""
    from benchmarks.harness import timed_rows

    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    if args.device == "cupy":
        from benchmarks import gpu

        why = gpu.unavailable()
        if why:
            print(f"skipping --device cupy: {why}")
            return 0
        requested = args.frameworks or list(gpu.FRAMEWORKS)
        frameworks = _available(requested, gpu.framework_unavailable, args.threads,
                                skipped)
        floor, build, sizes, device = gpu.FLOOR, gpu.build_cell, D.GPU, "cuda"
        cpu_only = [w for w in args.workloads if w not in gpu.WORKLOADS]
        for w in cpu_only:
            print(f"skipping {w} on --device cupy: a CPU-only workload")
        workloads = [w for w in args.workloads if w in gpu.WORKLOADS]
    else:
        from benchmarks.cells import FRAMEWORKS, build_cell, unavailable

        requested = args.frameworks or list(FRAMEWORKS)
        frameworks = _available(requested, unavailable, args.threads, skipped)
        floor, build, device = "numpy", build_cell, "cpu"
        sizes = D.SMALL if args.small else D.FULL
        workloads = list(args.workloads)
    for workload in workloads:
        _log(f"{workload} ...")
        if workload == "memory":
            from benchmarks.external import memory_rows

            rows += memory_rows(frameworks, sizes["memory"], args.threads, floor, log=_log)
        elif workload == "train_digits":
            from benchmarks.external import digits_rows

            if "gradx" in frameworks:
                rows += digits_rows(min(args.repeats, 3), args.threads, args.digits_epochs,
                                    log=_log)
        else:
            rows += timed_rows(workload, frameworks, floor, build, sizes[workload],
                               args.repeats, args.warmup, args.min_time, device, log=_log)
        rows += [row(workload, fw, device, "skipped", why) for fw, why in skipped.items()]
    print()
    print(f"gradx benchmarks: device {device}, {args.threads} thread(s), "
          f"{args.repeats} repeats, median of per-call times; IQR = interquartile range; "
          f"gradx hot path {hot_path()}")
    print(table(rows))
    print(f"\n(total {time.perf_counter() - t0:.0f} s)")
    if args.json:
        write_json(args.json, args, rows)
        print(f"wrote {args.json}")
    return 0
