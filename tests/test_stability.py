"""Numerical stability: the functions that are primitives because their compositions
overflow give finite values and finite, correct gradients at magnitudes 1e4 (float32) and
1e300 (float64); non-smooth functions take their documented subgradient at 0, in reverse
mode, forward mode and at second order, never NaN.

References are closed forms evaluated in float64 NumPy with their own stable formulas.
"""

from __future__ import annotations

import numpy as np
import pytest

import gradx as gx
import gradx.nn.functional as F

MAGNITUDES = [pytest.param("float32", 1e4, id="float32-1e4"),
              pytest.param("float64", 1e300, id="float64-1e300")]
RAISE = dict(over="raise", invalid="raise", divide="raise")  # underflow to 0 is expected
TOL = {"float32": dict(rtol=2e-6, atol=1e-7), "float64": dict(rtol=1e-13, atol=1e-300)}


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _lse(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    return m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


def _softmax(x):
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))  # not exp(x - lse): lse rounds at 1e300
    return e / np.sum(e, axis=-1, keepdims=True)


# name -> (input from the magnitude M, loss of a tensor, reference loss, reference gradient);
# every input mixes +-M with moderate values, so both tails and the middle are checked
W = np.array([0.3, -1.2, 0.7, 2.0, -0.4])  # weights: gradients that are not all alike
ROW = lambda M: np.array([[-M, -1.0, 0.0, 1.0, M], [M, M / 2, -M, 0.5, M]])  # noqa: E731
LABELS = np.array([4, 2])
TARGET = np.array([[1.0, 0.0, 0.5, 1.0, 0.0], [0.0, 1.0, 1.0, 0.25, 1.0]])
POS_WEIGHT = 3.0

CASES = {
    "logsumexp": (ROW, lambda x: gx.sum(gx.logsumexp(x, axis=1) * gx.tensor([1.0, -2.0],
                                                                            dtype=x.dtype)),
                  lambda x: np.sum(_lse(x)[:, 0] * [1.0, -2.0]),
                  lambda x: _softmax(x) * np.array([[1.0], [-2.0]])),
    "sigmoid": (ROW, lambda x: gx.sum(gx.sigmoid(x) * gx.tensor(W, dtype=x.dtype)),
                lambda x: np.sum(_sigmoid(x) * W),
                lambda x: _sigmoid(x) * _sigmoid(-x) * W),
    "log1p": (lambda M: np.array([M, M / 3, 1.0, 1e-3, 0.0]),
              lambda x: gx.sum(gx.log1p(x) * gx.tensor(W, dtype=x.dtype)),
              lambda x: np.sum(np.log1p(x) * W), lambda x: W / (1 + x)),
    "expm1": (lambda M: np.array([-M, -M / 3, -1.0, -1e-3, 0.0]),
              lambda x: gx.sum(gx.expm1(x) * gx.tensor(W, dtype=x.dtype)),
              lambda x: np.sum(np.expm1(x) * W), lambda x: np.exp(x) * W),
    "log_softmax": (ROW, lambda x: gx.sum(F.log_softmax(x, axis=1) * gx.tensor(W, dtype=x.dtype)),
                    lambda x: np.sum((x - _lse(x)) * W),
                    lambda x: W - _softmax(x) * np.sum(W)),
    "softmax": (ROW, lambda x: gx.sum(F.softmax(x, axis=1) * gx.tensor(W, dtype=x.dtype)),
                lambda x: np.sum(_softmax(x) * W),
                lambda x: _softmax(x) * (W - np.sum(_softmax(x) * W, axis=1, keepdims=True))),
    "softplus": (ROW, lambda x: gx.sum(F.softplus(x) * gx.tensor(W, dtype=x.dtype)),
                 lambda x: np.sum(np.logaddexp(0.0, x) * W), lambda x: _sigmoid(x) * W),
    "cross_entropy": (ROW, lambda x: F.cross_entropy(x, gx.tensor(LABELS, backend=x.backend)),
                      lambda x: -np.mean((x - _lse(x))[np.arange(2), LABELS]),
                      lambda x: (_softmax(x) - np.eye(5)[LABELS]) / 2),
    "bce_with_logits": (
        ROW, lambda x: F.binary_cross_entropy_with_logits(x, gx.tensor(TARGET, dtype=x.dtype)),
        lambda x: np.mean(np.logaddexp(0.0, x) - x * TARGET),
        lambda x: (_sigmoid(x) - TARGET) / x.size),
    "bce_pos_weight": (
        ROW, lambda x: F.binary_cross_entropy_with_logits(
            x, gx.tensor(TARGET, dtype=x.dtype), pos_weight=POS_WEIGHT),
        lambda x: np.mean((1 - TARGET) * x + (1 + (POS_WEIGHT - 1) * TARGET)
                          * np.logaddexp(0.0, -x)),
        lambda x: ((1 - TARGET) - (1 + (POS_WEIGHT - 1) * TARGET) * _sigmoid(-x)) / x.size),
}


