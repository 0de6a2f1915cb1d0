"""Normalization, fused activations, attention and masks against PyTorch (float64): values,
gradients of inputs and parameters, forward mode (gx.jvp vs torch.func.jvp) and second order;
layers loaded from a torch state_dict; named errors for bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradx as gx
import gradx.nn.functional as F
from gradx.ops.activations import erf_array_api

torch = pytest.importorskip("torch")
TF = torch.nn.functional
TOL = {"rtol": 1e-10, "atol": 1e-12}


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _close(a, b, **tol) -> None:
    a = a.numpy() if isinstance(a, gx.Tensor) else np.asarray(a)
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    np.testing.assert_allclose(a, b, **(tol or TOL))


def _both(arrays, grad=True):
    """The same float64 values as gradx tensors (current backend) and torch tensors."""
    gs = [None if a is None else gx.tensor(a, requires_grad=grad and a.dtype.kind == "f")
          for a in arrays]
    ts = [None if a is None else torch.tensor(a, requires_grad=grad and a.dtype.kind == "f")
          for a in arrays]
    return gs, ts


def _match(gfn, tfn, arrays, seed=1, tol=None):
    """Outputs, and gradients of every float input for one random cotangent, agree."""
    gs, ts = _both(arrays)
    go, to = gfn(*gs), tfn(*ts)
    _close(go, to, **(tol or {}))
    v = _rng(seed).standard_normal(tuple(to.shape))
    (go * gx.tensor(v)).sum().backward()
    (to * torch.tensor(v)).sum().backward()
    for g, t in zip(gs, ts, strict=True):
        if t is not None and t.requires_grad:
            assert g.grad is not None
            _close(g.grad, t.grad, **(tol or {}))


def _match_jvp_and_hvp(gfn, tfn, arrays, seed=2):
    """Forward mode (jvp) and a Hessian-vector product of <f, v> agree with torch."""
    rng = _rng(seed)
    us = [rng.standard_normal(a.shape) for a in arrays]
    gp = tuple(gx.tensor(a) for a in arrays)
    tp = tuple(torch.tensor(a) for a in arrays)
    _, gt = gx.jvp(gfn, gp, tuple(gx.tensor(u) for u in us))
    _, tt = torch.func.jvp(tfn, tp, tuple(torch.tensor(u) for u in us))
    _close(gt, tt)
    v = rng.standard_normal(tuple(tt.shape))
    argnums = tuple(range(len(arrays)))

    def g_inner(*xs):
        return gx.sum(gfn(*xs) * gx.tensor(v))

    def g_dir(*xs):  # <grad <f, v>, u>
        grads = gx.grad(g_inner, argnums=argnums)(*xs)
        return sum(gx.sum(g * gx.tensor(u)) for g, u in zip(grads, us, strict=True))

    g_h = gx.grad(g_dir, argnums=argnums)(*gp)
    xs = [torch.tensor(a, requires_grad=True) for a in arrays]
    grads = torch.autograd.grad((tfn(*xs) * torch.tensor(v)).sum(), xs, create_graph=True)
    t_h = torch.autograd.grad(sum((g * torch.tensor(u)).sum() for g, u in
                                  zip(grads, us, strict=True)), xs, allow_unused=True)
    for a, b, x in zip(g_h, t_h, arrays, strict=True):
        _close(np.zeros(x.shape) if a is None else a, np.zeros(x.shape) if b is None else b,
               rtol=1e-9, atol=1e-10)


# -- activations ---------------------------------------------------------------------------

_SPECIAL = np.array([0.0, -0.0, 1e-8, -3.0, 2.5, 19.9, 20.1, 30.0, -30.0, 0.7])
ACTIVATIONS = [
    ("gelu", F.gelu, TF.gelu),
    ("gelu-tanh", lambda x: F.gelu(x, approximate="tanh"),
     lambda x: TF.gelu(x, approximate="tanh")),
    ("silu", F.silu, TF.silu),
    ("softplus", F.softplus, TF.softplus),
    ("softplus-beta-threshold", lambda x: F.softplus(x, beta=2.5, threshold=4.0),
     lambda x: TF.softplus(x, beta=2.5, threshold=4.0)),
    ("elu", lambda x: F.elu(x, alpha=0.7), lambda x: TF.elu(x, alpha=0.7)),
    ("leaky_relu", lambda x: F.leaky_relu(x, 0.03), lambda x: TF.leaky_relu(x, 0.03)),
    ("erf", gx.erf, torch.erf),
]


@pytest.mark.parametrize("case", ACTIVATIONS, ids=[c[0] for c in ACTIVATIONS])
def test_activation_matches_torch(backend, case):
    _, gfn, tfn = case
    x = np.concatenate([_rng(3).standard_normal(17) * 3.0, _SPECIAL])
    _match(gfn, tfn, [x])
    smooth = _rng(4).standard_normal((2, 3)) * 2.0  # away from kinks and thresholds
    _match_jvp_and_hvp(gfn, tfn, [smooth])


def test_activations_are_single_nodes():
    x = gx.tensor(_rng().standard_normal(5), requires_grad=True)
    for fn in (F.gelu, lambda t: F.gelu(t, approximate="tanh"), F.silu, F.softplus, F.elu,
               F.leaky_relu):
        assert fn(x)._node.parents == (x,)


def test_activation_float32_extremes():
    x = gx.tensor(np.array([1e4, -1e4, 0.0, 3.0], dtype=np.float32), requires_grad=True)
    for fn, tfn in ((F.gelu, TF.gelu), (F.silu, TF.silu), (F.elu, TF.elu)):
        y = fn(x)
        y.sum().backward()
        t = torch.tensor(x.numpy(), requires_grad=True)
        tfn(t).sum().backward()
        _close(y, tfn(t), rtol=1e-6, atol=1e-6)
        _close(x.grad, t.grad, rtol=1e-6, atol=1e-6)
        assert np.isfinite(x.grad.numpy()).all()
        x.grad = None


def test_erf_array_api_to_float64_rounding():
    """The Array API erf (array_api_strict, CuPy without cupyx) against math.erf: within a
    few units in the last place everywhere, exact at 0 and +-inf, NaN kept."""
    x = np.concatenate([np.linspace(-7.0, 7.0, 20001), [0.46875, -0.46875, 4.0, 6.0, 1e-300]])
    got = erf_array_api(x)
    ref = np.array([math.erf(v) for v in x])
    ulps = np.abs(got - ref) / np.spacing(np.abs(ref))
    assert ulps.max() <= 4, (ulps.max(), x[np.argmax(ulps)])
    edge = erf_array_api(np.array([0.0, np.inf, -np.inf, np.nan]))
    assert edge[0] == 0.0 and edge[1] == 1.0 and edge[2] == -1.0 and np.isnan(edge[3])
    f32 = erf_array_api(x.astype(np.float32))
    assert f32.dtype == np.float32
    np.testing.assert_allclose(f32, ref, atol=3e-7)


def test_gelu_on_array_api_strict_matches_numpy():
    x = _rng(5).standard_normal(50) * 4
    with gx.use_backend("array_api_strict"):
        a = F.gelu(gx.tensor(x)).numpy()
    np.testing.assert_allclose(a, F.gelu(gx.tensor(x, backend="numpy")).numpy(), rtol=1e-15,
                               atol=4e-16)


# -- layer_norm ----------------------------------------------------------------------------

LN_CASES = [((2, 3, 5), (5,), True), ((4, 6), (4, 6), True), ((1, 7), (7,), False),
            ((3, 1, 2, 3), (2, 3), True), ((2, 1), (1,), True)]


@pytest.mark.parametrize("shape,normalized,affine", LN_CASES)
def test_layer_norm_matches_torch(backend, shape, normalized, affine):
    rng = _rng(6)
    x = rng.standard_normal(shape) * 3 + 1.5
    w = rng.standard_normal(normalized) if affine else None
    b = rng.standard_normal(normalized) if affine else None
    _match(lambda x, w, b: F.layer_norm(x, normalized, w, b, eps=1e-4),
           lambda x, w, b: TF.layer_norm(x, normalized, w, b, eps=1e-4), [x, w, b])
    if affine:
        _match_jvp_and_hvp(lambda x, w, b: F.layer_norm(x, normalized, w, b),
                           lambda x, w, b: TF.layer_norm(x, normalized, w, b), [x, w, b])
    else:
        _match_jvp_and_hvp(lambda x: F.layer_norm(x, normalized),
                           lambda x: TF.layer_norm(x, normalized), [x])


def test_layer_norm_is_one_node_and_half_accumulates_in_float32():
    x = gx.tensor(_rng().standard_normal((2, 8)), requires_grad=True)
    assert F.layer_norm(x, 8)._node.parents == (x,)
    big = (_rng(7).standard_normal((3, 64)) * 300).astype(np.float16)  # squares overflow f16
    w = _rng(8).standard_normal(64).astype(np.float16)
    for weight in (None, w):
        out = F.layer_norm(gx.tensor(big), 64, None if weight is None else gx.tensor(weight))
        ref = TF.layer_norm(torch.tensor(big).float(), (64,),
                            None if weight is None else torch.tensor(weight).float()).half()
        assert out.dtype == gx.tensor(big).dtype
        _close(out, ref, rtol=1e-3, atol=1e-3)
    xs = gx.tensor(big, requires_grad=True)
    F.layer_norm(xs, 64).sum().backward()
    assert xs.grad.dtype == xs.dtype and np.isfinite(xs.grad.numpy()).all()


def test_layer_norm_both_hot_paths(hot_path):
    x = _rng(9).standard_normal((3, 4, 6))
    w, b = _rng(10).standard_normal(6), _rng(11).standard_normal(6)
    _match(lambda x, w, b: F.layer_norm(x, 6, w, b), lambda x, w, b: TF.layer_norm(x, (6,), w, b),
           [x, w, b])


# -- batch_norm ----------------------------------------------------------------------------

BN_SHAPES = [(5, 3), (4, 3, 7), (2, 3, 4, 5), (1, 2, 9), (6, 1, 2, 2)]


@pytest.mark.parametrize("shape", BN_SHAPES)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_functional_train_and_eval(backend, shape, affine):
    rng = _rng(12)
    c = shape[1]
    x = rng.standard_normal(shape) * 2 + 0.5
    w = rng.standard_normal(c) if affine else None
    b = rng.standard_normal(c) if affine else None
    rm0, rv0 = rng.standard_normal(c), rng.random(c) + 0.5
    grm, grv = gx.tensor(rm0.copy()), gx.tensor(rv0.copy())
    trm, trv = torch.tensor(rm0.copy()), torch.tensor(rv0.copy())
    _match(lambda x, w, b: F.batch_norm(x, grm, grv, w, b, training=True, momentum=0.3),
           lambda x, w, b: TF.batch_norm(x, trm, trv, w, b, training=True, momentum=0.3),
           [x, w, b])
    _close(grm, trm)
    _close(grv, trv)  # unbiased variance in the running update, as PyTorch
    _match(lambda x, w, b: F.batch_norm(x, grm, grv, w, b, eps=1e-3),
           lambda x, w, b: TF.batch_norm(x, trm, trv, w, b, eps=1e-3), [x, w, b])
    _close(grm, trm)  # eval leaves the running statistics alone


def test_batch_norm_jvp_and_second_order(backend):
    rng = _rng(13)
    args = [rng.standard_normal((4, 3, 2)), rng.standard_normal(3), rng.standard_normal(3)]
    _match_jvp_and_hvp(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                       lambda x, w, b: TF.batch_norm(x, None, None, w, b, training=True), args)
    args = [rng.standard_normal((2, 4, 3)), rng.standard_normal(4), rng.standard_normal(4)]
    _match_jvp_and_hvp(lambda x, w, b: F.group_norm(x, 2, w, b),
                       lambda x, w, b: TF.group_norm(x, 2, w, b), args)


@pytest.mark.parametrize("cls,shape", [("BatchNorm1d", (6, 3)), ("BatchNorm1d", (4, 3, 5)),
                                       ("BatchNorm2d", (3, 3, 4, 2)),
                                       ("BatchNorm2d", (1, 1, 3, 3))])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm_layers_track_and_load_like_torch(backend, cls, shape, momentum):
    c = shape[1]
    tm = getattr(torch.nn, cls)(c, momentum=momentum).double()
    gm = getattr(gx.nn, cls)(c, momentum=momentum, dtype="float64")
    assert list(gm.state_dict()) == list(tm.state_dict())
    rng = _rng(14)
    with torch.no_grad():
        tm.weight.copy_(torch.tensor(rng.standard_normal(c)))
        tm.bias.copy_(torch.tensor(rng.standard_normal(c)))
    gm.load_state_dict(tm.state_dict())
    for step in range(3):
        x = rng.standard_normal(shape) * (step + 1)
        _match(gm, tm, [x])
    for k, v in tm.state_dict().items():
        _close(gm.state_dict()[k], v)
    fresh = getattr(gx.nn, cls)(c, dtype="float64")
    fresh.load_state_dict(tm.state_dict())
    fresh.eval()
    tm.eval()
    x = rng.standard_normal(shape)
    _match(fresh, tm, [x])
    assert int(fresh.num_batches_tracked.item()) == 0 + 3  # loaded, then eval: unchanged


def test_batchnorm_without_running_stats_and_without_affine(backend):
    tm = torch.nn.BatchNorm1d(3, affine=False, track_running_stats=False).double()
    gm = gx.nn.BatchNorm1d(3, affine=False, track_running_stats=False, dtype="float64")
    assert list(gm.state_dict()) == list(tm.state_dict()) == []
    x = _rng(15).standard_normal((4, 3, 2))
    _match(gm, tm, [x])
    gm.eval()
    tm.eval()
    _match(gm, tm, [x])  # still batch statistics


@pytest.mark.parametrize("shape,groups", [((2, 6, 5), 3), ((1, 4, 3, 3), 1), ((3, 5), 5),
                                          ((2, 3, 1, 7), 3)])
def test_group_norm_matches_torch(backend, shape, groups):
    rng = _rng(16)
    c = shape[1]
    tm = torch.nn.GroupNorm(groups, c, eps=1e-4).double()
    gm = gx.nn.GroupNorm(groups, c, eps=1e-4, dtype="float64")
    with torch.no_grad():
        tm.weight.copy_(torch.tensor(rng.standard_normal(c)))
        tm.bias.copy_(torch.tensor(rng.standard_normal(c)))
    gm.load_state_dict(tm.state_dict())
    x = rng.standard_normal(shape) * 2 - 1
    gs, ts = _both([x])
    _close(gm(gs[0]), tm(ts[0]))
    v = rng.standard_normal(shape)
    (gm(gs[0]) * gx.tensor(v)).sum().backward()
    (tm(ts[0]) * torch.tensor(v)).sum().backward()
    _close(gs[0].grad, ts[0].grad)
    _close(gm.weight.grad, tm.weight.grad)
    _close(gm.bias.grad, tm.bias.grad)


# -- attention -----------------------------------------------------------------------------

def _bool_mask(shape, seed, dead_row=False):
    m = _rng(seed).random(shape) > 0.35
    m[..., 0] = True
    if dead_row:
        m[..., 1, :] = False
    return m


SDPA_CASES = [
    ("plain", (2, 3, 4, 5), (2, 3, 6, 5), 7, {}),
    ("batch1-3d", (1, 5, 4), (1, 5, 4), 4, {}),
    ("causal-short", (2, 2, 3, 4), (2, 2, 5, 4), 3, {"is_causal": True}),
    ("causal-long", (1, 2, 6, 4), (1, 2, 4, 4), 4, {"is_causal": True}),
    ("bool-2d", (2, 2, 4, 3), (2, 2, 6, 3), 3, {"attn_mask": ("bool", (4, 6))}),
    ("bool-4d", (2, 2, 4, 3), (2, 2, 6, 3), 3, {"attn_mask": ("bool", (2, 1, 4, 6))}),
    ("bool-dead-row", (2, 2, 4, 3), (2, 2, 6, 3), 3, {"attn_mask": ("dead", (4, 6))}),
    ("float", (2, 2, 4, 3), (2, 2, 6, 3), 5, {"attn_mask": ("float", (2, 2, 4, 6))}),
    ("scale-odd", (3, 1, 5), (3, 1, 5), 2, {"scale": 0.37}),
]


@pytest.mark.parametrize("case", SDPA_CASES, ids=[c[0] for c in SDPA_CASES])
def test_sdpa_matches_torch(backend, case):
    _, qs, ks, ev, kw = case
    rng = _rng(17)
    q, k = rng.standard_normal(qs), rng.standard_normal(ks)
    v = rng.standard_normal(ks[:-1] + (ev,))
    arrays = [q, k, v]
    kw = dict(kw)
    mask = kw.pop("attn_mask", None)
    if mask is not None:
        kind, shape = mask
        m = (_bool_mask(shape, 18, kind == "dead") if kind != "float"
             else rng.standard_normal(shape))
        arrays.append(m)

    def g(q, k, v, m=None):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=m, dropout_p=0.0, **kw)

    def t(q, k, v, m=None):
        return TF.scaled_dot_product_attention(q, k, v, attn_mask=m, dropout_p=0.0, **kw)

    _match(g, t, arrays)
    if mask is None or mask[0] == "float":  # torch's fused kernels have no forward mode
        _match_jvp_and_hvp(g, lambda q, k, v, m=None: _torch_attention(q, k, v, m, **kw),
                           arrays)


def _torch_attention(q, k, v, m=None, is_causal=False, scale=None):
    """softmax(q k^T scale + mask) v written out in torch (its math reference)."""
    s = q @ k.transpose(-2, -1) * (1 / math.sqrt(q.shape[-1]) if scale is None else scale)
    if is_causal:
        s = s.masked_fill(torch.ones(s.shape[-2:], dtype=torch.bool).triu(1), -math.inf)
    if m is not None:
        s = s + m
    return torch.softmax(s, dim=-1) @ v


def _mha_pair(e, h, seed, **kw):
    tm = torch.nn.MultiheadAttention(e, h, batch_first=kw.pop("batch_first", True), **kw)
    tm = tm.double()
    with torch.no_grad():  # non-zero biases, so their gradients are compared too
        for p in tm.parameters():
            p.copy_(torch.tensor(_rng(seed).standard_normal(tuple(p.shape)) * 0.3))
            seed += 1
    return tm


MHA_CASES = [
    ("self", {}, {}),
    ("seq-first", {"batch_first": False}, {}),
    ("per-head-weights", {}, {"average_attn_weights": False}),
    ("kpm-bool", {}, {"key_padding_mask": "bool"}),
    ("kpm-float+causal", {}, {"key_padding_mask": "float", "attn_mask": "causal"}),
    ("mask-3d-bool", {}, {"attn_mask": "3d"}),
    ("cross-kdim-vdim", {"kdim": 5, "vdim": 3}, {}),
    ("no-bias", {"bias": False}, {}),
    ("unbatched", {}, {"unbatched": True}),
]


@pytest.mark.parametrize("case", MHA_CASES, ids=[c[0] for c in MHA_CASES])
def test_multihead_attention_matches_torch(backend, case):
    _, ctor, call = case
    e, h, n, length, source = 6, 2, 3, 4, 5
    ctor = dict(ctor)
    batch_first = ctor.get("batch_first", True)
    tm = _mha_pair(e, h, 20, **dict(ctor))
    gm = gx.nn.MultiheadAttention(e, h, dtype="float64", **ctor)
    assert list(gm.state_dict()) == list(tm.state_dict())
    gm.load_state_dict(tm.state_dict())
    rng = _rng(21)
    kdim, vdim = ctor.get("kdim", e), ctor.get("vdim", e)
    if call.get("unbatched"):
        shapes = [(length, e), (source, kdim), (source, vdim)]
    elif batch_first:
        shapes = [(n, length, e), (n, source, kdim), (n, source, vdim)]
    else:
        shapes = [(length, n, e), (source, n, kdim), (source, n, vdim)]
    arrays = [rng.standard_normal(s) for s in shapes]
    kwargs_g, kwargs_t = {}, {}
    kpm = call.get("key_padding_mask")
    if kpm is not None:
        m = np.zeros((n, source), bool)
        m[0, 3:] = True
        m[2, 1] = True
        val = m if kpm == "bool" else np.where(m, -np.inf, rng.standard_normal((n, source)))
        kwargs_g["key_padding_mask"], kwargs_t["key_padding_mask"] = gx.tensor(val), \
            torch.tensor(val)
    am = call.get("attn_mask")
    if am == "causal":
        m = np.triu(np.ones((length, source), bool), 1)
        kwargs_g["attn_mask"] = gx.tensor(np.where(m, -np.inf, 0.0))
        kwargs_t["attn_mask"] = torch.tensor(np.where(m, -np.inf, 0.0))
    elif am == "3d":
        m = ~_bool_mask((n * h, length, source), 22)
        kwargs_g["attn_mask"], kwargs_t["attn_mask"] = gx.tensor(m), torch.tensor(m)
    avg = call.get("average_attn_weights", True)
    gs, ts = _both(arrays)
    go, gw = gm(*gs, need_weights=True, average_attn_weights=avg, **kwargs_g)
    to, tw = tm(*ts, need_weights=True, average_attn_weights=avg, **kwargs_t)
    _close(go, to)
    _close(gw, tw)
    v = rng.standard_normal(tuple(to.shape))
    (go * gx.tensor(v)).sum().backward()
    (to * torch.tensor(v)).sum().backward()
    for g, t in zip(gs, ts, strict=True):
        _close(g.grad, t.grad)
    params = dict(gm.named_parameters())
    for name, p in tm.named_parameters():
        _close(params[name].grad, p.grad)


def test_mha_padded_batch_gets_zero_output_and_finite_gradients(backend):
    e, h = 4, 2
    tm = _mha_pair(e, h, 30)
    gm = gx.nn.MultiheadAttention(e, h, dtype="float64")
    gm.load_state_dict(tm.state_dict())
    x = _rng(31).standard_normal((2, 3, e))
    kpm = np.zeros((2, 3), bool)
    kpm[0] = True  # every key of the first sequence is padding
    gs, ts = _both([x])
    go = gm(gs[0], gs[0], gs[0], key_padding_mask=gx.tensor(kpm), need_weights=False)[0]
    to = tm(ts[0], ts[0], ts[0], key_padding_mask=torch.tensor(kpm), need_weights=False)[0]
    _close(go, to)  # PyTorch's attention gives zero weights there too (out_proj bias only)
    go.sum().backward()
    to.sum().backward()
    _close(gs[0].grad, ts[0].grad)
    assert np.isfinite(gs[0].grad.numpy()).all()


@pytest.mark.parametrize("activation,norm_first", [("relu", False), ("gelu", False),
                                                   ("relu", True)])
def test_transformer_encoder_layer_matches_torch(backend, activation, norm_first):
    torch.manual_seed(0)
    tm = torch.nn.TransformerEncoderLayer(8, 2, 12, dropout=0.0, activation=activation,
                                          batch_first=True, norm_first=norm_first).double()
    gm = gx.nn.TransformerEncoderLayer(8, 2, 12, dropout=0.0, activation=activation,
                                       norm_first=norm_first, dtype="float64")
    assert list(gm.state_dict()) == list(tm.state_dict())
    gm.load_state_dict(tm.state_dict())
    x = _rng(32).standard_normal((3, 5, 8))
    kpm = np.zeros((3, 5), bool)
    kpm[1, 3:] = True
    causal = np.where(np.triu(np.ones((5, 5), bool), 1), -np.inf, 0.0)
    for kw_g, kw_t in (({}, {}),
                       ({"src_key_padding_mask": gx.tensor(kpm)},
                        {"src_key_padding_mask": torch.tensor(kpm)}),
                       ({"src_mask": gx.tensor(causal), "is_causal": True},
                        {"src_mask": torch.tensor(causal), "is_causal": True})):
        gm.zero_grad()
        tm.zero_grad()
        _match(lambda x, kw=kw_g: gm(x, **kw), lambda x, kw=kw_t: tm(x, **kw), [x])
        params = dict(gm.named_parameters())
        for name, p in tm.named_parameters():
            _close(params[name].grad, p.grad)


def test_transformer_layer_both_hot_paths_and_eval(hot_path):
    tm = torch.nn.TransformerEncoderLayer(8, 4, 16, dropout=0.2, batch_first=True).double()
    gm = gx.nn.TransformerEncoderLayer(8, 4, 16, dropout=0.2, dtype="float64")
    gm.load_state_dict(tm.state_dict())
    tm.eval()
    gm.eval()  # dropout off: deterministic, as PyTorch
    x = _rng(33).standard_normal((2, 3, 8))
    _match(gm, tm, [x])


def test_dropout_in_attention_trains_and_is_seeded():
    gm = gx.nn.MultiheadAttention(4, 2, dropout=0.5)
    x = gx.tensor(_rng(34).standard_normal((2, 5, 4)).astype(np.float32), requires_grad=True)
    gx.random.seed(3)
    a = gm(x, x, x, need_weights=False)[0]
    gx.random.seed(3)
    b = gm(x, x, x, need_weights=False)[0]
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    _, w = gm(x, x, x, average_attn_weights=False)
    assert (w.numpy() == 0).any()  # some weights dropped while training
    gm.eval()
    _, w = gm(x, x, x, average_attn_weights=False)
    np.testing.assert_allclose(w.numpy().sum(-1), 1.0, rtol=1e-5)


# -- masks ---------------------------------------------------------------------------------

@pytest.mark.parametrize("k", [-2, 0, 1, 3])
def test_tril_triu_match_torch(backend, k):
    x = _rng(35).standard_normal((2, 4, 5))
    _match(lambda x: gx.tril(x, k), lambda x: torch.tril(x, k), [x])
    _match(lambda x: gx.triu(x, k), lambda x: torch.triu(x, k), [x])
    ints = np.arange(12).reshape(3, 4)
    np.testing.assert_array_equal(gx.tril(gx.tensor(ints), k).numpy(),
                                  torch.tril(torch.tensor(ints), k).numpy())


def test_masked_fill_and_one_hot_match_torch(backend):
    x = _rng(36).standard_normal((3, 4))
    m = _rng(37).random((1, 4)) > 0.5
    _match(lambda x: gx.masked_fill(x, gx.tensor(m), -2.5),
           lambda x: x.masked_fill(torch.tensor(m), -2.5), [x])
    _match(lambda x, v: gx.masked_fill(x, gx.tensor(m), v),
           lambda x, v: x.masked_fill(torch.tensor(m), v), [x, np.array(0.75)])
    labels = np.array([[0, 3], [2, 2]])
    for c in (-1, 6):
        got = F.one_hot(gx.tensor(labels), c)
        ref = TF.one_hot(torch.tensor(labels), c)
        np.testing.assert_array_equal(got.numpy(), ref.numpy())
        assert got.numpy().dtype == np.int64


# -- errors --------------------------------------------------------------------------------

def test_named_errors():
    x = gx.tensor(_rng().standard_normal((2, 3, 4)))
    ints = gx.tensor(np.arange(6).reshape(2, 3))
    with pytest.raises(gx.DTypeError, match="gelu"):
        F.gelu(ints)
    with pytest.raises(gx.DTypeError, match="layer_norm"):
        F.layer_norm(ints, 3)
    with pytest.raises(gx.DTypeError, match="scaled_dot_product_attention"):
        F.scaled_dot_product_attention(ints, ints, ints)
    with pytest.raises(gx.DTypeError, match="erf"):
        gx.erf(ints)
    with pytest.raises(gx.ArgumentError, match="approximate"):
        F.gelu(x, approximate="fast")
    with pytest.raises(gx.ShapeError, match="normalized_shape"):
        F.layer_norm(x, (3,))
    with pytest.raises(gx.ShapeError, match="weight"):
        F.layer_norm(x, 4, gx.ones(3))
    with pytest.raises(gx.ShapeError, match=r"attn_mask of shape \(4, 4\)"):
        F.scaled_dot_product_attention(x, x, x, attn_mask=gx.ones((4, 4), dtype="bool"))
    with pytest.raises(gx.ArgumentError, match="is_causal"):
        F.scaled_dot_product_attention(x, x, x, attn_mask=gx.ones((3, 3), dtype="bool"),
                                       is_causal=True)
    with pytest.raises(gx.ShapeError, match="key"):
        F.scaled_dot_product_attention(x, gx.ones((2, 3, 5)), x)
    with pytest.raises(gx.ArgumentError, match="divisible by num_heads"):
        gx.nn.MultiheadAttention(10, 3)
    mha = gx.nn.MultiheadAttention(4, 2)
    with pytest.raises(gx.ShapeError, match="key_padding_mask"):
        mha(x, x, x, key_padding_mask=gx.ones((2, 4), dtype="bool"))
    with pytest.raises(gx.ShapeError, match="attn_mask"):
        mha(x, x, x, attn_mask=gx.ones((2, 3, 3), dtype="bool"))
    with pytest.raises(gx.ShapeError, match="embed_dim=4"):
        mha(gx.ones((2, 3, 5)), gx.ones((2, 3, 5)), gx.ones((2, 3, 5)))
    with pytest.raises(gx.DTypeError, match="key_padding_mask"):
        mha(x, x, x, key_padding_mask=gx.tensor(np.zeros((2, 3), dtype=np.int64)))
    bn = gx.nn.BatchNorm1d(5)
    with pytest.raises(gx.ShapeError, match="3 channels on axis 1, expected 5"):
        bn(x)
    with pytest.raises(gx.ShapeError, match="2D or 3D"):
        bn(gx.ones((2, 5, 3, 3)))
    with pytest.raises(gx.ShapeError, match="more than one value per channel"):
        gx.nn.BatchNorm1d(3)(gx.ones((1, 3)))
    with pytest.raises(gx.ShapeError, match="running_mean"):
        F.batch_norm(x, gx.zeros(4), gx.ones(3))
    with pytest.raises(gx.ArgumentError, match="divisible"):
        gx.nn.GroupNorm(4, 6)
    with pytest.raises(gx.ArgumentError, match="num_groups"):
        F.group_norm(x, 2)
    with pytest.raises(gx.DTypeError, match="one_hot"):
        F.one_hot(x)
    with gx.use_backend("numpy"), pytest.raises(gx.ArgumentError, match="one_hot"):
        F.one_hot(gx.tensor(np.array([0, 4])), 3)  # range-checked where reading it is free
    with pytest.raises(gx.DTypeError, match="masked_fill"):
        gx.masked_fill(x, x, 0.0)
    with pytest.raises(gx.ShapeError, match="masked_fill"):
        gx.masked_fill(x, gx.ones((5,), dtype="bool"), 0.0)
    with pytest.raises(gx.ArgumentError, match="activation"):
        gx.nn.TransformerEncoderLayer(4, 2, activation="swish")


def test_layers_run_on_a_device_backend_without_host_syncs():
    """On a device stand-in whose reductions and creation functions return another array
    type than its ops (tests/host_sync.py), the statistics and masks made inside these
    functions stay on its backend, and a training step reads nothing back."""
    from host_sync import GuardedBackend, watching

    with gx.use_backend(GuardedBackend()):
        layer = gx.nn.TransformerEncoderLayer(8, 2, 12, dropout=0.0)  # masks: host-made here
        bn = gx.nn.BatchNorm1d(8)
        gn = gx.nn.GroupNorm(2, 8)
        x = gx.tensor(_rng(40).standard_normal((3, 5, 8)).astype(np.float32))
        kpm = gx.tensor(np.array([[False] * 5, [False] * 3 + [True] * 2, [True] * 5]))
        with watching() as events:
            y = layer(x, src_key_padding_mask=kpm, is_causal=True)
            y = bn(gx.permute_dims(y, (0, 2, 1)))
            y = gn(y) + F.gelu(y) + F.silu(y)
            y.sum().backward()
        assert not events, events
        assert bn.running_mean.backend is x.backend
