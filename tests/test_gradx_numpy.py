"""gradx.numpy (NumPy's names over gradx), NumPy's own functions on gradx tensors, and the
autograd-compatible operators: values against NumPy in float64, gradients with check_grads,
on every backend; the coverage list of autograd's names; dispatch and its refusals."""

from __future__ import annotations

import numpy as np
import pytest

import gradx as gx
import gradx.numpy as gnp
from gradx.numpy import _coverage
from tests.numpy_rows import ROWS, Row, inputs


def _host(v):
    if isinstance(v, gx.Tensor):
        return v.numpy()
    if isinstance(v, list | tuple):
        return type(v)(_host(x) for x in v)
    if hasattr(v, "__dlpack__") and not isinstance(v, np.ndarray):
        return gx.testing._host(v)
    return v


def _tensors(row: Row, backend: str) -> list[gx.Tensor]:
    return [gx.asarray(x, backend=backend) for x in inputs(row)]


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_values_match_numpy(row: Row, backend: str) -> None:
    xs = inputs(row)
    ref_fn = row.ref or row.fn
    expected = ref_fn(np, *xs)
    with gx.default_dtype("float64"):
        actual = row.fn(gnp, *_tensors(row, backend))
    actual = _host(actual)
    if isinstance(expected, tuple | list):
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected, strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(e), rtol=1e-10, atol=1e-12)
        return
    if isinstance(expected, bool | str) or isinstance(expected, tuple):
        assert actual == expected
        return
    a, e = np.asarray(actual), np.asarray(expected)
    assert a.shape == e.shape, (a.shape, e.shape)
    if e.dtype.kind in "fc":
        np.testing.assert_allclose(a, e, rtol=1e-10, atol=1e-12)
    else:
        np.testing.assert_array_equal(a, e)


GRAD_ROWS = [r for r in ROWS if r.grad]


@pytest.mark.parametrize("row", GRAD_ROWS, ids=[r.id for r in GRAD_ROWS])
def test_gradients(row: Row, backend: str) -> None:
    def f(*ts):
        with gx.default_dtype("float64"):
            out = row.fn(gnp, *ts)
        return out

    gx.testing.check_grads(f, *_tensors(row, backend), order=row.order)


def _public_functions() -> set[str]:
    names = {n for n in gnp.__all__ if callable(getattr(gnp, n))
             and not isinstance(getattr(gnp, n), type)}
    names |= {f"linalg.{n}" for n in vars(gnp.linalg) if not n.startswith("_")
              and callable(getattr(gnp.linalg, n)) and n not in ("MISSING", "Any", "Tensor")
              and n not in gnp.linalg.MISSING and not isinstance(getattr(gnp.linalg, n), type)}
    names |= {"fft.fftshift", "fft.ifftshift"}
    return names


# tested by their own tests below rather than a row
OWN_TESTS = {"linalg.svd", "linalg.slogdet"}


def test_every_function_has_a_row() -> None:
    have = {r.name for r in ROWS} | OWN_TESTS
    missing = sorted(_public_functions() - have)
    assert missing == []


def test_coverage_names_exist() -> None:
    covered = _coverage.covered()
    for name in covered:
        assert _coverage._exists(name), name
    # every name in the gap is absent or refuses with a gradx error, never silently computes
    assert set(_coverage.gap()) == set(_coverage.GAP)
    assert len(covered) + len(_coverage.GAP) == len(_coverage.all_names())


def test_coverage_list_matches_installed_autograd() -> None:
    """The static list holds every name autograd's own rules name (so it is not stale)."""
    import os
    import re

    autograd = pytest.importorskip("autograd")
    root = os.path.join(os.path.dirname(autograd.__file__), "numpy")
    src = open(os.path.join(root, "numpy_vjps.py")).read()
    names = set(re.findall(r"defvjp\(\s*anp\.(\w+)", src))
    names |= set(re.findall(r"anp\.(\w+),\n", re.search(r"nograd_functions = \[(.*?)\]", src,
                                                         re.S).group(0)))
    names = {n for n in names if not n.startswith("_")} - {"concatenate_args",
                                                           "array_from_args"}
    assert names - set(_coverage.AUTOGRAD_NUMPY) == set()


