"""Every VJP/JVP rule of the elementwise ops, the reductions and the normalizations checked
against PyTorch (float64) as an independent oracle: values, reverse-mode gradients, forward-
mode tangents and second derivatives, at ordinary points and at the edges of each function's
domain (0, -0, negative, +-1, +-inf, NaN, ties, empty axes), on both hot paths and on NumPy
and array_api_strict. Where gradx differs from PyTorch by design, the row's ``differs`` hook
rewrites PyTorch's answer into gradx's documented one, so each difference is listed, and
tested, in one place (see ``DIFFERENCES``).

Below the table: regression tests for the rule defects of issue 14 (4: a NaN gradient masked
to 0; 5: x ** 0 at x = 0; 12: prod's second derivatives at zeros; 17: empty axes and
correction >= N; 18: float16 reductions overflowing)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import gradx as gx
import gradx.nn.functional as F

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.usefixtures("hot_path")

nan, inf = math.nan, math.inf
ANY = 7.5e307  # a reference entry that a documented difference leaves unchecked
TOL = dict(rtol=1e-11, atol=1e-13)


# -- the oracle ------------------------------------------------------------------------

@dataclass(frozen=True)
class Oracle:
    """One row: gradx's function and PyTorch's of the same host inputs, and the points (each
    a tuple of float64 arrays, one per input) where they are compared.

    ``differs(kind, xs, ref)`` returns PyTorch's results ``ref`` (a list of arrays: the
    output for "value" and "jvp", one per input for "grad" and "second") rewritten where
    gradx differs by design; ``second`` False skips the second-order comparison (the rule
    is linear, or the op is piecewise constant and both give zeros trivially)."""

    name: str
    gfn: Callable
    tfn: Callable
    points: tuple
    differs: Callable | None = None
    second: bool = True

    def __repr__(self) -> str:
        return self.name


def _weights(shape: tuple[int, ...]) -> np.ndarray:
    """Distinct positive cotangents, so every output's share of the gradient shows."""
    n = int(np.prod(shape)) if shape else 1
    return (1.25 - 0.5 * (np.arange(n) % 3)).reshape(shape)


def _tangents(xs: tuple) -> list[np.ndarray]:
    out = []
    for i, x in enumerate(xs):
        n = x.size
        out.append((0.5 + 0.25 * ((np.arange(n) + i) % 4)).reshape(x.shape))
    return out


def _gradx_side(row: Oracle, xs: tuple) -> dict[str, list[np.ndarray]]:
    ts = [gx.tensor(x) for x in xs]
    out = row.gfn(*ts)
    w = gx.tensor(_weights(tuple(out.shape)))
    argnums = tuple(range(len(ts)))

    def loss(*a):
        return gx.sum(row.gfn(*a) * w)

    grads = gx.grad(loss, argnums=argnums)(*ts)
    vs = [gx.tensor(v) for v in _tangents(xs)]
    _, tangent = gx.jvp(row.gfn, tuple(ts), tuple(vs))
    res = {"value": [out.numpy()], "grad": [g.numpy() for g in grads],
           "jvp": [tangent.numpy()]}
    if row.second:
        def inner(*a):
            gs = gx.grad(loss, argnums=argnums)(*a)
            return sum(gx.sum(g * v) for g, v in zip(gs, vs, strict=True))

        res["second"] = [h.numpy() for h in gx.grad(inner, argnums=argnums)(*ts)]
    return res


def _torch_side(row: Oracle, xs: tuple) -> dict[str, list[np.ndarray]]:
    ts = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in xs]
    out = row.tfn(*ts)
    w = torch.tensor(_weights(tuple(out.shape)), dtype=torch.float64)
    loss = (out * w).sum()
    grads = torch.autograd.grad(loss, ts, create_graph=row.second, allow_unused=True)
    grads = [torch.zeros_like(t) if g is None else g for g, t in zip(grads, ts, strict=True)]
    vs = [torch.tensor(v, dtype=torch.float64) for v in _tangents(xs)]
    res = {"value": [out.detach().numpy()], "grad": [g.detach().numpy() for g in grads]}
    primals = tuple(torch.tensor(x, dtype=torch.float64) for x in xs)
    _, tangent = torch.func.jvp(row.tfn, primals, tuple(vs))
    res["jvp"] = [tangent.numpy()]
    if row.second:
        inner = sum((g * v).sum() for g, v in zip(grads, vs, strict=True))
        if inner.requires_grad:
            hs = torch.autograd.grad(inner, ts, allow_unused=True)
        else:  # the gradient does not depend on the inputs
            hs = [None] * len(ts)
        res["second"] = [np.zeros(x.shape) if h is None or h._is_zerotensor() else h.numpy()
                         for h, x in zip(hs, xs, strict=True)]
    return res


