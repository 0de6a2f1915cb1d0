"""RNN, LSTM and GRU against torch.nn (float64 values and gradients of the input, the
initial state and every parameter), the fused cells' edge cases, and the O(T) backward of
splitting a sequence (unstack, split, the layers' per-step inputs), counted in work."""

from __future__ import annotations

import numpy as np
import pytest

import gradx as gx
import gradx.nn as nn
from gradx.ops import steps

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("hot_path")

# (gradx class, torch class, extra arguments)
MODES = {
    "rnn_tanh": (nn.RNN, torch.nn.RNN, {}),
    "rnn_relu": (nn.RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (nn.LSTM, torch.nn.LSTM, {}),
    "gru": (nn.GRU, torch.nn.GRU, {}),
}
# (num_layers, batch_first, bidirectional, batch, T, bias, with an initial state)
CONFIGS = [
    (1, False, False, 2, 5, True, False),
    (2, True, True, 3, 4, True, True),
    (2, False, True, 1, 1, True, True),
    (1, True, False, 1, 3, False, True),
    (2, False, False, 2, 3, False, False),
]


def _pair(mode, num_layers, batch_first, bidirectional, bias, input_size=3, hidden=4):
    gcls, tcls, extra = MODES[mode]
    torch.manual_seed(0)
    tm = tcls(input_size, hidden, num_layers=num_layers, batch_first=batch_first,
              bidirectional=bidirectional, bias=bias, **extra).double()
    gm = gcls(input_size, hidden, num_layers=num_layers, batch_first=batch_first,
              bidirectional=bidirectional, bias=bias, dtype="float64", **extra)
    assert list(gm.state_dict()) == list(tm.state_dict())
    gm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    return gm, tm


def _close(ours, theirs, what):
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-10, atol=1e-12,
                               err_msg=what)


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "L{}-bf{}-bi{}-B{}-T{}-b{}-h{}"
                         .format(*[int(v) for v in c]))
def test_matches_torch(backend, mode, config):
    layers, bf, bi, batch, t, bias, with_state = config
    gm, tm = _pair(mode, layers, bf, bi, bias)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((batch, t, 3) if bf else (t, batch, 3))
    gx_x, th_x = gx.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    state_shape = (layers * (2 if bi else 1), batch, 4)
    g_states, t_states = [], []
    if with_state:
        for _ in range(2 if mode == "lstm" else 1):
            s = rng.standard_normal(state_shape)
            g_states.append(gx.tensor(s, requires_grad=True))
            t_states.append(torch.tensor(s, requires_grad=True))
    def hx(states):
        if not states:
            return None
        return tuple(states) if mode == "lstm" else states[0]
    g_out, g_h = gm(gx_x, hx(g_states))
    t_out, t_h = tm(th_x, hx(t_states))
    w = rng.standard_normal(tuple(t_out.shape))
    if mode == "lstm":
        _close(g_h[0], t_h[0], "h_n")
        _close(g_h[1], t_h[1], "c_n")
        g_loss = gx.sum(g_out * gx.tensor(w)) + gx.sum(gx.sin(g_h[0])) + gx.sum(g_h[1] ** 3)
        t_loss = (t_out * torch.tensor(w)).sum() + t_h[0].sin().sum() + t_h[1].pow(3).sum()
    else:
        _close(g_h, t_h, "h_n")
        g_loss = gx.sum(g_out * gx.tensor(w)) + gx.sum(gx.sin(g_h))
        t_loss = (t_out * torch.tensor(w)).sum() + t_h.sin().sum()
    _close(g_out, t_out, "output")
    g_loss.backward()
    t_loss.backward()
    _close(gx_x.grad, th_x.grad, "input gradient")
    for gs, ts in zip(g_states, t_states, strict=True):
        _close(gs.grad, ts.grad, "initial state gradient")
    for name, p in tm.named_parameters():
        _close(getattr(gm, name).grad, p.grad, name)


@pytest.mark.parametrize("mode", list(MODES))
def test_unbatched_input(backend, mode):
    gm, tm = _pair(mode, 2, False, True, True)
    x = np.random.default_rng(2).standard_normal((4, 3))
    g_out, g_h = gm(gx.tensor(x))
    t_out, t_h = tm(torch.tensor(x))
    _close(g_out, t_out, "output")
    _close(g_h[0] if mode == "lstm" else g_h, t_h[0] if mode == "lstm" else t_h, "h_n")


