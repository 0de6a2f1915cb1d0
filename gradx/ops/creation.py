"""Creating tensors: on the current backend unless told otherwise; not differentiable."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from .._backend import backend_of, get_backend, resolve
from .._primitive import composed
from .._tensor import Tensor

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
        from ..errors import DTypeError

        raise DTypeError(f"{op} takes a float dtype {_FLOAT_NAMES}, got {dtype!r}")
    return name


def set_default_dtype(dtype: Any) -> None:
    _global_dtype[0] = _float_name(dtype, "set_default_dtype")


@contextlib.contextmanager
def default_dtype(dtype: Any) -> Iterator[None]:
    """Scoped default float dtype: ``with gx.default_dtype("float64"):`` for a reference run."""
    token = _default_dtype.set(_float_name(dtype, "default_dtype"))
    try:
        yield
    finally:
        _default_dtype.reset(token)


def _target(backend: Any) -> Any:
    return get_backend() if backend is None else resolve(backend)


def _float_or(dtype: Any, backend: Any) -> Any:
    return backend.dtype(get_default_dtype() if dtype is None else dtype)


@composed
def tensor(data: Any, dtype: Any = None, *, requires_grad: bool = False,
           backend: Any = None) -> Any:
    """A new leaf tensor (a copy). Python floats take the default dtype; arrays keep theirs."""
    return _as_tensor(data, dtype, requires_grad, backend, copy=True)


@composed
def asarray(data: Any, dtype: Any = None, *, requires_grad: bool = False,
            backend: Any = None, copy: bool | None = None) -> Any:
    """Like :func:`tensor` but shares memory when it can."""
    return _as_tensor(data, dtype, requires_grad, backend, copy=copy)


def _as_tensor(data: Any, dtype: Any, requires_grad: bool, backend: Any, copy: Any) -> Any:
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
    if source is not None and source is not target:
        raw = target.from_numpy(source.to_numpy(data))
        raw = raw if dtype is None else target.asarray(raw, dtype=target.dtype(dtype))
    else:
        raw = target.asarray(data, dtype=None if dtype is None else target.dtype(dtype), copy=copy)
        if python_data and dtype is None and target.is_float(raw.dtype):
            want = target.dtype(get_default_dtype())
            if raw.dtype != want:
                raw = target.xp.astype(raw, want)
    if not target.xp.isdtype(raw.dtype, ("bool", "numeric")):
        from ..errors import DTypeError

        raise DTypeError(
            f"tensor: {type(data).__name__} data gives dtype {raw.dtype}, which no op can "
            "compute with; pass numbers (bool, integer, float or complex)"
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
    raw = getattr(b.xp, fill)(shape, *extra, dtype=_float_or(dtype, b))
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
    if dtype is None and isinstance(fill_value, bool):
        dtype = "bool"
    elif dtype is None and isinstance(fill_value, int):
        dtype = "int64"
    raw = b.xp.full(shape, fill_value, dtype=_float_or(dtype, b))
    return Tensor._make(raw, b, None, False, [0]).requires_grad_(requires_grad)


@composed
def eye(n_rows: int, n_cols: int | None = None, /, *, k: int = 0, dtype: Any = None,
        backend: Any = None) -> Any:
    b = _target(backend)
    return Tensor._make(b.xp.eye(n_rows, n_cols, k=k, dtype=_float_or(dtype, b)), b, None,
                        False, [0])


@composed
def arange(start: Any, /, stop: Any = None, step: Any = 1, *, dtype: Any = None,
           backend: Any = None) -> Any:
    """Like the Array API's arange; integer arguments give int64, floats the default dtype."""
    b = _target(backend)
    values = [v for v in (start, stop, step) if v is not None]
    if dtype is None:
        dtype = "int64" if all(isinstance(v, int) for v in values) else get_default_dtype()
    raw = b.xp.arange(start, stop, step, dtype=b.dtype(dtype))
    return Tensor._make(raw, b, None, False, [0])


@composed
def linspace(start: float, stop: float, /, num: int, *, dtype: Any = None,
             backend: Any = None, endpoint: bool = True) -> Any:
    b = _target(backend)
    raw = b.xp.linspace(start, stop, num, dtype=_float_or(dtype, b), endpoint=endpoint)
    return Tensor._make(raw, b, None, False, [0])


def _like(fill: str, x: Any, dtype: Any, *extra: Any) -> Any:
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
