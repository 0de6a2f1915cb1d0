"""grad, value_and_grad, vjp, jvp, jacobian, hessian, hvp, checkpoint, custom primitives."""

from __future__ import annotations

import numpy as np
import pytest

import gradx as gx

# every test here runs on the compiled hot path and on the Python one
pytestmark = pytest.mark.usefixtures("hot_path")


def f_scalar(x):
    return (gx.sin(x) * x).sum()


def test_grad_matches_closed_form(backend):
    x = gx.tensor([0.3, -1.2], dtype="float64")
    g = gx.grad(f_scalar)(x)
    xs = np.array([0.3, -1.2])
    gx.testing.assert_allclose(g, np.cos(xs) * xs + np.sin(xs), rtol=1e-12)


def test_raw_arrays_in_raw_arrays_out():
    g = gx.grad(f_scalar)(np.array([0.3, -1.2]))
    assert isinstance(g, np.ndarray)


def test_value_and_grad_with_argnums_tuple_and_aux():
    def loss(w, b, x):
        y = (x @ w + b) ** 2
        return y.mean(), {"pred": y}

    w = gx.tensor(np.ones((3, 2)))
    b = gx.tensor(np.zeros(2))
    x = gx.tensor(np.arange(6.0).reshape(2, 3))
    (value, aux), (gw, gb) = gx.value_and_grad(loss, argnums=(0, 1), has_aux=True)(w, b, x)
    assert gw.shape == (3, 2) and gb.shape == (2,)
    assert "pred" in aux
    gx.testing.assert_allclose(value, ((x.numpy() @ np.ones((3, 2))) ** 2).mean())


def test_grad_over_nested_structures():
    params = {"w": gx.tensor([1.0, 2.0]), "layers": [gx.tensor(3.0), (gx.tensor([4.0]),)]}

    def f(p):
        return (p["w"] ** 2).sum() + p["layers"][0] * p["layers"][1][0].sum()

    g = gx.grad(f)(params)
    gx.testing.assert_allclose(g["w"], [2.0, 4.0])
    gx.testing.assert_allclose(g["layers"][0], 4.0)
    gx.testing.assert_allclose(g["layers"][1][0], [3.0])


def test_vjp_can_be_called_twice():
    x = gx.tensor([1.0, 2.0])
    out, vjp_fn = gx.vjp(lambda a: a**2, x)
    (g1,) = vjp_fn(gx.tensor([1.0, 1.0]))
    (g2,) = vjp_fn(gx.tensor([1.0, 0.0]))
    gx.testing.assert_allclose(g1, [2.0, 4.0])
    gx.testing.assert_allclose(g2, [2.0, 0.0])


def test_jvp_forward_mode(backend):
    x = gx.tensor([0.5, 1.0], dtype="float64")
    t = gx.tensor([1.0, 2.0], dtype="float64")
    out, tangent = gx.jvp(lambda a: gx.exp(a) * a, (x,), (t,))
    xs = np.array([0.5, 1.0])
    gx.testing.assert_allclose(tangent, (np.exp(xs) * xs + np.exp(xs)) * [1.0, 2.0],
                               rtol=1e-12)


@pytest.mark.parametrize("mode", ["rev", "fwd"])
def test_jacobian_both_modes(mode):
    a = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    A = gx.tensor(a)
    jac = gx.jacobian(lambda x: gx.tanh(A @ x), mode=mode)(gx.tensor(np.array([0.1, 0.2, 0.3])))
    y = np.tanh(a @ [0.1, 0.2, 0.3])
    gx.testing.assert_allclose(jac, (1 - y**2)[:, None] * a, rtol=1e-10)


def test_hessian_and_hvp():
    a = np.array([[2.0, 1.0], [1.0, 3.0]])
    A = gx.tensor(a)

    def f(x):
        return 0.5 * (x @ (A @ x)) + gx.sum(x**3)

    x = np.array([0.5, -1.0])
    h = gx.hessian(f)(gx.tensor(x))
    expected = a + np.diag(6 * x)
    gx.testing.assert_allclose(h, expected, rtol=1e-10)
    v = np.array([1.0, 2.0])
    (hv,) = gx.hvp(f, (gx.tensor(x),), (gx.tensor(v),))
    gx.testing.assert_allclose(hv, expected @ v, rtol=1e-10)


def test_hvp_of_logsumexp_matches_closed_form():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((6, 4))
    x = rng.standard_normal(4)
    v = rng.standard_normal(4)
    A = gx.tensor(a)
    (hv,) = gx.hvp(lambda z: gx.logsumexp(A @ z), (gx.tensor(x),), (gx.tensor(v),))
    p = np.exp(a @ x - np.log(np.exp(a @ x).sum()))
    expected = a.T @ ((np.diag(p) - np.outer(p, p)) @ (a @ v))
    gx.testing.assert_allclose(hv, expected, rtol=1e-10)


def test_hvp_two_primals_matches_the_hessian_blocks(backend):
    rng = np.random.default_rng(1)
    xs, ys, u, w = (rng.standard_normal(3) for _ in range(4))

    def f(x, y):
        return gx.sum(gx.tanh(x * y) ** 2) + gx.logsumexp(x - 2.0 * y)

    hx, hy = gx.hvp(f, (gx.tensor(xs), gx.tensor(ys)), (gx.tensor(u), gx.tensor(w)))
    # the reference: the full Hessian of f over the concatenated (x, y), times (u, w)
    def g(z):
        return f(z[:3], z[3:])

    h = gx.hessian(g)(gx.tensor(np.concatenate([xs, ys]))).numpy()
    want = h @ np.concatenate([u, w])
    gx.testing.assert_allclose(hx, want[:3], rtol=1e-10, atol=1e-12)
    gx.testing.assert_allclose(hy, want[3:], rtol=1e-10, atol=1e-12)