def test_gap_functions_raise_gradx_errors() -> None:
    a = gx.asarray(np.eye(3) * 2.0)
    for name in gnp.linalg.MISSING:
        with pytest.raises(gx.NotDifferentiableError, match=name):
            getattr(gnp.linalg, name)(a)
    with pytest.raises(gx.NotDifferentiableError, match="compute_uv"):
        gnp.linalg.svd(a)
    with pytest.raises(gx.NotDifferentiableError, match="complex"):
        gnp.fft.fft(a)


def test_out_is_refused() -> None:
    t = gx.asarray(np.ones(3))
    for call in (lambda: gnp.sum(t, out=np.empty(())), lambda: gnp.exp(t, out=np.empty(3)),
                 lambda: gnp.concatenate([t, t], out=np.empty(6)),
                 lambda: gnp.clip(t, 0, 1, out=np.empty(3))):
        with pytest.raises(gx.ArgumentError, match="out="):
            call()
    assert gnp.sum(t, out=None).item() == 3.0


def test_dtype_spellings() -> None:
    t = gnp.zeros(3, dtype=float)
    assert str(t.dtype).endswith("float64")
    assert str(gnp.ones((2,), dtype=np.float32).dtype).endswith("float32")
    assert str(gnp.sum(gnp.ones(3, dtype=int), dtype="float64").dtype).endswith("float64")


# -- NumPy's own functions on gradx tensors ------------------------------------------------
def test_numpy_functions_dispatch_and_stay_differentiable(backend: str) -> None:
    x = gx.asarray(np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]]), backend=backend)
    x.requires_grad_()
    y = np.sum(np.exp(x) * np.mean(x, axis=0)) + np.max(x) + np.prod(np.tanh(x))
    y = y + np.sum(np.concatenate([x, x * 2.0], axis=1)) + np.trace(np.dot(x, x.T))
    assert isinstance(y, gx.Tensor) and y.requires_grad
    y.backward()

    def ref(a):
        return (np.sum(np.exp(a) * np.mean(a, axis=0)) + np.max(a) + np.prod(np.tanh(a))
                + np.sum(np.concatenate([a, a * 2.0], axis=1)) + np.trace(a @ a.T))

    a = x.numpy()
    eps = 1e-6
    num = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        d = np.zeros_like(a)
        d[idx] = eps
        num[idx] = (ref(a + d) - ref(a - d)) / (2 * eps)
    np.testing.assert_allclose(x.grad.numpy(), num, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("fn", [np.sum, np.mean, np.prod, np.max, np.min, np.std, np.var],
                         ids=lambda f: f.__name__)
def test_numpy_reductions_on_a_tensor(fn, backend: str) -> None:
    a = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
    t = gx.asarray(a, backend=backend)
    np.testing.assert_allclose(fn(t, axis=1, keepdims=True).numpy(),
                               fn(a, axis=1, keepdims=True), rtol=1e-12)
    gx.testing.check_grads(lambda u: fn(u, axis=0), t, order=1)


def test_raw_array_on_the_left_gives_a_tensor(backend: str) -> None:
    if backend == "array_api_strict":
        pytest.skip("array_api_strict's arrays raise TypeError for a foreign right operand "
                    "instead of returning NotImplemented")
    t = gx.asarray(np.array([1.0, 2.0, 3.0]), backend=backend).requires_grad_()
    raw = t.backend.from_numpy(np.array([2.0, 3.0, 4.0]))
    for out in (raw * t, raw + t, raw - t, raw / t, raw ** t, raw @ t):
        assert isinstance(out, gx.Tensor) and out.requires_grad
    assert isinstance(raw < t, gx.Tensor)
    (raw * t).sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), [2.0, 3.0, 4.0])


def test_host_numpy_array_on_the_left_gives_a_tensor(numpy_default) -> None:
    t = gx.asarray(np.array([1.0, 2.0, 3.0])).requires_grad_()
    out = np.array([2.0, 3.0, 4.0]) * t
    assert isinstance(out, gx.Tensor) and out.requires_grad
    assert isinstance(np.float64(2.0) * t, gx.Tensor)


