"""One row per differentiable primitive variant: inputs' shapes, domain and order.

``test_gradients.py`` runs every row on every backend through ``check_grads``;
``test_coverage.py`` fails when a registered primitive has neither a row here nor an
entry in ``NON_DIFFERENTIABLE``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import gradx as gx
from gradx.ops.indexing import _index_add, index_update
from gradx.ops.linalg import _adjugate, _adjugate_push, _svdvals_push
from gradx.ops.reductions import softmax_given_logsumexp
from gradx.ops.spectral import _svdvals_curv


@dataclass
class Row:
    name: str  # the registered primitive this row exercises
    fn: Callable
    shapes: tuple
    domain: str = "real"  # real | positive | unit | spd (see test_gradients.sample)
    order: int = 2
    modes: tuple = ("rev", "fwd")
    label: str = ""
    skip_backends: dict = field(default_factory=dict)  # backend -> reason

    @property
    def id(self) -> str:
        shapes = "x".join(str(s).replace(" ", "") for s in self.shapes)
        return f"{self.name}{'-' + self.label if self.label else ''}-{shapes}"


def R(name: str, fn: Callable, *shapes: tuple, **kw) -> Row:
    return Row(name, fn, shapes, **kw)


def _other_cpu_backend(x):
    return "array_api_strict" if x.backend.name != "array_api_strict" else "numpy"


# fixed points for the derivative maps of svdvals and the adjugate (linear in their first
# argument): distinct singular values, one of the 3x3's exactly zero
_FIXED_3x2 = [[2.0, 0.3], [0.1, -1.0], [0.5, 0.4]]
_FIXED_3x3 = [[1.0, 2.0, 0.5], [2.0, 4.0, 1.0], [0.3, -1.0, 2.0]]


def _const(x, rows):
    return x.backend.xp.asarray(rows, dtype=x.dtype)


def _raw_left(x):
    return x.backend.xp.asarray(2.0, dtype=x.dtype) * x


BINARY_SHAPES = [((3,), (3,)), ((2, 1), (1, 3)), ((), (2, 3)), ((4, 3), (3,)), ((2, 3), ())]

ROWS: list[Row] = []
for a, b in BINARY_SHAPES:
    ROWS += [
        R("add", gx.add, a, b),
        R("subtract", gx.subtract, a, b),
        R("multiply", gx.multiply, a, b),
        R("divide", gx.divide, a, b, domain="positive"),
        R("maximum", gx.maximum, a, b),
        R("minimum", gx.minimum, a, b),
        R("atan2", gx.atan2, a, b, domain="positive"),
        R("pow", gx.pow, a, b, domain="positive"),
    ]
ROWS += [
    R("add", lambda x: x + 2.0, (2, 3), label="scalar"),
    R("subtract", lambda x: 1.0 - x, (2, 3), label="rscalar"),
    R("multiply", _raw_left, (2, 3), label="rawleft",
      skip_backends={"array_api_strict": "array_api_strict arrays raise TypeError instead "
                     "of deferring to Tensor.__rmul__"}),
    R("divide", lambda x: 1.0 / x, (2, 3), domain="positive", label="rscalar"),
    R("pow", lambda x: x**2, (2, 3), label="square"),
    R("pow", lambda x: 2.0**x, (2, 3), label="rscalar"),
    R("maximum", lambda x: gx.maximum(x, 0.0), (3, 4), label="relu"),
    R("where", lambda x, y: gx.where(x > 0, x, y), (2, 3), (2, 3)),
    R("where", lambda x, y: gx.where(x > 0, x, y), (2, 1), (1, 3), label="bcast"),
    R("clip", lambda x: gx.clip(x, -0.5, 0.5), (4, 3)),
    R("clip", lambda x: gx.clip(x, max=0.3), (5,), label="max"),
]
for name, domain in [("negative", "real"), ("positive", "real"), ("abs", "real"),
                     ("square", "real"), ("exp", "real"), ("expm1", "real"),
                     ("log", "positive"), ("log1p", "positive"), ("sqrt", "positive"),
                     ("tanh", "real"), ("sigmoid", "real"), ("sin", "real"), ("cos", "real"),
                     ("tan", "unit"), ("sinh", "real"), ("cosh", "real"), ("asin", "unit"),
                     ("acos", "unit"), ("atan", "real"), ("sign", "real"), ("floor", "real"),
                     ("ceil", "real"), ("round", "real")]:
    fn = getattr(gx, name)
    ROWS += [R(name, fn, ()), R(name, fn, (2, 3), domain=domain),
             R(name, fn, (1, 4, 1), domain=domain)]
ROWS += [R("astype", lambda x: gx.astype(x, "float64"), (2, 3))]

for shape, axis, keep in [((2, 3, 4), None, False), ((2, 3, 4), 1, False),
                          ((2, 3, 4), (0, 2), True), ((5,), 0, False), ((), None, False),
                          ((1, 3), -1, True), ((4,), None, False)]:
    kw = dict(axis=axis, keepdims=keep)
    tag = f"axis{axis}{'k' if keep else ''}".replace(" ", "")
    ROWS += [
        R("sum", lambda x, kw=kw: gx.sum(x, **kw), shape, label=tag),
        R("mean", lambda x, kw=kw: gx.mean(x, **kw), shape, label=tag),
        R("prod", lambda x, kw=kw: gx.prod(x, **kw), shape, label=tag),
        R("max", lambda x, kw=kw: gx.max(x, **kw), shape, label=tag, domain="distinct"),
        R("min", lambda x, kw=kw: gx.min(x, **kw), shape, label=tag, domain="distinct"),
        R("logsumexp", lambda x, kw=kw: gx.logsumexp(x, **kw), shape, label=tag),
    ]
    if shape != ():
        ROWS += [R("var", lambda x, kw=kw: gx.var(x, **kw), shape, label=tag),
                 R("var", lambda x, kw=kw: gx.var(x, correction=1, **kw) if x.size > 1
                   else gx.var(x, **kw), shape, label=tag + "c1")]


def _softmax_given_lse(x, axis):
    # the shift is a constant (the rules pass logsumexp's output): finite differences see
    # softmax(x) itself, which no per-slice shift changes
    return softmax_given_logsumexp(x, gx.logsumexp(x.detach(), axis=axis, keepdims=True),
                                   axis=axis)


for shape, axis in [((2, 3, 4), 1), ((5,), None), ((2, 3), (0, 1)), ((3, 2), -1)]:
    ROWS.append(R("softmax_given_logsumexp", lambda x, axis=axis: _softmax_given_lse(x, axis),
                  shape, label=f"axis{axis}".replace(" ", "")))
ROWS += [
    R("prod", lambda x: gx.prod(x * gx.tensor([1.0, 0.0, 1.0], dtype=x.dtype), axis=-1),
      (2, 3), label="onezero"),
    R("cumsum", lambda x: gx.cumsum(x, axis=1), (2, 4)),
    R("cumsum", lambda x: gx.cumsum(x), (2, 3), label="flat"),
    R("reshape", lambda x: gx.reshape(x, (3, -1)), (2, 3, 2)),
    R("reshape", lambda x: gx.reshape(x, ()), (1, 1), label="scalar"),
    R("permute_dims", lambda x: gx.permute_dims(x, (2, 0, 1)), (2, 3, 4)),
    R("matrix_transpose", gx.matrix_transpose, (2, 3, 4)),
    R("expand_dims", lambda x: gx.expand_dims(x, axis=1), (2, 3)),
    R("squeeze", lambda x: gx.squeeze(x, axis=(0, 2)), (1, 3, 1)),
    R("broadcast_to", lambda x: gx.broadcast_to(x, (4, 2, 3)), (2, 1)),
    R("broadcast_to", lambda x: gx.broadcast_to(x, (3, 2)), (), label="scalar"),
    R("concat", lambda x, y, z: gx.concat([x, y, z], axis=0), (1, 3), (2, 3), (1, 3)),
    R("concat", lambda x, y: gx.concat([x, y], axis=-1), (2, 1), (2, 3), label="last"),
    R("stack", lambda x, y: gx.stack([x, y], axis=1), (2, 3), (2, 3)),
    R("flip", lambda x: gx.flip(x, axis=1), (2, 3)),
    R("flip", gx.flip, (2, 3), label="all"),
    R("tile", lambda x: gx.tile(x, (2, 1, 3)), (2, 3)),
    R("getitem", lambda x: x[1:, ::2], (3, 4), label="slices"),
    R("getitem", lambda x: x[None, 1, ...], (3, 4), label="int-none"),
    R("getitem", lambda x: x[gx.tensor([0, 2, 0]), ...], (3, 4), label="advanced-repeat"),
    R("getitem", lambda x: x[gx.tensor([0, 1, 1]), gx.tensor([2, 0, 2])], (2, 3),
      label="advanced-pairs"),
    R("index_add", lambda g: _index_add(g, shape=(4,), key=(gx.tensor([0, 3, 0]).data,)),
      (3,)),
    R("index_update", lambda x, v: index_update(x, v, key=(slice(0, 2), Ellipsis)), (4, 3), (3,)),
    R("take", lambda x: gx.take(x, gx.tensor([2, 0, 2]), axis=1), (2, 3)),
    R("take", lambda x: gx.take(x, gx.tensor([5, 0])), (2, 3), label="flat"),
    R("take_along_axis", lambda x: gx.take_along_axis(
        x, gx.tensor([[0, 2], [1, 1]]), axis=1), (2, 3)),
    R("sort", lambda x: gx.sort(x, axis=-1), (3, 4), domain="distinct"),
    R("sort", lambda x: gx.sort(x, axis=0, descending=True), (3, 2), domain="distinct",
      label="desc"),
    R("matmul", gx.matmul, (2, 3), (3, 4)),
    R("matmul", gx.matmul, (3,), (3, 4), label="vec-mat"),
    R("matmul", gx.matmul, (2, 3), (3,), label="mat-vec"),
    R("matmul", gx.matmul, (3,), (3,), label="dot"),
    R("matmul", gx.matmul, (2, 1, 3, 4), (5, 4, 2), label="batched"),
    R("matmul", gx.matmul, (3,), (2, 3, 4), label="vec-batch"),
    R("einsum", lambda x, y: gx.einsum("ij,jk->ik", x, y), (2, 3), (3, 4)),
    R("einsum", lambda x, y: gx.einsum("bij,bjk->bik", x, y), (2, 2, 3), (2, 3, 2),
      label="batch"),
    R("einsum", lambda x: gx.einsum("ij->", x), (2, 3), label="total"),
    R("einsum", lambda x, y: gx.einsum("...i,i", x, y), (2, 3), (3,), label="ellipsis"),
    R("einsum", lambda x, y: gx.einsum("ij,k->ik", x, y), (2, 3), (4,), label="sumout"),
    R("inv", lambda a: gx.linalg.inv(a), (3, 3), domain="spd"),
    R("solve", lambda a, b: gx.linalg.solve(a, b), (3, 3), (3, 2), domain="spd"),
    R("solve", lambda a, b: gx.linalg.solve(a, b), (3, 3), (3,), domain="spd", label="vec"),
    R("det", lambda a: gx.linalg.det(a), (3, 3), domain="spd"),
    R("det", lambda a: gx.linalg.det(a), (2, 2, 2), domain="spd", label="batch"),
    R("norm", lambda x: gx.linalg.norm(x), (2, 3)),
    R("norm", lambda x: gx.linalg.norm(x, axis=1, keepdims=True), (2, 3), label="axis"),
    R("einsum", lambda x: gx.einsum("iij->j", x), (3, 3, 2), label="diagonal"),
    R("einsum", lambda x, y: gx.einsum("...ij,...jk->...ik", x, y), (1, 2, 3), (4, 3, 2),
      label="ellipsis-bcast"),
    R("solve", lambda a, b: gx.linalg.solve(a, b), (3, 3, 3), (3,), domain="spd",
      label="batch-vec"),
    R("svdvals", lambda x: gx.linalg.svdvals(x), (2, 4, 3)),
    R("svdvals_push", lambda x: _svdvals_push(x, _const(x, _FIXED_3x2)), (3, 2), label="jvp"),
    R("svdvals_curv", lambda w, y: _svdvals_curv(w, y, _const(w, _FIXED_3x2)), (2,), (3, 2)),
    R("svdvals_curv", lambda y, z: _svdvals_curv(y, z, _const(y, _FIXED_3x2), vector=True),
      (3, 2), (3, 2), label="vector"),
    R("adjugate", lambda x: _adjugate(x), (2, 3, 3), order=1),
    R("adjugate_push", lambda x: _adjugate_push(x, _const(x, _FIXED_3x3), transpose=True), (3, 3),
      order=1, label="vjp"),
    R("to_backend", lambda x: (x.to(_other_cpu_backend(x)) * 2.0).to(x.backend), (2, 3)),
    R("checkpoint", lambda x, y: gx.checkpoint(lambda a, b: gx.sin(a) * b + a)(x, y),
      (2, 3), (3,)),
]

# activations and normalization (gradx/ops/activations.py, gradx/nn/normalization.py); the
# normalizations' functional forms compute the statistics and call the primitive
import gradx.nn.functional as _F  # noqa: E402

ROWS += [
    R("erf", gx.erf, (3, 4)),
    R("gelu", _F.gelu, (3, 4)),
    R("gelu", lambda x: _F.gelu(x, approximate="tanh"), (2, 3), label="tanh"),
    R("silu", _F.silu, (3, 4)),
    R("softplus", lambda x: _F.softplus(x, beta=2.0, threshold=1.0), (3, 4),
      label="threshold"),
    R("elu", lambda x: _F.elu(x, alpha=0.5), (3, 4)),
    R("leaky_relu", lambda x: _F.leaky_relu(x, 0.2), (3, 4)),
    R("layer_norm", lambda x, w, b: _F.layer_norm(x, (3, 4), w, b), (2, 3, 4), (3, 4), (3, 4)),
    R("layer_norm", lambda x: _F.layer_norm(x, 5), (1, 5), label="plain"),
    R("batch_norm", lambda x, w, b: _F.batch_norm(x, None, None, w, b, training=True),
      (4, 3, 2), (3,), (3,)),
    R("batch_norm", lambda x, w: _F.batch_norm(x, None, None, w, training=True), (3, 2),
      (2,), label="2d-input"),
    R("group_norm", lambda x, w, b: _F.group_norm(x, 2, w, b), (2, 4, 3), (4,), (4,)),
]

# Primitives with no gradient, each with the reason.
NON_DIFFERENTIABLE = {
    "argmax": "integer result",
    "argmin": "integer result",
    "argsort": "integer result",
    "equal": "boolean result",
    "not_equal": "boolean result",
    "less": "boolean result",
    "less_equal": "boolean result",
    "greater": "boolean result",
    "greater_equal": "boolean result",
    "logical_and": "boolean result",
    "logical_or": "boolean result",
    "logical_not": "boolean result",
    "isnan": "boolean result",
    "isinf": "boolean result",
    "isfinite": "boolean result",
}


def all_rows() -> list[Row]:
    """The core rows plus those the nn package contributes."""
    rows = list(ROWS)
    try:
        from op_rows_nn import NN_ROWS
    except ImportError:
        return rows
    for r in NN_ROWS:
        fn = r["fn"] if not r.get("kwargs") else functools.partial(r["fn"], **r["kwargs"])
        rows.append(r if isinstance(r, Row) else Row(
            r["name"], fn, tuple(r["shapes"]), domain=r.get("domain", "real"),
            order=r.get("order", 2), label=r.get("label", ""),
            modes=tuple(r.get("modes", ("rev", "fwd")))))
    return rows
