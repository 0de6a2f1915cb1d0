"""NumPy's names over gradx: ``import gradx.numpy as np`` makes NumPy code differentiable.

Every function here takes NumPy's arguments (``axis``, ``keepdims``, ``dtype``, ``a_min``,
``newshape`` ...) and is an alias of a gradx function or a composition of gradx functions, so
its gradients (reverse and forward, any order) come from gradx's own rules; nothing here has
a rule of its own. ``out=`` is accepted only as ``None``: gradx never writes a result into a
caller's array (that would cut the graph), so a given ``out`` raises :class:`ArgumentError`.

Dtypes: Python numbers and lists take gradx's default float dtype (float32 unless
``gx.set_default_dtype("float64")``); NumPy arrays keep theirs, so NumPy float64 data gives
float64 results as in NumPy. ``dtype=float`` means float64, as in NumPy.

Migrating autograd code: change ``import autograd.numpy as np`` to ``import gradx.numpy as
np`` and ``from autograd import grad`` to ``from gradx import grad`` (``elementwise_grad``,
``make_vjp``, ``make_jvp``, ``make_hvp``, ``make_ggnvp`` are in ``gradx`` too;
``autograd.misc.flatten`` is ``gradx.autograd_compat.flatten``). What differs:

- results are gradx Tensors (``t.numpy()`` for an array); gradients of raw-array arguments
  come back as raw arrays, as in autograd;
- ``np.array([1.0, 2.0])`` of Python floats is float32 unless ``gx.set_default_dtype("float64")``
  (NumPy arrays passed in keep float64);
- in-place updates (``a[i] = v``, ``a += v``) are allowed on tensors and recorded; one that
  overwrites a value backward needs raises; ``ndarray += tensor`` raises (write ``a = a + t``);
- the same code runs on CuPy after ``gx.set_backend("cupy")``;
- no complex numbers, FFTs, ``eigh``, ``cholesky``, ``slogdet`` or full ``svd`` yet
  (:mod:`gradx.numpy._coverage` lists the gap).

The names autograd's ``autograd.numpy`` differentiates, and which of them this module covers,
are listed in :mod:`gradx.numpy._coverage`. ``numpy.sum(t)``, ``numpy.exp(t)`` ... on a gradx
Tensor come here through ``Tensor.__array_function__`` / ``__array_ufunc__`` (see
:func:`dispatch_function`).
"""

from __future__ import annotations

import builtins
import math
import operator
from typing import Any

import gradx as _gx

from .._shapes import broadcast_shapes as _broadcast_shapes
from .._tensor import Tensor
from ..errors import ArgumentError, ShapeError

__all__: list[str] = []  # filled at the end: every public name defined below

pi, e, inf, nan, newaxis = math.pi, math.e, math.inf, math.nan, None
euler_gamma = 0.5772156649015329
float16, float32, float64 = "float16", "float32", "float64"
int8, int16, int32, int64, uint8 = "int8", "int16", "int32", "int64", "uint8"
bool_ = "bool"
ndarray = Tensor

_PY_DTYPES = {float: "float64", int: "int64", bool: "bool"}


# -- argument conventions -------------------------------------------------------------------
def _no_out(op: str, out: Any) -> None:
    if out is not None:
        raise ArgumentError(
            f"gradx.numpy.{op}: out= is not supported (got {type(out).__name__}); gradx does "
            f"not write results into existing arrays, which would drop their gradients. Use "
            f"the returned tensor: y = np.{op}(...)")


def _dtype(dtype: Any) -> Any:
    """NumPy's dtype spellings (``float``, ``np.float64``, ``"f8"``) as a gradx dtype name."""
    if dtype is None or isinstance(dtype, str) and dtype in _FLOATS_AND_INTS:
        return dtype
    if dtype in _PY_DTYPES:
        return _PY_DTYPES[dtype]
    name = getattr(dtype, "__name__", None) or getattr(dtype, "name", None)  # np.float64
    return name if name in _FLOATS_AND_INTS else dtype  # else a backend's own dtype object


_FLOATS_AND_INTS = ("float16", "float32", "float64", "int8", "int16", "int32", "int64",
                    "uint8", "bool")


def _t(x: Any) -> Tensor:
    """A Tensor of ``x`` (Tensors as they are; arrays, lists and numbers converted)."""
    return x if isinstance(x, Tensor) else _gx.asarray(x)


def _ax(axis: Any) -> Any:
    if axis is None or isinstance(axis, int):
        return axis
    if hasattr(axis, "__index__"):
        return operator.index(axis)
    return tuple(int(a) for a in axis)


def _cast(y: Any, dtype: Any) -> Any:
    return y if dtype is None else _gx.astype(y, _t(y).backend.dtype(_dtype(dtype)))


# -- elementwise: aliases -------------------------------------------------------------------
def _unary(fun: Any, name: str) -> Any:
    def f(x: Any, /, out: Any = None, *, dtype: Any = None, **kwargs: Any) -> Any:
        _no_out(name, out)
        _where_kw(name, kwargs)
        return _cast(fun(_t(x)), dtype)

    f.__name__ = f.__qualname__ = name
    f.__doc__ = f"``numpy.{name}``: gradx's ``{getattr(fun, '__name__', name)}``."
    return f


def _binary(fun: Any, name: str) -> Any:
    def f(x1: Any, x2: Any, /, out: Any = None, *, dtype: Any = None, **kwargs: Any) -> Any:
        _no_out(name, out)
        _where_kw(name, kwargs)
        if not isinstance(x1, Tensor) and not isinstance(x2, Tensor):
            x1 = _t(x1)
        return _cast(fun(x1, x2), dtype)

    f.__name__ = f.__qualname__ = name
    f.__doc__ = f"``numpy.{name}``: gradx's ``{getattr(fun, '__name__', name)}``."
    return f


def _where_kw(op: str, kwargs: dict) -> None:
    kwargs.pop("casting", None)
    kwargs.pop("order", None)
    kwargs.pop("subok", None)
    if kwargs.get("where", True) is True:
        kwargs.pop("where", None)
    if kwargs:
        raise ArgumentError(f"gradx.numpy.{op}: unsupported arguments {sorted(kwargs)}; "
                            "gradx.numpy takes the inputs, dtype and out=None")


_UNARY = {
    "negative": _gx.negative, "positive": _gx.positive, "abs": _gx.abs, "absolute": _gx.abs,
    "fabs": _gx.abs, "exp": _gx.exp, "expm1": _gx.expm1, "log": _gx.log, "log1p": _gx.log1p,
    "sqrt": _gx.sqrt, "square": _gx.square, "sin": _gx.sin, "cos": _gx.cos, "tan": _gx.tan,
    "sinh": _gx.sinh, "cosh": _gx.cosh, "tanh": _gx.tanh, "arcsin": _gx.asin,
    "arccos": _gx.acos, "arctan": _gx.atan, "asin": _gx.asin, "acos": _gx.acos,
    "atan": _gx.atan, "sign": _gx.sign, "floor": _gx.floor, "ceil": _gx.ceil,
    "rint": _gx.round, "isfinite": _gx.isfinite, "isinf": _gx.isinf, "isnan": _gx.isnan,
}
_BINARY = {
    "add": _gx.add, "subtract": _gx.subtract, "multiply": _gx.multiply,
    "divide": _gx.divide, "true_divide": _gx.divide, "power": _gx.pow, "pow": _gx.pow,
    "maximum": _gx.maximum, "minimum": _gx.minimum, "fmax": _gx.maximum,
    "fmin": _gx.minimum, "arctan2": _gx.atan2, "atan2": _gx.atan2, "equal": _gx.equal,
    "not_equal": _gx.not_equal, "less": _gx.less, "less_equal": _gx.less_equal,
    "greater": _gx.greater, "greater_equal": _gx.greater_equal,
    "matmul": _gx.matmul,
}
for _name, _fun in _UNARY.items():
    globals()[_name] = _unary(_fun, _name)
for _name, _fun in _BINARY.items():
    globals()[_name] = _binary(_fun, _name)


