"""gradx.nn.functional: gradients of the nn primitives, stability at large magnitudes,
agreement with torch.nn.functional, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from op_rows_nn import NN_ROWS

import gradx as gx
import gradx.nn.functional as F


def _dname(dtype) -> str:
    """A dtype's name whatever the backend's dtype object prints as."""
    return str(dtype).rsplit(".", 1)[-1]


def test_nn_rows_reach_the_gradient_table():
    """test_gradients.py checks every row of op_table.all_rows() on every backend (both
    modes, second order); make sure the nn primitives' rows are among them."""
    from op_table import all_rows

    names = {r.name for r in all_rows()}
    assert {"relu", "softplus", "log_softmax", "softmax"} <= names
    assert {r["name"] for r in NN_ROWS} <= names


# composed functions need no rules; check that their gradients (and second order) are right
_LAB = np.array([2, 0, 3])
COMPOSED = [
    ("cross_entropy", lambda x: F.cross_entropy(x, gx.tensor(_LAB), label_smoothing=0.2),
     [(3, 4)]),
    ("bce_logits", lambda x, y: F.binary_cross_entropy_with_logits(x, gx.sigmoid(y)),
     [(2, 3), (2, 3)]),
    ("bce_pos_weight", lambda x, w: F.binary_cross_entropy_with_logits(
        x, gx.ones_like(x) * 0.3, pos_weight=w * w), [(2, 3), (3,)]),
    ("mse_loss", F.mse_loss, [(2, 3), (2, 3)]),
    ("gelu", F.gelu, [(2, 3)]),
    ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), [(2, 3)]),
    ("silu", F.silu, [(4,)]),
    ("linear", F.linear, [(2, 3), (4, 3), (4,)]),
    ("layer_norm", lambda x, w, b: F.layer_norm(x, 4, w, b), [(3, 4), (4,), (4,)]),
]


@pytest.mark.parametrize("case", COMPOSED, ids=[c[0] for c in COMPOSED])
def test_composed_gradients(backend, case):
    _, fn, shapes = case
    rng = np.random.default_rng(2)
    xs = [gx.tensor(rng.standard_normal(s)) for s in shapes]
    gx.testing.check_grads(fn, *xs, order=2)


# -- stability at magnitude 1e4 in float32 ---------------------------------------------

BIG = [1e4, -1e4, 0.0, 3.0]


def _sm(x):
    e = np.exp(x - x.max())
    return e / e.sum()


# (name, function of one float32 tensor returning a tensor, expected value, expected grad of
# the sum), all computed in float64 by hand / NumPy on the same inputs
_X = np.array(BIG)
STABILITY = [
    ("relu", F.relu, np.maximum(_X, 0), (_X > 0) * 1.0),
    ("softplus", F.softplus, np.array([1e4, 0.0, np.log(2.0), np.log1p(np.exp(3.0))]),
     np.array([1.0, 0.0, 0.5, 1 / (1 + np.exp(-3.0))])),
    ("sigmoid", F.sigmoid, np.array([1.0, 0.0, 0.5, 1 / (1 + np.exp(-3.0))]), None),
    ("tanh", F.tanh, np.tanh(_X), 1 - np.tanh(_X) ** 2),
    ("silu", F.silu, np.array([1e4, 0.0, 0.0, 3 / (1 + np.exp(-3.0))]), None),
    ("gelu", F.gelu, np.array([1e4, 0.0, 0.0, 2.99595031]), None),
    ("leaky_relu", F.leaky_relu, np.where(_X > 0, _X, 0.01 * _X), np.where(_X > 0, 1.0, 0.01)),
    ("log_softmax", F.log_softmax, _X - 1e4, 1 - 4 * _sm(_X)),
    ("softmax", F.softmax, _sm(_X), np.zeros(4)),
]


@pytest.mark.parametrize("name,fn,value,grad", STABILITY, ids=[s[0] for s in STABILITY])
def test_stable_at_large_magnitude_float32(backend, name, fn, value, grad):
    x = gx.tensor(np.array(BIG, dtype=np.float32), requires_grad=True)
    y = fn(x)
    assert _dname(y.dtype) == "float32"
    y.sum().backward()
    yv, gv = y.numpy(), x.grad.numpy()
    assert np.all(np.isfinite(yv)), f"{name} value {yv}"
    assert np.all(np.isfinite(gv)), f"{name} grad {gv}"
    np.testing.assert_allclose(yv, value, rtol=1e-5, atol=1e-5)
    if grad is not None:
        np.testing.assert_allclose(gv, grad, rtol=1e-5, atol=1e-5)


