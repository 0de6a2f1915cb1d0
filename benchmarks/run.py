"""Measure gradx against a hand-written NumPy floor and peers, side by side, in one process.

    python -m benchmarks.run [--workloads tiny_ops,mlp_step] [--frameworks numpy,gradx,torch]
                             [--repeats 15] [--threads 1] [--json out.json] [--device numpy]

Thread counts are pinned (OMP/MKL/OpenBLAS variables, XLA flags, torch.set_num_threads)
before NumPy or any peer is imported, so every library gets the same number of threads.
"""

from __future__ import annotations

import argparse
import sys

WORKLOADS = ("tiny_ops", "mlp_step", "deep_narrow", "hvp", "memory", "train_digits")
FRAMEWORKS = ("numpy", "gradx", "torch", "autograd", "jax")


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; no heavy imports happen here."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    p.add_argument("--workloads", type=_csv, default=list(WORKLOADS),
                   help=f"comma list from {','.join(WORKLOADS)} (default: all)")
    p.add_argument("--frameworks", type=_csv, default=None,
                   help=f"comma list (default CPU: {','.join(FRAMEWORKS)}; cupy: cupy,gradx,"
                        "torch); numpy is the hand-written floor, cupy its GPU twin")
    p.add_argument("--repeats", type=int, default=15, help="samples per cell (default 15)")
    p.add_argument("--threads", type=int, default=1,
                   help="threads for every library (default 1)")
    p.add_argument("--json", metavar="PATH", help="write every raw sample and ratio as JSON")
    p.add_argument("--device", choices=("numpy", "cupy"), default="numpy",
                   help="numpy: CPU (default); cupy: GPU workloads at batch 1024")
    p.add_argument("--min-time", type=float, default=0.05,
                   help="seconds each sample lasts at least; fast calls are looped (0.05)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls per cell (default 2)")
    p.add_argument("--small", action="store_true",
                   help="the reduced sizes the tests use, for a quick smoke run")
    p.add_argument("--digits-epochs", type=int, default=20,
                   help="extra epochs whose difference times train_digits (default 20)")
    args = p.parse_args(argv)
    bad = [w for w in args.workloads if w not in WORKLOADS]
    if bad:
        p.error(f"unknown workload(s) {', '.join(bad)}; choose from {', '.join(WORKLOADS)}")
    if args.repeats < 1 or args.threads < 1:
        p.error("--repeats and --threads must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Pin threads, then import the measuring code and run it."""
    args = parse_args(argv)
    preloaded = [m for m in ("numpy", "torch", "jax") if m in sys.modules]
    from benchmarks._threads import pin_threads

    pin_threads(args.threads)
    if preloaded:
        print(f"warning: {', '.join(preloaded)} imported before threads were pinned; "
              "thread counts may differ between libraries", file=sys.stderr)
    from benchmarks.driver import run

    return run(args)


if __name__ == "__main__":
    sys.exit(main())