# -- elementwise: composed ------------------------------------------------------------------
_LN2, _LN10 = math.log(2.0), math.log(10.0)


def _composed_unary(name: str):
    def deco(fun: Any) -> Any:
        f = _unary(fun, name)
        f.__doc__ = fun.__doc__
        return f
    return deco


def _composed_binary(name: str):
    def deco(fun: Any) -> Any:
        f = _binary(fun, name)
        f.__doc__ = fun.__doc__
        return f
    return deco


@_composed_unary("exp2")
def exp2(x: Any) -> Any:
    """``2 ** x`` as ``exp(x ln 2)``."""
    return _gx.exp(x * _LN2)


@_composed_unary("log2")
def log2(x: Any) -> Any:
    """``log(x) / ln 2``."""
    return _gx.log(x) / _LN2


@_composed_unary("log10")
def log10(x: Any) -> Any:
    """``log(x) / ln 10``."""
    return _gx.log(x) / _LN10


@_composed_unary("reciprocal")
def reciprocal(x: Any) -> Any:
    """``1 / x``."""
    return 1.0 / x


@_composed_unary("arcsinh")
def arcsinh(x: Any) -> Any:
    """``sign(x) log(|x| + sqrt(x^2 + 1))`` (odd, so accurate for large negative x)."""
    a = _gx.abs(x)
    return _gx.sign(x) * _gx.log1p(a + a * a / (1.0 + _gx.sqrt(a * a + 1.0)))


@_composed_unary("arccosh")
def arccosh(x: Any) -> Any:
    """``log(x + sqrt(x^2 - 1))`` for x >= 1."""
    return _gx.log(x + _gx.sqrt(x * x - 1.0))


@_composed_unary("arctanh")
def arctanh(x: Any) -> Any:
    """``(log1p(x) - log1p(-x)) / 2``."""
    return 0.5 * (_gx.log1p(x) - _gx.log1p(-x))


@_composed_unary("deg2rad")
def deg2rad(x: Any) -> Any:
    """Degrees to radians, ``x * pi / 180``."""
    return x * (math.pi / 180.0)


@_composed_unary("rad2deg")
def rad2deg(x: Any) -> Any:
    """Radians to degrees, ``x * 180 / pi``."""
    return x * (180.0 / math.pi)


radians, degrees = deg2rad, rad2deg
asinh, acosh, atanh = arcsinh, arccosh, arctanh


@_composed_unary("sinc")
def sinc(x: Any) -> Any:
    """``sin(pi x) / (pi x)``, 1 at 0 (the untaken branch is fed a safe value, so the
    gradient at 0 is 0 rather than NaN)."""
    zero = x == 0
    safe = _gx.where(zero, 1.0, x) * math.pi
    return _gx.where(zero, 1.0, _gx.sin(safe) / safe)


@_composed_unary("trunc")
def trunc(x: Any) -> Any:
    """Round towards zero; gradient 0."""
    return _gx.where(x < 0, _gx.ceil(x), _gx.floor(x))


fix = trunc


@_composed_unary("isneginf")
def isneginf(x: Any) -> Any:
    """``x == -inf``."""
    return _gx.logical_and(_gx.isinf(x), x < 0)


@_composed_unary("isposinf")
def isposinf(x: Any) -> Any:
    """``x == +inf``."""
    return _gx.logical_and(_gx.isinf(x), x > 0)


@_composed_binary("logaddexp")
def logaddexp(x1: Any, x2: Any) -> Any:
    """``log(exp(x1) + exp(x2))`` without overflow: ``max + log1p(exp(-|x1 - x2|))``."""
    m = _gx.maximum(x1, x2)
    return m + _gx.log1p(_gx.exp(-_gx.abs(x1 - x2)))


@_composed_binary("logaddexp2")
def logaddexp2(x1: Any, x2: Any) -> Any:
    """``log2(2**x1 + 2**x2)``, through :func:`logaddexp` in base e."""
    return logaddexp(x1 * _LN2, x2 * _LN2) / _LN2


@_composed_binary("hypot")
def hypot(x1: Any, x2: Any) -> Any:
    """``sqrt(x1^2 + x2^2)``."""
    return _gx.sqrt(x1 * x1 + x2 * x2)


@_composed_binary("floor_divide")
def floor_divide(x1: Any, x2: Any) -> Any:
    """``floor(x1 / x2)``; gradient 0."""
    return _gx.floor(x1 / x2)


@_composed_binary("mod")
def mod(x1: Any, x2: Any) -> Any:
    """``x1 - floor(x1 / x2) * x2`` (the sign of ``x2``, as NumPy's ``mod``); the gradient
    is 1 for ``x1`` and ``-floor(x1 / x2)`` for ``x2``, as autograd's."""
    return x1 - _gx.floor(x1 / x2) * x2


remainder = mod


@_composed_binary("fmod")
def fmod(x1: Any, x2: Any) -> Any:
    """C's remainder (the sign of ``x1``): ``x1 - trunc(x1 / x2) * x2``."""
    return x1 - trunc(x1 / x2) * x2


def _truth(x: Any) -> Any:
    """``x`` as booleans (nonzero is True), as NumPy's logical functions read numbers."""
    if not isinstance(x, Tensor):
        x = _t(x)
    return x if "bool" in str(x.dtype) else x != 0


@_composed_binary("logical_and")
def logical_and(x1: Any, x2: Any) -> Any:
    """Elementwise ``bool(x1) and bool(x2)``."""
    return _gx.logical_and(_truth(x1), _truth(x2))


@_composed_binary("logical_or")
def logical_or(x1: Any, x2: Any) -> Any:
    """Elementwise ``bool(x1) or bool(x2)``."""
    return _gx.logical_or(_truth(x1), _truth(x2))


@_composed_binary("logical_xor")
def logical_xor(x1: Any, x2: Any) -> Any:
    """Elementwise ``bool(x1) != bool(x2)``."""
    return _gx.not_equal(_truth(x1), _truth(x2))


@_composed_unary("logical_not")
def logical_not(x: Any) -> Any:
    """Elementwise ``not bool(x)``."""
    return _gx.logical_not(_truth(x))


@_composed_binary("copysign")
def copysign(x1: Any, x2: Any) -> Any:
    """``|x1|`` with the sign of ``x2``."""
    return _gx.where(x2 < 0, -_gx.abs(x1), _gx.abs(x1))


def round(a: Any, decimals: int = 0, out: Any = None) -> Any:  # noqa: A001
    """``numpy.round``: to ``decimals`` places (half to even); gradient 0."""
    _no_out("round", out)
    a = _t(a)
    if decimals == 0:
        return _gx.round(a)
    scale = 10.0 ** decimals
    return _gx.round(a * scale) / scale


around = round_ = round


def real(val: Any) -> Any:
    """The real part: gradx tensors are real, so ``val`` itself."""
    return _t(val)


def imag(val: Any) -> Any:
    """The imaginary part of a real tensor: zeros."""
    return _gx.zeros_like(_t(val))


def conj(x: Any, /, out: Any = None) -> Any:
    """Complex conjugate of a real tensor: ``x`` itself."""
    _no_out("conj", out)
    return _t(x)


conjugate = conj


def real_if_close(a: Any, tol: float = 100) -> Any:
    """``a`` itself (gradx tensors are real)."""
    return _t(a)


def clip(a: Any, a_min: Any = None, a_max: Any = None, out: Any = None, *, min: Any = None,
         max: Any = None, **kwargs: Any) -> Any:
    """``numpy.clip(a, a_min, a_max)`` (NumPy 2's ``min=``/``max=`` too); gradient 1 inside
    the bounds, 0 outside."""
    _no_out("clip", out)
    lo = a_min if a_min is not None else min
    hi = a_max if a_max is not None else max
    return _gx.clip(_t(a), lo, hi)


