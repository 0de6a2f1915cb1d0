"""Fuzz every public function with bad input: each call either works (and then its value
matches NumPy's where NumPy has the function, and backward gives gradients of the
inputs' shapes) or raises a gradx error, or a TypeError/ValueError, whose message names
the op and the offending shapes, dtypes, types or backends. Anything else, a bare
backend traceback or a message that says neither what nor where, fails the test.

Every registered primitive (``gx.primitives()``, nn's included) and the public composed
functions, operators and creation functions get: valid input, wrong types, wrong
shapes (and axes), wrong dtypes, empty arrays, NaN and infinity, zero-size axes,
tensors of two backends, and integer tensors beside float tensors that require grad.
Counts by category and outcome are printed (pytest -s).
"""

from __future__ import annotations

import collections
import inspect
import re
import warnings

import numpy as np
import pytest

import gradx as gx
import gradx.nn.functional as F

S = (3, 3)  # square, so linalg ops and matmul accept the valid input
WRONG_TYPES = [None, "abc", object(), {"a": 1}, [["a", "b"]], b"raw"]
CATEGORIES = ("valid", "wrong_type", "wrong_shape", "wrong_dtype", "empty", "nan",
              "zero_size_axis", "mismatched_backends", "int_with_grad", "int_requires_grad")
PRIM_NAMES = set(gx.primitives())

# arguments that are not float arrays: index arrays, boolean masks
KINDS = {"take": "fi", "take_along_axis": "fi", "where": "bff", "logical_and": "bb",
         "logical_or": "bb", "logical_not": "b"}
REQUIRED = {  # required keyword-only parameters, from the first input's shape and backend
    "astype": lambda s, b: {"dtype": b.dtype("float64")}, "cumsum": lambda s, b: {"axis": 0},
    "broadcast_to": lambda s, b: {"shape": (2, *s)}, "getitem": lambda s, b: {"key": (0,)},
    "einsum": lambda s, b: {"subscripts": "ij,jk->ik"}, "reshape": lambda s, b: {"shape": (-1,)},
    "index_add": lambda s, b: {"shape": s, "key": (slice(None),)},
    "index_update": lambda s, b: {"key": (slice(None),)},
    "permute_dims": lambda s, b: {"axes": tuple(reversed(range(len(s))))},
    "tile": lambda s, b: {"repetitions": (2,)},
    "to_backend": lambda s, b: {"src": b.name, "dst": _other(b.name)},
}
# Findings that are accepted for now: (function, category, exception class) -> why. They
# are counted and printed as "known"; an entry that no longer occurs fails the test, so it
# is removed once fixed.
KNOWN: dict[tuple[str, str, str], str] = {}
# a message about calls without tensor arguments shows some shape, dtype, type or value
EVIDENCE = re.compile(r"\(\d+(, \d+)*,?\)|\(\)|float|int|bool|str|NoneType|object|numpy|"
                      r"array_api|cupy|'[^']+'|-?\d+")
NUMPY_NAMES = {"acos": "arccos", "asin": "arcsin", "atan": "arctan", "atan2": "arctan2",
               "pow": "power", "concat": "concatenate"}


def _other(name):
    return "numpy" if name != "numpy" else "array_api_strict"


class Spec:
    """How to call one public function: ``fn(*arrays, **kw)`` with ``kinds`` for arrays."""

    def __init__(self, name, fn, kinds="f", kw=None, axis=False, compare=False,
                 method=False):
        self.name, self.fn, self.kinds, self.kw, self.axis = name, fn, kinds, kw, axis
        self.compare = compare
        self.method = method  # x.op(...) or an operator: Python itself handles a bad x

    def call(self, args, backend, **extra):
        shape = tuple(getattr(args[0], "shape", S)) if args else S
        kw = dict(self.kw(shape, backend)) if self.kw else {}
        kw.update(extra)
        return self.fn(*args, **kw)


def primitive_specs():
    specs = []
    for name, prim in sorted(gx.primitives().items()):
        if name == "checkpoint":  # its arguments are internal: fuzz it through gx.checkpoint
            continue
        params = inspect.signature(prim.fun).parameters.values()
        arity = sum(p.kind is p.VAR_POSITIONAL and 2 or (
            p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty)
            for p in params)
        kinds = KINDS.get(name, "f" * arity)
        axis = any(p.name == "axis" for p in params)
        specs.append(Spec(name, prim, kinds, REQUIRED.get(name), axis, compare=True))
    return specs


