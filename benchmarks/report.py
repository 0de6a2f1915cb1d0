"""Result rows, their statistics and ratios, the printed table and the JSON file."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import sys
import time
from typing import Any

import numpy as np

from benchmarks.data import tiny_ops_primitives


def row(workload: str, framework: str, device: str, status: str = "ok", reason: str = "",
        unit: str = "s", samples: list[float] | None = None, **extra: Any) -> dict[str, Any]:
    """One table cell; ``samples`` are raw measurements (seconds per call, MiB, ...)."""
    r: dict[str, Any] = {"workload": workload, "framework": framework, "device": device,
                         "status": status, "reason": reason, "unit": unit,
                         "samples": list(samples or []), "extra": dict(extra)}
    if samples:
        q1, med, q3 = np.percentile(samples, [25, 50, 75])
        r.update(median=float(med), q1=float(q1), q3=float(q3),
                 min=float(min(samples)), max=float(max(samples)))
    return r


def add_ratios(rows: list[dict[str, Any]], floor: str, size: dict[str, int] | None) -> None:
    """Ratios of each median to the floor's and to PyTorch's, plus tiny_ops per-primitive µs."""
    by_fw = {r["framework"]: r for r in rows if r["status"] == "ok"}
    base = by_fw.get(floor, {}).get("median")
    ref = by_fw.get("torch", {}).get("median")
    for r in rows:
        if r["status"] != "ok":
            continue
        r["ratio_floor"] = r["median"] / base if base else None
        r["ratio_torch"] = r["median"] / ref if ref else None
        if r["workload"] == "tiny_ops" and size:
            n = tiny_ops_primitives(size["steps"])
            r["extra"]["primitives"] = n
            r["extra"]["us_per_primitive"] = r["median"] / n * 1e6
            if base:
                r["extra"]["excess_us_per_primitive"] = (r["median"] - base) / n * 1e6


def _fmt_value(v: float, unit: str) -> str:
    if unit in ("s", "s/epoch"):
        suffix = "/epoch" if unit == "s/epoch" else ""
        if v < 1e-3:
            return f"{v * 1e6:.1f} µs{suffix}"
        if v < 1.0:
            return f"{v * 1e3:.2f} ms{suffix}"
        return f"{v:.3f} s{suffix}"
    return f"{v:.1f} {unit}"


def _fmt_spread(r: dict[str, Any]) -> str:
    if len(r["samples"]) < 2:
        return "-"
    return f"{_fmt_value(r['q1'], r['unit'])} – {_fmt_value(r['q3'], r['unit'])}"


def _fmt_ratio(x: float | None) -> str:
    return f"{x:.2f}" if x is not None else "-"


def _notes(r: dict[str, Any]) -> str:
    if r["status"] != "ok":
        return r["reason"]
    e = r["extra"]
    parts = []
    if "us_per_primitive" in e:
        parts.append(f"{e['us_per_primitive']:.2f} µs/primitive")
    if "excess_us_per_primitive" in e:
        parts.append(f"{e['excess_us_per_primitive']:+.2f} µs/primitive over floor")
    if "number" in e:
        parts.append(f"{len(r['samples'])}x{e['number']} calls")
    if "baseline_mib" in e:
        parts.append(f"baseline {e['baseline_mib']:.0f} MiB")
    if "epochs" in e:
        parts.append(f"{e['epochs'][1]}-epoch minus {e['epochs'][0]}-epoch run, "
                     f"{len(r['samples'])} samples")
    return ", ".join(parts)


def table(rows: list[dict[str, Any]]) -> str:
    """An aligned text table: median, interquartile range, ratios, notes."""
    head = ["workload", "framework", "median", "IQR (q1 – q3)", "x floor", "x torch", "notes"]
    lines = [head]
    for r in rows:
        ok = r["status"] == "ok"
        lines.append([
            r["workload"], r["framework"],
            _fmt_value(r["median"], r["unit"]) if ok else r["status"],
            _fmt_spread(r) if ok else "-",
            _fmt_ratio(r.get("ratio_floor")), _fmt_ratio(r.get("ratio_torch")), _notes(r),
        ])
    widths = [max(len(line[i]) for line in lines) for i in range(len(head) - 1)]
    out = []
    for i, line in enumerate(lines):
        cells = [c.ljust(w) if j < 2 else c.rjust(w) for j, (c, w) in enumerate(
            zip(line[:-1], widths, strict=True))]
        out.append("  ".join(cells + [line[-1]]).rstrip())
        if i == 0:
            out.append("-" * len(out[0]))
    return "\n".join(out)


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def thread_pools() -> dict[str, Any]:
    """Threads each loaded library will actually use, to show the pinning took effect."""
    out: dict[str, Any] = {}
    try:
        from threadpoolctl import threadpool_info

        for pool in threadpool_info():
            name = f"{pool['internal_api']}:{os.path.basename(pool['filepath'])}"
            out[name] = pool["num_threads"]
    except ImportError:
        out["blas"] = "threadpoolctl not installed"
    if "torch" in sys.modules:
        out["torch.get_num_threads"] = sys.modules["torch"].get_num_threads()
    return out


def hot_path() -> str:
    """Which gradx hot path the numbers are from: the compiled one or the Python fallback."""
    import gradx

    return "compiled" if gradx._hot.compiled_enabled() else "python"


def meta(args: Any) -> dict[str, Any]:
    """What a reader needs to reproduce or compare the run."""
    return {
        "argv": sys.argv,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": _cpu(),
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "repeats": args.repeats,
        "device": args.device,
        "gradx_hot_path": hot_path(),
        "versions": {d: _version(d) for d in
                     ("gradx", "numpy", "torch", "autograd", "jax", "jaxlib", "cupy")},
        "thread_env": {k: os.environ.get(k) for k in
                       ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                        "XLA_FLAGS")},
        "thread_pools": thread_pools(),
    }


def write_json(path: str, args: Any, rows: list[dict[str, Any]]) -> None:
    """All raw samples and derived numbers, for plotting or a RESULTS page."""
    with open(path, "w") as f:
        json.dump({"meta": meta(args), "results": rows}, f, indent=1)
        f.write("\n")