@pytest.mark.parametrize("dtype, M", MAGNITUDES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_large_magnitudes_give_finite_correct_values_and_gradients(backend, name, dtype, M):
    make, loss, ref_loss, ref_grad = CASES[name]
    host = make(M).astype(dtype)
    assert np.max(np.abs(host)) == np.asarray(M, dtype=dtype)
    x = gx.tensor(host, requires_grad=True)
    with np.errstate(**RAISE):  # no overflow, 0/0 or log(0) inside gradx either
        y = loss(x)
        y.backward()
    value, grad = y.numpy(), x.grad.numpy()
    assert np.isfinite(value), f"{name}: value {value} at magnitude {M}"
    assert np.all(np.isfinite(grad)), f"{name}: gradient {grad} at magnitude {M}"
    assert x.grad.dtype == x.dtype
    ref = host.astype(np.float64)
    with np.errstate(under="ignore"):
        want_value, want_grad = ref_loss(ref), ref_grad(ref)
    np.testing.assert_allclose(value, want_value, rtol=TOL[dtype]["rtol"])
    np.testing.assert_allclose(grad, want_grad, **TOL[dtype])


@pytest.mark.parametrize("dtype, M", MAGNITUDES)
@pytest.mark.parametrize("name", ["logsumexp", "sigmoid", "log_softmax", "softplus",
                                  "cross_entropy", "bce_with_logits"])
def test_large_magnitudes_second_order_is_finite(backend, name, dtype, M):
    make, loss, _, _ = CASES[name]
    x = gx.tensor(make(M).astype(dtype))
    v = gx.tensor(np.ones_like(make(M)).astype(dtype))
    with np.errstate(**RAISE):
        (hv,) = gx.hvp(loss, (x,), (v,))
    assert np.all(np.isfinite(hv.numpy())), f"{name}: Hessian-vector product {hv.numpy()}"


@pytest.mark.parametrize("dtype, M", MAGNITUDES)
@pytest.mark.parametrize("axis", [1, None])
def test_logsumexp_tangent_and_gradient_at_large_magnitudes(backend, dtype, M, axis):
    # logsumexp's rules take the softmax from its output, which rounds to max(x) here; tied
    # maxima must still get half the weight each, in forward and reverse mode alike
    host = ROW(M).astype(dtype)
    ref = host.astype(np.float64)
    t = np.linspace(-1.0, 1.0, host.size).reshape(host.shape).astype(dtype)
    with np.errstate(under="ignore"):
        p = _softmax(ref) if axis == 1 else _softmax(ref.reshape(1, -1)).reshape(ref.shape)
    want_tangent = np.sum(p * t, axis=axis)
    x = gx.tensor(host)
    with np.errstate(**RAISE):
        _, tangent = gx.jvp(lambda x: gx.logsumexp(x, axis=axis), (x,), (gx.tensor(t),))
        g = gx.grad(lambda x: gx.sum(gx.logsumexp(x, axis=axis)))(x)
    np.testing.assert_allclose(tangent.numpy(), want_tangent, **TOL[dtype])
    np.testing.assert_allclose(g.numpy(), p, **TOL[dtype])
    if axis is None:  # the tie between the two largest entries, M and M, at 1e300 too
        assert p[1, 0] == p[1, 4] == p[0, 4] != 0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_log1p_and_expm1_keep_precision_near_zero(backend, dtype):
    small = np.array([1e-10, -1e-12, 3e-8], dtype=dtype)
    x = gx.tensor(small)
    for fn, ref, dref in [(gx.log1p, np.log1p, lambda a: 1 / (1 + a)),
                          (gx.expm1, np.expm1, np.exp)]:
        value, g = gx.value_and_grad(lambda t, fn=fn: gx.sum(fn(t)))(x)
        # log(1 + x) would give 0 for x = 1e-10 in float32: relative error 1
        np.testing.assert_allclose(fn(x).numpy(), ref(small.astype(np.float64)), rtol=1e-6)
        np.testing.assert_allclose(g.numpy(), dref(small.astype(np.float64)), rtol=1e-6)


# -- subgradients at 0 -------------------------------------------------------------------

SUBGRADIENTS = {  # f(x) at x = 0 (elementwise, summed) -> documented derivative
    "sqrt": (lambda x: gx.sum(gx.sqrt(x)), 0.0),
    "abs": (lambda x: gx.sum(gx.abs(x)), 0.0),
    "maximum-tie": (lambda x: gx.sum(gx.maximum(x, gx.zeros_like(x))), 0.5),
    "minimum-tie": (lambda x: gx.sum(gx.minimum(x, gx.zeros_like(x))), 0.5),
    "maximum-self": (lambda x: gx.sum(gx.maximum(x, x)), 1.0),  # both shares reach x
    "norm": (lambda x: gx.linalg.norm(x), 0.0),
    "norm-axis": (lambda x: gx.sum(gx.linalg.norm(x, axis=-1)), 0.0),
    "norm-ord1": (lambda x: gx.linalg.norm(x, ord=1), 0.0),
    "std": (lambda x: gx.std(x), 0.0),
    "relu": (lambda x: gx.sum(F.relu(x)), 0.0),
    "pow-base0": (lambda x: gx.sum(x**2.0), 0.0),
}


@pytest.mark.parametrize("name", sorted(SUBGRADIENTS))
def test_subgradient_at_zero(backend, name):
    f, want = SUBGRADIENTS[name]
    x = gx.zeros((2, 3), dtype="float64")
    with np.errstate(**RAISE):
        g = gx.grad(f)(x)
        _, t = gx.jvp(f, (x,), (gx.ones_like(x),))
        gg = gx.grad(lambda x: gx.sum(gx.grad(f)(x)))(x)
    np.testing.assert_array_equal(g.numpy(), np.full((2, 3), want))
    np.testing.assert_array_equal(t.numpy(), want * 6)  # forward mode agrees
    assert np.all(np.isfinite(gg.numpy())), f"{name}: second derivative {gg.numpy()}"


def test_norm_hessian_at_zero_is_finite(backend):
    x = gx.zeros((3,), dtype="float64")
    for mode in ("rev", "fwd"):
        j = gx.jacobian(lambda x: gx.linalg.norm(x), mode=mode)(x)
        np.testing.assert_array_equal(j.numpy(), np.zeros(3))
    h = gx.hessian(lambda x: gx.linalg.norm(x))(x)
    assert h.shape == (3, 3) and np.all(np.isfinite(h.numpy()))


def test_pow_exponent_gradient_at_zero_base(backend):
    x = gx.tensor([0.0, 2.0], dtype="float64")
    y = gx.tensor([1.5, 1.5], dtype="float64")
    gy = gx.grad(lambda y: gx.sum(x**y))(y)  # d/dy 0**y taken as 0, not 0 * log 0
    np.testing.assert_allclose(gy.numpy(), [0.0, 2.0**1.5 * np.log(2.0)], rtol=1e-14)


def test_max_reduction_ties_share_the_gradient(backend):
    x = gx.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], dtype="float64")
    g = gx.grad(lambda x: gx.sum(gx.max(x, axis=1)))(x)
    np.testing.assert_allclose(g.numpy(), [[0.0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-15)


# -- -inf as a mask --------------------------------------------------------------------

def test_minus_infinity_masks_have_zero_gradient(backend):
    host = np.array([[-np.inf, 0.0, 1.0], [2.0, -np.inf, -np.inf]])
    x = gx.tensor(host, requires_grad=True)
    fns = [lambda x: gx.sum(gx.logsumexp(x, axis=1)),
           lambda x: F.cross_entropy(x, gx.tensor([1, 0], backend=x.backend)),
           lambda x: gx.sum(F.softmax(x, axis=1) * gx.tensor([1.0, 2.0, 3.0], dtype=x.dtype))]
    for fn in fns:
        x.grad = None
        with np.errstate(all="ignore"):
            y = fn(x)
            y.backward()
        assert np.isfinite(y.item())
        g = x.grad.numpy()
        assert np.all(np.isfinite(g)), g
        assert np.all(g[np.isinf(host)] == 0)
    lse = gx.logsumexp(x, axis=1).numpy()
    np.testing.assert_allclose(lse, [np.log(1 + np.e), 2.0], rtol=1e-15)
