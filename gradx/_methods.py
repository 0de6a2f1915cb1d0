"""Tensor methods that mirror the namespace functions (``x.sum(axis=0)``, ``x.exp()``).

Where a method's name means one thing in PyTorch and another in NumPy, the method follows
PyTorch and the namespace function the Array API standard: ``x.transpose(d0, d1)`` swaps two
dims (a permutation is ``permute_dims``), ``x.split(size)`` takes piece sizes (``gx.split`` a
number of equal sections), ``x.sort()`` returns ``(values, indices)`` (``gx.sort`` the
values), ``x.flatten(start_dim, end_dim)``."""

from __future__ import annotations

from typing import Any, NamedTuple

from ._tensor import Tensor
from .errors import ArgumentError
from .ops.indexing import sort
from .ops.linalg import matmul
from .ops.reductions import argsort
from .ops.shape import permute_dims, split


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
                 "moveaxis"):
        setattr(Tensor, name, getattr(sh, name))
    for name in ("take", "take_along_axis"):
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


def _transpose_method(self: Tensor, *dims: Any) -> Tensor:
    """``x.transpose(dim0, dim1)``: swap two dimensions, as PyTorch's ``Tensor.transpose``
    does (``k.transpose(-2, -1)``). NumPy's meaning of ``transpose`` (a whole permutation, or
    all dimensions reversed) is ``x.permute_dims(axes)`` / ``gx.permute_dims`` (the Array API
    name), ``x.permute(*dims)`` or ``x.T``."""
    if len(dims) != 2 or not all(isinstance(d, int) for d in dims):
        raise ArgumentError(
            f"Tensor.transpose{dims}: takes two dims to swap, as in PyTorch "
            "(x.transpose(0, 1)); for a permutation of all dims use x.permute_dims(axes) or "
            "x.permute(*dims), to reverse them x.T")
    n = self.ndim
    bound = n or 1  # a 0-d tensor takes dims 0 and -1, as in PyTorch
    if not all(-bound <= d < bound for d in dims):
        raise ArgumentError(f"Tensor.transpose{dims}: dims out of range for a tensor of "
                            f"shape {self.shape}")
    if n == 0:
        return self
    d0, d1 = dims[0] % n, dims[1] % n
    axes = list(range(n))
    axes[d0], axes[d1] = d1, d0
    return permute_dims(self, axes=tuple(axes))


def _permute_method(self: Tensor, *dims: Any) -> Tensor:
    """``x.permute(2, 0, 1)`` or ``x.permute((2, 0, 1))``: PyTorch's name for permute_dims."""
    if len(dims) == 1 and not isinstance(dims[0], int):
        dims = tuple(dims[0])
    return permute_dims(self, axes=dims)


def _flatten_method(self: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """``x.flatten(start_dim=0, end_dim=-1)``: merge dims start_dim..end_dim, as PyTorch's
    (which, unlike NumPy's ``flatten``, may return a view)."""
    n = self.ndim
    if n == 0:
        return _reshape_method(self, 1)
    start, end = start_dim % n, end_dim % n
    if start > end:
        raise ArgumentError(f"Tensor.flatten(start_dim={start_dim}, end_dim={end_dim}): "
                            f"start_dim comes after end_dim for shape {self.shape}")
    shape = self.shape
    return _reshape_method(self, (*shape[:start], -1, *shape[end + 1:]))


def _split_method(self: Tensor, split_size_or_sections: Any, dim: int = 0) -> tuple:
    """``x.split(2)``: pieces of 2 along dim 0 (the last may be shorter); ``x.split([1, 3])``:
    pieces of those sizes. PyTorch's meaning; ``gx.split(x, n)`` is NumPy's (n equal pieces)."""
    size = self.shape[dim]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0:
            raise ArgumentError(f"Tensor.split({step}): the piece size must be positive")
        cuts = list(range(step, size, step))
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != size:
            raise ArgumentError(f"Tensor.split({sizes}, dim={dim}): sizes add up to "
                                f"{sum(sizes)}, dim {dim} of shape {self.shape} has {size}")
        cuts = [sum(sizes[: i + 1]) for i in range(len(sizes) - 1)]
    return tuple(split(self, cuts, axis=dim))


class SortResult(NamedTuple):
    """``x.sort()``'s result, as PyTorch's: sorted values and the indices they came from."""

    values: Tensor
    indices: Tensor


def _sort_method(self: Tensor, dim: int = -1, descending: bool = False,
                 stable: bool = True) -> SortResult:
    """``values, indices = x.sort(dim=-1, descending=False)``: PyTorch's ``Tensor.sort``
    (sorted values and their indices; ties keep their order). ``gx.sort(x)`` is the Array
    API function, which returns the values only."""
    return SortResult(sort(self, axis=dim, descending=descending, stable=stable),
                      argsort(self, axis=dim, descending=descending, stable=stable))


Tensor.reshape = _reshape_method
Tensor.view = _reshape_method
Tensor.transpose = _transpose_method
Tensor.permute = _permute_method
Tensor.flatten = _flatten_method
Tensor.split = _split_method
Tensor.sort = _sort_method
_install()
