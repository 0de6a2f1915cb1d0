"""Gradient buffers: a fresh gradient is stored without a copy only when nothing else holds
it; later gradients are added into ``.grad`` in place; fan-out sums reuse a buffer only
when the sum is its sole holder. Every case checks values and that no array the user, a
saved value or another leaf holds was written."""

from __future__ import annotations

import weakref

import numpy as np
import pytest

import gradx as gx
from gradx import _tape

# every test here runs on the compiled hot path and on the Python one
pytestmark = pytest.mark.usefixtures("hot_path")


def _writable(t: gx.Tensor) -> bool:
    return t.backend.writable(t.data)


def _returns_saved(kind: str):
    """A primitive ``f(x, c) = x * c`` whose VJP for x hands back a saved array itself:
    ``c`` (an input) or ``ans`` (the output), the shapes a custom rule may take."""

    @gx.primitive(name=f"times_returning_{kind}")
    def f(x, c):
        return x * c

    if kind == "input":
        gx.defvjp(f, lambda g, ans, x, c: c, None)
    else:
        gx.defvjp(f, lambda g, ans, x, c: ans, None)
    return f


def test_holder_count_is_measured_for_this_interpreter():
    probe = [1.0]
    assert _tape._holders(probe) == _tape._ONE_HOLDER
    also = probe
    assert _tape._holders(probe) == _tape._ONE_HOLDER + 1
    del also


def test_fresh_gradient_is_kept_without_a_copy(backend):
    x = gx.tensor(np.ones((3, 4)), requires_grad=True)
    made = []

    @gx.primitive(name="double_noting_its_gradient")
    def double(a):
        return a * 2

    def vjp(g, ans, a):
        out = g * 2
        made.append((weakref.ref(out), x.backend.writable(out)))  # noted, not held
        return out

    gx.defvjp(double, vjp)
    double(x).sum().backward()
    gx.testing.assert_allclose(x.grad, np.full((3, 4), 2.0))
    ref, writable = made[0]
    if writable:
        assert x.grad.data is ref()  # the only other holder was the walk itself
    else:
        assert x.grad.data is not ref()


def test_gradient_held_by_the_user_is_copied(backend):
    """A seed passed through ``x + 0`` reaches the leaf unchanged; the user still holds it."""
    x = gx.tensor([1.0, 2.0], requires_grad=True)
    seed = gx.tensor([5.0, 7.0]).data
    (x + 0.0).backward(grad=seed)
    assert x.grad.data is not seed
    if _writable(x.grad):
        x.grad.data[...] = 0
    gx.testing.assert_allclose(gx.tensor(seed), [5.0, 7.0])


@pytest.mark.parametrize("kind", ["input", "ans"])
def test_rule_returning_a_saved_array_never_lends_it_to_grad(backend, kind):
    f = _returns_saved(kind)
    c = gx.tensor([3.0, 4.0])
    x = gx.tensor([1.0, 2.0], requires_grad=True)
    y = f(x, c)
    kept = y.data if kind == "ans" else c.data
    expect = [3.0, 8.0] if kind == "ans" else [3.0, 4.0]
    y.sum().backward(retain_graph=True)
    gx.testing.assert_allclose(x.grad, expect)
    assert x.grad.data is not kept
    y.sum().backward()  # accumulates in place into x.grad, never into the saved array
    gx.testing.assert_allclose(x.grad, [2 * e for e in expect])
    gx.testing.assert_allclose(gx.tensor(kept), expect)


@pytest.mark.parametrize("kind", ["input", "ans"])
def test_fan_out_sum_never_writes_into_a_saved_array(backend, kind):
    """Two uses of x through a rule that returns a saved array: the second contribution is
    added into the first only if nothing else holds it; with retain_graph the node does."""
    f = _returns_saved(kind)
    c = gx.tensor([3.0, 4.0])
    x = gx.tensor([1.0, 2.0], requires_grad=True)
    y1, y2 = f(x, c), f(x, c)
    loss = (y1 + y2).sum()
    per_use = [3.0, 8.0] if kind == "ans" else [3.0, 4.0]
    for rounds in (1, 2):
        loss.backward(retain_graph=True)
        gx.testing.assert_allclose(x.grad, [2 * rounds * e for e in per_use])
        gx.testing.assert_allclose(y1, [3.0, 8.0])
        gx.testing.assert_allclose(y2, [3.0, 8.0])
        gx.testing.assert_allclose(c, [3.0, 4.0])


