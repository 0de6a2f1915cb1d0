"""Does my computation give the same numbers on the GPU as on the CPU? ``compare_backends``
answers for the outputs and gradients, and with ``per_op=True`` names the first primitive that
differs and the line of user code that called it."""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import gradx.backends as _backends

from ._backend import backend_of, resolve, use_backend
from ._compare_report import ComparisonReport, Divergence, Entry
from ._primitive import recording
from ._tensor import Tensor
from .errors import BackendUnavailableError

# Default (rtol, atol) per dtype: |a - b| <= atol * max(1, max|ref|) + rtol * |ref|, elementwise.
# float32's rtol is about 100 ulps: room for another summation order or a 1-2 ulp difference in a
# transcendental carried through a few layers. float64 is five orders tighter yet still far above
# its ulp (2e-16). atol grows with the array's largest magnitude, so values that cancel to near
# zero are judged at the scale they were computed at. Integers and bools must match exactly.
TOLERANCES: dict[str, tuple[float, float]] = {
    "float16": (1e-2, 1e-3), "bfloat16": (5e-2, 1e-2), "float32": (1e-5, 1e-6),
    "float64": (1e-10, 1e-12)}
_COMPLEX_PART = {"complex64": "float32", "complex128": "float64"}
# gradx's own files (the package and its backends): frames there are not the user's code
_GRADX_DIRS = tuple(os.path.dirname(os.path.abspath(p)) + os.sep for p in (__file__,
                                                                           _backends.__file__))


def compare_backends(f: Callable, *args: Any, backends: Sequence[Any] = ("numpy", "cupy"),
                     grads: bool = True, per_op: bool = False, rtol: float | None = None,
                     atol: float | None = None, skip_unavailable: bool = False,
                     allow_zero_grads: bool = False) -> ComparisonReport:
    """Run ``f(*args)`` and its gradients on each backend and compare them with the first.

    ``args`` may be NumPy arrays, Tensors or nested tuples, lists and dicts of them; each
    backend gets a copy made from the same host values. Gradients are taken with respect to
    every floating-point array, with a ones cotangent (the gradient of ``sum(f)``).
    ``rtol``/``atol`` override the per-dtype ``TOLERANCES``. An unavailable backend raises
    ``BackendUnavailableError`` unless ``skip_unavailable``, which lists it in
    ``report.skipped`` instead. ``per_op=True`` also compares every primitive call (forward,
    and backward when ``grads``) and names the first one beyond tolerance in
    ``report.divergence``, with the user's ``file:line`` that called it.

    A gradient that is absent (no path from the outputs reaches that input: ``f`` detached
    it, rebuilt its model inside, or never used it) or identically zero on every backend is
    flagged, and fails the comparison: nothing flowed, so agreement proves nothing. Pass
    ``allow_zero_grads=True`` when some inputs get no gradient by design; they stay listed.

    >>> report = compare_backends(f, x, backends=("numpy", "cupy"))  # doctest: +SKIP
    >>> assert report.ok, report
    """
    resolved, skipped = [], {}
    for spec in backends:
        try:
            resolved.append(resolve(spec))
        except BackendUnavailableError as exc:
            if not skip_unavailable:
                raise
            skipped[spec if isinstance(spec, str) else repr(spec)] = str(exc)
    if not resolved:
        raise BackendUnavailableError(f"none of the backends {list(backends)} is available: "
                                      f"{'; '.join(skipped.values())}")
    named: list[tuple[str, Any]] = []
    for name, a in zip(_arg_names(f, len(args)), args, strict=True):
        _paths(a, name, named)
    host = [_host(v) for _, v in named]
    diff_at = [i for i, h in enumerate(host) if isinstance(h, np.ndarray) and h.dtype.kind == "f"]
    ref = resolved[0]
    report = ComparisonReport(ref.name, [b.name for b in resolved], skipped=skipped,
                              allow_zero_grads=allow_zero_grads)
    ref_rec = _Recorder(ref.name, None, rtol, atol) if per_op else None
    out_names, ref_values, ref_reached = _run(f, args, host, diff_at, ref, grads, ref_rec)
    report.ops_recorded = ref_rec.count if ref_rec is not None else None
    names = [("output", n) for n in out_names] + [
        ("grad", f"grad {named[i][0]}") for i in diff_at if grads]
    n_out = len(out_names)
    for backend in resolved[1:]:
        rec = _Recorder(backend.name, ref_rec, rtol, atol) if per_op else None
        _, values, reached = _run(f, args, host, diff_at, backend, grads, rec)
        for j, ((kind, name), a, r) in enumerate(zip(names, values, ref_values, strict=True)):
            d = _diff(a, r, rtol, atol)
            flow = "" if kind != "grad" else _flow(
                a, r, reached[j - n_out], ref_reached[j - n_out], backend.name, ref.name)
            report.entries.append(Entry(
                kind, name, backend.name, ref.name, a.shape, str(a.dtype), d["max_abs"],
                d["max_rel"], d["rtol"], d["atol"], d["ok"], d["note"], flow))
        if rec is not None and rec.finish() is not None:
            report.divergences.append(rec.divergence)
    return report


