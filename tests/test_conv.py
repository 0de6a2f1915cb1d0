"""Convolution, pooling and padding against PyTorch (float64): values, input/weight/bias
gradients, forward mode and second order, layers loaded from a torch state_dict, and the
named errors for bad input. Gradient checks by finite differences are op-table rows
(tests/op_rows_nn.py)."""

from __future__ import annotations

import numpy as np
import pytest

import gradx as gx
import gradx.nn as nn
import gradx.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

# PyTorch warns that its own "same" padding with an even kernel copies the input
pytestmark = pytest.mark.filterwarnings("ignore:Using padding=.same.:UserWarning")

RTOL, ATOL = 1e-10, 1e-11


def _inputs(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in shapes]


def _compare(gfn, tfn, shapes, seed=0, rtol=RTOL):
    """Values and the VJP of a random cotangent for every input, gradx vs torch."""
    xs = _inputs(shapes, seed)
    gxs = [gx.tensor(x, requires_grad=True) for x in xs]
    txs = [torch.tensor(x, requires_grad=True) for x in xs]
    gy, ty = gfn(*gxs), tfn(*txs)
    assert tuple(gy.shape) == tuple(ty.shape)
    np.testing.assert_allclose(gy.numpy(), ty.detach().numpy(), rtol=rtol, atol=ATOL)
    ct = np.random.default_rng(seed + 1).standard_normal(tuple(ty.shape))
    (gy * gx.tensor(ct)).sum().backward()
    (ty * torch.tensor(ct)).sum().backward()
    for i, (a, b) in enumerate(zip(gxs, txs, strict=True)):
        assert a.grad is not None, f"no gradient for input {i}"
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=rtol, atol=ATOL,
                                   err_msg=f"gradient of input {i}")


def _case(name, fn, shapes, **kw):
    """One configuration: ``fn`` called with gradx's F or torch's TF and the inputs."""
    return pytest.param(lambda M, *xs: fn(M, *xs, **kw), shapes, id=name)