def test_fan_out_sum_may_reuse_a_saved_array_once_its_node_let_it_go(backend):
    """Without retain_graph the node frees its output after use, and the sum becomes the
    array's only holder: values must be right whether it is reused or not."""
    f = _returns_saved("ans")
    x = gx.tensor([1.0, 2.0], requires_grad=True)
    c = gx.tensor([3.0, 4.0])
    (f(x, c) + f(x, c) + f(x, c)).sum().backward()
    gx.testing.assert_allclose(x.grad, [9.0, 24.0])


def test_fan_out_of_one_gradient_to_both_sides(backend):
    """``y + y`` hands the same array to y twice: the sum must not double it in place, nor
    change it for another consumer holding it (``* 2.0`` makes it a fresh, owned array)."""
    x = gx.tensor([1.0, -2.0], requires_grad=True)
    y = x * 3.0
    ((y + y) * 2.0).sum().backward()
    gx.testing.assert_allclose(x.grad, [12.0, 12.0])
    x.grad = None
    y = x * 3.0
    ((y * 1.0 + y + y) * 2.0).sum().backward()
    gx.testing.assert_allclose(x.grad, [18.0, 18.0])


def test_fan_out_in_place_keeps_values_on_a_wide_graph(backend):
    """Many consumers of one tensor: every contribution is counted once."""
    x = gx.tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True)
    h = gx.tanh(x)
    total = sum((h * float(k)).sum() for k in range(1, 6))
    total.backward()
    d = 1.0 - np.tanh(np.linspace(-1, 1, 6).reshape(2, 3)) ** 2
    gx.testing.assert_allclose(x.grad, 15.0 * d, rtol=1e-6)


def test_second_backward_adds_into_the_same_buffer(backend):
    x = gx.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    first, data = x.grad, x.grad.data
    (x * 3.0).sum().backward()
    gx.testing.assert_allclose(x.grad, [5.0, 7.0])
    if _writable(first):
        assert x.grad is first and x.grad.data is data
    else:  # namespaces whose arrays gradx cannot prove writable get a new array
        assert x.grad.data is not data


def test_in_place_accumulation_is_seen_by_the_version_counter(backend):
    """A graph that saved ``x.grad`` must not use it after backward added into it."""
    x = gx.tensor([1.0, 2.0], requires_grad=True)
    w = gx.tensor([1.0, 1.0], requires_grad=True)
    (x * x).sum().backward()
    uses_grad = (w * x.grad).sum()  # saves x.grad's array for w's gradient
    (x * 1.0).sum().backward()
    if _writable(x.grad):
        with pytest.raises(gx.GraphError, match="modified in place"):
            uses_grad.backward()
    else:
        uses_grad.backward()
        gx.testing.assert_allclose(w.grad, [2.0, 4.0])


def test_hand_set_grad_of_another_dtype_is_not_written(backend):
    x = gx.tensor([1.0, 2.0], dtype=gx.float32, requires_grad=True)
    mine = gx.tensor([10.0, 20.0], dtype=gx.float64)
    x.grad = mine
    (x * 2.0).sum().backward()
    gx.testing.assert_allclose(x.grad, [12.0, 22.0])
    assert x.grad is not mine
    gx.testing.assert_allclose(mine, [10.0, 20.0])


def test_read_only_grad_is_replaced_not_written():
    x = gx.tensor(np.array([1.0, 2.0]), requires_grad=True)
    frozen = np.array([1.0, 1.0])
    frozen.flags.writeable = False
    x.grad = gx.tensor(frozen)
    (x * 2.0).sum().backward()
    gx.testing.assert_allclose(x.grad, [3.0, 3.0])
    np.testing.assert_array_equal(frozen, [1.0, 1.0])


