"""Reductions. A reduced gradient is re-expanded with :func:`_expand` and broadcast back."""

from __future__ import annotations

import math
from typing import Any

from .._backend import ns
from .._primitive import composed, defjvp, defvjp, primitive
from .._shapes import normalize_axis
from .._tensor import Tensor
from ..errors import ShapeError


def _expand(g: Any, x: Any, axis: Any, keepdims: bool) -> Any:
    """``g`` reduced over ``axis`` of ``x`` made broadcastable against ``x`` again."""
    if keepdims or x.ndim == 0 or axis is None:  # a 0-d result broadcasts as it is
        return g
    axes = normalize_axis(axis, x.ndim)
    shape = list(x.shape)
    for a in axes:
        shape[a] = 1
    return reshape(g, shape=tuple(shape))


def _count(x: Any, axis: Any) -> int:
    n = 1
    for a in normalize_axis(axis, x.ndim):
        n *= x.shape[a]
    return n


def _reduce_jvp(fn: Any) -> Any:
    return lambda t, ans, x, *, axis=None, keepdims=False, **kw: fn(t, axis=axis,
                                                                     keepdims=keepdims, **kw)


_HALF: dict[type, Any] = {}  # raw array type -> its namespace's float16 (None: it has none)


def _half(raw: Any) -> bool:
    """Whether raw array ``raw`` is float16, which reductions accumulate in float32 (as
    PyTorch does): a sum of squares or of exponentials overflows float16's 65504 long
    before the result does."""
    try:
        half = _HALF[type(raw)]
    except KeyError:
        half = _HALF[type(raw)] = getattr(ns(raw), "float16", None)
    return half is not None and raw.dtype == half


def _is_half(x: Any) -> bool:
    """:func:`_half` for a Tensor or a raw array."""
    return _half(x.data if isinstance(x, Tensor) else x)


def _empty_reduction(op: str, x: Any, axis: Any) -> bool:
    """Whether ``axis`` of ``x`` has no elements; raises for max and min, which have no
    value there (no identity), as PyTorch does."""
    if 0 not in x.shape:
        return False
    axes = normalize_axis(axis, x.ndim, op)
    if not any(x.shape[a] == 0 for a in axes):
        return False
    if op in ("max", "min"):
        raise ShapeError(
            f"{op}: cannot reduce over an empty axis (axes {axes} of shape {tuple(x.shape)}): "
            f"the {op}imum of no elements is undefined; reduce over a non-empty axis or "
            "check the size first"
        )
    return True


@primitive(saves_args="meta", saves_ans=False)
def sum(x, /, *, axis=None, keepdims=False, dtype=None):
    xp = ns(x)
    if dtype is None and _half(x):
        return xp.astype(xp.sum(x, axis=axis, keepdims=keepdims, dtype=xp.float32), x.dtype)
    return xp.sum(x, axis=axis, keepdims=keepdims, dtype=dtype)


defvjp(sum, lambda g, ans, x, *, axis=None, keepdims=False, dtype=None:
       broadcast_to(_expand(g, x, axis, keepdims), shape=x.shape))
defjvp(sum, _reduce_jvp(sum))


@primitive(saves_args="meta", saves_ans=False)
def mean(x, /, *, axis=None, keepdims=False):
    xp = ns(x)
    if _half(x):
        return xp.astype(xp.mean(xp.astype(x, xp.float32), axis=axis, keepdims=keepdims),
                         x.dtype)
    return xp.mean(x, axis=axis, keepdims=keepdims)


def _mean_vjp(g, ans, x, *, axis=None, keepdims=False):
    n = _count(x, axis)
    g = _expand(g, x, axis, keepdims)
    if n == 0:  # x has no elements, nor has its gradient (the mean is NaN, as in PyTorch)
        return broadcast_to(zeros_like(g), shape=x.shape)
    if n > 2048 and _is_half(g):  # float16 rounds integers above 2048, and is inf past 65504
        g = astype(astype(g, dtype="float32") / n, dtype=g.dtype)
    else:
        g = g / n
    return broadcast_to(g, shape=x.shape)


defvjp(mean, _mean_vjp)
defjvp(mean, _reduce_jvp(mean))


@primitive()
def prod(x, /, *, axis=None, keepdims=False):
    xp = ns(x)
    if _half(x):  # partial products leave float16's range long before the result does
        return xp.astype(xp.prod(xp.astype(x, xp.float32), axis=axis, keepdims=keepdims),
                         x.dtype)
    return xp.prod(x, axis=axis, keepdims=keepdims)


