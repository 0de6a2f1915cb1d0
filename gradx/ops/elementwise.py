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
    # d/dy x**y = x**y log x; taken as 0 where x <= 0 (x = 0 gives 0**y = 0 for y > 0)
    if isinstance(x, int | float):
        return g * ans * math.log(x) if x > 0 else zeros_like(g)
    positive_x = greater(x, 0)
    return g * where(positive_x, ans * log(where(positive_x, x, 1.0)), 0.0)


def _pow_vjp_x(g, ans, x, y):
    if isinstance(y, int | float):  # a constant exponent: the common x ** 2 costs one multiply
        return g * (2 * x) if y == 2 else g * (y * x ** (y - 1))
    return g * y * x ** (y - 1)


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


# gradient 0 at x == 0 (a documented choice: keeps sqrt(sum(x**2)) finite at the origin)
def _sqrt_vjp(g, ans, x):
    pos = greater(ans, 0)
    return where(pos, g / (2 * where(pos, ans, 1.0)), 0.0)


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


defvjp(asin, lambda g, ans, x: g / sqrt(1 - x * x))


@primitive(saves_ans=False)
def acos(x, /):
    return ns(x).acos(x)


defvjp(acos, lambda g, ans, x: -g / sqrt(1 - x * x))


@primitive(saves_ans=False)
def atan(x, /):
    return ns(x).atan(x)


defvjp(atan, lambda g, ans, x: g / (1 + x * x))
defjvp(atan, lambda t, ans, x: t / (1 + x * x))


@primitive(broadcasts=True, saves_ans=False)
def atan2(y, x, /):
    return ns(y, x).atan2(y, x)


defvjp(atan2, lambda g, ans, y, x: g * x / (x * x + y * y),
       lambda g, ans, y, x: -g * y / (x * x + y * y))


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
    """1 where x wins, 0.5 on ties, 0 where it loses: ties share the gradient equally."""
    return astype(greater(x, y), dtype=dtype) + 0.5 * astype(equal(x, y), dtype=dtype)


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
    """Cast to ``dtype`` (a name such as "float32" or a dtype object); differentiable."""
    if isinstance(dtype, str):
        from .._backend import backend_of

        dtype = (x._backend if hasattr(x, "_backend") else backend_of(x)).dtype(dtype)
    return _astype(x, dtype=dtype, copy=copy)


from .comparison import equal, greater, less  # noqa: E402
from .creation import zeros_like  # noqa: E402
