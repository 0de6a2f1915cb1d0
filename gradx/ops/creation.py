"""Creating tensors: on the current backend unless told otherwise; not differentiable."""

from __future__ import annotations

from contextvars import ContextVar
from itertools import chain
from typing import Any

from .._backend import backend_of, get_backend, resolve
from .._primitive import composed
from .._tape import ContextScope, _grad_enabled
from .._tensor import Tensor, is_complex
from ..errors import ArgumentError, DTypeError, GraphError, describe

_default_dtype: ContextVar[str | None] = ContextVar("gradx_default_dtype", default=None)
_global_dtype = ["float32"]
_FLOAT_NAMES = ("float16", "float32", "float64")


def _dtype_name(dtype: Any) -> str:
    name = dtype if isinstance(dtype, str) else getattr(dtype, "name", str(dtype))
    return str(name).rsplit(".", 1)[-1]


def get_default_dtype() -> str:
    """The float dtype of tensors made from Python numbers (float32 unless changed)."""
    return _default_dtype.get() or _global_dtype[0]


def _float_name(dtype: Any, op: str) -> str:
    name = _dtype_name(dtype)
    if name not in _FLOAT_NAMES:
        raise DTypeError(f"{op} takes a float dtype {_FLOAT_NAMES}, got {dtype!r}")
    return name


def set_default_dtype(dtype: Any) -> None:
    _global_dtype[0] = _float_name(dtype, "set_default_dtype")


def default_dtype(dtype: Any) -> ContextScope:
    """Scoped default float dtype: ``with gx.default_dtype("float64"):`` for a reference run.
    A Scope: an interrupt cannot leave it in force."""
    return ContextScope((_default_dtype,), (_float_name(dtype, "default_dtype"),))


def _target(backend: Any) -> Any:
    return get_backend() if backend is None else resolve(backend)


def _float_or(dtype: Any, backend: Any, op: str) -> Any:
    _check_dtype(dtype, op)
    return backend.dtype(get_default_dtype() if dtype is None else dtype)


@composed
def tensor(data: Any, dtype: Any = None, *, requires_grad: bool = False,
           backend: Any = None) -> Any:
    """A new leaf tensor (a copy). Python floats take the default dtype; arrays keep theirs.

    ``gx.tensor(t)`` of a Tensor is a leaf copy of its values, cut from the graph (PyTorch's
    ``torch.tensor(t)``); ``gx.asarray(t)`` keeps the graph. A list holding tensors that
    require grad raises: ``gx.stack`` or ``gx.asarray`` builds it differentiably."""
    _check_dtype(dtype, "tensor")
    if isinstance(data, list | tuple) and _holds_tensor(data) and _grad_enabled.get() and \
            _any_requires_grad(data):
        raise GraphError(
            "tensor: the list holds tensors that require grad, and gx.tensor makes a new leaf "
            "(a copy cut from the graph). Use gx.stack(...) or gx.asarray(...) to keep "
            "their gradients, or .detach() them to copy the values")
    return _as_tensor(data, dtype, requires_grad, backend, True, "tensor")


@composed
def asarray(data: Any, dtype: Any = None, *, requires_grad: bool | None = None,
            backend: Any = None, copy: bool | None = None, device: Any = None) -> Any:
    """Like :func:`tensor` but shares memory when it can, and keeps the graph of tensors.

    ``asarray(t)`` of a Tensor is ``t`` itself when nothing changes; a new dtype gives a
    differentiable cast, another backend a differentiable transfer, ``copy=True`` a
    differentiable copy; ``copy=False`` where a copy is needed raises. A (nested) list of
    tensors is stacked differentiably. ``requires_grad=True`` marks the result as PyTorch's
    ``torch.asarray`` does (``t`` itself if nothing changes); ``False`` detaches it.
    ``device`` (the Array API's argument) must be where the result lives: ``backend=``
    chooses that."""
    _check_dtype(dtype, "asarray")
    if device is not None:
        _check_device(data, backend, device)
    if isinstance(data, Tensor):
        return _from_tensor(data, dtype, requires_grad, backend, copy)
    if isinstance(data, list | tuple) and _holds_tensor(data):
        if copy is False:
            raise ArgumentError("asarray(copy=False): a list of tensors cannot be viewed "
                                "without a copy; pass copy=None or stack them with gx.stack")
        stacked = _stack_nested(data, backend)
        return _from_tensor(stacked, dtype, requires_grad, None, None)
    return _as_tensor(data, dtype, bool(requires_grad), backend, copy, "asarray")