def test_cross_entropy_stable_float32(backend):
    logits = gx.tensor(np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5.0]], np.float32),
                       requires_grad=True)
    labels = gx.tensor(np.array([1, 1]))
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    np.testing.assert_allclose(loss.item(), (2e4 + 0.0) / 2, rtol=1e-6)
    expected = np.array([[1.0, -1.0, 0.0], [0.0, 0.0, 0.0]]) / 2
    np.testing.assert_allclose(logits.grad.numpy(), expected, atol=1e-6)


def test_bce_with_logits_stable_float32(backend):
    x = gx.tensor(np.array([1e4, -1e4, 1e4, -1e4], np.float32), requires_grad=True)
    y = gx.tensor(np.array([0.0, 1.0, 1.0, 0.0], np.float32))
    loss = F.binary_cross_entropy_with_logits(x, y, reduction="sum")
    loss.backward()
    np.testing.assert_allclose(loss.item(), 2e4, rtol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), [1.0, -1.0, 0.0, 0.0], atol=1e-6)


# -- agreement with torch.nn.functional ------------------------------------------------

def _torch():
    return pytest.importorskip("torch", reason="torch is not installed; parity tests need it")


RNG = np.random.default_rng(7)
LOGITS = RNG.standard_normal((6, 5)) * 3
LABELS = RNG.integers(0, 5, 6)
TARGET = RNG.standard_normal((6, 5))
PROBS = RNG.uniform(0, 1, (6, 5))
POS_W = RNG.uniform(0.5, 2.0, 5)

# (id, gradx function, torch function name, torch kwargs, extra gradx args, extra torch args)
LOSSES = [
    ("ce-mean", lambda x: F.cross_entropy(x, gx.tensor(LABELS)), "cross_entropy", {}, "labels"),
    ("ce-sum", lambda x: F.cross_entropy(x, gx.tensor(LABELS), reduction="sum"),
     "cross_entropy", {"reduction": "sum"}, "labels"),
    ("ce-none", lambda x: F.cross_entropy(x, gx.tensor(LABELS), reduction="none"),
     "cross_entropy", {"reduction": "none"}, "labels"),
    ("ce-smooth", lambda x: F.cross_entropy(x, gx.tensor(LABELS), label_smoothing=0.1),
     "cross_entropy", {"label_smoothing": 0.1}, "labels"),
    ("mse-mean", lambda x: F.mse_loss(x, gx.tensor(TARGET)), "mse_loss", {}, "target"),
    ("mse-none", lambda x: F.mse_loss(x, gx.tensor(TARGET), reduction="none"), "mse_loss",
     {"reduction": "none"}, "target"),
    ("bce-mean", lambda x: F.binary_cross_entropy_with_logits(x, gx.tensor(PROBS)),
     "binary_cross_entropy_with_logits", {}, "probs"),
    ("bce-posw", lambda x: F.binary_cross_entropy_with_logits(
        x, gx.tensor(PROBS), pos_weight=gx.tensor(POS_W), reduction="sum"),
     "binary_cross_entropy_with_logits", {"reduction": "sum", "pos_weight": "POS_W"}, "probs"),
]


@pytest.mark.parametrize("case", LOSSES, ids=[c[0] for c in LOSSES])
def test_losses_match_torch(backend, case):
    torch = _torch()
    _, fn, tname, tkw, second = case
    x = gx.tensor(LOGITS, requires_grad=True)
    loss = fn(x)
    loss.backward(gx.ones_like(loss) if loss.ndim else None)
    tx = torch.tensor(LOGITS, requires_grad=True)
    other = {"labels": torch.tensor(LABELS), "target": torch.tensor(TARGET),
             "probs": torch.tensor(PROBS)}[second]
    tkw = {k: (torch.tensor(POS_W) if v == "POS_W" else v) for k, v in tkw.items()}
    tloss = getattr(torch.nn.functional, tname)(tx, other, **tkw)
    tloss.backward(torch.ones_like(tloss))
    np.testing.assert_allclose(loss.numpy(), tloss.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-12)


