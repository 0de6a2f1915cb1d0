"""Linear algebra, einsum and indexing against PyTorch float64: values, reverse mode, forward
mode and second order, on shapes the op table leaves out (diagonals, broadcast ellipses and
indices, batched solves with vector right-hand sides, singular determinants, every norm
order). Each case once computes f's value, ``<v, J>``, ``J u`` and the gradient of
``<VJP(v), w>`` in gradx and in PyTorch from the same host inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradx as gx
from gradx.errors import ArgumentError, GradxError, NotDifferentiableError, ShapeError

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.usefixtures("hot_path")

INF = math.inf


def _compare(backend, f_gx, f_torch, arrays, order=2, fwd=True, rtol=1e-7, atol=1e-9):
    """f's value, VJP, JVP and second-order VJP in gradx on ``backend`` against PyTorch."""
    rng = np.random.default_rng(1)
    xs = [gx.tensor(a) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = f_gx(*xs)
    tout = f_torch(*ts)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=rtol, atol=atol)
    v = rng.standard_normal(tuple(tout.shape))
    us = [rng.standard_normal(a.shape) for a in arrays]
    ws = [rng.standard_normal(a.shape) for a in arrays]

    _, vjp_fn = gx.vjp(f_gx, *xs)
    cts = vjp_fn(gx.tensor(v))
    tcts = torch.autograd.grad(tout, ts, torch.tensor(v), create_graph=order > 1,
                               allow_unused=True)
    for c, tc, a in zip(cts, tcts, arrays, strict=True):
        expect = np.zeros(a.shape) if tc is None else tc.detach().numpy(force=True)
        assert c.shape == a.shape
        np.testing.assert_allclose(c.numpy(), expect, rtol=rtol, atol=atol)

    if fwd:
        _, tangent = gx.jvp(f_gx, tuple(xs), tuple(gx.tensor(u) for u in us))
        _, ttangent = torch.autograd.functional.jvp(
            f_torch, tuple(torch.tensor(a) for a in arrays), tuple(torch.tensor(u) for u in us))
        np.testing.assert_allclose(tangent.numpy(), ttangent.numpy(force=True), rtol=rtol,
                                   atol=atol)

    if order > 1:
        def inner(*ys):
            grads = gx.vjp(f_gx, *ys)[1](gx.tensor(v))
            return builtins_sum(gx.sum(g * gx.tensor(w)) for g, w in zip(grads, ws,
                                                                         strict=True))

        second = gx.grad(inner, argnums=tuple(range(len(xs))))(*xs)
        tinner = builtins_sum((tc * torch.tensor(w)).sum() for tc, w in zip(tcts, ws,
                                                                           strict=True)
                              if tc is not None)
        tsecond = [None] * len(ts)
        if isinstance(tinner, torch.Tensor) and tinner.requires_grad:
            tsecond = torch.autograd.grad(tinner, ts, allow_unused=True)
        for s, ts2, a in zip(second, tsecond, arrays, strict=True):
            expect = np.zeros(a.shape) if ts2 is None else ts2.numpy(force=True)
            np.testing.assert_allclose(s.numpy(), expect, rtol=rtol, atol=atol)


def builtins_sum(items):
    total = 0
    for item in items:
        total = total + item
    return total


def _draw(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in shapes]


# -- einsum: diagonals (defect 6) and broadcast ellipses (defect 16) ----------------------
EINSUM = [
    ("ii->", (3, 3)),
    ("ii->i", (3, 3)),
    ("iij->j", (3, 3, 2)),
    ("ii,i->i", (3, 3), (3,)),
    ("iji->j", (3, 2, 3)),
    ("iii->i", (2, 2, 2)),
    ("ii", (3, 3)),
    ("bii->b", (2, 3, 3)),
    ("ij,jj->ij", (2, 3), (3, 3)),
    ("...ij,...jk->...ik", (1, 2, 3), (4, 3, 2)),
    ("...ij,...jk->...ik", (4, 2, 3), (1, 3, 2)),
    ("...ij,...jk->...ik", (2, 1, 2, 3), (3, 3, 2)),
    ("...ij,...jk->...ik", (2, 3), (4, 3, 2)),
    ("...i,i->...", (2, 4, 3), (3,)),
    ("...i,...i->...", (2, 1, 3), (4, 3)),
    ("...ii->...i", (2, 3, 3)),
    ("ij,jk->ik", (2, 3), (3, 4)),
    ("ij->", (0, 3)),
    ("i,i->", (1,), (1,)),
    ("...,...->...", (), (3,)),
    ("ij,k->ik", (2, 3), (4,)),
]


