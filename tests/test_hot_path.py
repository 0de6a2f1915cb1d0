"""The compiled hot path (gradx/_speedups.c) against the Python one it replaces.

Dispatch, the backward walk and leaf accumulation exist twice: compiled, and in Python as
the reference and fallback. Every op-table row must give bit-identical values and
gradients on both, first and second order; the cases the compiled functions hand back
to Python must still work; and an installed gradx must have the extension wherever a C
compiler was present. Tape, accumulation, error, anomaly and transform tests also run on
both paths (their modules use the ``hot_path`` fixture).
"""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import sys
import sysconfig
import weakref

import numpy as np
import pytest
from op_table import all_rows
from test_gradients import sample

import gradx as gx
from gradx import _hot

needs_compiled = pytest.mark.skipif(not _hot.compiled_available(),
                                    reason="gradx._speedups was not built (no C compiler)")
ROWS = [r for r in all_rows() if "numpy" not in r.skip_backends]


def _compiler() -> str | None:
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc)


def test_extension_is_built_where_a_compiler_is():
    if _compiler() is None:
        pytest.skip("no C compiler on this machine: the Python hot path is the one in use")
    assert _hot.compiled_available(), (
        "a C compiler is present but gradx._speedups is missing: reinstall with "
        "pip install -e . and read the build log")
    if not _hot.pure_python_requested():
        assert _hot.compiled_enabled()


def test_pure_python_variable_selects_the_python_path():
    code = ("import gradx; from gradx import _backend; "
            "from gradx.backends import numpy_backend as nb; "
            "print(gradx._hot.compiled_enabled(), _backend.ns is _backend._ns, "
            "nb.NumpyBackend.owned is nb._owned)")
    env = dict(os.environ, GRADX_PURE_PYTHON="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == "False True True"


def _run(row, compiled: bool, order: int) -> list[np.ndarray]:
    """Values and gradients of ``row`` on one path, as host arrays."""
    with _hot.using_compiled(compiled):
        xs = [gx.tensor(h, requires_grad=True) for h in sample(row, seed=3)]
        outs = _outputs(row.fn(*xs))
        if order == 1:
            _weighted_sum(outs).backward()
            grads = [x.grad for x in xs]
        else:  # through recorded gradients: create_graph in the walk, Tensors in the rules
            grads = list(gx.grad(lambda *a: sum(gx.sum(g * g) for g in _first(row, a)),
                                 argnums=tuple(range(len(xs))))(*xs))
    return [o.numpy() for o in outs] + [None if g is None else g.numpy() for g in grads]


def _outputs(out) -> list:
    return list(out) if isinstance(out, list | tuple) else [out]


def _weighted_sum(outs: list):
    """A scalar of the float outputs with fixed random weights, so every entry counts."""
    rng = np.random.default_rng(7)
    return sum(gx.sum(o * gx.tensor(rng.standard_normal(o.shape))) for o in outs
               if gx.backend_of(o.data).is_float(o.dtype))


def _first(row, xs):
    g = gx.grad(lambda *a: _weighted_sum(_outputs(row.fn(*a))),
                argnums=tuple(range(len(xs))))(*xs)
    return g if isinstance(g, tuple) else (g,)


def _same(a: list, b: list, what: str) -> None:
    assert len(a) == len(b), what
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        assert (x is None) == (y is None), f"{what}: item {i}"
        if x is not None:
            assert x.dtype == y.dtype and x.shape == y.shape, f"{what}: item {i}"
            np.testing.assert_array_equal(x, y, err_msg=f"{what}: item {i}")


@needs_compiled
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaNs off a domain compare equal
@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_compiled_and_python_paths_agree_bit_for_bit(row):
    with gx.use_backend("numpy"):
        _same(_run(row, True, 1), _run(row, False, 1), f"{row.id}, first order")
        if row.order >= 2 and "rev" in row.modes:
            _same(_run(row, True, 2), _run(row, False, 2), f"{row.id}, second order")


def _tangents(row, compiled: bool) -> list[np.ndarray]:
    """Forward-mode tangents of ``row`` and, where it has a second order, its
    Hessian-vector product: the recorded tangent pass, toposort and saved-value wrapping."""
    with _hot.using_compiled(compiled):
        xs = [gx.tensor(h) for h in sample(row, seed=3)]
        ts = [gx.tensor(h) for h in sample(row, seed=4)]
        outs, tangent = gx.jvp(lambda *a: tuple(_outputs(row.fn(*a))), xs, ts)
        found = list(outs) + list(tangent)
        if row.order >= 2 and "rev" in row.modes:
            found += list(gx.hvp(lambda *a: _weighted_sum(_outputs(row.fn(*a))), xs, ts))
    return [None if v is None else np.asarray(v.numpy()) for v in found]


@needs_compiled
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("row", [r for r in ROWS if "fwd" in r.modes],
                         ids=[r.id for r in ROWS if "fwd" in r.modes])
def test_compiled_and_python_tangent_passes_agree_bit_for_bit(row):
    with gx.use_backend("numpy"):
        _same(_tangents(row, True), _tangents(row, False), f"{row.id}, jvp and hvp")


@pytest.fixture
def compiled():
    if not _hot.compiled_available():
        pytest.skip("gradx._speedups was not built (no C compiler)")
    with _hot.using_compiled(True):
        yield


class Sub(gx.Tensor):
    """A user's Tensor subclass: the compiled dispatch reads its slots like a Tensor's."""

    __slots__ = ("tag",)


def test_tensor_subclasses_and_scalars_on_the_left(compiled, numpy_default):
    x = gx.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    s = Sub(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    s.tag = "mine"
    y = gx.sum(2.0 * (x * s) - 1 + s / 4.0)
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), 2.0 * s.data)
    np.testing.assert_array_equal(s.grad.numpy(), 2.0 * x.data + 0.25)
    assert type(x * s) is gx.Tensor and s.tag == "mine"