def test_ufunc_methods() -> None:
    a = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
    t = gx.asarray(a).requires_grad_()
    np.testing.assert_allclose(np.add.reduce(t).numpy(), np.add.reduce(a))
    np.testing.assert_allclose(np.multiply.reduce(t, axis=1).numpy(), np.multiply.reduce(a, 1))
    np.testing.assert_allclose(np.add.accumulate(t, axis=1).numpy(), np.add.accumulate(a, 1))
    np.testing.assert_allclose(np.multiply.outer(t[0], t[1]).numpy(),
                               np.multiply.outer(a[0], a[1]))
    gx.testing.check_grads(lambda u: np.multiply.outer(u[0], u[1]), t)


def test_unsupported_numpy_functions_raise_instead_of_detaching() -> None:
    t = gx.asarray(np.array([1.0, 2.0, 3.0])).requires_grad_()
    with pytest.raises(gx.ArgumentError, match="numpy.polyfit"):
        np.polyfit(t, t, 1)
    with pytest.raises(gx.ArgumentError, match="numpy.add.at"):
        np.add.at(t, [0], 1.0)
    a = np.zeros(3)
    with pytest.raises(gx.ArgumentError, match="a = a \\+ t"):
        a += t
    with pytest.raises(gx.ArgumentError, match="out="):
        np.exp(t, out=np.empty(3))