@pytest.mark.parametrize("case", EINSUM, ids=[f"{c[0]}-{c[1:]}" for c in EINSUM])
def test_einsum_matches_torch(backend, case):
    spec, *shapes = case
    _compare(backend, lambda *xs: gx.einsum(spec, *xs), lambda *ts: torch.einsum(spec, *ts),
             _draw(*shapes))


# -- take_along_axis with broadcasting indices (defect 16) --------------------------------
TAKE_ALONG = [
    ((3, 4), [[0, 2, 1]], 1),
    ((1, 4), [[0, 2], [3, 3], [1, 0]], 1),
    ((3, 4), [[0], [3], [3]], 1),
    ((3, 4), [[2, 0, 2, 1]], 0),
    ((2, 3, 4), [[[0, 3]]], -1),
    ((3, 4), [[0, 0, 1], [3, 3, 3], [1, 2, 0]], 1),
]


@pytest.mark.parametrize("case", TAKE_ALONG, ids=[str(i) for i in range(len(TAKE_ALONG))])
def test_take_along_axis_broadcasts_like_numpy(backend, case):
    shape, idx, axis = case
    idx = np.asarray(idx)
    (x,) = _draw(shape)
    np_out = np.take_along_axis(x, idx, axis=axis)
    gidx = gx.tensor(idx)
    _compare(backend, lambda a: gx.take_along_axis(a, gidx, axis=axis),
             lambda t: torch.take_along_dim(t, torch.tensor(idx), dim=axis), [x])
    assert gx.take_along_axis(gx.tensor(x), gidx, axis=axis).shape == np_out.shape


# -- setitem with a value that broadcasts to the selected region (defect 16) --------------
SETITEM = [
    ((2, 3), 0, (1, 3)),
    ((2, 3), 0, (1, 1, 3)),
    ((2, 3), 0, (1,)),
    ((2, 3), (slice(None), 1), (1, 2)),
    ((3, 4), (slice(None, None, 2), Ellipsis), (1, 4)),
    ((3, 4), (slice(None), slice(1, 3)), (3, 1)),
    ((2, 3), (Ellipsis, None, 1), (1, 1, 2, 1)),
    ((), Ellipsis, (1,)),
    ((3, 4), (np.array([True, False, True]),), (1, 4)),
    ((3, 4), (np.array([2, 0]), slice(None, None, -2)), (2, 1)),
]


def _setitem(key):
    def f_gx(w, v):
        h = w * 1.0
        h[tuple(gx.tensor(k) if isinstance(k, np.ndarray) else k for k in key)
          if isinstance(key, tuple) else key] = v
        return h * w

    def f_torch(w, v):
        h = w * 1.0
        # the positions ``key`` selects, read off NumPy, so negative steps need no support
        pos = _positions(tuple(h.shape), key)
        flat = h.reshape(-1).clone()
        flat[torch.tensor(pos).reshape(-1)] = \
            v.expand(pos.shape).reshape(-1) if v.dim() <= pos.ndim else \
            v.reshape(pos.shape).reshape(-1)
        return flat.reshape(h.shape) * w

    return f_gx, f_torch


@pytest.mark.parametrize("case", SETITEM, ids=[str(i) for i in range(len(SETITEM))])
def test_setitem_broadcast_value(backend, case):
    shape, key, vshape = case
    f_gx, f_torch = _setitem(key)
    _compare(backend, f_gx, f_torch, _draw(shape, vshape))


def test_setitem_repeated_index_differentiates_the_value_written_last(backend):
    # x[[0, 2, 0]] = v leaves v[2] in x[0]: v[0] does not reach the output (PyTorch and JAX
    # give it the gradient of x[0] as well)
    idx = gx.tensor(np.array([0, 2, 0]))
    weights = gx.tensor(np.array([1.0, 10.0, 100.0]))

    def f(w, v):
        h = w * 1.0
        h[idx] = v
        return h * weights

    w, v = gx.tensor(np.ones(3)), gx.tensor(np.array([2.0, 3.0, 4.0]))
    _, vjp_fn = gx.vjp(f, w, v)
    gw, gv = vjp_fn(gx.tensor(np.ones(3)))
    np.testing.assert_array_equal(gw.numpy(), [0.0, 10.0, 0.0])
    np.testing.assert_array_equal(gv.numpy(), [0.0, 100.0, 1.0])
    _, tangent = gx.jvp(f, (w, v), (gx.tensor(np.ones(3)), gx.tensor(np.array([1.0, 5.0, 7.0]))))
    np.testing.assert_array_equal(tangent.numpy(), [7.0, 10.0, 500.0])
    gx.testing.check_grads(f, w, v, order=2)
    gx.testing.check_grads(f, w, gx.tensor(np.array([5.0])), order=2)  # broadcast value