CONV = [
    _case("2d-basic", lambda M, x, w, b, **k: M.conv2d(x, w, b, **k), [(2, 3, 6, 7),
                                                                       (4, 3, 3, 3), (4,)]),
    _case("2d-stride-pad", lambda M, x, w, b, **k: M.conv2d(x, w, b, **k),
          [(2, 3, 7, 8), (4, 3, 3, 2), (4,)], stride=2, padding=1),
    _case("2d-tuple-args", lambda M, x, w, **k: M.conv2d(x, w, **k),
          [(1, 2, 9, 7), (3, 2, 2, 3)], stride=(2, 3), padding=(2, 0), dilation=(1, 2)),
    _case("2d-dilation", lambda M, x, w, **k: M.conv2d(x, w, **k),
          [(2, 2, 8, 8), (2, 2, 3, 3)], dilation=2, padding=2),
    _case("2d-groups", lambda M, x, w, b, **k: M.conv2d(x, w, b, **k),
          [(2, 6, 5, 5), (4, 3, 3, 3), (4,)], groups=2, padding=1),
    _case("2d-depthwise", lambda M, x, w, **k: M.conv2d(x, w, **k),
          [(2, 4, 5, 6), (8, 1, 3, 3)], groups=4, stride=2),
    _case("2d-same-even", lambda M, x, w, **k: M.conv2d(x, w, **k),
          [(1, 2, 5, 6), (3, 2, 4, 2)], padding="same"),
    _case("2d-same-dilated", lambda M, x, w, **k: M.conv2d(x, w, **k),
          [(2, 1, 6, 5), (2, 1, 2, 3)], padding="same", dilation=(3, 2)),
    _case("2d-valid", lambda M, x, w, **k: M.conv2d(x, w, **k),
          [(2, 2, 5, 5), (3, 2, 5, 1)], padding="valid"),
    _case("2d-batch1-chan1", lambda M, x, w, b, **k: M.conv2d(x, w, b, **k),
          [(1, 1, 5, 4), (1, 1, 2, 2), (1,)]),
    _case("2d-1x1", lambda M, x, w, **k: M.conv2d(x, w, **k), [(3, 4, 3, 3), (5, 4, 1, 1)]),
    _case("2d-kernel-eq-input", lambda M, x, w, **k: M.conv2d(x, w, **k),
          [(2, 2, 3, 4), (3, 2, 3, 4)]),
    _case("2d-stride-gt-kernel", lambda M, x, w, **k: M.conv2d(x, w, **k),
          [(1, 2, 9, 10), (2, 2, 2, 2)], stride=3, padding=1),
    _case("2d-unbatched", lambda M, x, w, **k: M.conv2d(x, w, **k), [(2, 5, 5), (3, 2, 3, 3)]),
    _case("1d-basic", lambda M, x, w, b, **k: M.conv1d(x, w, b, **k),
          [(2, 3, 9), (4, 3, 3), (4,)]),
    _case("1d-stride-dil-groups", lambda M, x, w, **k: M.conv1d(x, w, **k),
          [(2, 4, 11), (6, 2, 3)], stride=2, dilation=2, groups=2, padding=1),
    _case("1d-same-even", lambda M, x, w, **k: M.conv1d(x, w, **k), [(1, 1, 7), (2, 1, 4)],
          padding="same"),
    _case("t2d-basic", lambda M, x, w, b, **k: M.conv_transpose2d(x, w, b, **k),
          [(2, 3, 4, 5), (3, 2, 3, 3), (2,)]),
    _case("t2d-stride-outpad", lambda M, x, w, **k: M.conv_transpose2d(x, w, **k),
          [(2, 2, 3, 4), (2, 3, 3, 2)], stride=2, padding=1, output_padding=1),
    _case("t2d-groups-dil", lambda M, x, w, b, **k: M.conv_transpose2d(x, w, b, **k),
          [(1, 4, 3, 3), (4, 3, 2, 3), (6,)], groups=2, dilation=(2, 1), stride=(1, 2)),
    _case("t2d-outpad-dilation", lambda M, x, w, **k: M.conv_transpose2d(x, w, **k),
          [(2, 2, 4, 3), (2, 1, 3, 2)], dilation=2, output_padding=1),
    _case("t2d-chan1", lambda M, x, w, **k: M.conv_transpose2d(x, w, **k),
          [(1, 1, 2, 2), (1, 1, 2, 2)], stride=2),
    _case("t1d", lambda M, x, w, **k: M.conv_transpose1d(x, w, **k), [(2, 2, 5), (2, 3, 3)],
          stride=3, padding=1, output_padding=2),
]


@pytest.mark.parametrize(("fn", "shapes"), CONV)
def test_conv_matches_torch(backend, fn, shapes):
    _compare(lambda *xs: fn(F, *xs), lambda *xs: fn(TF, *xs), shapes)


