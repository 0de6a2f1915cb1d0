"""Which backend: the process-wide default, a thread-local scope, and array type -> Backend.

An op runs where its inputs live (found from their types, cached per type); the current
backend only decides where new tensors are created.
"""

from __future__ import annotations

import os
import types
from collections.abc import Callable
from contextvars import ContextVar
from importlib import metadata
from typing import Any

from gradx.backends.base import Backend

from . import _native
from ._tape import ContextScope
from .errors import BackendMismatchError, BackendUnavailableError

_FACTORIES: dict[str, Callable[[], Backend]] = {}
_INSTANCES: dict[str, Backend] = {}
_BY_TYPE: dict[type, Backend] = {}
_BY_MODULE: dict[int, Backend] = {}
_scoped: ContextVar[Backend | None] = ContextVar("gradx_backend", default=None)
_default: list[Backend | None] = [None]


def _builtin_factories() -> dict[str, Callable[[], Backend]]:
    from gradx.backends.array_api_backend import strict_backend
    from gradx.backends.cupy_backend import CupyBackend
    from gradx.backends.numpy_backend import NumpyBackend

    return {"numpy": NumpyBackend, "cupy": CupyBackend, "array_api_strict": strict_backend}


def _factories() -> dict[str, Callable[[], Backend]]:
    if not _FACTORIES:
        found = _builtin_factories()
        try:
            eps = metadata.entry_points(group="gradx.backends")
        except Exception:  # a broken distribution must not break import
            eps = ()
        for ep in eps:
            if ep.name not in found:
                found[ep.name] = _lazy_entry_point(ep)
        _FACTORIES.update(found)
    return _FACTORIES


def _lazy_entry_point(ep: Any) -> Callable[[], Backend]:
    def make() -> Backend:
        obj = ep.load()
        made = obj() if callable(obj) and not isinstance(obj, Backend) else obj
        if isinstance(made, types.ModuleType):
            from gradx.backends.array_api_backend import ArrayAPIBackend

            made = ArrayAPIBackend(made, ep.name)
        return made

    return make


def register_backend(name: str, factory: Callable[[], Backend]) -> None:
    """Make ``set_backend(name)`` build a backend with ``factory`` (entry points do this too)."""
    _factories()[name] = factory
    _INSTANCES.pop(name, None)


def _instance(name: str) -> Backend:
    backend = _INSTANCES.get(name)
    if backend is None:
        factories = _factories()
        if name not in factories:
            raise BackendUnavailableError(
                f"unknown backend {name!r}; known backends are {sorted(factories)}. Pass an "
                "Array API namespace module, or register one under the 'gradx.backends' "
                "entry-point group"
            )
        try:
            backend = factories[name]()
        except ImportError as exc:
            raise BackendUnavailableError(
                f"backend {name!r} cannot be imported ({exc}); install the package that provides it"
            ) from exc
        _INSTANCES[name] = backend
    return backend


def resolve(spec: Any) -> Backend:
    """A usable Backend from a name, a Backend, or an Array API namespace module."""
    if isinstance(spec, Backend):
        backend = spec
    elif isinstance(spec, str):
        backend = _instance(spec)
    elif isinstance(spec, types.ModuleType) or hasattr(spec, "asarray"):
        backend = _for_namespace(spec)
    else:
        raise BackendUnavailableError(
            f"cannot make a backend from {spec!r}; pass a name such as 'numpy' or 'cupy', "
            "a Backend, or an Array API namespace module"
        )
    reason = backend.unavailable_reason()
    if reason is not None:
        raise BackendUnavailableError(f"backend {backend.name!r} is unavailable: {reason}")
    return backend


def _for_namespace(xp: Any) -> Backend:
    backend = _BY_MODULE.get(id(xp))
    if backend is None:
        name = getattr(xp, "__name__", "")
        if name in ("numpy", "cupy", "array_api_strict"):
            backend = _instance(name)
        else:
            from gradx.backends.array_api_backend import ArrayAPIBackend

            backend = ArrayAPIBackend(xp)
        _BY_MODULE[id(xp)] = backend
    return backend


def set_backend(spec: Any) -> Backend:
    """Set the process-wide default backend for new tensors."""
    backend = resolve(spec)
    _default[0] = backend
    return backend


def get_backend() -> Backend:
    """The backend new tensors are created on: the thread's scope, else the default."""
    backend = _scoped.get()
    if backend is not None:
        return backend
    backend = _default[0]
    if backend is None:
        backend = _default[0] = resolve(os.environ.get("GRADX_BACKEND", "numpy") or "numpy")
    return backend


def use_backend(spec: Any) -> ContextScope:
    """Create new tensors on ``spec`` inside the block (``with gx.use_backend("cupy") as b``
    gives the Backend); thread-local. A Scope: an interrupt cannot leave it in force."""
    return ContextScope((_scoped,), (resolve(spec),))


def available_backends() -> list[str]:
    """Names of registered backends that work on this machine right now."""
    names = []
    for name in _factories():
        try:
            ok = _instance(name).is_available()
        except Exception:
            ok = False
        if ok:
            names.append(name)
    return names


def backend_of(x: Any) -> Backend:
    """The backend that owns raw array ``x`` (cached by type)."""
    backend = _BY_TYPE.get(type(x))
    if backend is None:
        backend = _find_backend(x)
        _BY_TYPE[type(x)] = backend
    return backend


def _find_backend(x: Any) -> Backend:
    module = type(x).__module__.split(".", 1)[0]
    if module in ("numpy", "cupy", "array_api_strict"):
        return _instance(module)
    for backend in list(_INSTANCES.values()):
        if backend.name != "cupy" or backend._cp is not None:  # type: ignore[attr-defined]
            if isinstance(x, backend.array_types):
                return backend
    get_ns = getattr(x, "__array_namespace__", None)
    if get_ns is not None:
        return _for_namespace(get_ns())
    raise BackendMismatchError(
        f"{type(x).__module__}.{type(x).__name__} is not an array of any gradx backend; "
        "convert it with gx.tensor(...)"
    )


def array_namespace(*xs: Any) -> Any:
    """The namespace (numpy, cupy, an Array API module) of the first array among ``xs``."""
    for x in xs:
        if x is not None and not isinstance(x, bool | int | float | complex):
            backend = getattr(x, "_backend", None)  # a Tensor knows its backend
            return (backend if isinstance(backend, Backend) else backend_of(x)).xp
    return get_backend().xp


_PY_SCALARS = (bool, int, float, complex)


_NS_BY_TYPE: dict[type, Any] = {}


def _ns(x: Any, *more: Any) -> Any:
    """Fast ``array_namespace`` of raw arrays for built-in impls (Python scalars skipped)."""
    xp = _NS_BY_TYPE.get(type(x))
    if xp is None:
        if isinstance(x, _PY_SCALARS) or x is None:
            return _ns(*more) if more else get_backend().xp
        xp = _NS_BY_TYPE[type(x)] = backend_of(x).xp
    return xp


# Every op body calls ns once or more: compiled, a hit is one dict probe with no Python
# frame, and a miss (a first type, a Python scalar) runs _ns.
ns = _ns if (_ext := _native.extension()) is None else _ext.namespace_lookup(_NS_BY_TYPE, _ns)


def check_same(op: str, a: Backend, b: Backend) -> None:
    if a is not b:
        raise BackendMismatchError(
            f"{op}: inputs live on two backends, {a.name!r} and {b.name!r}. gradx never "
            f"transfers implicitly; move one first, e.g. x.to({a.name!r})"
        )
