"""Checkpoints: tensors and nested dicts/lists/tuples of them, as ``.npz`` files.

Arrays are stored as NumPy arrays on the host; the structure (containers, keys, Python
scalars, which entries are tensors and whether they require grad) is stored as JSON in
the same archive, never as pickle, so loading a file runs no code from it. Writes are
atomic: a temporary file in the target's directory is written, fsynced and renamed over
the target, so a crash leaves either the old checkpoint or the new one. Loading trusts
nothing in the file: every size it claims is checked against the file before anything is
allocated, and whatever a damaged or forged file makes go wrong is a ``CheckpointError``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import zipfile
from typing import Any

import numpy as np

import gradx as gx

from ._backend import resolve
from .errors import CheckpointError, GradxError

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
    backend when None), whatever backend saved them.

    A file that is not a readable gradx checkpoint (damaged, truncated, foreign or forged)
    raises ``CheckpointError`` naming it; a missing file raises ``FileNotFoundError``.
    Every size the file claims is checked against the file before anything is allocated."""
    path = os.fspath(path)
    target = gx.get_backend() if backend is None else resolve(backend)
    try:
        header, arrays = _read(path)
    except (CheckpointError, FileNotFoundError):
        raise
    except RecursionError as exc:
        raise CheckpointError(f"cannot read checkpoint {path!r}: its metadata is nested too "
                              "deeply; the file is damaged or not a gradx checkpoint") from exc
    except Exception as exc:  # whatever zipfile, NumPy or json make of a damaged file
        raise CheckpointError(
            f"cannot read checkpoint {path!r}: {type(exc).__name__}: {exc}. The file is "
            "truncated or not a gradx checkpoint; save it again with gx.save"
        ) from exc
    try:
        return _decode(header["tree"], arrays, target, 0)
    except CheckpointError as exc:
        raise CheckpointError(f"checkpoint {path!r}: {exc}") from exc
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, GradxError) as exc:
        # what ill-typed metadata or an array no Tensor can hold raise; the rest (a device
        # out of memory) is not the file's fault and goes through as it is
        raise CheckpointError(
            f"checkpoint {path!r} has inconsistent metadata ({type(exc).__name__}: {exc}); "
            "the file is damaged"
        ) from exc


# -- reading: every claim checked against the file ------------------------------------

_NPY = ".npy"
_MAGIC = b"\x93NUMPY"
# Deflate never expands a stream by more than about 1032 times: an entry claiming more
# than that over its compressed size is forged or damaged.
_MAX_RATIO = 1100
_MAX_DEPTH = 100  # containers inside containers, in save and load alike
_PIECE = 2**20  # bytes read at a time (larger pieces fall out of cache)


