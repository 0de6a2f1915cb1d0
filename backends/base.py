"""The Backend object: a namespace plus the handful of non-standard operations gradx needs.

Defaults are written against ``self.xp`` and the Array API standard; a concrete backend
overrides only what it can do faster or what the standard lacks.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


class Backend:
    """One array library as seen by gradx."""

    name: str = "abstract"
    device: str = "cpu"
    # Arrays live in host memory, so reading a value on the host (a check, an error
    # message) costs nothing; on a device it waits for every queued kernel.
    host_resident: bool = True

    def __init__(self, xp: Any = None, name: str | None = None) -> None:
        self.__dict__["xp"] = xp  # a plain attribute: read on every op (CuPy's is lazy)
        if name is not None:
            self.name = name
        self._float_dtypes: dict[Any, bool] = {}
        self._dtypes: dict[str, Any] = {}

    # -- identity --------------------------------------------------------------------
    xp: Any  # the Array API namespace that ops call

    @property
    def array_types(self) -> tuple[type, ...]:
        """Raw array types this backend owns (used to find an array's backend)."""
        return (type(self.xp.asarray(0.0)),)

    def is_available(self) -> bool:
        return self.unavailable_reason() is None

    def unavailable_reason(self) -> str | None:
        """None when usable here, else a sentence saying what is missing and how to fix it."""
        return None

    def __repr__(self) -> str:
        return f"Backend(name={self.name!r}, device={self.device!r})"

    # -- dtypes ----------------------------------------------------------------------
    def dtype(self, spec: Any) -> Any:
        """A dtype object of this namespace from a name (``"float32"``) or any dtype."""
        if spec is None:
            return None
        key = spec if isinstance(spec, str) else getattr(spec, "name", None) or str(spec)
        key = str(key).rsplit(".", 1)[-1]
        found = self._dtypes.get(key)
        if found is None:
            if key in ("bool", "bool_"):
                key = "bool"
            found = getattr(self.xp, key, None)
            if found is None:
                from gradx.errors import DTypeError

                raise DTypeError(f"dtype {spec!r} is not available on backend {self.name!r}")
            self._dtypes[key] = found
        return found

    def is_float(self, dtype: Any) -> bool:
        """Whether gradients can flow through values of this dtype."""
        known = self._float_dtypes.get(dtype)
        if known is None:
            known = bool(self.xp.isdtype(dtype, ("real floating", "complex floating")))
            self._float_dtypes[dtype] = known
        return known

    # -- creation and transfer -------------------------------------------------------
    def asarray(self, obj: Any, dtype: Any = None, copy: bool | None = None) -> Any:
        """Array on this backend from Python data, a host array or one of ours."""
        if dtype is not None:
            dtype = self.dtype(dtype)
        if isinstance(obj, np.ndarray | np.generic) and not isinstance(obj, self.array_types):
            return self.from_numpy(np.asarray(obj, dtype=None), dtype=dtype)
        return self.xp.asarray(obj, dtype=dtype, copy=copy)

    def from_numpy(self, a: np.ndarray, dtype: Any = None) -> Any:
        out = self.xp.asarray(a)
        if dtype is not None and out.dtype != dtype:
            out = self.xp.astype(out, dtype)
        return out

    def to_numpy(self, x: Any) -> np.ndarray:
        """A NumPy copy (host) of one of our arrays."""
        try:
            return np.asarray(np.from_dlpack(x)).copy()
        except (TypeError, BufferError, AttributeError, RuntimeError):
            return np.array(x)

    def copy(self, x: Any) -> Any:
        return self.xp.asarray(x, copy=True)

    def dlpack(self, x: Any, **kwargs: Any) -> Any:
        """``Tensor.__dlpack__``: the array's own capsule for whatever the consumer asked."""
        return x.__dlpack__(**kwargs)

    def owned(self, x: Any) -> Any:
        """``x`` if it can be stored as a leaf's gradient, else a copy (broadcast views are
        read-only or alias one element many times). The tape has already made sure that
        nothing else holds ``x``."""
        return x

    def writable(self, x: Any) -> bool:
        """Whether ``x`` owns its memory and ``x += y`` updates it in place. False unless a
        backend knows: the standard cannot tell a view, and some arrays are immutable."""
        return False

    # -- what the standard lacks -----------------------------------------------------
    def scatter_add(self, target: Any, key: Any, values: Any) -> Any:
        """``target`` with ``values`` added at ``key``; repeated indices accumulate."""
        host = self.to_numpy(target)
        np.add.at(host, _host_key(self, key), self.to_numpy(values))
        return self.from_numpy(host, dtype=target.dtype)

    def index_update(self, x: Any, key: Any, values: Any) -> Any:
        """A copy of ``x`` with ``x[key] = values``."""
        out = self.copy(x)
        try:
            out[key] = values
            return out
        except (TypeError, IndexError, ValueError):
            host = self.to_numpy(x)
            host[_host_key(self, key)] = values if _is_scalar(values) else self.to_numpy(values)
            return self.from_numpy(host, dtype=x.dtype)

    def getitem(self, x: Any, key: Any) -> Any:
        """``x[key]``; a backend may widen what keys it accepts."""
        return x[key]

    def einsum(self, subscripts: str, *operands: Any) -> Any:
        return self.xp.einsum(subscripts, *operands)

    def sliding_windows(self, x: Any, window_shape: tuple[int, ...],
                        axes: tuple[int, ...]) -> Any:
        """Every window of ``window_shape`` along ``axes`` (stride 1), as NumPy's
        ``sliding_window_view``: each axis ``a`` shrinks to ``x.shape[a] - k + 1`` and the
        window axes are appended last. This default gathers with ``take`` (a copy, any Array
        API namespace); backends with strided views return a read-only view instead."""
        xp = self.xp
        out = x
        for k, ax in zip(window_shape, axes, strict=True):
            n = out.shape[ax] - k + 1
            idx = xp.reshape(xp.arange(n)[:, None] + xp.arange(k)[None, :], (-1,))
            out = xp.take(out, idx, axis=ax)
            out = xp.reshape(out, out.shape[:ax] + (n, k) + out.shape[ax + 1:])
            order = tuple(i for i in range(out.ndim) if i != ax + 1) + (ax + 1,)
            out = xp.permute_dims(out, order)
        return out

    def synchronize(self) -> None:
        """Wait for queued device work; a no-op on synchronous CPU backends."""

    def fused_kernel(self, name: str) -> Any:
        """A compiled elementwise update (``backends/cupy_kernels.py`` names them) that
        returns True when it ran, or None where this backend has none: callers then run
        their array code, which is the reference."""
        return None

    def dropout_mask(self, key: int, shape: tuple[int, ...], p: float, dtype: Any) -> Any:
        """``1 / (1 - p)`` where ``splitmix_uniform(key)`` >= p, else 0, of ``shape`` and
        ``dtype``: the mask is a pure function of the 64-bit ``key`` (drawn from gx.random's
        host generator), so every backend drops the same units. Computed on the host and
        copied here; a device backend computes it where its arrays live."""
        host = _mask_from_uniform(np, splitmix_uniform(np, key, math.prod(shape)), p, np.float64)
        return self.from_numpy(host.reshape(shape), dtype=self.dtype(dtype))  # one rounding


# SplitMix64 (Steele, Lea & Flood 2014): element i of a mask is the (i+1)-th output of the
# generator started at ``key``. Its outputs pass BigCrush; being a counter-based function of
# (key, i), any backend computes any element alone, with no generator state to keep.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def splitmix_uniform(xp: Any, key: int, n: int) -> Any:
    """(n,) float64 uniforms in [0, 1) on ``xp`` (NumPy, CuPy): the top 53 bits of the
    SplitMix64 outputs from ``key``. Bit-identical on every namespace (integer arithmetic
    modulo 2**64, then one exact conversion)."""
    z = xp.arange(1, n + 1, dtype=xp.uint64) * _GOLDEN + np.uint64(key)
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(xp.float64) * (1.0 / 9007199254740992.0)


def _mask_from_uniform(xp: Any, u: Any, p: float, dtype: Any) -> Any:
    """1 / (1 - p) where ``u >= p``, else 0, rounded once to ``dtype`` (as the kernel's
    ``(T)scale``): 1 times the rounded scale is exact."""
    return (u >= p).astype(dtype) * np.dtype(dtype).type(1.0 / (1.0 - p))


def _is_scalar(v: Any) -> bool:
    return isinstance(v, bool | int | float | complex)


def _host_key(backend: Backend, key: Any) -> Any:
    """The same index key with every array in it moved to NumPy."""
    if isinstance(key, tuple):
        return tuple(_host_key(backend, k) for k in key)
    if key is None or isinstance(key, slice | int) or key is Ellipsis:
        return key
    return backend.to_numpy(key)


def new_host_generator(seed: int | None) -> np.random.Generator:
    """The seeded host generator behind gradx.random: draws are identical on every backend."""
    return np.random.default_rng(seed)
