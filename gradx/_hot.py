"""Which implementation of the hot path runs: dispatch, the backward walk, leaf accumulation.

``gradx/_speedups.c`` compiles the three; the Python functions in ``_primitive`` and ``_tape``
are the reference and the fallback when the extension was not built (no C compiler at install
time) or ``GRADX_PURE_PYTHON=1`` is set. Both must give identical results; the test suite
runs the two side by side.
"""

from __future__ import annotations

import os

from . import _primitive, _tape, _tensor

try:
    from . import _speedups
except ImportError:  # installed without a C compiler
    _speedups = None

_COMPILED = [False]
_PYTHON_CALL = _primitive.Primitive.__call__


def compiled_available() -> bool:
    return _speedups is not None


def compiled_enabled() -> bool:
    return _COMPILED[0]


def use_compiled(on: bool) -> None:
    """Switch between the compiled hot path and the Python one (for tests and comparisons)."""
    if on and _speedups is None:
        raise RuntimeError("gradx._speedups was not built; reinstall gradx with a C compiler")
    if on:
        apply, walk, leaves = _speedups.apply, _speedups.walk, _speedups.accumulate_leaves
        call = _COMPILED_CALL[0]
    else:
        apply, walk, leaves = _primitive._apply, _tape._walk, _tape._accumulate_leaves
        call = _PYTHON_CALL
    _primitive.Primitive.__call__ = call
    _primitive._dispatch = apply
    _tensor._apply = apply
    _tape._walk_impl = walk
    _tape._leaves_impl = leaves
    _COMPILED[0] = on


def _configure() -> None:
    from .errors import GraphError, NotDifferentiableError

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
    })


_COMPILED_CALL: list = [None]

if _speedups is not None:
    _configure()
    _COMPILED_CALL[0] = _speedups.primitive_call_method()
    use_compiled(os.environ.get("GRADX_PURE_PYTHON", "") not in ("1", "true", "yes"))