def test_calls_the_compiled_dispatch_leaves_to_python(compiled, numpy_default):
    def grads(on_compiled: bool) -> list[np.ndarray]:
        with _hot.using_compiled(on_compiled):
            x = gx.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
            y = gx.tensor(np.ones(3), requires_grad=True)
            parts = [gx.sum(x, axis=0, keepdims=True),          # keyword arguments
                     gx.where(x > 2.0, x, y),                    # three arguments
                     gx.matrix_transpose(x)[0:2, 1],             # a view, then indexing
                     gx.add(np.ones(3), y)]                      # a raw array on the left
            sum(gx.sum(p * p) for p in parts).backward()
            return [x.grad.numpy(), y.grad.numpy()]

    for got, want in zip(grads(True), grads(False), strict=True):
        np.testing.assert_array_equal(got, want)


def test_a_failing_op_and_a_failing_rule_are_named_on_the_compiled_path(compiled):
    a = gx.tensor(np.ones((2, 3)), requires_grad=True)
    b = gx.tensor(np.ones((4, 5)), requires_grad=True)
    with pytest.raises(gx.OpError) as err:
        a @ b
    assert "matmul" in str(err.value) and isinstance(err.value, gx.GradxError)
    assert err.value.__cause__ is not None

    @gx.primitive
    def broken(x, /):
        return x * 2

    gx.defvjp(broken, lambda g, ans, x: g[None, None, None, 5])
    with pytest.raises(gx.OpError, match="broken"):
        broken(a).sum().backward()

    @gx.primitive
    def ruleless(x, /):
        return x + 1

    with pytest.raises(gx.NotDifferentiableError, match="ruleless"):
        ruleless(a).sum().backward()