def _run(f: Callable, args: tuple, host: list, diff_at: list[int], backend: Any, grads: bool,
         rec: _Recorder | None) -> tuple[list[str], list[np.ndarray], list[bool]]:
    """The names of f's outputs; its outputs then gradients on ``backend`` as host arrays;
    and for each gradient whether the graph from the outputs reaches that input at all."""
    from .transforms import vjp

    leaves = [Tensor(backend.from_numpy(h)) if isinstance(h, np.ndarray) else h for h in host]
    reached: list[bool] = []
    with recording(rec) if rec is not None else contextlib.nullcontext():
        with use_backend(backend):
            if grads and diff_at:
                def g(*xs: Any) -> Any:
                    full = list(leaves)
                    for i, x in zip(diff_at, xs, strict=True):
                        full[i] = x
                    it = iter(full)
                    result = f(*_map(args, lambda _: next(it)))
                    reached[:] = _reached(xs, result)  # while the inputs still require grad
                    return result

                out, vjp_fn = vjp(g, *[leaves[i] for i in diff_at])
                cot = _map(out, lambda o: _ones(o, backend, rec is not None))
                if rec is not None:
                    rec.phase = "backward"
                gs = vjp_fn(cot)
            else:
                it = iter(leaves)
                out, gs = f(*_map(args, lambda _: next(it))), ()
    outs = _paths(out, "out", [])
    return ([n for n, _ in outs], [_value(o) for _, o in outs] + [_value(x) for x in gs],
            reached)


def _reached(inputs: tuple, out: Any) -> list[bool]:
    """For each input Tensor, whether the recorded graph of ``out``'s Tensors reaches it: a
    gradient that cannot reach its input is absent, not zero."""
    from ._tape import _toposort_impl

    roots, found = [], set()
    for _, o in _paths(out, "out", []):
        if isinstance(o, Tensor) and o.requires_grad:
            if o._node is None:
                found.add(id(o))  # an input returned as it is
            else:
                roots.append(o._node)
    leaves: set = set()
    nodes = set(_toposort_impl(roots, leaves)) if roots else set()
    found.update(id(leaf) for leaf in leaves)
    return [id(x) in found if x._node is None else x._node in nodes for x in inputs]


def _flow(a: np.ndarray, ref: np.ndarray, reached: bool, ref_reached: bool, backend: str,
          reference: str) -> str:
    """Why a gradient shows nothing: "" when it flowed, else a sentence for the report."""
    where = [n for n, r in ((reference, ref_reached), (backend, reached)) if not r]
    if where:
        return ("absent: no gradient reaches this input on " + " and ".join(where) + " (f "
                "detached it, rebuilt what uses it, or never used it)")
    if a.size and not np.any(a) and not np.any(ref):
        return (f"zero: the gradient is identically zero on {reference} and {backend}, so "
                "their agreement shows nothing")
    return ""


