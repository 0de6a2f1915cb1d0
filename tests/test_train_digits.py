"""examples/train_digits.py trains briefly to well above chance and its checkpoint loads."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gradx as gx

pytest.importorskip("sklearn", reason="the digits example needs scikit-learn")
pytest.importorskip("tqdm", reason="the digits example needs tqdm")

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "train_digits.py"


def _example():
    spec = importlib.util.spec_from_file_location("train_digits", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_brief_training_and_checkpoint(backend, tmp_path):
    td = _example()
    ck = tmp_path / "sub" / "digits.npz"
    result = td.main(["--backend", backend, "--epochs", "2", "--seed", "1", "--no-progress",
                      "--checkpoint", str(ck)])
    assert result["backend"] == backend
    assert result["test_accuracy"] > 0.8  # chance is 0.1
    assert ck.exists()

    saved = gx.load(ck, backend="numpy")
    assert saved["test_accuracy"] == result["test_accuracy"]
    assert saved["args"]["epochs"] == 2
    with gx.use_backend("numpy"):
        model = td.make_model(result["hidden"])
        model.load_state_dict(saved["model"])
        _, x_te, _, y_te = td.load_data(saved["args"]["test_size"], saved["args"]["seed"])
        acc = td.accuracy(model, gx.tensor(x_te), gx.tensor(y_te))
        opt = gx.optim.Adam(model.parameters())
        opt.load_state_dict(saved["optimizer"])
    assert acc == result["test_accuracy"]
    for a, b in zip(model.parameters(), result["model"].parameters(), strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_runs_as_a_script(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH",
                                                                                  "")])}
    ck = tmp_path / "digits.npz"
    done = subprocess.run([sys.executable, str(SCRIPT), "--epochs", "1", "--checkpoint", str(ck)],
                          capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "test accuracy" in done.stdout and "wall time" in done.stdout
    assert "epoch" in done.stderr  # the tqdm bar
    assert ck.exists()
