"""gradx.nn: Module registration and state, layers (table-driven), initializers."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradx as gx
import gradx.nn as nn
import gradx.nn.functional as F


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.norm = nn.LayerNorm(4)
        self.register_buffer("count", gx.zeros((1,)))
        self.register_buffer("scratch", gx.zeros((2,)), persistent=False)
        self.scale = 2.0

    def forward(self, x):
        return self.norm(F.relu(self.fc(x))) * self.scale


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = Block()
        self.head = nn.Linear(4, 2, bias=False)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.head(self.drop(self.block(x)))


def _dname(dtype) -> str:
    """A dtype's name whatever the backend's dtype object prints as."""
    return str(dtype).rsplit(".", 1)[-1]


def test_registration_and_names():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["block.fc.weight", "block.fc.bias", "block.norm.weight", "block.norm.bias",
                     "head.weight"]
    assert [n for n, _ in net.named_buffers()] == ["block.count", "block.scratch"]
    # like PyTorch: each module's own entries, then its children's
    assert list(net.state_dict()) == ["block.count", *names]
    assert [n for n, _ in net.named_modules()] == ["", "block", "block.fc", "block.norm", "head",
                                                   "drop"]
    assert net.block.scale == 2.0 and "scale" not in net.state_dict()
    assert all(p.requires_grad and p.is_leaf for p in net.parameters())


def test_shared_parameter_appears_once():
    a = nn.Linear(2, 2)
    seq = nn.Sequential(a, nn.ReLU(), a)
    assert len(list(seq.parameters())) == 2
    assert set(seq.state_dict()) == {"0.weight", "0.bias", "2.weight", "2.bias"}


def test_parameter_helper_and_reassignment():
    m = nn.Module()
    m.w = nn.Parameter(gx.zeros((2,)))
    m.frozen = nn.Parameter(gx.ones((2,)), requires_grad=False)
    m.register_parameter("frozen2", gx.ones((1,)))
    m.plain = gx.ones((3,))  # does not require grad: an ordinary attribute
    assert [n for n, _ in m.named_parameters()] == ["w", "frozen2"]
    m.w = None
    assert [n for n, _ in m.named_parameters()] == ["frozen2"]
    with pytest.raises(TypeError, match="parameter"):
        m.frozen2 = gx.ones((1,), requires_grad=True) * 2.0
    del m.frozen2
    assert list(m.named_parameters()) == []


def test_forgot_super_init_is_a_clear_error():
    class Bad(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match=r"super\(\).__init__\(\)"):
        Bad()


def test_train_eval_propagate_and_dropout_follows():
    net = Net()
    assert net.eval() is net and not net.block.training and not net.drop.training
    x = gx.ones((8, 3))
    np.testing.assert_array_equal(net(x).numpy(), net(x).numpy())
    net.train()
    assert all(m.training for m in net.modules())


def test_repr_is_readable():
    net = nn.Sequential(nn.Linear(3, 4), nn.GELU(), nn.Dropout(0.1))
    assert repr(net) == (
        "Sequential(\n"
        "  (0): Linear(in_features=3, out_features=4, bias=True)\n"
        "  (1): GELU(approximate='none')\n"
        "  (2): Dropout(p=0.1)\n"
        ")"
    )
    assert "(block): Block(\n    (fc): Linear" in repr(Net())


def test_zero_grad_and_requires_grad():
    net = Net()
    net(gx.ones((2, 3))).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(float(gx.sum(gx.abs(p.grad)).item()) == 0.0 for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


# -- layers, table-driven --------------------------------------------------------------

def _labels(shape):
    return gx.tensor(np.arange(np.prod(shape)).reshape(shape) % 5)


LAYERS = [
    ("linear", lambda: nn.Linear(3, 4), lambda: gx.ones((2, 3)), (2, 4)),
    ("linear-nobias", lambda: nn.Linear(3, 4, bias=False), lambda: gx.ones((5, 2, 3)),
     (5, 2, 4)),
    ("sequential", lambda: nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2)),
     lambda: gx.ones((2, 3)), (2, 2)),
    ("modulelist", lambda: nn.Sequential(*nn.ModuleList([nn.Linear(3, 3), nn.Sigmoid()])),
     lambda: gx.ones((2, 3)), (2, 3)),
    ("layernorm", lambda: nn.LayerNorm(4), lambda: gx.arange(8.0).reshape((2, 4)), (2, 4)),
    ("layernorm-2d", lambda: nn.LayerNorm((2, 3)), lambda: gx.arange(12.0).reshape((2, 2, 3)),
     (2, 2, 3)),
    ("embedding", lambda: nn.Embedding(5, 3), lambda: _labels((2, 4)), (2, 4, 3)),
    ("flatten", lambda: nn.Sequential(nn.Flatten(), nn.Linear(6, 2)),
     lambda: gx.ones((2, 2, 3)), (2, 2)),
]
for _name, _mod in [("relu", nn.ReLU), ("tanh", nn.Tanh), ("sigmoid", nn.Sigmoid),
                    ("gelu", nn.GELU), ("silu", nn.SiLU), ("softplus", nn.Softplus),
                    ("leakyrelu", nn.LeakyReLU), ("softmax", nn.Softmax)]:
    LAYERS.append((_name, lambda _m=_mod: nn.Sequential(nn.Linear(3, 3), _m()),
                   lambda: gx.ones((2, 3)) * 0.5, (2, 3)))


@pytest.mark.parametrize("case", LAYERS, ids=[c[0] for c in LAYERS])
def test_layer_forward_and_backward(backend, case):
    _, make, inp, shape = case
    layer = make()
    y = layer(inp())
    assert tuple(y.shape) == shape and _dname(y.dtype) == "float32"
    assert y.backend.name == backend
    (y * y).sum().backward()
    params = list(layer.parameters())
    assert params
    for p in params:
        assert p.grad is not None and p.grad.shape == p.shape and p.grad.dtype == p.dtype


def test_layers_are_identical_on_every_backend(backend):
    """One seed, one set of parameters and outputs, whichever backend holds them."""
    def run():
        gx.random.seed(11)
        net = nn.Sequential(nn.Linear(4, 6), nn.GELU(), nn.LayerNorm(6), nn.Linear(6, 3))
        x = gx.tensor(np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4))
        return [p.numpy() for p in net.parameters()], net(x).numpy()

    params, out = run()
    with gx.use_backend("numpy"):
        ref_params, ref_out = run()
    for a, b in zip(params, ref_params, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(out, ref_out, rtol=1e-6, atol=1e-6)


def test_linear_init_like_pytorch():
    gx.random.seed(0)
    lin = nn.Linear(400, 300)
    w, b = lin.weight.numpy(), lin.bias.numpy()
    bound = 1 / math.sqrt(400)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    # U(-b, b) has std b / sqrt(3)
    assert abs(w.std() - bound / math.sqrt(3)) < 0.02 * bound


def test_linear_and_layernorm_match_torch(numpy_default):
    torch = pytest.importorskip("torch", reason="torch is not installed; parity tests need it")
    with gx.default_dtype("float64"):
        lin, norm = nn.Linear(5, 4), nn.LayerNorm(4)
        norm.weight.data[...] = np.linspace(0.5, 1.5, 4)
    x = np.random.default_rng(0).standard_normal((3, 5))
    y = norm(lin(gx.tensor(x))).numpy()
    tlin, tnorm = torch.nn.Linear(5, 4).double(), torch.nn.LayerNorm(4).double()
    with torch.no_grad():
        tlin.weight.copy_(torch.tensor(lin.weight.numpy()))
        tlin.bias.copy_(torch.tensor(lin.bias.numpy()))
        tnorm.weight.copy_(torch.tensor(norm.weight.numpy()))
    ty = tnorm(tlin(torch.tensor(x))).detach().numpy()
    np.testing.assert_allclose(y, ty, rtol=1e-12, atol=1e-12)


def test_embedding_accumulates_repeated_rows(backend):
    emb = nn.Embedding(4, 2)
    idx = gx.tensor(np.array([[1, 1], [3, 1]]))
    emb(idx).sum().backward()
    np.testing.assert_array_equal(emb.weight.grad.numpy(), [[0, 0], [3, 3], [0, 0], [1, 1]])
    with pytest.raises(gx.DTypeError, match="integers"):
        emb(gx.ones((2,)))


# -- initializers ----------------------------------------------------------------------

INITS = [
    ("uniform_", lambda t: nn.init.uniform_(t, -0.1, 0.1), lambda a: np.abs(a).max() <= 0.1),
    ("normal_", lambda t: nn.init.normal_(t, 1.0, 0.01), lambda a: abs(a.mean() - 1) < 0.01),
    ("zeros_", nn.init.zeros_, lambda a: np.all(a == 0)),
    ("ones_", nn.init.ones_, lambda a: np.all(a == 1)),
    ("constant_", lambda t: nn.init.constant_(t, 0.25), lambda a: np.all(a == 0.25)),
    ("xavier_uniform_", nn.init.xavier_uniform_,
     lambda a: np.abs(a).max() <= math.sqrt(6 / (20 + 30))),
    ("xavier_normal_", nn.init.xavier_normal_,
     lambda a: abs(a.std() - math.sqrt(2 / 50)) < 0.02),
    ("kaiming_uniform_", nn.init.kaiming_uniform_,
     lambda a: np.abs(a).max() <= math.sqrt(2) * math.sqrt(3 / 20)),
    ("kaiming_normal_", lambda t: nn.init.kaiming_normal_(t, nonlinearity="relu"),
     lambda a: abs(a.std() - math.sqrt(2 / 20)) < 0.03),
]


@pytest.mark.parametrize("case", INITS, ids=[c[0] for c in INITS])
def test_initializers_in_place_and_seeded(backend, case):
    _, fn, ok = case
    t = gx.zeros((30, 20), requires_grad=True)
    version = t._version[0]
    gx.random.seed(5)
    assert fn(t) is t and t._version[0] > version and t.is_leaf
    assert ok(t.numpy())
    gx.random.seed(5)
    with gx.use_backend("numpy"):
        ref = fn(gx.zeros((30, 20))).numpy()
    np.testing.assert_array_equal(t.numpy(), ref)


def test_fan_and_gain_errors():
    with pytest.raises(gx.ShapeError, match="at least 2 dimensions"):
        nn.init.xavier_uniform_(gx.zeros((3,)))
    with pytest.raises(nn.ArgumentError, match="unknown nonlinearity"):
        nn.init.calculate_gain("swish")
    assert nn.init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))


# -- state dicts and moving ------------------------------------------------------------

def test_state_dict_round_trip_in_place(backend):
    a, b = Net(), Net()
    params_b = list(b.parameters())
    result = b.load_state_dict(a.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert list(b.parameters())[0] is params_b[0]  # updated in place: optimizers keep working
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb
        np.testing.assert_array_equal(va.numpy(), vb.numpy())


def test_state_dict_across_backends(backend):
    with gx.use_backend("numpy"):
        gx.random.seed(1)
        src = Net()
    dst = Net()
    dst.load_state_dict(src.state_dict())
    assert all(p.backend.name == backend for p in dst.parameters())
    x = np.ones((2, 3), np.float32)
    src.eval(), dst.eval()
    np.testing.assert_allclose(dst(gx.tensor(x)).numpy(), src(gx.tensor(x, backend="numpy"))
                               .numpy(), rtol=1e-6)


def test_state_dict_errors_name_keys_and_shapes():
    net = Net()
    sd = net.state_dict()
    sd.pop("head.weight")
    sd["extra.bias"] = gx.zeros((2,))
    with pytest.raises(nn.StateDictError, match=r"missing keys \['head.weight'\].*"
                                                r"unexpected keys \['extra.bias'\]"):
        net.load_state_dict(sd)
    res = net.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["head.weight"] and res.unexpected_keys == ["extra.bias"]
    bad = net.state_dict()
    bad["block.fc.weight"] = gx.zeros((4, 5))
    with pytest.raises(gx.ShapeError, match=r"block.fc.weight: checkpoint \(4, 5\) vs model "
                                            r"\(4, 3\)"):
        net.load_state_dict(bad, strict=False)


def test_to_moves_parameters_buffers_and_grads(backend):
    with gx.use_backend("numpy"):
        gx.random.seed(2)
        net = Net().eval()
        x = np.ones((2, 3), np.float32)
        ref = net(gx.tensor(x)).numpy()
        net(gx.tensor(x)).sum().backward()
    assert net.to(backend) is net
    assert all(t.backend.name == backend for t in net.state_dict().values())
    assert all(p.grad.backend.name == backend and p.is_leaf and p.requires_grad
               for p in net.parameters())
    np.testing.assert_allclose(net(gx.tensor(x)).numpy(), ref, rtol=1e-6)


def test_to_the_same_backend_keeps_parameters(backend):
    net = Net()
    before = list(net.parameters())
    net.to(backend)
    assert all(a is b for a, b in zip(before, net.parameters(), strict=True))


def test_to_keeps_tied_parameters_tied(backend):
    with gx.use_backend("numpy"):
        a, b = nn.Linear(2, 2), nn.Linear(2, 2)
        b.weight = a.weight  # two modules, one weight
        net = nn.Sequential(a, nn.Tanh(), b)
    net.to(backend)
    assert net[0].weight is net[2].weight and net[0].weight.backend.name == backend
    assert len(list(net.parameters())) == 3
