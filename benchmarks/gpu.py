"""GPU variants (``--device cupy``): a hand-written CuPy floor, PyTorch CUDA and gradx on CuPy.

CuPy is imported only here and only when asked for; without it, or without a CUDA device,
the run prints why and skips. Every sample ends with a device-wide synchronize, so queued
kernels are paid for inside the timing.

Two steps of ``ci/gpu.sh`` live here too: ``python -m benchmarks.gpu warmup`` compiles a
training step's kernels before anything is timed, and ``python -m benchmarks.gpu compare
--out DIR`` runs ``compare_backends(per_op=True)`` on every op-table row, NumPy against CuPy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from benchmarks.cells import Cell, floor_cell, gradx_cell

FLOOR = "cupy"
FRAMEWORKS = ("cupy", "gradx", "torch")
WORKLOADS = ("tiny_ops", "mlp_step", "deep_narrow", "hvp")
STANDIN_DRY_RUN = "GRADX_BENCH_STANDIN"  # =1: run the GPU cells on the CuPy stand-in


def is_standin() -> bool:
    """Whether ``cupy`` is the CPU stand-in (../shared/tools/cupy-standin), not CuPy."""
    try:
        import cupy
    except Exception:
        return False
    return hasattr(cupy, "_fake")


def unavailable() -> str | None:
    """None when CuPy imports and sees a CUDA device; otherwise the reason to print."""
    try:
        import cupy  # noqa: F401
    except Exception as exc:
        return (f"CuPy not installed ({type(exc).__name__}: {exc}); "
                'pip install "gradx[cuda12]"')
    if is_standin() and os.environ.get(STANDIN_DRY_RUN) != "1":
        return ("cupy is the CPU stand-in, not CuPy: GPU timings need a CUDA device "
                f"({STANDIN_DRY_RUN}=1 runs the cells anyway, as a dry run of their code)")
    from gradx.backends.cupy_backend import CupyBackend

    return CupyBackend().unavailable_reason()  # a device, a kernel and a matmul that run


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


# -- CPU vs GPU on every primitive, and the kernel warm-up ------------------------------

def _op_rows() -> tuple[list[Any], Any]:
    """The suite's op table (one row per primitive variant) and its input sampler."""
    tests = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from op_table import all_rows
    from test_gradients import sample

    return all_rows(), sample


def _weighted(fn: Any) -> Any:
    """``fn`` with its output scaled by fixed weights in [0.5, 1.5): the comparison's ones
    cotangent would give softmax, for one, an identically zero gradient."""
    import numpy as np

    import gradx as gx

    def weighted(*args: Any) -> Any:
        out = fn(*args)
        if not isinstance(out, gx.Tensor):
            return out
        w = np.random.default_rng(len(out.shape)).uniform(0.5, 1.5, tuple(out.shape))
        return out * gx.tensor(w, dtype=out.dtype)

    return weighted


