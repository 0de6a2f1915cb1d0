"""gx.load on damaged and hostile files: every unreadable file is a CheckpointError that
names it, never another exception and never a wrong value; every size a file claims is
checked against the file before anything is allocated. A seeded corruption fuzz of a real
checkpoint, deeply nested metadata, forged array and zip headers, foreign compression
methods and ill-typed metadata."""

from __future__ import annotations

import io
import json
import struct
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

import gradx as gx
from gradx.errors import CheckpointError


def _state() -> dict:
    rng = np.random.default_rng(0)
    with gx.default_dtype("float64"):
        model = gx.nn.Sequential(gx.nn.Linear(3, 4), gx.nn.Tanh(), gx.nn.Linear(4, 2))
    return {"model": model.state_dict(), "step": 12, "name": "run-1",
            "opt": {"lr": 0.01, "betas": (0.9, 0.999), "m": [gx.tensor(rng.standard_normal(
                (4, 3)).astype(np.float32))], "count": np.int64(5)}}


def _same(a, b) -> bool:
    if isinstance(a, gx.Tensor):
        return (isinstance(b, gx.Tensor) and a.numpy().dtype == b.numpy().dtype
                and np.array_equal(a.numpy(), b.numpy()))
    if isinstance(a, np.ndarray | np.generic):
        return type(a) is type(b) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    return type(a) is type(b) and a == b


def _refused(path, *words) -> str:
    with pytest.raises(CheckpointError) as info:
        gx.load(path)
    msg = str(info.value)
    assert str(path) in msg, msg
    assert not words or any(w in msg for w in words), msg
    return msg


def _corrupt(data: bytes, rng: np.random.Generator) -> bytes:
    b = bytearray(data)
    kind = rng.integers(5)
    if kind == 0:  # flip a few bits
        for _ in range(rng.integers(1, 4)):
            b[rng.integers(len(b))] ^= 1 << int(rng.integers(8))
    elif kind == 1:  # truncate
        b = b[:rng.integers(len(b))]
    elif kind == 2:  # overwrite a few bytes with random ones
        at = rng.integers(len(b))
        b[at:at + 4] = rng.bytes(4)
    elif kind == 3:  # insert bytes
        at = rng.integers(len(b))
        b[at:at] = rng.bytes(int(rng.integers(1, 9)))
    else:  # delete a span
        at = rng.integers(len(b))
        del b[at:at + int(rng.integers(1, 9))]
    return bytes(b)


def test_seeded_corruption_fuzz_gives_checkpoint_errors_or_the_saved_values(tmp_path):
    state, path = _state(), tmp_path / "real.npz"
    gx.save(state, path)
    data = path.read_bytes()
    rng = np.random.default_rng(20)
    outcomes = {"refused": 0, "loaded intact": 0}
    bad = tmp_path / "bad.npz"
    start = time.perf_counter()
    for i in range(400):
        bad.write_bytes(_corrupt(data, rng))
        try:
            got = gx.load(bad)
        except CheckpointError as exc:
            assert str(bad) in str(exc)
            outcomes["refused"] += 1
            continue
        except Exception as exc:  # noqa: BLE001  (the defect: anything else escaping)
            pytest.fail(f"corruption #{i} escaped as {type(exc).__name__}: {exc}")
        assert _same(state, got), f"corruption #{i} loaded different values"
        outcomes["loaded intact"] += 1  # a flip in a field zip does not check (a timestamp)
    elapsed = time.perf_counter() - start
    print(f"\n[io] 400 corruptions in {elapsed:.1f} s: {outcomes}")
    assert outcomes["refused"] > 300 and elapsed < 60


def _deep(n: int) -> bytes:
    return ('{"format": "gradx-checkpoint", "version": 1, "tree": '
            + '{"t": "list", "items": [' * n + "1" + "]}" * n + "}").encode()


@pytest.mark.parametrize("depth", [101, 300, 100_000])
def test_deeply_nested_metadata_is_refused(tmp_path, depth):
    path = tmp_path / "deep.npz"
    np.savez(path, __gradx__=np.frombuffer(_deep(depth), np.uint8))
    _refused(path, "nest")


def test_nesting_limit_is_the_same_in_save_and_load(tmp_path):
    path = tmp_path / "deep.npz"
    np.savez(path, __gradx__=np.frombuffer(_deep(100), np.uint8))
    assert gx.load(path) is not None
    deepest: list = [1]
    for _ in range(99):
        deepest = [deepest]
    gx.save(deepest, path)
    assert gx.load(path) == deepest
    with pytest.raises(CheckpointError, match="nested more than 100"):
        gx.save([deepest], path)


def _meta(tree) -> np.ndarray:
    return np.frombuffer(json.dumps({"format": "gradx-checkpoint", "version": 1,
                                     "tree": tree}).encode(), np.uint8)


def _npy(header: dict, payload: bytes) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + payload


def test_forged_array_header_claiming_terabytes_allocates_nothing(tmp_path):
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as z:
        with z.open("__gradx__.npy", "w") as f:
            np.lib.format.write_array(f, _meta({"t": "tensor", "key": "a0"}))
        z.writestr("a0.npy", _npy({"descr": "<f8", "fortran_order": False,
                                   "shape": (2**40,)}, b"\0" * 64))  # claims 8 TiB
    tracemalloc.start()
    try:
        msg = _refused(path, "claims")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "8796093022208 bytes" in msg and peak < 8 * 2**20


