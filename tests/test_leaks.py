"""No leaks: training holds memory flat, graphs die by reference counting alone (no
reference cycles that wait for the garbage collector), saved values are freed by
backward, and a tensor that goes out of scope frees its backend array.

Memory numbers are printed (run with -s) so they can be reported.
"""

from __future__ import annotations

import contextlib
import gc
import tracemalloc
import weakref

import numpy as np
import psutil
import pytest

import gradx as gx
from gradx._tape import Node


@contextlib.contextmanager
def no_gc():
    """Run with the cyclic collector off: whatever is freed here was freed by refcounts."""
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def garbage_cycles(fn) -> int:
    """Number of objects only the cyclic collector could free after ``fn()``."""
    with no_gc():
        fn()
        return gc.collect()


def tiny_mlp(seed: int = 0):
    """A 4-16-1 tanh MLP on core ops; ``step()`` runs one SGD step and returns the loss."""
    rng = np.random.default_rng(seed)
    w1 = gx.tensor(rng.standard_normal((4, 16)) * 0.5, dtype="float32", requires_grad=True)
    b1 = gx.zeros((16,), requires_grad=True)
    w2 = gx.tensor(rng.standard_normal((16, 1)) * 0.5, dtype="float32", requires_grad=True)
    x = gx.tensor(rng.standard_normal((8, 4)), dtype="float32")
    y = gx.tensor(rng.standard_normal((8, 1)), dtype="float32")
    params = [w1, b1, w2]

    def step() -> float:
        h = gx.tanh(x @ w1 + b1)
        loss = gx.mean((h @ w2 - y) ** 2)
        loss.backward()
        with gx.no_grad():
            for p in params:
                p.data[...] = p.data - 0.05 * p.grad.data  # in place, as optimizers do
                p._bump_version()
                p.grad = None
        return loss.item()

    return step, params


def _nodes_alive() -> int:
    return sum(1 for o in gc.get_objects() if type(o) is Node)


# -- memory stays flat over many steps ----------------------------------------------------

STEPS = {"numpy": 10_000, "array_api_strict": 2_000, "cupy": 10_000}


def test_training_steps_hold_rss_flat(backend):
    step, _ = tiny_mlp()
    for _ in range(500):  # warm caches, allocator pools, lazily imported modules
        step()
    gc.collect()
    proc = psutil.Process()
    before = proc.memory_info().rss
    losses = [step() for _ in range(STEPS[backend])]
    gc.collect()
    growth = proc.memory_info().rss - before
    print(f"\n[leaks] {backend}: RSS growth over {STEPS[backend]} training steps: "
          f"{growth / 1024:.0f} KiB")
    assert losses[-1] < losses[0]  # it did train
    assert growth < 4 * 2**20, f"RSS grew by {growth / 2**20:.1f} MiB"


def test_training_steps_allocate_nothing_that_stays(backend):
    step, _ = tiny_mlp()
    for _ in range(200):
        step()
    tracemalloc.start()
    try:
        for _ in range(300):
            step()
        first = tracemalloc.get_traced_memory()[0]
        n = 3_000 if backend != "array_api_strict" else 600
        with no_gc():
            for _ in range(n):
                step()
            cycles = gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - first
    finally:
        tracemalloc.stop()
    print(f"\n[leaks] {backend}: traced Python heap growth over {n} more steps: {growth} B; "
          f"objects left for the cyclic gc: {cycles}")
    assert growth < 64 * 1024, f"{growth} bytes still allocated after {n} steps"
    assert cycles == 0
    assert _nodes_alive() == 0