def test_no_references_are_lost_or_kept_on_the_compiled_path(compiled):
    """Everything a step made is freed by reference counts once dropped, errors included."""
    x = gx.tensor(np.ones(8), requires_grad=True)
    w = gx.tensor(np.full(8, 0.5), requires_grad=True)

    @gx.primitive
    def fails_backward(v, /):
        return v * 1.0

    gx.defvjp(fails_backward, lambda g, ans, v: g[100, 100])
    gc.collect()
    gc.disable()
    try:
        for failing in (False, True):
            h = gx.tanh(x * w + 1.0)
            h = fails_backward(h) if failing else h
            refs = [weakref.ref(h), weakref.ref(h.data), weakref.ref(h._node)]
            loss = gx.sum(h * h)
            if failing:
                with pytest.raises(gx.OpError):
                    loss.backward()
            else:
                loss.backward()
            del h, loss
            assert [r() for r in refs] == [None, None, None]
            assert gc.collect() == 0
    finally:
        gc.enable()
    g = x.grad.data
    assert sys.getrefcount(g) == 3  # x.grad, the name g and the argument: nothing else


@pytest.mark.usefixtures("hot_path")
def test_primitives_on_raw_arrays_call_their_body_and_name_their_errors():
    """Rules call primitives on raw arrays: no Tensor, no node, the body's answer as is."""
    a = np.arange(6.0).reshape(2, 3)
    got = gx.sum(a, axis=0, keepdims=True)
    assert type(got) is np.ndarray
    np.testing.assert_array_equal(got, a.sum(axis=0, keepdims=True))
    np.testing.assert_array_equal(gx.matrix_transpose(a), a.T)
    with pytest.raises(gx.OpError, match=r"matmul\(\(2, 3\) float64, \(2, 3\) float64\)") as err:
        gx.matmul(a, a)
    assert isinstance(err.value, ValueError) and err.value.__cause__ is not None
    with pytest.raises(gx.GradxError, match="sum"):
        gx.sum(a, axis=5)


@pytest.mark.usefixtures("hot_path")
def test_a_tensor_missing_an_attribute_raises_attribute_error():
    """A deleted slot reads as missing on both paths, never as a null pointer."""
    x = gx.tensor(np.ones(3), requires_grad=True)
    y = gx.tensor(np.ones(3))
    del x.requires_grad
    for call in (lambda: x * y, lambda: y * x, lambda: x * 2.0, lambda: 2.0 * x,
                 lambda: gx.tanh(x)):
        with pytest.raises(AttributeError, match="requires_grad"):
            call()


def _fields(t) -> tuple:
    if not isinstance(t, gx.Tensor):
        return (t,)
    return (type(t), id(t.data), t._node, t.requires_grad, t.grad, list(t._version))


def test_compiled_graph_helpers_match_their_python_references(compiled):
    """toposort, the wrapping of saved values and Tensor._make, field by field, on nodes
    that save arrays, only shapes (Meta), nothing, no output, and constant inputs."""
    from gradx import _speedups, _tape

    a = np.linspace(-1.0, 1.0, 12).reshape(3, 4)  # a constant: wrapped without a node
    x = gx.tensor(np.arange(4.0), requires_grad=True)
    h = gx.tanh(gx.tensor(a) @ x)  # matmul saves no output; tanh saves no inputs
    loss = gx.sum(h * gx.logsumexp(h)) + gx.sum(x)  # sum saves shapes only
    roots = [loss._node]
    leaves_c, leaves_py = set(), set()
    order = _speedups.toposort(roots, leaves_c)
    assert order == _tape._toposort(roots, leaves_py) == _tape.toposort(roots)
    assert leaves_c == leaves_py == {x}
    assert [n.seq for n in order] == sorted((n.seq for n in order), reverse=True)
    held = sys.getrefcount(a)
    for node in order:
        args_c, ans_c = _speedups.wrap_saved(node, gx.Tensor)
        args_py, ans_py = _tape._wrap_saved(node, gx.Tensor)
        assert [_fields(v) for v in args_c] == [_fields(v) for v in args_py], node
        assert _fields(ans_c) == _fields(ans_py), node
    del args_c, ans_c, args_py, ans_py
    assert sys.getrefcount(a) == held
    made = gx.Tensor._make(a, x._backend, None, False, [0])
    assert _fields(made) == (gx.Tensor, id(a), None, False, None, [0])
    sub = Sub._make(a, x._backend, None, True, [2])  # a subclass: the Python classmethod
    assert _fields(sub) == (Sub, id(a), None, True, None, [2])
    with pytest.raises(TypeError):
        gx.Tensor._make(a, x._backend)
    with pytest.raises(TypeError, match="not a Node"):
        _speedups.toposort([x], None)