POOL = [
    _case("max2d", lambda M, x, **k: M.max_pool2d(x, **k), [(2, 3, 6, 7)], kernel_size=2),
    _case("max2d-overlap-pad", lambda M, x, **k: M.max_pool2d(x, **k), [(2, 2, 7, 8)],
          kernel_size=3, stride=2, padding=1),
    _case("max2d-dilation", lambda M, x, **k: M.max_pool2d(x, **k), [(1, 2, 8, 7)],
          kernel_size=(2, 3), stride=(1, 2), padding=1, dilation=2),
    _case("max2d-ceil", lambda M, x, **k: M.max_pool2d(x, **k), [(2, 1, 7, 5)],
          kernel_size=2, ceil_mode=True),
    _case("max2d-ceil-pad", lambda M, x, **k: M.max_pool2d(x, **k), [(1, 2, 6, 6)],
          kernel_size=3, stride=2, padding=1, ceil_mode=True),
    _case("max2d-unbatched", lambda M, x, **k: M.max_pool2d(x, **k), [(2, 5, 5)],
          kernel_size=2, stride=1),
    _case("max1d", lambda M, x, **k: M.max_pool1d(x, **k), [(2, 3, 9)], kernel_size=3,
          stride=2, padding=1, ceil_mode=True),
    _case("avg2d", lambda M, x, **k: M.avg_pool2d(x, **k), [(2, 3, 6, 6)], kernel_size=2),
    _case("avg2d-pad-include", lambda M, x, **k: M.avg_pool2d(x, **k), [(2, 2, 7, 5)],
          kernel_size=3, stride=2, padding=1),
    _case("avg2d-pad-exclude", lambda M, x, **k: M.avg_pool2d(x, **k), [(2, 2, 7, 5)],
          kernel_size=(3, 2), stride=(2, 1), padding=1, count_include_pad=False),
    _case("avg2d-ceil", lambda M, x, **k: M.avg_pool2d(x, **k), [(1, 2, 8, 7)],
          kernel_size=3, stride=2, padding=1, ceil_mode=True),
    _case("avg2d-ceil-exclude", lambda M, x, **k: M.avg_pool2d(x, **k), [(1, 2, 8, 7)],
          kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    _case("avg2d-divisor", lambda M, x, **k: M.avg_pool2d(x, **k), [(1, 2, 4, 4)],
          kernel_size=2, divisor_override=3),
    _case("avg1d", lambda M, x, **k: M.avg_pool1d(x, **k), [(2, 3, 10)], kernel_size=4,
          stride=3, padding=2, count_include_pad=False),
    _case("adaptive-divides", lambda M, x, **k: M.adaptive_avg_pool2d(x, **k),
          [(2, 3, 8, 6)], output_size=(4, 3)),
    _case("adaptive-uneven", lambda M, x, **k: M.adaptive_avg_pool2d(x, **k),
          [(2, 3, 7, 9)], output_size=(3, 4)),
    _case("adaptive-global", lambda M, x, **k: M.adaptive_avg_pool2d(x, **k),
          [(2, 3, 5, 7)], output_size=1),
    _case("adaptive-none", lambda M, x, **k: M.adaptive_avg_pool2d(x, **k),
          [(1, 2, 5, 7)], output_size=(None, 2)),
    _case("pad-constant", lambda M, x, **k: M.pad(x, **k), [(2, 3, 4, 5)],
          pad=(1, 2, 0, 3), value=1.5),
    _case("pad-constant-3axes", lambda M, x, **k: M.pad(x, **k), [(2, 3, 4)],
          pad=(1, 0, 2, 1, 1, 1)),
    _case("pad-reflect", lambda M, x, **k: M.pad(x, **k), [(2, 3, 4, 5)],
          pad=(2, 1, 3, 0), mode="reflect"),
    _case("pad-replicate", lambda M, x, **k: M.pad(x, **k), [(2, 3, 4, 5)],
          pad=(3, 1, 1, 4), mode="replicate"),
    _case("pad-circular", lambda M, x, **k: M.pad(x, **k), [(2, 3, 4, 5)],
          pad=(2, 1, 1, 3), mode="circular"),
    _case("pad-reflect-1d", lambda M, x, **k: M.pad(x, **k), [(2, 3, 6)], pad=(4, 5),
          mode="reflect"),
]


@pytest.mark.parametrize(("fn", "shapes"), POOL)
def test_pool_and_pad_match_torch(backend, fn, shapes):
    _compare(lambda *xs: fn(F, *xs), lambda *xs: fn(TF, *xs), shapes)


HOT = [CONV[1], CONV[4], CONV[18], POOL[1], POOL[9], POOL[20]]


@pytest.mark.parametrize(("fn", "shapes"), HOT)
@pytest.mark.usefixtures("hot_path")
def test_both_hot_paths(fn, shapes):
    _compare(lambda *xs: fn(F, *xs), lambda *xs: fn(TF, *xs), shapes)


# -- forward mode and second order ------------------------------------------------------

JVP = [CONV[2], CONV[4], CONV[15], CONV[19], POOL[2], POOL[10], POOL[15], POOL[21]]


@pytest.mark.parametrize(("fn", "shapes"), JVP)
def test_jvp_matches_torch_func(backend, fn, shapes):
    xs, ts = _inputs(shapes, 3), _inputs(shapes, 4)
    gy, gt = gx.jvp(lambda *a: fn(F, *a), tuple(gx.tensor(x) for x in xs),
                    tuple(gx.tensor(t) for t in ts))
    ty, tt = torch.func.jvp(lambda *a: fn(TF, *a), tuple(torch.tensor(x) for x in xs),
                            tuple(torch.tensor(t) for t in ts))
    np.testing.assert_allclose(gy.numpy(), ty.numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(gt.numpy(), tt.numpy(), rtol=RTOL, atol=ATOL)


SECOND = [CONV[1], CONV[5], CONV[18], POOL[1], POOL[9]]


@pytest.mark.parametrize(("fn", "shapes"), SECOND)
def test_second_order_matches_torch(backend, fn, shapes):
    """d/d inputs of sum(tanh(grad)^2), through create_graph, on both libraries: the conv
    rules' own rules (the three bilinear forms) and the pooling adjoints' rules."""
    xs = _inputs(shapes, 5)
    ct = None

    def run(M, lib, tensor, grad):
        nonlocal ct
        ins = [tensor(x) for x in xs]
        y = fn(M, *ins)
        if ct is None:
            ct = np.random.default_rng(6).standard_normal(tuple(y.shape))
        y = lib.tanh(y) * tensor(ct, False)
        gs = grad(y.sum(), ins)
        total = sum((lib.sin(g) * g).sum() for g in gs)
        return [g.numpy() if hasattr(g, "numpy") else g for g in grad(total, ins, False)]

    def tgrad(out, ins, create=True):
        gs = torch.autograd.grad(out, ins, create_graph=create)
        return gs if create else [g.detach() for g in gs]

    def ggrad(out, ins, create=True):
        out.backward(create_graph=create)
        gs = [x.grad for x in ins]
        for x in ins:
            x.grad = None
        return gs

    want = run(TF, torch, lambda a, rg=True: torch.tensor(a, requires_grad=rg), tgrad)
    got = run(F, gx, lambda a, rg=True: gx.tensor(a, requires_grad=rg), ggrad)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10)


# -- max pooling's ties, indices and -inf ----------------------------------------------

def test_max_pool_ties_go_to_the_first_maximum(backend):
    """Like PyTorch, the whole gradient of a window goes to its first maximum (row-major),
    also where overlapping windows share it."""
    x = np.array([[[[1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 1.0]]]])
    for kw in ({"kernel_size": 2}, {"kernel_size": 2, "stride": 1}):
        g, t = gx.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        F.max_pool2d(g, **kw).sum().backward()
        TF.max_pool2d(t, **kw).sum().backward()
        np.testing.assert_array_equal(g.grad.numpy(), t.grad.numpy())


def test_max_pool_indices_match_torch(backend):
    x = _inputs([(2, 3, 7, 6)])[0]
    y, idx = F.max_pool2d(gx.tensor(x), 3, 2, padding=1, return_indices=True)
    ty, tidx = TF.max_pool2d(torch.tensor(x), 3, 2, padding=1, return_indices=True)
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    np.testing.assert_array_equal(y.numpy(), ty.numpy())
    _, idx1 = F.max_pool1d(gx.tensor(x[0]), 2, return_indices=True)
    _, tidx1 = TF.max_pool1d(torch.tensor(x[0]), 2, return_indices=True)
    np.testing.assert_array_equal(idx1.numpy(), tidx1.numpy())


def test_max_pool_nan_and_inf(backend):
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    x[0, 0, 0, 1] = np.nan
    x[0, 0, 3, :] = -np.inf
    got = F.max_pool2d(gx.tensor(x), 2, padding=1).numpy()
    want = TF.max_pool2d(torch.tensor(x), 2, padding=1).numpy()
    np.testing.assert_array_equal(got, want)


def test_float32_conv_close_to_float64(backend):
    xs = _inputs([(2, 3, 6, 6), (4, 3, 3, 3)])
    y32 = F.conv2d(gx.tensor(xs[0].astype(np.float32)), gx.tensor(xs[1].astype(np.float32)))
    assert y32.dtype == gx.tensor(np.float32(0)).dtype
    np.testing.assert_allclose(y32.numpy(), TF.conv2d(*map(torch.tensor, xs)).numpy(),
                               rtol=1e-5, atol=1e-5)


# -- layers --------------------------------------------------------------------------------

LAYERS = [
    ("Conv2d", dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1,
                    groups=2), (2, 4, 7, 6)),
    ("Conv2d", dict(in_channels=2, out_channels=3, kernel_size=(2, 3), padding="same",
                    bias=False), (1, 2, 5, 5)),
    ("Conv2d", dict(in_channels=2, out_channels=3, kernel_size=3, padding=(1, 2),
                    padding_mode="reflect"), (2, 2, 5, 6)),
    ("Conv2d", dict(in_channels=2, out_channels=2, kernel_size=2, padding=1,
                    padding_mode="circular"), (1, 2, 4, 4)),
    ("Conv1d", dict(in_channels=3, out_channels=4, kernel_size=3, dilation=2, padding=2),
     (2, 3, 9)),
    ("Conv1d", dict(in_channels=2, out_channels=2, kernel_size=3, padding=1,
                    padding_mode="replicate"), (2, 2, 6)),
    ("ConvTranspose2d", dict(in_channels=4, out_channels=2, kernel_size=3, stride=2,
                             padding=1, output_padding=1, groups=2), (2, 4, 3, 4)),
    ("MaxPool2d", dict(kernel_size=3, stride=2, padding=1), (2, 3, 7, 7)),
    ("MaxPool1d", dict(kernel_size=2), (2, 3, 8)),
    ("AvgPool2d", dict(kernel_size=2, stride=1, count_include_pad=False, padding=1),
     (2, 3, 5, 4)),
    ("AvgPool1d", dict(kernel_size=3, stride=2), (2, 3, 9)),
    ("AdaptiveAvgPool2d", dict(output_size=(2, 3)), (2, 3, 5, 7)),
    ("ZeroPad2d", dict(padding=(1, 2, 0, 1)), (2, 3, 3, 4)),
    ("ConstantPad2d", dict(padding=(1, 0, 2, 1), value=-2.0), (2, 3, 3, 4)),
    ("ReflectionPad2d", dict(padding=(2, 1, 1, 2)), (2, 3, 4, 4)),
    ("ReplicationPad2d", dict(padding=(1, 1, 3, 0)), (2, 3, 4, 4)),
]