def _check_device(data: Any, backend: Any, device: Any) -> None:
    if backend is not None:
        target = resolve(backend)
    elif isinstance(data, Tensor):
        target = data._backend
    else:
        source = None if not hasattr(data, "dtype") else _backend_of_or_none(data)
        target = source if source is not None and source.name != "numpy" else get_backend()
    if str(device) != str(target.device):
        raise ArgumentError(f"asarray(device={device!r}): the result lives on backend "
                            f"{target.name}, device {target.device!r}; choose the backend "
                            "with backend=... (gradx never moves data to a device implicitly)")


def _from_tensor(t: Tensor, dtype: Any, requires_grad: bool | None, backend: Any,
                 copy: bool | None) -> Tensor:
    """``asarray`` of a Tensor: ``t``, or a recorded transfer, cast or copy of it."""
    target = t._backend if backend is None else resolve(backend)
    want = None if dtype is None else target.dtype(dtype)
    moves = target is not t._backend
    casts = want is not None and want != target.dtype(t.dtype)
    if copy is False and (moves or casts):
        change = (f"a move from {t._backend.name} to {target.name}" if moves else
                  f"a cast from {t.dtype} to {_dtype_name(want)}")
        raise ArgumentError(f"asarray({describe(t)}, copy=False): {change} needs a copy; pass "
                            "copy=None to allow one")
    out = t.to(target) if moves else t
    if casts:
        out = astype(out, want)
    elif copy and not moves:
        out = astype(out, out.dtype, copy=True)  # a copy that keeps the graph
    if requires_grad:
        out.requires_grad_()
    elif requires_grad is False and out.requires_grad:
        out = out.detach()
    return out


def _holds_tensor(data: Any) -> bool:
    """Whether a (nested) list or tuple holds a Tensor: one pass over the types of each
    level's items, so a long list of numbers costs little next to its conversion."""
    level = [data]
    while level:
        types = set(map(type, chain.from_iterable(level)))
        if any(issubclass(t, Tensor) for t in types):
            return True
        if not any(issubclass(t, list | tuple) for t in types):
            return False
        level = [v for v in chain.from_iterable(level) if isinstance(v, list | tuple)]
    return False


def _any_requires_grad(data: Any) -> bool:
    for v in data:
        if isinstance(v, Tensor) and v.requires_grad or \
                isinstance(v, list | tuple) and _any_requires_grad(v):
            return True
    return False


def _stack_nested(data: Any, backend: Any) -> Tensor:
    """A (nested) list of tensors and numbers as one recorded stack: rows stacked along a
    new first axis; numbers take the dtype of the tensors beside them."""
    like = _first_tensor(data)
    target = like._backend if backend is None else resolve(backend)
    parts = []
    for v in data:
        if isinstance(v, list | tuple):
            v = _stack_nested(v, target) if _holds_tensor(v) else \
                _as_tensor(v, _float_like(like), False, target, True, "asarray")
        elif isinstance(v, Tensor):
            v = v if v._backend is target else v.to(target)
        else:
            v = _as_tensor(v, _float_like(like), False, target, True, "asarray")
        parts.append(v)
    return stack(parts, axis=0)


def _first_tensor(data: Any) -> Tensor:
    for v in data:
        if isinstance(v, Tensor):
            return v
        if isinstance(v, list | tuple) and _holds_tensor(v):
            return _first_tensor(v)
    raise AssertionError("no tensor")  # only called on data that holds one