def test_numpy_inspection_functions_on_tensors() -> None:
    t = gx.asarray(np.array([1.0, 2.0, 3.0]))
    assert np.allclose(t, [1.0, 2.0, 3.0]) is True
    assert np.shape(t) == (3,) and np.ndim(t) == 1
    np.testing.assert_allclose(t, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(np.asarray(t), [1.0, 2.0, 3.0])


def test_numpy_linalg_on_tensors() -> None:
    a = np.array([[3.0, 1.0], [1.0, 2.0]])
    t = gx.asarray(a).requires_grad_()
    np.testing.assert_allclose(np.linalg.inv(t).numpy(), np.linalg.inv(a))
    np.linalg.det(t).backward()
    np.testing.assert_allclose(t.grad.numpy(), np.linalg.det(a) * np.linalg.inv(a).T)


# -- autograd's operators, against autograd itself ------------------------------------------
autograd = pytest.importorskip("autograd")
anp = pytest.importorskip("autograd.numpy")
from autograd import elementwise_grad as a_elementwise_grad  # noqa: E402
from autograd import make_ggnvp as a_make_ggnvp  # noqa: E402
from autograd import make_hvp as a_make_hvp  # noqa: E402
from autograd import make_jvp as a_make_jvp  # noqa: E402
from autograd import make_vjp as a_make_vjp  # noqa: E402
from autograd.misc import flatten as a_flatten  # noqa: E402

from gradx import autograd_compat as ac  # noqa: E402


def _f(m, x, w):
    return m.tanh(m.dot(x, w)) * m.sum(w ** 2)


X = np.random.default_rng(1).standard_normal((3, 4))
W = np.random.default_rng(2).standard_normal((4, 2))
V = np.random.default_rng(3).standard_normal((4, 2))
G = np.random.default_rng(4).standard_normal((3, 2))


def test_elementwise_grad_matches_autograd(numpy_default) -> None:
    x = np.linspace(-2, 2, 7)
    want = a_elementwise_grad(lambda u: anp.tanh(u) * anp.sin(u))(x)
    got = ac.elementwise_grad(lambda u: gnp.tanh(u) * gnp.sin(u))(x)
    np.testing.assert_allclose(_host(got), want, rtol=1e-12)
    want = a_elementwise_grad(lambda a, b: _f(anp, a, b), 1)(X, W)
    got = ac.elementwise_grad(lambda a, b: _f(gnp, a, b), argnum=1)(X, W)
    np.testing.assert_allclose(_host(got), want, rtol=1e-10)


def test_make_vjp_matches_autograd(numpy_default) -> None:
    vjp_a, ans_a = a_make_vjp(lambda a, b: _f(anp, a, b), 1)(X, W)
    vjp_g, ans_g = ac.make_vjp(lambda a, b: _f(gnp, a, b), 1)(X, W)
    np.testing.assert_allclose(_host(ans_g), ans_a, rtol=1e-12)
    np.testing.assert_allclose(_host(vjp_g(G)), vjp_a(G), rtol=1e-10)
    np.testing.assert_allclose(_host(vjp_g(2 * G)), vjp_a(2 * G), rtol=1e-10)


def test_make_jvp_matches_autograd() -> None:
    ans_a, t_a = a_make_jvp(lambda a, b: _f(anp, a, b), 1)(X, W)(V)
    ans_g, t_g = ac.make_jvp(lambda a, b: _f(gnp, a, b), 1)(X, W)(V)
    np.testing.assert_allclose(_host(ans_g), ans_a, rtol=1e-12)
    np.testing.assert_allclose(_host(t_g), t_a, rtol=1e-10)


def test_make_hvp_and_products_match_autograd(numpy_default) -> None:
    def loss(m):
        return lambda w, x: m.sum(m.tanh(m.dot(x, w)) ** 2) + m.sum(w ** 4)

    hvp_a, g_a = a_make_hvp(loss(anp))(W, X)
    hvp_g, g_g = ac.make_hvp(loss(gnp))(W, X)
    np.testing.assert_allclose(_host(g_g), g_a, rtol=1e-10)
    np.testing.assert_allclose(_host(hvp_g(V)), hvp_a(V), rtol=1e-10)
    from autograd import hessian_tensor_product, tensor_jacobian_product

    np.testing.assert_allclose(_host(ac.hessian_tensor_product(loss(gnp))(W, X, V)),
                               hessian_tensor_product(loss(anp))(W, X, V), rtol=1e-10)
    np.testing.assert_allclose(
        _host(ac.tensor_jacobian_product(lambda a, b: _f(gnp, a, b), 1)(X, W, G)),
        tensor_jacobian_product(lambda a, b: _f(anp, a, b), 1)(X, W, G), rtol=1e-10)


def test_make_ggnvp_matches_autograd(numpy_default) -> None:
    def net(m):
        return lambda w: m.tanh(m.dot(X, w))

    w, v = W[:, 0], V[:, 0]
    want = a_make_ggnvp(net(anp))(w)(v)
    got = ac.make_ggnvp(net(gnp))(w)(v)
    np.testing.assert_allclose(_host(got), want, rtol=1e-10)

    def g(m):
        return lambda y: m.sum(m.logaddexp(0.0, y))

    want = a_make_ggnvp(net(anp), g(anp))(W)(V)
    got = ac.make_ggnvp(net(gnp), g(gnp))(W)(V)
    np.testing.assert_allclose(_host(got), want, rtol=1e-10)


def test_flatten_matches_autograd_and_is_differentiable() -> None:
    params = {"w": [W, (X, np.float64(2.0))], "b": np.arange(3.0)}
    vec_a, unflat_a = a_flatten(params)
    vec_g, unflat_g = ac.flatten(params)
    np.testing.assert_allclose(_host(vec_g), vec_a)
    back = unflat_g(vec_g * 2.0)
    want = unflat_a(vec_a * 2.0)
    np.testing.assert_allclose(_host(back["w"][1][0]), want["w"][1][0])
    np.testing.assert_allclose(_host(back["b"]), want["b"])
    assert isinstance(back["w"], list) and isinstance(back["w"][1], tuple)

    def loss(v):
        p = unflat_g(v)
        return gnp.sum(gnp.dot(p["w"][1][0], p["w"][0]) ** 2) * p["w"][1][1] + gnp.sum(p["b"])

    gx.testing.check_grads(loss, vec_g, order=2)
    with pytest.raises(gx.ShapeError, match="unflatten"):
        unflat_g(vec_g[:-1])
    flat_f, unflat, flat0 = ac.flatten_func(lambda p, s: gnp.sum(p["b"]) * s, params)
    assert flat_f(flat0, 2.0).item() == 6.0


def test_grad_and_aux() -> None:
    g, aux = ac.grad_and_aux(lambda w: (gnp.sum(w ** 2), "aux"))(W)
    np.testing.assert_allclose(_host(g), 2 * W)
    assert aux == "aux"


def test_autograd_program_runs_with_the_import_changed(numpy_default) -> None:
    """Logistic regression written for autograd.numpy, run on gradx.numpy."""

    def program(np_):
        def sigmoid(x):
            return 0.5 * (np_.tanh(x / 2.0) + 1)

        def training_loss(weights, inputs, targets):
            preds = sigmoid(np_.dot(inputs, weights))
            label_probs = preds * targets + (1 - preds) * (1 - targets)
            return -np_.sum(np_.log(label_probs))

        return training_loss

    inputs = np.array([[0.52, 1.12, 0.77], [0.88, -1.08, 0.15], [0.52, 0.06, -1.30],
                       [0.74, -2.49, 1.39]])
    targets = np.array([True, True, False, True])
    w = np.array([0.1, -0.2, 0.3])
    want = autograd.grad(program(anp))(w, inputs, targets)
    got = gx.grad(program(gnp))(w, inputs, targets)
    np.testing.assert_allclose(_host(np.asarray(got)), want, rtol=1e-12)


def test_autograd_neural_net_runs_with_the_import_changed(numpy_default) -> None:
    """A tanh network with a log-softmax loss over a list of (W, b) pairs, as autograd's
    neural_net example writes it (logsumexp spelled out: gradx.scipy is not there yet),
    differentiated through autograd's flatten."""

    def program(np_):
        def logsumexp(x):
            m = np_.max(x, axis=1, keepdims=True)
            return m + np_.log(np_.sum(np_.exp(x - m), axis=1, keepdims=True))

        def predict(params, inputs):
            for W, b in params:
                outputs = np_.dot(inputs, W) + b
                inputs = np_.tanh(outputs)
            return outputs - logsumexp(outputs)

        def objective(params, inputs, targets):
            log_prior = -0.01 * sum(np_.sum(W ** 2) + np_.sum(b ** 2) for W, b in params)
            return -(log_prior + np_.sum(predict(params, inputs) * targets))

        return objective

    rng = np.random.default_rng(5)
    params = [(rng.standard_normal((4, 5)), rng.standard_normal(5)),
              (rng.standard_normal((5, 3)), rng.standard_normal(3))]
    inputs = rng.standard_normal((6, 4))
    targets = np.eye(3)[rng.integers(0, 3, 6)]
    want = autograd.grad(program(anp))(params, inputs, targets)
    got = gx.grad(program(gnp))(params, inputs, targets)
    for (gw, gb), (ww, wb) in zip(got, want, strict=True):
        np.testing.assert_allclose(_host(gw), ww, rtol=1e-10)
        np.testing.assert_allclose(_host(gb), wb, rtol=1e-10)
    flat_a, unflat_a = a_flatten(params)
    flat_g, unflat_g = ac.flatten(params)
    want = autograd.grad(lambda v: program(anp)(unflat_a(v), inputs, targets))(flat_a)
    got = gx.grad(lambda v: program(gnp)(unflat_g(v), inputs, targets))(flat_g)
    np.testing.assert_allclose(_host(got), want, rtol=1e-10)


def test_operators_are_exported_from_gradx() -> None:
    for name in ("elementwise_grad", "make_vjp", "make_jvp", "make_hvp", "make_ggnvp"):
        assert getattr(gx, name) is getattr(ac, name)
    assert gx.numpy is gnp


def test_host_only_numpy_functions_take_tensors(tmp_path) -> None:
    t = gx.asarray(np.array([1.0, 2.0, 3.0])).requires_grad_()
    np.save(tmp_path / "t.npy", t)
    np.testing.assert_array_equal(np.load(tmp_path / "t.npy"), [1.0, 2.0, 3.0])
    assert np.array2string(t) == "[1. 2. 3.]"
    assert np.shares_memory(t, np.zeros(1)) is False