@pytest.mark.parametrize(("name", "kw", "shape"), LAYERS,
                         ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(LAYERS)])
def test_layer_loads_torch_state_dict_and_matches(backend, name, kw, shape):
    torch.manual_seed(0)
    tm = getattr(torch.nn, name)(**kw).double()
    gm = getattr(nn, name)(**kw, **({"dtype": "float64"} if "Conv" in name else {}))
    sd = {k: v.detach().numpy() for k, v in tm.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in gm.state_dict().items()} == \
        {k: v.shape for k, v in sd.items()}
    gm.load_state_dict(sd)
    x = _inputs([shape], 7)[0]
    gxx, tx = gx.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    gy, ty = gm(gxx), tm(tx)
    np.testing.assert_allclose(gy.numpy(), ty.detach().numpy(), rtol=RTOL, atol=ATOL)
    (gy * gy).sum().backward()
    (ty * ty).sum().backward()
    np.testing.assert_allclose(gxx.grad.numpy(), tx.grad.numpy(), rtol=RTOL, atol=ATOL)
    tparams = dict(tm.named_parameters())
    for k, p in gm.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tparams[k].grad.numpy(), rtol=RTOL,
                                   atol=ATOL, err_msg=k)
    assert repr(gm)


def test_conv_init_is_kaiming_uniform_and_seeded():
    """PyTorch's default init ranges; the seeded host generator gives the same weights on
    every backend."""
    gx.random.seed(3)
    a = nn.Conv2d(4, 8, (3, 2), groups=2)
    fan_in = 2 * 3 * 2
    bound = 1 / np.sqrt(fan_in)  # kaiming_uniform(a=sqrt(5)) gives 1/sqrt(fan_in)
    w, b = a.weight.numpy(), a.bias.numpy()
    assert w.shape == (8, 2, 3, 2) and np.abs(w).max() <= bound and np.abs(w).max() > bound / 2
    assert np.abs(b).max() <= bound
    t = nn.ConvTranspose2d(4, 6, 2, groups=2)
    assert t.weight.shape == (4, 3, 2, 2)
    assert np.abs(t.weight.numpy()).max() <= 1 / np.sqrt(3 * 4)
    gx.random.seed(3)
    with gx.use_backend("array_api_strict"):
        c = nn.Conv2d(4, 8, (3, 2), groups=2)
    np.testing.assert_array_equal(c.weight.numpy(), w)


