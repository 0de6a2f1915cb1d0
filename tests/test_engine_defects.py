"""Engine defects, each on both hot paths (and both test backends where a backend matters):

- NumPy scalars are weak, as Python scalars are: ``x / np.sqrt(d)`` keeps x's dtype and works
  on every backend, in every dispatch path and in Tensor's in-place operators;
- a second backward through nodes that saved nothing (``x.to(other)``, add, sum) works;
- a leaf's ``.grad`` is never an object the caller or another leaf holds (the seed);
- a ContextVar's set and restore cannot be split by an interrupt.
"""

from __future__ import annotations

import contextlib
import ctypes
import operator
import random
import sys
import threading
import time
from typing import Any

import numpy as np
import pytest

import gradx as gx
from gradx import _backend, _hot, _primitive, _tape
from gradx.ops import creation

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.usefixtures("hot_path")

OTHER = {"numpy": "array_api_strict", "array_api_strict": "numpy", "cupy": "numpy"}


def _np(t: gx.Tensor) -> np.ndarray:
    return t.numpy()


# -- 8: NumPy scalars are weak --------------------------------------------------------------

NP_SCALARS = [np.float64(2.5), np.float32(0.1), np.float16(1.5), np.int64(3), np.int32(-2),
              np.uint8(4), np.bool_(True), np.complex128(1 + 2j), np.longdouble(0.75)]
OPS = [operator.add, operator.sub, operator.mul, operator.truediv, operator.pow]


def _outcome(f):
    """(dtype, values) of f(), or the exception class it raised."""
    try:
        y = f()
    except Exception as exc:  # noqa: BLE001  (the comparison is the point)
        return type(exc)
    return str(y.dtype), _np(y)


