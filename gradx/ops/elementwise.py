"""Elementwise primitives. Rules are written as if shapes matched: broadcasting ops are
unbroadcast by the tape."""

from __future__ import annotations

import math
from typing import Any

from .._backend import ns
from .._primitive import composed, defjvp, defvjp, primitive
from .._tape import identity_vjp

_ew = dict(broadcasts=True)
_linear = dict(broadcasts=True, saves_args=False, saves_ans=False)


# -- arithmetic -----------------------------------------------------------------------

@primitive(**_linear)
def add(x, y, /):
    return x + y


defvjp(add, identity_vjp, identity_vjp)
defjvp(add, lambda t, ans, x, y: t, lambda t, ans, x, y: t)


@primitive(**_linear)
def subtract(x, y, /):
    return x - y


defvjp(subtract, identity_vjp, lambda g, ans, x, y: -g)
defjvp(subtract, lambda t, ans, x, y: t, lambda t, ans, x, y: -t)


@primitive(broadcasts=True, saves_ans=False)
def multiply(x, y, /):
    return x * y


defvjp(multiply, lambda g, ans, x, y: g * y, lambda g, ans, x, y: g * x)
defjvp(multiply, lambda t, ans, x, y: t * y, lambda t, ans, x, y: x * t)


@primitive(**_ew)
def divide(x, y, /):
    return x / y


defvjp(divide, lambda g, ans, x, y: g / y, lambda g, ans, x, y: -g * ans / y)
defjvp(divide, lambda t, ans, x, y: t / y, lambda t, ans, x, y: -t * ans / y)


@primitive(saves_args=False, saves_ans=False)
def negative(x, /):
    return -x


defvjp(negative, lambda g, ans, x: -g)
defjvp(negative, lambda t, ans, x: -t)


@primitive(saves_args=False, saves_ans=False, view=True)
def positive(x, /):
    return x


defvjp(positive, identity_vjp)
defjvp(positive, lambda t, ans, x: t)


@primitive(**_ew)
def pow(x, y, /):
    return x**y


def _pow_vjp_y(g, ans, x, y):
    # d/dy x**y = x**y log x. At x == 0 it is taken as 0 for y >= 0 (the limit from y > 0,
    # as PyTorch) and is -inf for y < 0; where x < 0 it is NaN (log of a negative number),
    # never a 0 that hides the NaN from detect_anomaly()
    if isinstance(x, int | float):
        if x > 0:
            return g * (ans * math.log(x))
        if x == 0:
            undefined = where(less(y, 0), -math.inf, full_like(g, math.nan))  # y is NaN
            return g * where(greater_equal(y, 0), 0.0, undefined)
        return g * (ans * math.nan)  # a negative (or NaN) base: NaN at every order
    limit = logical_and(equal(x, 0), greater_equal(y, 0))
    return g * where(limit, 0.0, ans * log(where(limit, 1.0, x)))


def _pow_vjp_x(g, ans, x, y):
    # d/dx x**y = y x**(y - 1), and 0 where y == 0: x**0 is the constant 1, also at x == 0
    # where the formula gives 0 * inf (PyTorch, JAX and autograd agree). The base under the
    # mask is 1, so the masked branch stays finite and the rule differentiates again.
    if isinstance(y, int | float):  # a constant exponent: the common x ** 2 costs one multiply
        if y == 2:
            return g * (2 * x)
        return zeros_like(g) if y == 0 else g * (y * x ** (y - 1))
    y0 = equal(y, 0)
    return g * where(y0, 0.0, y * where(y0, 1.0, x) ** (y - 1))


defvjp(pow, _pow_vjp_x, _pow_vjp_y)


@primitive(saves_ans=False)
def square(x, /):
    return x * x


defvjp(square, lambda g, ans, x: g * (2 * x))
defjvp(square, lambda t, ans, x: t * (2 * x))


@primitive(saves_ans=False)
def abs(x, /):
    return ns(x).abs(x)


# subgradient 0 at x == 0 (sign(0) = 0)
defvjp(abs, lambda g, ans, x: g * sign(x))
defjvp(abs, lambda t, ans, x: t * sign(x))


# -- exponentials and logarithms ------------------------------------------------------

@primitive(saves_args=False)
def exp(x, /):
    return ns(x).exp(x)


defvjp(exp, lambda g, ans, x: g * ans)
defjvp(exp, lambda t, ans, x: t * ans)


@primitive(saves_args=False)
def expm1(x, /):
    return ns(x).expm1(x)


defvjp(expm1, lambda g, ans, x: g * (ans + 1))
defjvp(expm1, lambda t, ans, x: t * (ans + 1))


@primitive(saves_ans=False)
def log(x, /):
    return ns(x).log(x)