def _ones(o: Any, backend: Any, track: bool) -> Any:
    """A ones cotangent; a Tensor that needs grad under ``per_op``, so the backward pass runs
    its rules on Tensors and every backward primitive call reaches the recorder too."""
    if isinstance(o, bool | int | float):
        return 1.0
    raw = o.data if isinstance(o, Tensor) else o
    ones = backend.xp.ones(raw.shape, dtype=raw.dtype)
    return Tensor(ones).requires_grad_() if track and backend.is_float(raw.dtype) else ones


# -- the per-op recorder ------------------------------------------------------------------

class _Recorder:
    """Called by the dispatcher after each primitive on Tensors. On the reference backend it
    keeps each output on the host; on the others it compares as it goes and keeps the first
    call beyond tolerance, so only one backend's outputs are ever held."""

    def __init__(self, backend: str, reference: _Recorder | None, rtol: float | None,
                 atol: float | None) -> None:
        self.backend, self.reference, self.rtol, self.atol = backend, reference, rtol, atol
        self.ops: list[tuple[str, str, Any]] = []  # (name, phase, host output) on the reference
        self.count, self.phase = 0, "forward"
        self.divergence: Divergence | None = None

    def __call__(self, prim: Any, args: tuple, kwargs: dict, ans: Any) -> None:
        i = self.count
        self.count += 1
        if self.reference is None:
            self.ops.append((prim.name, self.phase, _value(ans)))
            return
        if self.divergence is not None:
            return
        out = _value(ans)
        ref_name, _, ref = self.reference.ops[i] if i < len(self.reference.ops) else (
            "(none)", "", None)
        d = _diff(out, ref, self.rtol, self.atol) if ref_name == prim.name else {
            "ok": False, "max_abs": math.nan, "max_rel": math.nan, "rtol": math.nan,
            "atol": math.nan, "note": f"call #{i} is '{prim.name}' here but '{ref_name}' on "
            "the reference (f calls different primitives per backend)"}
        if not d["ok"]:
            self.divergence = Divergence(
                self.backend, self.reference.backend, i, self.phase, prim.name,
                [_meta(a) for a in args], _meta(out), _meta(ref), d["max_abs"],
                d["max_rel"], d["rtol"], d["atol"], _site(), d["note"] or "values differ")

    def finish(self) -> Divergence | None:
        """The divergence, counting a run that stopped calling primitives early as one."""
        if self.divergence is None and self.count < len(self.reference.ops):
            name, phase, ref = self.reference.ops[self.count]
            self.divergence = Divergence(
                self.backend, self.reference.backend, self.count, phase, "(none)", [], "-",
                _meta(ref), math.nan, math.nan, math.nan, math.nan, "<unknown>",
                f"only {self.count} primitive call{'s' * (self.count != 1)} here; the reference "
                f"went on to '{name}'")
        return self.divergence


def _site() -> str:
    """The first frame outside gradx; in the backward pass, also the op whose rule ran."""
    frame = sys._getframe(1)
    vjp_of = None
    while frame is not None:
        path = os.path.abspath(frame.f_code.co_filename)
        if not path.startswith(_GRADX_DIRS):
            break
        if vjp_of is None and path.endswith("_tape.py") and "node" in frame.f_locals:
            vjp_of = frame.f_locals["node"].prim.name
        frame = frame.f_back
    where = (f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"
             if frame is not None else "<unknown>")
    return f"{where} (in the VJP rule of '{vjp_of}')" if vjp_of else where


# -- comparing arrays -------------------------------------------------------------------

def tolerance(dtype: Any, rtol: float | None = None, atol: float | None = None
              ) -> tuple[float, float]:
    """``(rtol, atol)`` used for ``dtype``: ``TOLERANCES`` unless given; exact for integers."""
    name = _COMPLEX_PART.get(str(dtype), str(dtype))
    base = TOLERANCES.get(name, (0.0, 0.0))
    return (base[0] if rtol is None else rtol), (base[1] if atol is None else atol)