def _setitem(x, v):
    x = x * 1.0  # a copy: never update an input in place
    x[:] = v
    return x


def _iadd(x, y):
    x = x * 1.0
    x += y
    return x


COMPOSED = [
    Spec("clip", lambda x: gx.clip(x, -0.5, 0.5)), Spec("clip", lambda x, y: gx.clip(x, y), "ff"),
    Spec("concat", lambda x, y, axis=0: gx.concat([x, y], axis=axis), "ff", axis=True),
    Spec("stack", lambda x, y, axis=0: gx.stack([x, y], axis=axis), "ff", axis=True),
    Spec("cumsum", lambda x, axis=None: gx.cumsum(x, axis=axis), axis=True),
    Spec("einsum", lambda x, y: gx.einsum("ij,jk->ik", x, y), "ff"),
    Spec("moveaxis", lambda x: gx.moveaxis(x, 0, -1)), Spec("outer", gx.outer, "ff"),
    Spec("permute_dims", lambda x: gx.permute_dims(x, (1, 0))),
    Spec("reshape", lambda x: gx.reshape(x, (-1,))), Spec("tile", lambda x: gx.tile(x, 2)),
    Spec("split", lambda x, axis=0: gx.split(x, 3, axis=axis), axis=True),
    Spec("std", lambda x, axis=None: gx.std(x, axis=axis), axis=True),
    Spec("tensordot", lambda x, y: gx.tensordot(x, y, axes=1), "ff"),
    Spec("unstack", lambda x, axis=0: gx.unstack(x, axis=axis), axis=True),
    Spec("vecdot", gx.vecdot, "ff"), Spec("astype", lambda x: gx.astype(x, "float64")),
    Spec("broadcast_to", lambda x: gx.broadcast_to(x, (2, 3, 3))),
    Spec("norm", lambda x, axis=None: gx.linalg.norm(x, axis=axis), axis=True),
    Spec("norm", lambda x: gx.linalg.norm(x, ord=1)),
    Spec("checkpoint", lambda x: gx.checkpoint(lambda a: gx.sin(a) * a)(x)),
    Spec("softplus", F.softplus), Spec("mse_loss", F.mse_loss, "ff"),
    Spec("cross_entropy", lambda x: F.cross_entropy(
        x, gx.tensor([0, 1, 2], backend=getattr(x, "backend", None)))),
    Spec("binary_cross_entropy_with_logits", F.binary_cross_entropy_with_logits, "ff"),
]
OPERATORS = [Spec(n, f, k, compare=c, method=True) for n, f, k, c in [
    ("add", lambda x, y: x + y, "ff", True), ("subtract", lambda x, y: x - y, "ff", True),
    ("multiply", lambda x, y: x * y, "ff", True), ("divide", lambda x, y: x / y, "ff", True),
    ("pow", lambda x, y: x**y, "ff", True), ("matmul", lambda x, y: x @ y, "ff", True),
    ("less", lambda x, y: x < y, "ff", True), ("negative", lambda x: -x, "f", True),
    ("abs", abs, "f", True), ("sum", lambda x: x.sum(), "f", True),
    ("getitem", lambda x: x[1], "f", False), ("getitem", lambda x, y: x[y], "fi", False),
    ("setitem", _setitem, "ff", False), ("add", _iadd, "ff", False),
    ("reshape", lambda x: x.reshape(9), "f", False), ("expand_dims", lambda x: x.expand_dims(
        axis=0), "f", False)]]


def _host(kind, shape, rng):
    if kind == "i":
        return rng.integers(0, 3, shape)
    if kind == "b":
        return rng.uniform(size=shape) > 0.5
    return rng.standard_normal(shape) + 3 * np.eye(*shape[-2:]) if len(shape) >= 2 \
        else rng.standard_normal(shape)


