"""Aliases and in-place updates: tensors that share memory share one version counter, so
backward notices an update made through any of them; in-place operators on non-leaves are
differentiated. PyTorch (float64) is the oracle wherever it has the same operation."""

from __future__ import annotations

import numpy as np
import pytest

import gradx as gx

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.usefixtures("hot_path")

X = np.array([[0.3, -1.2, 0.7, 2.0], [1.1, 0.4, -0.6, 0.9], [-0.8, 1.5, 0.2, -0.3]])
Y = np.array([[1.3, 0.5, -0.9, 0.6], [0.7, -1.1, 1.4, 0.8], [0.2, 0.9, -0.4, 1.6]])


def _pair(values: np.ndarray, requires_grad: bool = True):
    return (gx.tensor(values, dtype="float64", requires_grad=requires_grad),
            torch.tensor(values, dtype=torch.float64, requires_grad=requires_grad))


def _close(ours, theirs) -> None:
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-12, atol=1e-12)


# -- aliases share one version counter -------------------------------------------------

# (name, gradx alias of y, PyTorch alias of y): each returns a tensor sharing y's memory
ALIASES = [
    ("reshape", lambda y: gx.reshape(y, (4, 3)), lambda y: y.reshape(4, 3)),
    ("view", lambda y: y.view(2, 6), lambda y: y.view(2, 6)),
    ("flatten", lambda y: y.flatten(), lambda y: y.flatten()),
    ("permute_dims", lambda y: gx.permute_dims(y, (1, 0)), lambda y: y.permute(1, 0)),
    ("T", lambda y: y.T, lambda y: y.T),
    ("mT", lambda y: y.mT, lambda y: y.mT),
    ("transpose", lambda y: y.transpose(0, 1), lambda y: y.transpose(0, 1)),
    ("moveaxis", lambda y: gx.moveaxis(y, 0, 1), lambda y: torch.movedim(y, 0, 1)),
    ("expand_dims", lambda y: gx.expand_dims(y, axis=0), lambda y: y.unsqueeze(0)),
    ("squeeze", lambda y: gx.squeeze(gx.expand_dims(y, axis=1), axis=1),
     lambda y: y.unsqueeze(1).squeeze(1)),
    ("getitem-slice", lambda y: y[1:, ::2], lambda y: y[1:, ::2]),
    ("getitem-int", lambda y: y[1, ...], lambda y: y[1, ...]),
    ("split", lambda y: gx.split(y, 3, axis=0)[1], lambda y: y.split(1, 0)[1]),
    ("unstack", lambda y: gx.unstack(y, axis=1)[2], lambda y: y.unbind(1)[2]),
    ("detach", lambda y: y.detach(), lambda y: y.detach()),
]


@pytest.mark.parametrize("name, ours, theirs", ALIASES, ids=[a[0] for a in ALIASES])
def test_update_through_an_alias_is_detected(backend, name, ours, theirs):
    """exp saves its output y; writing into an alias of y changes what backward reads."""
    x, xt = _pair(X)
    y, yt = gx.exp(x), torch.exp(xt)
    v, vt = ours(y), theirs(yt)
    with gx.no_grad():
        v *= 2.0
    with torch.no_grad():
        vt.mul_(2.0)
    _close(y, yt)  # the update reached y's memory on both
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        yt.sum().backward()
    with pytest.raises(gx.GraphError, match="exp.*modified in place"):
        y.sum().backward()


@pytest.mark.parametrize("name, ours, theirs", ALIASES, ids=[a[0] for a in ALIASES])
def test_alias_without_an_update_differentiates(backend, name, ours, theirs):
    x, xt = _pair(X)
    y, yt = gx.exp(x), torch.exp(xt)
    (gx.sum(ours(y) ** 2) + gx.sum(y)).backward()
    ((theirs(yt) ** 2).sum() + yt.sum()).backward()
    _close(x.grad, xt.grad)


def test_setitem_through_a_detached_alias_is_detected(backend):
    x, xt = _pair(X)
    y, yt = gx.exp(x), torch.exp(xt)
    d, dt = y.detach(), yt.detach()
    d[0, 0] = 5.0  # d requires no grad: written into y's memory
    dt[0, 0] = 5.0
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        yt.sum().backward()
    with pytest.raises(gx.GraphError, match="exp.*modified in place"):
        y.sum().backward()


