"""Tensor methods that mirror the namespace functions (``x.sum(axis=0)``, ``x.exp()``)."""

from __future__ import annotations

from typing import Any

from ._tensor import Tensor
from .ops.linalg import matmul
from .ops.shape import permute_dims


def _install() -> None:
    """Methods that mirror the namespace functions (``x.sum(axis=0)``, ``x.exp()``)."""
    import gradx.ops.comparison as cmp
    import gradx.ops.elementwise as ew
    import gradx.ops.indexing as ix
    import gradx.ops.reductions as red
    import gradx.ops.shape as sh

    for name in ("exp", "expm1", "log", "log1p", "sqrt", "square", "sin", "cos", "tan",
                 "tanh", "sinh", "cosh", "asin", "acos", "atan", "sign", "floor", "ceil",
                 "round", "sigmoid", "abs"):
        setattr(Tensor, name, getattr(ew, name))
    for name in ("isnan", "isfinite"):
        setattr(Tensor, name, getattr(cmp, name))
    for name in ("sum", "mean", "prod", "max", "min", "var", "std", "cumsum", "argmax",
                 "argmin", "logsumexp", "argsort"):
        setattr(Tensor, name, getattr(red, name))
    for name in ("expand_dims", "squeeze", "flip", "broadcast_to", "tile", "permute_dims",
                 "moveaxis", "split"):
        setattr(Tensor, name, getattr(sh, name))
    for name in ("take", "sort", "take_along_axis"):
        setattr(Tensor, name, getattr(ix, name))
    Tensor.clip = ew.clip
    Tensor.maximum = ew.maximum
    Tensor.minimum = ew.minimum
    Tensor.matmul = matmul


def _reshape_method(self: Tensor, *shape: Any) -> Tensor:
    if len(shape) == 1 and not isinstance(shape[0], int):
        shape = tuple(shape[0])
    from .ops.shape import reshape

    return reshape(self, shape)


def _transpose_method(self: Tensor, *axes: Any) -> Tensor:
    if not axes:
        return self.T
    if len(axes) == 1 and not isinstance(axes[0], int):
        axes = tuple(axes[0])
    return permute_dims(self, axes=tuple(a % self.ndim for a in axes))


def _flatten_method(self: Tensor) -> Tensor:
    return _reshape_method(self, -1)


Tensor.reshape = _reshape_method
Tensor.view = _reshape_method
Tensor.transpose = _transpose_method
Tensor.flatten = _flatten_method
_install()
