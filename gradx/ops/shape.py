"""Shape ops: they move values around, so their rules move the gradient back.

An op whose backend result can share the input's memory (reshape, permute_dims, expand_dims,
squeeze, broadcast_to, flip; getitem and matrix_transpose elsewhere) is marked ``view=True``:
its output shares the input's version counter, as PyTorch's views do. concat, stack, tile and
to_backend always copy; split and unstack are getitem views."""

from __future__ import annotations

from typing import Any

from .._backend import backend_of, ns, resolve
from .._primitive import composed, defjvp, defvjp, defvjp_argnum, primitive
from .._tensor import Tensor
from ..errors import ShapeError

_moves = dict(saves_args="meta", saves_ans=False)


@primitive(**_moves, view=True)
def _reshape(x, /, *, shape):
    return ns(x).reshape(x, shape)


defvjp(_reshape, lambda g, ans, x, *, shape: _reshape(g, shape=x.shape))
defjvp(_reshape, lambda t, ans, x, *, shape: _reshape(t, shape=shape))


@composed
def reshape(x: Any, /, shape: Any = None, *, copy: bool | None = None) -> Any:
    """Array API reshape; ``shape`` may contain one -1. The result shares ``x``'s memory (and
    version counter) where the backend can view it; ``copy=True`` gives a differentiable
    copy instead."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    out = _reshape(x, shape=shape)
    return astype(out, out.dtype, copy=True) if copy else out


@primitive(**_moves, view=True)
def _permute_dims(x, /, *, axes):
    return ns(x).permute_dims(x, axes)


def _inverse(axes: tuple[int, ...]) -> tuple[int, ...]:
    inv = [0] * len(axes)
    for i, a in enumerate(axes):
        inv[a] = i
    return tuple(inv)


defvjp(_permute_dims, lambda g, ans, x, *, axes: _permute_dims(g, axes=_inverse(axes)))
defjvp(_permute_dims, lambda t, ans, x, *, axes: _permute_dims(t, axes=axes))


@composed
def permute_dims(x: Any, /, axes: Any) -> Any:
    axes = tuple(a % x.ndim for a in axes) if x.ndim else ()
    return _permute_dims(x, axes=axes)


@composed
def moveaxis(x: Any, source: int, destination: int) -> Any:
    order = [i for i in range(x.ndim) if i != source % x.ndim]
    order.insert(destination % x.ndim, source % x.ndim)
    return permute_dims(x, tuple(order))


def matrix_transpose_axes(ndim: int) -> tuple[int, ...]:
    return tuple(range(ndim - 2)) + (ndim - 1, ndim - 2)


@primitive(**_moves, view=True)
def expand_dims(x, /, *, axis=0):
    return ns(x).expand_dims(x, axis=axis)


defvjp(expand_dims, lambda g, ans, x, *, axis=0: _reshape(g, shape=x.shape))
defjvp(expand_dims, lambda t, ans, x, *, axis=0: expand_dims(t, axis=axis))


@primitive(**_moves, view=True)
def squeeze(x, /, axis=None):
    if axis is None:
        axis = tuple(i for i, s in enumerate(x.shape) if s == 1)
    return ns(x).squeeze(x, axis=axis)


defvjp(squeeze, lambda g, ans, x, axis=None: _reshape(g, shape=x.shape))
defjvp(squeeze, lambda t, ans, x, axis=None: squeeze(t, axis=axis))


@primitive(broadcasts=True, saves_args=False, saves_ans=False, view=True)
def _broadcast_to(x, /, *, shape):
    return ns(x).broadcast_to(x, shape)


# the tape sums the gradient back to the input's shape
defvjp(_broadcast_to, lambda g, ans, x, *, shape: g)
defjvp(_broadcast_to, lambda t, ans, x, *, shape: _broadcast_to(t, shape=shape))


@composed
def broadcast_to(x: Any, /, shape: Any) -> Any:
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    if tuple(x.shape) == shape:
        return x
    return _broadcast_to(x, shape=shape)


def _split_offsets(args: tuple, axis: int) -> list[int]:
    offsets = [0]
    for a in args:
        offsets.append(offsets[-1] + a.shape[axis])
    return offsets


def _take_along(g: Any, axis: int, start: int, stop: int) -> Any:
    key = (slice(None),) * (axis % g.ndim) + (slice(start, stop), Ellipsis)
    from .indexing import getitem

    return getitem(g, key=key)


@primitive(**_moves)
def _concat(*arrays, axis=0):
    return ns(*arrays).concat(arrays, axis=axis)


def _concat_vjp(argnum, g, ans, *arrays, axis=0):
    if axis is None:
        sizes = [0] + [a.size for a in arrays]
        start = builtin_sum(sizes[: argnum + 1])
        return reshape(g[start: start + arrays[argnum].size], arrays[argnum].shape)
    offsets = _split_offsets(arrays, axis % g.ndim)
    return _take_along(g, axis, offsets[argnum], offsets[argnum + 1])


defvjp_argnum(_concat, _concat_vjp)


@composed
def concat(arrays: Any, /, *, axis: int | None = 0) -> Any:
    """Join tensors along an existing axis (flattened first when axis is None)."""
    arrays = tuple(arrays)
    if not arrays:
        raise ShapeError("concat needs at least one array")
    return _concat(*arrays, axis=axis)


@primitive(**_moves)
def _stack(*arrays, axis=0):
    return ns(*arrays).stack(arrays, axis=axis)


def _stack_vjp(argnum, g, ans, *arrays, axis=0):
    from .indexing import getitem

    return getitem(g, key=(slice(None),) * (axis % g.ndim) + (argnum, Ellipsis))


defvjp_argnum(_stack, _stack_vjp)


@composed
def stack(arrays: Any, /, *, axis: int = 0) -> Any:
    """Join tensors along a new axis."""
    arrays = tuple(arrays)
    if not arrays:
        raise ShapeError("stack needs at least one array")
    return _stack(*arrays, axis=axis)


@composed
def split(x: Any, indices_or_sections: Any, /, *, axis: int = 0) -> list[Any]:
    """NumPy-style split into equal sections or at indices; composed from slicing."""
    n = x.shape[axis]
    if isinstance(indices_or_sections, int):
        if n % indices_or_sections:
            raise ShapeError(f"split: axis {axis} of size {n} does not divide into "
                             f"{indices_or_sections} equal sections")
        step = n // indices_or_sections  # 0 for an empty axis: that many empty pieces
        bounds = [i * step for i in range(indices_or_sections + 1)]
    else:
        bounds = [0, *indices_or_sections, n]
    if isinstance(x, Tensor) and all(0 <= a <= b <= n for a, b in zip(bounds[:-1], bounds[1:],
                                                                          strict=True)):
        from .steps import split_pieces  # one gradient for x, not one per piece (O(T^2))

        return list(split_pieces(x, bounds, axis))
    return [_take_along(x, axis, a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


@composed
def unstack(x: Any, /, *, axis: int = 0) -> tuple[Any, ...]:
    from .indexing import getitem

    if isinstance(x, Tensor) and x.ndim:
        from .steps import split_pieces  # one gradient for x, not one per piece (O(T^2))

        return split_pieces(x, None, axis)

    return tuple(getitem(x, key=(slice(None),) * (axis % x.ndim) + (i, Ellipsis))
                 for i in range(x.shape[axis]))


# A copy, as torch.flip: NumPy, CuPy and array_api_strict return a view (negative strides),
# and a write into either array would change the other, where PyTorch's user expects not
@primitive(**_moves)
def flip(x, /, *, axis=None):
    return backend_of(x).copy(ns(x).flip(x, axis=axis))


defvjp(flip, lambda g, ans, x, *, axis=None: flip(g, axis=axis))
defjvp(flip, lambda t, ans, x, *, axis=None: flip(t, axis=axis))


@primitive(**_moves)
def _tile(x, /, *, repetitions):
    return ns(x).tile(x, repetitions)


def _tile_vjp(g, ans, x, *, repetitions):
    # view the output as (rep_0, size_0, rep_1, size_1, ...) and sum the rep axes
    ndim = builtin_max(len(repetitions), x.ndim)
    reps = (1,) * (ndim - len(repetitions)) + tuple(repetitions)
    sizes = (1,) * (ndim - x.ndim) + tuple(x.shape)
    paired = tuple(v for pair in zip(reps, sizes, strict=True) for v in pair)
    summed = sum(reshape(g, paired), axis=tuple(range(0, 2 * ndim, 2)))
    return reshape(summed, x.shape)


defvjp(_tile, _tile_vjp)


@composed
def tile(x: Any, /, repetitions: Any) -> Any:
    reps = (repetitions,) if isinstance(repetitions, int) else tuple(repetitions)
    return _tile(x, repetitions=reps)


@primitive(saves_args=False, saves_ans=False, changes_backend=True)
def to_backend(x, /, *, src, dst):
    target = resolve(dst)
    return target.from_numpy(backend_of(x).to_numpy(x))


defvjp(to_backend, lambda g, ans, x, *, src, dst: to_backend(g, src=dst, dst=src))
defjvp(to_backend, lambda t, ans, x, *, src, dst: to_backend(t, src=src, dst=dst))


builtin_sum = sum
builtin_max = max

from .elementwise import astype  # noqa: E402
from .reductions import sum  # noqa: E402