def _read(path: str) -> tuple[dict, dict[str, np.ndarray]]:
    """The checked header and the arrays of the archive at ``path``."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if fh.read(len(_MAGIC)) == _MAGIC:
            raise CheckpointError(
                f"{path!r} holds a single NumPy array, not a gradx checkpoint; read it with "
                "numpy.load, or write checkpoints with gx.save"
            )
        fh.seek(0)
        with zipfile.ZipFile(fh) as zf:
            entries: dict[str, zipfile.ZipInfo] = {}
            for info in zf.infolist():
                if not info.filename.endswith(_NPY) or info.filename[:-4] in entries:
                    raise CheckpointError(
                        f"{path!r} is a zip archive but not a gradx checkpoint: its entry "
                        f"{info.filename!r} is not one NumPy array")
                entries[info.filename[:-4]] = info
            if _META not in entries:
                raise CheckpointError(
                    f"{path!r} is an .npz archive but not a gradx checkpoint (no {_META!r} "
                    "entry); read plain NumPy archives with numpy.load"
                )
            meta = _read_entry(zf, entries.pop(_META), size, path)
            if meta.dtype != np.uint8 or meta.ndim != 1:
                raise CheckpointError(f"{path!r} has gradx metadata of an unknown format")
            header = json.loads(meta.tobytes().decode("utf-8"))
            if not isinstance(header, dict) or header.get("format") != _FORMAT:
                raise CheckpointError(f"{path!r} has gradx metadata of an unknown format")
            version = header.get("version", 0)
            if not isinstance(version, int) or isinstance(version, bool):
                raise CheckpointError(f"{path!r} has gradx metadata of an unknown format "
                                      f"(version {version!r})")
            if version > _VERSION:
                raise CheckpointError(
                    f"{path!r} was written by a newer gradx (checkpoint version "
                    f"{version}, this gradx reads up to {_VERSION}); upgrade gradx"
                )
            return header, {k: _read_entry(zf, info, size, path) for k, info in entries.items()}


def _read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, size: int, path: str
                ) -> np.ndarray:
    """One ``.npy`` entry as an array, its sizes checked first: the zip's claim against the
    file, the array header's claim against the entry. The zip checks the CRC at the end."""
    where = f"cannot read checkpoint {path!r}: entry {info.filename!r}"
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise CheckpointError(f"{where} uses zip compression method "
                              f"{info.compress_type}; gradx checkpoints are stored or deflated")
    if info.compress_size > size or (info.compress_type == zipfile.ZIP_STORED and
                                     info.file_size != info.compress_size) or \
            info.file_size > _MAX_RATIO * max(info.compress_size, 1):
        raise CheckpointError(
            f"{where} claims {info.file_size} bytes ({info.compress_size} "
            f"compressed) in a file of {size} bytes; the file is truncated or damaged")
    with zf.open(info) as fp:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
        else:
            raise CheckpointError(f"{where} is a .npy of version {version}, "
                                  "which gradx does not write")
        if dtype.hasobject:
            raise CheckpointError(f"{where} holds Python objects (pickled), "
                                  "which a gradx checkpoint never does: not a gradx checkpoint")
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        if fp.tell() + nbytes != info.file_size:
            raise CheckpointError(
                f"{where} claims an array of shape {shape} {dtype} "
                f"({nbytes} bytes) but holds {info.file_size - fp.tell()} bytes of data; the "
                "file is truncated or damaged")
        flat = np.empty(count, dtype=dtype)
        into = flat.view(np.uint8) if nbytes else None
        done = 0
        while done < nbytes:  # in pieces: no second copy of a large array
            piece = fp.read(min(_PIECE, nbytes - done))
            if not piece:
                break
            into[done:done + len(piece)] = np.frombuffer(piece, dtype=np.uint8)
            done += len(piece)
        if done != nbytes or fp.read(1):
            raise CheckpointError(f"{where} ends early; the file is truncated")
    return flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)


# -- structure <-> JSON ----------------------------------------------------------------

def _encode(obj: Any, arrays: dict[str, np.ndarray], where: str, depth: int = 0) -> Any:
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
    if isinstance(obj, dict | list | tuple) and depth >= _MAX_DEPTH:
        raise CheckpointError(f"gx.save: {where} is nested more than {_MAX_DEPTH} containers "
                              "deep; checkpoints hold shallower structures")
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if not (k is None or isinstance(k, bool | int | float | str)):
                raise CheckpointError(
                    f"gx.save: {where} has a key of type {type(k).__name__}; keys must be "
                    "str, int, float, bool or None"
                )
            items.append([k, _encode(v, arrays, f"{where}[{k!r}]", depth + 1)])
        return {"t": "dict", "items": items}
    if isinstance(obj, list | tuple):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {"t": kind, "items": [_encode(v, arrays, f"{where}[{i}]", depth + 1)
                                     for i, v in enumerate(obj)]}
    if hasattr(obj, "__array_namespace__") or hasattr(obj, "__dlpack__"):
        return _encode(gx.asarray(obj), arrays, where, depth)
    raise CheckpointError(
        f"gx.save: cannot store {where} of type {type(obj).__name__}; checkpoints hold "
        "tensors, arrays, Python scalars and strings, and dicts, lists and tuples of them "
        "(save a model's state_dict(), not the model)"
    )


def _decode(node: Any, arrays: dict[str, np.ndarray], backend: Any, depth: int) -> Any:
    if not isinstance(node, dict):
        if isinstance(node, list):  # JSON lists only appear as an entry's "items"
            raise ValueError("a bare list where an entry was expected")
        return node
    kind = node["t"]
    if depth >= _MAX_DEPTH and kind in ("dict", "list", "tuple"):
        raise CheckpointError(f"its containers nest more than {_MAX_DEPTH} deep, more than "
                              "gx.save writes; the file is damaged or forged")
    if kind == "tensor":
        t = gx.tensor(arrays[node["key"]], backend=backend)
        return t.requires_grad_() if node.get("requires_grad") else t
    if kind == "ndarray":
        a = arrays[node["key"]]
        return a[()] if node.get("scalar") else a
    depth += 1
    if kind == "dict":
        return {k: _decode(v, arrays, backend, depth) for k, v in node["items"]}
    if kind == "list":
        return [_decode(v, arrays, backend, depth) for v in node["items"]]
    if kind == "tuple":
        return tuple(_decode(v, arrays, backend, depth) for v in node["items"])
    raise ValueError(f"unknown entry kind {kind!r}")


__all__ = ["save", "load", "CheckpointError"]