def cases(spec, backend):
    """(category, args, extra kwargs) for one spec on ``backend``."""
    rng = np.random.default_rng(0)

    def make(shape=S, kinds=spec.kinds, dtype="float32", fill=None, on=backend):
        out = []
        for k in kinds:
            if k == "i" and spec.name == "take":  # the standard takes 1-D indices only
                shape = shape[:1]
            h = _host(k, shape, rng) if fill is None or k != "f" else np.full(shape, fill)
            out.append(gx.tensor(h, dtype=dtype if k == "f" else None, backend=on))
        return out

    yield "valid", make(), {}
    for i in range(1 if spec.method else 0, len(spec.kinds)):
        for bad in WRONG_TYPES:
            args = make()
            args[i] = bad
            yield "wrong_type", args, {}
    if len(spec.kinds) >= 2:
        args = make()
        args[1] = make(shape=(2, 5))[1]
        yield "wrong_shape", args, {}
    if spec.axis:
        yield "wrong_shape", make(), {"axis": 5}
    for dtype_kind in ("i", "b"):
        yield "wrong_dtype", make(kinds=dtype_kind * len(spec.kinds)), {}
    if len(spec.kinds) >= 2:
        args = make()
        args[1] = make(dtype="float64")[1]
        yield "wrong_dtype", args, {}
    for shape in ((0,), (0, 3)):
        yield "empty", make(shape=shape), {}
    for fill in (np.nan, np.inf, -np.inf):
        yield "nan", make(fill=fill), {}
    yield "zero_size_axis", make(shape=(3, 0)), ({"axis": 1} if spec.axis else {})
    if len(spec.kinds) >= 2:
        args = make()
        args[1] = make(on=gx._backend.resolve(_other(backend.name)))[1]
        yield "mismatched_backends", args, {}
        args = make()
        args[0], args[1] = make(on=gx._backend.resolve(_other(backend.name)))[0], args[1].data
        yield "mismatched_backends", args, {}
    if "f" in spec.kinds:
        args = make()
        for i, k in enumerate(spec.kinds):
            if k == "f":
                args[i] = args[i].requires_grad_() if i else make(kinds="i")[0]
        yield "int_with_grad", args, {}


def _tokens(args, extra):
    """Words a good message about these inputs contains at least one of."""
    out = set()
    for a in list(args) + list(extra.values()):
        if isinstance(a, gx.Tensor):
            out |= {str(a.shape), str(a.dtype).rsplit(".", 1)[-1], a.backend.name}
        elif hasattr(a, "shape"):
            out |= {str(tuple(a.shape)), str(a.dtype).rsplit(".", 1)[-1]}
        else:
            out.add(type(a).__name__)
    return out


def _names_op(msg, name):
    names = {name} | PRIM_NAMES
    return any(re.search(rf"(?<![A-Za-z]){re.escape(n)}(?![A-Za-z])", msg) for n in names)


def _reference(spec, args, extra):
    """NumPy's result for the same call, or None when there is nothing to compare with."""
    fn = getattr(np, NUMPY_NAMES.get(spec.name, spec.name), None)
    if not spec.compare or fn is None or not callable(fn) or spec.name in REQUIRED:
        return None
    if not all(isinstance(a, gx.Tensor) for a in args) or spec.name in ("sort", "argsort",
                                                                        "squeeze"):
        return None
    host = [a.numpy() for a in args]
    try:
        if spec.name in ("concat", "stack"):
            return fn(host, **extra)
        return fn(*host, **extra)
    except Exception:
        return None


def check_call(spec, backend, category, args, extra):
    """(outcome, problem or None) of one call."""
    try:
        out = spec.call(args, backend, **extra)
    except Exception as exc:  # noqa: BLE001 - classified below
        err = exc
    else:
        return _check_result(spec, backend, args, extra, out)
    if (spec.name, category, type(err).__name__) in KNOWN:
        return "known", None
    if isinstance(err, gx.GradxError):
        kind = "gradx_error"
    elif isinstance(err, TypeError | ValueError):
        kind = "builtin_error"
    else:
        return "bare", f"{type(err).__name__}: {err}"
    msg, what = str(err), type(err).__name__
    if not _names_op(msg, spec.name):
        return "unexplained", f"{what} does not name the op: {msg[:160]}"
    tokens = _tokens(args, extra)
    if not (any(t in msg for t in tokens) if tokens else EVIDENCE.search(msg)):
        return "unexplained", f"{what} names no input: {msg[:160]}"
    return kind, None