def mismatches(row: Oracle, xs: tuple) -> list[str]:
    """Where gradx and PyTorch (after ``row.differs``) disagree at the point ``xs``."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mine = _gradx_side(row, xs)
        ref = _torch_side(row, xs)
    found = []
    for kind, want in ref.items():
        if row.differs is not None:
            want = row.differs(kind, xs, [np.array(r, dtype=np.float64) for r in want])
        for i, (a, b) in enumerate(zip(mine[kind], want, strict=True)):
            a = np.asarray(a, dtype=np.float64)
            b = np.asarray(b, dtype=np.float64)
            if a.shape != b.shape:
                found.append(f"{kind}[{i}] shape {a.shape} != {b.shape}")
                continue
            free = b == ANY  # entries a documented difference leaves open
            a, b = np.where(free, 0.0, a), np.where(free, 0.0, b)
            try:
                np.testing.assert_allclose(a, b, equal_nan=True, **TOL)
            except AssertionError:
                bad = ~np.isclose(a, b, equal_nan=True, **TOL)
                where_ = [tuple(float(x[idx]) if x.shape == a.shape else "b" for x in xs)
                          for idx in zip(*np.nonzero(bad), strict=True)][:6] if a.ndim else "0-d"
                found.append(f"{kind}[{i}] at {where_}: gradx {a[bad] if a.ndim else a} "
                             f"torch {b[bad] if b.ndim else b}")
    return found


# -- points ----------------------------------------------------------------------------

# every unary op is compared elementwise at all of these at once (one vector), and at 0-d
EDGES = np.array([-3.0, -2.0, -1.0, -0.5, -0.0, 0.0, 0.25, 0.5, 1.0, 2.0, 3.5,
                  inf, -inf, nan])
UNARY = ((EDGES,), (np.array(0.75),), (np.array(-1.5),))


def _grid(a: list[float], b: list[float]) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.meshgrid(np.array(a), np.array(b), indexing="ij")
    return x.ravel(), y.ravel()


BINARY_VALUES = [-2.0, -1.0, -0.0, 0.0, 0.5, 1.0, 2.0, inf, -inf, nan]
BINARY = (_grid(BINARY_VALUES, BINARY_VALUES),
          (np.array([[1.5], [-0.5], [2.0]]), np.array([0.25, -3.0, 2.0, 0.0])),  # broadcast
          (np.array(1.25), np.array([0.5, -2.0])),  # 0-d against a vector
          (np.array(-0.75), np.array(2.5)))


def _set(arr: np.ndarray, mask: Any, value: Any) -> np.ndarray:
    """``arr`` with ``value`` (a number or an array of arr's shape) where ``mask``."""
    arr = np.array(arr, dtype=np.float64)
    mask = np.broadcast_to(mask, arr.shape)
    arr[mask] = np.broadcast_to(value, arr.shape)[mask]
    return arr


def _pair(xs: tuple) -> tuple[np.ndarray, ...]:
    return tuple(np.broadcast_arrays(*xs))


def _each(ref: list, mask: np.ndarray, value: Any) -> list:
    """``_set`` on each of ``ref``, or all of a reference whose shape is not the mask's
    (a broadcast input's gradient) where the mask holds anywhere."""
    return [_set(r, mask, value) if r.shape == mask.shape
            else (np.full(r.shape, value) if mask.any() else r) for r in ref]


# -- documented differences from PyTorch -----------------------------------------------
# Each hook rewrites PyTorch's results where gradx differs by design (ANY: left open, the
# exact values being checked by a regression test below); DIFFERENCES says why.

def _sqrt_differs(kind, xs, ref):
    return ref if kind == "value" else _each(ref, xs[0] == 0, 0.0)


def _abs_differs(kind, xs, ref):
    return _each(ref, np.isnan(xs[0]), nan) if kind in ("grad", "jvp") else ref


def _sign_differs(kind, xs, ref):
    return _each(ref, np.isnan(xs[0]), nan) if kind == "value" else ref


def _clip_differs(kind, xs, ref):
    x = xs[0]
    if kind == "grad":
        return [_set(ref[0], np.isnan(x), _weights(x.shape))]
    if kind == "jvp":
        return [_set(ref[0], np.isnan(x), _tangents(xs)[0])]
    return ref


def _divide_differs(kind, xs, ref):
    return _each(ref, _pair(xs)[1] == 0, ANY) if kind == "jvp" else ref


def _pow_differs(kind, xs, ref):
    x, y = _pair(xs)
    open_ = (x == 0) | (((x < 0) | np.isinf(x)) & (y == 0))
    return _each(ref, open_, ANY) if kind == "second" else ref


def _pow_half_differs(kind, xs, ref):
    x = xs[0]
    if kind not in ("grad", "jvp"):
        return ref
    ieee = ((x == 0) & np.signbit(x)) | np.isneginf(x)  # C99 pow(-0, -0.5), pow(-inf, -0.5)
    w = _weights(x.shape) if kind == "grad" else _tangents(xs)[0]
    return [_set(ref[0], ieee, np.where(np.isneginf(x), 0.0, inf) * w)]


def _rpow0_differs(kind, xs, ref):
    if kind != "second":
        return ref
    y = xs[0]
    return _each(_each(ref, y > 0, 0.0), ~(y > 0), ANY)


def _atan2_differs(kind, xs, ref):
    y, x = _pair(xs)
    return _each(ref, (x == 0) & (y == 0), 0.0) if kind in ("jvp", "second") else ref


def _extremum_differs(kind, xs, ref):
    if kind != "jvp":
        return ref
    x, y = _pair(xs)
    v = _pair(tuple(_tangents(xs)))
    return [_set(ref[0], np.isnan(x) | np.isnan(y), v[0] + v[1])]


def _logsumexp_differs(kind, xs, ref):
    x = xs[0]
    if kind in ("grad", "second"):
        return [_set(r, np.any(np.isposinf(x), axis=-1, keepdims=True), nan) for r in ref]
    if kind == "jvp":
        return [_set(ref[0], np.any(np.isposinf(x), axis=-1), nan)]
    return ref


DIFFERENCES = {
    "sqrt": "derivative 0 at x == 0 (PyTorch inf) and second derivative 0 there (PyTorch "
            "-inf): keeps sqrt(sum(x**2)) finite at the origin",
    "abs": "gradient NaN at a NaN input (PyTorch 0, as its sgn(nan) is 0)",
    "sign": "value NaN at NaN (the backend's sign; PyTorch 0)",
    "clip": "number bounds: the gradient passes through at a NaN input, as maximum and "
            "minimum do (PyTorch's clamp gives 0). Tensor bounds: an input tied with a bound "
            "shares the gradient 0.5 / 0.5 (PyTorch gives all of it to the input)",
    "divide": "forward mode at y == 0, a pole: the sum of the inputs' tangents, inf or "
              "inf - inf = NaN by the signs (PyTorch's fused formula gives +-inf); reverse "
              "mode agrees",
    "pow": "second derivatives at x == 0: the limits from x > 0 where y == 0 or y > 1 "
           "(checked below; PyTorch NaN); where 0 < y <= 1 the true mixed partial is -inf "
           "and gradx's is finite. At x < 0 or x = inf with y == 0: NaN or inf where PyTorch's "
           "masks give finite values",
    "pow-const-half": "at -0 and -inf the backend's pow(x, -0.5) (C99: +inf and 0) where "
                      "PyTorch's sqrt-based formula gives -inf and NaN",
    "rpow-0": "second derivative of 0 ** y: 0 for y > 0 (exact; PyTorch NaN) and 0 elsewhere "
              "(PyTorch inf or NaN)",
    "atan2": "forward mode and second order at the origin: 0, like the gradient there "
             "(PyTorch's reverse mode gives 0 too, its forward mode NaN)",
    "maximum/minimum": "forward mode where x or y is NaN: both tangents, the transpose of the "
                       "reverse mode, which passes the gradient to both (as PyTorch's "
                       "reverse mode does; its forward mode takes only y's tangent)",
    "prod": "exact derivative where a slice holds an infinity (PyTorch NaN from inf / inf)",
    "logsumexp": "a slice holding +inf has NaN gradients in every entry (PyTorch: NaN at the "
                 "inf, 0 at finite entries). Tied maxima at 1e300 get 0.5 each, exactly "
                 "(PyTorch's exp(x - lse) gives 1 each; test_stability checks gradx's)",
    "softmax/log_softmax": "a slice holding +inf: softmax 0 and log_softmax -inf at the finite "
                           "entries, their limits (PyTorch NaN in the whole slice)",
    "max/min": "ties share the gradient equally with an axis too (as PyTorch's amax/amin; "
               "its max(dim) gives it to one index); a NaN extremum gives its slice NaN "
               "gradients (as amax; PyTorch's full max() splits it among the NaNs)",
    "var/std": "correction >= N: NaN gradients (PyTorch's are inf, -inf or finite by the "
               "sign of N - correction)",
    "log/log1p": "as PyTorch: 1/x is finite at x < 0, where the output is NaN",
    "float16": "reductions accumulate in float32 like PyTorch, but their rules' elementwise "
               "steps run in float16 where PyTorch's run in float32 per op",
}


def _unary(name: str, g: Callable, t: Callable, **kw) -> Oracle:
    return Oracle(name, g, t, UNARY, **kw)


def _binary(name: str, g: Callable, t: Callable, points: tuple = BINARY, **kw) -> Oracle:
    return Oracle(name, g, t, points, **kw)


POW_POINTS = (_grid([-2.0, -1.0, -0.0, 0.0, 0.5, 1.0, 3.0, inf, nan],
                    [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0, inf, nan]),
              (np.array([[0.0], [2.0], [-1.5]]), np.array([0.0, 1.0, 2.0, 0.5])),
              (np.array(0.0), np.array(0.0)), (np.array(0.0), np.array([0.0, 1.0, 2.0])))

ZERO_D = (np.array(-1.25),)
REDUCE_POINTS = (
    (np.array([[1.5, -2.0, 0.5, 3.0], [0.0, 2.0, -1.0, 4.0], [0.0, 0.0, 3.0, -1.0],
               [0.0, 0.0, 0.0, 0.0], [2.0, 2.0, -1.0, 2.0], [1.0, -inf, 3.0, 0.5],
               [1.0, nan, 3.0, 0.5]]),),
    (np.array([0.3, -1.7, 2.2]),),
)
FINITE_ROWS = (
    (np.array([[1.5, -2.0, 0.5, 3.0], [0.0, 2.0, -1.0, 4.0], [0.0, 0.0, 3.0, -1.0],
               [0.0, 0.0, 0.0, 0.0], [2.0, 2.0, -1.0, 2.0], [7.0, 7.0, 7.0, 7.0]]),),
    (np.array([0.3, -1.7, 2.2]),),
)
# max/min: distinct values, ties, infinities and a NaN per row, reduced over the last axis
EXTREMA = ((np.array([[1.5, -2.0, 0.5, 3.0], [2.0, 2.0, -1.0, 0.5], [1.0, inf, inf, 0.5],
                      [1.0, nan, 3.0, 0.5], [-inf, -inf, -inf, -inf]]),),)
SOFTMAX_POINTS = (
    (np.array([[1.5, -2.0, 0.5, 3.0], [0.0, 0.0, 0.0, 0.0], [1.0, -inf, 3.0, 0.5],
               [700.0, 700.0, -700.0, 0.0], [1.0, nan, 3.0, 0.5]]),),
)


ROWS = [
    # arithmetic
    _binary("add", gx.add, torch.add),
    _binary("subtract", gx.subtract, torch.sub),
    _binary("multiply", gx.multiply, torch.mul),
    _binary("divide", gx.divide, torch.div, differs=_divide_differs),
    _unary("negative", gx.negative, torch.neg, second=False),
    _unary("positive", gx.positive, torch.positive, second=False),
    _binary("pow", gx.pow, torch.pow, POW_POINTS, differs=_pow_differs),
    _unary("pow-const-0", lambda x: x ** 0, lambda x: x ** 0),
    _unary("pow-const-1", lambda x: x ** 1, lambda x: x ** 1),
    _unary("pow-const-2", lambda x: x ** 2, lambda x: x ** 2),
    _unary("pow-const-3", lambda x: x ** 3, lambda x: x ** 3),
    _unary("pow-const-half", lambda x: x ** 0.5, lambda x: x ** 0.5,
           differs=_pow_half_differs),
    _unary("pow-const-neg", lambda x: x ** -1.5, lambda x: x ** -1.5),
    _unary("rpow-0", lambda y: 0.0 ** y, lambda y: 0.0 ** y, differs=_rpow0_differs),
    _unary("rpow-2", lambda y: 2.0 ** y, lambda y: 2.0 ** y),
    _unary("rpow-neg", lambda y: (-2.0) ** y, lambda y: (-2.0) ** y),
    _unary("square", gx.square, torch.square),
    _unary("abs", gx.abs, torch.abs, differs=_abs_differs),
    # exponentials and logarithms
    _unary("exp", gx.exp, torch.exp),
    _unary("expm1", gx.expm1, torch.expm1),
    _unary("log", gx.log, torch.log),
    _unary("log1p", gx.log1p, torch.log1p),
    _unary("sqrt", gx.sqrt, torch.sqrt, differs=_sqrt_differs),
    _unary("tanh", gx.tanh, torch.tanh),
    _unary("sigmoid", gx.sigmoid, torch.sigmoid),
    # trigonometric and hyperbolic
    _unary("sin", gx.sin, torch.sin),
    _unary("cos", gx.cos, torch.cos),
    _unary("tan", gx.tan, torch.tan),
    _unary("sinh", gx.sinh, torch.sinh),
    _unary("cosh", gx.cosh, torch.cosh),
    _unary("asin", gx.asin, torch.asin),
    _unary("acos", gx.acos, torch.acos),
    _unary("atan", gx.atan, torch.atan),
    _binary("atan2", gx.atan2, torch.atan2, differs=_atan2_differs),
    # piecewise
    _unary("sign", gx.sign, torch.sign, differs=_sign_differs, second=False),
    _unary("floor", gx.floor, torch.floor, second=False),
    _unary("ceil", gx.ceil, torch.ceil, second=False),
    _unary("round", gx.round, torch.round, second=False),
    _binary("maximum", gx.maximum, torch.maximum, differs=_extremum_differs),
    _binary("minimum", gx.minimum, torch.minimum, differs=_extremum_differs),
    _unary("clip", lambda x: gx.clip(x, -1.0, 2.0), lambda x: torch.clamp(x, -1.0, 2.0),
           differs=_clip_differs),
    _unary("clip-min", lambda x: gx.clip(x, min=0.0), lambda x: torch.clamp(x, min=0.0),
           differs=_clip_differs),
    _binary("where", lambda x, y: gx.where(x > y, x, y),
            lambda x, y: torch.where(x > y, x, y)),
    _unary("astype", lambda x: gx.astype(x, "float64") * 1.5,
           lambda x: x.to(torch.float64) * 1.5),
    # reductions
    Oracle("sum", lambda x: gx.sum(x, axis=-1), lambda x: torch.sum(x, -1), REDUCE_POINTS),
    Oracle("sum-all", gx.sum, torch.sum, REDUCE_POINTS),
    Oracle("mean", lambda x: gx.mean(x, axis=-1, keepdims=True),
           lambda x: torch.mean(x, -1, keepdim=True), REDUCE_POINTS),
    Oracle("mean-all", gx.mean, torch.mean, REDUCE_POINTS),
    Oracle("prod", lambda x: gx.prod(x, axis=-1), lambda x: torch.prod(x, -1), FINITE_ROWS),
    Oracle("prod-keepdims", lambda x: gx.prod(x, axis=-1, keepdims=True),
           lambda x: torch.prod(x, -1, keepdim=True), FINITE_ROWS),
    Oracle("prod-axis0", lambda x: gx.prod(x, axis=0),
           lambda x: torch.prod(x, 0), FINITE_ROWS),
    Oracle("max", lambda x: gx.max(x, axis=-1), lambda x: torch.amax(x, -1), EXTREMA),
    Oracle("min", lambda x: gx.min(x, axis=-1), lambda x: torch.amin(x, -1), EXTREMA),
    Oracle("max-keepdims", lambda x: gx.max(x, axis=-1, keepdims=True),
           lambda x: torch.amax(x, -1, keepdim=True), EXTREMA),
    Oracle("var", lambda x: gx.var(x, axis=-1), lambda x: torch.var(x, -1, correction=0),
           REDUCE_POINTS),
    Oracle("var-1", lambda x: gx.var(x, axis=-1, correction=1),
           lambda x: torch.var(x, -1, correction=1), REDUCE_POINTS),
    Oracle("var-all", lambda x: gx.var(x, correction=1), lambda x: torch.var(x), REDUCE_POINTS),
    Oracle("std", lambda x: gx.std(x, axis=-1, correction=1),
           lambda x: torch.std(x, -1, correction=1), REDUCE_POINTS),
    Oracle("cumsum", lambda x: gx.cumsum(x, axis=-1), lambda x: torch.cumsum(x, -1),
           REDUCE_POINTS),
    Oracle("logsumexp", lambda x: gx.logsumexp(x, axis=-1),
           lambda x: torch.logsumexp(x, -1), SOFTMAX_POINTS + ((np.array([1.0, inf, 2.0]),),),
           differs=_logsumexp_differs),
    Oracle("logsumexp-all", gx.logsumexp, lambda x: torch.logsumexp(x, tuple(range(x.ndim))),
           ((np.array([[0.5, -1.0], [3.0, 3.0]]),),)),
    Oracle("softmax", lambda x: F.softmax(x, axis=-1), lambda x: torch.softmax(x, -1),
           SOFTMAX_POINTS),
    Oracle("log_softmax", lambda x: F.log_softmax(x, axis=-1),
           lambda x: torch.log_softmax(x, -1), SOFTMAX_POINTS),
    Oracle("layer_norm", lambda x: F.layer_norm(x, 4),
           lambda x: torch.nn.functional.layer_norm(x, (4,)), FINITE_ROWS[:1]),
    Oracle("layer_norm-affine",
           lambda x, w, b: F.layer_norm(x, 4, w, b),
           lambda x, w, b: torch.nn.functional.layer_norm(x, (4,), w, b),
           ((FINITE_ROWS[0][0], np.array([0.5, -1.0, 2.0, 1.5]),
             np.array([0.1, 0.0, -0.3, 2.0])),)),
    # full reductions, also of 0-d inputs
    Oracle("max-all", gx.max, torch.amax, ((np.array([[1.0, 3.0], [3.0, -2.0]]),), ZERO_D)),
    Oracle("min-all", gx.min, torch.amin, ((np.array([[1.0, -3.0], [3.0, -3.0]]),), ZERO_D)),
    Oracle("prod-all", gx.prod, torch.prod, ((np.array([[1.5, 0.0], [3.0, -2.0]]),), ZERO_D)),
    Oracle("sum-0d", gx.sum, torch.sum, (ZERO_D,)),
    Oracle("mean-0d", gx.mean, torch.mean, (ZERO_D,)),
    Oracle("var-0d", gx.var, lambda x: torch.var(x, correction=0), (ZERO_D,)),
    Oracle("logsumexp-0d", gx.logsumexp, lambda x: torch.logsumexp(x, ()), (ZERO_D,)),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_rule_against_pytorch(backend, row):
    found = []
    for xs in row.points:
        found += [f"{[x.shape for x in xs]}: {m}" for m in mismatches(row, xs)]
    assert not found, f"{row.name}:\n  " + "\n  ".join(found)


def test_differences_are_listed():
    # every row rewritten by a hook is explained in DIFFERENCES
    listed = " ".join(DIFFERENCES)
    for row in ROWS:
        if row.differs is not None:
            assert row.name in listed or row.name.split("-")[0] in listed, row.name


# -- defect 4: NaN gradients are not masked ---------------------------------------------

def _grad_and_tangent(f, x):
    with np.errstate(all="ignore"):
        g = gx.grad(lambda t: gx.sum(f(t)))(x)
        _, t = gx.jvp(f, (x,), (gx.ones_like(x),))
    return g.numpy(), t.numpy()


def test_sqrt_of_a_negative_number_has_a_nan_gradient(backend):
    x = gx.tensor([-1.0, 4.0, 0.0, nan, inf], dtype="float64")
    g, t = _grad_and_tangent(gx.sqrt, x)
    want = [nan, 0.25, 0.0, nan, 0.0]  # 0 at 0 by gradx's choice (PyTorch: inf)
    np.testing.assert_array_equal(g, want)
    np.testing.assert_array_equal(t, want)


@pytest.mark.parametrize("name, f, x", [
    ("sqrt", gx.sqrt, [4.0, -1.0]),
    ("pow", lambda t: t ** gx.tensor([0.5, 2.0], dtype="float64"), [-2.0, 3.0]),
    ("pow", lambda t: gx.tensor([-2.0, 3.0], dtype="float64") ** t, [2.0, 0.5]),
    ("asin", gx.asin, [0.5, inf]),
    ("acos", gx.acos, [0.5, -inf]),
    ("var", lambda t: gx.var(t, correction=2), [1.0, 3.0]),
])
def test_detect_anomaly_names_the_op(backend, name, f, x):
    x = gx.tensor(x, dtype="float64", requires_grad=True)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with gx.detect_anomaly(), pytest.raises(gx.errors.AnomalyError, match=f"'{name}'"):
            gx.sum(f(x)).backward()


def test_pow_exponent_gradient_is_nan_for_a_negative_base(backend):
    x = gx.tensor([-2.0, -2.0, 0.0, 0.0, 0.0, 2.0], dtype="float64")
    y = gx.tensor([2.0, 0.5, -1.0, 0.0, 1.5, 1.5], dtype="float64")
    with np.errstate(all="ignore"):
        gy = gx.grad(lambda y: gx.sum(x ** y))(y).numpy()
        gs = gx.grad(lambda y: gx.sum(0.0 ** y))(y).numpy()
        gn = gx.grad(lambda y: gx.sum((-2.0) ** y))(y).numpy()
    np.testing.assert_array_equal(gy[:5], [nan, nan, -inf, 0.0, 0.0])
    np.testing.assert_allclose(gy[5], 2.0 ** 1.5 * np.log(2.0), rtol=1e-14)
    np.testing.assert_array_equal(gs, [0.0, 0.0, -inf, 0.0, 0.0, 0.0])
    assert np.all(np.isnan(gn))


def test_maximum_and_minimum_pass_the_gradient_to_a_nan(backend):
    x = gx.tensor([nan, 1.0, 2.0], dtype="float64")
    y = gx.tensor([1.0, nan, 2.0], dtype="float64")
    for op in (gx.maximum, gx.minimum):
        gxx, gyy = gx.grad(lambda a, b, op=op: gx.sum(op(a, b)), argnums=(0, 1))(x, y)
        np.testing.assert_array_equal(gxx.numpy(), [1.0, 1.0, 0.5])  # as PyTorch
        np.testing.assert_array_equal(gyy.numpy(), [1.0, 1.0, 0.5])


def test_asin_and_acos_second_derivatives_at_the_ends(backend):
    x = gx.tensor([-1.0, 1.0, 0.5], dtype="float64")
    for f, sign in ((gx.asin, 1.0), (gx.acos, -1.0)):
        with np.errstate(all="ignore"):
            h = gx.grad(lambda t, f=f: gx.sum(gx.grad(lambda u: gx.sum(f(u)))(t)))(x).numpy()
        np.testing.assert_array_equal(h[:2], [-sign * inf, sign * inf])  # x / (1 - x^2)^1.5
        np.testing.assert_allclose(h[2], sign * 0.5 / 0.75 ** 1.5, rtol=1e-14)


def test_atan2_gradient_at_the_origin_is_zero(backend):
    y = gx.tensor([0.0, -0.0, 1.0], dtype="float64")
    x = gx.tensor([0.0, 0.0, 0.0], dtype="float64")
    gy, gxx = gx.grad(lambda a, b: gx.sum(gx.atan2(a, b)), argnums=(0, 1))(y, x)
    np.testing.assert_array_equal(gy.numpy(), [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(gxx.numpy(), [0.0, 0.0, -1.0])


# -- defect 5: x ** 0 at x = 0 ------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
def test_pow_at_zero_base(backend, dtype):
    if dtype == "float16" and backend != "numpy":
        pytest.skip("float16 is not an Array API dtype")
    x = gx.zeros((4,), dtype=dtype)
    y = gx.tensor([0.0, 1.0, 2.0, 0.5], dtype=dtype)
    with np.errstate(all="ignore"):
        gxx, gy = gx.grad(lambda a, b: gx.sum(a ** b), argnums=(0, 1))(x, y)
        _, t = gx.jvp(lambda a, b: a ** b, (x, y), (gx.ones_like(x), gx.zeros_like(y)))
        consts = [gx.grad(lambda a, c=c: gx.sum(a ** c))(x).numpy() for c in (0, 0.0, 1, 2, 0.5)]
    np.testing.assert_array_equal(gxx.numpy(), [0.0, 1.0, 0.0, inf])  # as PyTorch
    np.testing.assert_array_equal(t.numpy(), [0.0, 1.0, 0.0, inf])
    np.testing.assert_array_equal(gy.numpy(), [0.0, 0.0, 0.0, 0.0])
    for c, want in zip((0, 0.0, 1, 2, 0.5), (0.0, 0.0, 1.0, 0.0, inf), strict=True):
        np.testing.assert_array_equal(consts[(0, 0.0, 1, 2, 0.5).index(c)], np.full(4, want))
    assert gxx.dtype == x.dtype and gy.dtype == y.dtype


def test_pow_zero_exponent_zero_base_broadcast_and_0d(backend):
    x = gx.tensor([[0.0], [2.0]], dtype="float64")
    y = gx.tensor(0.0, dtype="float64")
    gxx, gy = gx.grad(lambda a, b: gx.sum(a ** b), argnums=(0, 1))(x, y)
    np.testing.assert_array_equal(gxx.numpy(), [[0.0], [0.0]])
    np.testing.assert_allclose(gy.numpy(), np.log(2.0), rtol=1e-15)  # 0 from x = 0
    z = gx.tensor(0.0, dtype="float64")
    np.testing.assert_array_equal(gx.grad(lambda a: a ** 0)(z).numpy(), 0.0)


@pytest.mark.parametrize("y, want", [(0.0, [[0.0, 0.0], [0.0, 0.0]]),
                                     (2.0, [[2.0, 0.0], [0.0, 0.0]]),
                                     (3.0, [[0.0, 0.0], [0.0, 0.0]])])
def test_pow_hessian_at_zero_base(backend, y, want):
    # the limits from x > 0 (PyTorch gives NaN here: 0 * inf inside its masked rules)
    xy = gx.tensor([0.0, y], dtype="float64")
    with np.errstate(all="ignore"):
        h = gx.hessian(lambda v: v[0] ** v[1])(xy).numpy()
    np.testing.assert_array_equal(h, want)


# -- defect 12: prod's derivatives at zeros ----------------------------------------------

PROD_CASES = [
    (np.array([2.0, 0.0, 3.0, -1.5]), None, False),
    (np.array([0.0, 2.0, 0.0, 5.0]), None, False),
    (np.zeros(3), None, False),
    (np.array([1.5, -2.0, 0.5, 3.0, 0.7]), None, False),
    (np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 1.0], [1.0, 2.0, 3.0]]), 1, False),
    (np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 1.0], [1.0, 2.0, 3.0]]), 0, True),
    (np.array([[[2.0, 0.0], [3.0, 1.0]], [[0.0, 0.0], [4.0, 0.5]]]), (0, 2), False),
    (np.array(0.0), None, False),
]


