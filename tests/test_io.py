"""gx.save / gx.load: round trips, other backends, atomic writes, damaged files."""

from __future__ import annotations

import math
import os
import zipfile

import numpy as np
import pytest

import gradx as gx
import gradx.nn as nn
from gradx.io import CheckpointError

LOAD_BACKENDS = ["numpy", "array_api_strict"]


def _same(a, b):
    """Deep equality of decoded checkpoints: containers, key types, scalars, arrays."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert list(a) == list(b) and [type(k) for k in a] == [type(k) for k in b]
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _same(x, y)
    elif isinstance(a, gx.Tensor):
        assert str(a.dtype).rsplit(".", 1)[-1] == str(b.dtype).rsplit(".", 1)[-1]
        assert a.requires_grad == b.requires_grad
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b


def _sample():
    return {
        "w": gx.tensor(np.arange(6, dtype=np.float32).reshape(2, 3), requires_grad=True),
        "w64": gx.tensor(np.linspace(0, 1, 4)),
        "labels": gx.tensor(np.array([3, 1, 4], dtype=np.int64)),
        "scalar": gx.tensor(np.float32(2.5)),
        "state": {0: {"step": 3, "exp_avg": gx.zeros((2,))}, 7: {}},
        "groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "nesterov": False, "name": None}],
        "host": np.array([[1, 2]], dtype=np.int32),
        "host_scalar": np.float64(0.5),
        "misc": (1, "two", 3.0, float("nan"), float("inf"), True, None, []),
    }


@pytest.mark.parametrize("dst", LOAD_BACKENDS)
def test_round_trip_onto_any_backend(backend, dst, tmp_path):
    obj = _sample()
    gx.save(obj, tmp_path / "ck.npz")
    back = gx.load(tmp_path / "ck.npz", backend=dst)
    _same(back, obj)
    assert back["w"].backend.name == dst and back["w"].is_leaf


def test_load_uses_the_current_backend_by_default(backend, tmp_path):
    with gx.use_backend("numpy"):
        gx.save(gx.ones((2,)), tmp_path / "t.npz")
    assert gx.load(tmp_path / "t.npz").backend.name == backend


def test_file_holds_no_pickle(tmp_path):
    gx.save(_sample(), tmp_path / "ck.npz")
    with np.load(tmp_path / "ck.npz", allow_pickle=False) as npz:
        assert "__gradx__" in npz.files
        for k in npz.files:
            assert npz[k].dtype != object


def test_model_and_optimizer_checkpoint(backend, tmp_path):
    gx.random.seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = gx.optim.Adam(model.parameters(), lr=0.01)
    model(gx.ones((3, 4))).sum().backward()
    opt.step()
    gx.save({"model": model.state_dict(), "opt": opt.state_dict()}, tmp_path / "m.npz")
    ck = gx.load(tmp_path / "m.npz", backend="numpy")
    with gx.use_backend("numpy"):
        gx.random.seed(1)
        other = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        other.load_state_dict(ck["model"])
        opt2 = gx.optim.Adam(other.parameters())
        opt2.load_state_dict(ck["opt"])
    assert opt2.state_dict()["state"][0]["step"] == 1
    for a, b in zip(model.parameters(), other.parameters(), strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_atomic_replace_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "ck.npz"
    gx.save({"v": gx.ones((2,))}, path)
    gx.save({"v": gx.zeros((3,))}, path)
    assert os.listdir(tmp_path) == ["ck.npz"]
    np.testing.assert_array_equal(gx.load(path)["v"].numpy(), [0.0, 0.0, 0.0])


def test_failed_save_keeps_the_old_file(tmp_path):
    path = tmp_path / "ck.npz"
    gx.save({"v": gx.ones((2,))}, path)
    with pytest.raises(CheckpointError, match=r"obj\['bad'\]\[1\] of type object"):
        gx.save({"v": gx.zeros((2,)), "bad": [1, object()]}, path)
    with pytest.raises(CheckpointError, match="save a model's state_dict"):
        gx.save(nn.Linear(2, 2), path)
    assert os.listdir(tmp_path) == ["ck.npz"]
    np.testing.assert_array_equal(gx.load(path)["v"].numpy(), [1.0, 1.0])


def _truncated(path):
    gx.save({"v": gx.ones((100,))}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _foreign_npz(path):
    with open(path, "wb") as f:
        np.savez(f, x=np.ones(3))


def _garbage(path):
    path.write_bytes(b"not a checkpoint at all\n" * 10)


def _plain_npy(path):
    with open(path, "wb") as f:
        np.save(f, np.ones(3))


def _bad_metadata(path):
    with zipfile.ZipFile(path, "w") as z, z.open("__gradx__.npy", "w") as f:
        np.lib.format.write_array(f, np.frombuffer(b'{"format": "other"}', np.uint8))


DAMAGED = [
    ("truncated", _truncated, "truncated or not a gradx checkpoint"),
    ("foreign-npz", _foreign_npz, "not a gradx checkpoint"),
    ("plain-npy", _plain_npy, "single NumPy array"),
    ("garbage", _garbage, "truncated or not a gradx checkpoint"),
    ("bad-metadata", _bad_metadata, "unknown format"),
]


@pytest.mark.parametrize("case", DAMAGED, ids=[c[0] for c in DAMAGED])
def test_damaged_files_give_a_clear_error(case, tmp_path):
    _, make, match = case
    path = tmp_path / "ck.npz"
    make(path)
    with pytest.raises(CheckpointError, match=match) as info:
        gx.load(path)
    assert isinstance(info.value, gx.GradxError) and str(path) in str(info.value)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        gx.load(tmp_path / "nope.npz")