defvjp(log, lambda g, ans, x: g / x)
defjvp(log, lambda t, ans, x: t / x)


@primitive(saves_ans=False)
def log1p(x, /):
    return ns(x).log1p(x)


defvjp(log1p, lambda g, ans, x: g / (x + 1))
defjvp(log1p, lambda t, ans, x: t / (x + 1))


@primitive(saves_args=False)
def sqrt(x, /):
    return ns(x).sqrt(x)


def _sqrt_vjp(g, ans, x):
    # 1 / (2 sqrt(x)), taken as 0 at x == 0 (a documented choice that keeps sqrt(sum(x**2))
    # finite at the origin; PyTorch gives inf there). Where x < 0 or x is NaN the output is
    # NaN and so is the gradient, so detect_anomaly() names sqrt.
    zero = equal(ans, 0)
    return where(zero, 0.0, g / (2 * where(zero, 1.0, ans)))


defvjp(sqrt, _sqrt_vjp)
defjvp(sqrt, _sqrt_vjp)


@primitive(saves_args=False)
def tanh(x, /):
    return ns(x).tanh(x)


defvjp(tanh, lambda g, ans, x: g * (1 - ans * ans))
defjvp(tanh, lambda t, ans, x: t * (1 - ans * ans))


@primitive(saves_args=False)
def sigmoid(x, /):
    xp = ns(x)
    e = xp.exp(-xp.abs(x))  # never overflows
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


defvjp(sigmoid, lambda g, ans, x: g * (ans * (1 - ans)))
defjvp(sigmoid, lambda t, ans, x: t * (ans * (1 - ans)))


# -- trigonometric and hyperbolic -----------------------------------------------------

@primitive(saves_ans=False)
def sin(x, /):
    return ns(x).sin(x)


defvjp(sin, lambda g, ans, x: g * cos(x))
defjvp(sin, lambda t, ans, x: t * cos(x))


@primitive(saves_ans=False)
def cos(x, /):
    return ns(x).cos(x)


defvjp(cos, lambda g, ans, x: -g * sin(x))
defjvp(cos, lambda t, ans, x: -t * sin(x))


@primitive(saves_args=False)
def tan(x, /):
    return ns(x).tan(x)


defvjp(tan, lambda g, ans, x: g * (1 + ans * ans))
defjvp(tan, lambda t, ans, x: t * (1 + ans * ans))


@primitive(saves_ans=False)
def sinh(x, /):
    return ns(x).sinh(x)


defvjp(sinh, lambda g, ans, x: g * cosh(x))
defjvp(sinh, lambda t, ans, x: t * cosh(x))


@primitive(saves_ans=False)
def cosh(x, /):
    return ns(x).cosh(x)


defvjp(cosh, lambda g, ans, x: g * sinh(x))
defjvp(cosh, lambda t, ans, x: t * sinh(x))


@primitive(saves_ans=False)
def asin(x, /):
    return ns(x).asin(x)


def _asin_scale(x):
    """1 / sqrt(1 - x*x), asin's derivative, as a power: through sqrt, whose derivative is
    taken as 0 at 0, the second derivative at x = +-1 would be 0 instead of infinite (as in
    PyTorch). NaN at x = +-inf, where asin is NaN and the power would give 0."""
    return where(isinf(x), math.nan, (1 - x * x) ** -0.5)


defvjp(asin, lambda g, ans, x: g * _asin_scale(x))


@primitive(saves_ans=False)
def acos(x, /):
    return ns(x).acos(x)


defvjp(acos, lambda g, ans, x: -g * _asin_scale(x))


@primitive(saves_ans=False)
def atan(x, /):
    return ns(x).atan(x)


defvjp(atan, lambda g, ans, x: g / (1 + x * x))
defjvp(atan, lambda t, ans, x: t / (1 + x * x))


@primitive(broadcasts=True, saves_ans=False)
def atan2(y, x, /):
    return ns(y, x).atan2(y, x)


def _atan2_scale(y, x):
    """1 / (x*x + y*y), and 0 at the origin, where atan2 jumps and has no derivative: its
    gradient there is taken as 0 (a subgradient, as in PyTorch) instead of 0 * inf = NaN.
    The masked denominator is 1, so the rule differentiates again."""
    origin = logical_and(equal(x, 0), equal(y, 0))
    return where(origin, 0.0, 1 / where(origin, 1.0, x * x + y * y))


defvjp(atan2, lambda g, ans, y, x: g * x * _atan2_scale(y, x),
       lambda g, ans, y, x: -g * y * _atan2_scale(y, x))


# -- piecewise ------------------------------------------------------------------------

def _zero_rule(g, ans, *args, **kwargs):
    return zeros_like(g)


@primitive(saves_args=False, saves_ans=False)
def sign(x, /):
    return ns(x).sign(x)