def _ones(ref: Any, shape: tuple[int, ...]) -> Any:
    """Ones of ``shape`` in ``ref``'s dtype and backend (a Tensor for a Tensor)."""
    if isinstance(ref, Tensor):
        return ones(shape, dtype=ref.dtype, backend=ref.backend)
    return ns(ref).ones(shape, dtype=ref.dtype)


def _others(x: Any, axis: Any) -> Any:
    """Shape of ``x``: each element's product of the other elements of its slice over
    ``axis``, which is prod's derivative.

    A binary tree of multiplications, no division: the slice (moved last, flattened and
    padded with ones to a power of two, 2**k) is multiplied in pairs up to its two halves,
    and on the way down each element gets its pair partner times its parent's "others".
    So it is exact where the slice holds zeros (one, two, all) or infinities, where
    ``prod / x`` gives 0/0, and since every step is a gradx op (the pair products are
    prods over an axis of 2, whose own "others" are one flip) it differentiates again to
    any order. O(size) work in k steps."""
    nd = x.ndim
    axes = normalize_axis(axis, nd)
    n = _count(x, axes)
    if n <= 1 or nd == 0:  # one factor: its derivative is 1 (nothing to multiply: empty)
        return _ones(x, tuple(x.shape))
    kept = tuple(a for a in range(nd) if a not in axes)
    perm = kept + axes
    moved = permute_dims(x, perm) if perm != tuple(range(nd)) else x
    lead = tuple(moved.shape[: len(kept)])
    v = reshape(moved, shape=lead + (n,))
    m = 2
    while m < n:
        m *= 2
    if m > n:
        v = concat([v, _ones(v, lead + (m - n,))], axis=-1)
    levels = []
    while m > 2:  # up: products of pairs, of pairs of pairs, ..., down to the two halves
        levels.append(v)
        m //= 2
        v = prod(reshape(v, shape=lead + (m, 2)), axis=-1)
    others = flip(v, axis=-1)  # each half's "others" is the other half
    for level in reversed(levels):  # down: partner times the parent's "others"
        m *= 2
        pairs = flip(reshape(level, shape=lead + (m // 2, 2)), axis=-1)
        others = reshape(expand_dims(others, axis=-1) * pairs, shape=lead + (m,))
    if m > n:
        others = others[..., :n]
    others = reshape(others, shape=tuple(moved.shape))
    return others if moved is x else permute_dims(others, _inverse(perm))


def _prod_vjp(g, ans, x, *, axis=None, keepdims=False):
    g = _expand(g, x, axis, keepdims)
    if _is_half(x):  # partial products overflow float16 where the gradient need not
        return astype(g * _others(astype(x, dtype="float32"), axis), dtype=x.dtype)
    return g * _others(x, axis)


def _prod_jvp(t, ans, x, *, axis=None, keepdims=False):
    if _is_half(x):
        wide = astype(t, dtype="float32") * _others(astype(x, dtype="float32"), axis)
        return astype(sum(wide, axis=axis, keepdims=keepdims), dtype=x.dtype)
    return sum(t * _others(x, axis), axis=axis, keepdims=keepdims)


defvjp(prod, _prod_vjp)
defjvp(prod, _prod_jvp)


def _extremum_vjp(g, ans, x, *, axis=None, keepdims=False):
    # ties share the gradient equally among the elements that attain the extremum (PyTorch's
    # amax/amin; a NaN extremum gives the slice NaN gradients, as there)
    hit = astype(equal(x, _expand(ans, x, axis, keepdims)), dtype=x.dtype)
    return _expand(g, x, axis, keepdims) * hit / sum(hit, axis=axis, keepdims=True)


@primitive()
def max(x, /, *, axis=None, keepdims=False):
    if 0 in x.shape:
        _empty_reduction("max", x, axis)
    return ns(x).max(x, axis=axis, keepdims=keepdims)


@primitive()
def min(x, /, *, axis=None, keepdims=False):
    if 0 in x.shape:
        _empty_reduction("min", x, axis)
    return ns(x).min(x, axis=axis, keepdims=keepdims)


defvjp(max, _extremum_vjp)
defvjp(min, _extremum_vjp)


@primitive(saves_ans=False)
def var(x, /, *, axis=None, correction=0.0, keepdims=False):
    xp = ns(x)
    if _half(x):  # squared deviations above 256 overflow float16
        return xp.astype(xp.var(xp.astype(x, xp.float32), axis=axis, correction=correction,
                                keepdims=keepdims), x.dtype)
    return xp.var(x, axis=axis, correction=correction, keepdims=keepdims)


def _var_vjp(g, ans, x, *, axis=None, correction=0.0, keepdims=False):
    n = _count(x, axis)
    g = _expand(g, x, axis, keepdims)
    if n == 0:  # x has no elements, nor has its gradient (var is NaN, as in PyTorch)
        return broadcast_to(zeros_like(g), shape=x.shape)
    centered = x - mean(x, axis=axis, keepdims=True)
    if n - correction <= 0:
        # no degrees of freedom left: var is inf or NaN (PyTorch's values, with a warning)
        # and has no derivative; NaN, never a finite number, so detect_anomaly() names var
        return g * full_like(centered, math.nan)
    return g * centered * (2.0 / (n - correction))


defvjp(var, _var_vjp)


@composed
def std(x: Any, /, *, axis: Any = None, correction: float = 0.0, keepdims: bool = False) -> Any:
    """Standard deviation, sqrt(var); its gradient is 0 where var is 0 (as in PyTorch).
    float16 is computed in float32 and cast back: var itself overflows float16 where the
    deviations pass 256 while std stays far inside its range."""
    if _is_half(x):
        return astype(std(astype(x, dtype="float32"), axis=axis, correction=correction,
                          keepdims=keepdims), dtype=x.dtype)
    return sqrt(var(x, axis=axis, correction=correction, keepdims=keepdims))


@primitive(saves_args="meta", saves_ans=False)
def _cumsum(x, /, *, axis):
    xp = ns(x)
    if hasattr(xp, "cumulative_sum"):
        return xp.cumulative_sum(x, axis=axis)
    return xp.cumsum(x, axis=axis)


defvjp(_cumsum, lambda g, ans, x, *, axis: flip(_cumsum(flip(g, axis=axis), axis=axis),
                                                axis=axis))
defjvp(_cumsum, lambda t, ans, x, *, axis: _cumsum(t, axis=axis))


@composed
def cumsum(x: Any, /, *, axis: int | None = None) -> Any:
    """Cumulative sum along ``axis`` (over the flattened array when None)."""
    if axis is None:
        x = reshape(x, shape=(-1,))
        axis = 0
    return _cumsum(x, axis=axis)


cumulative_sum = cumsum


@primitive()
def logsumexp(x, /, *, axis=None, keepdims=False):
    xp = ns(x)
    if 0 in x.shape and _empty_reduction("logsumexp", x, axis):  # log(0): -inf, as PyTorch
        return xp.sum(x, axis=axis, keepdims=keepdims) - math.inf
    if _half(x):  # the sum of exponentials in float32, as PyTorch does
        return xp.astype(logsumexp(xp.astype(x, xp.float32), axis=axis, keepdims=keepdims),
                         x.dtype)
    keep = keepdims or axis is not None  # a full reduction to a scalar needs no reshape
    m = xp.max(x, axis=axis, keepdims=keep)
    m = xp.where(xp.isfinite(m), m, 0.0)  # all -inf slices stay -inf, never NaN
    out = xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=keep)) + m
    if not keepdims and keep:
        out = xp.reshape(out, tuple(s for i, s in enumerate(x.shape)
                                    if i not in normalize_axis(axis, x.ndim)))
    return out


def _shift(xp: Any, x: Any, axis: Any) -> Any:
    """x minus its max along ``axis``; rows whose max is infinite are not shifted."""
    m = xp.max(x, axis=axis, keepdims=True)
    return x - xp.where(xp.isfinite(m), m, xp.zeros_like(m))


@primitive(saves_args=False)
def log_softmax(x, /, *, axis=-1):
    """log(softmax(x)) computed as (x - max) - log(sum(exp(x - max))): finite for any
    finite logits, where the composition overflows at |x| of about 90 in float32."""
    xp = ns(x)
    if 0 in x.shape:  # nothing to normalize: an empty result, as in PyTorch
        return xp.zeros_like(x)
    if _half(x):  # the sum of exponentials in float32, as PyTorch does
        return xp.astype(log_softmax(xp.astype(x, xp.float32), axis=axis), x.dtype)
    z = _shift(xp, x, axis)
    return z - xp.log(xp.sum(xp.exp(z), axis=axis, keepdims=True))


defvjp(log_softmax,
       lambda g, ans, x, *, axis=-1: g - exp(ans) * sum(g, axis=axis, keepdims=True))
defjvp(log_softmax,
       lambda t, ans, x, *, axis=-1: t - sum(exp(ans) * t, axis=axis, keepdims=True))


@primitive(saves_args=False)
def softmax(x, /, *, axis=-1):
    """exp(x) / sum(exp(x)) along ``axis``, shifted by the max so nothing overflows."""
    xp = ns(x)
    if 0 in x.shape:  # nothing to normalize: an empty result, as in PyTorch
        return xp.zeros_like(x)
    if _half(x):  # the sum of exponentials in float32, as PyTorch does
        return xp.astype(softmax(xp.astype(x, xp.float32), axis=axis), x.dtype)
    e = xp.exp(_shift(xp, x, axis))
    return e / xp.sum(e, axis=axis, keepdims=True)


def _through_softmax(v: Any, p: Any, axis: Any) -> Any:
    """``v`` times the Jacobian of softmax at output ``p`` (symmetric: VJP and JVP alike)."""
    return p * (v - sum(v * p, axis=axis, keepdims=True))


defvjp(softmax, lambda g, ans, x, *, axis=-1: _through_softmax(g, ans, axis))
defjvp(softmax, lambda t, ans, x, *, axis=-1: _through_softmax(t, ans, axis))


@primitive(saves_args=False)
def softmax_given_logsumexp(x, lse, /, *, axis=None):
    """softmax(x) along ``axis`` (None: all of x) from ``lse``, x's logsumexp made
    broadcastable against x: what logsumexp's rules need, in four array operations where
    softmax needs eight, since the forward pass already found the shift.

    exp(x - lse) is at most 1, so it never overflows, and sums to 1 up to the rounding of
    lse; the division removes that rounding, which is not small at |x| ~ 1e4 (float32) or
    1e300 (float64), where lse rounds to max(x) and two tied maxima would otherwise get
    weight 1 each instead of 0.5. The result does not depend on lse (any per-slice shift
    gives it), so lse has no gradient: pass it as a constant."""
    xp = ns(x)
    if _half(x):  # the sum in float32, as softmax
        wide = xp.astype(x, xp.float32)
        e = xp.exp(wide - xp.astype(lse, xp.float32))
        return xp.astype(e / xp.sum(e, axis=axis, keepdims=True), x.dtype)
    e = xp.exp(x - lse)
    return e / xp.sum(e, axis=axis, keepdims=True)


defvjp(softmax_given_logsumexp,
       lambda g, ans, x, lse, *, axis=None: _through_softmax(g, ans, axis), None)
defjvp(softmax_given_logsumexp,
       lambda t, ans, x, lse, *, axis=None: _through_softmax(t, ans, axis), None)


def _softmax_of(x: Any, ans: Any, axis: Any, keepdims: bool) -> Any:
    """softmax(x) from logsumexp's saved ``ans``, which enters as a constant."""
    lse = _expand(ans.detach() if isinstance(ans, Tensor) else ans, x, axis, keepdims)
    return softmax_given_logsumexp(x, lse, axis=axis)


# one primitive for the softmax, so create_graph records one node
defvjp(logsumexp, lambda g, ans, x, *, axis=None, keepdims=False:
       _expand(g, x, axis, keepdims) * _softmax_of(x, ans, axis, keepdims))


def _logsumexp_jvp(t, ans, x, *, axis=None, keepdims=False):
    p = _softmax_of(x, ans, axis, keepdims)
    if x.ndim == 1 and not keepdims and normalize_axis(axis, 1) == (0,):  # one dot product
        return p @ t
    return sum(t * p, axis=axis, keepdims=keepdims)


defjvp(logsumexp, _logsumexp_jvp)


def _arg(name: str) -> Any:
    def fun(x, /, *, axis=None, keepdims=False):
        return getattr(ns(x), name)(x, axis=axis, keepdims=keepdims)

    fun.__name__ = fun.__qualname__ = name
    fun.__doc__ = f"Index of the {name[3:]}imum; an integer result, so no gradient."
    return primitive(fun, saves_args=False, saves_ans=False)


argmax = _arg("argmax")
argmin = _arg("argmin")


@primitive(saves_args=False, saves_ans=False)
def argsort(x, /, *, axis=-1, descending=False, stable=True):
    return ns(x).argsort(-x if descending else x, axis=axis, stable=stable)


from .comparison import equal  # noqa: E402
from .creation import full_like, ones, zeros_like  # noqa: E402
from .elementwise import astype, exp, sqrt  # noqa: E402
from .shape import _inverse, broadcast_to, concat, expand_dims, flip, permute_dims, reshape  # noqa: E402, E501