def where(condition: Any, x: Any = None, y: Any = None, /) -> Any:
    """``numpy.where(condition, x, y)``; differentiable in ``x`` and ``y``. With the condition
    alone, :func:`nonzero`."""
    if x is None and y is None:
        return nonzero(condition)
    if not isinstance(x, Tensor) and not isinstance(y, Tensor):
        x = _t(x)
    cond = condition.data if isinstance(condition, Tensor) else condition
    ref = x if isinstance(x, Tensor) else y
    if not isinstance(cond, ref.backend.array_types):
        cond = ref.backend.asarray(_host_list(cond), dtype=ref.backend.dtype("bool"))
    return _gx.where(cond, x, y)


def _host_list(v: Any) -> Any:
    """A plain Python value (nested lists) of a host array or sequence."""
    return v.tolist() if hasattr(v, "tolist") else v


def nan_to_num(x: Any, copy: bool = True, nan: float = 0.0, posinf: Any = None,
               neginf: Any = None) -> Any:
    """NaN to ``nan``, +-inf to ``posinf``/``neginf`` (default: the dtype's largest finite
    values); gradient 1 where ``x`` is finite, else 0, as autograd's."""
    x = _t(x)
    big = float(x.backend.xp.finfo(x.dtype).max)
    posinf = big if posinf is None else posinf
    neginf = -big if neginf is None else neginf
    out = _gx.where(_gx.isnan(x), nan, x)
    out = _gx.where(isposinf(x), posinf, out)
    return _gx.where(isneginf(x), neginf, out)


# -- comparisons of whole arrays (host results, not differentiable) -------------------------
def allclose(a: Any, b: Any, rtol: float = 1e-05, atol: float = 1e-08,
             equal_nan: bool = False) -> bool:
    """Whether :func:`isclose` holds everywhere (a Python bool)."""
    return bool(all(isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan)))


def isclose(a: Any, b: Any, rtol: float = 1e-05, atol: float = 1e-08,
            equal_nan: bool = False) -> Any:
    """``|a - b| <= atol + rtol |b|`` elementwise (a boolean tensor)."""
    a, b = _pair(a, b)
    close = _gx.abs(a - b) <= atol + rtol * _gx.abs(b)
    close = _gx.logical_or(close, _gx.logical_and(_gx.isinf(a), a == b))
    if equal_nan:
        close = _gx.logical_or(close, _gx.logical_and(_gx.isnan(a), _gx.isnan(b)))
    return close


def array_equal(a1: Any, a2: Any, equal_nan: bool = False) -> bool:
    """Same shape and equal elements (a Python bool)."""
    a1, a2 = _pair(a1, a2)
    if a1.shape != a2.shape:
        return False
    same = a1 == a2
    if equal_nan:
        same = _gx.logical_or(same, _gx.logical_and(_gx.isnan(a1), _gx.isnan(a2)))
    return bool(all(same))


def array_equiv(a1: Any, a2: Any) -> bool:
    """Equal after broadcasting (a Python bool)."""
    a1, a2 = _pair(a1, a2)
    try:
        _broadcast_shapes(a1.shape, a2.shape)
    except Exception:
        return False
    return bool(all(a1 == a2))


def iscomplexobj(x: Any) -> bool:
    """False: gradx tensors are real."""
    dtype = getattr(x, "dtype", None)
    return isinstance(x, complex) or "complex" in str(dtype)


def iscomplex(x: Any) -> Any:
    """All False for a real tensor."""
    return _gx.zeros_like(_t(x), dtype="bool")


def isreal(x: Any) -> Any:
    """All True for a real tensor."""
    return _gx.ones_like(_t(x), dtype="bool")


def isrealobj(x: Any) -> bool:
    return not iscomplexobj(x)


def isscalar(element: Any) -> bool:
    """NumPy's rule: Python and NumPy scalars only (a 0-d tensor is not a scalar)."""
    if isinstance(element, int | float | complex | bool | str | bytes):
        return True
    return type(element).__module__ == "numpy" and getattr(element, "shape", None) == () \
        and not hasattr(element, "__array_function__")


def shape(a: Any) -> tuple[int, ...]:
    return tuple(a.shape) if hasattr(a, "shape") else tuple(_t(a).shape)


def ndim(a: Any) -> int:
    return a.ndim if hasattr(a, "ndim") else _t(a).ndim


def size(a: Any, axis: int | None = None) -> int:
    s = shape(a)
    return math.prod(s) if axis is None else s[axis]


def result_type(*arrays_and_dtypes: Any) -> Any:
    """The Array API's promotion (``result_type`` of the current backend)."""
    xp = _gx.get_backend().xp
    return xp.result_type(*[a.data if isinstance(a, Tensor) else a for a in arrays_and_dtypes])


# -- reductions -----------------------------------------------------------------------------
def _reduce(fun: Any, name: str, float_only: bool = False) -> Any:
    def f(a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
          keepdims: bool = False, **kwargs: Any) -> Any:
        _no_out(name, out)
        _where_kw(name, {k: v for k, v in kwargs.items() if k != "initial"})
        if kwargs.get("initial") is not None:
            raise ArgumentError(f"gradx.numpy.{name}: initial= is not supported; combine "
                                "the result with the initial value instead")
        a = _cast(_t(a), dtype)
        return fun(a, axis=_ax(axis), keepdims=keepdims)

    f.__name__ = f.__qualname__ = name
    f.__doc__ = (f"``numpy.{name}(a, axis=None, dtype=None, out=None, keepdims=False)``: "
                 f"gradx's ``{fun.__name__}``.")
    return f


sum = _reduce(_gx.sum, "sum")
prod = product = _reduce(_gx.prod, "prod")
mean = _reduce(_gx.mean, "mean")


def _extremum(fun: Any, name: str) -> Any:
    def f(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False,
          **kwargs: Any) -> Any:
        _no_out(name, out)
        if kwargs.get("initial") is not None:
            raise ArgumentError(f"gradx.numpy.{name}: initial= is not supported")
        return fun(_t(a), axis=_ax(axis), keepdims=keepdims)

    f.__name__ = f.__qualname__ = name
    f.__doc__ = f"``numpy.{name}``: gradx's ``{fun.__name__}`` (ties share the gradient)."
    return f


max = amax = _extremum(_gx.max, "max")
min = amin = _extremum(_gx.min, "min")


def _moment(fun: Any, name: str) -> Any:
    def f(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, ddof: float = 0,
          keepdims: bool = False, *, correction: Any = None, **kwargs: Any) -> Any:
        _no_out(name, out)
        ddof = ddof if correction is None else correction
        return fun(_cast(_t(a), dtype), axis=_ax(axis), correction=ddof, keepdims=keepdims)

    f.__name__ = f.__qualname__ = name
    f.__doc__ = f"``numpy.{name}`` (``ddof``, NumPy 2's ``correction``): gradx's ``{name}``."
    return f


var = _moment(_gx.var, "var")
std = _moment(_gx.std, "std")


def _arg(fun: Any, name: str) -> Any:
    def f(a: Any, axis: Any = None, out: Any = None, *, keepdims: bool = False) -> Any:
        _no_out(name, out)
        a = _t(a)
        if axis is None:
            return fun(_gx.reshape(a, (-1,)), axis=0, keepdims=False)
        return fun(a, axis=int(axis), keepdims=keepdims)

    f.__name__ = f.__qualname__ = name
    f.__doc__ = f"``numpy.{name}`` (flattened when ``axis`` is None); not differentiable."
    return f


argmax = _arg(_gx.argmax, "argmax")
argmin = _arg(_gx.argmin, "argmin")


def all(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False) -> Any:  # noqa: A001
    """True where every element along ``axis`` is nonzero."""
    _no_out("all", out)
    a = _gx.logical_not(_truth(a))
    return _gx.logical_not(_gx.max(_gx.astype(a, a.backend.dtype("int8")), axis=_ax(axis),
                                   keepdims=keepdims) > 0)


def any(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False) -> Any:  # noqa: A001
    """True where some element along ``axis`` is nonzero."""
    _no_out("any", out)
    a = _truth(a)
    return _gx.max(_gx.astype(a, a.backend.dtype("int8")), axis=_ax(axis),
                   keepdims=keepdims) > 0