def _float_like(like: Tensor) -> Any:
    """The dtype numbers beside a float tensor take: its own (weak scalars, as in
    arithmetic); beside an integer or boolean one, the dtype they infer."""
    return like.dtype if like._backend.is_float(like.dtype) else None


def _check_dtype(dtype: Any, op: str) -> None:
    if dtype is not None and is_complex(dtype):
        raise DTypeError(f"{op}: dtype {dtype!r}: complex numbers are not supported yet")


def _reject_complex_numbers(op: str, *values: Any) -> None:
    for v in values:
        if isinstance(v, complex) or is_complex(getattr(v, "dtype", "")):
            raise DTypeError(f"{op}: {v!r} is complex: complex numbers are not supported yet")


def _complex_data(op: str, data: Any, dtype: Any) -> DTypeError:
    kind = type(data).__name__
    return DTypeError(
        f"{op}: {kind} data of dtype {dtype} (complex): complex numbers are not supported "
        "yet; pass the real and imaginary parts as two real tensors")


def _as_tensor(data: Any, dtype: Any, requires_grad: bool, backend: Any, copy: Any,
               op: str) -> Any:
    if isinstance(data, Tensor):
        src = data._backend
        target = src if backend is None else resolve(backend)
        raw = data.data if target is src else target.from_numpy(src.to_numpy(data.data))
        raw = target.asarray(raw, dtype=target.dtype(dtype), copy=copy) if (
            dtype is not None or copy) else raw
        return Tensor._make(raw, target, None, False, [0]).requires_grad_(requires_grad)
    python_data = not hasattr(data, "dtype") and not hasattr(data, "__array_namespace__")
    source = None if python_data else _backend_of_or_none(data)
    if backend is None and source is not None and source.name != "numpy":
        target = source  # a device array stays where it lives; NumPy data is host data
    else:
        target = _target(backend)
    if source is not None and is_complex(data.dtype):
        raise _complex_data(op, data, data.dtype)
    want = None if dtype is None else target.dtype(dtype)
    if source is not None and source is not target:
        raw = target.from_numpy(source.to_numpy(data))
        raw = raw if dtype is None else target.asarray(raw, dtype=want)
    elif source is not None:
        raw = target.asarray(data, dtype=want, copy=copy)
    else:
        # Python data: inferred first, so complex numbers are seen before a cast drops them
        try:
            raw = target.asarray(data, copy=copy)
        except TypeError as exc:  # objects no namespace holds: say what was given
            raise DTypeError(
                f"{op}: cannot make a {target.name} array of {type(data).__name__} data "
                f"({exc}); pass numbers (bool, integer or float), nested lists of them or an array"
            ) from exc
        if is_complex(raw.dtype):
            raise _complex_data(op, data, raw.dtype)
        if want is not None:
            if raw.dtype != want:
                raw = target.xp.astype(raw, want)
        elif python_data and target.is_float(raw.dtype):
            default = target.dtype(get_default_dtype())
            if raw.dtype != default:
                raw = target.xp.astype(raw, default)
    if not target.xp.isdtype(raw.dtype, ("bool", "numeric")):
        raise DTypeError(
            f"{op}: {type(data).__name__} data gives dtype {raw.dtype}, which no op can "
            "compute with; pass numbers (bool, integer or float)"
        )
    return Tensor._make(raw, target, None, False, [0]).requires_grad_(requires_grad)


def _backend_of_or_none(x: Any) -> Any:
    try:
        return backend_of(x)
    except Exception:
        return None


def _make(fill: str, shape: Any, dtype: Any, backend: Any, requires_grad: bool,
          *extra: Any) -> Any:
    b = _target(backend)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    raw = getattr(b.xp, fill)(shape, *extra, dtype=_float_or(dtype, b, fill))
    return Tensor._make(raw, b, None, False, [0]).requires_grad_(requires_grad)


