"""@primitive (the dispatcher), defvjp, defjvp, and the one registry of primitives.

A primitive's body works on raw arrays of whatever backend its inputs live on. Called
with no Tensor argument it is a plain function call, which is how first-order backward
runs rules without recording; called with Tensors it unwraps them, runs the body where
the inputs live, and records a node when a gradient may be needed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextvars import ContextVar
from sys import modules as _modules
from typing import Any, NoReturn

from ._tape import (
    _DEBUG,
    _SEQ,
    Meta,
    Node,
    Scope,
    _annotate,
    _count,
    _grad_enabled,
    new_node,
)
from .errors import BackendMismatchError, DTypeError, GradxError, OpError, describe

_REGISTRY: dict[str, Primitive] = {}
_SCALARS = (bool, int, float, complex, type(None))
# the scalars dispatch passes to an op body as they are: complex ones are refused (no complex
# support yet: a complex result of a real Tensor would differentiate as its real part)
_REAL_SCALARS = (bool, int, float, type(None))
_NOT_WEAK = object()
_NONES = [(None,) * n for n in range(16)]
# a node's argnums when its inputs needing gradients are the first, the second, both
_FIRST, _SECOND, _FIRST_TWO = (0,), (1,), (0, 1)
# Optional per-op recorder ``rec(prim, args, kwargs, ans)`` called after every
# primitive on Tensors; gx.testing.compare_backends(per_op=True) sets it.
_recorder: ContextVar[Callable | None] = ContextVar("gradx_op_recorder", default=None)
# True while any recorder is installed, in any thread: dispatch then goes through _finish
# (the compiled path reads this cell too). _HOOKS counts the installed recorders.
_HOOKED = [False]
_HOOKS = [0]
_COUNTED = (_HOOKS, _HOOKED)  # as Scope takes them
_new = object.__new__


def install_recorder(rec: Callable) -> Any:
    """Set the per-op recorder of this context; returns the token for ``remove_recorder``."""
    _count(_COUNTED, 1)  # counted as a Scope counts (one compiled step, where compiled)
    return _recorder.set(rec)


def recording(rec: Callable) -> Any:
    """``with recording(rec):`` makes ``rec`` the per-op recorder of this context for the
    block, counted in ``_HOOKS``/``_HOOKED``. A Scope: an interrupt can leave neither the
    recorder installed nor the count off (``install_recorder`` followed by a ``try`` can)."""
    return Scope((_recorder,), (rec,), _COUNTED)


def remove_recorder(token: Any) -> None:
    """Undo ``install_recorder``; dispatch takes its fast path again once none is left."""
    try:
        _recorder.reset(token)
    finally:
        _count(_COUNTED, -1)


class Primitive:
    """A function with VJP (and optionally JVP) rules, one per differentiable argument."""

    # slots for the fields dispatch reads on every call (the compiled path loads them by
    # offset); the rest, including what functools.update_wrapper copies, in __dict__
    __slots__ = ("fun", "name", "broadcasts", "saves_args", "saves_ans", "view",
                 "changes_backend", "special", "vjps", "jvps", "vjp_argnum", "jvp_argnum",
                 "__dict__", "__weakref__")

    def __init__(self, fun: Callable, *, name: str | None = None, broadcasts: bool = False,
                 saves_args: bool | str = True, saves_ans: bool = True, view: bool = False,
                 changes_backend: bool = False) -> None:
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.name = name or fun.__name__.lstrip("_")
        self.broadcasts = broadcasts
        self.saves_args = saves_args
        self.saves_ans = saves_ans
        self.view = view
        self.changes_backend = changes_backend
        # one flag for the rare cases the fast path of _apply leaves to _finish
        self.special = view or changes_backend
        self.vjps: dict[int, Callable] = {}
        self.jvps: dict[int, Callable] = {}
        self.vjp_argnum: Callable | None = None
        self.jvp_argnum: Callable | None = None

    def __repr__(self) -> str:
        return f"<gradx primitive {self.name}>"

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        return self if obj is None else functools.partial(self, obj)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args and isinstance(args[0], Tensor):
            return _dispatch(self, args, kwargs)
        for a in args:
            if isinstance(a, Tensor):
                return _dispatch(self, args, kwargs)
        try:
            return self.fun(*args, **kwargs)
        except Exception as exc:
            _reraise(self, args, kwargs, exc)


def primitive(fun: Callable | None = None, **options: Any) -> Any:
    """Make ``fun`` (raw arrays in, one raw array out) a differentiable gradx primitive.

    Options: ``broadcasts`` (the tape sums each gradient back to its input's shape),
    ``saves_args`` (False, or "meta" for shape and dtype only, when no rule reads the
    inputs' values), ``saves_ans``, ``view`` (output shares the input's version counter).
    """
    if fun is None:
        return lambda f: primitive(f, **options)
    prim = Primitive(fun, **options)
    if prim.name in _REGISTRY and _REGISTRY[prim.name].fun.__module__.startswith("gradx."):
        if not fun.__module__.startswith("gradx."):
            prim.name = f"{fun.__module__}.{prim.name}"
    _REGISTRY[prim.name] = prim
    return prim


def defvjp(prim: Primitive, *rules: Callable | None,
           argnums: tuple[int, ...] | None = None) -> None:
    """Attach VJP rules ``(g, ans, *args, **kwargs) -> gradient``, one per argument in order
    (None for a non-differentiable argument)."""
    _check_prim(prim, "defvjp")
    for i, rule in zip(argnums or range(len(rules)), rules, strict=True):
        if rule is not None:
            prim.vjps[i] = rule


def defvjp_argnum(prim: Primitive, rule: Callable) -> None:
    """One VJP rule ``(argnum, g, ans, *args, **kwargs)`` for ops with any number of inputs."""
    _check_prim(prim, "defvjp_argnum")
    prim.vjp_argnum = rule


def defjvp(prim: Primitive, *rules: Callable | None,
           argnums: tuple[int, ...] | None = None) -> None:
    """Attach JVP rules ``(t, ans, *args, **kwargs) -> tangent of the output``; optional,
    forward mode otherwise transposes the VJP rule."""
    _check_prim(prim, "defjvp")
    for i, rule in zip(argnums or range(len(rules)), rules, strict=True):
        if rule is not None:
            prim.jvps[i] = rule


def defjvp_argnum(prim: Primitive, rule: Callable) -> None:
    _check_prim(prim, "defjvp_argnum")
    prim.jvp_argnum = rule


def _check_prim(prim: Any, what: str) -> None:
    if not isinstance(prim, Primitive):
        raise TypeError(f"{what} takes a function decorated with @gx.primitive, got {prim!r}")


def primitives() -> dict[str, Primitive]:
    """Every registered primitive by name."""
    return dict(_REGISTRY)


def _op_error(prim: Any, args: tuple, kwargs: dict, exc: Exception) -> GradxError:
    shown = ", ".join(describe(a) for a in args)
    extra = f", {kwargs}" if kwargs else ""
    cls = next((c for c in (ValueError, TypeError, IndexError) if isinstance(exc, c)), None)
    msg = f"{getattr(prim, 'name', prim)}({shown}{extra}) failed: {type(exc).__name__}: {exc}"
    if cls is not None:
        # keep the builtin category catchable (ValueError etc.) while being a gradx error
        err_cls = _mixed_error(cls)
        return err_cls(msg)
    return OpError(msg)


@functools.cache
def _mixed_error(cls: type) -> type:
    return type(f"Gradx{cls.__name__}", (OpError, cls), {"__module__": "gradx.errors"})


def _named(prim: Any, args: tuple, kwargs: dict, exc: GradxError) -> GradxError:
    """``exc`` if its message names ``prim``, else the same class with a message that names
    the op and its inputs (a gradx error raised by a helper knows neither)."""
    name = getattr(prim, "name", prim)
    if name in str(exc):
        return exc
    shown = ", ".join(describe(a) for a in args)
    try:
        named = type(exc)(f"{name}({shown}{f', {kwargs}' if kwargs else ''}): {exc}")
    except Exception:  # an error class with a different constructor: keep it as it is
        return exc
    named.__cause__ = exc
    return named


def _reraise(prim: Any, args: tuple, kwargs: dict, exc: BaseException) -> NoReturn:
    """Raise what ``prim`` (a Primitive, or the name of a composed function) failing with
    ``exc`` means to the user: a gradx error naming the op and its inputs. Every dispatch
    path, Python or compiled, ends here."""
    if isinstance(exc, GradxError):
        raise _named(prim, args, kwargs, exc)
    if isinstance(exc, Exception):
        raise _op_error(prim, args, kwargs, exc) from exc
    raise exc


def _backend_of_arg(prim: Primitive, args: tuple, a: Any) -> Any:
    try:
        return backend_of(a)
    except GradxError:
        raise _op_error(prim, args, {}, TypeError(
            f"an argument of type {type(a).__name__} is not a Tensor, an array of a gradx "
            "backend or a Python scalar; convert it with gx.tensor(...)")) from None


def composed(fun: Callable) -> Callable:
    """Mark a public function built from primitives: an exception it raises that is not a
    gradx error (an argument of the wrong type has no .shape) becomes one naming it."""

    @functools.wraps(fun)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fun(*args, **kwargs)
        except Exception as exc:
            _reraise(fun.__name__, args, kwargs, exc)

    return wrapper


def _apply(prim: Primitive, args: tuple, kwargs: dict) -> Any:
    """Run ``prim`` on Tensors: unwrap, check backends, compute, maybe record a node.

    The one- and two-Tensor cases are spelled out, node construction included: they are
    nearly every call, and each avoided call or allocation is paid once per primitive."""
    n = len(args)
    if n == 2:
        a, b = args
        if isinstance(a, Tensor):
            if isinstance(b, Tensor):
                backend = a._backend
                if b._backend is not backend:
                    _mismatch(prim, args)
                raw = (a.data, b.data)
                if not _grad_enabled.get():
                    argnums = parents = None
                elif a.requires_grad:
                    if b.requires_grad:
                        argnums, parents = _FIRST_TWO, (a._node or a, b._node or b)
                    else:
                        argnums, parents = _FIRST, (a._node or a,)
                elif b.requires_grad:
                    argnums, parents = _SECOND, (b._node or b,)
                else:
                    argnums = parents = None
            elif type(b) in _REAL_SCALARS:
                backend = a._backend
                raw = (a.data, b)
                argnums = _FIRST
                parents = (a._node or a,) if a.requires_grad and _grad_enabled.get() else None
            else:
                return _apply_any(prim, args, kwargs)
        else:
            return _apply_any(prim, args, kwargs)
    elif n == 1:
        a = args[0]
        if not isinstance(a, Tensor):
            return _apply_any(prim, args, kwargs)
        backend = a._backend
        raw = (a.data,)
        argnums = _FIRST
        parents = (a._node or a,) if a.requires_grad and _grad_enabled.get() else None
    else:
        return _apply_any(prim, args, kwargs)
    try:
        ans = prim.fun(*raw, **kwargs) if kwargs else prim.fun(*raw)
    except Exception as exc:
        _reraise(prim, args, kwargs, exc)
    if prim.special or _HOOKED[0]:
        return _finish(prim, args, kwargs, ans, backend, argnums, parents, raw)
    out = _new(Tensor)
    out.data = ans
    out._backend = backend
    out.grad = None
    out._version = version = [0]
    if parents is not None:
        dtype = ans.dtype
        is_float = backend._float_dtypes.get(dtype)
        if is_float is None:
            is_float = backend.is_float(dtype)
        if is_float:
            node = Node()
            saves = prim.saves_args
            if saves is True:
                node.args = raw
                versions = (a._version, 0) if n == 1 or type(b) in _SCALARS else \
                    (a._version, 0, b._version, 1)
            else:
                node.args = _NONES[n] if saves is False else _metas(raw)
                versions = ()
            if prim.saves_ans:
                node.ans = ans
                node.versions = versions + (version, -1)
            else:
                node.ans = None
                node.versions = versions
            node.prim = prim
            node.kwargs = kwargs
            node.argnums = argnums
            node.parents = parents
            node.shape = ans.shape
            node.dtype = dtype
            node.backend = backend
            node.seq = next(_SEQ)
            if _DEBUG[0]:
                _annotate(node)
            out._node = node
            out.requires_grad = True
            return out
    out._node = None
    out.requires_grad = False
    return out


def _apply_any(prim: Primitive, args: tuple, kwargs: dict) -> Any:
    """The general case: any number of arguments, Tensors anywhere among them."""
    grad_on = _grad_enabled.get()
    backend = None
    raw_list = list(args)
    argnums = plist = None
    others = None
    for i, a in enumerate(args):
        if isinstance(a, Tensor):
            if backend is None:
                backend = a._backend
            elif a._backend is not backend:
                _mismatch(prim, args)
            raw_list[i] = a.data
            if grad_on and a.requires_grad:
                if plist is None:
                    argnums, plist = [i], [a._node or a]
                else:
                    argnums.append(i)
                    plist.append(a._node or a)
        elif type(a) is complex:
            _complex_scalar(prim, args)
        elif type(a) not in _SCALARS and not isinstance(a, tuple | list | str | slice):
            w = _weak_scalar(a)
            if w is _NOT_WEAK:
                others = [a] if others is None else others + [a]
            elif type(w) is complex:
                _complex_scalar(prim, args)
            else:  # a NumPy scalar: weak, as a Python scalar, on every backend
                raw_list[i] = w
    if others is not None and any(_backend_of_arg(prim, args, a) is not backend
                                  for a in others):
        _mismatch(prim, args)
    raw = tuple(raw_list)
    parents = None if plist is None else tuple(plist)
    if argnums is not None:
        argnums = tuple(argnums)
    try:
        ans = prim.fun(*raw, **kwargs) if kwargs else prim.fun(*raw)
    except Exception as exc:
        _reraise(prim, args, kwargs, exc)
    return _finish(prim, args, kwargs, ans, backend, argnums, parents, raw)


def _finish(prim: Primitive, args: tuple, kwargs: dict, ans: Any, backend: Any,
            argnums: tuple | None, parents: tuple | None, raw: tuple) -> Any:
    """Wrap ``ans`` and record its node: views, backend changes, per-op recorders."""
    rec = _recorder.get()
    if rec is not None:
        rec(prim, args, kwargs, ans)
    if prim.changes_backend:
        backend = backend_of(ans)
    version = args[0]._version if prim.view and isinstance(args[0], Tensor) else [0]
    if parents is None:
        return _make(ans, backend, None, False, version)
    dtype = ans.dtype
    if not backend.is_float(dtype):
        return _make(ans, backend, None, False, version)
    saves = prim.saves_args
    versions = ()  # (counter, argnum) pairs, flat; -1 for the output
    if saves is True:
        saved = raw
        for i, a in enumerate(args):
            if isinstance(a, Tensor):
                versions += (a._version, i)
    elif saves is False:
        saved = _NONES[len(raw)] if len(raw) < 16 else (None,) * len(raw)
    else:
        saved = _metas(raw)
    if prim.saves_ans:
        versions += (version, -1)
    node = new_node(prim, saved, kwargs, ans if prim.saves_ans else None, argnums, parents,
                    ans.shape, dtype, versions, backend)
    return _make(ans, backend, node, True, version)


def _weak_scalar(x: Any) -> Any:
    """The Python scalar that NumPy scalar ``x`` (``np.float64``, ``np.int32``, ``np.bool_``,
    ...) stands for, or ``_NOT_WEAK`` when ``x`` is not one.

    A NumPy scalar combined with a Tensor is weak, as a Python scalar is and as PyTorch
    treats it: it takes the Tensor's dtype, and works with every backend. Passed through, it
    would be strong on NumPy (``float32 / np.float64`` is float64 there) and an array of
    another backend elsewhere. Dispatch asks only after the ``type(b) in _SCALARS`` miss."""
    np = _modules.get("numpy")  # no NumPy imported: no NumPy scalar exists
    if np is None or not isinstance(x, np.number | np.bool_):
        return _NOT_WEAK
    v = x.item()
    if type(v) not in _SCALARS:  # long double: no Python number holds it exactly
        v = complex(x) if isinstance(x, np.complexfloating) else float(x)
    return v


def _complex_scalar(prim: Primitive, args: tuple) -> None:
    raise DTypeError(
        f"{prim.name}({', '.join(describe(a) for a in args)}): complex numbers are not "
        "supported yet; use real and imaginary parts as two real Tensors"
    )


def _weak(x: Any) -> Any:
    """``x``, or the Python scalar it stands for when it is a NumPy scalar (Tensor's in-place
    operators and ``__setitem__``, which compute on raw arrays without dispatch)."""
    if type(x) in _SCALARS or isinstance(x, Tensor):
        return x
    w = _weak_scalar(x)
    return x if w is _NOT_WEAK else w


def _metas(raw: tuple) -> tuple:
    return tuple(Meta(a.shape, a.dtype) if hasattr(a, "shape") else a for a in raw)


def _mismatch(prim: Primitive, args: tuple) -> None:
    names = []
    for a in args:
        if isinstance(a, Tensor):
            names.append(a._backend.name)
        elif type(a) not in _SCALARS and not isinstance(a, tuple | list | str | slice) \
                and _weak_scalar(a) is _NOT_WEAK:
            names.append(backend_of(a).name)
    uniq = list(dict.fromkeys(names))
    raise BackendMismatchError(
        f"{prim.name}: inputs live on different backends {uniq} "
        f"({', '.join(describe(a) for a in args)}). gradx never transfers implicitly; "
        f"move them to one backend first, e.g. x.to({uniq[0]!r})"
    )


from ._backend import backend_of  # noqa: E402
from ._tensor import Tensor  # noqa: E402

_make = Tensor._make
# what Primitive.__call__ runs on Tensors: _apply, or its compiled counterpart (gradx._hot)
_dispatch = _apply
