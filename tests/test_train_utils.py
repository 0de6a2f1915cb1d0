"""Learning-rate schedulers against torch.optim.lr_scheduler (identical lr sequences, step by
step, with two parameter groups), their state_dict, gradient clipping against
torch.nn.utils, flattening parameters, and freezing."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradx as gx
import gradx.nn as nn
import gradx.optim.lr_scheduler as gsched

torch = pytest.importorskip("torch")
tsched = torch.optim.lr_scheduler

STEPS = 30


def _optimizers(kind="sgd"):
    gp = [gx.zeros((2,), requires_grad=True), gx.zeros((3,), requires_grad=True)]
    tp = [torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)]
    if kind == "sgd":
        g = gx.optim.SGD([{"params": [gp[0]]}, {"params": [gp[1]], "lr": 0.05}], lr=0.1,
                         momentum=0.9)
        t = torch.optim.SGD([{"params": [tp[0]]}, {"params": [tp[1]], "lr": 0.05}], lr=0.1,
                            momentum=0.9)
    else:
        g = gx.optim.Adam([{"params": [gp[0]]}, {"params": [gp[1]], "lr": 0.05}], lr=0.1)
        t = torch.optim.Adam([{"params": [tp[0]]}, {"params": [tp[1]], "lr": 0.05}], lr=0.1)
    return g, t


def _lambda(epoch):
    return 0.95 ** epoch if epoch % 3 else 1.0 / (1 + epoch)


# (name, builder taking (scheduler module, optimizer), optimizer kind)
SCHEDULES = [
    ("StepLR", lambda m, o: m.StepLR(o, step_size=4, gamma=0.5), "sgd"),
    ("MultiStepLR", lambda m, o: m.MultiStepLR(o, milestones=[3, 7, 7, 20], gamma=0.3), "sgd"),
    ("ExponentialLR", lambda m, o: m.ExponentialLR(o, gamma=0.9), "sgd"),
    ("CosineAnnealingLR", lambda m, o: m.CosineAnnealingLR(o, T_max=7, eta_min=0.001), "sgd"),
    ("CosineAnnealingLR-long", lambda m, o: m.CosineAnnealingLR(o, T_max=40), "adam"),
    ("LinearLR", lambda m, o: m.LinearLR(o, start_factor=0.1, total_iters=8), "sgd"),
    ("LinearLR-decay", lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.2,
                                               total_iters=12), "adam"),
    ("LambdaLR", lambda m, o: m.LambdaLR(o, _lambda), "sgd"),
    ("LambdaLR-per-group", lambda m, o: m.LambdaLR(o, [_lambda, lambda e: 1.0 / (e + 1)]),
     "sgd"),
    ("OneCycleLR-sgd", lambda m, o: m.OneCycleLR(o, max_lr=[1.0, 0.5], total_steps=STEPS),
     "sgd"),
    ("OneCycleLR-adam-linear", lambda m, o: m.OneCycleLR(
        o, max_lr=0.3, epochs=3, steps_per_epoch=10, anneal_strategy="linear",
        three_phase=True), "adam"),
    ("SequentialLR", lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.2, total_iters=5),
            m.CosineAnnealingLR(o, T_max=20)], milestones=[5]), "sgd"),
]


def _momentum(opt):
    return [g.get("momentum", g.get("betas", (None,))[0]) for g in opt.param_groups]


@pytest.mark.parametrize("name, build, kind", SCHEDULES, ids=[s[0] for s in SCHEDULES])
def test_schedule_matches_torch(name, build, kind):
    g_opt, t_opt = _optimizers(kind)
    g_s, t_s = build(gsched, g_opt), build(tsched, t_opt)
    steps = STEPS - 1 if name.startswith("OneCycle") else STEPS
    for step in range(steps + 1):
        g_lrs = [grp["lr"] for grp in g_opt.param_groups]
        t_lrs = [grp["lr"] for grp in t_opt.param_groups]
        assert g_lrs == t_lrs, (step, g_lrs, t_lrs)  # identical, not merely close
        assert g_s.get_last_lr() == t_s.get_last_lr()
        assert _momentum(g_opt) == _momentum(t_opt), step
        if step < steps:
            t_opt.step()
            g_opt.step()
            g_s.step()
            t_s.step()


@pytest.mark.parametrize("name, build, kind",
                         [s for s in SCHEDULES if s[0] not in ("LambdaLR-per-group",)],
                         ids=[s[0] for s in SCHEDULES if s[0] not in ("LambdaLR-per-group",)])
def test_state_dict_resumes(name, build, kind):
    """10 steps, save, rebuild, load, 10 more: the same lrs as 20 steps in one go."""
    opt, _ = _optimizers(kind)
    sched = build(gsched, opt)
    straight = []
    for _ in range(20):
        sched.step()
        straight.append([g["lr"] for g in opt.param_groups])
    opt, _ = _optimizers(kind)
    sched = build(gsched, opt)
    for _ in range(10):
        sched.step()
    state, opt_groups = sched.state_dict(), [dict(g, params=None) for g in opt.param_groups]
    assert "optimizer" not in state
    opt2, _ = _optimizers(kind)
    resumed = build(gsched, opt2)
    resumed.load_state_dict(state)
    for group, saved in zip(opt2.param_groups, opt_groups, strict=True):
        group.update({k: v for k, v in saved.items() if k != "params"})
    again = []
    for _ in range(10):
        resumed.step()
        again.append([g["lr"] for g in opt2.param_groups])
    assert again == straight[10:]


def test_scheduler_errors():
    opt, _ = _optimizers()
    with pytest.raises(gx.GradxError, match="StepLR.*step_size"):
        gsched.StepLR(opt, step_size=0)
    with pytest.raises(gx.GradxError, match="OneCycleLR.*total_steps"):
        gsched.OneCycleLR(opt, max_lr=1.0)
    with pytest.raises(gx.GradxError, match="LambdaLR.*2 lr_lambdas"):
        gsched.LambdaLR(opt, [_lambda])
    with pytest.raises(gx.GradxError, match="initial_lr"):
        gsched.ExponentialLR(_optimizers()[0], gamma=0.5, last_epoch=3)
    sched = gsched.OneCycleLR(opt, max_lr=1.0, total_steps=2)
    sched.step()
    sched.step()
    with pytest.raises(gx.GradxError, match="past total_steps"):
        sched.step()


# -- gradient clipping -----------------------------------------------------------------

def _grads(backend_name, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    values = [rng.standard_normal(s) * scale for s in [(3, 4), (5,), (2, 2, 2)]]
    gp = [gx.tensor(np.zeros_like(v), requires_grad=True) for v in values]
    tp = [torch.zeros(v.shape, dtype=torch.float64, requires_grad=True) for v in values]
    for g, t, v in zip(gp, tp, values, strict=True):
        g.grad = gx.tensor(v)
        t.grad = torch.tensor(v)
    extra = gx.tensor(np.ones(2), requires_grad=True)  # no gradient: skipped
    return gp + [extra], tp


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(backend, norm_type, max_norm):
    gp, tp = _grads(backend)
    g_total = nn.utils.clip_grad_norm_(gp, max_norm, norm_type=norm_type)
    t_total = torch.nn.utils.clip_grad_norm_(tp, max_norm, norm_type=norm_type)
    np.testing.assert_allclose(float(g_total.item()), t_total.item(), rtol=1e-12)
    for g, t in zip(gp[:-1], tp, strict=True):
        np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), rtol=1e-12, atol=1e-15)
    assert gp[-1].grad is None


def test_clip_grad_norm_nonfinite(backend):
    gp, _ = _grads(backend)
    gp[1].grad = gx.tensor(np.array([1.0, np.inf, 0.0, 0.0, 0.0]))
    with pytest.raises(gx.GradxError, match="clip_grad_norm_.*inf"):
        nn.utils.clip_grad_norm_(gp, 1.0, error_if_nonfinite=True)
    total = nn.utils.clip_grad_norm_(gp, 1.0)
    assert math.isinf(float(total.item()))


def test_clip_grad_value_matches_torch(backend):
    gp, tp = _grads(backend, seed=1, scale=2.0)
    nn.utils.clip_grad_value_(gp, 0.7)
    torch.nn.utils.clip_grad_value_(tp, 0.7)
    for g, t in zip(gp[:-1], tp, strict=True):
        np.testing.assert_array_equal(g.grad.numpy(), t.grad.numpy())
    with pytest.raises(gx.GradxError, match="clip_value"):
        nn.utils.clip_grad_value_(gp, -1.0)


def test_clip_a_single_tensor_and_a_model(backend):
    m = nn.Linear(4, 3, dtype="float64")
    gx.sum(m(gx.tensor(np.ones((2, 4)))) * 100.0).backward()
    total = nn.utils.clip_grad_norm_(m.parameters(), 1.0)
    assert float(total.item()) > 1.0
    clipped = math.sqrt(sum(float(gx.sum(p.grad ** 2).item()) for p in m.parameters()))
    assert abs(clipped - 1.0) < 1e-5
    nn.utils.clip_grad_value_(m.weight, 0.01)
    assert float(gx.max(gx.abs(m.weight.grad)).item()) <= 0.01


def test_parameters_to_vector_and_back(backend):
    m = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    vec = nn.utils.parameters_to_vector(m.parameters())
    assert vec.shape == (3 * 2 + 2 + 2 + 1,)
    tm = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    tm.load_state_dict({k: torch.tensor(v.numpy()) for k, v in m.state_dict().items()})
    np.testing.assert_array_equal(
        vec.numpy(), torch.nn.utils.parameters_to_vector(tm.parameters()).detach().numpy())
    nn.utils.vector_to_parameters(vec * 2.0, m.parameters())
    np.testing.assert_allclose(m[0].weight.numpy(), 2 * tm[0].weight.detach().numpy())
    with pytest.raises(gx.GradxError, match="vector_to_parameters"):
        nn.utils.vector_to_parameters(vec[:3], m.parameters())


# -- modules: apply, named_modules, freezing ---------------------------------------------

def test_apply_named_modules_and_freezing(backend):
    m = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Sequential(nn.Linear(4, 2)))
    assert [n for n, _ in m.named_modules()] == ["", "0", "1", "2", "2.0"]
    seen = []
    m.apply(lambda mod: seen.append(type(mod).__name__))
    assert seen == ["Linear", "ReLU", "Linear", "Sequential", "Sequential"]
    m[0].requires_grad_(False)
    x = gx.tensor(np.ones((5, 3), dtype=np.float32))
    gx.sum(m(x)).backward()
    assert m[0].weight.grad is None and m[0].bias.grad is None
    assert m[2][0].weight.grad is not None
    before = m[0].weight.numpy().copy()
    gx.optim.Adam(m.parameters(), lr=0.1).step()
    np.testing.assert_array_equal(m[0].weight.numpy(), before)