def count_nonzero(a: Any, axis: Any = None, *, keepdims: bool = False) -> Any:
    """The number of nonzero elements along ``axis``."""
    a = _truth(a)
    return _gx.sum(_gx.astype(a, a.backend.dtype("int64")), axis=_ax(axis),
                   keepdims=keepdims)


def cumsum(a: Any, axis: int | None = None, dtype: Any = None, out: Any = None) -> Any:
    """``numpy.cumsum`` (over the flattened array when ``axis`` is None)."""
    _no_out("cumsum", out)
    return _gx.cumsum(_cast(_t(a), dtype), axis=axis)


cumulative_sum = cumsum


def average(a: Any, axis: Any = None, weights: Any = None, returned: bool = False,
            *, keepdims: bool = False) -> Any:
    """Weighted mean ``sum(a w) / sum(w)`` along ``axis``; differentiable in both."""
    a = _t(a)
    if weights is None:
        avg = _gx.mean(a, axis=_ax(axis), keepdims=keepdims)
        wsum = _gx.full_like(avg, a.size / builtins.max(avg.size, 1))
    else:
        w = _t(weights)
        if w.ndim == 1 and a.ndim > 1 and axis is not None:
            shape_ = [1] * a.ndim
            shape_[int(axis)] = w.shape[0]
            w = _gx.reshape(w, tuple(shape_))
        wsum = _gx.sum(_gx.broadcast_to(w, a.shape), axis=_ax(axis), keepdims=keepdims)
        avg = _gx.sum(a * w, axis=_ax(axis), keepdims=keepdims) / wsum
    return (avg, wsum) if returned else avg


# -- sorting --------------------------------------------------------------------------------
def sort(a: Any, axis: int | None = -1, kind: Any = None, order: Any = None, *,
         stable: Any = None) -> Any:
    """``numpy.sort`` (flattened when ``axis`` is None); the gradient follows the values."""
    a = _t(a)
    if axis is None:
        a, axis = _gx.reshape(a, (-1,)), 0
    return _gx.sort(a, axis=axis)


def msort(a: Any) -> Any:
    """Sort along the first axis (NumPy 1's ``msort``)."""
    return sort(a, axis=0)


def partition(a: Any, kth: Any, axis: int | None = -1, kind: str = "introselect",
              order: Any = None) -> Any:
    """A fully sorted array, which is one valid partition for every ``kth``."""
    return sort(a, axis=axis)


def argsort(a: Any, axis: int | None = -1, kind: Any = None, order: Any = None, *,
            stable: Any = None) -> Any:
    """Indices that sort ``a`` (stable); not differentiable."""
    a = _t(a)
    if axis is None:
        a, axis = _gx.reshape(a, (-1,)), 0
    return _gx.argsort(a, axis=axis)


def argpartition(a: Any, kth: Any, axis: int | None = -1, kind: str = "introselect",
                 order: Any = None) -> Any:
    """:func:`argsort`, one valid answer for every ``kth``."""
    return argsort(a, axis=axis)


def nonzero(a: Any) -> tuple[Any, ...]:
    """Indices of the nonzero elements, one int64 tensor per axis; not differentiable."""
    a = _t(a)
    return tuple(Tensor(i) for i in a.backend.xp.nonzero(a.data))


def flatnonzero(a: Any) -> Any:
    """Indices of the nonzero elements of the flattened array."""
    return nonzero(ravel(a))[0]


def argwhere(a: Any) -> Any:
    """Indices of the nonzero elements, one row per element (shape ``(N, a.ndim)``)."""
    idx = nonzero(a)
    if not idx:
        return _gx.zeros((int(bool(_t(a))), 0), dtype="int64")
    return _gx.stack(list(idx), axis=1)


def searchsorted(a: Any, v: Any, side: str = "left", sorter: Any = None) -> Any:
    """Insertion indices of ``v`` into sorted ``a`` (the Array API's ``searchsorted``)."""
    a, v = _pair(a, v)
    if sorter is not None:
        a = _gx.take(a, _t(sorter).data, axis=0)
    return Tensor(a.backend.xp.searchsorted(a.data, v.data, side=side))


# -- shapes ---------------------------------------------------------------------------------
def _order(op: str, order: str) -> None:
    if order not in ("C", "A", "K", None):
        raise ArgumentError(f"gradx.numpy.{op}: order={order!r} is not supported; gradx "
                            "arrays are C-ordered")


def reshape(a: Any, /, shape: Any = None, order: str = "C", *, newshape: Any = None,
            copy: Any = None) -> Any:
    """``numpy.reshape`` (``shape``, NumPy 1's ``newshape``); C order only."""
    _order("reshape", order)
    return _gx.reshape(_t(a), shape if shape is not None else newshape, copy=copy)


def ravel(a: Any, order: str = "C") -> Any:
    """The flattened array (C order)."""
    _order("ravel", order)
    return _gx.reshape(_t(a), (-1,))


def transpose(a: Any, axes: Any = None) -> Any:
    """``numpy.transpose``: reversed axes, or the permutation ``axes``."""
    a = _t(a)
    axes = tuple(range(a.ndim))[::-1] if axes is None else tuple(int(i) % a.ndim for i in axes)
    return _gx.permute_dims(a, axes)


permute_dims = transpose


def matrix_transpose(x: Any, /) -> Any:
    """Swap the last two axes."""
    return _gx.matrix_transpose(_t(x))


def swapaxes(a: Any, axis1: int, axis2: int) -> Any:
    """Exchange two axes."""
    a = _t(a)
    axes = list(range(a.ndim))
    i, j = axis1 % a.ndim, axis2 % a.ndim
    axes[i], axes[j] = axes[j], axes[i]
    return _gx.permute_dims(a, tuple(axes))


def moveaxis(a: Any, source: Any, destination: Any) -> Any:
    """Move axes to new positions; the others keep their order."""
    a = _t(a)
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    src = [s % a.ndim for s in src]
    dst = [d % a.ndim for d in dst]
    order = [i for i in range(a.ndim) if i not in src]
    for d, s in sorted(zip(dst, src, strict=True)):
        order.insert(d, s)
    return _gx.permute_dims(a, tuple(order))


def rollaxis(a: Any, axis: int, start: int = 0) -> Any:
    """NumPy's ``rollaxis``: ``axis`` moved to before ``start``."""
    a = _t(a)
    axis %= a.ndim
    start = start % (a.ndim + 1) if start < 0 else start
    if axis < start:
        start -= 1
    return moveaxis(a, axis, start) if axis != start else a


def expand_dims(a: Any, axis: Any) -> Any:
    """Insert length-1 axes at ``axis`` (an int or a tuple)."""
    a = _t(a)
    axes = [axis] if isinstance(axis, int) else list(axis)
    n = a.ndim + len(axes)
    for ax in sorted(x % n for x in axes):
        a = _gx.expand_dims(a, axis=ax)
    return a


def squeeze(a: Any, axis: Any = None) -> Any:
    """Drop length-1 axes (all of them when ``axis`` is None)."""
    a = _t(a)
    if axis is None:
        axis = tuple(i for i, s in enumerate(a.shape) if s == 1)
    return _gx.squeeze(a, axis=_ax(axis))


def broadcast_to(array: Any, shape: Any, subok: bool = False) -> Any:
    """``numpy.broadcast_to``; the gradient sums over the broadcast axes."""
    return _gx.broadcast_to(_t(array), (shape,) if isinstance(shape, int) else tuple(shape))


def broadcast_arrays(*args: Any, subok: bool = False) -> tuple[Any, ...]:
    """Each input broadcast to the common shape."""
    ts = [_t(a) for a in args]
    target = _broadcast_shapes(*[t.shape for t in ts])
    return tuple(_gx.broadcast_to(t, target) for t in ts)


def atleast_1d(*arys: Any) -> Any:
    """Inputs with at least one axis."""
    out = [_gx.reshape(t, (1,)) if t.ndim == 0 else t for t in map(_t, arys)]
    return out[0] if len(out) == 1 else out


