"""Activation functions as single primitives: erf, gelu (exact and tanh forms), silu,
softplus (beta, threshold), elu and leaky_relu.

Composed from standard ops, exact GELU alone records about twenty nodes and runs twenty array
passes backward; as primitives each is one node whose rule is a handful of passes. The rules
are written with gradx functions, so ``create_graph=True`` differentiates them again.

The Array API has no ``erf``. :func:`erf` uses the backend's own where there is one
(``scipy.special.erf`` on NumPy, ``cupyx.scipy.special.erf`` on CuPy, or an ``erf`` method
a Backend defines) and otherwise W. J. Cody's rational Chebyshev approximations (Math. Comp.
23 (1969) 631-637, the CALERF routine of SPECFUN), written against the Array API: accurate to
about one unit in the last place of float64 everywhere.
"""

from __future__ import annotations

import importlib
import math
from typing import Any

from .._backend import backend_of, ns
from .._primitive import defjvp, defvjp, primitive
from .._tensor import Tensor
from ..errors import ArgumentError, DTypeError, describe
from .elementwise import exp, sigmoid, tanh, where

_SQRT1_2 = 1.0 / math.sqrt(2.0)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TANH_C = math.sqrt(2.0 / math.pi)  # GELU's tanh form: tanh(c (x + k x^3))
_TANH_K = 0.044715


def require_float(op: str, x: Any) -> None:
    """Raise a DTypeError naming ``op`` when ``x`` is an integer or boolean array: these
    functions have no integer form (PyTorch refuses them too)."""
    if isinstance(x, Tensor):
        backend, dtype = x._backend, x.data.dtype
    elif hasattr(x, "dtype") and hasattr(x, "shape"):
        backend, dtype = backend_of(x), x.dtype
    else:
        return  # a Python number: the op's body takes it as it is
    known = backend._float_dtypes.get(dtype)
    if known is None:
        known = backend.is_float(dtype)
    if not known:
        raise DTypeError(f"{op}: expected a floating-point input, got {describe(x)}; convert "
                         "it with x.astype('float32') (or 'float64')")


# -- erf ----------------------------------------------------------------------------------

# Cody's coefficients: |x| <= 0.46875 (erf), 0.46875 < |x| <= 4 and |x| > 4 (erfc)
_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
      3.20937758913846947e03, 1.85777706184603153e-1)
_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
      2.84423683343917062e03)
_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
      2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
      2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
      1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
      3.43936767414372164e03, 1.23033935480374942e03)
_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
      1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_Q = (2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1,
      6.05183413124413191e-2, 2.33520497626869185e-3)
_SQRPI = 5.6418958354775628695e-1  # 1 / sqrt(pi)
_THRESH = 0.46875


def _exp_minus_square(xp: Any, y: Any) -> Any:
    """exp(-y*y) without the rounding error of y*y: y is split at a multiple of 1/16."""
    head = xp.floor(y * 16.0) / 16.0
    return xp.exp(-head * head) * xp.exp(-(y - head) * (y + head))


def erf_array_api(x: Any) -> Any:
    """erf of a raw floating-point array of any Array API namespace (Cody's CALERF): the
    three ranges are evaluated on clipped copies and chosen with ``where``, so no branch
    sees an argument outside its range."""
    xp = ns(x)
    y = xp.abs(x)
    # |x| <= 0.46875: erf(x) = x P(x^2) / Q(x^2)
    z = xp.clip(x, -_THRESH, _THRESH)
    z2 = z * z
    num, den = _A[4] * z2, z2
    for a, b in zip(_A[:3], _B[:3], strict=True):
        num, den = (num + a) * z2, (den + b) * z2
    small = z * (num + _A[3]) / (den + _B[3])
    # 0.46875 < |x| <= 4: erfc(|x|) = exp(-x^2) P(|x|) / Q(|x|)
    m = xp.clip(y, _THRESH, 4.0)
    num, den = _C[8] * m, m
    for c, d in zip(_C[:7], _D[:7], strict=True):
        num, den = (num + c) * m, (den + d) * m
    mid = _exp_minus_square(xp, m) * ((num + _C[7]) / (den + _D[7]))
    # |x| > 4: erfc(|x|) = exp(-x^2) / |x| (1/sqrt(pi) + R(1/x^2) / x^2); past 6 erf is 1
    big = xp.clip(y, 4.0, 6.0)
    w = 1.0 / (big * big)
    num, den = _P[5] * w, w
    for p, q in zip(_P[:4], _Q[:4], strict=True):
        num, den = (num + p) * w, (den + q) * w
    tail = _exp_minus_square(xp, big) * ((_SQRPI - w * (num + _P[4]) / (den + _Q[4])) / big)
    erfc = xp.where(y <= 4.0, mid, tail)
    outer = (0.5 - erfc) + 0.5
    outer = xp.where(x < 0, -outer, outer)
    return xp.where(y <= _THRESH, small, outer)