def _patch_central(data: bytes, name: bytes, offset: int, fmt: str, value: int) -> bytes:
    """``data`` with a field of ``name``'s central directory record (and, for the method,
    its local header) set to ``value``."""
    b = bytearray(data)
    at = b.index(b"PK\x01\x02")
    while b[at + 46:at + 46 + len(name)] != name:
        at = b.index(b"PK\x01\x02", at + 4)
    struct.pack_into(fmt, b, at + offset, value)
    if offset == 10:  # compression method: the local header too
        local = struct.unpack_from("<I", b, at + 42)[0]
        struct.pack_into(fmt, b, local + 8, value)
    return bytes(b)


def test_forged_zip_sizes_and_unknown_compression_methods_are_refused(tmp_path):
    path = tmp_path / "real.npz"
    gx.save(_state(), path)
    data = path.read_bytes()
    cases = {
        "stored_claims_2GiB": _patch_central(data, b"a0.npy", 24, "<I", 2**31 - 1),
        "compressed_claims_2GiB": _patch_central(data, b"a0.npy", 20, "<I", 2**31 - 1),
        "deflate64": _patch_central(data, b"a0.npy", 10, "<H", 9),  # NotImplementedError
        "aes": _patch_central(data, b"a0.npy", 10, "<H", 99),
        "bzip2": _patch_central(data, b"__gradx__.npy", 10, "<H", 12),
    }
    for name, forged in cases.items():
        bad = tmp_path / f"{name}.npz"
        bad.write_bytes(forged)
        _refused(bad, "claims", "compression method", "truncated")


def test_deflated_entry_claiming_an_impossible_ratio_is_refused(tmp_path):
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        with z.open("__gradx__.npy", "w") as f:
            np.lib.format.write_array(f, _meta({"t": "ndarray", "key": "a0"}))
        z.writestr("a0.npy", _npy({"descr": "<f8", "fortran_order": False,
                                   "shape": (2**20,)}, b"\0" * 8 * 2**20))
    data = path.read_bytes()
    path.write_bytes(_patch_central(data, b"a0.npy", 24, "<I", 2**32 - 2))
    _refused(path, "claims")


@pytest.mark.parametrize("header", [
    {"format": "gradx-checkpoint", "version": "1", "tree": None},  # TypeError before
    {"format": "gradx-checkpoint", "version": 1.5, "tree": None},
    {"format": "gradx-checkpoint", "version": 1, "tree": [1, 2]},
    {"format": "gradx-checkpoint", "version": 1, "tree": {"t": "dict", "items": [[[1], 2]]}},
    {"format": "gradx-checkpoint", "version": 1, "tree": {"t": "dict", "items": 3}},
    {"format": "gradx-checkpoint", "version": 1, "tree": {"t": "list", "items": [[1, 2]]}},
    {"format": "gradx-checkpoint", "version": 1, "tree": {"t": "tensor", "key": ["a0"]}},
    {"format": "gradx-checkpoint", "version": 1, "tree": {"items": []}},
    {"format": "gradx-checkpoint", "version": 1,
     "tree": {"t": "tensor", "key": "a0", "requires_grad": True}},  # an integer tensor
    {"format": "gradx-checkpoint"},
    ["gradx-checkpoint"],
], ids=lambda h: json.dumps(h)[:60])
def test_ill_typed_metadata_is_refused(tmp_path, header):
    path = tmp_path / "typed.npz"
    np.savez(path, __gradx__=np.frombuffer(json.dumps(header).encode(), np.uint8),
             a0=np.arange(3))
    _refused(path)


def test_foreign_entries_are_refused(tmp_path):
    p = tmp_path / "pickled.npz"
    with zipfile.ZipFile(p, "w") as z:
        with z.open("__gradx__.npy", "w") as f:
            np.lib.format.write_array(f, _meta({"t": "ndarray", "key": "a0"}))
        with z.open("a0.npy", "w") as f:
            np.lib.format.write_array(f, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    _refused(p, "Python objects")
    p = tmp_path / "extra.npz"
    with zipfile.ZipFile(p, "w") as z:
        with z.open("__gradx__.npy", "w") as f:
            np.lib.format.write_array(f, _meta(None))
        z.writestr("run.py", "print('hello')")
    _refused(p, "not a gradx checkpoint")
    p = tmp_path / "v3.npz"
    with zipfile.ZipFile(p, "w") as z:
        with z.open("__gradx__.npy", "w") as f:
            np.lib.format.write_array(f, _meta(None))
        with z.open("a0.npy", "w") as f:
            np.lib.format.write_array(f, np.ones(2), version=(3, 0))
    _refused(p, "version")


def test_every_kind_of_array_still_round_trips(tmp_path, backend):
    path = tmp_path / "kinds.npz"
    obj = {"fortran": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
           "empty": np.zeros((0, 3), np.float32), "scalar": np.float16(2.5),
           "complex": np.array([1 + 2j]), "bool": np.array([True, False]),
           "ints": np.arange(5, dtype=np.int8), "t": gx.tensor(np.ones((2, 2))),
           "g": gx.tensor(np.ones(2)).requires_grad_(), "none": None, "s": "text"}
    gx.save(obj, path)
    got = gx.load(path)
    for k in ("fortran", "empty", "scalar", "complex", "bool", "ints", "none", "s"):
        assert _same(obj[k], got[k]), k
    assert got["fortran"].flags.f_contiguous and got["fortran"].flags.writeable
    assert got["t"].backend.name == backend and got["g"].requires_grad
    np.testing.assert_array_equal(got["t"].numpy(), np.ones((2, 2)))


def test_a_failure_that_is_not_the_files_fault_goes_through(tmp_path, monkeypatch):
    path = tmp_path / "ok.npz"
    gx.save({"w": gx.tensor(np.ones(3))}, path)

    def out_of_memory(*args, **kwargs):
        raise MemoryError("device out of memory")

    monkeypatch.setattr(gx, "tensor", out_of_memory)
    with pytest.raises(MemoryError, match="device out of memory"):
        gx.load(path)
