"""Tensor: a raw backend array, its gradient, and the node that produced it.

Operators and methods call the namespace functions; nothing here computes by itself.
"""

from __future__ import annotations

from typing import Any

from . import _tape
from ._backend import backend_of, resolve
from ._tape import _grad_enabled, bump
from ._tape import backward as _tape_backward
from .errors import DTypeError, GraphError, describe


def _array_ufunc(self: Any, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
    from .numpy import dispatch_ufunc

    return dispatch_ufunc(ufunc, method, inputs, kwargs)


class _UfuncHook:
    """``Tensor.__array_ufunc__``: NumPy looks the hook up on the type and gets the handler,
    so ``numpy.exp(t)`` and ``ndarray * t`` run gradx.numpy's function (a Tensor, on the
    tape). CuPy asks the instance and gets None, its signal to defer, so ``cupy_array * t``
    reaches ``Tensor.__rmul__`` rather than handing a Tensor to a CuPy kernel."""

    def __get__(self, instance: Any, owner: Any) -> Any:
        return _array_ufunc if instance is None else None


class Tensor:
    """An array on some backend that records the primitives applied to it."""

    __slots__ = ("data", "grad", "requires_grad", "_node", "_backend", "_version", "__weakref__")
    __array_ufunc__ = _UfuncHook()
    __array_priority__ = 10_000

    def __array_function__(self, func: Any, types: Any, args: tuple, kwargs: dict) -> Any:
        """``numpy.sum(t)``, ``numpy.concatenate([t, u])``...: gradx.numpy's function of the
        same name (differentiable), or an ArgumentError naming what to call instead."""
        from .numpy import dispatch_function

        return dispatch_function(func, args, kwargs)

    def __init__(self, data: Any, requires_grad: bool = False) -> None:
        """A leaf wrapping ``data`` as it is (no copy). ``Tensor(t)`` of a Tensor shares
        ``t``'s memory and so its version counter, as ``t.detach()`` does: an in-place update
        through either one is seen by backward through the other."""
        if isinstance(data, Tensor):
            self._version = data._version
            self._backend = data._backend
            data = data.data
        else:
            self._version = [0]
            self._backend = backend_of(data)
            dtype = getattr(data, "dtype", None)
            if dtype is not None and is_complex(dtype):
                raise DTypeError(
                    f"Tensor: a {type(data).__name__} of dtype {dtype} shape "
                    f"{tuple(data.shape)}: complex numbers are not supported yet; pass the "
                    "real and imaginary parts as two real tensors")
        self.data = data
        self.grad: Tensor | None = None
        self._node = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_()

    @classmethod
    def _make(cls, data: Any, backend: Any, node: Any, requires_grad: bool,
              version: list) -> Tensor:
        t = _new(cls)
        t.data = data
        t._backend = backend
        t._node = node
        t.requires_grad = requires_grad
        t.grad = None
        t._version = version
        return t

    # -- properties ------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> Any:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return len(self.data.shape)

    @property
    def size(self) -> int:
        n = 1
        for s in self.data.shape:
            n *= s
        return n

    @property
    def backend(self) -> Any:
        return self._backend

    @property
    def device(self) -> str:
        return self._backend.device

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def T(self) -> Tensor:
        return permute_dims(self, axes=tuple(reversed(range(self.ndim))))

    @property
    def mT(self) -> Tensor:
        return matrix_transpose(self)

    # -- autograd --------------------------------------------------------------------
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Make this leaf record operations applied to it."""
        if requires_grad and is_complex(self.data.dtype):
            raise DTypeError(
                f"requires_grad=True on a complex tensor (dtype {self.dtype} shape "
                f"{self.shape}): complex numbers are not supported yet; differentiate the real "
                "and imaginary parts as two real tensors")
        if requires_grad and not self._backend.is_float(self.data.dtype):
            raise DTypeError(
                f"requires_grad=True needs a floating-point tensor, got dtype {self.dtype} "
                f"shape {self.shape}; cast first, e.g. x.astype(gx.float32)"
            )
        if not requires_grad and self._node is not None:
            raise GraphError("requires_grad_(False) on a non-leaf tensor; use x.detach()")
        self.requires_grad = requires_grad
        return self

    def clone(self) -> Tensor:
        """A copy with its own memory, still differentiable (safe to modify in place)."""
        return astype(self, self.data.dtype, copy=True)

    def detach(self) -> Tensor:
        """The same data, cut from the graph. It shares this tensor's memory and version
        counter (as in PyTorch), so backward notices an in-place update through either."""
        return Tensor._make(self.data, self._backend, None, False, self._version)

    def backward(self, grad: Any = None, retain_graph: bool = False,
                 create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``."""
        if not self.requires_grad:
            raise GraphError(
                f"backward() on a tensor of shape {self.shape} that does not require grad: "
                "nothing it depends on has requires_grad=True (or it was made under no_grad)"
            )
        if is_complex(self.data.dtype):
            raise DTypeError(
                f"backward() on a complex tensor (dtype {self.dtype} shape {self.shape}): "
                "complex numbers are not supported yet; differentiate a real function, "
                "e.g. of the real and imaginary parts kept as two real tensors")
        if grad is None:
            if self.size != 1:
                raise GraphError(
                    f"backward() on a non-scalar tensor of shape {self.shape} needs grad= "
                    "(a cotangent of the same shape); reduce to a scalar or pass one"
                )
            grad = self._backend.xp.ones(self.data.shape, dtype=self.data.dtype)
        elif isinstance(grad, Tensor):
            grad = grad if create_graph else grad.data
        else:
            try:
                grad = self._backend.asarray(grad, dtype=self.data.dtype)
            except Exception as exc:  # e.g. grad="abc": name the call and the value
                from ._primitive import _op_error

                raise _op_error("backward", (self, grad), {}, exc) from exc
        if tuple(grad.shape) != self.shape:
            from .errors import ShapeError

            raise ShapeError(f"backward(): grad has shape {tuple(grad.shape)}, "
                             f"the tensor has shape {self.shape}")
        _tape_backward([self], [grad], retain_graph=retain_graph or create_graph,
                       create_graph=create_graph)

    def zero_grad_(self, set_to_none: bool = True) -> None:
        """Drop ``.grad`` (the default: the next backward stores a fresh one), or fill it with
        zeros in place, keeping its buffer for the next backward to add into."""
        g = self.grad
        if set_to_none or g is None:
            self.grad = None
        elif g.requires_grad or not g._backend.writable(g.data):
            self.grad = zeros_like(g.detach())
        else:
            g[...] = 0  # a plain write: this grad records nothing; its version is bumped

    def _bump_version(self) -> None:
        """Tell the tape this tensor's data changed in place."""
        bump(self._version)

    # -- conversion ------------------------------------------------------------------
    def numpy(self) -> Any:
        """A NumPy copy, from any backend."""
        return self._backend.to_numpy(self.data)

    def item(self) -> Any:
        if self.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.numpy().reshape(()).item()

    def tolist(self) -> Any:
        return self.numpy().tolist()

    def to(self, backend: Any) -> Tensor:
        """A copy on another backend; differentiable (gradients come back to this one)."""
        target = resolve(backend)
        if target is self._backend:
            return self
        return to_backend(self, src=self._backend.name, dst=target)

    def astype(self, dtype: Any) -> Tensor:
        return astype(self, dtype=self._backend.dtype(dtype))

    def __array_namespace__(self, api_version: str | None = None) -> Any:
        import gradx

        return gradx

    def __dlpack__(self, **kwargs: Any) -> Any:
        return self._backend.dlpack(self.data, **kwargs)

    def __dlpack_device__(self) -> Any:
        return self.data.__dlpack_device__()

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        a = self.numpy()
        return a if dtype is None else a.astype(dtype)

    def __repr__(self) -> str:
        body = repr(self.numpy()).replace("array(", "tensor(", 1)
        if body.endswith(")"):
            body = body[:-1]
        extras = [f"backend={self._backend.name}"]
        if "dtype" not in body:
            extras.insert(0, f"dtype={self.dtype}")
        if self.requires_grad:
            extras.append("requires_grad=True")
        return f"{body}, {', '.join(extras)})"

    def __len__(self) -> int:
        if not self.data.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __iter__(self) -> Any:
        for i in range(len(self)):
            yield self[i]

    def __bool__(self) -> bool:
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        return int(self.data)

    __hash__ = object.__hash__

    # -- operators -------------------------------------------------------------------
    def __add__(self, other: Any) -> Tensor:
        return _apply(add, (self, other), _NO_KWARGS)

    def __radd__(self, other: Any) -> Tensor:
        return _apply(add, (other, self), _NO_KWARGS)

    def __sub__(self, other: Any) -> Tensor:
        return _apply(subtract, (self, other), _NO_KWARGS)

    def __rsub__(self, other: Any) -> Tensor:
        return _apply(subtract, (other, self), _NO_KWARGS)

    def __mul__(self, other: Any) -> Tensor:
        return _apply(multiply, (self, other), _NO_KWARGS)

    def __rmul__(self, other: Any) -> Tensor:
        return _apply(multiply, (other, self), _NO_KWARGS)

    def __truediv__(self, other: Any) -> Tensor:
        return _apply(divide, (self, other), _NO_KWARGS)

    def __rtruediv__(self, other: Any) -> Tensor:
        return _apply(divide, (other, self), _NO_KWARGS)

    def __pow__(self, other: Any) -> Tensor:
        return _apply(pow, (self, other), _NO_KWARGS)

    def __rpow__(self, other: Any) -> Tensor:
        return _apply(pow, (other, self), _NO_KWARGS)

    def __matmul__(self, other: Any) -> Tensor:
        return _apply(matmul, (self, other), _NO_KWARGS)

    def __rmatmul__(self, other: Any) -> Tensor:
        return _apply(matmul, (other, self), _NO_KWARGS)

    def __neg__(self) -> Tensor:
        return _apply(negative, (self,), _NO_KWARGS)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return abs(self)

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return equal(self, other)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return not_equal(self, other)

    def __lt__(self, other: Any) -> Tensor:
        return less(self, other)

    def __le__(self, other: Any) -> Tensor:
        return less_equal(self, other)

    def __gt__(self, other: Any) -> Tensor:
        return greater(self, other)

    def __ge__(self, other: Any) -> Tensor:
        return greater_equal(self, other)

    def __invert__(self) -> Tensor:
        return logical_not(self)

    def __and__(self, other: Any) -> Tensor:
        return logical_and(self, other)

    def __or__(self, other: Any) -> Tensor:
        return logical_or(self, other)

    def __getitem__(self, key: Any) -> Tensor:
        return getitem(self, key=_raw_key(self, key))

    # -- in place --------------------------------------------------------------------
    def __setitem__(self, key: Any, value: Any) -> None:
        key = _raw_key(self, key)
        value = _weak(value)
        _reject_complex("setitem", self, value)
        if _needs_record(self, value):
            self._record_inplace(index_update, (self, value), {"key": key})
            return
        raw = value.data if isinstance(value, Tensor) else value
        if isinstance(value, Tensor) and value._backend is not self._backend:
            from ._backend import check_same

            check_same("setitem", self._backend, value._backend)
        elif not (isinstance(value, bool | int | float | complex | list | tuple)
                  or isinstance(value, self._backend.array_types)):
            index_update(self, value, key=key)  # raises for an array of another backend
        data = self.data
        if not hasattr(data, "__setitem__"):  # a NumPy scalar from a 0-d result
            data = self._backend.copy(data)
        try:
            data[key] = raw
        except (IndexError, TypeError, ValueError):
            # keys the standard leaves out (implicit trailing axes) go through the backend's
            # fallback; a key that is wrong everywhere raises a gradx error naming the shapes
            data = index_update(data, raw, key=key)
        self.data = data
        bump(self._version)

    def _inplace(self, op: Any, other: Any) -> Tensor:
        """``self op= other``: written into this tensor's memory when nothing records (every
        alias sees it; the shared version counter is bumped), else recorded out of place and
        rebound (see :meth:`_record_inplace`)."""
        other = _weak(other)
        _reject_complex(op.name, self, other)
        if _needs_record(self, other):
            self._record_inplace(op, (self, other), _NO_KWARGS)
            return self
        raw = other.data if isinstance(other, Tensor) else other
        if isinstance(other, Tensor) and other._backend is not self._backend or not (
                isinstance(other, Tensor | bool | int | float | complex)
                or isinstance(other, self._backend.array_types)):
            op(self, other)  # raises the error naming the op (other backend or wrong type)
        data = self.data
        result = op(data, raw)
        if hasattr(data, "__setitem__") and result.dtype == data.dtype \
                and result.shape == data.shape:
            data[...] = result
        else:
            self.data = result
        bump(self._version)
        return self

    def _record_inplace(self, op: Any, args: tuple, kwargs: dict) -> None:
        """Record ``op(*args, **kwargs)`` out of place and make this tensor its result.

        The result is a new array: the old one is not written, so every node that saved it
        (the one just recorded included: multiply, divide and pow save their inputs) still
        reads the values it saw, and this tensor takes the result's memory and
        version counter. (The rebinding once bumped the old counter, which made every
        backward through ``h *= y`` on a non-leaf raise.) Tensors that shared the old memory
        (views, ``detach()``) keep the old values, where PyTorch would update them too; an
        update that nothing records is written into the memory (:meth:`_inplace`)."""
        out = op(*args, **kwargs)
        self.data = out.data
        self._node = out._node
        self.requires_grad = out.requires_grad
        self._version = out._version

    def __iadd__(self, other: Any) -> Tensor:
        return self._inplace(add, other)

    def __isub__(self, other: Any) -> Tensor:
        return self._inplace(subtract, other)

    def __imul__(self, other: Any) -> Tensor:
        return self._inplace(multiply, other)

    def __itruediv__(self, other: Any) -> Tensor:
        return self._inplace(divide, other)

    def __ipow__(self, other: Any) -> Tensor:
        return self._inplace(pow, other)
    # no __imatmul__: ``h @= w`` falls back to ``h = h @ w`` (a new tensor), as PyTorch has no
    # in-place matmul either


_new = object.__new__
_NO_KWARGS: dict = {}
_tape.Tensor = Tensor  # the tape cannot import this module at load time (it is imported by it)


def _needs_record(t: Tensor, other: Any) -> bool:
    if not _grad_enabled.get():
        return False
    if t.requires_grad and t._node is None:
        raise GraphError(
            f"in-place update of a leaf tensor {t.shape} that requires grad: the update "
            "would be recorded against itself. Wrap it in `with gx.no_grad():` "
            "(as optimizers do) or work on a copy"
        )
    return t.requires_grad or (isinstance(other, Tensor) and other.requires_grad)


_COMPLEX: dict = {}


def is_complex(dtype: Any) -> bool:
    """Whether ``dtype`` (a dtype object of any backend, a scalar type or a name) is complex."""
    key = (type(dtype), dtype)  # the type first: dtypes of two libraries never compare
    try:
        known = _COMPLEX.get(key)
    except TypeError:  # an unhashable spec
        known = None
    if known is None:
        name = getattr(dtype, "name", None)
        known = "complex" in str(name if isinstance(name, str) else dtype)
        try:
            _COMPLEX[key] = known
        except TypeError:
            pass
    return known


def _reject_complex(op: str, t: Tensor, value: Any) -> None:
    """Raise for a complex scalar or array written into or combined in place with ``t``."""
    cls = type(value)
    if cls is float or cls is int:  # the common cases first: an in-place update is per step
        return
    dtype = value.data.dtype if cls is Tensor else getattr(value, "dtype", None)
    if cls is complex or dtype is not None and dtype is not t.data.dtype and is_complex(dtype):
        raise DTypeError(
            f"{op}: {describe(t)} with a complex {type(value).__name__}"
            f"{'' if dtype is None else f' of dtype {dtype}'}: complex numbers are not "
            "supported yet")


def _raw_key(t: Tensor, key: Any) -> Any:
    """An index key with Tensors replaced by raw arrays of the same backend."""
    if isinstance(key, tuple):
        return tuple(_raw_key(t, k) for k in key)
    if isinstance(key, Tensor):
        if key._backend is not t._backend:
            from ._backend import check_same

            check_same("getitem", t._backend, key._backend)
        return key.data
    if isinstance(key, list):
        try:
            return t._backend.asarray(key)
        except Exception as exc:  # e.g. a list of strings: name the op and the key
            from ._primitive import _op_error

            raise _op_error("getitem", (t, key), {}, exc) from exc
    return key


from . import _methods  # noqa: E402, F401  (installs x.sum(), x.exp(), ... on Tensor)
from ._primitive import _apply, _weak  # noqa: E402
from .ops.comparison import (  # noqa: E402
    equal,
    greater,
    greater_equal,
    less,
    less_equal,
    logical_and,
    logical_not,
    logical_or,
    not_equal,
)
from .ops.creation import zeros_like  # noqa: E402
from .ops.elementwise import (  # noqa: E402
    abs,
    add,
    astype,
    divide,
    multiply,
    negative,
    pow,
    subtract,
)
from .ops.indexing import getitem, index_update  # noqa: E402
from .ops.linalg import matmul, matrix_transpose  # noqa: E402
from .ops.shape import permute_dims, to_backend  # noqa: E402
