"""Checkpoints: tensors and nested dicts/lists/tuples of them, as ``.npz`` files.

Arrays are stored as NumPy arrays on the host; the structure (containers, keys, Python
scalars, which entries are tensors and whether they require grad) is stored as JSON in
the same archive, never as pickle, so loading a file runs no code from it. Writes are
atomic: a temporary file in the target's directory is written, fsynced and renamed over
the target, so a crash leaves either the old checkpoint or the new one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from typing import Any

import numpy as np

import gradx as gx

from .errors import CheckpointError

_META = "__gradx__"
_FORMAT = "gradx-checkpoint"
_VERSION = 1


def save(obj: Any, path: str | os.PathLike) -> None:
    """Write ``obj`` (a tensor, array, scalar, or nested dict/list/tuple of them, such as a
    model's or optimizer's ``state_dict()``) to ``path`` atomically."""
    arrays: dict[str, np.ndarray] = {}
    tree = _encode(obj, arrays, "obj")
    header = {"format": _FORMAT, "version": _VERSION, "tree": tree}
    arrays[_META] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def _fsync_dir(directory: str) -> None:
    """Make the rename durable; not every platform can open a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load(path: str | os.PathLike, backend: Any = None) -> Any:
    """Read a checkpoint written by ``save``; tensors are created on ``backend`` (the current
    backend when None), whatever backend saved them."""
    path = os.fspath(path)
    try:
        npz = np.load(path, allow_pickle=False)
        if not hasattr(npz, "files"):  # a single .npy array
            raise CheckpointError(
                f"{path!r} holds a single NumPy array, not a gradx checkpoint; read it with "
                "numpy.load, or write checkpoints with gx.save"
            )
        with npz:
            if _META not in npz.files:
                raise CheckpointError(
                    f"{path!r} is an .npz archive but not a gradx checkpoint (no {_META!r} "
                    "entry); read plain NumPy archives with numpy.load"
                )
            header = json.loads(bytes(npz[_META]).decode("utf-8"))
            if not isinstance(header, dict) or header.get("format") != _FORMAT:
                raise CheckpointError(f"{path!r} has gradx metadata of an unknown format")
            if header.get("version", 0) > _VERSION:
                raise CheckpointError(
                    f"{path!r} was written by a newer gradx (checkpoint version "
                    f"{header['version']}, this gradx reads up to {_VERSION}); upgrade gradx"
                )
            arrays = {k: npz[k] for k in npz.files if k != _META}
    except CheckpointError:
        raise
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError,
            UnicodeDecodeError) as exc:
        raise CheckpointError(
            f"cannot read checkpoint {path!r}: {type(exc).__name__}: {exc}. The file is "
            "truncated or not a gradx checkpoint; save it again with gx.save"
        ) from exc
    target = gx.get_backend() if backend is None else backend
    try:
        return _decode(header["tree"], arrays, target)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"checkpoint {path!r} has inconsistent metadata ({type(exc).__name__}: {exc}); "
            "the file is damaged"
        ) from exc


# -- structure <-> JSON ----------------------------------------------------------------

def _encode(obj: Any, arrays: dict[str, np.ndarray], where: str) -> Any:
    if (obj is None or isinstance(obj, bool | int | float | str)) and not isinstance(
            obj, np.generic):  # np.float64 is a float subclass: keep it a NumPy scalar
        return obj
    if isinstance(obj, gx.Tensor):
        key = f"a{len(arrays)}"
        arrays[key] = obj.numpy()
        return {"t": "tensor", "key": key, "requires_grad": bool(obj.requires_grad)}
    if isinstance(obj, np.ndarray | np.generic):
        if obj.dtype.hasobject:
            raise CheckpointError(f"gx.save: {where} is a NumPy array of Python objects")
        key = f"a{len(arrays)}"
        arrays[key] = np.asarray(obj)
        return {"t": "ndarray", "key": key, "scalar": isinstance(obj, np.generic)}
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if not (k is None or isinstance(k, bool | int | float | str)):
                raise CheckpointError(
                    f"gx.save: {where} has a key of type {type(k).__name__}; keys must be "
                    "str, int, float, bool or None"
                )
            items.append([k, _encode(v, arrays, f"{where}[{k!r}]")])
        return {"t": "dict", "items": items}
    if isinstance(obj, list | tuple):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {"t": kind, "items": [_encode(v, arrays, f"{where}[{i}]")
                                     for i, v in enumerate(obj)]}
    if hasattr(obj, "__array_namespace__") or hasattr(obj, "__dlpack__"):
        return _encode(gx.asarray(obj), arrays, where)
    raise CheckpointError(
        f"gx.save: cannot store {where} of type {type(obj).__name__}; checkpoints hold "
        "tensors, arrays, Python scalars and strings, and dicts, lists and tuples of them "
        "(save a model's state_dict(), not the model)"
    )


def _decode(node: Any, arrays: dict[str, np.ndarray], backend: Any) -> Any:
    if not isinstance(node, dict):
        return node
    kind = node["t"]
    if kind == "tensor":
        t = gx.tensor(arrays[node["key"]], backend=backend)
        return t.requires_grad_() if node.get("requires_grad") else t
    if kind == "ndarray":
        a = arrays[node["key"]]
        return a[()] if node.get("scalar") else a
    if kind == "dict":
        return {k: _decode(v, arrays, backend) for k, v in node["items"]}
    if kind == "list":
        return [_decode(v, arrays, backend) for v in node["items"]]
    if kind == "tuple":
        return tuple(_decode(v, arrays, backend) for v in node["items"])
    raise ValueError(f"unknown entry kind {kind!r}")


__all__ = ["save", "load", "CheckpointError"]
