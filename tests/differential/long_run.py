"""The long differential run: many seeded programs over several processes, outside pytest.

    python -m tests.differential.long_run --programs 20000 --jobs 2

Program ``seed`` is ``programs.random_program(seed)``; it runs on one of the four (backend,
hot path) pairs in turn (``seed % 4``), or on all four with ``--all-paths``. Each failure is
cut down (``runner.shrink``) and printed with its seed, so ``--seed N`` reruns it alone.
Failures are grouped by their first line with numbers removed, the most frequent first.
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import os
import re
import signal
import sys
import time
import warnings
from typing import Any

PATHS = [("numpy", True), ("numpy", False), ("array_api_strict", True),
         ("array_api_strict", False)]


def _signature(message: str) -> str:
    head = message.split("\n")[0]
    head = re.sub(r"-?\d+(\.\d+)?(e[-+]?\d+)?", "#", head)
    head = re.sub(r"np\.float64\([^)]*\)", "#", head)
    return head[:160]


def _work(args: tuple) -> dict:
    seeds, all_paths = args
    warnings.simplefilter("ignore")
    from . import programs, runner

    out: dict[str, Any] = {"programs": 0, "runs": 0, "ops": 0, "failures": [], "gen_errors": 0}
    for seed in seeds:
        try:
            prog = programs.random_program(seed)
        except Exception as exc:  # a generator defect: report, never hide
            out["failures"].append({"seed": seed, "path": "generator",
                                    "message": f"generator raised {exc!r}"})
            out["gen_errors"] += 1
            continue
        out["programs"] += 1
        out["ops"] += prog.n_ops
        paths = PATHS if all_paths else [PATHS[seed % len(PATHS)]]
        try:
            ref = runner.Reference(prog)
        except Exception as exc:
            out["failures"].append({"seed": seed, "path": "torch reference",
                                    "message": f"torch reference raised {exc!r}\n"
                                               f"{prog.describe()}"})
            continue
        for backend, compiled in paths:
            out["runs"] += 1
            try:
                runner.check(prog, ref, backend=backend, compiled=compiled)
            except runner.Mismatch as exc:
                def fails(q: Any, backend: str = backend, compiled: bool = compiled) -> bool:
                    try:
                        runner.check(q, backend=backend, compiled=compiled)
                    except runner.Mismatch:
                        return True
                    except Exception:
                        return False
                    return False

                try:
                    small = runner.shrink(prog, fails)
                    runner.check(small, backend=backend, compiled=compiled)
                    message = str(exc)
                except runner.Mismatch as smaller:
                    message = str(smaller)
                except Exception:
                    message = str(exc)
                out["failures"].append({"seed": seed, "path": f"{backend}/"
                                        f"{'compiled' if compiled else 'python'}",
                                        "message": message})
                break
    return out


def _progress(results: list[dict], n: int, t0: float) -> None:
    done = sum(r["programs"] for r in results)
    if len(results) % 8 == 0 or done >= n:
        bad = sum(len(r["failures"]) for r in results)
        print(f"  {done}/{n} programs, {bad} failing, {time.time() - t0:.0f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--programs", type=int, default=20000)
    parser.add_argument("--start", type=int, default=0, help="first seed")
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2)))
    parser.add_argument("--seed", type=int, default=None, help="run this one seed")
    parser.add_argument("--all-paths", action="store_true",
                        help="every program on all four backend/hot-path pairs")
    parser.add_argument("--json", default=None, help="write the failures here")
    parser.add_argument("--show", type=int, default=2, help="examples printed per group")
    args = parser.parse_args(argv)
    # SIGTERM (a CI timeout) reports what finished, as Ctrl-C does
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if args.seed is not None:
        seeds = [args.seed]
    else:
        seeds = list(range(args.start, args.start + args.programs))
    t0 = time.time()
    results: list[dict] = []
    # tasks of 25 seeds: balanced over the processes, and progress (and partial results, on
    # an interrupt) after each
    tasks = [(seeds[i:i + 25], args.all_paths) for i in range(0, len(seeds), 25)]
    try:
        if args.jobs == 1:
            for task in tasks:
                results.append(_work(task))
                _progress(results, len(seeds), t0)
        else:
            # spawn: no forked torch state
            with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
                for r in pool.imap_unordered(_work, tasks):
                    results.append(r)
                    _progress(results, len(seeds), t0)
    except KeyboardInterrupt:
        print("interrupted: the summary covers the programs finished so far", flush=True)
    elapsed = time.time() - t0
    total = {k: sum(r[k] for r in results) for k in ("programs", "runs", "ops", "gen_errors")}
    failures = [f for r in results for f in r["failures"]]
    groups: dict[str, list] = collections.defaultdict(list)
    for f in failures:
        groups[_signature(f["message"])].append(f)
    print(f"differential long run: {total['programs']} programs, {total['runs']} runs, "
          f"{total['ops']} ops, {len(failures)} failing programs in {len(groups)} groups, "
          f"{elapsed:.0f} s on {args.jobs} processes")
    for sig, fs in sorted(groups.items(), key=lambda t: -len(t[1])):
        print(f"\n=== {len(fs)} x {sig}\n    seeds: {sorted(f['seed'] for f in fs)[:20]}")
        for f in fs[:args.show]:
            print(f"--- seed {f['seed']} ({f['path']})\n{f['message']}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"totals": total, "elapsed_s": elapsed, "failures": failures}, fh,
                      indent=1)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