def _same(a, b) -> None:
    if isinstance(a, type) or isinstance(b, type):
        assert a == b
        return
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("s", NP_SCALARS, ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("op", OPS, ids=lambda op: op.__name__)
def test_numpy_scalar_behaves_as_the_python_scalar(backend, s, op):
    """Both orders, a float32 and an int32 tensor: the NumPy scalar gives exactly what the
    Python scalar it stands for gives (dtype, values, or the error)."""
    py = complex(s) if isinstance(s, np.complexfloating) else (
        float(s) if isinstance(s, np.longdouble) else s.item())
    for x in (gx.tensor([1.0, 2.0, 4.0]), gx.tensor([1, 2, 4], dtype="int32")):
        _same(_outcome(lambda x=x: op(x, s)), _outcome(lambda x=x: op(x, py)))
        _same(_outcome(lambda x=x: op(s, x)), _outcome(lambda x=x: op(py, x)))


@pytest.mark.parametrize("s", [np.float64(2.5), np.float32(0.1), np.int64(3), np.float16(3)],
                         ids=lambda s: type(s).__name__)
def test_numpy_scalar_keeps_float32_like_pytorch(backend, s):
    """x / np.sqrt(d), np.float64(2) * x and the rest stay float32, with PyTorch's values and
    gradients (it treats NumPy scalars as weak too)."""
    host = np.array([0.5, -1.25, 3.0], np.float32)
    x = gx.tensor(host, requires_grad=True)
    tx = torch.tensor(host, requires_grad=True)
    exprs = [lambda a: a / s, lambda a: s * a, lambda a: s - a, lambda a: a ** s,
             lambda a: s / (a * a + 1.0), lambda a: gx.multiply(a, s) if isinstance(a, gx.Tensor)
             else a * s]
    for f in exprs:
        x.grad = None
        tx.grad = None
        y, ty = f(x), f(tx)
        assert str(y.dtype).endswith("float32") and ty.dtype == torch.float32
        np.testing.assert_allclose(_np(y), ty.detach().numpy(), rtol=1e-6)
        y.sum().backward()
        ty.sum().backward()
        assert str(x.grad.dtype).endswith("float32")
        np.testing.assert_allclose(_np(x.grad), tx.grad.numpy(), rtol=1e-5)


def test_x_over_sqrt_of_a_numpy_float64(backend):
    """The reported case: float32 on NumPy, no BackendMismatchError on array_api_strict."""
    d = 4
    x = gx.tensor([1.0, 2.0], requires_grad=True)
    y = x / np.sqrt(d)
    assert y.dtype == x.dtype
    np.testing.assert_array_equal(_np(y), np.array([0.5, 1.0], np.float32))
    y.sum().backward()
    np.testing.assert_array_equal(_np(x.grad), np.array([0.5, 0.5], np.float32))


def test_numpy_scalar_in_the_general_dispatch(backend):
    """Three arguments (where), a scalar on the left of a primitive call, and a non-leaf."""
    x = gx.tensor([-1.0, 2.0, 3.0], requires_grad=True)
    h = x * 2.0
    y = gx.where(h > 0.0, h, np.float64(0.5))
    assert y.dtype == x.dtype
    np.testing.assert_array_equal(_np(y), np.array([0.5, 4.0, 6.0], np.float32))
    z = gx.maximum(np.float32(1.0), h) + gx.subtract(np.int64(1), h)
    assert z.dtype == x.dtype
    (y.sum() + z.sum()).backward()
    np.testing.assert_array_equal(_np(x.grad), np.array([-2.0, 2.0, 2.0], np.float32))


def test_numpy_scalar_in_place_operators(backend):
    """Unrecorded (no_grad, as optimizers update) and recorded in-place updates, and
    __setitem__: the tensor keeps its dtype on every backend."""
    x = gx.tensor([1.0, 2.0, 4.0])
    x *= np.float64(3.0)
    x /= np.float32(2.0)
    x += np.int64(1)
    x -= np.float16(0.5)
    x[0] = np.float64(7.0)
    assert str(x.dtype).endswith("float32")
    np.testing.assert_array_equal(_np(x), np.array([7.0, 3.5, 6.5], np.float32))
    w = gx.tensor([1.0, 2.0], requires_grad=True)
    with gx.no_grad():
        w -= np.float64(0.5) * w
    assert str(w.dtype).endswith("float32")
    h = w * 1.0
    h *= np.float64(4.0)
    assert str(h.dtype).endswith("float32")
    h.sum().backward()
    np.testing.assert_array_equal(_np(w.grad), np.array([4.0, 4.0], np.float32))


def test_numpy_scalar_takes_the_fast_path_first():
    """Only a miss of ``type(b) in _SCALARS`` asks whether b is a NumPy scalar."""
    assert _primitive._weak_scalar(np.float64(2.0)) == 2.0
    assert type(_primitive._weak_scalar(np.float64(2.0))) is float
    assert type(_primitive._weak_scalar(np.int8(2))) is int
    assert type(_primitive._weak_scalar(np.bool_(False))) is bool
    assert type(_primitive._weak_scalar(np.longdouble(2.0))) is float
    assert type(_primitive._weak_scalar(np.clongdouble(2.0))) is complex
    for other in (np.zeros(()), np.str_("a"), "a", None, [1.0]):
        assert _primitive._weak_scalar(other) is _primitive._NOT_WEAK


# -- 10: a second backward through nodes that saved nothing ------------------------------------

def test_second_backward_through_a_transfer(backend):
    other = OTHER[backend]
    x = gx.tensor([1.0, 2.0, 3.0], requires_grad=True)
    loss = x.to(other).sum()
    loss.backward()
    loss.backward()
    np.testing.assert_array_equal(_np(x.grad), np.full(3, 2.0, np.float32))
    assert x.grad.backend is x.backend


def test_second_backward_through_nodes_that_saved_nothing_matches_pytorch(backend):
    """add, reshape and sum save nothing: walked again, as PyTorch allows."""
    host = np.array([[1.0, -2.0], [0.5, 4.0]], np.float32)
    x = gx.tensor(host, requires_grad=True)
    tx = torch.tensor(host, requires_grad=True)
    y = gx.reshape(x + 1.0, (4,)).sum()
    ty = (tx + 1.0).reshape(4).sum()
    for _ in range(3):
        y.backward()
        ty.backward()
    np.testing.assert_array_equal(_np(x.grad), tx.grad.numpy())


def test_a_node_that_needs_freed_values_still_raises(backend):
    x = gx.tensor([1.0, 2.0], requires_grad=True)
    y = gx.exp(x.to(OTHER[backend])).sum()
    y.backward()
    with pytest.raises(gx.GraphError, match="exp.*retain_graph=True"):
        y.backward()


# -- 19: .grad is never an object someone else holds --------------------------------------------

def _graphs():
    """(name, build(x, z) -> root): the seed reaches x unchanged (y = x, identity rules) or
    through a rule."""
    return [("y = x", lambda x, z: x), ("x + z", lambda x, z: x + z),
            ("x - z", lambda x, z: x - z), ("(x + z) + x", lambda x, z: (x + z) + x),
            ("x * 1", lambda x, z: x * 1.0)]


@pytest.mark.parametrize("create_graph", [False, True])
@pytest.mark.parametrize("name", [g[0] for g in _graphs()])
def test_seed_is_never_grad_and_never_mutated(backend, name, create_graph):
    build = dict(_graphs())[name]
    host = np.array([5.0, 6.0], np.float32)
    x = gx.tensor([1.0, 2.0], requires_grad=True)
    z = gx.tensor([3.0, 4.0], requires_grad=True)
    tx = torch.tensor([1.0, 2.0], requires_grad=True)
    tz = torch.tensor([3.0, 4.0], requires_grad=True)
    seed = gx.tensor(host)
    for _ in range(3):  # the later walks accumulate into what the first stored
        build(x, z).backward(seed, create_graph=create_graph)
        build(tx, tz).backward(torch.tensor(host), create_graph=create_graph)
        np.testing.assert_array_equal(_np(seed), host)
        for leaf in (x, z):
            assert leaf.grad is None or leaf.grad is not seed
        assert x.grad is not z.grad
    np.testing.assert_array_equal(_np(x.grad), tx.grad.detach().numpy())
    if z.grad is not None:
        np.testing.assert_array_equal(_np(z.grad), tz.grad.detach().numpy())
    if backend == "numpy":
        assert not np.shares_memory(x.grad.data, seed.data)
        if z.grad is not None:
            assert not np.shares_memory(x.grad.data, z.grad.data)


def test_recorded_seed_is_copied_with_its_graph(backend):
    """create_graph with a seed that itself requires grad: ``.grad`` is a recorded copy, so
    the gradient still flows back to the seed, and the seed is untouched."""
    x = gx.tensor([1.0, 2.0], requires_grad=True)
    z = gx.tensor([3.0, 4.0], requires_grad=True)
    seed = gx.tensor([5.0, 6.0], requires_grad=True)
    (x + z).backward(seed, create_graph=True)
    assert x.grad is not seed and z.grad is not seed and x.grad is not z.grad
    assert x.grad.requires_grad
    (x.grad * 3.0 + z.grad).sum().backward()
    np.testing.assert_array_equal(_np(seed.grad), np.full(2, 4.0, np.float32))
    np.testing.assert_array_equal(_np(seed), np.array([5.0, 6.0], np.float32))
    with gx.no_grad():
        x.backward(gx.tensor([1.0, 1.0]))  # adds into x.grad, not into the seed
    np.testing.assert_array_equal(_np(seed), np.array([5.0, 6.0], np.float32))


def test_raw_array_seed_is_not_kept(backend):
    x = gx.tensor([1.0, 2.0], requires_grad=True)
    raw = gx.tensor([5.0, 6.0]).data
    y = x + 0.0
    y.backward(raw)
    y = x + 0.0
    y.backward(raw)
    np.testing.assert_array_equal(np.asarray(gx.tensor(raw).numpy()), [5.0, 6.0])
    np.testing.assert_array_equal(_np(x.grad), [10.0, 12.0])


# -- 21: an interrupt cannot split a ContextVar's set from its restore -------------------------

class _Interrupt(BaseException):
    """Raised asynchronously, like KeyboardInterrupt: not an Exception, so nothing wraps it."""


DEFAULT_STATE = (True, False, None, None, None)


def _state() -> tuple:
    """The thread's scoped state (the recorder count is process-wide: checked at the end)."""
    return (_tape._grad_enabled.get(), _tape._anomaly.get(), _backend._scoped.get(),
            creation._default_dtype.get(), _primitive._recorder.get())


def _restore_default_state() -> None:
    _tape._grad_enabled.set(True)
    _tape._anomaly.set(False)
    _backend._scoped.set(None)
    creation._default_dtype.set(None)
    _primitive._recorder.set(None)


@gx.no_grad()
def _decorated(x):
    return x * 2.0


def _steps(x) -> None:
    """One round of everything in gradx that sets a ContextVar for a while."""
    with gx.no_grad():
        x * 2.0
    with gx.enable_grad():
        with gx.no_grad():
            x + 1.0
    _decorated(x)
    with _tape.detect_anomaly():
        x.grad = None
        (x * x).sum().backward()
    gx.grad(lambda t: (t * t).sum())(x)
    gx.jvp(lambda t: t * 2.0, (x,), (x,))
    gx.vjp(lambda t: t * 3.0, x)[1](x)
    with gx.use_backend("numpy"):
        gx.zeros(2)
    with gx.default_dtype("float64"):
        gx.tensor([1.0])
    with _primitive.recording(lambda *a: None):
        x * 3.0


def _interrupt_at_random(steps, seconds: float) -> tuple[int, list]:
    """Run ``steps`` in a loop on a thread while this one raises _Interrupt in it at random
    moments; after each, that thread's state must be the default. Returns the number of
    interrupts that landed and the broken states seen."""
    set_async = ctypes.pythonapi.PyThreadState_SetAsyncExc
    set_async.argtypes = (ctypes.c_ulong, ctypes.py_object)
    x = gx.tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    ready, done = threading.Event(), threading.Event()
    landed, broken, final = [0], [], []

    def worker() -> None:
        ready.set()
        while True:
            try:
                try:
                    while not done.is_set():
                        steps(x)
                except _Interrupt:
                    landed[0] += 1
                state = _state()
                if state != DEFAULT_STATE:
                    broken.append(state)
                    _restore_default_state()
                if done.is_set():
                    final.append(_state())
                    return
            except _Interrupt:  # landed in the bookkeeping above: the next round checks
                landed[0] += 1

    thread = threading.Thread(target=worker, daemon=True)
    switch = __import__("sys").getswitchinterval()
    __import__("sys").setswitchinterval(1e-4)
    unraisable = sys.unraisablehook

    def quiet(report: Any) -> None:
        # an interrupt landing in a finalizer (a weakref callback, __del__) cannot propagate:
        # Python reports it through this hook instead, an expected outcome of this test
        if not isinstance(report.exc_value, _Interrupt):
            unraisable(report)

    sys.unraisablehook = quiet
    try:
        thread.start()
        ready.wait()
        rng = random.Random(0)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(rng.uniform(0, 0.0015))
            set_async(thread.ident, _Interrupt)
        time.sleep(0.01)
    finally:
        # ctypes.py_object cannot pass NULL: clear through a plain pointer type
        clear = ctypes.pythonapi.PyThreadState_SetAsyncExc
        clear.argtypes = (ctypes.c_ulong, ctypes.c_void_p)
        clear(thread.ident, None)
        done.set()
        thread.join(10)
        __import__("sys").setswitchinterval(switch)
        sys.unraisablehook = unraisable
    assert not thread.is_alive()
    assert final == [DEFAULT_STATE]
    return landed[0], broken


def test_interrupts_leave_the_default_state(hot_path, numpy_default):
    if _tape.Scope is _tape._PyScope:
        # no compiled code runs between a set and the block's protection only when the
        # Scope is compiled; a Python __exit__ is checked for an interrupt as it starts
        pytest.skip("the compiled Scope is not in use (GRADX_PURE_PYTHON=1 or not built)")
    before = _state()
    hooks = _primitive._HOOKS[0], _primitive._HOOKED[0]
    landed, broken = _interrupt_at_random(_steps, 2.5)
    assert landed > 100, landed  # the interrupts did land, at many different moments
    assert broken == [], f"{len(broken)} of {landed} interrupts left {broken[:5]}"
    assert _state() == before  # this thread's own state is untouched
    assert (_primitive._HOOKS[0], _primitive._HOOKED[0]) == hooks  # every recorder counted off


@pytest.mark.parametrize("impl", ["compiled", "python"])
def test_scope_semantics(impl, numpy_default):
    """Nesting, reuse of one object, exceptions, threads sharing a decorated function, the
    value given to ``as``, and the recorder count: the same on both implementations."""
    if impl == "compiled" and not _hot.compiled_available():
        pytest.skip("gradx._speedups was not built")
    Scope = _tape._PyScope if impl == "python" else gx._speedups.Scope

    class Mode(Scope, contextlib.ContextDecorator):
        pass

    var = _tape._grad_enabled
    off = Mode((var,), (False,))
    with off as v:
        assert v is False and not var.get()
        with Mode((var,), (True,)):
            with off:
                assert not var.get()
            assert var.get()
        assert not var.get()
    assert var.get()
    with pytest.raises(KeyError), off:
        raise KeyError("x")
    assert var.get()
    two = Scope((var, _tape._anomaly), (False, True))
    with two as v:
        assert v is None and (var.get(), _tape._anomaly.get()) == (False, True)
    assert (var.get(), _tape._anomaly.get()) == (True, False)

    seen, gate = [], threading.Barrier(4)

    @Mode((var,), (False,))
    def f():
        gate.wait()
        seen.append(var.get())

    threads = [threading.Thread(target=f) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [False] * 4 and var.get()

    counted = ([0], [False])
    rec = Scope((_primitive._recorder,), ("r",), counted)
    with rec:
        with rec:
            assert counted == ([2], [True])
        assert counted == ([1], [True])
    assert counted == ([0], [False]) and _primitive._recorder.get() is None
    with pytest.raises(RuntimeError, match="without __enter__"):
        off.__exit__(None, None, None)
    with pytest.raises(TypeError):
        Scope((var,), (1, 2))
    with pytest.raises(TypeError):
        Scope(("not a var",), (1,))


def test_public_scopes_restore_on_error(backend):
    before = _state()
    with pytest.raises(ValueError):
        with gx.no_grad(), _tape.detect_anomaly(), gx.use_backend("numpy") as b, \
                gx.default_dtype("float64"):
            assert b is gx._backend.resolve("numpy")
            assert gx.tensor([1.0]).dtype == np.float64
            raise ValueError
    assert _state() == before
