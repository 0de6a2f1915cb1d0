"""Checkpoint faults: a save killed with SIGKILL while writing, or after writing but
before the rename, leaves the previous checkpoint loadable and unchanged; a save that
fails inside the process leaves no temporary file; truncated, bit-flipped and foreign
files give a gradx error that names the file, never a wrong value.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

import gradx as gx

io = pytest.importorskip("gradx.io", reason="gradx.io (gx.save / gx.load) is not written yet")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(gx.__file__)))
WRITER = r"""
import os, sys, time
import numpy as np
import gradx as gx

path, mode = sys.argv[1], sys.argv[2]
real_fdopen, real_fsync = os.fdopen, os.fsync


class SlowFile:  # a slow disk: every write is flushed, then the writer waits a moment
    def __init__(self, f):
        self._f = f

    def write(self, data):
        n = self._f.write(data)
        self._f.flush()
        time.sleep(0.2)
        return n

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._f.__exit__(*exc)


def fsync_then_hang(fd):
    real_fsync(fd)
    print("written", flush=True)
    time.sleep(3600)


if mode == "mid_write":
    os.fdopen = lambda *a, **k: SlowFile(real_fdopen(*a, **k))
else:
    os.fsync = fsync_then_hang
big = {"w": gx.tensor(np.full((4 * 1024, 4 * 1024), 7.0, dtype=np.float32)), "step": 99}
print("saving", flush=True)
gx.save(big, path)
print("saved", flush=True)
"""


def _temps(path):
    d, name = os.path.split(path)
    return glob.glob(os.path.join(d, f".{name}.*.tmp"))


def _old_checkpoint(path):
    state = {"w": gx.tensor(np.arange(12, dtype=np.float32).reshape(3, 4)), "step": 7,
             "opt": {"lr": 0.1, "betas": (0.9, 0.999)}}
    gx.save(state, path)
    return state


def _assert_is_old(path, backend=None):
    got = gx.load(path, backend=backend)
    assert got["step"] == 7 and got["opt"] == {"lr": 0.1, "betas": (0.9, 0.999)}
    np.testing.assert_array_equal(got["w"].numpy(), np.arange(12).reshape(3, 4))


def _kill_writer(path, mode):
    """Start a process saving a 64 MiB checkpoint to ``path`` and SIGKILL it part way."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", WRITER, path, mode], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "saving", proc.stderr.read()
        deadline = time.monotonic() + 60
        if mode == "mid_write":  # kill once some, not all, of the data is on disk
            while not any(os.path.getsize(t) > 2**20 for t in _temps(path)):
                assert time.monotonic() < deadline and proc.poll() is None, "no write seen"
                time.sleep(0.005)
        else:
            assert proc.stdout.readline().strip() == "written", proc.stderr.read()
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    return _temps(path)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
@pytest.mark.parametrize("mode", ["mid_write", "before_rename"])
def test_killed_save_leaves_the_previous_checkpoint(tmp_path, mode):
    path = str(tmp_path / "model.npz")
    _old_checkpoint(path)
    before = open(path, "rb").read()
    leftovers = _kill_writer(path, mode)
    assert open(path, "rb").read() == before  # not a byte of it changed
    for backend in gx.available_backends():
        _assert_is_old(path, backend)
    assert len(leftovers) == 1  # the killed writer's temporary file, never renamed
    size = os.path.getsize(leftovers[0])
    print(f"\n[checkpoint] {mode}: killed with a {size / 2**20:.1f} MiB temporary file")
    if mode == "mid_write":
        with pytest.raises(io.CheckpointError, match="truncated"):
            gx.load(leftovers[0])
    else:  # fully written and fsynced: only the rename was missing
        assert gx.load(leftovers[0])["step"] == 99
    gx.save({"step": 8}, path)  # the next save is not disturbed by the leftover
    assert gx.load(path) == {"step": 8}


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_killed_first_save_leaves_no_checkpoint_behind(tmp_path):
    path = str(tmp_path / "first.npz")
    _kill_writer(path, "mid_write")
    assert not os.path.exists(path)
    with pytest.raises(FileNotFoundError):
        gx.load(path)


