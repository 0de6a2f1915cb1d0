"""gradx.optim: step-by-step parity with torch.optim, state dicts, param groups, errors."""

from __future__ import annotations

import numpy as np
import pytest

import gradx as gx
import gradx.nn as nn
from gradx.optim import SGD, Adam, AdamW, OptimizerError

SHAPES = [(3, 4), (4,), ()]
STEPS = 6

# (id, gradx class, torch class name, hyperparameters)
CONFIGS = [
    ("sgd", SGD, "SGD", {"lr": 0.1}),
    ("sgd-momentum", SGD, "SGD", {"lr": 0.05, "momentum": 0.9}),
    ("sgd-dampening-wd", SGD, "SGD", {"lr": 0.05, "momentum": 0.8, "dampening": 0.3,
                                      "weight_decay": 0.01}),
    ("sgd-nesterov", SGD, "SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True,
                                  "weight_decay": 1e-3}),
    ("sgd-maximize", SGD, "SGD", {"lr": 0.05, "momentum": 0.5, "maximize": True}),
    ("adam", Adam, "Adam", {"lr": 1e-2}),
    ("adam-wd-betas", Adam, "Adam", {"lr": 3e-3, "betas": (0.8, 0.99), "eps": 1e-6,
                                     "weight_decay": 0.05}),
    ("adam-amsgrad", Adam, "Adam", {"lr": 1e-2, "amsgrad": True}),
    ("adamw", AdamW, "AdamW", {"lr": 1e-2}),
    ("adamw-amsgrad-wd", AdamW, "AdamW", {"lr": 5e-3, "weight_decay": 0.1, "amsgrad": True,
                                          "maximize": True}),
]