def atleast_2d(*arys: Any) -> Any:
    """Inputs with at least two axes (a vector becomes a row)."""
    out = []
    for t in map(_t, arys):
        out.append(_gx.reshape(t, (1, -1) if t.ndim else (1, 1)) if t.ndim < 2 else t)
    return out[0] if len(out) == 1 else out


def atleast_3d(*arys: Any) -> Any:
    """Inputs with at least three axes: (N,) -> (1, N, 1), (M, N) -> (M, N, 1)."""
    out = []
    for t in map(_t, arys):
        if t.ndim == 0:
            t = _gx.reshape(t, (1, 1, 1))
        elif t.ndim == 1:
            t = _gx.reshape(t, (1, t.shape[0], 1))
        elif t.ndim == 2:
            t = _gx.expand_dims(t, axis=2)
        out.append(t)
    return out[0] if len(out) == 1 else out


def _seq(arrays: Any) -> list[Tensor]:
    if isinstance(arrays, Tensor):
        return list(_gx.unstack(arrays, axis=0))
    ts = list(arrays)
    if not builtins.any(isinstance(t, Tensor) for t in ts):
        return [_t(t) for t in ts]
    ref = next(t for t in ts if isinstance(t, Tensor))
    return [t if isinstance(t, Tensor) else _gx.asarray(t, backend=ref.backend) for t in ts]


def concatenate(arrays: Any, /, axis: int | None = 0, out: Any = None, *, dtype: Any = None,
                casting: str = "same_kind") -> Any:
    """Join along an existing axis (flattened inputs when ``axis`` is None)."""
    _no_out("concatenate", out)
    return _cast(_gx.concat(_seq(arrays), axis=axis), dtype)


concat = concatenate


def stack(arrays: Any, axis: int = 0, out: Any = None, *, dtype: Any = None,
          casting: str = "same_kind") -> Any:
    """Join along a new axis."""
    _no_out("stack", out)
    return _cast(_gx.stack(_seq(arrays), axis=axis), dtype)


def vstack(tup: Any, *, dtype: Any = None, casting: str = "same_kind") -> Any:
    """Rows on top of each other: concatenate along axis 0 after :func:`atleast_2d`."""
    return concatenate([atleast_2d(t) for t in _seq(tup)], axis=0, dtype=dtype)


row_stack = vstack


def hstack(tup: Any, *, dtype: Any = None, casting: str = "same_kind") -> Any:
    """Side by side: along axis 1, or 0 for vectors."""
    ts = [atleast_1d(t) for t in _seq(tup)]
    return concatenate(ts, axis=0 if ts[0].ndim == 1 else 1, dtype=dtype)


def dstack(tup: Any) -> Any:
    """Along the third axis after :func:`atleast_3d`."""
    return concatenate([atleast_3d(t) for t in _seq(tup)], axis=2)


def column_stack(tup: Any) -> Any:
    """Vectors as columns of a matrix; matrices side by side."""
    ts = [_gx.reshape(t, (-1, 1)) if t.ndim < 2 else t for t in _seq(tup)]
    return concatenate(ts, axis=1)


def _split_points(n: int, sections: int) -> list[int]:
    base, extra = divmod(n, sections)
    sizes = [base + 1] * extra + [base] * (sections - extra)
    return [builtins.sum(sizes[:i]) for i in range(1, sections)]


def split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list[Any]:
    """Equal sections, or pieces at the given indices."""
    ary = _t(ary)
    if not isinstance(indices_or_sections, int):
        indices_or_sections = [int(i) for i in indices_or_sections]
    return _gx.split(ary, indices_or_sections, axis=axis)


def array_split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list[Any]:
    """Like :func:`split`, but sections may differ in length by one."""
    ary = _t(ary)
    if isinstance(indices_or_sections, int):
        indices_or_sections = _split_points(ary.shape[axis], indices_or_sections)
    return _gx.split(ary, [int(i) for i in indices_or_sections], axis=axis)


def vsplit(ary: Any, indices_or_sections: Any) -> list[Any]:
    return split(ary, indices_or_sections, axis=0)


def hsplit(ary: Any, indices_or_sections: Any) -> list[Any]:
    ary = _t(ary)
    return split(ary, indices_or_sections, axis=1 if ary.ndim > 1 else 0)


def dsplit(ary: Any, indices_or_sections: Any) -> list[Any]:
    return split(ary, indices_or_sections, axis=2)


def flip(m: Any, axis: Any = None) -> Any:
    """Reverse the order of elements along ``axis`` (all axes when None)."""
    return _gx.flip(_t(m), axis=_ax(axis))


def flipud(m: Any) -> Any:
    return flip(m, 0)


def fliplr(m: Any) -> Any:
    return flip(m, 1)


def rot90(m: Any, k: int = 1, axes: tuple[int, int] = (0, 1)) -> Any:
    """Rotate by 90 degrees ``k`` times in the plane of ``axes``."""
    m = _t(m)
    k %= 4
    a0, a1 = axes
    if k == 0:
        return m
    if k == 2:
        return flip(flip(m, a0), a1)
    if k == 1:
        return swapaxes(flip(m, a1), a0, a1)
    return flip(swapaxes(m, a0, a1), a1)


def _slice(a: Tensor, axis: int, start: Any, stop: Any, step: Any = None) -> Tensor:
    key = (slice(None),) * (axis % a.ndim) + (slice(start, stop, step),)
    return a[key]


def roll(a: Any, shift: Any, axis: Any = None) -> Any:
    """Elements shifted along ``axis`` with wrap-around (the flattened array when None)."""
    a = _t(a)
    if axis is None:
        return _gx.reshape(roll(_gx.reshape(a, (-1,)), shift, 0), a.shape)
    shifts = [shift] if isinstance(shift, int) else list(shift)
    axes = [axis] if isinstance(axis, int) else list(axis)
    if len(shifts) == 1 and len(axes) > 1:
        shifts = shifts * len(axes)
    for s, ax in zip(shifts, axes, strict=True):
        n = a.shape[ax]
        if n == 0 or s % n == 0:
            continue
        s %= n
        a = _gx.concat([_slice(a, ax, n - s, None), _slice(a, ax, 0, n - s)], axis=ax)
    return a


def tile(A: Any, reps: Any) -> Any:
    """``numpy.tile``: ``reps`` may be longer or shorter than ``A.ndim``."""
    A = _t(A)
    reps = (reps,) if isinstance(reps, int) else tuple(reps)
    if len(reps) > A.ndim:
        A = _gx.reshape(A, (1,) * (len(reps) - A.ndim) + A.shape)
    reps = (1,) * (A.ndim - len(reps)) + reps
    return _gx.tile(A, reps)


def repeat(a: Any, repeats: Any, axis: int | None = None) -> Any:
    """Each element repeated ``repeats`` times along ``axis`` (flattened when None): a
    broadcast for a constant count, a gather for per-element counts."""
    a = _t(a)
    if axis is None:
        a, axis = _gx.reshape(a, (-1,)), 0
    axis %= a.ndim
    if isinstance(repeats, Tensor):
        repeats = repeats.tolist()
    elif hasattr(repeats, "tolist"):
        repeats = repeats.tolist()
    if isinstance(repeats, int) or not isinstance(repeats, list | tuple):
        r = int(repeats)
        x = _gx.expand_dims(a, axis=axis + 1)
        shape_ = a.shape[:axis + 1] + (r,) + a.shape[axis + 1:]
        new = a.shape[:axis] + (a.shape[axis] * r,) + a.shape[axis + 1:]
        return _gx.reshape(_gx.broadcast_to(x, shape_), new)
    idx = [i for i, r in enumerate(repeats) for _ in range(int(r))]
    return _gx.take(a, _index(a, idx), axis=axis)


def _index(ref: Tensor, idx: Any) -> Any:
    """An int64 index array on ``ref``'s backend from a Python list."""
    b = ref.backend
    return b.asarray(list(idx), dtype=b.dtype("int64"))


def _tri_check(op: str, m: Tensor) -> Tensor:
    if m.ndim == 1:
        return _gx.broadcast_to(m, (m.shape[0], m.shape[0]))
    return m