@gx.primitive
def _narrowing(x, /):
    return x * 3.0


gx.defvjp(_narrowing, lambda g, ans, x: g * 3.0)
# a tangent in float32 for a float64 output: the pass must cast it back to the node's dtype
gx.defjvp(_narrowing, lambda t, ans, x: gx.astype(t * 3.0, "float32"))


@gx.primitive(broadcasts=True)
def _by_argnum(x, y, /):
    return x * y


gx.defvjp_argnum(_by_argnum, lambda n, g, ans, x, y: g * (y if n == 0 else x))
gx.defjvp_argnum(_by_argnum, lambda n, t, ans, x, y: t * (y if n == 0 else x))


@gx.primitive
def _no_jvp(x, /):
    return x * x


gx.defvjp(_no_jvp, lambda g, ans, x: 2.0 * g * x)  # forward mode transposes this


def _tangent_graph():
    """A graph whose tangent pass meets a rule with keyword arguments, a tangent that must be
    broadcast (x against a matrix), one that must be cast, a jvp_argnum rule, a transposed
    VJP and fan-out."""
    x = gx.tensor(np.linspace(0.5, 2.0, 4), requires_grad=True)
    m = gx.tensor(np.arange(12.0).reshape(3, 4) / 10)
    h = gx.tanh(x + m)  # add's tangent for x has shape (4,), the node's (3, 4)
    k = _by_argnum(_narrowing(h), _no_jvp(x + 0.5))
    loss = gx.sum(k * h, axis=1) + gx.logsumexp(h, axis=0)[0]
    return x, loss


def _pushed(push, create: bool) -> list:
    from gradx import _tape

    x, loss = _tangent_graph()
    order = _tape._toposort([loss._node], None)
    seed = np.linspace(-1.0, 1.0, 4)
    tangents = {x: gx.Tensor._make(seed, x._backend, None, False, [0]) if create else seed}
    token = _tape._grad_enabled.set(create)
    try:
        push(order, tangents, create)
    finally:
        _tape._grad_enabled.reset(token)
    return [tangents.get(n) for n in order]


@pytest.mark.parametrize("create", [False, True])
def test_compiled_tangent_pass_matches_the_python_one(compiled, create, numpy_default):
    from gradx import _forward, _speedups

    got, want = _pushed(_speedups.push, create), _pushed(_forward._push, create)
    assert len(got) == len(want) and all(v is not None for v in got)
    for c, p in zip(got, want, strict=True):
        assert isinstance(c, gx.Tensor) == isinstance(p, gx.Tensor) == create
        c, p = (c.data, p.data) if create else (c, p)
        assert c.dtype == p.dtype and c.shape == p.shape
        np.testing.assert_array_equal(c, p)


