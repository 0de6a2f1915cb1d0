"""The benchmark suite measures the right thing: floors are correct, every cell agrees with
its floor, and the command line runs end to end. Nothing here asserts on a timing."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gradx as gx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the benchmarks package lives beside gradx, not inside it
    sys.path.insert(0, str(ROOT))

from benchmarks import cells, floor  # noqa: E402
from benchmarks.data import SMALL, make_data  # noqa: E402
from benchmarks.harness import timed_rows  # noqa: E402
from benchmarks.report import table  # noqa: E402

GRAD_WORKLOADS = ("tiny_ops", "mlp_step", "deep_narrow", "hvp", "memory")


def _f64(data: dict) -> dict:
    """The same data in float64, so finite differences are accurate."""
    conv = lambda a: a.astype(np.float64) if a.dtype == np.float32 else a
    return {k: [conv(p) for p in v] if k == "params" else conv(v) for k, v in data.items()}


def _tiny_loss(y0: np.ndarray, params: list) -> float:
    half = len(params) // 2
    y = y0
    for w, b in zip(params[:half], params[half:], strict=True):
        y = np.tanh(y * w + b)
    return float(y.sum())


def _directional_check(loss, params: list, grads: list, seed: int = 1) -> None:
    """<grad, u> against a central difference of the loss along a random direction u."""
    rng = np.random.default_rng(seed)
    for _ in range(3):
        u = [rng.standard_normal(p.shape) for p in params]
        eps = 1e-6
        up = loss([p + eps * d for p, d in zip(params, u, strict=True)])
        down = loss([p - eps * d for p, d in zip(params, u, strict=True)])
        fd = (up - down) / (2 * eps)
        exact = sum(float(np.sum(g * d)) for g, d in zip(grads, u, strict=True))
        assert exact == pytest.approx(fd, rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("workload", GRAD_WORKLOADS)
def test_floor_gradients_match_finite_differences(workload: str) -> None:
    d = _f64(make_data(workload, SMALL[workload]))
    ps = d["params"]
    if workload == "tiny_ops":
        half = len(ps) // 2
        grads = floor.tiny_ops_grads(np, d["y0"], ps[:half], ps[half:])
        _directional_check(lambda q: _tiny_loss(d["y0"], q), ps, grads)
    elif workload == "mlp_step":
        grads = floor.mlp_step_grads(np, d["x"], d["labels"], ps)
        _directional_check(lambda q: floor.mlp_loss(np, d["x"], d["labels"], q), ps, grads)
    elif workload in ("deep_narrow", "memory"):
        act = "tanh" if workload == "deep_narrow" else "relu"
        grads = floor.stack_grads(np, d["x"], d["y"], ps, act)
        _directional_check(lambda q: floor.stack_loss(np, d["x"], d["y"], q, act), ps, grads)
    else:
        (hv,) = floor.hvp(np, d["a"], d["x"], d["v"])
        eps = 1e-5
        fd = (floor.logsumexp_grad(np, d["a"], d["x"] + eps * d["v"])
              - floor.logsumexp_grad(np, d["a"], d["x"] - eps * d["v"])) / (2 * eps)
        np.testing.assert_allclose(hv, fd, rtol=1e-6, atol=1e-9)
        grads, ps = [hv], [d["x"]]
    assert [g.shape for g in grads] == [p.shape for p in ps]


def _reference(workload: str) -> tuple[dict, list]:
    data = make_data(workload, SMALL[workload])
    ref = cells.build_cell(workload, "numpy", data)
    ref.step()
    return data, ref.grads()


def _assert_cell_matches_floor(workload: str, framework: str) -> None:
    data, want = _reference(workload)
    cell = cells.build_cell(workload, framework, data)
    cell.step()
    got = cell.grads()
    assert [g.dtype for g in got] == [w.dtype for w in want]
    assert cells.grad_mismatch(got, want) is None
    cell.step()  # a second step must not accumulate into the first one's gradients
    assert cells.grad_mismatch(cell.grads(), want) is None


@pytest.mark.parametrize("workload", GRAD_WORKLOADS)
def test_gradx_cell_matches_floor(workload: str) -> None:
    _assert_cell_matches_floor(workload, "gradx")


@pytest.mark.parametrize("framework", ["torch", "autograd", "jax"])
@pytest.mark.parametrize("workload", GRAD_WORKLOADS)
def test_peer_cell_matches_floor(workload: str, framework: str) -> None:
    pytest.importorskip(framework)
    _assert_cell_matches_floor(workload, framework)


def test_grad_mismatch_is_reported_and_not_timed() -> None:
    """A cell whose gradients disagree gets the "grad mismatch" status and no samples."""

    def build(workload: str, framework: str, data: dict) -> cells.Cell:
        cell = cells.build_cell(workload, "numpy", data)
        if framework == "wrong":
            right = cell.grads
            cell.grads = lambda: [g * 1.01 for g in right()]
        return cell

    rows = timed_rows("mlp_step", ["numpy", "wrong"], "numpy", build, SMALL["mlp_step"],
                      repeats=2, warmup=0, min_time=0.0, log=lambda msg: None)
    by_fw = {r["framework"]: r for r in rows}
    assert by_fw["numpy"]["status"] == "ok" and len(by_fw["numpy"]["samples"]) == 2
    assert by_fw["wrong"]["status"] == "grad mismatch" and not by_fw["wrong"]["samples"]
    assert "grad mismatch" in table(rows)


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}


def test_run_pins_threads_before_numpy_loads() -> None:
    code = "import sys, benchmarks.run; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(),
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_run_end_to_end_writes_json(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    cmd = [sys.executable, "-m", "benchmarks.run", "--workloads", "tiny_ops", "--repeats", "2",
           "--json", str(path), "--small", "--min-time", "0.001", "--warmup", "1",
           "--frameworks", "numpy,gradx"]  # peers are covered above; their imports are slow
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "tiny_ops" in proc.stdout and "x floor" in proc.stdout
    report = json.loads(path.read_text())
    assert report["meta"]["threads"] == 1
    # the hot path the numbers come from is stated, and is the one this process would use
    # (the child inherits GRADX_PURE_PYTHON)
    expected = "compiled" if gx._hot.compiled_enabled() else "python"
    assert report["meta"]["gradx_hot_path"] == expected
    assert f"gradx hot path {expected}" in proc.stdout
    rows = {r["framework"]: r for r in report["results"]}
    assert rows["numpy"]["status"] == "ok" and len(rows["numpy"]["samples"]) == 2
    assert rows["numpy"]["ratio_floor"] == pytest.approx(1.0)
    assert rows["gradx"]["status"] == "ok", rows["gradx"]["reason"]
    assert "excess_us_per_primitive" in rows["gradx"]["extra"]


@pytest.mark.parametrize("framework", ["numpy", "gradx"])
def test_memory_worker_reports_growth_and_grad_norms(framework: str) -> None:
    cmd = [sys.executable, "-m", "benchmarks.memory_worker", framework,
           "--layers", "2", "--width", "8", "--batch", "4"]
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=60, check=True)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "error" not in out, out
    assert out["peak_growth_mib"] >= 0 and len(out["grad_norms"]) == 4


def test_device_cupy_skips_cleanly_without_cupy() -> None:
    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy is installed; the skip path cannot be exercised here")
    cmd = [sys.executable, "-m", "benchmarks.run", "--device", "cupy", "--repeats", "1"]
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "skipping --device cupy: CuPy not installed" in proc.stdout


def test_instruction_counts_difference_two_runs_and_ratio_to_the_floor(monkeypatch, capsys):
    from benchmarks import instructions

    # instructions = start-up + per-step cost x (steps + 1 warm-up); gradx costs 3x the floor
    per_step = {"numpy": 1_000, "gradx": 3_000}
    monkeypatch.setattr(instructions.shutil, "which", lambda name: "/usr/bin/valgrind")
    monkeypatch.setattr(instructions, "count",
                        lambda w, f, n: 50_000 + per_step[f] * (n + 1))
    assert instructions.main(["--workloads", "hvp", "--few", "1", "--many", "5"]) == 0
    out = capsys.readouterr().out
    assert "hvp          numpy               1,000" in out
    assert "hvp          gradx               3,000  x floor 3.00" in out


def test_instruction_count_parses_callgrind_and_reports_failures(monkeypatch):
    from benchmarks import instructions

    class Done:
        def __init__(self, code: int, err: str) -> None:
            self.returncode, self.stderr = code, err

    monkeypatch.setattr(instructions.subprocess, "run",
                        lambda *a, **k: Done(0, "==7== Events    : Ir\n==7== Collected : 424242\n"))
    assert instructions.count("tiny_ops", "gradx", 3) == 424242
    monkeypatch.setattr(instructions.subprocess, "run", lambda *a, **k: Done(1, "boom"))
    with pytest.raises(RuntimeError, match="tiny_ops/gradx failed"):
        instructions.count("tiny_ops", "gradx", 3)


def test_instructions_without_valgrind_says_how_to_get_it(monkeypatch, capsys):
    from benchmarks import instructions

    monkeypatch.setattr(instructions.shutil, "which", lambda name: None)
    assert instructions.main(["--workloads", "tiny_ops"]) == 2
    assert "valgrind is not installed" in capsys.readouterr().err


def test_instructions_child_runs_the_cell_and_rejects_bad_arguments():
    from benchmarks import instructions

    assert instructions.main(["--child", "tiny_ops", "gradx", "0"]) == 0
    for bad in (["--workloads", "memory"], ["--few", "4", "--many", "4"]):
        with pytest.raises(SystemExit):
            instructions.parse_args(bad)
