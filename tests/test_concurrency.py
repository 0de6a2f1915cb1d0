"""Threads: grad mode, the scoped backend and the scoped default dtype are per thread;
two threads training two models on two backends at once get exactly the results each
gets alone; many threads differentiating at once agree with a sequential run.

Threads are stepped in lockstep with barriers, so their operations really interleave.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import gradx as gx

# every test here runs on the compiled hot path and on the Python one
pytestmark = pytest.mark.usefixtures("hot_path")

TIMEOUT = 30
_BARRIERS: list[threading.Barrier] = []


def barrier(n: int = 2) -> threading.Barrier:
    """A barrier that run_threads breaks when any thread fails, so none waits forever."""
    b = threading.Barrier(n, timeout=TIMEOUT)
    _BARRIERS.append(b)
    return b


def run_threads(*targets):
    """Run each target in its own thread; re-raise the first exception any of them hit."""
    errors: list[BaseException] = []

    def wrap(fn):
        def inner():
            try:
                fn()
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                errors.append(exc)
                for b in _BARRIERS:
                    b.abort()
        return inner

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
        assert not t.is_alive(), "a thread hung"
    if errors:
        raise errors[0]


def test_grad_mode_is_per_thread():
    inside, done = barrier(), barrier()
    seen = {}

    def evaluating():
        with gx.no_grad():
            inside.wait()  # the other thread records while this one is in no_grad
            x = gx.tensor([1.0], requires_grad=True)
            seen["no_grad"] = (gx.is_grad_enabled(), (x * 2).requires_grad)
            done.wait()

    def training():
        inside.wait()
        x = gx.tensor([1.0], requires_grad=True)
        seen["grad"] = (gx.is_grad_enabled(), (x * 2).requires_grad)
        done.wait()

    run_threads(evaluating, training)
    assert seen == {"no_grad": (False, False), "grad": (True, True)}
    assert gx.is_grad_enabled()


def test_no_grad_as_a_decorator_called_from_two_threads_at_once():
    together = barrier()
    order = barrier()

    @gx.no_grad()
    def evaluate(first: bool):
        together.wait()  # both threads are inside the same decorated function
        if not first:
            order.wait()  # the first one leaves first
        out = gx.is_grad_enabled()
        if first:
            order.wait()
        return out

    results = {}
    run_threads(lambda: results.setdefault("a", evaluate(True)),
                lambda: results.setdefault("b", evaluate(False)))
    assert results == {"a": False, "b": False}
    assert gx.is_grad_enabled()


def test_one_no_grad_object_shared_by_two_threads():
    mode = gx.no_grad()
    b1, b2, b3 = barrier(), barrier(), barrier()
    states = {}

    def first():  # enters first and leaves first, while the other thread is still inside
        with mode:
            b1.wait()
            b2.wait()
            states["first inside"] = gx.is_grad_enabled()
        states["first after"] = gx.is_grad_enabled()
        b3.wait()

    def second():
        b1.wait()
        with mode:
            b2.wait()
            b3.wait()
            states["second inside"] = gx.is_grad_enabled()
        states["second after"] = gx.is_grad_enabled()

    run_threads(first, second)
    assert states == {"first inside": False, "first after": True, "second inside": False,
                      "second after": True}


def test_backend_and_default_dtype_scopes_are_per_thread():
    inside, done = barrier(), barrier()
    seen = {}

    def scoped():
        with gx.use_backend("array_api_strict"), gx.default_dtype("float64"):
            inside.wait()
            t = gx.ones((2,))
            seen["scoped"] = (t.backend.name, gx.get_default_dtype(), t.dtype == t.backend.dtype(
                "float64"))
            done.wait()

    def plain():
        inside.wait()
        t = gx.ones((2,))
        seen["plain"] = (t.backend.name, gx.get_default_dtype(), str(t.dtype))
        done.wait()

    run_threads(scoped, plain)
    assert seen["scoped"] == ("array_api_strict", "float64", True)
    assert seen["plain"] == (gx.get_backend().name, "float32", "float32")


def _train(backend: str, steps: int, lockstep: threading.Barrier | None = None) -> dict:
    """Train a small MLP with SGD on ``backend``; the losses and final parameters."""
    rng = np.random.default_rng(7)
    host = {"w1": rng.standard_normal((5, 12)) * 0.4, "b1": np.zeros(12),
            "w2": rng.standard_normal((12, 3)) * 0.4}
    xs, labels = rng.standard_normal((16, 5)), rng.integers(0, 3, 16)
    with gx.use_backend(backend):
        params = {k: gx.tensor(v, dtype="float32", requires_grad=True) for k, v in host.items()}
        x, y = gx.tensor(xs, dtype="float32"), gx.tensor(labels)
        losses = []
        for _ in range(steps):
            if lockstep is not None:
                lockstep.wait()
            h = gx.tanh(x @ params["w1"] + params["b1"])
            loss = gx.nn.functional.cross_entropy(h @ params["w2"], y)
            loss.backward()
            with gx.no_grad():
                for p in params.values():
                    p -= 0.1 * p.grad
                    p.grad = None
            losses.append(loss.item())
        return {"losses": losses, **{k: p.numpy() for k, p in params.items()}}


def test_two_threads_train_on_two_backends_like_each_alone():
    steps = 40
    alone = {b: _train(b, steps) for b in ("numpy", "array_api_strict")}
    lockstep = barrier()
    together: dict = {}
    run_threads(lambda: together.setdefault("numpy", _train("numpy", steps, lockstep)),
                lambda: together.setdefault("array_api_strict",
                                            _train("array_api_strict", steps, lockstep)))
    for b in alone:
        assert alone[b]["losses"][-1] < alone[b]["losses"][0]
        for key in alone[b]:
            np.testing.assert_array_equal(together[b][key], alone[b][key], err_msg=f"{b} {key}")


FUNCTIONS = [
    lambda x: gx.sum(gx.tanh(x @ x.T) * x[:, :1]),
    lambda x: gx.logsumexp(gx.sin(x) * 3.0),
    lambda x: gx.sum(gx.cumsum(x, axis=1) ** 2) / gx.linalg.norm(x),
    lambda x: gx.sum(gx.grad(lambda t: gx.sum(gx.exp(t) * t))(x)),
]


@pytest.mark.parametrize("n_threads", [8])
def test_many_threads_differentiating_at_once_agree_with_a_sequential_run(backend, n_threads):
    name = gx.get_backend().name
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((3, 4)) for _ in range(n_threads)]

    def work(i: int) -> list:
        with gx.use_backend(name), gx.default_dtype("float64"):
            x = gx.tensor(inputs[i])
            f = FUNCTIONS[i % len(FUNCTIONS)]
            out = []
            for _ in range(20):
                if lockstep is not None:
                    lockstep.wait()
                value, g = gx.value_and_grad(f)(x)
                hv = gx.hvp(f, (x,), (gx.ones_like(x),))[0]
                out.append((value.numpy(), g.numpy(), hv.numpy()))
            return out

    lockstep = None
    sequential = [work(i) for i in range(n_threads)]
    lockstep = barrier(n_threads)
    concurrent: dict = {}
    run_threads(*[lambda i=i: concurrent.setdefault(i, work(i)) for i in range(n_threads)])
    for i in range(n_threads):
        for a, b in zip(concurrent[i], sequential[i], strict=True):
            for u, v in zip(a, b, strict=True):
                np.testing.assert_array_equal(u, v)
