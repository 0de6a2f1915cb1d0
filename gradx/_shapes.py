"""Shape arithmetic only: broadcasting, axis normalization, summing a gradient back to a shape."""

from __future__ import annotations

from typing import Any

from .errors import ShapeError


def normalize_axis(axis: Any, ndim: int, op: str = "op") -> tuple[int, ...]:
    """``axis`` (None, int or sequence) as a sorted tuple of non-negative ints."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ShapeError(f"{op}: axis {a} is out of range for an array of {ndim} dimensions")
        out.append(a % ndim if ndim else 0)
    return tuple(sorted(out))


def broadcast_shapes(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """NumPy's broadcasting of shapes, raising ShapeError naming them all."""
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(-ndim, 0):
        size = 1
        for s in shapes:
            if len(s) >= -i:
                d = s[i]
                if d != 1:
                    if size not in (1, d):
                        raise ShapeError(f"shapes {shapes} cannot be broadcast together")
                    size = d
        out.append(size)
    return tuple(out)


def sum_axes(gshape: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    """Axes of a gradient of shape ``gshape`` to sum so it reduces to ``shape``."""
    lead = len(gshape) - len(shape)
    if lead < 0:
        raise ShapeError(f"cannot reduce a gradient of shape {gshape} to the larger {shape}")
    axes = list(range(lead))
    for i, s in enumerate(shape):
        if s == 1 and gshape[lead + i] != 1:
            axes.append(lead + i)
        elif s != gshape[lead + i] and s != 1:
            raise ShapeError(f"a gradient of shape {gshape} does not broadcast from {shape}")
    return tuple(axes)


_SUM_PLANS: dict[tuple, tuple] = {}


def sum_to(g: Any, shape: tuple[int, ...]) -> Any:
    """Sum broadcast gradient ``g`` back to ``shape``; works on raw arrays and Tensors."""
    gshape = tuple(g.shape)
    shape = tuple(shape)
    if gshape == shape:
        return g
    plan = _SUM_PLANS.get((gshape, shape))
    if plan is None:
        axes = sum_axes(gshape, shape)
        reduced = tuple(d for i, d in enumerate(gshape) if i not in axes)
        plan = _SUM_PLANS[(gshape, shape)] = (axes, reduced != shape)
        if len(_SUM_PLANS) > 4096:  # shapes vary without bound in some programs
            _SUM_PLANS.clear()
    axes, needs_reshape = plan
    if axes:
        g = _ops.sum(g, axis=axes)
    if needs_reshape:
        g = _ops.reshape(g, shape)
    return g


class _LazyOps:
    """The reductions module is imported after this one; bind its functions on first use."""

    def __getattr__(self, name: str) -> Any:
        from .ops import reductions, shape

        self.sum = reductions.sum
        self.reshape = shape.reshape
        return getattr(self, name)


_ops = _LazyOps()