def compare_every_primitive(out_dir: str, backends: tuple[str, ...] = ("numpy", "cupy"),
                            dtypes: tuple[str, ...] = ("float64", "float32")) -> int:
    """``compare_backends(per_op=True)`` on every op-table row in each dtype, values and
    gradients; writes ``compare_backends.txt`` (every report) and ``.json`` (a summary
    row each) under ``out_dir`` and returns how many rows diverged or failed. On a cold
    CuPy cache this is also the kernel warm-up: it compiles every primitive's kernels."""
    import numpy as np

    import gradx as gx

    rows, sample = _op_rows()
    os.makedirs(out_dir, exist_ok=True)
    summary, bad = [], 0
    t0 = time.perf_counter()
    with open(os.path.join(out_dir, "compare_backends.txt"), "w") as text:
        for row in rows:
            skip = next((row.skip_backends[b] for b in backends if b in row.skip_backends), None)
            for dtype in dtypes:
                entry: dict[str, Any] = {"row": row.id, "primitive": row.name, "dtype": dtype}
                if skip:
                    entry.update(status="skipped", detail=skip)
                else:
                    args = [np.asarray(a, dtype=dtype) for a in sample(row)]
                    try:
                        report = gx.testing.compare_backends(
                            _weighted(row.fn), *args, backends=backends, per_op=True,
                            allow_zero_grads=True)  # floor, sign: zero by definition
                        entry.update(status="ok" if report.ok else "diverged",
                                     detail=str(report.divergence or ""),
                                     zero_grads=[e.name for e in report.no_flow])
                        text.write(f"== {row.id} {dtype}\n{report}\n\n")
                    except Exception as exc:  # report and go on: one row must not hide others
                        entry.update(status="error", detail=f"{type(exc).__name__}: {exc}")
                        text.write(f"== {row.id} {dtype}\nERROR {entry['detail']}\n\n")
                bad += entry["status"] in ("diverged", "error")
                summary.append(entry)
    with open(os.path.join(out_dir, "compare_backends.json"), "w") as f:
        json.dump(summary, f, indent=1)
    counts = {k: sum(e["status"] == k for e in summary)
              for k in ("ok", "diverged", "error", "skipped")}
    zero = sum(bool(e.get("zero_grads")) for e in summary)
    print(f"compare_backends {' vs '.join(backends)} over {len(rows)} op-table rows x "
          f"{len(dtypes)} dtypes in {time.perf_counter() - t0:.1f} s: {counts}; {zero} with "
          "a gradient that is zero on both (listed in compare_backends.json)")
    for e in summary:
        if e["status"] in ("diverged", "error"):
            print(f"  {e['status']}: {e['row']} {e['dtype']}: {e['detail'][:300]}")
    return bad


def warm_up() -> dict[str, Any]:
    """Compile what the suite and the benchmarks launch first, outside any timing or test
    timeout: a digits-sized training step (fused optimizer kernels, dropout mask) in float32
    and float64 on the cupy backend. Returns what ran and what could not (kernels that
    failed to build fall back to array code; the failures name why)."""
    import numpy as np

    import gradx as gx

    backend = gx._backend.resolve("cupy")
    t0 = time.perf_counter()
    for dtype in ("float32", "float64"):
        with gx.use_backend("cupy"), gx.default_dtype(dtype):
            gx.random.seed(0)
            model = gx.nn.Sequential(gx.nn.Linear(8, 16), gx.nn.ReLU(), gx.nn.Dropout(0.2),
                                     gx.nn.Linear(16, 3))
            x = gx.tensor(np.random.default_rng(0).standard_normal((4, 8)))
            y = gx.tensor(np.arange(4) % 3)
            for opt in (gx.optim.Adam(model.parameters()),
                        gx.optim.Adam(model.parameters(), amsgrad=True),
                        gx.optim.AdamW(model.parameters()),
                        gx.optim.SGD(model.parameters(), lr=0.1),
                        gx.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)):
                for _ in range(2):
                    opt.zero_grad()
                    gx.nn.functional.cross_entropy(model(x), y).backward()
                    opt.step()
    backend.synchronize()
    failures = backend.fused_kernel_failures()
    return {"seconds": round(time.perf_counter() - t0, 2),
            "fused_kernels": sorted(backend._kernels), "fused_kernel_failures": failures}


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.gpu warmup`` | ``compare --out DIR`` (ci/gpu.sh's steps)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("warmup", help="compile the training step's kernels")
    c = sub.add_parser("compare", help="CPU vs GPU on every primitive, per op")
    c.add_argument("--out", required=True, help="folder for compare_backends.txt/.json")
    c.add_argument("--dtypes", default="float64,float32")
    args = p.parse_args(argv)
    if args.cmd == "warmup":
        result = warm_up()
        print(json.dumps(result, indent=1))
        return 1 if result["fused_kernel_failures"] and not is_standin() else 0
    return 1 if compare_every_primitive(args.out, dtypes=tuple(args.dtypes.split(","))) else 0


if __name__ == "__main__":
    sys.exit(main())
