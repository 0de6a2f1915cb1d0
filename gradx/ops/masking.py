"""Masks: ``tril``, ``triu``, ``masked_fill`` and ``one_hot``, composed from ``where`` and
comparisons (no primitives of their own: ``where`` carries the gradient).

``tril(x, k)`` and ``triu(x, k)`` keep the lower and upper triangle of the last two axes
(``k`` is PyTorch's ``diagonal``); ``masked_fill(x, mask, value)`` is PyTorch's
``x.masked_fill(mask, value)``, i.e. ``where(mask, value, x)``; ``one_hot`` is
``torch.nn.functional.one_hot`` (int64 result).
"""

from __future__ import annotations

from typing import Any

from .._backend import backend_of, get_backend
from .._primitive import composed
from .._shapes import broadcast_shapes
from .._tensor import Tensor
from ..errors import ArgumentError, DTypeError, GradxError, ShapeError, describe
from .elementwise import where


def _backend(x: Any) -> Any:
    if isinstance(x, Tensor):
        return x._backend
    return backend_of(x) if hasattr(x, "dtype") else get_backend()


def _triangle(op: str, x: Any, k: int, lower: bool) -> Any:
    if not hasattr(x, "ndim") or x.ndim < 2:
        raise ShapeError(f"{op}: expected an array with at least 2 axes, got {describe(x)}")
    xp = _backend(x).xp
    n, m = x.shape[-2], x.shape[-1]
    offset = xp.arange(m)[None, :] - xp.arange(n)[:, None]  # column - row
    keep = offset <= k if lower else offset >= k
    zero = False if xp.isdtype(x.dtype, "bool") else 0
    return where(keep, x, zero)


@composed
def tril(x: Any, /, k: int = 0) -> Any:
    """The lower triangle of the last two axes: elements with column - row <= k, zeros
    elsewhere (``torch.tril(x, diagonal=k)``, ``numpy.tril``). Differentiable."""
    return _triangle("tril", x, int(k), lower=True)


@composed
def triu(x: Any, /, k: int = 0) -> Any:
    """The upper triangle of the last two axes: elements with column - row >= k, zeros
    elsewhere (``torch.triu(x, diagonal=k)``, ``numpy.triu``). Differentiable."""
    return _triangle("triu", x, int(k), lower=False)


def _is_bool(x: Any) -> bool:
    return hasattr(x, "dtype") and _backend(x).xp.isdtype(
        x.data.dtype if isinstance(x, Tensor) else x.dtype, "bool")


@composed
def masked_fill(x: Any, mask: Any, value: Any) -> Any:
    """``value`` where the boolean ``mask`` (broadcastable to ``x``) is True, ``x``
    elsewhere: PyTorch's ``x.masked_fill(mask, value)``. ``value`` is a number or a 0-d
    tensor (which then gets the gradient of the filled places)."""
    if not _is_bool(mask):
        raise DTypeError(f"masked_fill: mask must be boolean, got {describe(mask)}; build it "
                         "with a comparison (x > 0) or mask.astype('bool')")
    try:
        shape = broadcast_shapes(tuple(mask.shape), tuple(x.shape))
    except GradxError:
        shape = None
    if shape != tuple(x.shape):
        raise ShapeError(f"masked_fill: mask of shape {tuple(mask.shape)} does not broadcast to "
                         f"the input's shape {tuple(x.shape)}")
    if hasattr(value, "ndim") and value.ndim != 0:
        raise ShapeError(f"masked_fill: value must be a number or a 0-d tensor, got "
                         f"{describe(value)}")
    if isinstance(value, float) and not _backend(x).is_float(
            x.data.dtype if isinstance(x, Tensor) else x.dtype):
        raise DTypeError(f"masked_fill: a float value {value!r} cannot fill the integer input "
                         f"{describe(x)}")
    return where(mask, value, x)


@composed
def one_hot(labels: Any, num_classes: int = -1) -> Any:
    """Integer class labels of any shape -> int64 rows of length ``num_classes`` with a 1 at
    each label (``num_classes=-1``: one more than the largest label, which reads it back).
    Labels outside [0, num_classes) raise where checking is free (host backends)."""
    backend = _backend(labels)
    if not isinstance(labels, Tensor):
        labels = Tensor(backend.asarray(labels))
    raw = labels.data
    xp = backend.xp
    if not xp.isdtype(raw.dtype, "integral"):
        raise DTypeError(f"one_hot: labels must be integers, got {describe(labels)}; convert "
                         "with labels.astype('int64')")
    if num_classes == -1:
        num_classes = int(xp.max(raw)) + 1 if raw.size else 0
    if not isinstance(num_classes, int) or num_classes < 0:
        raise ArgumentError(f"one_hot: num_classes must be a non-negative integer or -1, got "
                            f"{num_classes!r}")
    if backend.host_resident and raw.size:
        lo, hi = int(xp.min(raw)), int(xp.max(raw))
        if lo < 0 or hi >= num_classes:
            raise ArgumentError(f"one_hot: labels must lie in [0, {num_classes}), found values "
                                f"in [{lo}, {hi}]")
    hot = raw[..., None] == xp.arange(num_classes, dtype=raw.dtype)
    return Tensor(xp.astype(hot, xp.int64))


__all__ = ["tril", "triu", "masked_fill", "one_hot"]