# -- solve: Array API semantics for b's shape (defect 11) --------------------------------
SOLVE = [
    ((3, 3, 3), (3,)),  # k == n: the cotangent (k, n) is not one matrix right-hand side
    ((2, 3, 3), (3,)),
    ((3, 3), (3,)),
    ((2, 3, 3), (3, 2)),
    ((3, 3), (2, 3, 2)),
    ((1, 3, 3), (2, 3, 2)),
    ((2, 1, 3, 3), (4, 3, 1)),
    ((3, 3), (3, 3)),
    ((1, 1), (1,)),
]


def _well_conditioned(shape, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape) + 3 * np.eye(shape[-1])


@pytest.mark.parametrize("case", SOLVE, ids=[f"{a}-{b}" for a, b in SOLVE])
def test_solve_matches_torch(backend, case):
    ashape, bshape = case
    arrays = [_well_conditioned(ashape, 0), _draw(bshape, seed=1)[0]]
    _compare(backend, gx.linalg.solve, torch.linalg.solve, arrays, rtol=1e-6)


# -- det: the adjugate at singular matrices (defect 24) -----------------------------------
def _rank(n, r, seed, batch=()):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(batch + (n, r)) @ rng.standard_normal(batch + (r, n))


DET = {
    "regular": _well_conditioned((3, 3), 2),
    "batch": _well_conditioned((2, 3, 3), 3),
    "1x1": np.array([[0.7]]),
    "rank2of3": np.array([[1.0, 2.0, 0.5], [2.0, 4.0, 1.0], [0.3, -1.0, 2.0]]),
    "rank1of2": np.array([[1.0, 2.0], [2.0, 4.0]]),
    "rank1of3": np.outer([1.0, -2.0, 0.5], [0.3, 1.0, 2.0]),
    "zero3": np.zeros((3, 3)),
    "zero-row": np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [0.5, -1.0, 2.0]]),
    "mixed-batch": np.stack([_well_conditioned((3, 3), 4),
                             np.array([[1.0, 2.0, 0.5], [2.0, 4.0, 1.0], [0.3, -1.0, 2.0]])]),
}


def _cofactors(a):
    """The cofactor matrix (the transposed adjugate, det's gradient) from minors."""
    if a.ndim > 2:
        return np.stack([_cofactors(m) for m in a])
    n = a.shape[0]
    if n == 1:
        return np.ones((1, 1))
    return np.array([[(-1) ** (i + j) * np.linalg.det(np.delete(np.delete(a, i, 0), j, 1))
                      for j in range(n)] for i in range(n)])


