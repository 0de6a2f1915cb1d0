"""One row per gradx.numpy function: how to call it, on which inputs, and its NumPy reference.

``Row.fn(m, *xs)`` is called with ``m`` = gradx.numpy (on gradx tensors) and with ``m`` =
NumPy (on float64 arrays) unless ``ref`` gives the NumPy side (names NumPy 2 removed, or
NumPy results gradx.numpy returns in another form). ``domain`` keeps inputs where the function
is smooth; ``grad`` rows are checked with ``gx.testing.check_grads`` to ``order``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Row:
    name: str
    fn: Callable
    shapes: tuple = ((3, 4),)
    domain: str = "real"
    grad: bool = True
    order: int = 2
    ref: Callable | None = None
    tag: str = ""
    kw: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.name + (f"[{self.tag}]" if self.tag else "")


def inputs(row: Row, seed: int = 0) -> list[np.ndarray]:
    """Float64 host inputs for ``row`` in its domain (distinct values: no ties)."""
    rng = np.random.default_rng(seed)
    out = []
    for s in row.shapes:
        x = rng.standard_normal(s)
        if row.domain == "pos":
            x = np.abs(x) + 0.5
        elif row.domain == "unit":
            x = 0.8 * np.tanh(x)
        elif row.domain == "gt1":
            x = np.abs(x) + 1.5
        elif row.domain == "spd" and len(s) >= 2 and s[-1] == s[-2]:
            x = x @ np.swapaxes(x, -1, -2) + s[-1] * np.eye(s[-1])
        elif row.domain == "away0":
            x = np.sign(x) * (np.abs(x) + 0.3)
        elif row.domain == "offint":  # away from integers: floor/round/mod are smooth there
            x = np.floor(3 * x) + 0.5 + 0.3 * np.tanh(x)
        out.append(x)
    return out


U, B = "unary", "binary"
S1, S2 = ((3, 4),), ((3, 4), (3, 4))
SQ = ((4, 4),)

ROWS: list[Row] = [
    # elementwise aliases
    *[Row(n, (lambda n_: lambda m, x: getattr(m, n_)(x))(n), S1, d) for n, d in [
        ("negative", "real"), ("positive", "real"), ("abs", "away0"), ("absolute", "away0"),
        ("fabs", "away0"), ("exp", "real"), ("expm1", "real"), ("log", "pos"),
        ("log1p", "pos"), ("sqrt", "pos"), ("square", "real"), ("sin", "real"),
        ("cos", "real"), ("tan", "unit"), ("sinh", "real"), ("cosh", "real"), ("tanh", "real"),
        ("arcsin", "unit"), ("arccos", "unit"), ("arctan", "real"), ("exp2", "real"),
        ("log2", "pos"), ("log10", "pos"), ("reciprocal", "away0"), ("arcsinh", "real"),
        ("arccosh", "gt1"), ("arctanh", "unit"), ("deg2rad", "real"), ("rad2deg", "real"),
        ("radians", "real"), ("degrees", "real"), ("sinc", "real"), ("conj", "real"),
        ("conjugate", "real"), ("real", "real"), ("real_if_close", "real"),
    ]],
    *[Row(n, (lambda n_: lambda m, x: getattr(m, n_)(x))(n), S1, d,
          ref=(lambda r_: lambda m, x: getattr(np, r_)(x))(r)) for n, r, d in [
        ("asin", "arcsin", "unit"), ("acos", "arccos", "unit"), ("atan", "arctan", "real"),
        ("asinh", "arcsinh", "real"), ("acosh", "arccosh", "gt1"),
        ("atanh", "arctanh", "unit")]],
    Row("imag", lambda m, x: m.imag(x), S1),
    # piecewise constant: values, and zero gradients
    *[Row(n, (lambda n_: lambda m, x: getattr(m, n_)(x))(n), S1, "offint", order=1)
      for n in ("sign", "floor", "ceil", "rint", "trunc", "fix", "around")],
    Row("round", lambda m, x: m.round(x, 1), S1, "offint", order=1, tag="decimals"),
    Row("round_", lambda m, x: m.round_(x), S1, "offint", order=1,
        ref=lambda m, x: np.round(x)),
    # binary
    *[Row(n, (lambda n_: lambda m, x, y: getattr(m, n_)(x, y))(n), S2, d) for n, d in [
        ("add", "real"), ("subtract", "real"), ("multiply", "real"), ("divide", "away0"),
        ("true_divide", "away0"), ("power", "pos"), ("maximum", "real"), ("minimum", "real"),
        ("fmax", "real"), ("fmin", "real"), ("arctan2", "away0"), ("logaddexp", "real"),
        ("logaddexp2", "real"), ("hypot", "away0"), ("copysign", "away0"),
    ]],
    Row("pow", lambda m, x, y: m.pow(x, y), S2, "pos", ref=lambda m, x, y: x ** y),
    Row("atan2", lambda m, x, y: m.atan2(x, y), S2, "away0", ref=lambda m, x, y: np.arctan2(x, y)),
    Row("matmul", lambda m, x, y: m.matmul(x, y), ((3, 4), (4, 2))),
    Row("add", lambda m, x, y: m.add(x, y), ((3, 4), (4,)), tag="broadcast"),
    *[Row(n, (lambda n_: lambda m, x, y: getattr(m, n_)(x, 0.7 + 0.3 * y * y))(n), S2,
          "offint", order=1) for n in ("mod", "remainder", "fmod", "floor_divide")],
    # comparisons and predicates: values only
    *[Row(n, (lambda n_: lambda m, x, y: getattr(m, n_)(x, y))(n), S2, grad=False) for n in (
        "equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
        "logical_and", "logical_or", "logical_xor")],
    Row("logical_not", lambda m, x: m.logical_not(x > 0), S1, grad=False),
    *[Row(n, (lambda n_: lambda m, x: getattr(m, n_)(m.where(x > 1, m.inf, m.where(
        x < -1, -m.inf, m.where(m.abs(x) < 0.2, m.nan, x)))))(n), S1, grad=False)
      for n in ("isfinite", "isinf", "isnan", "isneginf", "isposinf")],
    Row("nan_to_num", lambda m, x: m.nan_to_num(m.where(x > 1, m.inf, m.where(
        m.abs(x) < 0.2, m.nan, x)) * x), S1, grad=False, tag="values"),
    Row("nan_to_num", lambda m, x: m.nan_to_num(x * 2.0), S1),
    Row("isclose", lambda m, x, y: m.isclose(x, x + m.where(y > 0, 1e-9, 1e-3)), S2,
        grad=False),
    Row("allclose", lambda m, x, y: m.allclose(x, x + 1e-9 * y), S2, grad=False),
    Row("array_equal", lambda m, x, y: m.array_equal(x, x), S2, grad=False),
    Row("array_equiv", lambda m, x, y: m.array_equiv(x[:1], x[:1] * m.ones((3, 1))), S2,
        grad=False),
    Row("iscomplex", lambda m, x: m.iscomplex(x), S1, grad=False),
    Row("isreal", lambda m, x: m.isreal(x), S1, grad=False),
    Row("iscomplexobj", lambda m, x: m.iscomplexobj(x), S1, grad=False),
    Row("isrealobj", lambda m, x: m.isrealobj(x), S1, grad=False),
    Row("isscalar", lambda m, x: m.isscalar(3.0), S1, grad=False),
    Row("shape", lambda m, x: m.shape(x), S1, grad=False),
    Row("ndim", lambda m, x: m.ndim(x), S1, grad=False),
    Row("size", lambda m, x: m.size(x, 1), S1, grad=False),
    Row("result_type", lambda m, x: str(m.result_type(x, x)).split(".")[-1], S1, grad=False,
        ref=lambda m, x: "float64"),
    Row("where", lambda m, x, y: m.where(x > y, x, y), S2),
    Row("clip", lambda m, x: m.clip(x, -0.5, 0.5), S1),
    Row("clip", lambda m, x: m.clip(x, min=-0.5), S1, tag="numpy2", ref=lambda m, x: np.clip(
        x, -0.5, None)),
    Row("select", lambda m, x, y: m.select([x > 0.5, x < -0.5], [x * y, x + y], 0.0), S2),
    # reductions
    *[Row(n, (lambda n_, kw_: lambda m, x: getattr(m, n_)(x, **kw_))(n, kw), ((3, 4, 2),),
          "pos" if n in ("prod", "product") else "real", tag=t)
      for n in ("sum", "mean", "prod", "max", "min", "amax", "amin", "std", "var")
      for t, kw in (("", {}), ("axis", {"axis": 1}), ("keepdims", {"axis": (0, 2),
                                                                   "keepdims": True}))
      if not (n in ("std", "var") and t == "keepdims")],
    Row("product", lambda m, x: m.product(x, axis=0), S1, "pos",
        ref=lambda m, x: np.prod(x, axis=0)),
    Row("var", lambda m, x: m.var(x, axis=0, ddof=1), S1, tag="ddof"),
    Row("std", lambda m, x: m.std(x, correction=1), S1, tag="correction",
        ref=lambda m, x: np.std(x, ddof=1)),
    Row("sum", lambda m, x: m.sum(x, dtype=m.float32), S1, grad=False, tag="dtype"),
    Row("cumsum", lambda m, x: m.cumsum(x, axis=1), S1),
    Row("cumsum", lambda m, x: m.cumsum(x), S1, tag="flat"),
    Row("cumulative_sum", lambda m, x: m.cumulative_sum(x, axis=0), S1,
        ref=lambda m, x: np.cumsum(x, axis=0)),
    Row("average", lambda m, x, w: m.average(x, axis=1, weights=m.abs(w[0]) + 0.5),
        ((3, 4), (3, 4)), ref=lambda m, x, w: np.average(x, axis=1, weights=np.abs(w[0]) + .5)),
    Row("average", lambda m, x: m.average(x), S1, tag="plain"),
    *[Row(n, (lambda n_: lambda m, x: getattr(m, n_)(x, axis=1))(n), S1, grad=False)
      for n in ("argmax", "argmin", "argsort")],
    Row("argmax", lambda m, x: m.argmax(x), S1, grad=False, tag="flat"),
    Row("argpartition", lambda m, x: m.take_along_axis(x, m.argpartition(x, 2, axis=1),
                                                       axis=1)[:, 2],
        S1, grad=False, ref=lambda m, x: np.sort(x, axis=1)[:, 2]),
    Row("all", lambda m, x: m.all(x > -1, axis=0), S1, grad=False),
    Row("any", lambda m, x: m.any(x > 1), S1, grad=False),
    Row("count_nonzero", lambda m, x: m.count_nonzero(x > 0, axis=1), S1, grad=False),
    Row("nonzero", lambda m, x: m.nonzero(x > 0)[1], S1, grad=False),
    Row("argwhere", lambda m, x: m.argwhere(x > 0), S1, grad=False),
    Row("flatnonzero", lambda m, x: m.flatnonzero(x > 0), S1, grad=False),
    Row("searchsorted", lambda m, x: m.searchsorted(m.sort(m.ravel(x)), x[0]), S1, grad=False),
    Row("sort", lambda m, x: m.sort(x, axis=0), S1),
    Row("sort", lambda m, x: m.sort(x, axis=None), S1, tag="flat"),
    Row("msort", lambda m, x: m.msort(x), S1, ref=lambda m, x: np.sort(x, axis=0)),
    Row("partition", lambda m, x: m.partition(x, 1)[:, 1], S1),
    # shapes
    Row("reshape", lambda m, x: m.reshape(x, (2, 6)), S1),
    Row("reshape", lambda m, x: m.reshape(x, -1), S1, tag="int"),
    Row("ravel", lambda m, x: m.ravel(x), S1),
    Row("transpose", lambda m, x: m.transpose(x), ((2, 3, 4),)),
    Row("transpose", lambda m, x: m.transpose(x, (1, 0, 2)), ((2, 3, 4),), tag="axes"),
    Row("permute_dims", lambda m, x: m.permute_dims(x, (2, 0, 1)), ((2, 3, 4),)),
    Row("matrix_transpose", lambda m, x: m.matrix_transpose(x), ((2, 3, 4),),
        ref=lambda m, x: np.swapaxes(x, -1, -2)),
    Row("swapaxes", lambda m, x: m.swapaxes(x, 0, 2), ((2, 3, 4),)),
    Row("moveaxis", lambda m, x: m.moveaxis(x, 0, -1), ((2, 3, 4),)),
    Row("moveaxis", lambda m, x: m.moveaxis(x, (0, 1), (2, 0)), ((2, 3, 4),), tag="tuple"),
    Row("rollaxis", lambda m, x: m.rollaxis(x, 2), ((2, 3, 4),)),
    Row("rollaxis", lambda m, x: m.rollaxis(x, 0, 3), ((2, 3, 4),), tag="start"),
    Row("expand_dims", lambda m, x: m.expand_dims(x, 1), S1),
    Row("expand_dims", lambda m, x: m.expand_dims(x, (0, -1)), S1, tag="tuple"),
    Row("squeeze", lambda m, x: m.squeeze(x), ((3, 1, 4, 1),)),
    Row("squeeze", lambda m, x: m.squeeze(x, axis=1), ((3, 1, 4, 1),), tag="axis"),
    Row("broadcast_to", lambda m, x: m.broadcast_to(x, (2, 3, 4)), S1),
    Row("broadcast_arrays", lambda m, x, y: m.broadcast_arrays(x, y)[1], ((3, 1), (4,))),
    *[Row(n, (lambda n_: lambda m, x: getattr(m, n_)(x))(n), ((4,),)) for n in (
        "atleast_1d", "atleast_2d", "atleast_3d")],
    Row("atleast_3d", lambda m, x: m.atleast_3d(x), S1, tag="2d"),
    Row("atleast_1d", lambda m, x: m.atleast_1d(x[0, 0]), S1, tag="0d"),
    Row("concatenate", lambda m, x, y: m.concatenate([x, y], axis=1), S2),
    Row("concatenate", lambda m, x, y: m.concatenate((x, y), axis=None), S2, tag="flat"),
    Row("concat", lambda m, x, y: m.concat([x, y]), S2, ref=lambda m, x, y: np.concatenate(
        [x, y])),
    Row("stack", lambda m, x, y: m.stack([x, y], axis=1), S2),
    Row("vstack", lambda m, x, y: m.vstack([x[0], y]), S2),
    Row("row_stack", lambda m, x, y: m.row_stack([x, y]), S2,
        ref=lambda m, x, y: np.vstack([x, y])),
    Row("hstack", lambda m, x, y: m.hstack([x, y]), S2),
    Row("hstack", lambda m, x, y: m.hstack([x[0], y[1]]), S2, tag="1d"),
    Row("dstack", lambda m, x, y: m.dstack([x, y]), S2),
    Row("column_stack", lambda m, x, y: m.column_stack([x[0], y[1], x[2]]), S2),
    Row("append", lambda m, x, y: m.append(x, y[:1], axis=0), S2),
    Row("append", lambda m, x, y: m.append(x, y), S2, tag="flat"),
    *[Row(n, (lambda n_, k_: lambda m, x: getattr(m, n_)(x, k_)[-1])(n, k), ((4, 6),), tag=t)
      for n in ("split", "array_split", "vsplit") for t, k in (("", 2), ("idx", [1, 3]))],
    Row("array_split", lambda m, x: m.array_split(x, 4, axis=1)[0], ((3, 6),), tag="uneven"),
    Row("hsplit", lambda m, x: m.hsplit(x, 2)[1], ((4, 6),)),
    Row("dsplit", lambda m, x: m.dsplit(x, [1])[1], ((2, 3, 4),)),
    Row("flip", lambda m, x: m.flip(x, 1), S1),
    Row("flip", lambda m, x: m.flip(x), S1, tag="all"),
    Row("flipud", lambda m, x: m.flipud(x), S1),
    Row("fliplr", lambda m, x: m.fliplr(x), S1),
    *[Row("rot90", (lambda k_: lambda m, x: m.rot90(x, k_))(k), ((3, 4, 2),), tag=str(k))
      for k in (1, 2, 3, 4)],
    Row("roll", lambda m, x: m.roll(x, 2, axis=1), S1),
    Row("roll", lambda m, x: m.roll(x, -5), S1, tag="flat"),
    Row("roll", lambda m, x: m.roll(x, (1, 2), axis=(0, 1)), S1, tag="tuple"),
    Row("tile", lambda m, x: m.tile(x, (2, 1, 3)), S1),
    Row("tile", lambda m, x: m.tile(x, 2), S1, tag="int"),
    Row("repeat", lambda m, x: m.repeat(x, 3, axis=1), S1),
    Row("repeat", lambda m, x: m.repeat(x, 2), S1, tag="flat"),
    Row("repeat", lambda m, x: m.repeat(x, [1, 0, 2], axis=0), S1, tag="counts"),
    Row("tril", lambda m, x: m.tril(x, -1), S1),
    Row("triu", lambda m, x: m.triu(x, 1), S1),
    Row("tril", lambda m, x: m.tril(x[0]), S1, tag="vector"),
    Row("diagonal", lambda m, x: m.diagonal(x), S1),
    Row("diagonal", lambda m, x: m.diagonal(x, 1, 0, 2), ((3, 2, 4),), tag="axes"),
    Row("diagonal", lambda m, x: m.diagonal(x, -1), S1, tag="below"),
    Row("trace", lambda m, x: m.trace(x), S1),
    Row("trace", lambda m, x: m.trace(x, 1, 1, 2), ((2, 3, 4),), tag="axes"),
    Row("diag", lambda m, x: m.diag(x), S1, tag="matrix"),
    Row("diag", lambda m, x: m.diag(x[0]), S1),
    Row("diag", lambda m, x: m.diag(x[0], 1), S1, tag="above"),
    Row("diag", lambda m, x: m.diag(x[0], -2), S1, tag="below"),
    Row("diagflat", lambda m, x: m.diagflat(x[:2]), S1),
    *[Row("pad", (lambda mode: lambda m, x: m.pad(x, ((1, 2), (2, 1)), mode=mode))(md), S1,
          tag=md) for md in ("constant", "edge", "wrap", "reflect", "symmetric")],
    Row("pad", lambda m, x: m.pad(x, 1, constant_values=3.0), S1, tag="values"),
    Row("diff", lambda m, x: m.diff(x), S1),
    Row("diff", lambda m, x: m.diff(x, 2, axis=0), S1, tag="n2"),
    Row("diff", lambda m, x: m.diff(x, prepend=0.0), S1, tag="prepend"),
    Row("ediff1d", lambda m, x: m.ediff1d(x), S1),
    Row("gradient", lambda m, x: m.gradient(x)[1], S1),
    Row("gradient", lambda m, x: m.gradient(x[0], 0.5), S1, tag="1d"),
    # products
    Row("dot", lambda m, x, y: m.dot(x, y), ((3, 4), (4, 2))),
    Row("dot", lambda m, x, y: m.dot(x[0], y[:, 0]), ((3, 4), (4, 2)), tag="vector"),
    Row("dot", lambda m, x, y: m.dot(x, y), ((2, 3, 4), (5, 4, 2)), tag="nd"),
    Row("dot", lambda m, x, y: m.dot(x[0, 0], y), S2, tag="scalar"),
    Row("vdot", lambda m, x, y: m.vdot(x, y), S2),
    Row("inner", lambda m, x, y: m.inner(x, y), ((3, 4), (2, 4))),
    Row("outer", lambda m, x, y: m.outer(x, y), ((3,), (2, 2))),
    Row("tensordot", lambda m, x, y: m.tensordot(x, y, axes=([1, 2], [0, 1])),
        ((2, 3, 4), (3, 4, 2))),
    Row("tensordot", lambda m, x, y: m.tensordot(x, y, 1), ((2, 3), (3, 4)), tag="int"),
    Row("einsum", lambda m, x, y: m.einsum("ij,jk->ik", x, y), ((3, 4), (4, 2))),
    Row("einsum", lambda m, x: m.einsum("ii", x), SQ, tag="trace"),
    Row("kron", lambda m, x, y: m.kron(x, y), ((2, 3), (3, 2))),
    Row("kron", lambda m, x, y: m.kron(x, y), ((3,), (2, 2)), tag="mixed"),
    Row("cross", lambda m, x, y: m.cross(x, y), ((4, 3), (4, 3))),
    Row("cross", lambda m, x, y: m.cross(x, y, axis=0), ((3, 2), (3, 2)), tag="axis"),
    Row("cross", lambda m, x, y: m.cross(x, y), ((4, 2), (4, 2)), tag="2d",
        ref=lambda m, x, y: x[:, 0] * y[:, 1] - x[:, 1] * y[:, 0]),
    # creation and conversion (differentiable where they pass a tensor through)
    Row("array", lambda m, x, y: m.array([x, y]), S2),
    Row("array", lambda m, x: m.array(x, ndmin=3), ((4,),), tag="ndmin"),
    Row("asarray", lambda m, x: m.asarray(x) * 2.0, S1),
    Row("asanyarray", lambda m, x: m.asanyarray(x) * 2.0, S1),
    Row("ascontiguousarray", lambda m, x: m.ascontiguousarray(x) * 2.0, S1),
    Row("copy", lambda m, x: m.copy(x) * 2.0, S1),
    Row("astype", lambda m, x: m.astype(x, m.float64) * 2.0, S1,
        ref=lambda m, x: x.astype(np.float64) * 2.0),
    Row("full", lambda m, x: m.full((2, 3), x[0, 0]), S1),
    Row("linspace", lambda m, x, y: m.linspace(x[0, 0], y[0, 0], 5), S2),
    Row("linspace", lambda m, x, y: m.linspace(x[0, 0], y[0, 0], 4, endpoint=False), S2,
        tag="open"),
    Row("meshgrid", lambda m, x, y: m.meshgrid(x[0], y[0, :3])[0] * m.meshgrid(
        x[0], y[0, :3])[1], S2),
    Row("meshgrid", lambda m, x, y: m.meshgrid(x[0], y[0, :3], indexing="ij")[1], S2, tag="ij"),
    *[Row(n, (lambda n_: lambda m, x: getattr(m, n_)(x) + x)(n), S1) for n in (
        "zeros_like", "ones_like")],
    Row("empty_like", lambda m, x: m.empty_like(x).shape, S1, grad=False),
    Row("full_like", lambda m, x: m.full_like(x, 2.5) * x, S1),
    Row("zeros", lambda m, x: m.zeros((2, 3), dtype=float), S1, grad=False),
    Row("ones", lambda m, x: m.ones(3, dtype=m.float64), S1, grad=False),
    Row("empty", lambda m, x: m.empty((2, 3), dtype=float).shape, S1, grad=False),
    Row("eye", lambda m, x: m.eye(3, 4, k=1, dtype=float), S1, grad=False),
    Row("identity", lambda m, x: m.identity(3, dtype=float), S1, grad=False),
    Row("tri", lambda m, x: m.tri(3, 4, -1, dtype=float), S1, grad=False),
    Row("arange", lambda m, x: m.arange(1, 7, 2), S1, grad=False),
    # linalg
    Row("linalg.inv", lambda m, x: m.linalg.inv(x), SQ, "spd"),
    Row("linalg.det", lambda m, x: m.linalg.det(x), SQ, "spd"),
    Row("linalg.solve", lambda m, x, y: m.linalg.solve(x, y), ((4, 4), (4, 2)), "spd"),
    Row("linalg.norm", lambda m, x: m.linalg.norm(x), S1),
    Row("linalg.norm", lambda m, x: m.linalg.norm(x, axis=1), S1, tag="axis"),
    Row("linalg.norm", lambda m, x: m.linalg.norm(x, 1, axis=1), S1, "away0", tag="ord1"),
    Row("linalg.vector_norm", lambda m, x: m.linalg.vector_norm(x, axis=0), S1),
    Row("linalg.matrix_norm", lambda m, x: m.linalg.matrix_norm(x), S1),
    Row("linalg.svd", lambda m, x: m.linalg.svd(x, compute_uv=False), S1, order=1),
    Row("linalg.svdvals", lambda m, x: m.linalg.svdvals(x), S1, order=1,
        ref=lambda m, x: np.linalg.svd(x, compute_uv=False)),
    Row("linalg.matrix_power", lambda m, x: m.linalg.matrix_power(x, 3), SQ),
    Row("linalg.matrix_power", lambda m, x: m.linalg.matrix_power(x, -2), SQ, "spd",
        tag="neg"),
    Row("linalg.matrix_power", lambda m, x: m.linalg.matrix_power(x, 0) + x, SQ, tag="zero"),
    Row("linalg.multi_dot", lambda m, x, y: m.linalg.multi_dot([x, y, x.T]), ((3, 4), (4, 4))),
    Row("linalg.trace", lambda m, x: m.linalg.trace(x), ((2, 3, 3),),
        ref=lambda m, x: np.trace(x, axis1=-2, axis2=-1)),
    Row("linalg.matmul", lambda m, x, y: m.linalg.matmul(x, y), ((3, 4), (4, 2)),
        ref=lambda m, x, y: x @ y),
    Row("linalg.outer", lambda m, x, y: m.linalg.outer(x, y), ((3,), (2,)),
        ref=lambda m, x, y: np.outer(x, y)),
    Row("linalg.tensordot", lambda m, x, y: m.linalg.tensordot(x, y, axes=1), ((2, 3), (3, 2)),
        ref=lambda m, x, y: np.tensordot(x, y, axes=1)),
    Row("linalg.vecdot", lambda m, x, y: m.linalg.vecdot(x, y), S2,
        ref=lambda m, x, y: np.sum(x * y, axis=-1)),
    Row("linalg.matrix_transpose", lambda m, x: m.linalg.matrix_transpose(x), S1,
        ref=lambda m, x: x.T),
    Row("fft.fftshift", lambda m, x: m.fft.fftshift(x), ((3, 5),)),
    Row("fft.ifftshift", lambda m, x: m.fft.ifftshift(x, axes=1), ((3, 5),)),
]

ROWS += [
    Row("take", lambda m, x: m.take(x, [2, 0, 2], axis=1), S1),
    Row("take", lambda m, x: m.take(x, [5, 1]), S1, tag="flat"),
    Row("take_along_axis", lambda m, x: m.take_along_axis(x, m.argsort(x, axis=1), axis=1),
        S1),
]

_ = Any