# where a backend's own erf lives (module, function); imported on first use
_NATIVE_ERF = {"numpy": ("scipy.special", "erf"), "cupy": ("cupyx.scipy.special", "erf")}
_ERF_BY_TYPE: dict[type, Any] = {}


def _erf_kernel(x: Any) -> Any:
    """The erf that raw array ``x``'s backend runs, found once per array type."""
    kernel = _ERF_BY_TYPE.get(type(x))
    if kernel is None:
        backend = backend_of(x)
        kernel = getattr(backend, "erf", None)
        if kernel is None and backend.name in _NATIVE_ERF:
            module, name = _NATIVE_ERF[backend.name]
            try:
                kernel = getattr(importlib.import_module(module), name)
            except (ImportError, AttributeError):  # SciPy not installed, a CuPy stand-in
                kernel = None
        _ERF_BY_TYPE[type(x)] = kernel = kernel or erf_array_api
    return kernel


def _erf_raw(x: Any) -> Any:
    out = _erf_kernel(x)(x)
    return out if out.dtype == x.dtype else ns(x).astype(out, x.dtype)


@primitive(saves_ans=False)
def erf(x, /):
    """The error function 2/sqrt(pi) * integral_0^x exp(-t^2) dt, elementwise."""
    xp = ns(x)
    if not hasattr(x, "dtype"):  # a Python number: a 0-d array of the current backend
        x = xp.asarray(x, dtype=xp.float64)
    elif not xp.isdtype(x.dtype, "real floating"):
        raise DTypeError(f"erf: expected a real floating-point input, got {describe(x)}; "
                         "convert it with x.astype('float32') (or 'float64')")
    return _erf_raw(x)


def _erf_slope(x: Any) -> Any:
    return _TWO_OVER_SQRT_PI * exp(-(x * x))


defvjp(erf, lambda g, ans, x: g * _erf_slope(x))
defjvp(erf, lambda t, ans, x: t * _erf_slope(x))


# -- gelu ---------------------------------------------------------------------------------

def _widened(xp: Any, x: Any) -> Any:
    """float16 arrays as float32 (the body computes there and rounds once, as PyTorch)."""
    half = getattr(xp, "float16", None)
    return xp.astype(x, xp.float32) if half is not None and x.dtype == half else x


@primitive(name="gelu", saves_ans=False)
def _gelu(x, /, *, approximate="none"):
    xp = ns(x)
    w = _widened(xp, x)
    if approximate == "tanh":
        out = 0.5 * w * (1.0 + xp.tanh(_TANH_C * (w + _TANH_K * (w * w * w))))
    else:
        out = 0.5 * w * (1.0 + _erf_raw(w * _SQRT1_2))
    return out if out.dtype == x.dtype else xp.astype(out, x.dtype)


def _gelu_slope(x: Any, approximate: str) -> Any:
    """d gelu / dx: Phi(x) + x phi(x), or the tanh form's derivative."""
    if approximate == "tanh":
        t = tanh(_TANH_C * (x + _TANH_K * (x * x * x)))
        du = _TANH_C * (1.0 + (3.0 * _TANH_K) * (x * x))
        return 0.5 * (1.0 + t) + (0.5 * x) * ((1.0 - t * t) * du)
    return 0.5 * (1.0 + erf(x * _SQRT1_2)) + x * (_INV_SQRT_2PI * exp(-0.5 * (x * x)))


defvjp(_gelu, lambda g, ans, x, *, approximate="none": g * _gelu_slope(x, approximate))
defjvp(_gelu, lambda t, ans, x, *, approximate="none": t * _gelu_slope(x, approximate))