def test_init_and_names(backend):
    gx.random.seed(3)
    m = nn.LSTM(5, 6, num_layers=2, bidirectional=True)
    t = torch.nn.LSTM(5, 6, num_layers=2, bidirectional=True)
    assert [(k, tuple(v.shape)) for k, v in m.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in t.state_dict().items()]
    bound = 1 / np.sqrt(6)
    for p in m.parameters():
        v = p.numpy()
        assert np.all(np.abs(v) <= bound) and v.std() > bound / 4
    gx.random.seed(3)
    again = nn.LSTM(5, 6, num_layers=2, bidirectional=True)
    for a, b in zip(m.parameters(), again.parameters(), strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_dropout_between_layers_only_in_training(backend):
    gm, tm = _pair("gru", 2, False, False, True)
    gm.dropout = tm.dropout = 0.5
    x = np.random.default_rng(4).standard_normal((3, 2, 3))
    gm.eval()
    tm.eval()
    _close(gm(gx.tensor(x))[0], tm(torch.tensor(x))[0], "eval output")
    gm.train()
    out = gm(gx.tensor(x))[0]
    assert not np.allclose(out.numpy(), tm(torch.tensor(x))[0].detach().numpy())


def test_frozen_parameters_get_no_gradient(backend):
    m = nn.LSTM(3, 4, num_layers=2, dtype="float64")
    m.weight_ih_l0.requires_grad_(False)
    x = gx.tensor(np.ones((2, 1, 3)))
    gx.sum(m(x)[0]).backward()
    assert m.weight_ih_l0.grad is None
    assert m.weight_hh_l0.grad is not None
    before = m.weight_ih_l0.numpy().copy()
    gx.optim.SGD(m.parameters(), lr=0.1).step()
    np.testing.assert_array_equal(m.weight_ih_l0.numpy(), before)


def test_bad_input_is_named(backend):
    m = nn.LSTM(3, 4)
    with pytest.raises(gx.ShapeError, match="LSTM.*input_size=3"):
        m(gx.zeros((2, 1, 5)))
    with pytest.raises(gx.ShapeError, match="initial state"):
        m(gx.zeros((2, 1, 3)), (gx.zeros((2, 1, 4)), gx.zeros((2, 1, 4))))
    with pytest.raises(gx.DTypeError, match="GRU.*floating-point"):
        nn.GRU(3, 4)(gx.tensor(np.ones((2, 1, 3), dtype=np.int64)))
    with pytest.raises(gx.ShapeError, match="RNN"):
        nn.RNN(3, 4)(gx.zeros((3,)))
    with pytest.raises(gx.GradxError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="sigmoid")


def test_second_order_through_lstm(backend):
    """Gradients of gradients through the fused cells and the split (create_graph)."""
    gx.set_default_dtype("float64")
    m = nn.LSTM(2, 2)
    x0 = np.random.default_rng(5).standard_normal((3, 1, 2))

    def f(x):
        out, (h, c) = m(x)
        return gx.sum(out * out) + gx.sum(c)

    gx.testing.check_grads(f, gx.tensor(x0), modes=("rev",), order=2)


# -- splitting a sequence: O(T) work in backward -------------------------------------------

def _gradient_elements(monkeypatch, run) -> int:
    """Total elements of the gradients every VJP rule returns while ``run()`` differentiates:
    the work of a backward pass, counted without a clock."""
    total = [0]

    def counting(rule):
        def wrapped(*args, **kwargs):
            gi = rule(*args, **kwargs)
            total[0] += int(np.prod(gi.shape))
            return gi
        return wrapped

    for prim in gx.primitives().values():
        for argnum, rule in list(prim.vjps.items()):
            if rule is not gx._tape.identity_vjp:
                monkeypatch.setitem(prim.vjps, argnum, counting(rule))
        if prim.vjp_argnum is not None:
            monkeypatch.setattr(prim, "vjp_argnum", counting(prim.vjp_argnum))
    run()
    monkeypatch.undo()
    return total[0]


SPLITS = {
    "unstack": lambda x: gx.unstack(x, axis=0),
    "unstack-axis1": lambda x: gx.unstack(gx.permute_dims(x, (1, 0, 2)), axis=1),
    "split": lambda x: gx.split(x, x.shape[0], axis=0),
    "split_steps": steps.split_steps,
}


@pytest.mark.parametrize("name", list(SPLITS))
def test_split_backward_is_linear_in_steps(monkeypatch, name):
    def work(t):
        x = gx.tensor(np.ones((t, 2, 3)), requires_grad=True)

        def run():
            pieces = SPLITS[name](x)
            gx.sum(gx.stack([p * float(i) for i, p in enumerate(pieces)])).backward()
        return _gradient_elements(monkeypatch, run)

    small, large = work(20), work(80)
    # O(T): 4x the steps, 4x the work (slicing had 16x: T gradients of x's full size)
    assert large <= 4.5 * small, (small, large)


def test_split_gradient_values_and_views(backend):
    x0 = np.random.default_rng(6).standard_normal((5, 3))
    x, xt = gx.tensor(x0, requires_grad=True), torch.tensor(x0, requires_grad=True)
    a, b, c = gx.split(x, [1, 3], axis=0)
    at, bt, ct = torch.split(xt, [1, 2, 2], dim=0)
    (gx.sum(a * 3.0) + gx.sum(c * c)).backward()  # b gets no gradient: zeros in its place
    ((at * 3.0).sum() + (ct * ct).sum()).backward()
    _close(x.grad, xt.grad, "split gradient")
    y = gx.exp(gx.tensor(x0, requires_grad=True))
    piece = gx.unstack(y)[2]
    np.testing.assert_array_equal(piece.numpy(), y.numpy()[2])
    with gx.no_grad():
        piece *= 2.0  # a view: y changed, and backward through exp's saved y refuses
    assert np.allclose(y.numpy()[2], 2 * np.exp(x0[2]))
    with pytest.raises(gx.GraphError, match="modified in place"):
        gx.sum(y).backward()


def test_split_forward_mode(backend):
    x0 = np.random.default_rng(7).standard_normal((4, 2))
    t0 = np.random.default_rng(8).standard_normal((4, 2))

    def f(x):
        p = gx.unstack(x)
        return p[0] * p[3] + gx.sin(p[1])

    _, tangent = gx.jvp(f, (gx.tensor(x0),), (gx.tensor(t0),))
    expect = t0[0] * x0[3] + x0[0] * t0[3] + np.cos(x0[1]) * t0[1]
    np.testing.assert_allclose(tangent.numpy(), expect, rtol=1e-12)


def test_retained_graph_backward_twice(backend):
    x = gx.tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    y = gx.sum(gx.unstack(x)[1] ** 2)
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0, 0], [8, 12], [0, 0]])