# gradx's own aliases, where PyTorch's nearest operation differs
OWN_ALIASES = [
    ("Tensor", lambda y: gx.Tensor(y)),
    ("asarray", lambda y: gx.asarray(y)),
    ("asarray-copy-false", lambda y: gx.asarray(y, copy=False)),
    ("astype-copy-false", lambda y: gx.astype(y, y.dtype, copy=False)),
    ("broadcast_to-same-shape", lambda y: gx.broadcast_to(y, y.shape)),
    ("reshape-2", lambda y: y.reshape(6, 2)),
]


@pytest.mark.parametrize("name, ours", OWN_ALIASES, ids=[a[0] for a in OWN_ALIASES])
def test_update_through_gradx_aliases_is_detected(backend, name, ours):
    x = gx.tensor(X, dtype="float64", requires_grad=True)
    y = gx.exp(x)
    v = ours(y)
    shared = np.shares_memory(np.asarray(v.data), np.asarray(y.data)) if backend == "numpy" \
        else True
    with gx.no_grad():
        v *= 2.0
    if shared:
        np.testing.assert_allclose(y.numpy(), 2 * np.exp(X))
        with pytest.raises(gx.GraphError, match="exp.*modified in place"):
            y.sum().backward()


def test_every_primitive_whose_output_shares_memory_is_a_view():
    """Run every op-table row on NumPy and check each primitive's output against its
    inputs: one that shares an input's memory must be marked view=True (first input)."""
    op_table = pytest.importorskip("op_table")
    from gradx._primitive import install_recorder, remove_recorder

    unmarked: dict[str, str] = {}

    def rec(prim, args, kwargs, ans):
        if not isinstance(ans, np.ndarray):
            return
        for i, a in enumerate(args):
            if isinstance(a, gx.Tensor) and isinstance(a.data, np.ndarray) \
                    and np.shares_memory(a.data, ans) and not (prim.view and i == 0):
                unmarked[prim.name] = f"input {i}"

    from test_gradients import sample

    with gx.use_backend("numpy"):
        token = install_recorder(rec)
        try:
            for row in op_table.ROWS:
                row.fn(*[gx.tensor(a, requires_grad=True) for a in sample(row)])
        finally:
            remove_recorder(token)  # also uncounts it: dispatch takes its fast path again
    assert not unmarked, f"outputs sharing an input's memory without view=True: {unmarked}"


@pytest.mark.parametrize("flip", [lambda y: gx.flip(y), lambda y: y.flip()])
def test_flip_copies_as_torch_flip(backend, flip):
    """flip returns a copy (NumPy's flip is a view): writing into either array leaves the
    other as it was, and backward through the saved output stays valid, as in PyTorch."""
    x = gx.tensor([0.5, 1.0, 2.0], dtype="float64", requires_grad=True)
    xt = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64, requires_grad=True)
    y, yt = gx.exp(x), torch.exp(xt)
    f, ft = flip(y), torch.flip(yt, (0,))
    with gx.no_grad():
        f[0] = 0.0
    with torch.no_grad():
        ft[0] = 0.0
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy())
    y.sum().backward()
    yt.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy())


# -- in-place operators on non-leaves ---------------------------------------------------

INPLACE = [
    ("iadd", lambda h, y: h.__iadd__(y)),
    ("isub", lambda h, y: h.__isub__(y)),
    ("imul", lambda h, y: h.__imul__(y)),
    ("itruediv", lambda h, y: h.__itruediv__(y)),
    ("ipow", lambda h, y: h.__ipow__(y)),
]


@pytest.mark.parametrize("name, op", INPLACE, ids=[a[0] for a in INPLACE])
@pytest.mark.parametrize("other", ["tensor", "leaf-no-grad", "scalar"])
def test_in_place_operator_on_a_non_leaf_matches_pytorch(backend, name, op, other):
    x, xt = _pair(np.abs(X) + 0.5)
    if other == "scalar":
        y = yt = 1.7
    else:
        y, yt = _pair(np.abs(Y) + 0.5, requires_grad=other == "tensor")
    h, ht = x * 1.5, xt * 1.5
    h2, ht2 = op(h, y), op(ht, yt)
    assert h2 is h and ht2 is ht
    if name != "ipow":  # twice: the second reads the first's result (PyTorch's pow_ saves
        h = op(h, y)    # its output, so a second pow_ fails there)
        ht = op(ht, yt)
    (gx.sum(h * h) + gx.sum(gx.exp(h * 0.1))).backward()
    ((ht * ht).sum() + torch.exp(ht * 0.1).sum()).backward()
    _close(h, ht)
    _close(x.grad, xt.grad)
    if other == "tensor":
        _close(y.grad, yt.grad)


