"""Tape semantics: order, fan-out, accumulation, freeing, higher order, dtypes, in-place."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import gradx as gx

# every test here runs on the compiled hot path and on the Python one
pytestmark = pytest.mark.usefixtures("hot_path")


def test_fan_out_sums_and_leaves_accumulate(backend):
    x = gx.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * x + x  # x used three times
    y.sum().backward()
    gx.testing.assert_allclose(x.grad, [3.0, 5.0, 7.0])
    (x * 2).sum().backward()
    gx.testing.assert_allclose(x.grad, [5.0, 7.0, 9.0])


def test_shared_gradient_arrays_are_not_aliased(backend):
    x = gx.tensor([1.0, 2.0], requires_grad=True)
    w = gx.tensor([3.0, 4.0], requires_grad=True)
    (x + w).sum().backward()
    assert x.grad.data is not w.grad.data
    x.grad.data[...] = 0  # gradients are owned, writable arrays (clipping updates in place)
    gx.testing.assert_allclose(w.grad, [1.0, 1.0])
    gx.testing.assert_allclose(x.grad, [0.0, 0.0])


def test_long_chain_has_no_recursion_limit():
    x = gx.tensor(0.5, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.backward()
    assert x.grad.item() == 1.0


def test_second_backward_through_freed_graph_raises():
    x = gx.tensor([1.0, 2.0], requires_grad=True)
    y = (gx.exp(x)).sum()
    y.backward()
    with pytest.raises(gx.GraphError, match="retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_pass():
    x = gx.tensor([1.0, 2.0], requires_grad=True)
    y = gx.exp(x).sum()
    y.backward(retain_graph=True)
    y.backward()
    gx.testing.assert_allclose(x.grad, 2 * np.exp([1.0, 2.0]), rtol=1e-6)


def test_create_graph_gives_differentiable_gradients(backend):
    x = gx.tensor([0.5, 1.5], dtype="float64", requires_grad=True)
    y = (x**3).sum()
    y.backward(create_graph=True)
    g = x.grad
    assert g.requires_grad
    x.grad = None
    g.sum().backward()
    gx.testing.assert_allclose(x.grad, 6 * np.array([0.5, 1.5]), rtol=1e-12)


def test_nested_grad_to_third_order():
    f = lambda x: gx.sin(x) * x  # noqa: E731
    x = 0.7
    d3 = gx.grad(gx.grad(gx.grad(f)))(x)
    expected = -3 * np.sin(x) - x * np.cos(x)
    assert abs(float(d3) - expected) < 1e-5


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gradients_keep_input_dtype_through_matmul(backend, dtype):
    w = gx.tensor(np.ones((4, 3)), dtype=dtype, requires_grad=True)
    x = gx.tensor(np.ones((2, 4)), dtype=dtype)
    h = gx.tanh(x @ w) * 2.0 + 1.0
    h.mean().backward()
    assert w.grad.dtype == w.dtype


def test_mixed_precision_gradient_is_cast_back():
    a = gx.tensor([1.0, 2.0], dtype="float32", requires_grad=True)
    b = gx.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.dtype == a.dtype and b.grad.dtype == b.dtype


def test_first_order_backward_records_nothing(monkeypatch):
    import gradx._primitive as prim

    calls = []
    real = prim._apply
    monkeypatch.setattr(prim, "_apply", lambda *a: calls.append(a[0].name) or real(*a))
    x = gx.tensor([1.0, 2.0], requires_grad=True)
    y = gx.tanh(x * x).sum()
    calls.clear()
    y.backward()
    assert calls == []


def test_no_grad_and_enable_grad():
    x = gx.tensor([1.0], requires_grad=True)
    with gx.no_grad():
        y = x * 2
        with gx.enable_grad():
            z = x * 2
    assert not y.requires_grad and z.requires_grad
    assert gx.is_grad_enabled()


def test_no_grad_is_thread_local():
    seen = {}

    def worker():
        seen["thread"] = gx.is_grad_enabled()

    with gx.no_grad():
        t = threading.Thread(target=worker)
        t.start()
        t.join()
        seen["main"] = gx.is_grad_enabled()
    assert seen == {"thread": True, "main": False}


def test_detach_and_stop_gradient():
    x = gx.tensor([2.0], requires_grad=True)
    y = x * gx.stop_gradient(x) + x.detach() * 0
    y.sum().backward()
    gx.testing.assert_allclose(x.grad, [2.0])


def test_in_place_update_of_saved_value_raises():
    x = gx.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    y = h * h  # saves h
    with gx.no_grad():
        h += 1  # written into the memory y's node saved (a recorded h += 1 rebinds h instead)
    with pytest.raises(gx.GraphError, match="multiply.*modified in place"):
        y.sum().backward()


def test_setitem_bumps_version_and_is_detected():
    x = gx.tensor([1.0, 2.0, 3.0], requires_grad=True)
    h = x * 1.0
    y = gx.exp(h)  # saves its output
    with gx.no_grad():
        y[0] = 5.0  # written in place (a recorded setitem rebinds y to a new array instead)
    with pytest.raises(gx.GraphError, match="exp"):
        y.sum().backward()


def test_in_place_ops_that_no_rule_reads_are_fine():
    x = gx.tensor([1.0, 2.0], requires_grad=True)
    h = x + 1  # add saves nothing
    h += 3
    h.sum().backward()
    gx.testing.assert_allclose(x.grad, [1.0, 1.0])


def test_in_place_on_leaf_requiring_grad_raises_unless_no_grad():
    w = gx.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(gx.GraphError, match="no_grad"):
        w -= 1.0
    with gx.no_grad():
        w -= 1.0
    gx.testing.assert_allclose(w, [0.0, 1.0])


def test_setitem_records_gradients():
    x = gx.tensor([1.0, 2.0, 3.0], requires_grad=True)
    v = gx.tensor(10.0, requires_grad=True)
    y = x * 1.0
    y[1] = v * 2
    (y * gx.tensor([1.0, 2.0, 3.0])).sum().backward()
    gx.testing.assert_allclose(x.grad, [1.0, 0.0, 3.0])
    gx.testing.assert_allclose(v.grad, 4.0)


def test_advanced_index_repeats_accumulate(backend):
    x = gx.tensor([1.0, 2.0, 3.0], requires_grad=True)
    idx = gx.tensor([0, 2, 0, 0])
    x[idx].sum().backward()
    gx.testing.assert_allclose(x.grad, [3.0, 0.0, 1.0])


def test_requires_grad_on_integer_tensor_raises():
    with pytest.raises(gx.DTypeError, match="int64"):
        gx.tensor([1, 2], requires_grad=True)


def test_backward_of_non_scalar_needs_grad():
    x = gx.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(gx.GraphError, match="grad="):
        (x * 2).backward()
    (x * 2).backward(grad=gx.tensor([1.0, 0.5]))
    gx.testing.assert_allclose(x.grad, [2.0, 1.0])


def test_graph_has_no_reference_cycles():
    import gc
    import weakref

    gc.collect()
    gc.disable()
    try:
        x = gx.tensor([1.0, 2.0], requires_grad=True)
        h = gx.tanh(x * 3)
        ref = weakref.ref(h._node)
        loss = (h * h).sum()
        loss.backward()
        del h, loss
        assert ref() is None  # freed by reference counting alone
    finally:
        gc.enable()


def test_ndarray_on_the_left_defers_to_tensor(numpy_default):
    x = gx.tensor([1.0, 2.0], requires_grad=True)
    y = np.array([3.0, 4.0], dtype=np.float32) * x
    assert isinstance(y, gx.Tensor)
    y.sum().backward()
    gx.testing.assert_allclose(x.grad, [3.0, 4.0])


def test_clone_is_a_differentiable_copy():
    x = gx.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    y = h * h  # saves h
    c = h.clone()
    c += 1  # modifies the copy only
    (y.sum() + c.sum()).backward()
    gx.testing.assert_allclose(x.grad, [10.0, 18.0])
    assert c.data is not h.data
