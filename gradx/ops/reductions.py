"""Reductions. A reduced gradient is re-expanded with :func:`_expand` and broadcast back."""

from __future__ import annotations

from typing import Any

from .._backend import ns
from .._primitive import composed, defjvp, defvjp, primitive
from .._shapes import normalize_axis
from .._tensor import Tensor


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


@primitive(saves_args="meta", saves_ans=False)
def sum(x, /, *, axis=None, keepdims=False, dtype=None):
    return ns(x).sum(x, axis=axis, keepdims=keepdims, dtype=dtype)


defvjp(sum, lambda g, ans, x, *, axis=None, keepdims=False, dtype=None:
       broadcast_to(_expand(g, x, axis, keepdims), shape=x.shape))
defjvp(sum, _reduce_jvp(sum))


@primitive(saves_args="meta", saves_ans=False)
def mean(x, /, *, axis=None, keepdims=False):
    return ns(x).mean(x, axis=axis, keepdims=keepdims)


defvjp(mean, lambda g, ans, x, *, axis=None, keepdims=False:
       broadcast_to(_expand(g, x, axis, keepdims) / _count(x, axis), shape=x.shape))
defjvp(mean, _reduce_jvp(mean))


@primitive()
def prod(x, /, *, axis=None, keepdims=False):
    return ns(x).prod(x, axis=axis, keepdims=keepdims)


def _prod_vjp(g, ans, x, *, axis=None, keepdims=False):
    # product of the other elements, exact when x has zeros: with one zero in a slice only
    # that position gets a gradient; with two or more, none does
    is_zero = equal(x, 0)
    safe = where(is_zero, 1.0, x)
    others = prod(safe, axis=axis, keepdims=True)
    zeros = sum(astype(is_zero, dtype=x.dtype), axis=axis, keepdims=True)
    grad = where(equal(zeros, 0), others / safe, where(is_zero & equal(zeros, 1), others, 0.0))
    return _expand(g, x, axis, keepdims) * grad


defvjp(prod, _prod_vjp)


def _extremum_vjp(g, ans, x, *, axis=None, keepdims=False):
    # ties share the gradient equally among the elements that attain the extremum
    hit = astype(equal(x, _expand(ans, x, axis, keepdims)), dtype=x.dtype)
    return _expand(g, x, axis, keepdims) * hit / sum(hit, axis=axis, keepdims=True)


@primitive()
def max(x, /, *, axis=None, keepdims=False):
    return ns(x).max(x, axis=axis, keepdims=keepdims)


@primitive()
def min(x, /, *, axis=None, keepdims=False):
    return ns(x).min(x, axis=axis, keepdims=keepdims)


defvjp(max, _extremum_vjp)
defvjp(min, _extremum_vjp)


@primitive(saves_ans=False)
def var(x, /, *, axis=None, correction=0.0, keepdims=False):
    return ns(x).var(x, axis=axis, correction=correction, keepdims=keepdims)


def _var_vjp(g, ans, x, *, axis=None, correction=0.0, keepdims=False):
    centered = x - mean(x, axis=axis, keepdims=True)
    return _expand(g, x, axis, keepdims) * centered * (2.0 / (_count(x, axis) - correction))


defvjp(var, _var_vjp)


@composed
def std(x: Any, /, *, axis: Any = None, correction: float = 0.0, keepdims: bool = False) -> Any:
    """Standard deviation; composed as sqrt(var), so its gradient is 0 where var is 0."""
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
from .elementwise import astype, exp, sqrt, where  # noqa: E402
from .shape import broadcast_to, flip, reshape  # noqa: E402