def test_nn_and_optimizer_steps_leave_nothing_behind(backend):
    gx.random.seed(0)
    model = gx.nn.Sequential(gx.nn.Linear(4, 16), gx.nn.Tanh(), gx.nn.Linear(16, 3))
    opt = gx.optim.Adam(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(1)
    x = gx.tensor(rng.standard_normal((8, 4)), dtype="float32")
    labels = gx.tensor(rng.integers(0, 3, 8))

    def step():
        opt.zero_grad()
        loss = gx.nn.functional.cross_entropy(model(x), labels)
        loss.backward()
        opt.step()

    for _ in range(50):
        step()
    assert garbage_cycles(lambda: [step() for _ in range(200)]) == 0
    assert _nodes_alive() == 0


# -- graphs are freed by reference counting -------------------------------------------

def _tracked_graph(x, refs):
    """tanh(x @ x) squared and summed; weak references to the intermediates in ``refs``."""
    h = gx.tanh(x @ x)
    refs += [weakref.ref(h), weakref.ref(h.data)]
    if h._node is not None:  # no node where the caller evaluates without recording
        refs.append(weakref.ref(h._node))
    return gx.sum(h * h)


TRANSFORMS = {
    "backward": lambda f, x: f(x).backward(),
    "retain_graph": lambda f, x: f(x).backward(retain_graph=True),
    "create_graph": lambda f, x: f(x).backward(create_graph=True),
    "grad": lambda f, x: gx.grad(f)(x),
    "grad_of_grad": lambda f, x: gx.grad(lambda t: gx.sum(gx.grad(f)(t)))(x),
    "value_and_grad_aux": lambda f, x: gx.value_and_grad(lambda t: (f(t), {"t": t}),
                                                         has_aux=True)(x),
    "vjp": lambda f, x: gx.vjp(f, x)[1](gx.ones_like(f(x))),
    "jvp": lambda f, x: gx.jvp(f, (x,), (gx.ones_like(x),)),
    "jacobian_fwd": lambda f, x: gx.jacobian(f, mode="fwd")(x),
    "hessian": lambda f, x: gx.hessian(f)(x),
    "hvp": lambda f, x: gx.hvp(f, (x,), (gx.ones_like(x),)),
    "checkpoint": lambda f, x: gx.grad(lambda t: gx.checkpoint(f)(t))(x),
    "check_grads": lambda f, x: gx.testing.check_grads(f, x),
}


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_graphs_die_without_the_garbage_collector(backend, name):
    x = gx.tensor(np.array([[0.5, -0.2], [0.3, 0.9]]), requires_grad=name in (
        "backward", "retain_graph", "create_graph"))
    refs: list = []
    f = lambda t: _tracked_graph(t, refs)  # noqa: E731

    def run():
        out = TRANSFORMS[name](f, x)
        del out
        x.grad = None  # a create_graph gradient holds its own graph, by design

    cycles = garbage_cycles(run)
    alive = [r() for r in refs if r() is not None]
    assert not alive, f"{name}: {len(alive)} of {len(refs)} intermediates outlived the call"
    assert cycles == 0, f"{name}: {cycles} objects were only freeable by the cyclic gc"


def test_backward_frees_saved_values_while_the_loss_is_kept(backend):
    x = gx.tensor(np.ones((3, 3)), requires_grad=True)
    with no_gc():
        h = gx.exp(x @ x)  # exp saves its output for backward
        loss = gx.sum(h)
        saved = weakref.ref(h.data)
        del h
        assert saved() is not None  # the graph holds it until backward
        loss.backward()
        assert saved() is None, "backward kept a saved array alive"
        assert loss._node is not None  # the loss and its node themselves are still here


def test_retain_graph_keeps_saved_values_until_the_loss_goes(backend):
    x = gx.tensor(np.ones((3, 3)), requires_grad=True)
    with no_gc():
        h = gx.exp(x @ x)
        loss = gx.sum(h)
        saved, node = weakref.ref(h.data), weakref.ref(h._node)
        del h
        loss.backward(retain_graph=True)
        assert saved() is not None
        loss.backward()
        del loss
        assert saved() is None and node() is None


def test_tensors_out_of_scope_free_their_backend_arrays(backend):
    with no_gc():
        t = gx.ones((256, 256))
        u = gx.exp(t) * 2.0
        data_t, data_u, tensor_u = weakref.ref(t.data), weakref.ref(u.data), weakref.ref(u)
        del t, u
        assert data_t() is None and data_u() is None and tensor_u() is None
        leaf = gx.ones((64,), requires_grad=True)
        gx.sum(gx.sin(leaf)).backward()
        grad_data = weakref.ref(leaf.grad.data)
        del leaf
        assert grad_data() is None


def test_no_cycle_between_a_tensor_and_its_node(backend):
    x = gx.tensor([1.0, 2.0], requires_grad=True)
    y = gx.sin(x) * x
    node = y._node
    assert not any(r is y for r in gc.get_referents(node))  # the node never holds its output
    assert [r for r in gc.get_referrers(node) if r is not y] == []