# primitives without a JVP rule: the tangent pass transposes their VJP, and hvp then
# differentiates that transposition
_HVP_WITHOUT_JVP_RULES = {
    "pow": lambda z: gx.sum(z**z),
    "prod": lambda z: gx.prod(gx.sin(z)),
    "var": lambda z: gx.var(gx.exp(z)),
    "sort": lambda z: gx.sum(gx.sort(z) ** 3),
    "asin": lambda z: gx.sum(gx.asin(z) ** 2),
    "stack": lambda z: gx.sum(gx.stack([z, z * z]) ** 3),
    "det": lambda z: gx.linalg.det(gx.reshape(z, (2, 2)) ** 2),
}


@pytest.mark.parametrize("name", sorted(_HVP_WITHOUT_JVP_RULES))
def test_hvp_through_transposed_vjps_matches_the_hessian(backend, name):
    f = _HVP_WITHOUT_JVP_RULES[name]
    rng = np.random.default_rng(2)
    x, v = rng.uniform(0.2, 0.8, 4), rng.standard_normal(4)
    (hv,) = gx.hvp(f, (gx.tensor(x),), (gx.tensor(v),))
    h = gx.hessian(f)(gx.tensor(x)).numpy()
    gx.testing.assert_allclose(hv, h @ v, rtol=1e-10, atol=1e-12)


def test_hvp_of_a_linear_function_is_zero_with_the_primal_shape(backend):
    c = gx.tensor([1.0, -2.0, 0.5], dtype="float64")
    (hv,) = gx.hvp(lambda x: gx.sum(c * x), (gx.tensor(np.ones(3)),), (gx.tensor(np.ones(3)),))
    assert hv.shape == (3,)
    gx.testing.assert_allclose(hv, np.zeros(3))


def test_hvp_raw_arrays_in_raw_arrays_out():
    x, v = np.array([0.5, -1.0]), np.array([1.0, 3.0])
    (hv,) = gx.hvp(lambda z: gx.sum(z**4), (x,), (v,))
    assert isinstance(hv, np.ndarray)
    np.testing.assert_allclose(hv, 12 * x**2 * v, rtol=1e-12)


def test_hvp_nested_in_grad_gives_third_derivatives(backend):
    # f = sum(x^4): H v = 12 x^2 v, so d/dx sum(H v * w) = 24 x v w
    x = np.array([0.5, -1.0, 2.0])
    v, w = np.array([1.0, 2.0, -1.0]), np.array([0.3, 0.1, 2.0])
    vt, wt = gx.tensor(v), gx.tensor(w)

    def outer(z):
        (hv,) = gx.hvp(lambda t: gx.sum(t**4), (z,), (vt,))
        return gx.sum(hv * wt)

    gx.testing.assert_allclose(gx.grad(outer)(gx.tensor(x)), 24 * x * v * w, rtol=1e-12)


def test_checkpoint_recomputes_and_matches():
    calls = []

    def block(x, w):
        calls.append(1)
        return gx.tanh(x @ w) * 2

    w = gx.tensor(np.ones((3, 3)) * 0.1, requires_grad=True)
    x = gx.tensor(np.arange(6.0).reshape(2, 3))
    gx.checkpoint(block)(x, w).sum().backward()
    g_ckpt = w.grad.numpy()
    assert len(calls) == 2  # forward once, recomputed once in backward
    w.grad = None
    block(x, w).sum().backward()
    np.testing.assert_allclose(g_ckpt, w.grad.numpy(), rtol=1e-12)


def test_custom_primitive_from_the_contract(backend):
    @gx.primitive
    def softplus(x):
        xp = gx.array_namespace(x)
        return xp.log1p(xp.exp(-xp.abs(x))) + xp.maximum(x, 0)

    gx.defvjp(softplus, lambda g, ans, x: g * gx.sigmoid(x))
    gx.defjvp(softplus, lambda t, ans, x: t * gx.sigmoid(x))
    x = gx.tensor(np.array([-3.0, 0.2, 4.0]))
    gx.testing.check_grads(softplus, x)
    assert softplus.name in gx.primitives() or any(
        p is softplus for p in gx.primitives().values())


def test_missing_rule_raises_not_differentiable():
    @gx.primitive
    def mystery(x, y):
        return x * y

    gx.defvjp(mystery, lambda g, ans, x, y: g * y)  # no rule for y
    x = gx.tensor([1.0], requires_grad=True)
    y = gx.tensor([2.0], requires_grad=True)
    with pytest.raises(gx.NotDifferentiableError, match="mystery.*argument 1"):
        mystery(x, y).sum().backward()


def test_forward_mode_without_defjvp_uses_the_transposed_vjp():
    @gx.primitive
    def cube(x):
        return x * x * x

    gx.defvjp(cube, lambda g, ans, x: g * 3 * x * x)
    _, t = gx.jvp(cube, (gx.tensor(np.array([2.0])),), (gx.tensor(np.array([1.0])),))
    gx.testing.assert_allclose(t, [12.0])


def test_check_grads_catches_a_wrong_rule():
    @gx.primitive
    def bad_square(x):
        return x * x

    gx.defvjp(bad_square, lambda g, ans, x: g * x)  # missing factor 2
    with pytest.raises(AssertionError, match="reverse mode"):
        gx.testing.check_grads(bad_square, gx.tensor(np.array([1.0, 2.0])), modes=("rev",))
