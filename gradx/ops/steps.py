"""Splitting an array into pieces along an axis with a backward of O(size) work:
``unstack``, ``split`` and the recurrent layers' per-step inputs.

Composed from slicing, each of T pieces has a VJP that scatters its gradient into zeros of
the input's full shape, and the tape sums T full-size gradients: O(T * size) work and
allocation, quadratic in T for a sequence. Here every piece depends on one hub node (a
size-0 token standing for the input): a piece's VJP files its gradient in a slot list shared
with the hub and hands the hub a size-0 zero; the hub's VJP, which the walk reaches after
every piece (it was recorded first), stacks or concatenates the slots (zeros where a piece
got no gradient) into the input's one gradient. The rules are written with gradx functions,
so under ``create_graph`` that gradient is recorded and differentiable again. In forward
mode the hub's JVP files the input's tangent in the same object and each piece's JVP slices
it.

Pieces are views of the input and share its version counter (the hub and the pieces are
view primitives), as slices are.
"""

from __future__ import annotations

from typing import Any

from .._backend import ns
from .._primitive import defjvp, defvjp, primitive
from .._tensor import Tensor
from .shape import concat, stack


class _Slots:
    """One split's per-piece gradients (filled by the pieces' rules, emptied by the hub's),
    the pieces' keys and shapes (for zeros where a piece got none) and, in forward mode, the
    input's tangent."""

    __slots__ = ("grads", "keys", "shapes", "joined", "axis", "tangent")

    def __init__(self, keys: list, shapes: list, joined: bool, axis: int) -> None:
        self.grads: list = [None] * len(keys)
        self.keys, self.shapes, self.joined, self.axis = keys, shapes, joined, axis
        self.tangent: Any = None


def _raw(a: Any) -> Any:
    return a.data if isinstance(a, Tensor) else a


@primitive(saves_args="meta", saves_ans=False, view=True)
def _split_hub(x, /, *, slots):
    """A size-0 token standing for ``x``, which every piece of the split depends on."""
    return ns(x).zeros((0,), dtype=x.dtype)


def _hub_vjp(g, ans, x, *, slots):
    grads, slots.grads = slots.grads, [None] * len(slots.grads)
    if any(p is None for p in grads):
        raw = _raw(g)
        xp = ns(raw)
        grads = [xp.zeros(shape, dtype=raw.dtype) if p is None else p
                 for p, shape in zip(grads, slots.shapes, strict=True)]
    if slots.joined:
        return concat(grads, axis=slots.axis)
    return stack(grads, axis=slots.axis)


def _hub_jvp(t, ans, x, *, slots):
    slots.tangent = t
    raw = _raw(t)
    return ns(raw).zeros((0,), dtype=raw.dtype)


defvjp(_split_hub, _hub_vjp)
defjvp(_split_hub, _hub_jvp)


@primitive(saves_args=False, saves_ans=False, view=True)
def _split_piece(token, /, *, src, index, slots):
    """Piece ``index`` of the split of ``src`` (a view); ``token`` is the split's hub."""
    return src[slots.keys[index]]


def _piece_vjp(g, ans, token, *, src, index, slots):
    prev = slots.grads[index]
    slots.grads[index] = g if prev is None else prev + g
    raw = _raw(g)
    return ns(raw).zeros((0,), dtype=raw.dtype)


def _piece_jvp(t, ans, token, *, src, index, slots):
    from .indexing import getitem

    return getitem(slots.tangent, key=slots.keys[index])


defvjp(_split_piece, _piece_vjp)
defjvp(_split_piece, _piece_jvp)


def split_pieces(x: Any, bounds: list[int] | None, axis: int) -> tuple[Any, ...]:
    """The pieces of ``x`` along ``axis``: one per index (``bounds`` None: x's slices with
    that axis dropped, as ``unstack``) or one per ``[bounds[i], bounds[i + 1])`` (as
    ``split``). A Tensor that may need a gradient goes through the hub; anything else is
    sliced."""
    axis %= x.ndim
    lead = (slice(None),) * axis
    if bounds is None:
        keys = [lead + (i, Ellipsis) for i in range(x.shape[axis])]
    else:
        keys = [lead + (slice(a, b), Ellipsis) for a, b in zip(bounds[:-1], bounds[1:],
                                                                strict=True)]
    if not isinstance(x, Tensor) or not (x.requires_grad or x._node is not None):
        from .indexing import getitem

        return tuple(getitem(x, key=k) for k in keys)
    rest = tuple(x.shape[:axis]), tuple(x.shape[axis + 1:])
    if bounds is None:
        shapes = [rest[0] + rest[1]] * len(keys)
    else:
        shapes = [rest[0] + (b - a,) + rest[1] for a, b in zip(bounds[:-1], bounds[1:],
                                                                strict=True)]
    slots = _Slots(keys, shapes, bounds is not None, axis)
    token = _split_hub(x, slots=slots)
    src = x.data
    return tuple(_split_piece(token, src=src, index=i, slots=slots) for i in range(len(keys)))


def split_steps(x: Any, axis: int = 0) -> tuple[Any, ...]:
    """``x``'s slices along ``axis`` (x's shape without that axis), whose backward costs
    O(size of x) in all."""
    return split_pieces(x, None, axis)
