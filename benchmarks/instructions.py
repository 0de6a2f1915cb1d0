"""Instructions per step under valgrind's callgrind: a measure that does not move with load.

    python -m benchmarks.instructions [--workloads tiny_ops,hvp] [--frameworks numpy,gradx]

On a shared machine wall-clock ratios move by 10-30 % from run to run, which hides a
change of a few percent in the hot path. The number of instructions a step executes is
nearly deterministic, so comparing two commits by it shows such a change reliably. It is a
proxy, not a timing: interpreter instructions run at a lower rate than BLAS kernels, so an
instruction ratio understates the wall-clock ratio of overhead-bound workloads.

Each cell runs in a child process twice, with ``--few`` and ``--many`` steps after one
warm-up step; the difference divided by the extra steps cancels start-up and imports.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from benchmarks._threads import thread_env

WORKLOADS = ("tiny_ops", "mlp_step", "deep_narrow", "hvp")
_COLLECTED = re.compile(r"Collected : (\d+)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.instructions", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workloads", default="tiny_ops,deep_narrow,hvp",
                   help=f"comma list from {','.join(WORKLOADS)}")
    p.add_argument("--frameworks", default="numpy,gradx", help="comma list (numpy = the floor)")
    p.add_argument("--few", type=int, default=2, help="steps in the short run (default 2)")
    p.add_argument("--many", type=int, default=6, help="steps in the long run (default 6)")
    p.add_argument("--child", nargs=3, metavar=("WORKLOAD", "FRAMEWORK", "STEPS"),
                   help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child is None:
        args.workloads = [w for w in args.workloads.split(",") if w]
        args.frameworks = [f for f in args.frameworks.split(",") if f]
        bad = [w for w in args.workloads if w not in WORKLOADS]
        if bad:
            p.error(f"unknown workload(s) {', '.join(bad)}; choose from {', '.join(WORKLOADS)}")
        if not 0 <= args.few < args.many:
            p.error("--many must exceed --few, and --few must be at least 0")
    return args


def run_child(workload: str, framework: str, steps: int) -> None:
    """One warm-up step, then ``steps`` more: what valgrind counts."""
    from benchmarks import data as D
    from benchmarks.cells import build_cell

    cell = build_cell(workload, framework, D.make_data(workload, D.FULL[workload]))
    for _ in range(steps + 1):
        cell.step()


def count(workload: str, framework: str, steps: int) -> int:
    """Instructions of a child process running ``steps`` steps (plus warm-up and start-up)."""
    env = {**os.environ, **thread_env(1), "PYTHONHASHSEED": "0"}
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
           "-m", "benchmarks.instructions", "--child", workload, framework, str(steps)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    found = _COLLECTED.search(proc.stderr)
    if proc.returncode != 0 or found is None:
        raise RuntimeError(f"valgrind run of {workload}/{framework} failed "
                           f"(exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child is not None:
        workload, framework, steps = args.child
        run_child(workload, framework, int(steps))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed; install it (e.g. apt install valgrind) to count "
              "instructions", file=sys.stderr)
        return 2
    from benchmarks.data import FULL, tiny_ops_primitives

    print(f"instructions per step (callgrind, {args.many} minus {args.few} steps)")
    for workload in args.workloads:
        floor = None
        for framework in args.frameworks:
            with ThreadPoolExecutor(2) as pool:  # the two child processes side by side
                many, few = pool.map(lambda n, w=workload, f=framework: count(w, f, n),
                                     (args.many, args.few))
            per_step = (many - few) / (args.many - args.few)
            note = ""
            if framework == "numpy":
                floor = per_step
            elif floor is not None:
                note = f"  x floor {per_step / floor:.2f}"
            if workload == "tiny_ops":
                prims = tiny_ops_primitives(FULL["tiny_ops"]["steps"])
                note += f"  {per_step / prims:,.0f} per primitive"
            print(f"{workload:12s} {framework:9s} {per_step:15,.0f}{note}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