def _check_result(spec, backend, args, extra, out):
    outs = out if isinstance(out, list | tuple) else [out]
    tensors = [a for a in args if isinstance(a, gx.Tensor)]
    if not tensors:
        return "ok", None  # raw arrays in, raw arrays out: the dispatcher's pass-through
    if not all(isinstance(o, gx.Tensor) for o in outs):
        return "wrong", f"returned {type(out).__name__}"
    want = tensors[0].backend if spec.name != "to_backend" else gx._backend.resolve(
        _other(tensors[0].backend.name))
    if any(o.backend is not want for o in outs):
        return "wrong", f"result on {[o.backend.name for o in outs]}"
    ref = _reference(spec, args, extra)
    if ref is not None and not isinstance(ref, tuple | list):
        got = outs[0].numpy()
        if got.shape != np.shape(ref) or not np.allclose(got, ref, rtol=1e-5, atol=1e-6,
                                                         equal_nan=True):
            return "wrong", f"value {got!r} but NumPy gives {ref!r}"
    leaves = [a for a in args if isinstance(a, gx.Tensor) and a.requires_grad]
    floats = [o for o in outs if o.requires_grad]
    if leaves and floats:
        try:
            gx.sum(gx.stack([gx.sum(o) for o in floats])).backward()
        except gx.GradxError:
            return "ok", None
        except Exception as exc:  # noqa: BLE001
            return "bare", f"backward: {type(exc).__name__}: {exc}"
        for a in leaves:
            if a.grad is None or a.grad.shape != a.shape:
                return "wrong", f"gradient {a.grad} for an input of shape {a.shape}"
    return "ok", None


def _report(label, counts):
    rows = [f"{c:>20}: " + ", ".join(f"{o} {n}" for (cc, o), n in sorted(counts.items())
                                      if cc == c) for c in CATEGORIES]
    print(f"\n[fuzz] {label} on {gx.get_backend().name}: {sum(counts.values())} calls\n"
          + "\n".join(r for r in rows if r.split(": ")[1]))


def run_fuzz(specs, label):
    backend = gx.get_backend()
    counts = collections.Counter()
    problems = []
    known = {k for k in KNOWN if k[0] in {s.name for s in specs}}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for spec in specs:
            for category, args, extra in cases(spec, backend):
                outcome, problem = check_call(spec, backend, category, args, extra)
                counts[category, outcome] += 1
                if outcome == "known":
                    known.discard(next(k for k in KNOWN if k[:2] == (spec.name, category)))
                if problem:
                    problems.append(f"{spec.name} [{category}] {problem}")
    _report(f"{label} ({len(specs)} functions)", counts)
    problems += [f"{k} is listed in KNOWN but no longer happens: remove it" for k in known]
    return problems


@pytest.mark.parametrize("group", ["primitives", "composed", "operators"])
def test_fuzz_public_functions(backend, group):
    specs = {"primitives": primitive_specs(), "composed": COMPOSED, "operators": OPERATORS}
    problems = run_fuzz(specs[group], group)
    assert not problems, f"{len(problems)} findings:\n" + "\n".join(problems[:40])


# -- creation functions, requires_grad on integers, transforms and backward --------------

def _vec(backend, dtype="float32"):
    return gx.tensor([0.5, -1.0, 2.0], dtype=dtype, backend=backend)