@pytest.mark.parametrize("name", ["regular", "batch", "1x1"])
def test_det_matches_torch(backend, name):
    _compare(backend, gx.linalg.det, torch.linalg.det, [DET[name]], rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", list(DET))
def test_det_gradient_is_the_cofactor_matrix(backend, name):
    # PyTorch 2.13 returns zeros at exactly singular matrices; the cofactors are the gradient
    a = DET[name]
    rng = np.random.default_rng(0)
    v = rng.standard_normal(a.shape[:-2])
    u = rng.standard_normal(a.shape)
    cof = _cofactors(a)
    x = gx.tensor(a)
    _, vjp_fn = gx.vjp(gx.linalg.det, x)
    (g,) = vjp_fn(gx.tensor(v))
    np.testing.assert_allclose(g.numpy(), np.asarray(v)[..., None, None] * cof, atol=1e-12)
    _, tangent = gx.jvp(gx.linalg.det, (x,), (gx.tensor(u),))
    np.testing.assert_allclose(tangent.numpy(), np.sum(cof * u, axis=(-2, -1)), atol=1e-12)


@pytest.mark.parametrize("name", list(DET))
def test_det_second_order_by_finite_differences(backend, name):
    gx.testing.check_grads(gx.linalg.det, gx.tensor(DET[name]), order=2)


def test_det_rank_deficient_gradient_is_adjugate(backend):
    # rank n-1: the gradient is the (rank one) cofactor matrix; rank n-2 or lower: zero
    a = DET["rank2of3"]
    cof = np.array([[np.linalg.det(np.delete(np.delete(a, i, 0), j, 1)) * (-1) ** (i + j)
                     for j in range(3)] for i in range(3)])
    x = gx.tensor(a, requires_grad=True)
    gx.linalg.det(x).backward()
    np.testing.assert_allclose(x.grad.numpy(), cof, atol=1e-12)
    z = gx.tensor(_rank(4, 2, 5), requires_grad=True)
    gx.linalg.det(z).backward()
    np.testing.assert_allclose(z.grad.numpy(), 0.0, atol=1e-12)


def test_det_third_order_at_singular_is_refused_by_name(backend):
    a = gx.tensor(DET["rank1of2"])
    third = gx.grad(lambda x: gx.sum(gx.grad(lambda y: gx.sum(gx.grad(
        lambda z: gx.linalg.det(z))(y) ** 2))(x) ** 2))
    with pytest.raises(NotDifferentiableError, match="adjugate_push"):
        third(a)


# -- norm: every order and axis NumPy accepts (defect 16), float16 (defect 18) -----------
VECTOR_ORDS = [None, 0, 1, 2, 3, 0.5, INF, -INF, -1]
MATRIX_ORDS = [None, "fro", "nuc", 1, -1, 2, -2, INF, -INF]


def _torch_norm(ord, axis, keepdims):
    def f(t):
        if axis is None and ord is None:
            return torch.linalg.vector_norm(t, keepdim=keepdims) if not keepdims else \
                torch.linalg.vector_norm(t, dim=tuple(range(t.dim())), keepdim=True)
        dims = tuple(range(t.dim())) if axis is None else (
            (axis,) if isinstance(axis, int) else tuple(axis))
        if len(dims) == 1:
            return torch.linalg.vector_norm(t, ord=2 if ord is None else ord, dim=dims,
                                            keepdim=keepdims)
        return torch.linalg.matrix_norm(t, ord="fro" if ord is None else ord, dim=dims,
                                        keepdim=keepdims)
    return f


NORM = ([(o, (5,), None, False) for o in VECTOR_ORDS]
        + [(o, (3, 4), ax, kd) for o in VECTOR_ORDS for ax, kd in
           [(0, False), ((0,), False), ((-1,), True), (1, False)]]
        + [(o, (3, 4), None, False) for o in MATRIX_ORDS]
        + [(o, (2, 3, 4), ax, kd) for o in MATRIX_ORDS for ax, kd in
           [((0, 2), False), ((2, 1), True), ((-1, -2), False)]]
        + [(None, (2, 3, 4), None, True), (None, (2, 3, 4), None, False)])


@pytest.mark.parametrize("case", NORM, ids=[f"{o}-{s}-{a}-{k}" for o, s, a, k in NORM])
def test_norm_matches_torch(backend, case):
    ord, shape, axis, keepdims = case
    (x,) = _draw(shape, seed=7)
    _compare(backend, lambda a: gx.linalg.norm(a, ord=ord, axis=axis, keepdims=keepdims),
             _torch_norm(ord, axis, keepdims), [x], rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("ord", [1, "fro", "nuc", 2, -2, INF])
def test_matrix_norm_matches_torch(backend, ord):
    (x,) = _draw((2, 4, 3), seed=8)
    _compare(backend, lambda a: gx.linalg.matrix_norm(a, ord=ord),
             lambda t: torch.linalg.matrix_norm(t, ord=ord), [x], rtol=1e-6)


@pytest.mark.parametrize("ord", [2, 1, INF, 0, 3])
def test_vector_norm_matches_torch(backend, ord):
    (x,) = _draw((2, 4, 3), seed=9)
    _compare(backend, lambda a: gx.linalg.vector_norm(a, ord=ord, axis=(0, 2)),
             lambda t: torch.linalg.vector_norm(t, ord=ord, dim=(0, 2)), [x])


@pytest.mark.parametrize("shape", [(3, 3), (4, 2), (2, 5), (2, 3, 3), (3, 1)])
def test_svdvals_matches_torch(backend, shape):
    _compare(backend, gx.linalg.svdvals, torch.linalg.svdvals, _draw(shape, seed=4), rtol=1e-6)


def test_nuclear_norm_hessian_at_repeated_singular_values(backend):
    # the nuclear norm is smooth where every singular value is positive, ties included
    rng = np.random.default_rng(0)
    q1, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    q2, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    for x in (q1 @ np.diag([2.0, 2.0, 1.0]) @ q2, np.eye(3)):
        gx.testing.check_grads(lambda a: gx.linalg.matrix_norm(a, ord="nuc"), gx.tensor(x),
                               order=2)


def test_spectral_norm_third_order_is_refused_by_name(backend):
    x = gx.tensor(_draw((3, 3), seed=3)[0])
    third = gx.grad(lambda y: gx.sum(gx.grad(lambda z: gx.sum(gx.grad(
        lambda a: gx.linalg.norm(a, ord=2))(z) ** 2))(y) ** 2))
    with pytest.raises(NotDifferentiableError, match="svdvals_curv"):
        third(x)


@pytest.mark.parametrize("ord", [2, 3, 1, 0.5, -1, -2.5, INF, -INF, 0])
@pytest.mark.parametrize("values", [[0.0, 0.0, 0.0], [0.0, 1.0, -2.0], [1.0, -1.0, 0.5]])
def test_vector_norm_at_zero_entries_and_ties_matches_torch(backend, ord, values):
    # a zero entry and a zero vector get gradient 0 (PyTorch's choice); ties share equally
    x = gx.tensor(np.array(values), requires_grad=True)
    t = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    y = gx.linalg.norm(x, ord=ord, axis=0)
    ty = torch.linalg.vector_norm(t, ord=ord)
    np.testing.assert_allclose(y.numpy(), ty.item(), rtol=1e-12)
    np.testing.assert_allclose(y.numpy(), np.linalg.norm(np.array(values), ord=ord),
                               rtol=1e-12)
    y.backward()
    ty.backward()
    expect = np.zeros(3) if t.grad is None else t.grad.numpy()  # None: ord 0 in PyTorch
    np.testing.assert_allclose(x.grad.numpy(), expect, rtol=1e-12)


@pytest.mark.parametrize("kind", ["norm", "vector_norm", "matrix_norm", "ord1", "ord3"])
def test_float16_norm_accumulates_in_float32(kind):
    with gx.use_backend("numpy"):
        v = np.array([[300.0, 400.0], [1000.0, 2000.0]], dtype=np.float16)
        x = gx.tensor(v, requires_grad=True)
        fn = {"norm": lambda a: gx.linalg.norm(a),
              "vector_norm": lambda a: gx.linalg.vector_norm(a),
              "matrix_norm": lambda a: gx.linalg.matrix_norm(a),
              "ord1": lambda a: gx.linalg.norm(a, ord=1, axis=0),
              "ord3": lambda a: gx.linalg.norm(a, ord=3, axis=1)}[kind]
        tfn = {"norm": lambda t: torch.linalg.norm(t),
               "vector_norm": lambda t: torch.linalg.vector_norm(t),
               "matrix_norm": lambda t: torch.linalg.matrix_norm(t),
               "ord1": lambda t: torch.linalg.vector_norm(t, ord=1, dim=0),
               "ord3": lambda t: torch.linalg.vector_norm(t, ord=3, dim=1)}[kind]
        out = fn(x)
        assert out.dtype == np.float16
        expect = tfn(torch.tensor(v.astype(np.float64))).numpy()
        np.testing.assert_allclose(out.numpy().astype(np.float64), expect, rtol=2e-3)
        gx.sum(out).backward()
        assert np.all(np.isfinite(x.grad.numpy()))


@pytest.mark.parametrize("args", [
    dict(ord="fro", axis=0), dict(ord="nuc", axis=(1,)), dict(ord=3, axis=(0, 1)),
    dict(ord="abc"), dict(ord=0.5, axis=None), dict(axis=(0, 1, 2)), dict(axis=(1, 1)),
])
def test_norm_refuses_what_numpy_refuses(backend, args):
    x = gx.tensor(_draw((2, 3, 4))[0][:, :, 0] if args.get("ord") != 0.5
                  else _draw((2, 3, 4))[0])
    if args.get("axis") == (0, 1, 2):
        x = gx.tensor(_draw((2, 3, 4))[0])
    with pytest.raises((ArgumentError, ShapeError)):
        gx.linalg.norm(x, **args)
    with pytest.raises(ValueError):  # NumPy refuses it too
        np.linalg.norm(x.numpy(), **args)


def test_norm_errors_are_gradx_errors(backend):
    with pytest.raises(GradxError, match="matrix_norm"):
        gx.linalg.matrix_norm(gx.tensor(np.ones(3)))
    with pytest.raises(GradxError, match="vector_norm"):
        gx.linalg.vector_norm(gx.tensor(np.ones(3)), ord="fro")


# -- the rest of the family, against PyTorch on 0-d, size-1 and empty shapes -------------
def _positions(shape, key):
    """The flat positions NumPy's ``x[key]`` reads: PyTorch gathers them, so negative steps
    and mixed keys need no PyTorch support."""
    return np.array(np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)[key])


def _gather(key):
    def f(t):
        pos = _positions(tuple(t.shape), key)
        return t.reshape(-1)[torch.tensor(pos).reshape(-1)].reshape(pos.shape)
    return f


def _gx_key(key):
    if isinstance(key, tuple):
        return tuple(gx.tensor(k) if isinstance(k, np.ndarray) else k for k in key)
    return gx.tensor(key) if isinstance(key, np.ndarray) else key


GETITEM = [
    ((4,), np.array([1, 1, -1])),
    ((3, 4), (np.array([0, -1, 0]), slice(None, None, -2))),
    ((3, 4), (Ellipsis, None, np.array([3, 3]))),
    ((3, 4), np.array([[True, False, True, True]] * 3)),
    ((3, 4), np.array([True, False, True])),
    ((3, 4), (slice(None, None, -1), 2)),
    ((3, 4), -1),
    ((2, 3, 4), (np.array([0, 1, 1]), slice(None), np.array([3, 0, 3]))),
    ((2, 3, 4), (slice(None), np.array([[0, 2], [1, 1]]), None)),
    ((2, 3, 4), (1, Ellipsis, np.array([2, 2]))),
    ((3,), (None, Ellipsis, None)),
    ((), None),
    ((), Ellipsis),
    ((3, 0), np.array([1, 2])),
    ((3, 4), (slice(5, 1, -1), slice(-3, None, 2))),
    ((3, 4), np.array([], dtype=np.int64)),
]


@pytest.mark.parametrize("case", GETITEM, ids=[str(i) for i in range(len(GETITEM))])
def test_getitem_matches_torch(backend, case):
    shape, key = case
    gkey = _gx_key(key)
    _compare(backend, lambda x: x[gkey], _gather(key), _draw(shape))


PRODUCTS = [
    ("matmul", (3,), (3,)), ("matmul", (2, 3), (3,)), ("matmul", (3,), (3, 4)),
    ("matmul", (2, 1, 3, 4), (5, 4, 2)), ("matmul", (3,), (2, 3, 4)),
    ("matmul", (2, 3, 4), (4,)), ("matmul", (4,), (1, 4, 2)), ("matmul", (0, 3), (3, 2)),
    ("matmul", (2, 0), (0, 3)), ("matmul", (1, 2, 3), (4, 3, 5)), ("matmul", (0,), (0,)),
    ("vecdot", (2, 3), (3,)), ("vecdot", (2, 1, 3), (4, 3)), ("vecdot", (0, 3), (3,)),
    ("outer", (3,), (4,)), ("outer", (1,), (0,)),
]
_PRODUCT_FNS = {"matmul": (gx.matmul, torch.matmul),
                "vecdot": (gx.vecdot, torch.linalg.vecdot),
                "outer": (gx.outer, torch.outer)}


@pytest.mark.parametrize("case", PRODUCTS, ids=[f"{c[0]}-{c[1]}x{c[2]}" for c in PRODUCTS])
def test_products_match_torch(backend, case):
    name, a, b = case
    _compare(backend, *_PRODUCT_FNS[name], _draw(a, b))


TENSORDOT = [((2, 3, 4), (3, 4, 5), 2), ((2, 3), (3, 2), 1), ((2, 3), (4, 5), 0),
             ((2, 3, 4), (4, 3), ([1, 2], [1, 0])), ((3,), (3,), 1),
             ((2, 3, 4), (5, 4, 3), ([-1, -2], [1, 2]))]


@pytest.mark.parametrize("case", TENSORDOT, ids=[str(i) for i in range(len(TENSORDOT))])
def test_tensordot_matches_torch(backend, case):
    a, b, axes = case
    _compare(backend, lambda x, y: gx.tensordot(x, y, axes=axes),
             lambda x, y: torch.tensordot(x, y, dims=axes), _draw(a, b))


@pytest.mark.parametrize("shape", [(3, 3), (2, 3, 3), (1, 1), (2, 1, 2, 2)])
def test_inv_matches_torch(backend, shape):
    _compare(backend, gx.linalg.inv, torch.linalg.inv, [_well_conditioned(shape, 0)],
             rtol=1e-6)


@pytest.mark.parametrize("name,arrays", [
    ("det", [np.zeros((0, 3, 3))]), ("det", [np.zeros((0, 0))]), ("inv", [np.zeros((0, 0))]),
    ("solve", [np.zeros((0, 3, 3)), np.ones(3)]),
])
def test_empty_linalg_matches_torch(backend, name, arrays):
    _compare(backend, getattr(gx.linalg, name), getattr(torch.linalg, name), arrays)


TAKE = [((2, 3), [2, 0, 2], 1), ((2, 3), [5, 0, -1], None), ((4,), [[0, 3], [3, 3]], 0),
        ((2, 3), [[1], [0]], 0), ((3,), [], 0), ((), [0, 0], None), ((2, 3), 1, 1)]


@pytest.mark.parametrize("case", TAKE, ids=[str(i) for i in range(len(TAKE))])
def test_take_matches_torch(backend, case):
    # n-d and 0-d indices (NumPy's take) also on namespaces whose take wants 1-D indices
    shape, idx, axis = case
    idx = np.asarray(idx, dtype=np.int64)
    key = (idx,) if axis is None else (slice(None),) * axis + (idx,)

    def f_torch(t):
        return _gather(key)(t.reshape(-1)) if axis is None else _gather(key)(t)

    _compare(backend, lambda x: gx.take(x, gx.tensor(idx), axis=axis), f_torch, _draw(shape))


@pytest.mark.parametrize("case", [((3, 4), -1, False), ((3, 4), 0, True), ((5,), 0, True),
                                  ((2, 0), 1, False), ((1, 3), 0, False)])
def test_sort_matches_torch(backend, case):
    shape, axis, descending = case
    x = np.random.default_rng(3).permutation(int(np.prod(shape))).reshape(shape) * 0.37
    _compare(backend, lambda a: gx.sort(a, axis=axis, descending=descending),
             lambda t: torch.sort(t, dim=axis, descending=descending, stable=True).values,
             [x])


@pytest.mark.parametrize("case", [((2, 4), 1), ((2, 3), None), ((0, 3), 0), ((), None),
                                  ((2, 3), -1)])
def test_cumsum_matches_torch(backend, case):
    shape, axis = case
    _compare(backend, lambda a: gx.cumsum(a, axis=axis),
             lambda t: torch.cumsum(t.reshape(-1) if axis is None else t,
                                    dim=0 if axis is None else axis), _draw(shape))


def test_take_along_axis_negative_indices(backend):
    idx = gx.tensor(np.array([[-1, 0], [2, -3]]))
    gx.testing.check_grads(lambda x: gx.take_along_axis(x, idx, axis=1),
                           gx.tensor(_draw((2, 3))[0]), order=2)


def test_norm_takes_numpy_integer_axes(backend):
    x = gx.tensor(_draw((2, 3))[0])
    for axis in (np.int64(1), (np.int64(0),), [0, np.int64(1)]):
        expect = np.linalg.norm(x.numpy(), ord=1, axis=axis if not isinstance(axis, list)
                                else tuple(axis))
        np.testing.assert_allclose(gx.linalg.norm(x, ord=1, axis=axis).numpy(), expect)
    np.testing.assert_allclose(gx.linalg.vector_norm(x, axis=np.int64(0)).numpy(),
                               np.linalg.norm(x.numpy(), axis=0))


@pytest.mark.parametrize("spec", ["bA", "aB", "...bA", "Ba,a"])
def test_einsum_implicit_output_order_matches_torch(backend, spec):
    shapes = [(2, 3)] + ([(3,)] if "," in spec else [])
    _compare(backend, lambda *xs: gx.einsum(spec, *xs), lambda *ts: torch.einsum(spec, *ts),
             _draw(*shapes))