@pytest.mark.parametrize("host, axis, keepdims", PROD_CASES)
def test_prod_hessian_against_pytorch(backend, host, axis, keepdims):
    w = np.linspace(0.5, 1.5, int(np.prod(np.prod(host, axis=axis, keepdims=keepdims).shape)))

    def f(x):
        p = gx.prod(x, axis=axis, keepdims=keepdims)
        return gx.sum(p * gx.tensor(w.reshape(p.shape), dtype="float64"))

    def tf(x):
        dims = tuple(range(x.ndim)) if axis is None else axis
        dims = (dims,) if isinstance(dims, int) else dims
        p = x
        for d in sorted(dims, reverse=True):
            p = torch.prod(p, d, keepdim=True)
        p = p if keepdims else p.reshape(np.prod(host, axis=axis).shape)
        return (p * torch.tensor(w.reshape(p.shape))).sum()

    x = gx.tensor(host)
    h = gx.hessian(f)(x).numpy()
    ht = torch.autograd.functional.hessian(tf, torch.tensor(host)).numpy()
    np.testing.assert_allclose(h.reshape(ht.shape), ht, rtol=1e-13, atol=1e-15)
    n = host.size
    np.testing.assert_allclose(h.reshape(n, n), h.reshape(n, n).T, rtol=1e-15, atol=0)
    g = gx.grad(f)(x).numpy()
    xt = torch.tensor(host, requires_grad=True)
    np.testing.assert_allclose(g, torch.autograd.grad(tf(xt), xt)[0].numpy(), rtol=1e-14)
    v = np.cos(np.arange(n)).reshape(host.shape)
    _, t = gx.jvp(f, (x,), (gx.tensor(v),))
    np.testing.assert_allclose(t.numpy(), np.sum(g * v), rtol=1e-13, atol=1e-15)