def _diff(a: np.ndarray, ref: np.ndarray, rtol: float | None, atol: float | None
          ) -> dict[str, Any]:
    """Max abs and max rel difference of ``a`` against ``ref`` and whether it is within
    tolerance. The relative difference is taken where ``ref`` is nonzero; NaNs and infinities
    in the same places count as equal."""
    looser = max((a.dtype, ref.dtype), key=lambda d: tolerance(d)[0])
    rt, at = tolerance(looser, rtol, atol)
    out = {"rtol": rt, "atol": at, "max_abs": math.nan, "max_rel": math.nan, "ok": False,
           "note": ""}
    if a.shape != ref.shape:
        out["note"] = f"shape differs: {a.shape} vs reference {ref.shape}"
        return out
    wide = np.complex128 if "c" in (a.dtype.kind, ref.dtype.kind) else np.float64
    x, y = a.astype(wide), ref.astype(wide)
    same = (x == y) | (np.isnan(x) & np.isnan(y))
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.where(same, 0.0, np.abs(x - y))
        err = np.where(np.isnan(err), np.inf, err)
        mag = np.abs(np.where(np.isfinite(y), y, 0.0))
        rel = np.divide(err, mag, out=np.zeros_like(err), where=mag > 0)
    scale = max(1.0, float(mag.max())) if mag.size else 1.0
    out["max_abs"] = float(err.max()) if err.size else 0.0
    out["max_rel"] = float(rel.max()) if rel.size else 0.0
    out["ok"] = bool(np.all(err <= at * scale + rt * mag))
    if a.dtype != ref.dtype:
        out["ok"] = False
        out["note"] = f"dtype differs: {a.dtype} vs reference {ref.dtype}"
    return out


# -- nested arguments and host copies -------------------------------------------------

def _arg_names(f: Callable, n: int) -> list[str]:
    """f's parameter names for the first ``n`` positional arguments, else ``args[i]``."""
    try:
        params = [p.name for p in inspect.signature(f).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    return [params[i] if i < len(params) else f"args[{i}]" for i in range(n)]


def _paths(o: Any, path: str, found: list) -> list[tuple[str, Any]]:
    """Append ``(path, leaf)`` for each leaf of nested tuples, lists and dicts, depth first."""
    if isinstance(o, tuple | list):
        for i, v in enumerate(o):
            _paths(v, f"{path}[{i}]", found)
    elif isinstance(o, dict):
        for k, v in o.items():
            _paths(v, f"{path}[{k!r}]", found)
    else:
        found.append((path, o))
    return found


def _map(o: Any, fn: Callable) -> Any:
    """``o`` with each leaf replaced by ``fn(leaf)``, in ``_paths``'s order."""
    if isinstance(o, tuple | list):
        items = [_map(v, fn) for v in o]
        return type(o)(*items) if hasattr(o, "_fields") else type(o)(items)
    if isinstance(o, dict):
        return {k: _map(v, fn) for k, v in o.items()}
    return fn(o)


def _host(x: Any) -> Any:
    """A NumPy copy of an array or Tensor of any backend; other leaves (static) unchanged."""
    if isinstance(x, Tensor):
        return x.numpy()
    if isinstance(x, np.ndarray | np.generic):
        return np.asarray(x)
    if x is None or isinstance(x, bool | int | float | complex | str | slice):
        return x
    return backend_of(x).to_numpy(x)


def _value(x: Any) -> np.ndarray:
    return np.asarray(_host(x))


def _meta(a: Any) -> str:
    """``(2, 3) float32`` for an array or Tensor of any backend, ``repr`` for the rest."""
    return f"{tuple(a.shape)} {str(a.dtype).rsplit('.', 1)[-1]}" if hasattr(a, "shape") \
        else repr(a)


__all__ = ["ComparisonReport", "Divergence", "Entry", "TOLERANCES", "compare_backends",
           "tolerance"]