def _host_values(seed: int = 0):
    """Initial parameters and one gradient per step, with magnitudes that vary widely, so
    the AMSGrad maximum and the bias corrections are exercised."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    grads = [[(rng.standard_normal(s) * 10.0 ** rng.uniform(-2, 1)).astype(np.float32)
              for s in SHAPES] for _ in range(STEPS)]
    return params, grads


@pytest.mark.parametrize("case", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_matches_torch_every_step(backend, case):
    torch = pytest.importorskip("torch", reason="torch is not installed; parity tests need it")
    _, cls, tname, hp = case
    host_params, host_grads = _host_values()
    params = [gx.tensor(p, requires_grad=True) for p in host_params]
    tparams = [torch.tensor(p, requires_grad=True) for p in host_params]
    opt = cls(params, **hp)
    topt = getattr(torch.optim, tname)(tparams, **hp)
    for step, grads in enumerate(host_grads):
        for p, tp, g in zip(params, tparams, grads, strict=True):
            p.grad = gx.tensor(g)
            tp.grad = torch.tensor(g)
        opt.step()
        topt.step()
        for i, (p, tp) in enumerate(zip(params, tparams, strict=True)):
            np.testing.assert_allclose(p.numpy(), tp.detach().numpy(), rtol=1e-5, atol=1e-6,
                                       err_msg=f"{tname} {hp} step {step} parameter {i}")
            assert p.is_leaf and p.requires_grad


def test_param_groups_match_torch():
    torch = pytest.importorskip("torch", reason="torch is not installed; parity tests need it")
    host_params, host_grads = _host_values(1)
    params = [gx.tensor(p, requires_grad=True) for p in host_params]
    tparams = [torch.tensor(p, requires_grad=True) for p in host_params]

    def groups(ps):
        return [{"params": ps[:2], "lr": 0.01}, {"params": ps[2:], "weight_decay": 0.5}]

    opt, topt = AdamW(groups(params), lr=0.1), torch.optim.AdamW(groups(tparams), lr=0.1)
    assert opt.param_groups[1]["lr"] == 0.1 and opt.param_groups[0]["weight_decay"] == 0.01
    for grads in host_grads:
        for p, tp, g in zip(params, tparams, grads, strict=True):
            p.grad, tp.grad = gx.tensor(g), torch.tensor(g)
        opt.step()
        topt.step()
    for p, tp in zip(params, tparams, strict=True):
        np.testing.assert_allclose(p.numpy(), tp.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_trains_a_model_and_skips_params_without_grad(backend):
    gx.random.seed(0)
    model = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 1))
    unused = gx.ones((2,), requires_grad=True)
    opt = SGD([*model.parameters(), unused], lr=0.1, momentum=0.9)
    x = gx.tensor(np.random.default_rng(0).standard_normal((32, 3)).astype(np.float32))
    y = gx.sum(x * gx.tensor(np.array([1.0, -2.0, 0.5], np.float32)), axis=1, keepdims=True)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]
    np.testing.assert_array_equal(unused.numpy(), [1.0, 1.0])
    assert all(p.grad is not None for p in model.parameters())
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_step_bumps_version_so_stale_graphs_raise(backend):
    p = gx.ones((3,), requires_grad=True)
    y = gx.sum(p * p)
    p.grad = gx.ones((3,))
    SGD([p], lr=0.1).step()
    with pytest.raises(gx.GraphError, match="modified in place"):
        y.backward()


def test_closure_is_called_with_grad_enabled():
    p = gx.tensor(np.array([2.0, -1.0]), requires_grad=True)
    opt = SGD([p], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = gx.sum(p * p)
        loss.backward()
        return loss

    with gx.no_grad():
        loss = opt.step(closure)
    assert loss.item() == 5.0
    np.testing.assert_allclose(p.numpy(), [1.0, -0.5])


@pytest.mark.parametrize("cls,hp", [(SGD, {"lr": 0.1, "momentum": 0.9}),
                                    (Adam, {"lr": 0.01, "amsgrad": True}),
                                    (AdamW, {"lr": 0.01})], ids=["sgd", "adam", "adamw"])
def test_state_dict_resume_is_exact(backend, cls, hp, tmp_path):
    host_params, host_grads = _host_values(2)

    def run(opt, params, grads):
        for gs in grads:
            for p, g in zip(params, gs, strict=True):
                p.grad = gx.tensor(g)
            opt.step()

    params = [gx.tensor(p, requires_grad=True) for p in host_params]
    opt = cls(params, **hp)
    run(opt, params, host_grads[:3])
    # a checkpoint written here and loaded onto NumPy, then resumed on the test backend
    gx.save({"params": params, "opt": opt.state_dict()}, tmp_path / "opt.npz")
    ck = gx.load(tmp_path / "opt.npz", backend="numpy")
    run(opt, params, host_grads[3:])

    resumed = [gx.tensor(p.numpy(), requires_grad=True) for p in ck["params"]]
    opt2 = cls(resumed, lr=123.0)
    opt2.load_state_dict(ck["opt"])
    assert opt2.param_groups[0]["lr"] == hp["lr"]
    run(opt2, resumed, host_grads[3:])
    for a, b in zip(params, resumed, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_state_dict_layout_like_torch():
    p, q = gx.ones((2,), requires_grad=True), gx.ones((3,), requires_grad=True)
    opt = Adam([{"params": [p]}, {"params": [q], "lr": 0.5}])
    p.grad = gx.ones((2,))
    opt.step()
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1]]
    assert sd["param_groups"][1]["lr"] == 0.5
    assert set(sd["state"]) == {0} and sd["state"][0]["step"] == 1
    assert set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}


def _nonleaf():
    SGD([gx.ones((2,), requires_grad=True) * 2.0])


def _dup():
    p = gx.ones((2,), requires_grad=True)
    SGD([{"params": [p]}, {"params": [p]}])


def _bad_load():
    opt = SGD([gx.ones((2,), requires_grad=True)])
    other = SGD([gx.ones((2,), requires_grad=True), gx.ones((1,), requires_grad=True)])
    opt.load_state_dict(other.state_dict())


ERRORS = [
    ("empty", lambda: Adam([]), "empty parameter list"),
    ("tensor", lambda: Adam(gx.ones((2,), requires_grad=True)), "wrap it in a list"),
    ("lr", lambda: SGD([gx.ones((2,), requires_grad=True)], lr=-1.0), "lr must be >= 0"),
    ("betas", lambda: Adam([gx.ones((2,), requires_grad=True)], betas=(0.9, 1.0)),
     r"betas\[1\]"),
    ("nesterov", lambda: SGD([gx.ones((2,), requires_grad=True)], nesterov=True),
     "nesterov momentum needs momentum > 0"),
    ("nonleaf", _nonleaf, "not a leaf"),
    ("duplicate", _dup, "more than one parameter group"),
    ("unknown", lambda: SGD([{"params": [gx.ones((2,), requires_grad=True)], "betas": 1}]),
     r"unknown hyperparameters \['betas'\]"),
    ("load-sizes", _bad_load, r"sizes \[2\] but this optimizer has \[1\]"),
]


@pytest.mark.parametrize("case", ERRORS, ids=[c[0] for c in ERRORS])
def test_errors(case):
    _, fn, match = case
    with pytest.raises(OptimizerError, match=match) as info:
        fn()
    assert isinstance(info.value, gx.GradxError)