def test_compiled_tangent_pass_errors_and_references(compiled, numpy_default):
    from gradx import _forward, _speedups, _tape

    x, loss = _tangent_graph()
    order = _tape._toposort([loss._node], None)
    seed = np.linspace(-1.0, 1.0, 4)
    held = sys.getrefcount(seed)
    for _ in range(3):
        tangents = {x: seed}
        _speedups.push(order, tangents, False)
        del tangents
    assert sys.getrefcount(seed) == held
    with pytest.raises(TypeError, match="push"):
        _speedups.push(order, [], False)
    with pytest.raises(TypeError, match="not a Node"):
        _speedups.push([x], {}, False)

    @gx.primitive
    def bad_jvp(v, /):
        return v + 1.0

    gx.defjvp(bad_jvp, lambda t, ans, v: t[100])
    failing = bad_jvp(x)._node
    for push in (_speedups.push, _forward._push):
        with pytest.raises(IndexError):
            push([failing], {x: seed}, False)
    gx.sum(loss).backward()  # frees every saved value of the graph
    for push in (_speedups.push, _forward._push):
        with pytest.raises(gx.GraphError, match="saved values were freed"):
            push(order, {x: seed}, False)


def test_compiled_namespace_lookup_matches_its_python_reference(compiled):
    from gradx import _backend

    if _hot.pure_python_requested():
        pytest.skip("GRADX_PURE_PYTHON=1: ns is the Python function")
    assert _backend.ns is not _backend._ns
    arr = np.ones(3, np.float32)
    cases = [(arr,), (arr, 2.0), (2.0, arr), (None, arr), (True, 1, arr), (1.5,), (None,),
             (np.float64(2.0),)]
    try:
        import array_api_strict as xps

        cases.append((2, xps.asarray([1.0, 2.0])))
    except ImportError:  # an optional test dependency
        pass
    for args in cases:
        assert _backend.ns(*args) is _backend._ns(*args), args
    for call in (_backend.ns, _backend._ns):  # the fallback names the problem either way
        with pytest.raises(TypeError):
            call()
        with pytest.raises(gx.BackendMismatchError, match="not an array of any gradx backend"):
            call(object())


def test_compiled_owned_matches_the_python_test_of_numpy_memory(compiled):
    """NumpyBackend.owned keeps an array that owns its memory and copies any other: a view
    (of a saved value, of a broadcast) must not become a leaf's .grad."""
    from gradx.backends import numpy_backend

    if _hot.pure_python_requested():
        pytest.skip("GRADX_PURE_PYTHON=1: owned is the Python function")
    compiled_owned = numpy_backend.NumpyBackend().owned
    assert compiled_owned is not numpy_backend._owned

    class Marked(np.ndarray):
        pass

    fresh = np.arange(6.0)
    assert compiled_owned(fresh) is numpy_backend._owned(fresh) is fresh
    for v in (fresh[1:], fresh.reshape(2, 3), np.broadcast_to(fresh[:1], (4,)),
              fresh.view(Marked)):
        for owned in (compiled_owned, numpy_backend._owned):
            got = owned(v)
            assert got is not v and type(got) is np.ndarray and got.base is None, type(v)
            assert got.flags.writeable and not np.shares_memory(got, fresh)
            np.testing.assert_array_equal(got, v)
    with pytest.raises(TypeError, match="one array"):
        compiled_owned()


@pytest.mark.parametrize("param_shape", [(3,), (1, 3), (2, 1), ()])
@pytest.mark.parametrize("param_dtype", [np.float64, np.float32])
def test_unbroadcast_gradients_agree_on_both_paths_on_every_backward(param_shape,
                                                                     param_dtype):
    """Summing a broadcast input's gradient back: the first backward computes and caches
    the plan in Python, later ones take it from the cache in C. Both, on both paths, with
    a reshape (size-1 axes kept) and a dtype cast after the sum."""
    if not _hot.compiled_available():
        pytest.skip("gradx._speedups was not built (no C compiler)")
    from gradx import _shapes

    rng = np.random.default_rng(5)
    x_h = rng.standard_normal((2, 3))
    p_h = rng.standard_normal(param_shape).astype(param_dtype)

    def grads(compiled: bool) -> list[np.ndarray]:
        found = []
        with _hot.using_compiled(compiled):
            for _ in range(3):
                x = gx.tensor(x_h, requires_grad=True)
                p = gx.tensor(p_h, requires_grad=True)
                gx.sum(gx.tanh(x * p + p) * x).backward()
                assert p.grad.shape == param_shape and p.grad.dtype == param_dtype
                found += [x.grad.numpy(), p.grad.numpy()]
        return found

    _shapes._SUM_PLANS.clear()
    compiled_first = grads(True)
    _shapes._SUM_PLANS.clear()
    python_first = grads(False)
    assert ((2, 3), param_shape) in _shapes._SUM_PLANS or param_shape == (2, 3)
    _same(compiled_first, python_first, f"{param_shape} {param_dtype.__name__}")
    _same(compiled_first, grads(True), "compiled, plans cached")