def test_prod_third_derivative_at_zeros(backend):
    # d3/dx0 dx1 dx2 of x0 x1 x2 x3 is x3, also where x0 = x1 = x2 = 0
    x = gx.tensor([0.0, 0.0, 0.0, 2.5], dtype="float64")
    e = [gx.tensor(np.eye(4)[i]) for i in range(3)]

    def d(f, v):
        return lambda t: gx.sum(gx.grad(f)(t) * v)

    third = gx.grad(d(d(lambda t: gx.prod(t), e[0]), e[1]))(x).numpy()
    np.testing.assert_array_equal(third, [0.0, 0.0, 2.5, 0.0])


def test_prod_with_infinity(backend):
    x = gx.tensor([inf, 2.0, 3.0], dtype="float64")
    g = gx.grad(lambda t: gx.prod(t))(x).numpy()
    np.testing.assert_array_equal(g, [6.0, inf, inf])  # PyTorch: [nan, inf, inf]


# -- defect 17: empty axes, correction >= N ------------------------------------------------

def _torch_values(fn, host, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(torch.tensor(host), **kw).numpy()


@pytest.mark.parametrize("shape, axis", [((0,), 0), ((3, 0), 1), ((0, 3), 0), ((2, 0, 3), 1)])
def test_empty_axis_reductions_match_pytorch(backend, shape, axis):
    host = np.zeros(shape)
    x = gx.tensor(host)
    cases = [
        (lambda t: gx.logsumexp(t, axis=axis), lambda t: torch.logsumexp(t, axis)),
        (lambda t: gx.softmax(t, axis=axis), lambda t: torch.softmax(t, axis)),
        (lambda t: gx.log_softmax(t, axis=axis), lambda t: torch.log_softmax(t, axis)),
        (lambda t: gx.sum(t, axis=axis), lambda t: torch.sum(t, axis)),
        (lambda t: gx.mean(t, axis=axis), lambda t: torch.mean(t, axis)),
        (lambda t: gx.prod(t, axis=axis), lambda t: torch.prod(t, axis)),
        (lambda t: gx.var(t, axis=axis), lambda t: torch.var(t, axis, correction=0)),
        (lambda t: gx.std(t, axis=axis, correction=1), lambda t: torch.std(t, axis)),
    ]
    for f, tf in cases:
        with np.errstate(all="ignore"), warnings.catch_warnings():  # NumPy's nan for mean
            warnings.simplefilter("ignore")
            y = f(x)
            g = gx.grad(lambda t, f=f: gx.sum(f(t)))(x)
            _, tan = gx.jvp(f, (x,), (gx.ones_like(x),))
        want = _torch_values(tf, host)
        np.testing.assert_array_equal(y.numpy(), want)
        assert g.shape == x.shape and tan.shape == tuple(want.shape)


@pytest.mark.parametrize("op", ["max", "min"])
def test_max_over_an_empty_axis_raises_naming_the_op(backend, op):
    f = getattr(gx, op)
    with pytest.raises(gx.errors.ShapeError, match=f"{op}: cannot reduce over an empty axis"):
        f(gx.zeros((3, 0)), axis=1)
    with pytest.raises(gx.errors.ShapeError, match=op):
        f(gx.zeros((0,)))
    assert f(gx.zeros((0, 3)), axis=1).shape == (0,)  # as PyTorch's amax: an empty result


@pytest.mark.parametrize("host, correction", [([1.0, 2.0], 2), ([1.0, 2.0], 3), ([1.0, 1.0], 2),
                                              ([5.0], 1), ([[1.0, 4.0], [2.0, 2.0]], 4)])
@pytest.mark.parametrize("axis", [None, -1])
def test_var_and_std_without_degrees_of_freedom(backend, host, correction, axis):
    host = np.array(host)
    x = gx.tensor(host)
    for f, tf in ((gx.var, torch.var), (gx.std, torch.std)):
        dims = None if axis is None else axis
        want = _torch_values(lambda t, f=tf, d=dims: f(t, d, correction=correction), host)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y = f(x, axis=axis, correction=correction)
            g = gx.grad(lambda t, f=f: gx.sum(f(t, axis=axis, correction=correction)))(x)
        np.testing.assert_array_equal(y.numpy(), want)  # inf or NaN, as PyTorch's
        assert np.all(np.isnan(g.numpy())), g.numpy()


# -- defect 18: float16 reductions accumulate in float32 -------------------------------------

HALF = np.array([[1.0, 300.0, -400.0, 5.0], [0.25, -0.5, 0.75, 0.0]], dtype=np.float16)
W16 = np.array([0.3, -1.7, 2.1, 0.9], dtype=np.float16)
B16 = np.array([0.1, 0.2, -0.3, 1.0], dtype=np.float16)


@pytest.mark.parametrize("name, f, tf", [
    ("layer_norm", lambda t: F.layer_norm(t, 4),
     lambda t: torch.nn.functional.layer_norm(t, (4,))),
    ("layer_norm-affine",
     lambda t: F.layer_norm(t, 4, gx.tensor(W16), gx.tensor(B16)),
     lambda t: torch.nn.functional.layer_norm(t, (4,), torch.tensor(W16).to(t.dtype),
                                              torch.tensor(B16).to(t.dtype))),
    ("std", lambda t: gx.std(t, axis=-1), lambda t: torch.std(t, -1, correction=0)),
    ("std-all", lambda t: gx.std(t), lambda t: torch.std(t, correction=0)),
    ("var", lambda t: gx.var(t * 0.25, axis=-1), lambda t: torch.var(t * 0.25, -1, correction=0)),
    ("sum", lambda t: gx.sum(t * 100.0, axis=-1), lambda t: torch.sum(t * 100.0, -1)),
    ("mean", lambda t: gx.mean(t * 100.0, axis=-1), lambda t: torch.mean(t * 100.0, -1)),
    ("logsumexp", lambda t: gx.logsumexp(t * 0.03, axis=-1),
     lambda t: torch.logsumexp(t * 0.03, -1)),
    ("softmax", lambda t: F.softmax(t * 0.03, axis=-1), lambda t: torch.softmax(t * 0.03, -1)),
    ("log_softmax", lambda t: F.log_softmax(t * 0.03, axis=-1),
     lambda t: torch.log_softmax(t * 0.03, -1)),
    ("prod", lambda t: gx.prod(t * 0.5, axis=-1), lambda t: torch.prod(t * 0.5, -1)),
])
def test_float16_reductions_match_pytorch(backend, name, f, tf):
    if backend != "numpy":
        pytest.skip("float16 is not an Array API dtype")
    # values against PyTorch's float16; gradients against its float32 from the same inputs
    # (its float16 prod gradient overflows in a partial product: -inf where gradx's is not)
    x = gx.tensor(HALF)
    y, g = gx.value_and_grad(lambda t: gx.sum(f(t) * gx.tensor(0.5, dtype="float16")))(x)
    xt = torch.tensor(HALF.astype(np.float32), requires_grad=True)
    (tf(xt).sum() * 0.5).backward()
    assert f(x).dtype == x.dtype and g.dtype == x.dtype
    want = tf(torch.tensor(HALF)).detach().numpy()
    np.testing.assert_allclose(f(x).numpy().astype(np.float64), want, rtol=2e-3, atol=1e-3)
    assert np.all(np.isfinite(g.numpy())), f"{name}: {g.numpy()}"
    np.testing.assert_allclose(g.numpy().astype(np.float64), xt.grad.numpy(),
                               rtol=5e-3, atol=2e-3)


def test_layer_norm_float16_is_not_zero(backend):
    if backend != "numpy":
        pytest.skip("float16 is not an Array API dtype")
    x = gx.tensor(np.array([[0.0, 300.0, -300.0, 10.0]], dtype=np.float16), requires_grad=True)
    w = gx.tensor(np.array([1.0, -2.0, 0.5, 1.5], dtype=np.float16))
    out = F.layer_norm(x, 4)
    gx.sum(out * w).backward()
    assert np.abs(out.numpy()).max() > 1.0
    assert np.abs(x.grad.numpy()).max() > 0 and x.grad.dtype == x.dtype


def test_clip_with_tensor_bounds_shares_ties(backend):
    # composed of maximum and minimum: a tie with a bound shares the gradient 0.5 / 0.5
    # (PyTorch's clamp gives all of it to the input)
    x = gx.tensor([-1.0, 0.5, 2.0, 3.0], dtype="float64")
    lo = gx.tensor([-1.0, 0.0, 0.0, 0.0], dtype="float64")
    hi = gx.tensor([2.0, 2.0, 2.0, 2.0], dtype="float64")
    g = gx.grad(lambda a, b, c: gx.sum(gx.clip(a, b, c)), argnums=(0, 1, 2))(x, lo, hi)
    np.testing.assert_array_equal(g[0].numpy(), [0.5, 1.0, 0.5, 0.0])
    np.testing.assert_array_equal(g[1].numpy(), [0.5, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(g[2].numpy(), [0.0, 0.0, 0.5, 1.0])


def test_float16_mean_of_many_elements(backend):
    if backend != "numpy":
        pytest.skip("float16 is not an Array API dtype")
    n = 70_000  # above float16's largest finite number: n itself is inf there
    x = gx.tensor(np.full(n, 2.0, dtype=np.float16))
    y, g = gx.value_and_grad(lambda t: gx.mean(t))(x)
    assert y.item() == 2.0 and g.dtype == x.dtype
    np.testing.assert_array_equal(g.numpy(), np.float16(1 / n))  # rounded once (a subnormal)