def test_gradients_of_two_leaves_from_one_array_stay_separate(backend):
    a = gx.tensor([1.0, 2.0], requires_grad=True)
    b = gx.tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()
    (a + b).sum().backward()
    assert a.grad.data is not b.grad.data
    gx.testing.assert_allclose(a.grad, [2.0, 2.0])
    gx.testing.assert_allclose(b.grad, [2.0, 2.0])


@pytest.mark.parametrize("owner", ["optimizer", "module"])
def test_zero_grad_without_none_zeroes_the_buffer_in_place(backend, owner):
    model = gx.nn.Linear(3, 2)
    opt = gx.optim.SGD(model.parameters(), lr=0.1)
    x = gx.tensor(np.ones((4, 3)))
    model(x).sum().backward()
    before = {id(p): (p.grad, p.grad.data) for p in model.parameters()}
    (opt if owner == "optimizer" else model).zero_grad(set_to_none=False)
    for p in model.parameters():
        gx.testing.assert_allclose(p.grad, np.zeros(p.shape))
        if _writable(p.grad):
            assert p.grad is before[id(p)][0] and p.grad.data is before[id(p)][1]
    model(x).sum().backward()
    gx.testing.assert_allclose(model.bias.grad, [4.0, 4.0])
    gx.testing.assert_allclose(model.weight.grad, np.full(model.weight.shape, 4.0))


def test_zero_grad_of_a_recording_grad_makes_a_new_zero_tensor(backend):
    x = gx.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward(create_graph=True)
    recorded = x.grad
    assert recorded.requires_grad
    x.zero_grad_(set_to_none=False)
    assert x.grad is not recorded and not x.grad.requires_grad
    gx.testing.assert_allclose(x.grad, [0.0, 0.0])
    gx.testing.assert_allclose(recorded, [2.0, 4.0])


def test_cupy_writable_rule_on_a_stand_in_module():
    """CuPy arrays are writable unless they are views (which keep their base); checked with
    NumPy standing in for the cupy module, which shares those attributes."""
    from gradx.backends.cupy_backend import CupyBackend

    backend = CupyBackend()
    backend._cp = np  # what _load() hands back once CuPy is imported
    fresh = np.zeros((3, 4))
    assert backend.writable(fresh)
    assert not backend.writable(fresh[1:])
    assert not backend.writable(np.broadcast_to(np.zeros(4), (3, 4)))
    assert not backend.writable(np.float64(1.0))


def test_existing_grad_takes_each_contribution_as_it_arrives(backend):
    """x is used three times; with a .grad already there every contribution is added into
    it during the walk (freed at once), and the sum is the same as summing first."""
    x = gx.tensor([1.0, 2.0], requires_grad=True)
    (x * 0.0).sum().backward()
    buffer = x.grad.data
    y = x * x + gx.sin(x)
    (y * 2.0).sum().backward()
    expect = 2.0 * (2.0 * np.array([1.0, 2.0]) + np.cos([1.0, 2.0]))
    gx.testing.assert_allclose(x.grad, expect, rtol=1e-6)
    if _writable(x.grad):
        assert x.grad.data is buffer


def test_requested_inputs_and_recorded_gradients_leave_grad_alone(backend):
    x = gx.tensor([1.0, 2.0], requires_grad=True)
    (x * 1.0).sum().backward()
    before = x.grad.numpy().copy()
    gx_x = gx.grad(lambda t: (t * t).sum())(x)
    gx.testing.assert_allclose(gx_x, [2.0, 4.0])
    gx.testing.assert_allclose(x.grad, before)
    (x * x).sum().backward(create_graph=True)
    assert x.grad.requires_grad  # a recorded sum, not an in-place add
    gx.testing.assert_allclose(x.grad, before + np.array([2.0, 4.0]))
