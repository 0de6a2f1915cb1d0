"""Workloads measured in child processes: peak memory per framework, and the digits example."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._threads import thread_env
from benchmarks.report import add_ratios, row

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "examples" / "train_digits.py"


def child_env(threads: int) -> dict[str, str]:
    """The parent's environment with pinned threads, the repo importable, and large blocks
    always mmapped, so memory freed by one step is returned instead of counted as baseline."""
    env = {**os.environ, **thread_env(threads)}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in
                                         env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["MALLOC_MMAP_THRESHOLD_"] = "131072"
    return env


def memory_rows(frameworks: list[str], size: dict[str, int], threads: int,
                floor: str = "numpy", log: Any = print) -> list[dict[str, Any]]:
    """One ``benchmarks.memory_worker`` process per framework; gradient norms vs the floor's."""
    results: dict[str, dict[str, Any]] = {}
    for fw in dict.fromkeys([floor, *frameworks]):
        cmd = [sys.executable, "-m", "benchmarks.memory_worker", fw, "--threads", str(threads)]
        cmd += [f"--{k}={v}" for k, v in size.items()]
        proc = subprocess.run(cmd, cwd=ROOT, env=child_env(threads), capture_output=True,
                              text=True)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode or not lines:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            results[fw] = {"error": f"worker exit {proc.returncode}: {tail}"}
        else:
            results[fw] = json.loads(lines[-1])
        log(f"  memory: {fw} done")
    ref = results[floor].get("grad_norms")
    rows = []
    for fw in frameworks:
        res = results[fw]
        if "error" in res:
            rows.append(row("memory", fw, "cpu", "error", res["error"]))
            continue
        why = _norms_mismatch(res["grad_norms"], ref)
        if why:
            rows.append(row("memory", fw, "cpu", "grad mismatch", why))
            continue
        rows.append(row("memory", fw, "cpu", unit="MiB", samples=[res["peak_growth_mib"]],
                        baseline_mib=res["baseline_mib"], method=res["method"]))
    add_ratios(rows, floor, None)
    return rows


def _norms_mismatch(got: list[float], want: list[float] | None) -> str | None:
    """Full gradients of 512 MiB do not cross processes; their per-tensor norms do."""
    if want is None:
        return "the floor's memory run failed, so gradients cannot be checked"
    g, w = np.asarray(got), np.asarray(want)
    if g.shape != w.shape:
        return f"{g.size} gradients, the floor has {w.size}"
    bad = np.abs(g - w) > 1e-3 * np.abs(w) + 1e-5 * np.abs(w).max()
    if bad.any():
        i = int(np.argmax(bad))
        return f"gradient {i} norm {g[i]:.6g}, the floor's {w[i]:.6g}"
    return None


def digits_rows(repeats: int, threads: int, epochs: int = 20,
                log: Any = print) -> list[dict[str, Any]]:
    """Seconds per epoch of examples/train_digits.py on gradx's numpy backend.

    Each sample is (wall time of a 1 + ``epochs`` run - wall time of a 1-epoch run) / epochs,
    so start-up, imports and data loading cancel out.
    """
    if not DIGITS.exists():
        return [row("train_digits", "gradx", "cpu", "skipped",
                    "examples/train_digits.py does not exist yet")]
    quiet = ["--no-progress"] if "--no-progress" in DIGITS.read_text() else []
    samples = []
    for _ in range(repeats):
        times = []
        for n in (1, 1 + epochs):
            cmd = [sys.executable, str(DIGITS), "--backend", "numpy", "--epochs", str(n),
                   "--seed", "0", *quiet]
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:  # its checkpoint lands there
                proc = subprocess.run(cmd, cwd=tmp, env=child_env(threads),
                                      capture_output=True, text=True)
            times.append(time.perf_counter() - t0)
            if proc.returncode:
                tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                return [row("train_digits", "gradx", "cpu", "error",
                            f"train_digits.py --epochs {n} exit {proc.returncode}: {tail}")]
        samples.append((times[1] - times[0]) / epochs)
    log("  train_digits: done")
    return [row("train_digits", "gradx", "cpu", unit="s/epoch", samples=samples,
                epochs=[1, 1 + epochs])]