def gelu(x: Any, /, approximate: str = "none") -> Any:
    """x * Phi(x), Phi the standard normal CDF (exact, through :func:`erf`);
    ``approximate="tanh"`` gives 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), the form
    GPT-2 used. One primitive either way; float16 is computed in float32."""
    if approximate != "none" and approximate != "tanh":
        raise ArgumentError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    require_float("gelu", x)
    return _gelu(x, approximate=approximate)


# -- silu ---------------------------------------------------------------------------------

@primitive(name="silu", saves_ans=False)
def _silu(x, /):
    return x * sigmoid(x)  # sigmoid's body: exp(-|x|) never overflows


def _silu_slope(x: Any) -> Any:
    s = sigmoid(x)
    return s * (1.0 + x * (1.0 - s))


defvjp(_silu, lambda g, ans, x: g * _silu_slope(x))
defjvp(_silu, lambda t, ans, x: t * _silu_slope(x))


def silu(x: Any, /) -> Any:
    """x * sigmoid(x) (also called swish), one primitive."""
    require_float("silu", x)
    return _silu(x)


# -- softplus -----------------------------------------------------------------------------

@primitive(name="softplus", saves_ans=False)
def _softplus(x, /, *, beta=1.0, threshold=20.0):
    xp = ns(x)
    bx = x * beta if beta != 1.0 else x
    # log(1 + e^bx) = max(bx, 0) + log1p(e^-|bx|): the exponent is never positive
    out = xp.maximum(bx, xp.zeros_like(bx)) + xp.log1p(xp.exp(-xp.abs(bx)))
    if beta != 1.0:
        out = out / beta
    if threshold == math.inf:
        return out
    return xp.where(bx > threshold, x, out)  # linear above the threshold, as PyTorch


def _softplus_slope(x: Any, beta: float, threshold: float) -> Any:
    bx = x * beta if beta != 1.0 else x
    s = sigmoid(bx)
    return s if threshold == math.inf else where(bx > threshold, 1.0, s)


defvjp(_softplus, lambda g, ans, x, *, beta=1.0, threshold=20.0:
       g * _softplus_slope(x, beta, threshold))
defjvp(_softplus, lambda t, ans, x, *, beta=1.0, threshold=20.0:
       t * _softplus_slope(x, beta, threshold))


def softplus(x: Any, /, beta: float = 1.0, threshold: float = 20.0) -> Any:
    """log(1 + exp(beta x)) / beta, stable for any magnitude; x itself where beta x >
    ``threshold``, as PyTorch (``threshold=math.inf`` for the smooth function everywhere)."""
    if not beta > 0:
        raise ArgumentError(f"softplus: beta must be positive, got {beta}")
    require_float("softplus", x)
    return _softplus(x, beta=float(beta), threshold=float(threshold))


# -- elu and leaky_relu -------------------------------------------------------------------

@primitive(name="elu")
def _elu(x, /, *, alpha=1.0):
    xp = ns(x)
    neg = alpha * xp.expm1(xp.minimum(x, xp.zeros_like(x)))  # no overflow for large x
    return xp.where(x > 0, x, neg)


# below zero the slope alpha e^x is the output plus alpha
defvjp(_elu, lambda g, ans, x, *, alpha=1.0: where(x > 0, g, g * (ans + alpha)))
defjvp(_elu, lambda t, ans, x, *, alpha=1.0: where(x > 0, t, t * (ans + alpha)))


def elu(x: Any, /, alpha: float = 1.0) -> Any:
    """x where x > 0, else alpha (exp(x) - 1); one primitive."""
    require_float("elu", x)
    return _elu(x, alpha=float(alpha))


@primitive(name="leaky_relu", saves_ans=False)
def _leaky_relu(x, /, *, negative_slope=0.01):
    return ns(x).where(x > 0, x, x * negative_slope)


# the slope at 0 is negative_slope, as PyTorch
defvjp(_leaky_relu, lambda g, ans, x, *, negative_slope=0.01:
       where(x > 0, g, g * negative_slope))
defjvp(_leaky_relu, lambda t, ans, x, *, negative_slope=0.01:
       where(x > 0, t, t * negative_slope))


def leaky_relu(x: Any, /, negative_slope: float = 0.01) -> Any:
    """x where x > 0, else negative_slope * x; one primitive."""
    require_float("leaky_relu", x)
    return _leaky_relu(x, negative_slope=float(negative_slope))


__all__ = ["erf", "gelu", "silu", "softplus", "elu", "leaky_relu", "require_float",
           "erf_array_api"]