@composed
def zeros(shape: Any, dtype: Any = None, *, backend: Any = None,
          requires_grad: bool = False) -> Any:
    return _make("zeros", shape, dtype, backend, requires_grad)


@composed
def ones(shape: Any, dtype: Any = None, *, backend: Any = None,
         requires_grad: bool = False) -> Any:
    return _make("ones", shape, dtype, backend, requires_grad)


@composed
def empty(shape: Any, dtype: Any = None, *, backend: Any = None,
          requires_grad: bool = False) -> Any:
    return _make("empty", shape, dtype, backend, requires_grad)


@composed
def full(shape: Any, fill_value: Any, dtype: Any = None, *, backend: Any = None,
         requires_grad: bool = False) -> Any:
    b = _target(backend)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    _reject_complex_numbers("full", fill_value)
    if dtype is None and isinstance(fill_value, bool):
        dtype = "bool"
    elif dtype is None and isinstance(fill_value, int):
        dtype = "int64"
    raw = b.xp.full(shape, fill_value, dtype=_float_or(dtype, b, "full"))
    return Tensor._make(raw, b, None, False, [0]).requires_grad_(requires_grad)


@composed
def eye(n_rows: int, n_cols: int | None = None, /, *, k: int = 0, dtype: Any = None,
        backend: Any = None) -> Any:
    b = _target(backend)
    return Tensor._make(b.xp.eye(n_rows, n_cols, k=k, dtype=_float_or(dtype, b, "eye")), b, None,
                        False, [0])


@composed
def arange(start: Any, /, stop: Any = None, step: Any = 1, *, dtype: Any = None,
           backend: Any = None) -> Any:
    """Like the Array API's arange; integer arguments give int64, floats the default dtype."""
    b = _target(backend)
    _check_dtype(dtype, "arange")
    _reject_complex_numbers("arange", start, stop, step)
    values = [v for v in (start, stop, step) if v is not None]
    if dtype is None:
        dtype = "int64" if all(isinstance(v, int) for v in values) else get_default_dtype()
    raw = b.xp.arange(start, stop, step, dtype=b.dtype(dtype))
    return Tensor._make(raw, b, None, False, [0])


@composed
def linspace(start: float, stop: float, /, num: int, *, dtype: Any = None,
             backend: Any = None, endpoint: bool = True) -> Any:
    b = _target(backend)
    _reject_complex_numbers("linspace", start, stop)
    raw = b.xp.linspace(start, stop, num, dtype=_float_or(dtype, b, "linspace"),
                        endpoint=endpoint)
    return Tensor._make(raw, b, None, False, [0])


def _like(fill: str, x: Any, dtype: Any, *extra: Any) -> Any:
    _check_dtype(dtype, fill)
    _reject_complex_numbers(fill, *extra)
    if isinstance(x, Tensor):
        b = x._backend
        raw = getattr(b.xp, fill)(x.data, *extra, dtype=None if dtype is None else b.dtype(dtype))
        return Tensor._make(raw, b, None, False, [0])
    xp = backend_of(x).xp
    return getattr(xp, fill)(x, *extra, dtype=dtype)


@composed
def zeros_like(x: Any, /, *, dtype: Any = None) -> Any:
    """Zeros shaped like ``x``: a Tensor for a Tensor, a raw array for a raw array."""
    return _like("zeros_like", x, dtype)


@composed
def ones_like(x: Any, /, *, dtype: Any = None) -> Any:
    return _like("ones_like", x, dtype)


@composed
def empty_like(x: Any, /, *, dtype: Any = None) -> Any:
    return _like("empty_like", x, dtype)


@composed
def full_like(x: Any, /, fill_value: Any, *, dtype: Any = None) -> Any:
    return _like("full_like", x, dtype, fill_value)


from .elementwise import astype  # noqa: E402
from .shape import stack  # noqa: E402
