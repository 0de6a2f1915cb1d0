"""CuPy: the CUDA backend. Imported lazily; asking for it without CuPy or without a CUDA
device raises BackendUnavailableError saying which is missing and how to install."""

from __future__ import annotations

import types
from typing import Any

import numpy as np

from .base import Backend

INSTALL_HINT = 'pip install "gradx[cuda12]" (or "gradx[cuda13]" for CUDA 13)'

# Array API names that older CuPy releases spell the NumPy 1 way.
_ALIASES = {
    "acos": "arccos", "asin": "arcsin", "atan": "arctan", "atan2": "arctan2",
    "acosh": "arccosh", "asinh": "arcsinh", "atanh": "arctanh", "pow": "power",
    "concat": "concatenate", "permute_dims": "transpose", "bitwise_invert": "invert",
}


def _namespace(cp: Any) -> Any:
    """cupy's functions under their Array API names and keywords: a thin table, no wrappers
    on the names CuPy already spells the standard way."""
    extra = {
        "astype": lambda x, dtype, /, *, copy=True: x.astype(dtype, copy=copy),
        "matrix_transpose": lambda x, /: cp.swapaxes(x, -1, -2),
        "cumulative_sum": lambda x, /, *, axis=None, dtype=None: cp.cumsum(x, axis=axis,
                                                                           dtype=dtype),
        "isdtype": np.isdtype,
    }
    # CuPy spells these keywords the NumPy 1 way (ddof, a_min/a_max) or lacks them (stable)
    override = {
        "var": lambda x, /, *, axis=None, correction=0.0, keepdims=False:
            cp.var(x, axis=axis, ddof=correction, keepdims=keepdims),
        "clip": lambda x, /, min=None, max=None: cp.clip(x, min, max),
        "sort": lambda x, /, *, axis=-1, descending=False, stable=True:
            cp.flip(cp.sort(x, axis=axis), axis=axis) if descending else cp.sort(x, axis=axis),
        "argsort": lambda x, /, *, axis=-1, descending=False, stable=True:
            cp.argsort(-x if descending else x, axis=axis),
    }
    ns = types.SimpleNamespace(**{k: getattr(cp, k) for k in dir(cp) if not k.startswith("__")})
    ns.__name__ = "cupy"
    for new, old in _ALIASES.items():
        if not hasattr(cp, new):
            setattr(ns, new, getattr(cp, old))
    for k, fn in extra.items():
        if not hasattr(cp, k):
            setattr(ns, k, fn)
    for k, fn in override.items():
        setattr(ns, k, fn)
    return ns


class CupyBackend(Backend):
    name = "cupy"
    host_resident = False

    def __init__(self) -> None:
        super().__init__(None)
        self._cp: Any = None
        self._xp: Any = None

    def unavailable_reason(self) -> str | None:
        try:
            import cupy
        except ImportError:
            return f"CuPy is not installed; install it with {INSTALL_HINT}"
        except Exception as exc:  # a broken CUDA install raises at import time
            return f"CuPy failed to import ({exc}); reinstall it with {INSTALL_HINT}"
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:
            return f"CuPy is installed but no CUDA device is usable ({exc})"
        if count < 1:
            return "CuPy is installed but this machine has no CUDA device"
        return None

    def _load(self) -> Any:
        if self._cp is None:
            import cupy

            self._cp = cupy
            self._xp = _namespace(cupy)
        return self._cp

    @property
    def xp(self) -> Any:
        self._load()
        return self._xp

    @property
    def device(self) -> str:  # type: ignore[override]
        return f"cuda:{self._load().cuda.runtime.getDevice()}"

    @property
    def array_types(self) -> tuple[type, ...]:
        return (self._load().ndarray,)

    def asarray(self, obj: Any, dtype: Any = None, copy: bool | None = None) -> Any:
        cp = self._load()
        return cp.array(obj, dtype=dtype) if copy else cp.asarray(obj, dtype=dtype)

    def from_numpy(self, a: np.ndarray, dtype: Any = None) -> Any:
        return self._load().asarray(a, dtype=dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        return self._load().asnumpy(x)

    def copy(self, x: Any) -> Any:
        return x.copy()

    def owned(self, x: Any) -> Any:
        if x.size > 1 and 0 in x.strides:
            return x.copy()
        return x

    def writable(self, x: Any) -> bool:
        return type(x) is self._load().ndarray and x.base is None  # views keep their base

    def scatter_add(self, target: Any, key: Any, values: Any) -> Any:
        import cupyx

        out = target.copy()
        cupyx.scatter_add(out, key, values)
        return out

    def index_update(self, x: Any, key: Any, values: Any) -> Any:
        out = x.copy()
        out[key] = values
        return out

    def synchronize(self) -> None:
        self._load().cuda.get_current_stream().synchronize()
