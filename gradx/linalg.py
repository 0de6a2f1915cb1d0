"""``gx.linalg``: the Array API linalg extension's differentiable subset, and NumPy's ``norm``.

Norms of float16 (and bfloat16) inputs accumulate in float32 and are cast back, as PyTorch
does: a sum of squares overflows float16 long before the norm itself does.
"""

from __future__ import annotations

import math
import operator
from typing import Any

from ._primitive import composed
from ._shapes import normalize_axis
from .errors import ArgumentError, ShapeError
from .ops.comparison import greater, not_equal
from .ops.elementwise import abs, astype, sign, where
from .ops.linalg import (
    _norm2,
    det,
    inv,
    matrix_transpose,
    outer,
    solve,
    svdvals,
    tensordot,
    vecdot,
)
from .ops.reductions import max, min, sum
from .ops.shape import expand_dims, permute_dims

__all__ = ["det", "inv", "matrix_norm", "matrix_transpose", "norm", "outer", "solve",
           "svdvals", "tensordot", "vecdot", "vector_norm"]

_INF = math.inf


def _is_half(dtype: Any) -> bool:
    return getattr(dtype, "name", str(dtype)) in ("float16", "bfloat16")


def _widened(fun: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
    """``fun(x, *args, **kwargs)``, in float32 for a half-precision ``x`` and cast back."""
    if not _is_half(x.dtype):
        return fun(x, *args, **kwargs)
    return astype(fun(astype(x, "float32"), *args, **kwargs), x.dtype)


def _vector(x: Any, ord: Any, axes: tuple[int, ...] | None, keepdims: bool) -> Any:
    if ord is None or ord == 2:
        return _norm2(x, axis=axes, keepdims=keepdims)
    a = abs(x)
    if ord == _INF:
        return max(a, axis=axes, keepdims=keepdims)
    if ord == -_INF:
        return min(a, axis=axes, keepdims=keepdims)
    if ord == 1:
        return sum(a, axis=axes, keepdims=keepdims)
    if ord == 0:  # the number of nonzero entries: piecewise constant, gradient zero (through
        # sign, so that backward() reaches x as in PyTorch)
        return sum(abs(sign(x)), axis=axes, keepdims=keepdims)
    # As in PyTorch, a zero entry gets gradient 0 (for p < 1 the derivative there is
    # infinite) and so does a zero vector: zero entries never reach ``** p`` in the backward
    # pass. A zero entry makes the sum inf for p < 0 and the norm 0, as in NumPy.
    nonzero = not_equal(x, 0)
    terms = where(nonzero, where(nonzero, a, 1.0) ** ord, 0.0 if ord > 0 else _INF)
    total = sum(terms, axis=axes, keepdims=keepdims)
    positive = greater(total, 0)
    return where(positive, where(positive, total, 1.0) ** (1.0 / ord), 0.0)


def _matrix(x: Any, ord: Any, rows: int, cols: int, keepdims: bool) -> Any:
    if ord in (None, "fro"):
        return _norm2(x, axis=(rows, cols), keepdims=keepdims)
    if ord in ("nuc", 2, -2):
        order = [d for d in range(x.ndim) if d not in (rows, cols)] + [rows, cols]
        s = svdvals(permute_dims(x, axes=tuple(order)))
        out = sum(s, axis=-1) if ord == "nuc" else (max if ord == 2 else min)(s, axis=-1)
        if keepdims:
            for d in sorted((rows, cols)):
                out = expand_dims(out, axis=d)
        return out
    # ord 1 / -1: the largest / smallest column sum of |x|; inf / -inf: row sums
    inner, outer_axis = (rows, cols) if ord in (1, -1) else (cols, rows)
    sums = sum(abs(x), axis=inner, keepdims=True)
    pick = max if ord in (1, _INF) else min
    out = pick(sums, axis=outer_axis, keepdims=True)
    return out if keepdims else sum(out, axis=(rows, cols))


def _op(name: str, x: Any) -> str:
    """The op and its input, for error messages."""
    return f"{name} of an array of shape {tuple(x.shape)}"


def _index_or_tuple(axis: Any) -> int | tuple:
    """An axis argument as an int (NumPy integers too) or a tuple of ints."""
    if hasattr(axis, "__index__"):
        return operator.index(axis)
    return tuple(operator.index(a) for a in axis)


def _check_vector_ord(op: str, ord: Any) -> None:
    if isinstance(ord, str | bool) or not isinstance(ord, int | float):
        raise ArgumentError(f"{op}: ord={ord!r} is not a vector norm order; pass a number "
                            "(0, 1, 2, inf, -inf or any p) or use matrix_norm for 'fro'/'nuc'")


def _check_matrix_ord(op: str, ord: Any) -> None:
    if isinstance(ord, str):
        valid = ord in ("fro", "nuc")
    else:
        valid = isinstance(ord, int | float) and not isinstance(ord, bool) and ord in (
            1, -1, 2, -2, _INF, -_INF)
    if not valid:
        raise ArgumentError(f"{op}: ord={ord!r} is not a matrix norm order; use one of "
                            "'fro', 'nuc', 1, -1, 2, -2, inf, -inf")


@composed
def vector_norm(x: Any, /, *, axis: Any = None, keepdims: bool = False,
                ord: Any = 2) -> Any:
    """The Array API's vector norm over ``axis`` (None: all axes, flattened; or a tuple)."""
    _check_vector_ord(_op("vector_norm", x), ord)
    axes = None if axis is None else normalize_axis(_index_or_tuple(axis), x.ndim,
                                                    _op("vector_norm", x))
    return _widened(_vector, x, ord, axes, keepdims)


@composed
def matrix_norm(x: Any, /, *, keepdims: bool = False, ord: Any = "fro") -> Any:
    """The Array API's matrix norm of the last two axes of ``x`` (..., m, n)."""
    _check_matrix_ord(_op("matrix_norm", x), ord)
    if x.ndim < 2:
        raise ShapeError(f"matrix_norm: needs an array of at least 2 dimensions, got shape "
                         f"{tuple(x.shape)}; use vector_norm for vectors")
    return _widened(_matrix, x, ord, x.ndim - 2, x.ndim - 1, keepdims)


@composed
def norm(x: Any, /, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Any:
    """NumPy's ``linalg.norm``: with ``axis`` an int or 1-tuple a vector norm, with a 2-tuple a
    matrix norm; with ``axis=None`` the 2-norm of the flattened array when ``ord`` is None,
    else the vector or matrix norm of a 1-D or 2-D ``x``."""
    if axis is None:
        if ord is None:
            return _widened(_norm2, x, keepdims=keepdims)
        if x.ndim not in (1, 2):
            raise ShapeError(f"norm: ord={ord!r} with axis=None needs a 1-D or 2-D array, got "
                             f"shape {tuple(x.shape)}; pass axis= (one axis for a vector "
                             "norm, two for a matrix norm)")
        axis = tuple(range(x.ndim))
    axis = _index_or_tuple(axis)
    axes = (axis,) if isinstance(axis, int) else axis
    if len(axes) == 1:
        _check_vector_ord(_op("norm", x), 2 if ord is None else ord)
        a = normalize_axis(axes, x.ndim, _op("norm", x))
        return _widened(_vector, x, ord, a, keepdims)
    if len(axes) == 2:
        _check_matrix_ord(_op("norm", x), "fro" if ord is None else ord)
        rows, cols = (normalize_axis(a, x.ndim, _op("norm", x))[0] for a in axes)
        if rows == cols:
            raise ShapeError(f"{_op('norm', x)}: axis={axis!r} names the same axis twice")
        return _widened(_matrix, x, ord, rows, cols, keepdims)
    raise ShapeError(f"{_op('norm', x)}: axis={axis!r} names {len(axes)} axes; pass one (a "
                     "vector norm) or two (a matrix norm)")
