"""A stand-in device backend that records every host synchronization.

On a GPU, reading a device value on the host (``bool(x)``, ``float(x)``, ``x.item()``,
copying to NumPy) waits for all queued kernels, and copying host data in waits for the
copy. ``GuardedBackend`` is NumPy underneath, but its arrays are a subclass whose scalar
conversions, and the backend's transfers, are noted in ``events``. A training step that
leaves ``events`` empty would not stall a CUDA stream: checked here without a GPU.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator
from typing import Any

import numpy as np

from gradx.backends.numpy_backend import NumpyBackend, _namespace

events: list[str] = []
_watching = [False]


def _note(what: str) -> None:
    if _watching[0]:
        events.append(what)


class DeviceArray(np.ndarray):
    """An ndarray whose values count as living on a device."""

    def __array_wrap__(self, arr: Any, context: Any = None, return_scalar: bool = False) -> Any:
        return np.asarray(arr).view(DeviceArray)  # 0-d results stay device arrays

    def __bool__(self) -> bool:
        _note("bool()")
        return super().__bool__()

    def __float__(self) -> float:
        _note("float()")
        return super().__float__()

    def __int__(self) -> int:
        _note("int()")
        return super().__int__()

    def __index__(self) -> int:
        _note("index()")
        return super().__index__()

    def item(self, *args: Any) -> Any:
        _note("item()")
        return super().item(*args)

    def tolist(self) -> Any:
        _note("tolist()")
        return super().tolist()


def _device(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.view(DeviceArray) if type(x) is not DeviceArray else x
    if isinstance(x, np.generic):
        return np.asarray(x).view(DeviceArray)
    if isinstance(x, tuple):
        return tuple(_device(v) for v in x)
    if isinstance(x, list):
        return [_device(v) for v in x]
    return x


def _wrapped(fn: Any) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        return _device(fn(*args, **kwargs))

    call.__name__ = getattr(fn, "__name__", "fn")
    return call


def _device_namespace() -> Any:
    base = _namespace()
    ns = types.SimpleNamespace()
    for name, value in vars(base).items():
        is_function = callable(value) and not isinstance(value, type)
        setattr(ns, name, _wrapped(value) if is_function else value)
    ns.__name__ = "guarded_numpy"
    return ns


class GuardedBackend(NumpyBackend):
    name = "guarded"
    device = "guarded:0"
    host_resident = False

    def __init__(self) -> None:
        super().__init__()
        self.__dict__["xp"] = _device_namespace()

    @property
    def array_types(self) -> tuple[type, ...]:
        return (DeviceArray,)

    def asarray(self, obj: Any, dtype: Any = None, copy: bool | None = None) -> Any:
        if not isinstance(obj, DeviceArray | bool | int | float):
            _note("host to device")
        dtype = None if dtype is None else self.dtype(dtype)
        return _device(np.array(obj, dtype=dtype) if copy else np.asarray(obj, dtype=dtype))

    def from_numpy(self, a: np.ndarray, dtype: Any = None) -> Any:
        _note("host to device")
        return _device(np.array(a, dtype=dtype))

    def to_numpy(self, x: Any) -> np.ndarray:
        _note("device to host")
        return np.array(x).view(np.ndarray)

    def copy(self, x: Any) -> Any:
        return _device(np.array(x))

    def owned(self, x: Any) -> Any:
        return x if x.base is None else self.copy(x)

    def writable(self, x: Any) -> bool:
        return type(x) is DeviceArray and x.base is None and x.flags.writeable


@contextlib.contextmanager
def watching() -> Iterator[list[str]]:
    """Note host synchronizations inside the block; yields the list they go to."""
    events.clear()
    _watching[0] = True
    try:
        yield events
    finally:
        _watching[0] = False