ACTIVATIONS = [
    ("relu", F.relu, "relu", {}),
    ("softplus", F.softplus, "softplus", {}),
    ("softplus-beta", lambda x: F.softplus(x, beta=2.0), "softplus", {"beta": 2.0}),
    ("silu", F.silu, "silu", {}),
    ("gelu", F.gelu, "gelu", {}),
    ("gelu-tanh", lambda x: F.gelu(x, approximate="tanh"), "gelu", {"approximate": "tanh"}),
    ("leaky_relu", lambda x: F.leaky_relu(x, 0.2), "leaky_relu", {"negative_slope": 0.2}),
    ("softmax", lambda x: F.softmax(x, axis=0), "softmax", {"dim": 0}),
    ("log_softmax", F.log_softmax, "log_softmax", {"dim": -1}),
]


@pytest.mark.parametrize("case", ACTIVATIONS, ids=[c[0] for c in ACTIVATIONS])
def test_activations_match_torch(backend, case):
    torch = _torch()
    _, fn, tname, tkw = case
    weights = RNG.standard_normal(LOGITS.shape)
    x = gx.tensor(LOGITS, requires_grad=True)
    y = fn(x)
    (y * gx.tensor(weights)).sum().backward()
    tx = torch.tensor(LOGITS, requires_grad=True)
    ty = getattr(torch.nn.functional, tname)(tx, **tkw)
    (ty * torch.tensor(weights)).sum().backward()
    # gelu's erf is a 1.5e-7-accurate rational approximation (the Array API has no erf)
    tol = 1e-6 if tname == "gelu" and not tkw else 1e-10
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=tol, atol=tol)


# -- dropout ---------------------------------------------------------------------------

def test_dropout_scales_and_is_identity_when_not_training(backend):
    x = gx.ones((200, 50))
    assert F.dropout(x, 0.3, training=False) is x
    y = F.dropout(x, 0.3).numpy()
    kept = y != 0
    assert 0.65 < kept.mean() < 0.75
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    assert np.all(F.dropout(x, 1.0).numpy() == 0)


def test_dropout_mask_is_the_same_on_every_backend(backend):
    gx.random.seed(3)
    here = F.dropout(gx.ones((4, 5)), 0.5).numpy()
    gx.random.seed(3)
    with gx.use_backend("numpy"):
        ref = F.dropout(gx.ones((4, 5)), 0.5).numpy()
    np.testing.assert_array_equal(here, ref)


# -- errors ----------------------------------------------------------------------------

def _ce_float_labels():
    F.cross_entropy(gx.zeros((2, 3)), gx.zeros((2,)))


ERRORS = [
    ("ce-float-labels", _ce_float_labels, gx.DTypeError, "integer class indices"),
    ("ce-label-range", lambda: F.cross_entropy(gx.zeros((2, 3)), gx.tensor(np.array([0, 3]))),
     F.ArgumentError, r"\[0, 3\)"),
    ("ce-label-shape", lambda: F.cross_entropy(gx.zeros((2, 3)), gx.tensor(np.array([0]))),
     gx.ShapeError, r"expected labels of shape \(2,\)"),
    ("ce-logits-ndim", lambda: F.cross_entropy(gx.zeros((3,)), gx.tensor(np.array([0]))),
     gx.ShapeError, r"\(N, C\)"),
    ("reduction", lambda: F.mse_loss(gx.zeros(3), gx.zeros(3), reduction="avg"),
     F.ArgumentError, "reduction must be one of"),
    ("mse-shape", lambda: F.mse_loss(gx.zeros((3, 1)), gx.zeros(3)), gx.ShapeError,
     r"\(3, 1\) and target \(3,\)"),
    ("linear-shape", lambda: F.linear(gx.zeros((2, 3)), gx.zeros((4, 5))), gx.ShapeError,
     "weight.shape"),
    ("dropout-p", lambda: F.dropout(gx.zeros(3), 1.5), F.ArgumentError, "p must be in"),
    ("gelu-mode", lambda: F.gelu(gx.zeros(3), approximate="erf"), F.ArgumentError, "tanh"),
]


@pytest.mark.parametrize("case", ERRORS, ids=[c[0] for c in ERRORS])
def test_clear_errors(backend, case):
    _, fn, exc, match = case
    if case[0] == "ce-label-range" and not gx.get_backend().host_resident:
        pytest.skip("labels are range-checked only on host-resident backends (reading them "
                    "back would sync the device); there out-of-range rows' losses are NaN")
    with pytest.raises(exc, match=match) as info:
        fn()
    assert isinstance(info.value, gx.GradxError)