@pytest.mark.parametrize("name, op", INPLACE, ids=[a[0] for a in INPLACE])
def test_in_place_on_a_non_leaf_survives_repeated_backward(backend, name, op):
    x, xt = _pair(np.abs(X) + 0.5)
    y, yt = _pair(np.abs(Y) + 0.5)
    h, ht = gx.sin(x), torch.sin(xt)  # sin saves its input, not its output
    h = op(h, y)
    ht = op(ht, yt)
    loss, loss_t = gx.sum(h * h), (ht * ht).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    loss_t.backward(retain_graph=True)
    loss_t.backward()
    _close(x.grad, xt.grad)
    _close(y.grad, yt.grad)


def test_matmul_assignment_rebinds(backend):
    x, xt = _pair(X)
    w, wt = _pair(Y.T)
    h, ht = x * 2.0, xt * 2.0
    h @= w  # no __imatmul__: Python makes it h = h @ w, as PyTorch (no in-place matmul)
    ht = ht @ wt
    gx.sum(h * h).backward()
    (ht * ht).sum().backward()
    _close(x.grad, xt.grad)
    _close(w.grad, wt.grad)


@pytest.mark.parametrize("case", ["row", "slice-imul", "column-iadd", "scalar-into-non-leaf",
                                  "leaf-no-grad-target"])
def test_setitem_on_a_non_leaf_matches_pytorch(backend, case):
    x, xt = _pair(X)
    y, yt = _pair(Y)
    if case == "leaf-no-grad-target":
        h, ht = gx.zeros((3, 4), dtype="float64"), torch.zeros(3, 4, dtype=torch.float64)
        h[1] = y[0] * 3.0
        ht[1] = yt[0] * 3.0
        h = h + x
        ht = ht + xt
    else:
        h, ht = x * 2.0, xt * 2.0
        if case == "row":
            h[0] = y[1] * 3.0
            ht[0] = yt[1] * 3.0
        elif case == "slice-imul":
            h[1:, ::2] *= y[1:, ::2]
            ht[1:, ::2] *= yt[1:, ::2]
        elif case == "column-iadd":
            h[:, 1] += gx.exp(y[:, 0])
            ht[:, 1] += torch.exp(yt[:, 0])
        else:
            h[2, 3] = 4.0
            ht[2, 3] = 4.0
    gx.sum(h * h * h).backward()
    (ht * ht * ht).sum().backward()
    _close(h, ht)
    _close(x.grad, xt.grad)
    if y.grad is not None or yt.grad is not None:
        _close(y.grad, yt.grad)


def test_recorded_in_place_keeps_the_saved_old_value(backend):
    """h *= 2 while recording rebinds h to a new array: a node that saved the old h reads
    the old values, which were not modified, so the gradient is exact."""
    x = gx.tensor(X, dtype="float64", requires_grad=True)
    h = x * 1.0
    y = h * h  # saves the old h
    h *= 2.0
    (gx.sum(y) + gx.sum(h)).backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * X + 2.0)


def test_in_place_without_recording_writes_through_aliases(backend):
    x = gx.tensor(X, dtype="float64")
    v = x[0, ...]
    x *= 3.0
    np.testing.assert_allclose(v.numpy(), 3 * X[0])


def test_transform_input_shares_the_callers_version_counter(backend):
    """grad(f)(t) hands f a Tensor over t's memory: writing into t while f runs must reach
    backward's version check (it gave 2 * 10 for the overwritten element before)."""
    t = gx.tensor([1.0, 2.0], dtype="float64")

    def f(x):
        y = x * x  # saves x, which is t's memory
        t[0] = 10.0
        return gx.sum(y)

    with pytest.raises(gx.GraphError, match="multiply.*modified in place"):
        gx.grad(f)(t)
    np.testing.assert_allclose(gx.grad(lambda x: gx.sum(x * x))(t).numpy(), [20.0, 4.0])
