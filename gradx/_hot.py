"""Which implementation of the hot path runs: dispatch, Tensor's arithmetic operators, the
backward walk, leaf accumulation, the topological sort, Tensor construction, the wrapping
of saved values and the tangent pass of forward mode.

``gradx/_speedups.c`` compiles them; the Python functions in ``_primitive``, ``_tape``,
``_tensor`` and ``_forward`` are the reference and the fallback when the extension was not
built (no C compiler at install time) or ``GRADX_PURE_PYTHON=1`` is set. Both must give
identical results; the test suite runs the two side by side. (The namespace lookup and NumPy's
``owned``, pure functions of their arguments, and ``_tape.Scope``, the context manager of grad
mode and the other scoped ContextVars, are chosen once at import: ``gradx._native``.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from . import _forward, _primitive, _tape, _tensor
from ._native import built as _speedups
from ._native import pure_python_requested

# (dispatch, Primitive.__call__, walk, leaf accumulation, toposort, Tensor._make, wrapping
# saved values, tangent pass) of each path
_PYTHON = (_primitive._apply, _primitive.Primitive.__call__, _tape._walk,
           _tape._accumulate_leaves, _tape._toposort, _tensor.Tensor.__dict__["_make"],
           _tape._wrap_saved, _forward._push)
_COMPILED: tuple | None = None

# Tensor's arithmetic operators: (primitive in gradx._tensor, reflected, unary) by method
_OPERATORS = {
    "__add__": ("add", False, False), "__radd__": ("add", True, False),
    "__sub__": ("subtract", False, False), "__rsub__": ("subtract", True, False),
    "__mul__": ("multiply", False, False), "__rmul__": ("multiply", True, False),
    "__truediv__": ("divide", False, False), "__rtruediv__": ("divide", True, False),
    "__pow__": ("pow", False, False), "__rpow__": ("pow", True, False),
    "__matmul__": ("matmul", False, False), "__rmatmul__": ("matmul", True, False),
    "__neg__": ("negative", False, True),
}
_PYTHON_OPERATORS = {name: _tensor.Tensor.__dict__[name] for name in _OPERATORS}
_COMPILED_OPERATORS: dict = {}


def compiled_available() -> bool:
    return _COMPILED is not None


def compiled_enabled() -> bool:
    return _COMPILED is not None and _primitive._dispatch is _COMPILED[0]


def use_compiled(on: bool) -> None:
    """Switch between the compiled hot path and the Python one (for tests and comparisons)."""
    if on and _COMPILED is None:
        raise RuntimeError("gradx._speedups was not built; reinstall gradx with a C compiler")
    apply, call, walk, leaves, toposort, make, wrap_saved, push = _COMPILED if on else _PYTHON
    _primitive._dispatch = apply
    _tensor._apply = apply
    _primitive.Primitive.__call__ = call
    _tape._walk_impl = walk
    _tape._leaves_impl = leaves
    _tape._toposort_impl = toposort
    _tensor.Tensor._make = make
    _tape._wrap_saved_impl = wrap_saved
    _forward._push_impl = push
    for name, method in (_COMPILED_OPERATORS if on else _PYTHON_OPERATORS).items():
        setattr(_tensor.Tensor, name, method)


@contextlib.contextmanager
def using_compiled(on: bool) -> Iterator[None]:
    """Run the block on one hot path, then restore the one in use before."""
    was = compiled_enabled()
    use_compiled(on)
    try:
        yield
    finally:
        use_compiled(was)


def _configure() -> tuple:
    from . import _shapes
    from .errors import GraphError, NotDifferentiableError
    from .ops import reductions, shape

    _speedups.configure({
        "Tensor": _tensor.Tensor, "Node": _tape.Node, "Primitive": _primitive.Primitive,
        "grad_enabled": _tape._grad_enabled, "anomaly": _tape._anomaly, "seq": _tape._SEQ,
        "last_change": _tape.LAST_CHANGE, "debug": _tape._DEBUG, "hooked": _primitive._HOOKED,
        "nones": _primitive._NONES, "apply": _primitive._apply, "finish": _primitive._finish,
        "reraise": _primitive._reraise, "metas": _primitive._metas,
        "annotate": _tape._annotate, "identity_vjp": _tape.identity_vjp,
        "check_versions": _tape._check_versions, "fit": _tape._fit,
        "check_finite": _tape._check_finite, "wrap_saved": _tape._wrap_saved,
        "add_into": _tape._add_into, "rule_failed": _tape._rule_failed,
        "no_rule": _tape._no_rule, "freed": _tape._freed,
        "accumulate_leaves": _tape._accumulate_leaves, "GraphError": GraphError,
        "NotDifferentiableError": NotDifferentiableError,
        "make": _tensor.Tensor.__dict__["_make"].__func__,
        "creation_number": _tape._creation_number, "Meta": _tape.Meta,
        "sum_plans": _shapes._SUM_PLANS, "sum": reductions.sum, "reshape": shape.reshape,
        "jvp_one": _forward._jvp_one, "conform": _forward._conform,
        "jvp_freed": _forward._freed,
    })
    for name, (prim, reflected, unary) in _OPERATORS.items():
        _COMPILED_OPERATORS[name] = _speedups.tensor_operator(name, getattr(_tensor, prim),
                                                              reflected, unary)
    return (_speedups.apply, _speedups.primitive_call_method(), _speedups.walk,
            _speedups.accumulate_leaves, _speedups.toposort, _speedups.tensor_make_method(),
            _speedups.wrap_saved, _speedups.push)


if _speedups is not None:
    _COMPILED = _configure()
    use_compiled(not pure_python_requested())