def test_small_cnn_trains(backend):
    """Conv, pooling and a linear head train end to end: the loss falls."""
    gx.random.seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 2))
    rng = np.random.default_rng(0)
    x = gx.tensor(rng.standard_normal((16, 1, 8, 8)).astype(np.float32))
    labels = (x.numpy()[:, 0, :4].mean(axis=(1, 2)) > 0).astype(np.int64)
    y = gx.tensor(labels)
    opt = gx.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(15):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
    assert losses[-1] < losses[0] * 0.8


# -- errors --------------------------------------------------------------------------------

ERRORS = [
    ("channels", lambda: F.conv2d(gx.zeros((1, 3, 5, 5)), gx.zeros((2, 2, 3, 3))),
     gx.ShapeError, "3 channels"),
    ("kernel-too-big", lambda: F.conv2d(gx.zeros((1, 1, 2, 5)), gx.zeros((1, 1, 3, 3))),
     gx.ShapeError, "larger than the padded input"),
    ("groups", lambda: F.conv2d(gx.zeros((1, 4, 5, 5)), gx.zeros((3, 2, 3, 3)), groups=2),
     gx.ArgumentError, "groups=2"),
    ("int-input", lambda: F.conv2d(gx.zeros((1, 1, 5, 5), dtype="int64"),
                                   gx.zeros((1, 1, 3, 3))), gx.DTypeError, "floating"),
    ("int-weight", lambda: F.conv1d(gx.zeros((1, 1, 5)), gx.zeros((1, 1, 3), dtype="int32")),
     gx.DTypeError, "weight"),
    ("ndim", lambda: F.conv2d(gx.zeros((5, 5)), gx.zeros((1, 1, 3, 3))), gx.ShapeError,
     "4 dimensions"),
    ("weight-ndim", lambda: F.conv2d(gx.zeros((1, 1, 5, 5)), gx.zeros((1, 3, 3))),
     gx.ShapeError, "weight"),
    ("same-strided", lambda: F.conv2d(gx.zeros((1, 1, 5, 5)), gx.zeros((1, 1, 3, 3)),
                                      stride=2, padding="same"), gx.ArgumentError, "stride"),
    ("padding-word", lambda: F.conv2d(gx.zeros((1, 1, 5, 5)), gx.zeros((1, 1, 3, 3)),
                                      padding="full"), gx.ArgumentError, "'full'"),
    ("bias-shape", lambda: F.conv2d(gx.zeros((1, 1, 5, 5)), gx.zeros((2, 1, 3, 3)),
                                    gx.zeros((3,))), gx.ShapeError, "bias"),
    ("transpose-channels", lambda: F.conv_transpose2d(gx.zeros((1, 3, 4, 4)),
                                                      gx.zeros((2, 2, 3, 3))),
     gx.ShapeError, "3 channels"),
    ("transpose-outpad", lambda: F.conv_transpose2d(gx.zeros((1, 2, 4, 4)),
                                                    gx.zeros((2, 2, 3, 3)), output_padding=1),
     gx.ArgumentError, "output_padding"),
    ("pool-kernel", lambda: F.max_pool2d(gx.zeros((1, 1, 2, 2)), 3), gx.ShapeError,
     "larger than the padded input"),
    ("pool-padding", lambda: F.avg_pool2d(gx.zeros((1, 1, 6, 6)), 2, padding=2),
     gx.ArgumentError, "at most half"),
    ("pool-int", lambda: F.max_pool2d(gx.zeros((1, 1, 4, 4), dtype="int64"), 2),
     gx.DTypeError, "floating"),
    ("pool-ndim", lambda: F.avg_pool1d(gx.zeros((1, 1, 4, 4)), 2), gx.ShapeError,
     "3 dimensions"),
    ("stride-zero", lambda: F.max_pool2d(gx.zeros((1, 1, 4, 4)), 2, stride=0),
     gx.ArgumentError, "stride"),
    ("pad-odd", lambda: F.pad(gx.zeros((2, 3)), (1, 2, 3)), gx.ArgumentError, "pairs"),
    ("pad-mode", lambda: F.pad(gx.zeros((2, 3)), (1, 1), mode="wrap"), gx.ArgumentError,
     "mode"),
    ("pad-reflect-size", lambda: F.pad(gx.zeros((1, 2, 3)), (3, 0), mode="reflect"),
     gx.ShapeError, "smaller than"),
    ("layer-groups", lambda: nn.Conv2d(3, 4, 3, groups=2), gx.ArgumentError, "groups"),
]


