"""Any namespace that follows the Python Array API standard, e.g. ``array_api_strict``.

Needs nothing beyond the standard; scatter-add and random draws go through the host.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Backend


class ArrayAPIBackend(Backend):
    """A generic backend around one standard namespace module."""

    def __init__(self, xp: Any, name: str | None = None) -> None:
        super().__init__(xp, name or getattr(xp, "__name__", "array_api"))
        self._types = (type(xp.asarray(0.0)),)

    @property
    def array_types(self) -> tuple[type, ...]:
        return self._types

    def to_numpy(self, x: Any) -> np.ndarray:
        try:
            return np.from_dlpack(x).copy()
        except (TypeError, BufferError, AttributeError, RuntimeError):
            return np.asarray(self.xp.asarray(x).tolist() if hasattr(x, "tolist") else x)

    def from_numpy(self, a: np.ndarray, dtype: Any = None) -> Any:
        a = np.asarray(a)
        out = self.xp.asarray(a if a.flags.c_contiguous else a.copy(order="C"))
        if dtype is not None and out.dtype != dtype:
            out = self.xp.astype(out, dtype)
        return out


    def owned(self, x: Any) -> Any:
        return self.copy(x)  # the standard cannot tell a read-only view from an array

    def getitem(self, x: Any, key: Any) -> Any:
        try:
            return x[key]
        except IndexError:
            # the standard leaves out mixed slice/array keys and implicit trailing axes
            from .base import _host_key

            return self.from_numpy(np.asarray(self.to_numpy(x)[_host_key(self, key)]))

    def einsum(self, subscripts: str, *operands: Any) -> Any:
        if hasattr(self.xp, "einsum"):
            return self.xp.einsum(subscripts, *operands)
        out = np.einsum(subscripts, *[self.to_numpy(o) for o in operands])
        return self.from_numpy(np.asarray(out), dtype=operands[0].dtype)


def strict_backend() -> ArrayAPIBackend:
    """The backend for ``array_api_strict``, the reference namespace used in tests."""
    import array_api_strict

    return ArrayAPIBackend(array_api_strict, "array_api_strict")