def test_a_non_broadcasting_rule_with_a_wrong_shape_is_named_on_both_paths(hot_path):
    bad = gx.primitive()(lambda x: x * 2.0)
    gx.defvjp(bad, lambda g, ans, x: g.sum(axis=0))
    x = gx.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(gx.ShapeError, match="non-broadcasting op must return the input's shape"):
        gx.sum(bad(x)).backward()


def test_compiled_operators_match_the_python_methods():
    """Tensor's arithmetic operators, compiled, against the Python methods they replace:
    values, gradients and recorded nodes, with Tensors and scalars on either side, bound
    and unbound access, and the errors of a bad operand or call."""
    if not _hot.compiled_available():
        pytest.skip("gradx._speedups was not built (no C compiler)")
    import inspect

    rng = np.random.default_rng(11)
    a_h, b_h = rng.uniform(0.5, 2.0, (2, 3)), rng.uniform(0.5, 2.0, (3,))
    sq_h = rng.uniform(0.5, 2.0, (3, 3))

    def run(compiled: bool) -> list:
        found = []
        with _hot.using_compiled(compiled):
            for name, (_, _, unary) in _hot._OPERATORS.items():
                method = getattr(gx.Tensor, name)
                left = sq_h if "matmul" in name else a_h
                right = sq_h if "matmul" in name else b_h
                others = [None] if unary else [gx.tensor(right)] if "matmul" in name \
                    else [gx.tensor(right), 1.5]
                for other in others:
                    x = gx.tensor(left, requires_grad=True)
                    y = method(x) if unary else method(x, other)
                    bound = getattr(x, name)
                    assert inspect.ismethod(bound) and bound.__self__ is x
                    z = bound() if unary else bound(other)
                    np.testing.assert_array_equal(y.numpy(), z.numpy())
                    gx.sum(y * y).backward()
                    found += [y.numpy(), x.grad.numpy(), y._node.prim.name,
                              tuple(y._node.argnums), name]
        return found

    with gx.use_backend("numpy"):
        compiled, python = run(True), run(False)
    assert len(compiled) == len(python)
    for c, p in zip(compiled, python, strict=True):
        if isinstance(c, np.ndarray):
            assert c.dtype == p.dtype and c.shape == p.shape
            np.testing.assert_array_equal(c, p)
        else:
            assert c == p
    if _hot.pure_python_requested():
        return
    assert gx.Tensor.__mul__ is _hot._COMPILED_OPERATORS["__mul__"]
    op = gx.Tensor.__rsub__
    assert op.__name__ == "__rsub__" and op.primitive is gx.subtract
    assert str(inspect.signature(op)) == "(self, other, /)"
    assert str(inspect.signature(gx.Tensor.__neg__)) == "(self, /)"
    x = gx.tensor(np.ones((2, 3)))
    with pytest.raises(TypeError, match="takes one argument"):
        op(x)
    with pytest.raises(TypeError, match="takes no argument"):
        gx.Tensor.__neg__(x, x)
    for compiled in (True, False):  # a bad operand: the same named error on both paths
        with _hot.using_compiled(compiled), pytest.raises(ValueError, match="matmul") as err:
            x @ gx.tensor(np.ones((2, 3)))
        if compiled:
            first = str(err.value)
        else:
            assert str(err.value) == first