@pytest.mark.parametrize(("make", "cls", "words"), [e[1:] for e in ERRORS],
                         ids=[e[0] for e in ERRORS])
def test_bad_input_raises_named_error(make, cls, words):
    with pytest.raises(cls, match=words) as info:
        make()
    assert isinstance(info.value, gx.GradxError)


def test_window_views_agree_with_numpy(monkeypatch):
    """Every backend's sliding_windows gives NumPy's windows: the Array API gather (base
    class) and CuPy's strided view (its stride arithmetic run here on NumPy arrays through
    a stand-in ``cupy.lib.stride_tricks`` when real CuPy is absent)."""
    import sys
    import types

    from gradx.backends.base import Backend
    from gradx.backends.cupy_backend import CupyBackend

    x = np.arange(2 * 5 * 6 * 3, dtype=np.float64).reshape(2, 5, 6, 3)
    want = np.lib.stride_tricks.sliding_window_view(x, (2, 4), axis=(1, 2))
    base = Backend(np)
    np.testing.assert_array_equal(base.sliding_windows(x, (2, 4), (1, 2)), want)
    if "cupy" not in sys.modules or not hasattr(sys.modules["cupy"], "lib"):
        fake = types.ModuleType("cupy.lib.stride_tricks")
        fake.as_strided = np.lib.stride_tricks.as_strided
        monkeypatch.setitem(sys.modules, "cupy.lib.stride_tricks", fake)
        monkeypatch.setitem(sys.modules, "cupy.lib", types.ModuleType("cupy.lib"))
        if "cupy" not in sys.modules:
            monkeypatch.setitem(sys.modules, "cupy", types.ModuleType("cupy"))
        got = CupyBackend.sliding_windows(CupyBackend(), x, (2, 4), (1, 2))
        np.testing.assert_array_equal(got, want)
