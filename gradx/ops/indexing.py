"""Indexing: reading with basic and advanced keys, and the scatter-add that is its gradient.

Repeated indices accumulate in the gradient through the backend's scatter-add.
"""

from __future__ import annotations

import math
from typing import Any

from .._backend import backend_of, ns
from .._primitive import defjvp, defvjp, primitive


@primitive(saves_args="meta", saves_ans=False, view=True)
def getitem(x, /, *, key):
    return backend_of(x).getitem(x, key)


defvjp(getitem, lambda g, ans, x, *, key: _index_add(g, shape=x.shape, key=key))
defjvp(getitem, lambda t, ans, x, *, key: getitem(t, key=key))


@primitive(saves_args="meta", saves_ans=False)
def _index_add(g, /, *, shape, key):
    """Zeros of ``shape`` with ``g`` added at ``key`` (the transpose of getitem)."""
    zeros = ns(g).zeros(shape, dtype=g.dtype)
    return backend_of(g).scatter_add(zeros, key, g)


defvjp(_index_add, lambda g, ans, x, *, shape, key: getitem(g, key=key))
defjvp(_index_add, lambda t, ans, x, *, shape, key: _index_add(t, shape=shape, key=key))


@primitive(broadcasts=True, saves_args="meta", saves_ans=False)
def index_update(x, values, /, *, key):
    """A copy of ``x`` with ``x[key] = values``: what ``x[key] = v`` records under grad."""
    return backend_of(x).index_update(x, key, values)


def _index_update_vjp_x(g, ans, x, values, *, key):
    return index_update(g, 0.0, key=key)


def _raw(a: Any) -> Any:
    return a.data if hasattr(a, "_backend") else a


def _may_repeat(key: Any) -> bool:
    """Whether ``key`` holds an integer index array (which may name an element twice)."""
    items = key if isinstance(key, tuple) else (key,)
    return any(hasattr(k, "dtype") and "bool" not in str(k.dtype) for k in items)


def _written(g: Any, shape: Any, key: Any, region: Any) -> Any:
    """1 where an element of the region ``x[key]`` (shape ``region``) is what
    ``x[key] = values`` leaves in ``x``, 0 where a repeated index overwrites it: writes the
    positions themselves with the same backend operation and reads them back."""
    raw = _raw(g)
    backend, xp = backend_of(raw), ns(raw)
    ids = xp.reshape(xp.arange(math.prod(region), dtype=xp.int64), tuple(region))
    marks = backend.index_update(xp.full(tuple(shape), -1, dtype=xp.int64), key, ids)
    return xp.astype(backend.getitem(marks, key) == ids, raw.dtype)


def _index_update_vjp_values(g, ans, x, values, *, key):
    picked = getitem(g, key=key)
    if _may_repeat(key):  # only the value written last at a repeated index reaches the output
        picked = picked * _written(g, x.shape, key, picked.shape)
    lead = values.ndim - picked.ndim
    if lead > 0:  # values of shape (1, 3) written to a row of shape (3,): leading size-1 dims
        picked = reshape(picked, (1,) * lead + tuple(picked.shape))
    return picked  # the tape sums the axes ``values`` broadcast along


def _index_update_jvp_values(t, ans, x, values, *, key):
    raw = _raw(t)
    return index_update(ns(raw).zeros(tuple(x.shape), dtype=raw.dtype), t, key=key)


defjvp(index_update, lambda t, ans, x, values, *, key: index_update(t, 0.0, key=key),
       _index_update_jvp_values)
defvjp(index_update, _index_update_vjp_x, _index_update_vjp_values)


def _axis_key(axis: int, ndim: int, index: Any) -> tuple:
    return (slice(None),) * (axis % ndim) + (index, Ellipsis)


@primitive(saves_ans=False)
def take(x, indices, /, *, axis=None):
    xp = ns(x)
    if axis is None:
        x, axis = xp.reshape(x, (-1,)), 0
    if indices.ndim == 1:
        return xp.take(x, indices, axis=axis)
    # the standard takes 1-D indices only; NumPy's n-d (and 0-d) indices through a flat take
    axis %= x.ndim
    flat = xp.take(x, xp.reshape(indices, (-1,)), axis=axis)
    return xp.reshape(flat, tuple(x.shape[:axis]) + tuple(indices.shape)
                      + tuple(x.shape[axis + 1:]))


def _take_vjp(g, ans, x, indices, *, axis=None):
    if axis is None:
        flat = _index_add(g, shape=(x.size,), key=(indices,))
        return reshape(flat, x.shape)
    return _index_add(g, shape=x.shape, key=_axis_key(axis, x.ndim, indices))


defvjp(take, _take_vjp)


def _along_key(indices: Any, axis: int, shape: Any = None, out: Any = None) -> tuple:
    """A full advanced-index key that reads ``x[..., indices, ...]`` along ``axis`` and every
    other axis by position, for ``x`` of ``shape`` (default: the indices' own shape) and a
    result of shape ``out``; an axis where ``x`` has size 1 and the result does not
    (NumPy's broadcasting ``take_along_axis``) reads position 0 every time."""
    xp = ns(indices)
    ndim = indices.ndim
    axis %= ndim
    shape = tuple(indices.shape) if shape is None else tuple(shape)
    out = tuple(indices.shape) if out is None else tuple(out)
    key = []
    for d in range(ndim):
        if d == axis:
            key.append(indices)
        else:
            place = [1] * ndim
            place[d] = out[d]
            pos = xp.arange(out[d]) if shape[d] == out[d] else xp.zeros(out[d], dtype=xp.int64)
            key.append(xp.reshape(pos, tuple(place)))
    return tuple(key)


@primitive(saves_ans=False)
def take_along_axis(x, indices, /, *, axis=-1):
    return ns(x).take_along_axis(x, indices, axis=axis)


defvjp(take_along_axis, lambda g, ans, x, indices, *, axis=-1:
       _index_add(g, shape=x.shape, key=_along_key(indices, axis, x.shape, g.shape)))
defjvp(take_along_axis, lambda t, ans, x, indices, *, axis=-1:
       take_along_axis(t, indices, axis=axis))


@primitive(saves_ans=False)
def sort(x, /, *, axis=-1, descending=False, stable=True):
    xp = ns(x)
    out = xp.sort(x, axis=axis, stable=stable)
    return xp.flip(out, axis=axis) if descending else out


def _sort_vjp(g, ans, x, *, axis=-1, descending=False, stable=True):
    order = argsort(x, axis=axis, descending=descending, stable=stable)
    raw = order.data if hasattr(order, "_backend") else order
    return _index_add(g, shape=x.shape, key=_along_key(raw, axis))


defvjp(sort, _sort_vjp)

from .reductions import argsort  # noqa: E402
from .shape import reshape  # noqa: E402
