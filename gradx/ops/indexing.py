"""Indexing: reading with basic and advanced keys, and the scatter-add that is its gradient.

Repeated indices accumulate in the gradient through the backend's scatter-add.
"""

from __future__ import annotations

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


def _index_update_vjp_values(g, ans, x, values, *, key):
    picked = getitem(g, key=key)
    lead = values.ndim - picked.ndim
    if lead > 0:  # values of shape (1, 3) written to a row of shape (3,): leading size-1 dims
        picked = reshape(picked, (1,) * lead + tuple(picked.shape))
    return picked  # the tape sums the axes ``values`` broadcast along


defvjp(index_update, _index_update_vjp_x, _index_update_vjp_values)


def _axis_key(axis: int, ndim: int, index: Any) -> tuple:
    return (slice(None),) * (axis % ndim) + (index, Ellipsis)


@primitive(saves_ans=False)
def take(x, indices, /, *, axis=None):
    xp = ns(x)
    if axis is None:
        return xp.take(xp.reshape(x, (-1,)), indices, axis=0)
    return xp.take(x, indices, axis=axis)


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