def tril(m: Any, k: int = 0) -> Any:
    """Lower triangle of the last two axes (a vector is broadcast to a square first)."""
    return _gx.tril(_tri_check("tril", _t(m)), k)


def triu(m: Any, k: int = 0) -> Any:
    """Upper triangle of the last two axes (a vector is broadcast to a square first)."""
    return _gx.triu(_tri_check("triu", _t(m)), k)


def diagonal(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
    """The diagonal of the ``(axis1, axis2)`` planes, as a new last axis (a gather)."""
    a = _t(a)
    a = moveaxis(a, (axis1, axis2), (-2, -1))
    n, m = a.shape[-2], a.shape[-1]
    rows = [r for r in range(builtins.max(0, -offset), n) if 0 <= r + offset < m]
    return a[..., _index(a, rows), _index(a, [r + offset for r in rows])]


def trace(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1, dtype: Any = None,
          out: Any = None) -> Any:
    """Sum of :func:`diagonal`."""
    _no_out("trace", out)
    return _cast(_gx.sum(diagonal(a, offset, axis1, axis2), axis=-1), dtype)


def diag(v: Any, k: int = 0) -> Any:
    """A vector's diagonal matrix (``k`` above the main diagonal), or a matrix's diagonal."""
    v = _t(v)
    if v.ndim == 2:
        return diagonal(v, k)
    if v.ndim != 1:
        raise ShapeError(f"gradx.numpy.diag: expected 1 or 2 axes, got shape {v.shape}")
    n = v.shape[0]
    eye_ = _gx.eye(n, dtype=v.dtype, backend=v.backend)
    square = eye_ * _gx.reshape(v, (1, n))
    if k == 0:
        return square
    a = builtins.abs(k)
    return pad(square, ((0, a), (a, 0)) if k > 0 else ((a, 0), (0, a)))


def diagflat(v: Any, k: int = 0) -> Any:
    """:func:`diag` of the flattened input."""
    return diag(ravel(v), k)


def pad(array: Any, pad_width: Any, mode: str = "constant", **kwargs: Any) -> Any:
    """``numpy.pad`` for modes constant (``constant_values``), edge, wrap, reflect and
    symmetric, composed from slices and concatenation."""
    a = _t(array)
    width = _per_axis(pad_width, a.ndim)
    value = kwargs.pop("constant_values", 0)
    if kwargs:
        raise ArgumentError(f"gradx.numpy.pad: unsupported arguments {sorted(kwargs)}")
    values = _per_axis(value, a.ndim)
    for ax in range(a.ndim):
        before, after = (int(w) for w in width[ax])
        if not before and not after:
            continue
        n = a.shape[ax]
        parts = []
        for side, w in (("before", before), ("after", after)):
            if not w:
                parts.append(None)
                continue
            if mode == "constant":
                shp = a.shape[:ax] + (w,) + a.shape[ax + 1:]
                v = values[ax][0 if side == "before" else 1]
                parts.append(_gx.full(shp, float(v), dtype=a.dtype, backend=a.backend))
            elif mode == "edge":
                edge = _slice(a, ax, 0, 1) if side == "before" else _slice(a, ax, n - 1, n)
                parts.append(repeat(edge, w, axis=ax))
            elif mode in ("wrap", "reflect", "symmetric"):
                if mode == "wrap":
                    cycle = list(range(n))
                elif mode == "symmetric":
                    cycle = list(range(n)) + list(range(n - 1, -1, -1))
                else:
                    cycle = list(range(n)) + list(range(n - 2, 0, -1)) if n > 1 else [0]
                pos = range(-w, 0) if side == "before" else range(n, n + w)
                idx = [cycle[p % len(cycle)] for p in pos]
                parts.append(_gx.take(a, _index(a, idx), axis=ax))
            else:
                raise ArgumentError(f"gradx.numpy.pad: mode={mode!r} is not supported; use "
                                    "constant, edge, wrap, reflect or symmetric")
        a = _gx.concat([p for p in (parts[0], a, parts[1]) if p is not None], axis=ax)
    return a


def _per_axis(v: Any, ndim: int) -> list[tuple[Any, Any]]:
    """NumPy's pad-width forms (``n``, ``(n,)``, ``(before, after)``, one pair per axis)."""
    v = _host_list(v)
    if not isinstance(v, list | tuple):
        return [(v, v)] * ndim
    if len(v) == 1 and not isinstance(v[0], list | tuple):
        return [(v[0], v[0])] * ndim
    if len(v) == 2 and not isinstance(v[0], list | tuple):
        return [tuple(v)] * ndim
    if len(v) == 1:
        return [tuple(v[0]) if len(v[0]) == 2 else (v[0][0], v[0][0])] * ndim
    return [tuple(p) if len(p) == 2 else (p[0], p[0]) for p in v]


def diff(a: Any, n: int = 1, axis: int = -1, prepend: Any = None, append: Any = None) -> Any:
    """``n``-th forward differences along ``axis``."""
    a = _t(a)
    pieces = []
    if prepend is not None:
        pieces.append(_edge_block(prepend, a, axis))
    pieces.append(a)
    if append is not None:
        pieces.append(_edge_block(append, a, axis))
    if len(pieces) > 1:
        a = _gx.concat(pieces, axis=axis)
    for _ in range(n):
        m = a.shape[axis]
        a = _slice(a, axis, 1, m) - _slice(a, axis, 0, m - 1)
    return a


def _edge_block(v: Any, a: Tensor, axis: int) -> Tensor:
    v = v if isinstance(v, Tensor) else _gx.asarray(_host_list(v), dtype=a.dtype,
                                                    backend=a.backend)
    if v.ndim == 0:
        shp = list(a.shape)
        shp[axis] = 1
        v = _gx.broadcast_to(v, tuple(shp))
    return v


def ediff1d(ary: Any, to_end: Any = None, to_begin: Any = None) -> Any:
    """Differences of the flattened array."""
    d = diff(ravel(ary))
    parts = [p for p in (to_begin, d, to_end) if p is not None]
    return concatenate([atleast_1d(_t(p)) if not isinstance(p, Tensor) else atleast_1d(p)
                        for p in parts]) if len(parts) > 1 else d


def gradient(f: Any, *varargs: Any, axis: Any = None, edge_order: int = 1) -> Any:
    """Central differences inside, one-sided at the edges (``edge_order=1``), with scalar
    spacings; one array per axis (a single array for one axis)."""
    f = _t(f)
    if edge_order != 1:
        raise ArgumentError("gradx.numpy.gradient: only edge_order=1 is supported")
    axes = list(range(f.ndim)) if axis is None else \
        ([axis] if isinstance(axis, int) else list(axis))
    spacing = list(varargs) if varargs else [1.0]
    if len(spacing) == 1:
        spacing = spacing * len(axes)
    outs = []
    for ax, h in zip(axes, spacing, strict=True):
        n = f.shape[ax]
        inner = (_slice(f, ax, 2, n) - _slice(f, ax, 0, n - 2)) / (2.0 * h)
        first = (_slice(f, ax, 1, 2) - _slice(f, ax, 0, 1)) / h
        last = (_slice(f, ax, n - 1, n) - _slice(f, ax, n - 2, n - 1)) / h
        outs.append(_gx.concat([first, inner, last], axis=ax))
    return outs[0] if len(outs) == 1 else outs


def append(arr: Any, values: Any, axis: int | None = None) -> Any:
    """``values`` joined to the end of ``arr`` (both flattened when ``axis`` is None)."""
    arr, values = _pair(arr, values)
    if axis is None:
        return _gx.concat([ravel(arr), ravel(values)], axis=0)
    return _gx.concat([arr, values], axis=axis)


def select(condlist: Any, choicelist: Any, default: Any = 0) -> Any:
    """The first choice whose condition holds, else ``default``: nested ``where``."""
    out = default
    for cond, choice in reversed(list(zip(condlist, choicelist, strict=True))):
        out = where(cond, choice, out)
    return out


def take(a: Any, indices: Any, axis: int | None = None, out: Any = None,
         mode: str = "raise") -> Any:
    """Elements at ``indices`` along ``axis`` (of the flattened array when None); the
    gradient scatters back, repeated indices adding up."""
    _no_out("take", out)
    a = _t(a)
    if axis is None:
        a, axis = _gx.reshape(a, (-1,)), 0
    idx = indices.data if isinstance(indices, Tensor) else _index(a, _host_list(indices))
    return _gx.take(a, idx, axis=axis)


def take_along_axis(arr: Any, indices: Any, axis: int | None = -1) -> Any:
    """``arr`` gathered by ``indices`` along ``axis`` (flattened when None)."""
    arr = _t(arr)
    if axis is None:
        arr, axis = _gx.reshape(arr, (-1,)), 0
    idx = indices.data if isinstance(indices, Tensor) else indices
    return _gx.take_along_axis(arr, idx, axis=axis)


# -- products -------------------------------------------------------------------------------
def dot(a: Any, b: Any, out: Any = None) -> Any:
    """``numpy.dot``: a product for scalars, matmul for vectors and matrices, else the sum over
    ``a``'s last axis and ``b``'s second-to-last."""
    _no_out("dot", out)
    a, b = _pair(a, b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    if b.ndim <= 2:
        return _gx.matmul(a, b)
    return _gx.tensordot(a, b, axes=((a.ndim - 1,), (b.ndim - 2,)))


def _pair(a: Any, b: Any) -> tuple[Tensor, Tensor]:
    if isinstance(a, Tensor) and not isinstance(b, Tensor):
        return a, _gx.asarray(b, backend=a.backend)
    if isinstance(b, Tensor) and not isinstance(a, Tensor):
        return _gx.asarray(a, backend=b.backend), b
    return _t(a), _t(b)


def vdot(a: Any, b: Any, /) -> Any:
    """Dot product of the flattened inputs."""
    a, b = _pair(a, b)
    return _gx.sum(ravel(a) * ravel(b))


def inner(a: Any, b: Any, /) -> Any:
    """Sum over the last axes of both."""
    a, b = _pair(a, b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    return _gx.tensordot(a, b, axes=((a.ndim - 1,), (b.ndim - 1,)))


def outer(a: Any, b: Any, out: Any = None) -> Any:
    """Outer product of the flattened inputs."""
    _no_out("outer", out)
    a, b = _pair(a, b)
    return _gx.outer(ravel(a), ravel(b))


def tensordot(a: Any, b: Any, axes: Any = 2) -> Any:
    """``numpy.tensordot`` (``axes`` an int or a pair of axis lists)."""
    a, b = _pair(a, b)
    return _gx.tensordot(a, b, axes=axes)


def einsum(*operands: Any, out: Any = None, optimize: Any = False, **kwargs: Any) -> Any:
    """``numpy.einsum(subscripts, *operands)``; ``optimize`` is accepted and ignored."""
    _no_out("einsum", out)
    subscripts, *ops = operands
    if ops and not builtins.any(isinstance(o, Tensor) for o in ops):
        ops = [_t(o) for o in ops]
    return _gx.einsum(subscripts, *ops)


def kron(a: Any, b: Any) -> Any:
    """Kronecker product: ``a``'s blocks scaled copies of ``b``."""
    a, b = _pair(a, b)
    nd = builtins.max(a.ndim, b.ndim)
    a = _gx.reshape(a, (1,) * (nd - a.ndim) + a.shape)
    b = _gx.reshape(b, (1,) * (nd - b.ndim) + b.shape)
    ea = _gx.reshape(a, tuple(s for d in a.shape for s in (d, 1)))
    eb = _gx.reshape(b, tuple(s for d in b.shape for s in (1, d)))
    return _gx.reshape(ea * eb, tuple(x * y for x, y in zip(a.shape, b.shape, strict=True)))


def cross(a: Any, b: Any, axisa: int = -1, axisb: int = -1, axisc: int = -1,
          axis: Any = None) -> Any:
    """Cross product of 3-vectors (2-vectors give the z component) along the given axes."""
    a, b = _pair(a, b)
    if axis is not None:
        axisa = axisb = axisc = axis
    a = moveaxis(a, axisa, -1)
    b = moveaxis(b, axisb, -1)
    if a.shape[-1] not in (2, 3) or b.shape[-1] not in (2, 3):
        raise ShapeError(f"gradx.numpy.cross: vectors need 2 or 3 components, got shapes "
                         f"{a.shape} and {b.shape}")
    a0, a1 = a[..., 0], a[..., 1]
    b0, b1 = b[..., 0], b[..., 1]
    if a.shape[-1] == 2 and b.shape[-1] == 2:
        return a0 * b1 - a1 * b0
    a2 = a[..., 2] if a.shape[-1] == 3 else _gx.zeros_like(a0)
    b2 = b[..., 2] if b.shape[-1] == 3 else _gx.zeros_like(b0)
    c = _gx.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)
    return moveaxis(c, -1, axisc)


# -- creation -------------------------------------------------------------------------------
def array(object: Any, dtype: Any = None, *, copy: bool = True, ndmin: int = 0,
          **kwargs: Any) -> Any:
    """A tensor of ``object``; a (nested) list of tensors is stacked, keeping gradients."""
    t = _gx.asarray(object, dtype=_dtype(dtype), copy=True if copy else None)
    if t.ndim < ndmin:
        t = _gx.reshape(t, (1,) * (ndmin - t.ndim) + t.shape)
    return t


def asarray(a: Any, dtype: Any = None, order: Any = None, *, copy: Any = None,
            **kwargs: Any) -> Any:
    """``gx.asarray``: ``a`` itself when it is already a tensor of that dtype."""
    return _gx.asarray(a, dtype=_dtype(dtype), copy=copy)


asanyarray = asarray


def ascontiguousarray(a: Any, dtype: Any = None) -> Any:
    return asarray(a, dtype)


def copy(a: Any, order: str = "K") -> Any:
    """A differentiable copy."""
    return _gx.asarray(_t(a), copy=True)


def _shape_arg(shape_: Any) -> tuple[int, ...]:
    return (operator.index(shape_),) if hasattr(shape_, "__index__") else tuple(shape_)


def zeros(shape: Any, dtype: Any = None, order: str = "C", **kwargs: Any) -> Any:
    return _gx.zeros(_shape_arg(shape), dtype=_dtype(dtype))


def ones(shape: Any, dtype: Any = None, order: str = "C", **kwargs: Any) -> Any:
    return _gx.ones(_shape_arg(shape), dtype=_dtype(dtype))


def empty(shape: Any, dtype: Any = None, order: str = "C", **kwargs: Any) -> Any:
    return _gx.empty(_shape_arg(shape), dtype=_dtype(dtype))


def full(shape: Any, fill_value: Any, dtype: Any = None, order: str = "C",
         **kwargs: Any) -> Any:
    """``numpy.full``; differentiable in a tensor ``fill_value`` (its broadcast)."""
    if isinstance(fill_value, Tensor):
        return _cast(_gx.broadcast_to(fill_value, _shape_arg(shape)), dtype)
    return _gx.full(_shape_arg(shape), fill_value, dtype=_dtype(dtype))


def _like(fun: Any, name: str) -> Any:
    def f(a: Any, dtype: Any = None, order: str = "K", subok: bool = True,
          shape: Any = None, **kwargs: Any) -> Any:
        a = _t(a)
        if shape is not None:
            a = _gx.broadcast_to(a, _shape_arg(shape))
        return fun(a, dtype=_dtype(dtype))

    f.__name__ = f.__qualname__ = name
    f.__doc__ = f"``numpy.{name}``; not differentiable."
    return f


zeros_like = _like(_gx.zeros_like, "zeros_like")
ones_like = _like(_gx.ones_like, "ones_like")
empty_like = _like(_gx.empty_like, "empty_like")


def full_like(a: Any, fill_value: Any, dtype: Any = None, order: str = "K", subok: bool = True,
              shape: Any = None) -> Any:
    a = _t(a)
    if shape is not None:
        a = _gx.broadcast_to(a, _shape_arg(shape))
    return _gx.full_like(a, fill_value, dtype=_dtype(dtype))


def eye(N: int, M: int | None = None, k: int = 0, dtype: Any = None, **kwargs: Any) -> Any:
    return _gx.eye(N, M, k=k, dtype=_dtype(dtype))


def identity(n: int, dtype: Any = None) -> Any:
    return eye(n, dtype=dtype)


def arange(start: Any, stop: Any = None, step: Any = 1, dtype: Any = None,
           **kwargs: Any) -> Any:
    """``numpy.arange``; integer arguments give int64, as NumPy."""
    return _gx.arange(start, stop, step, dtype=_dtype(dtype))


def linspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True,
             retstep: bool = False, dtype: Any = None, axis: int = 0) -> Any:
    """Evenly spaced values; differentiable in tensor ``start`` and ``stop``."""
    if axis != 0:
        raise ArgumentError("gradx.numpy.linspace: only axis=0 is supported")
    div = (num - 1) if endpoint else num
    if not isinstance(start, Tensor) and not isinstance(stop, Tensor):
        out = _gx.linspace(float(start), float(stop), num, dtype=_dtype(dtype),
                           endpoint=endpoint)
        step = (float(stop) - float(start)) / div if div else math.nan
        return (out, step) if retstep else out
    ref = start if isinstance(start, Tensor) else stop
    steps = _gx.arange(0, num, dtype=ref.dtype, backend=ref.backend)
    delta = (stop - start) / div if div else (stop - start) * math.nan
    out = start + steps * delta if num > 1 else _gx.reshape(start + 0 * stop, (1,))
    out = _cast(out, dtype)
    return (out, delta) if retstep else out


def tri(N: int, M: int | None = None, k: int = 0, dtype: Any = None) -> Any:
    """Ones on and below the ``k``-th diagonal."""
    return _gx.tril(ones((N, N if M is None else M), dtype=dtype), k)


def meshgrid(*xi: Any, indexing: str = "xy", **kwargs: Any) -> list[Any]:
    """Coordinate grids of the input vectors (broadcasts, so differentiable)."""
    ts = [ravel(x) for x in xi]
    n = len(ts)
    shape_ = [t.shape[0] for t in ts]
    if indexing == "xy" and n >= 2:
        shape_[0], shape_[1] = shape_[1], shape_[0]
    out = []
    for i, t in enumerate(ts):
        pos = i
        if indexing == "xy" and n >= 2 and i < 2:
            pos = 1 - i
        view = [1] * n
        view[pos] = t.shape[0]
        out.append(_gx.broadcast_to(_gx.reshape(t, tuple(view)), tuple(shape_)))
    return out


def astype(x: Any, dtype: Any, /, *, copy: bool = True) -> Any:
    """NumPy 2's ``astype``: a differentiable cast."""
    x = _t(x)
    return _gx.astype(x, x.backend.dtype(_dtype(dtype)), copy=copy)


# -- routing of NumPy's own functions -------------------------------------------------------
from . import fft, linalg, random  # noqa: E402

_MODULES = {"numpy": None, "numpy.linalg": linalg, "numpy.random": random, "numpy.fft": fft}
# ufunc methods: which gradx.numpy function computes ``numpy.<ufunc>.<method>``
_UFUNC_REDUCE = {"add": "sum", "multiply": "prod", "maximum": "max", "minimum": "min",
                 "logical_and": "all", "logical_or": "any"}


# NumPy functions whose result is not an array a graph could continue from (files, text,
# memory questions): they run on host copies of the tensors, as NumPy would on ``t.numpy()``
_HOST_ONLY = frozenset({"save", "savez", "savez_compressed", "savetxt", "array2string",
                        "array_repr", "array_str", "may_share_memory", "shares_memory",
                        "can_cast", "min_scalar_type"})


def _on_host(obj: Any) -> Any:
    if isinstance(obj, Tensor):
        return obj.numpy()
    if isinstance(obj, list | tuple):
        return type(obj)(_on_host(o) for o in obj)
    if isinstance(obj, dict):
        return {k: _on_host(v) for k, v in obj.items()}
    return obj


_REFLECTED = {"add": "__radd__", "subtract": "__rsub__", "multiply": "__rmul__",
              "divide": "__rtruediv__", "power": "__rpow__", "matmul": "__rmatmul__"}


def _unsupported(what: str, hint: str = "") -> ArgumentError:
    return ArgumentError(
        f"{what} has no differentiable gradx counterpart for a gradx Tensor{hint}; call the "
        "gradx function (gradx.numpy or gx.*) instead, or convert explicitly with t.numpy() "
        "to leave the graph")


def dispatch_function(func: Any, args: tuple, kwargs: dict) -> Any:
    """``Tensor.__array_function__``: ``numpy.<name>(...)`` with a Tensor among the arguments
    runs ``gradx.numpy.<name>`` (so it stays differentiable), or raises an ArgumentError
    naming the function: never a silent copy to a NumPy array."""
    module = getattr(func, "__module__", "") or ""
    name = getattr(func, "__name__", "")
    if module.startswith("numpy.") and module not in _MODULES:
        module = "numpy"  # numpy._core.fromnumeric and the like
    ns = _MODULES.get(module, False)
    if ns is None and name in _HOST_ONLY:
        return func(*_on_host(args), **_on_host(kwargs))
    if ns is False:
        raise _unsupported(f"{module}.{name}")
    fun = getattr(ns or _THIS, name, None) if not name.startswith("_") else None
    if fun is None or not callable(fun) or isinstance(fun, type):
        raise _unsupported(f"numpy.{name}" if ns is None else f"{module}.{name}")
    return fun(*args, **kwargs)


def dispatch_ufunc(ufunc: Any, method: str, inputs: tuple, kwargs: dict) -> Any:
    """``Tensor.__array_ufunc__``: ``numpy.exp(t)``, ``ndarray * t`` and the ufunc methods
    ``reduce`` / ``accumulate`` / ``outer`` of the common ufuncs, through gradx.numpy."""
    name = ufunc.__name__
    if not kwargs and method == "__call__" and name in _REFLECTED and len(inputs) == 2 \
            and isinstance(inputs[1], Tensor) and not isinstance(inputs[0], Tensor):
        # ``ndarray * t``: the Tensor's reflected operator, as when NumPy deferred to it
        return getattr(inputs[1], _REFLECTED[name])(inputs[0])
    out = kwargs.pop("out", None)
    if out is not None:
        targets = ", ".join(type(o).__name__ for o in out)
        raise ArgumentError(
            f"numpy.{name} with out=({targets}) and a gradx Tensor operand: writing the result "
            f"into an existing array would drop its gradient. Bind the result instead "
            f"(a = a + t rather than a += t, or y = np.{name}(...))")
    if method == "__call__":
        fun = getattr(_THIS, name, None)
        if fun is None:
            raise _unsupported(f"numpy.{name}")
        return fun(*inputs, **kwargs)
    if method == "reduce" and name in _UFUNC_REDUCE:
        kwargs.setdefault("axis", 0)
        return getattr(_THIS, _UFUNC_REDUCE[name])(*inputs, **kwargs)
    if method == "accumulate" and name == "add":
        (x,) = inputs
        return cumsum(x, axis=kwargs.get("axis", 0))
    if method == "outer" and ufunc.nin == 2 and getattr(_THIS, name, None) is not None:
        x, y = (_t(v) if not isinstance(v, Tensor) else v for v in inputs)
        x = _gx.reshape(x, x.shape + (1,) * y.ndim)
        return getattr(_THIS, name)(x, y, **kwargs)
    raise _unsupported(f"numpy.{name}.{method}")


import sys as _sys  # noqa: E402

_THIS = _sys.modules[__name__]
__all__ = sorted(
    n for n, v in list(globals().items())
    if not n.startswith("_") and n not in (
        "annotations", "Any", "Tensor", "ArgumentError", "ShapeError", "builtins", "math",
        "operator", "dispatch_function", "dispatch_ufunc"))