def test_save_failing_inside_the_process_cleans_up(tmp_path, monkeypatch):
    path = str(tmp_path / "model.npz")
    _old_checkpoint(path)

    def disk_full(f, **arrays):
        f.write(b"PK\x03\x04 partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(io.np, "savez", disk_full)
    with pytest.raises(OSError, match="No space left"):
        gx.save({"w": gx.ones((4,))}, path)
    monkeypatch.undo()
    _assert_is_old(path)
    assert _temps(path) == []
    with pytest.raises(io.CheckpointError, match="cannot store"):
        gx.save({"model": object()}, path)  # refused before anything is written
    _assert_is_old(path)
    assert _temps(path) == []


# -- damaged and foreign files ----------------------------------------------------------

def _check_refused(path, *words):
    with pytest.raises(gx.GradxError) as info:
        gx.load(path)
    msg = str(info.value)
    assert path in msg, msg
    assert any(w in msg for w in words), msg
    return msg


@pytest.mark.parametrize("keep", [0.0, 0.001, 0.25, 0.5, 0.9, 0.999])
def test_truncated_checkpoints_are_refused(backend, tmp_path, keep):
    path = str(tmp_path / "model.npz")
    _old_checkpoint(path)
    data = open(path, "rb").read()
    cut = str(tmp_path / "cut.npz")
    open(cut, "wb").write(data[: int(len(data) * keep)])
    _check_refused(cut, "truncated")


def test_flipped_bytes_are_refused_not_loaded(tmp_path):
    path = str(tmp_path / "model.npz")
    _old_checkpoint(path)
    data = open(path, "rb").read()
    target = np.arange(12, dtype=np.float32)[5:6].tobytes()
    at = data.index(target)
    flipped = 0
    for offset in (at, at + 1, data.index(b'"step"')):  # array data and the JSON header
        damaged = bytearray(data)
        damaged[offset] ^= 0x40
        bad = str(tmp_path / f"flip{offset}.npz")
        open(bad, "wb").write(bytes(damaged))
        _check_refused(bad, "CRC", "damaged", "truncated")
        flipped += 1
    assert flipped == 3


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def _meta(obj):
    return np.frombuffer(json.dumps(obj).encode(), dtype=np.uint8)


def test_foreign_files_are_refused(tmp_path):
    p = lambda name: str(tmp_path / name)  # noqa: E731
    open(p("text.npz"), "w").write("step = 7\n")
    open(p("random.npz"), "wb").write(np.random.default_rng(0).bytes(4096))
    open(p("empty.npz"), "wb").close()
    with zipfile.ZipFile(p("other.zip"), "w") as z:
        z.writestr("readme.txt", "not a checkpoint")
    np.save(p("array.npy"), np.ones(3))
    os.mkdir(p("folder.npz"))
    cases = {
        p("text.npz"): ("truncated", "not a gradx checkpoint"),
        p("random.npz"): ("truncated", "not a gradx checkpoint"),
        p("empty.npz"): ("truncated", "not a gradx checkpoint"),
        p("other.zip"): ("not a gradx checkpoint",),
        p("array.npy"): ("not a gradx checkpoint",),
        p("folder.npz"): ("not a gradx checkpoint", "Is a directory"),
        _npz(p("plain.npz"), a=np.ones(3)): ("not a gradx checkpoint",),
        _npz(p("pickled.npz"), a=np.array([object()]), __gradx__=_meta(
            {"format": "gradx-checkpoint", "version": 1, "tree": {"t": "ndarray", "key": "a"}})):
            ("not a gradx checkpoint", "truncated"),
        _npz(p("badjson.npz"), __gradx__=np.frombuffer(b"{not json", np.uint8)):
            ("not a gradx checkpoint", "truncated"),
        _npz(p("format.npz"), __gradx__=_meta({"format": "other"})): ("unknown format",),
        _npz(p("future.npz"), __gradx__=_meta(
            {"format": "gradx-checkpoint", "version": 99, "tree": None})): ("newer gradx",),
        _npz(p("dangling.npz"), __gradx__=_meta(
            {"format": "gradx-checkpoint", "version": 1,
             "tree": {"t": "tensor", "key": "a0"}})): ("damaged",),
        _npz(p("kind.npz"), __gradx__=_meta(
            {"format": "gradx-checkpoint", "version": 1, "tree": {"t": "module"}})):
            ("damaged",),
    }
    for path, words in cases.items():
        _check_refused(path, *words)
    print(f"\n[checkpoint] {len(cases)} foreign or damaged files refused with a gradx error")

