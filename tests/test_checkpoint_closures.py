"""gx.checkpoint against torch.utils.checkpoint (use_reentrant=False) in float64: tensors the
block closes over get their gradients, dropout reuses its mask in the recomputation,
create_graph records through a checkpoint, nested checkpoints and checkpoints inside
transforms agree, recomputed gradients are freed once delivered, and the per-op recorder
that finds closed-over tensors leaves dispatch on its fast path afterwards. Also
gx.nn.functional_call and gx.random.get_state/set_state."""

from __future__ import annotations

import math
import tracemalloc
import types

import numpy as np
import pytest

import gradx as gx
from gradx import _primitive

torch = pytest.importorskip("torch")
from torch.utils.checkpoint import checkpoint as torch_checkpoint  # noqa: E402

pytestmark = pytest.mark.usefixtures("hot_path")
F = gx.nn.functional
TF = torch.nn.functional
D, H, T = 4, 6, 3


def _host_params(rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = rng.standard_normal
    return {"ln1_w": 1 + 0.1 * n(D), "ln1_b": 0.1 * n(D), "wq": n((D, D)) / 2,
            "wk": n((D, D)) / 2, "wv": n((D, D)) / 2, "wo": n((D, D)) / 2,
            "ln2_w": 1 + 0.1 * n(D), "ln2_b": 0.1 * n(D), "w1": n((D, H)) / 2,
            "b1": 0.1 * n(H), "w2": n((H, D)) / 2, "b2": 0.1 * n(D)}


def _block(lib, h, p):
    """A transformer block (pre-norm attention and MLP, residuals) in gradx or torch."""
    if lib is gx:
        ln = lambda x, w, b: F.layer_norm(x, (D,), w, b)  # noqa: E731
        sm, tr = (lambda s: gx.softmax(s, axis=-1)), gx.matrix_transpose
        act = lambda x: F.gelu(x, approximate="tanh")  # noqa: E731
    else:
        ln = lambda x, w, b: TF.layer_norm(x, (D,), w, b)  # noqa: E731
        sm, tr = (lambda s: torch.softmax(s, -1)), (lambda m: m.transpose(-1, -2))
        act = lambda x: TF.gelu(x, approximate="tanh")  # noqa: E731
    a = ln(h, p["ln1_w"], p["ln1_b"])
    q, k, v = a @ p["wq"], a @ p["wk"], a @ p["wv"]
    h = h + (sm(q @ tr(k) * (1 / math.sqrt(D))) @ v) @ p["wo"]
    a = ln(h, p["ln2_w"], p["ln2_b"])
    return h + act(a @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]


def _gx(host: dict) -> dict:
    return {k: gx.tensor(v, requires_grad=True) for k, v in host.items()}


def _torch(host: dict) -> dict:
    return {k: torch.tensor(v, requires_grad=True) for k, v in host.items()}


def _close(actual, desired, rtol=1e-10, atol=1e-12):
    got = actual.numpy() if isinstance(actual, gx.Tensor) else actual
    want = desired.detach().numpy() if isinstance(desired, torch.Tensor) else desired
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


# -- closed-over tensors get their gradients ----------------------------------------------

def test_closed_over_parameters_match_torch(backend):
    rng = np.random.default_rng(0)
    hosts = [_host_params(rng), _host_params(rng)]
    x0 = rng.standard_normal((T, D))
    ps, x = [_gx(h) for h in hosts], gx.tensor(x0, requires_grad=True)
    h = x
    for p in ps:  # each block closes over its parameters; only h is an argument
        h = gx.checkpoint(lambda z, p=p: _block(gx, z, p))(h)
    gx.sum(h * h).backward()

    tps, tx = [_torch(hh) for hh in hosts], torch.tensor(x0, requires_grad=True)
    th = tx
    for p in tps:
        th = torch_checkpoint(lambda z, p=p: _block(torch, z, p), th, use_reentrant=False)
    (th * th).sum().backward()

    missing = [k for p in ps for k, t in p.items() if t.grad is None]
    assert not missing, f"{len(missing)} of {2 * len(hosts[0])} parameters got no gradient"
    _close(x.grad, tx.grad)
    for p, tp in zip(ps, tps, strict=True):
        for k in p:
            _close(p[k].grad, tp[k].grad)


class _Block(gx.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.ln = gx.nn.LayerNorm(D)
        self.fc1 = gx.nn.Linear(D, H)
        self.fc2 = gx.nn.Linear(H, D)

    def forward(self, h):
        return h + self.fc2(gx.tanh(self.fc1(self.ln(h))))


class _Net(gx.nn.Module):
    def __init__(self, n: int, checkpointed: bool) -> None:
        super().__init__()
        self.blocks = gx.nn.ModuleList([_Block() for _ in range(n)])
        self.checkpointed = checkpointed

    def forward(self, h):
        for b in self.blocks:
            h = gx.checkpoint(b)(h) if self.checkpointed else b(h)
        return h


def test_every_module_parameter_gets_its_gradient(backend):
    with gx.default_dtype("float64"):
        gx.random.seed(1)
        wrapped = _Net(5, True)
        gx.random.seed(1)
        plain = _Net(5, False)
    x = gx.tensor(np.random.default_rng(2).standard_normal((T, D)))
    gx.sum(gx.sin(wrapped(x))).backward()
    gx.sum(gx.sin(plain(x))).backward()
    named = dict(wrapped.named_parameters())
    missing = [k for k, p in named.items() if p.grad is None]
    assert not missing, f"{len(missing)} of {len(named)} parameters got no gradient: {missing}"
    for p, q in zip(named.values(), plain.parameters(), strict=True):
        _close(p.grad, q.grad.numpy())


def test_closed_over_interior_tensor_and_keyword_and_container_arguments(backend):
    rng = np.random.default_rng(3)
    a0, w0, y0, s0, u0 = (rng.standard_normal(s) for s in [(3, 3), (3, 3), (3, 3), (3,), (3,)])

    def run(lib, ck, make):
        a, w, y, s, u = (make(v) for v in (a0, w0, y0, s0, u0))
        h = lib.tanh(a @ w)  # computed outside the block, closed over: an interior tensor

        def f(z, *, scale, pair):
            return lib.sin(z * h) * scale + pair[0] * pair[1] @ w

        out = ck(f)(y, scale=s, pair=[u, y])
        (out * out).sum().backward()
        return [t.grad for t in (a, w, y, s, u)]

    got = run(gx, gx.checkpoint, lambda v: gx.tensor(v, requires_grad=True))
    want = run(torch, lambda f: lambda *a, **k: torch_checkpoint(f, *a, use_reentrant=False,
                                                                  **k),
               lambda v: torch.tensor(v, requires_grad=True))
    for g, t in zip(got, want, strict=True):
        _close(g, t)


def test_one_tensor_passed_and_closed_over(backend):
    w = gx.tensor(np.array([1.5, -2.0]), requires_grad=True)
    gx.sum(gx.checkpoint(lambda a: a * w * w)(w)).backward()  # d/dw of w^3
    _close(w.grad, 3 * np.array([1.5, -2.0]) ** 2)


def test_nested_checkpoints_match_torch(backend):
    rng = np.random.default_rng(4)
    host, x0 = _host_params(rng), rng.standard_normal((T, D))
    w0 = rng.standard_normal((D, D))

    def run(lib, ck, make):
        p, x, w = {k: make(v) for k, v in host.items()}, make(x0), make(w0)

        def inner(z):
            return lib.tanh(z @ w)

        def outer(z):
            return ck(inner)(_block(lib, ck(inner)(z), p))

        out = ck(outer)(x)
        (out * out).sum().backward()
        return [x.grad, w.grad] + [p[k].grad for k in host]

    got = run(gx, gx.checkpoint, lambda v: gx.tensor(v, requires_grad=True))
    want = run(torch, lambda f: lambda z: torch_checkpoint(f, z, use_reentrant=False),
               lambda v: torch.tensor(v, requires_grad=True))
    for g, t in zip(got, want, strict=True):
        _close(g, t)


def test_checkpoint_inside_grad_over_closed_over_parameters(backend):
    rng = np.random.default_rng(5)
    host, x0 = _host_params(rng), rng.standard_normal((T, D))

    def loss(x, p):  # the block closes over p, one of the transform's own inputs
        return gx.sum(gx.checkpoint(lambda z: _block(gx, z, p))(x) ** 2)

    gx_, grads = gx.grad(loss, argnums=(0, 1))(gx.tensor(x0),
                                                {k: gx.tensor(v) for k, v in host.items()})
    tp, tx = _torch(host), torch.tensor(x0, requires_grad=True)
    tl = (torch_checkpoint(lambda z: _block(torch, z, tp), tx, use_reentrant=False) ** 2).sum()
    tgrads = torch.autograd.grad(tl, [tx, *tp.values()])
    _close(gx_, tgrads[0])
    for k, t in zip(host, tgrads[1:], strict=True):
        _close(grads[k], t)


def test_checkpoint_inside_vjp_over_a_closed_over_input(backend):
    rng = np.random.default_rng(15)
    w0, x0 = rng.standard_normal((3, 2)), rng.standard_normal((4, 3))
    f = lambda w, x: gx.checkpoint(lambda h: gx.tanh(h @ w))(x)  # noqa: E731
    out, vjp_fn = gx.vjp(f, gx.tensor(w0), gx.tensor(x0))
    gw, gx_ = vjp_fn(gx.ones_like(out))  # after vjp returned: w no longer requires grad
    tw, tx = torch.tensor(w0, requires_grad=True), torch.tensor(x0, requires_grad=True)
    torch_checkpoint(lambda h: torch.tanh(h @ tw), tx, use_reentrant=False).sum().backward()
    _close(gw, tw.grad)
    _close(gx_, tx.grad)


# -- second order --------------------------------------------------------------------------

def test_create_graph_records_through_checkpoint(backend):
    rng = np.random.default_rng(6)
    x0, w0, u0, v0 = (rng.standard_normal((3, 3)) for _ in range(4))

    x, w = gx.tensor(x0, requires_grad=True), gx.tensor(w0, requires_grad=True)
    out = gx.checkpoint(lambda z: gx.tanh(z @ w) * z)(x)
    gx.sum(gx.sin(out)).backward(create_graph=True)
    gx_, gw = x.grad, w.grad
    assert gx_.requires_grad and gw.requires_grad, "create_graph recorded nothing"
    x.grad = w.grad = None
    gx.sum(gx_ * gx.tensor(u0) + gw * gx.tensor(v0)).backward()

    tx, tw = torch.tensor(x0, requires_grad=True), torch.tensor(w0, requires_grad=True)
    tout = torch_checkpoint(lambda z: torch.tanh(z @ tw) * z, tx, use_reentrant=False)
    tgx, tgw = torch.autograd.grad(torch.sin(tout).sum(), [tx, tw], create_graph=True)
    (tgx * torch.tensor(u0) + tgw * torch.tensor(v0)).sum().backward()
    _close(gx_.detach(), tgx)
    _close(gw.detach(), tgw)
    _close(x.grad, tx.grad)  # second-order terms through the checkpoint
    _close(w.grad, tw.grad)


def test_hessian_through_checkpoint_with_closed_over_tensor(backend):
    rng = np.random.default_rng(7)
    x0, w0 = rng.standard_normal(3), rng.standard_normal((3, 3))
    w = gx.tensor(w0)

    def f(x):
        return gx.sum(gx.checkpoint(lambda z: gx.tanh(w @ z) ** 3)(x))

    got = gx.hessian(f)(gx.tensor(x0))
    tw = torch.tensor(w0)
    want = torch.autograd.functional.hessian(
        lambda z: torch_checkpoint(lambda a: torch.tanh(tw @ a) ** 3, z,
                                   use_reentrant=False).sum(), torch.tensor(x0))
    _close(got, want)


def test_forward_mode_through_checkpoint(backend):
    rng = np.random.default_rng(8)
    x0, t0, w0 = rng.standard_normal(3), rng.standard_normal(3), rng.standard_normal((3, 3))
    w = gx.tensor(w0, requires_grad=True)  # closed over, not differentiated here

    def f(x):
        return gx.sin(w @ x) * x

    _, got = gx.jvp(lambda x: gx.checkpoint(f)(x), (gx.tensor(x0),), (gx.tensor(t0),))
    _, want = torch.func.jvp(lambda x: torch.sin(torch.tensor(w0) @ x) * x,
                             (torch.tensor(x0),), (torch.tensor(t0),))
    _close(got, want)


def test_hvp_through_checkpoint_with_an_input_the_block_ignores(backend):
    a0, y0, t0 = np.array([1.0, 2.0]), np.array([0.5, 0.3]), np.array([1.0, -2.0])
    a = gx.tensor(a0)

    def f(y):  # v never reaches the block's output: its VJP ignores the cotangent
        return gx.sum(gx.checkpoint(lambda u, v: gx.sin(u) * 2.0)(a, y) * y ** 2)

    (got,) = gx.hvp(f, (gx.tensor(y0),), (gx.tensor(t0),))
    _, want = torch.autograd.functional.hvp(
        lambda y: (torch.sin(torch.tensor(a0)) * 2.0 * y ** 2).sum(), torch.tensor(y0),
        torch.tensor(t0))
    _close(got, want)


# -- random state ----------------------------------------------------------------------------

def test_dropout_mask_is_the_one_the_forward_pass_used(backend):
    rng = np.random.default_rng(9)
    w0, x0 = rng.standard_normal((8, 8)), rng.standard_normal((4, 8))

    def step(checkpointed: bool):
        gx.random.seed(11)
        w = gx.tensor(w0, requires_grad=True)
        x = gx.tensor(x0, requires_grad=True)
        block = lambda h: F.dropout(gx.tanh(h @ w), p=0.5) @ w  # noqa: E731
        out = (gx.checkpoint(block) if checkpointed else block)(x)
        gx.sum(out * out).backward()
        return out.numpy(), x.grad.numpy(), w.grad.numpy(), gx.random.rand(4).numpy()

    wrapped, plain = step(True), step(False)
    for a, b in zip(wrapped, plain, strict=True):
        _close(a, b, rtol=1e-12, atol=1e-14)  # the last: draws after backward are unmoved
    gx.random.seed(12)
    other = gx.checkpoint(lambda h: F.dropout(h, p=0.5))(gx.tensor(x0, requires_grad=True))
    assert not np.array_equal(other.numpy(), wrapped[0]), "the mask does not depend on the seed"


def test_random_state_round_trip_and_bad_states():
    state = gx.random.get_state()
    a = gx.random.normal((5,)).numpy()
    gx.random.uniform((3,))
    gx.random.set_state(state)
    np.testing.assert_array_equal(gx.random.normal((5,)).numpy(), a)
    state["state"]["state"] += 1  # a copy: changing it leaves the generator alone
    gx.random.set_state(gx.random.get_state())
    with pytest.raises(gx.ArgumentError, match="get_state"):
        gx.random.set_state({"bit_generator": "MT19937"})
    with pytest.raises(gx.ArgumentError, match="get_state"):
        gx.random.set_state(42)


def test_recompute_failure_restores_random_state(backend):
    calls = []

    def f(h):
        calls.append(1)
        gx.random.uniform((2,))
        if len(calls) == 2:
            raise ValueError("recompute fails")
        return gx.sin(h)

    y = gx.checkpoint(f)(gx.tensor(np.ones(2), requires_grad=True))
    before = gx.random.get_state()
    with pytest.raises(Exception, match="recompute fails"):
        gx.sum(y).backward()
    assert gx.random.get_state() == before


# -- memory ----------------------------------------------------------------------------------

def _kept_per_loss(backend_name, make_loss, n=3):
    """Bytes traced as still allocated per loss kept alive after its backward."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        kept = [make_loss() for _ in range(n)]
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert len(kept) == n
    return grown / n


@pytest.mark.parametrize("how", ["backward", "pruned_vjp"])
def test_recomputed_gradients_are_freed_once_used(backend, how):
    if backend != "numpy":
        pytest.skip("tracemalloc sees NumPy's allocations")
    rng = np.random.default_rng(10)
    w = gx.tensor(rng.standard_normal((128, 128)), requires_grad=True)
    x0 = rng.standard_normal((128, 128))
    array = x0.nbytes

    def make(ck: bool):
        block = lambda h: gx.tanh(h @ w)  # noqa: E731
        f = gx.checkpoint(block) if ck else block
        if how == "backward":
            x = gx.tensor(x0, requires_grad=True)
            loss = gx.sum(f(x))
            loss.backward()
            x.grad = w.grad = None
            return loss
        # only x's gradient is asked for: the walk skips w, whose gradient must not linger
        out, vjp_fn = gx.vjp(f, gx.tensor(x0))
        vjp_fn(gx.ones_like(out))
        return out, vjp_fn

    make(True), make(False)  # warm caches
    wrapped, plain = _kept_per_loss(backend, lambda: make(True)), _kept_per_loss(
        backend, lambda: make(False))
    # a retained checkpoint output may hold its own output array (as the plain graph's output
    # does) but no gradient of its inputs or cotangent
    assert wrapped <= plain + 0.25 * array, (
        f"checkpoint keeps {wrapped / 2**20:.3f} MB per retained loss, the plain graph "
        f"{plain / 2**20:.3f} MB")


# -- the recorder leaves the fast path as it found it ------------------------------------

@pytest.fixture
def finish_calls(monkeypatch):
    """Count the calls of _primitive._finish on either hot path (the compiled one holds the
    function object itself, so its code is swapped for a counting one)."""
    fn = _primitive._finish
    original = types.FunctionType(fn.__code__, fn.__globals__, "finish_original",
                                  fn.__defaults__, fn.__closure__)
    count = [0]
    monkeypatch.setitem(fn.__globals__, "_FINISH_SPY", (original, count))

    def counting(prim, args, kwargs, ans, backend, argnums, parents, raw):
        spy_original, spy_count = _FINISH_SPY  # noqa: F821 (set in the module's globals)
        spy_count[0] += 1
        return spy_original(prim, args, kwargs, ans, backend, argnums, parents, raw)

    code = fn.__code__
    fn.__code__ = counting.__code__
    try:
        yield count
    finally:
        fn.__code__ = code


@pytest.fixture
def clean_hook_count():
    """Start from no recorder counted, whatever an earlier test installed without removing."""
    saved = _primitive._HOOKS[0], _primitive._HOOKED[0]
    _primitive._HOOKS[0], _primitive._HOOKED[0] = 0, False
    try:
        yield
    finally:
        _primitive._HOOKS[0], _primitive._HOOKED[0] = saved


def test_recorder_flag_drops_back_and_dispatch_takes_the_fast_path(backend, finish_calls,
                                                                   clean_hook_count):
    x = gx.tensor(np.ones(3), requires_grad=True)
    w = gx.tensor(np.ones(3), requires_grad=True)
    gx.sum(gx.checkpoint(lambda h: gx.sin(h) * w)(x)).backward()
    with pytest.raises(ValueError, match="inside"):
        gx.checkpoint(lambda h: (_ for _ in ()).throw(ValueError("inside")))(x)
    gx.testing.compare_backends(lambda a: gx.sin(a) * 2, np.ones(3), backends=(backend,),
                                per_op=True)
    assert _primitive._HOOKED[0] is False and _primitive._HOOKS[0] == 0
    finish_calls[0] = 0
    gx.sin(x) * x  # noqa: B018
    assert finish_calls[0] == 0, "dispatch still goes through _finish after the recorders left"
    seen = []
    token = _primitive.install_recorder(lambda prim, *_: seen.append(prim.name))
    try:
        gx.sin(x) * x  # noqa: B018
    finally:
        _primitive.remove_recorder(token)
    assert seen == ["sin", "multiply"] and finish_calls[0] == 2
    assert _primitive._HOOKED[0] is False


def test_checkpoint_chains_to_an_installed_recorder(backend):
    seen = []
    token = _primitive.install_recorder(lambda prim, *_: seen.append(prim.name))
    try:
        w = gx.tensor(np.ones(3), requires_grad=True)
        gx.checkpoint(lambda h: gx.sin(h) * w)(gx.tensor(np.ones(3), requires_grad=True))
    finally:
        _primitive.remove_recorder(token)
    assert seen == ["sin", "multiply", "checkpoint"]


def test_blocks_on_two_backends_are_refused():
    if "array_api_strict" not in gx.available_backends():
        pytest.skip("array_api_strict not installed")
    w = gx.tensor(np.ones(3), requires_grad=True, backend="numpy")
    x = gx.tensor(np.ones(3), requires_grad=True, backend="array_api_strict")
    with pytest.raises(gx.BackendMismatchError, match="checkpoint"):
        gx.checkpoint(lambda h: (h.to("numpy") * w).to("array_api_strict"))(x)


# -- functional_call -----------------------------------------------------------------------

def _net_and_params(rng):
    with gx.default_dtype("float64"):
        net = gx.nn.Sequential(gx.nn.Linear(D, H), gx.nn.Tanh(), gx.nn.Linear(H, D))
    new = {k: gx.tensor(rng.standard_normal(p.shape), requires_grad=True)
           for k, p in net.named_parameters()}
    return net, new


def test_functional_call_uses_the_given_tensors_and_restores(backend):
    rng = np.random.default_rng(11)
    net, new = _net_and_params(rng)
    own = dict(net.named_parameters())
    x = gx.tensor(rng.standard_normal((T, D)))
    out = gx.nn.functional_call(net, new, x)
    assert all(a is b for a, b in zip(own.values(), net.parameters(), strict=True))
    gx.sum(out * out).backward()
    assert all(p.grad is None for p in own.values())

    tnet = torch.nn.Sequential(torch.nn.Linear(D, H), torch.nn.Tanh(), torch.nn.Linear(H, D))
    tnet = tnet.double()
    tnew = {k: torch.tensor(v.numpy().copy(), requires_grad=True) for k, v in new.items()}
    tout = torch.func.functional_call(tnet, tnew, (torch.tensor(x.numpy()),))
    (tout * tout).sum().backward()
    for k in new:
        _close(new[k].grad, tnew[k].grad)
    assert gx.nn.functional.functional_call is gx.nn.functional_call


def test_functional_call_through_grad_and_checkpoint(backend):
    rng = np.random.default_rng(12)
    net, new = _net_and_params(rng)
    x = gx.tensor(rng.standard_normal((T, D)))

    def loss(p, ck):
        call = lambda h: gx.nn.functional_call(net, p, h)  # noqa: E731
        return gx.sum((gx.checkpoint(call) if ck else call)(x) ** 2)

    plain = gx.grad(loss)(new, False)
    wrapped = gx.grad(loss)(new, True)
    for k in new:
        _close(wrapped[k], plain[k].numpy())


class _CheckpointedInside(gx.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = gx.nn.Linear(D, D)

    def forward(self, h):  # reads self.fc's parameters when the block runs
        return gx.checkpoint(lambda z: gx.tanh(self.fc(z)))(h)


def test_checkpoint_inside_functional_call_recomputes_with_the_same_tensors(backend):
    rng = np.random.default_rng(13)
    with gx.default_dtype("float64"):
        net = _CheckpointedInside()
    new = {k: gx.tensor(rng.standard_normal(p.shape), requires_grad=True)
           for k, p in net.named_parameters()}
    x = gx.tensor(rng.standard_normal((T, D)), requires_grad=True)
    gx.sum(gx.nn.functional_call(net, new, x) ** 2).backward()  # backward after the restore
    got = {k: t.grad.numpy() for k, t in new.items()}
    got["x"] = x.grad.numpy()
    assert all(p.grad is None for p in net.parameters())
    for t in [*new.values(), x]:
        t.grad = None
    with gx.default_dtype("float64"):
        plain = gx.nn.Linear(D, D)
    plain.weight, plain.bias = new["fc.weight"], new["fc.bias"]
    gx.sum(gx.tanh(plain(x)) ** 2).backward()
    for k, t in [*new.items(), ("x", x)]:
        _close(got[k], t.grad.numpy())


def test_functional_call_restores_after_an_error_and_checks_names(backend):
    rng = np.random.default_rng(14)
    net, new = _net_and_params(rng)
    own = list(net.parameters())
    with pytest.raises(gx.ShapeError):
        gx.nn.functional_call(net, new, gx.tensor(np.ones((2, D + 1))))
    assert all(a is b for a, b in zip(own, net.parameters(), strict=True))
    with pytest.raises(gx.StateDictError, match="no parameter or buffer named"):
        gx.nn.functional_call(net, {"0.wieght": new["0.weight"]}, gx.ones((2, D)))
    with pytest.raises(gx.ArgumentError, match="must be a Tensor"):
        gx.nn.functional_call(net, {"0.weight": np.ones((H, D))}, gx.ones((2, D)))
    with pytest.raises(gx.ArgumentError, match="Module"):
        gx.nn.functional_call(lambda h: h, {}, gx.ones((2, D)))
    assert all(a is b for a, b in zip(own, net.parameters(), strict=True))


def test_functional_call_replaces_a_tied_tensor_under_every_name(backend):
    with gx.default_dtype("float64"):
        a, b = gx.nn.Linear(D, D), gx.nn.Linear(D, D)
    b.weight = a.weight  # tied
    net = gx.nn.Sequential(a, b)
    new = gx.tensor(np.eye(D) * 2.0, requires_grad=True)
    x = gx.tensor(np.ones((1, D)))
    out = gx.nn.functional_call(net, {"0.weight": new}, x)
    want = (x.numpy() @ new.numpy().T + a.bias.numpy()) @ new.numpy().T + b.bias.numpy()
    _close(out, want)
    with pytest.raises(gx.ArgumentError, match="tied"):
        gx.nn.functional_call(net, {"0.weight": new, "1.weight": new * 1.0}, x)


@pytest.mark.parametrize("update", ["setitem", "imul", "no_grad_imul"])
def test_a_closed_over_tensor_updated_after_the_forward_pass_is_refused(update):
    """The recomputation must not read a closed-over tensor's later value: a recorded
    in-place update rebinds it (refused by name), an unrecorded one writes its memory (the
    node's version check)."""
    x = gx.tensor([0.3, 0.7], dtype="float64", requires_grad=True)
    y = x * 2.0
    z = gx.checkpoint(lambda u: gx.sin(u) * y)(x)
    if update == "setitem":
        y[0] = -2.0
    elif update == "imul":
        y *= 3.0
    else:
        with gx.no_grad():
            y *= 3.0
    with pytest.raises(gx.GraphError, match="in place"):
        (z.sum() + y.sum()).backward()
