"""NumPy: the CPU backend. NumPy 2 follows the Array API names; ``xp`` is numpy with its hottest
reductions bound straight to their ufuncs."""

from __future__ import annotations

import operator
import types
from typing import Any

import numpy as np

from gradx import _native

from .base import Backend


def _reducer(ufunc: Any, fallback: Any) -> Any:
    """``xp.sum``-style call straight to ``ufunc.reduce``, skipping NumPy's Python wrapper
    (a microsecond per call, which adds up in backward passes of small arrays)."""
    reduce = ufunc.reduce

    def fn(x: Any, /, *, axis: Any = None, keepdims: bool = False, dtype: Any = None) -> Any:
        if dtype is not None or type(x) is not np.ndarray or x.size == 0:
            return fallback(x, axis=axis, keepdims=keepdims, dtype=dtype) if dtype is not None \
                else fallback(x, axis=axis, keepdims=keepdims)
        return reduce(x, axis=axis, keepdims=keepdims)

    fn.__name__ = fallback.__name__
    return fn


def _ones(shape: Any, dtype: Any = None, order: str = "C", **kwargs: Any) -> Any:
    """``np.ones`` as empty-then-fill: NumPy's own is a Python wrapper around ``copyto``
    that takes about 1.7 us for the 0-d seed every ``backward()`` starts from, this 0.4."""
    if kwargs:  # device= or like=: NumPy's own handles them
        return np.ones(shape, dtype=dtype, order=order, **kwargs)
    out = np.empty(shape, dtype=dtype, order=order)
    out.fill(1)
    return out


def _namespace() -> Any:
    """NumPy itself, with the hottest reductions called without their Python wrappers."""
    ns = types.SimpleNamespace(**{k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
    ns.__name__ = "numpy"
    ns.sum = _reducer(np.add, np.sum)
    ns.prod = _reducer(np.multiply, np.prod)
    ns.max = _reducer(np.maximum, np.max)
    ns.min = _reducer(np.minimum, np.min)
    ns.ones = _ones
    # ndarray.mT (NumPy 2.0) is np.matrix_transpose without its two Python wrapper layers,
    # and raises the same ValueError below two dimensions: matmul rules call it twice per step
    ns.matrix_transpose = operator.attrgetter("mT")
    return ns


def _copy_c(x: Any) -> np.ndarray:
    """A row-major copy: a gradient arriving as a transposed view is stored in its
    parameter's own (C) order, so optimizer updates and flat-buffer copies stream through
    memory instead of striding across it."""
    return np.array(x, order="C")


def _owned(x: Any) -> Any:
    """``Backend.owned``: a fresh result owns its memory; a view or subclass is copied."""
    if type(x) is np.ndarray and x.base is None:
        return x
    return _copy_c(x)


class NumpyBackend(Backend):
    name = "numpy"
    device = "cpu"

    def __init__(self) -> None:
        super().__init__(_namespace())

    @property
    def array_types(self) -> tuple[type, ...]:
        return (np.ndarray, np.generic)

    def asarray(self, obj: Any, dtype: Any = None, copy: bool | None = None) -> Any:
        return np.asarray(obj, dtype=dtype) if not copy else np.array(obj, dtype=dtype)

    def from_numpy(self, a: np.ndarray, dtype: Any = None) -> Any:
        return np.asarray(a, dtype=dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.array(x)

    def copy(self, x: Any) -> Any:
        return np.array(x)

    # compiled, the same test with no Python frame: it runs for every leaf gradient
    owned = staticmethod(_owned if _native.extension() is None
                         else _native.extension().owned_or_copy(np.ndarray, _copy_c))

    def writable(self, x: Any) -> bool:
        return type(x) is np.ndarray and x.base is None and x.flags.writeable

    def scatter_add(self, target: Any, key: Any, values: Any) -> Any:
        out = np.array(target)
        if _is_basic(key):
            out[key] += values  # basic indexing never repeats an element
        else:
            np.add.at(out, key, values)
        return out

    def index_update(self, x: Any, key: Any, values: Any) -> Any:
        out = np.array(x)
        out[key] = values
        return out

    def sliding_windows(self, x: Any, window_shape: tuple[int, ...],
                        axes: tuple[int, ...]) -> Any:
        return np.lib.stride_tricks.sliding_window_view(x, window_shape, axis=axes)


def _is_basic(key: Any) -> bool:
    items = key if isinstance(key, tuple) else (key,)
    return all(k is None or k is Ellipsis or isinstance(k, slice | int) for k in items)