def other_calls(backend):
    """(name, category, thunk) for calls that take no tensor of one fixed shape."""
    b, o = backend, gx._backend.resolve(_other(backend.name))
    f = lambda t: gx.sum(gx.sin(t))  # noqa: E731
    return [
        ("tensor", "wrong_type", lambda: gx.tensor(object(), backend=b)),
        ("tensor", "wrong_type", lambda: gx.tensor("abc", backend=b)),
        ("tensor", "wrong_type", lambda: gx.tensor({"a": 1}, backend=b)),
        ("tensor", "wrong_shape", lambda: gx.tensor([[1.0, 2.0], [3.0]], backend=b)),
        ("tensor", "wrong_dtype", lambda: gx.tensor([1.0], dtype="float128x", backend=b)),
        ("tensor", "wrong_type", lambda: gx.tensor([1.0], backend="no_such_backend")),
        ("zeros", "wrong_type", lambda: gx.zeros("abc", backend=b)),
        ("zeros", "wrong_shape", lambda: gx.zeros((-1,), backend=b)),
        ("ones", "wrong_type", lambda: gx.ones(None, backend=b)),
        ("full", "wrong_type", lambda: gx.full((2,), "x", backend=b)),
        ("eye", "wrong_type", lambda: gx.eye(None, backend=b)),
        ("arange", "wrong_type", lambda: gx.arange("a", backend=b)),
        ("arange", "wrong_shape", lambda: gx.arange(0, 10, 0, backend=b)),
        ("linspace", "wrong_shape", lambda: gx.linspace(0.0, 1.0, -1, backend=b)),
        ("zeros_like", "wrong_type", lambda: gx.zeros_like(None)),
        ("tensor", "empty", lambda: gx.tensor([], backend=b)),
        ("zeros", "empty", lambda: gx.zeros((0, 3), backend=b)),
        ("arange", "empty", lambda: gx.arange(0, backend=b)),
        ("eye", "empty", lambda: gx.eye(0, backend=b)),
        ("full", "nan", lambda: gx.full((2,), float("nan"), backend=b)),
        ("tensor", "mismatched_backends", lambda: gx.tensor(_vec(o), backend=b)),
        ("zeros_like", "mismatched_backends", lambda: gx.zeros_like(_vec(o))),
        ("grad", "wrong_shape", lambda: gx.grad(lambda t: t * 2)(_vec(b))),
        ("grad", "wrong_type", lambda: gx.grad(lambda t: "abc")(_vec(b))),
        ("grad", "wrong_type", lambda: gx.grad(None)(_vec(b))),
        ("grad", "wrong_shape", lambda: gx.grad(f, argnums=3)(_vec(b))),
        ("grad", "wrong_dtype", lambda: gx.grad(f)(gx.tensor([1, 2], backend=b))),
        ("grad", "mismatched_backends", lambda: gx.grad(lambda s, t: gx.sum(s * t))(
            _vec(b), _vec(o))),
        ("jvp", "wrong_shape", lambda: gx.jvp(f, (_vec(b),), (gx.ones((2,), backend=b),))),
        ("jvp", "wrong_shape", lambda: gx.jvp(f, (_vec(b),), ())),
        ("jvp", "mismatched_backends", lambda: gx.jvp(f, (_vec(b),), (_vec(o),))),
        ("vjp", "wrong_shape", lambda: gx.vjp(gx.sin, _vec(b))[1](gx.ones((2,), backend=b))),
        ("jacobian", "wrong_type", lambda: gx.jacobian(f, mode="sideways")(_vec(b))),
        ("jacobian", "wrong_shape", lambda: gx.jacobian(f, argnums=2)(_vec(b))),
        ("hvp", "wrong_type", lambda: gx.hvp(lambda t: None, (_vec(b),), (_vec(b),))),
        ("checkpoint", "wrong_type", lambda: gx.checkpoint(lambda t: "abc")(
            _vec(b).requires_grad_())),
        ("backward", "wrong_shape", lambda: gx.sin(_vec(b).requires_grad_()).backward()),
        ("backward", "wrong_shape", lambda: gx.sin(_vec(b).requires_grad_()).backward(
            grad=gx.ones((2,), backend=b))),
        ("backward", "wrong_type", lambda: gx.sum(_vec(b).requires_grad_()).backward(
            grad="abc")),
        ("backward", "wrong_type", lambda: _vec(b).backward()),
    ]


INT_REQUIRES_GRAD = [
    lambda b: gx.tensor([1, 2], requires_grad=True, backend=b),
    lambda b: gx.tensor([True, False], requires_grad=True, backend=b),
    lambda b: gx.asarray(np.arange(3), requires_grad=True, backend=b),
    lambda b: gx.zeros((2,), dtype="int64", requires_grad=True, backend=b),
    lambda b: gx.ones((2,), dtype="int32", requires_grad=True, backend=b),
    lambda b: gx.full((2,), 3, dtype="int64", requires_grad=True, backend=b),
    lambda b: gx.empty((2,), dtype="bool", requires_grad=True, backend=b),
    lambda b: gx.Tensor(gx.arange(3, backend=b).data, requires_grad=True),
    lambda b: gx.arange(3, backend=b).requires_grad_(),
    lambda b: gx.astype(_vec(b), "int64").requires_grad_(),
    lambda b: (_vec(b) > 0).requires_grad_(),
]


def test_fuzz_creation_transforms_and_backward(backend):
    b = gx.get_backend()
    counts = collections.Counter()
    problems = []
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for name, category, thunk in other_calls(b):
            outcome, problem = check_call(Spec(name, lambda thunk=thunk: thunk(), ""), b,
                                          category, [], {})
            counts[category, outcome] += 1
            if problem:
                problems.append(f"{name} [{category}] {problem}")
        for make in INT_REQUIRES_GRAD:
            with pytest.raises(gx.DTypeError, match="int|bool") as info:
                make(b)
            assert "requires_grad" in str(info.value)
            counts["int_requires_grad", "gradx_error"] += 1
    _report("creation, transforms, backward", counts)
    assert not problems, "\n".join(problems)