@primitive(saves_args=False, saves_ans=False)
def floor(x, /):
    return ns(x).floor(x)


@primitive(saves_args=False, saves_ans=False)
def ceil(x, /):
    return ns(x).ceil(x)


@primitive(saves_args=False, saves_ans=False)
def round(x, /):
    return ns(x).round(x)


for _step in (sign, floor, ceil, round):  # piecewise constant: zero gradient almost everywhere
    defvjp(_step, _zero_rule)
    defjvp(_step, _zero_rule)


def _tie_weight(x, y, dtype):
    """0 where x loses to y, 0.5 on ties (they share the gradient equally), 1 otherwise:
    where x wins, and where x or y is NaN, whose gradient passes to both inputs (as in
    PyTorch) instead of vanishing."""
    return 1.0 - astype(less(x, y), dtype=dtype) - 0.5 * astype(equal(x, y), dtype=dtype)


@primitive(broadcasts=True, saves_ans=False)
def maximum(x, y, /):
    return ns(x, y).maximum(x, y)


defvjp(maximum, lambda g, ans, x, y: g * _tie_weight(x, y, g.dtype),
       lambda g, ans, x, y: g * _tie_weight(y, x, g.dtype))
defjvp(maximum, lambda t, ans, x, y: t * _tie_weight(x, y, t.dtype),
       lambda t, ans, x, y: t * _tie_weight(y, x, t.dtype))


@primitive(broadcasts=True, saves_ans=False)
def minimum(x, y, /):
    return ns(x, y).minimum(x, y)


defvjp(minimum, lambda g, ans, x, y: g * _tie_weight(y, x, g.dtype),
       lambda g, ans, x, y: g * _tie_weight(x, y, g.dtype))
defjvp(minimum, lambda t, ans, x, y: t * _tie_weight(y, x, t.dtype),
       lambda t, ans, x, y: t * _tie_weight(x, y, t.dtype))


@primitive(saves_ans=False)
def _clip(x, /, *, min=None, max=None):
    return ns(x).clip(x, min=min, max=max)


def _clip_vjp(g, ans, x, *, min=None, max=None):
    inside = g
    if min is not None:
        inside = where(less(x, min), 0.0, inside)
    if max is not None:
        inside = where(greater(x, max), 0.0, inside)
    return inside


defvjp(_clip, _clip_vjp)
defjvp(_clip, _clip_vjp)


@composed
def clip(x: Any, /, min: Any = None, max: Any = None) -> Any:
    """Clamp to [min, max]; bounds that are Tensors get gradients too."""
    scalar = (bool, int, float, type(None))
    if not (isinstance(min, scalar) and isinstance(max, scalar)):  # arrays: backends checked
        if min is not None:
            x = maximum(x, min)
        return x if max is None else minimum(x, max)
    return _clip(x, min=min, max=max)


@primitive(broadcasts=True, saves_ans=False)
def where(condition, x, y, /):
    return ns(x, y, condition).where(condition, x, y)


defvjp(where, None, lambda g, ans, c, x, y: where(c, g, 0.0),
       lambda g, ans, c, x, y: where(c, 0.0, g))
defjvp(where, None, lambda t, ans, c, x, y: where(c, t, 0.0),
       lambda t, ans, c, x, y: where(c, 0.0, t))


@primitive(name="astype", saves_args="meta", saves_ans=False)
def _astype(x, /, *, dtype, copy=True):
    return ns(x).astype(x, dtype, copy=copy)


defvjp(_astype, lambda g, ans, x, **kw: _astype(g, dtype=x.dtype))
defjvp(_astype, lambda t, ans, x, *, dtype, copy=True: _astype(t, dtype=dtype))


@composed
def astype(x: Any, /, dtype: Any, *, copy: bool = True) -> Any:
    """Cast to ``dtype`` (a name such as "float32" or a dtype object); differentiable.
    ``copy=False`` with ``x``'s own dtype returns ``x`` itself (the Array API's no-copy case;
    wrapping the same memory in a new Tensor would give it a second version counter)."""
    if isinstance(dtype, str):
        from .._backend import backend_of

        dtype = (x._backend if hasattr(x, "_backend") else backend_of(x)).dtype(dtype)
    if not copy and dtype == getattr(x, "dtype", None):
        return x
    name = getattr(dtype, "name", None)
    if "complex" in str(name if isinstance(name, str) else dtype):
        from ..errors import DTypeError, describe

        raise DTypeError(f"astype({describe(x)}, dtype={dtype}): complex numbers are not "
                         "supported yet")
    return _astype(x, dtype=dtype, copy=copy)


from .comparison import equal, greater, greater_equal, isinf, less, logical_and  # noqa: E402
from .creation import full_like, zeros_like  # noqa: E402
