"""NumPy: the CPU backend. NumPy 2 follows the Array API names, so ``xp`` is numpy itself."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Backend


class NumpyBackend(Backend):
    name = "numpy"
    device = "cpu"

    def __init__(self) -> None:
        super().__init__(np)

    @property
    def array_types(self) -> tuple[type, ...]:
        return (np.ndarray, np.generic)

    def asarray(self, obj: Any, dtype: Any = None, copy: bool | None = None) -> Any:
        return np.asarray(obj, dtype=dtype) if not copy else np.array(obj, dtype=dtype)

    def from_numpy(self, a: np.ndarray, dtype: Any = None) -> Any:
        return np.asarray(a, dtype=dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.array(x)

    def copy(self, x: Any) -> Any:
        return np.array(x)

    def owned(self, x: Any) -> Any:
        if type(x) is np.ndarray and x.base is None:  # fresh results own their memory
            return x
        return np.array(x)

    def scatter_add(self, target: Any, key: Any, values: Any) -> Any:
        out = np.array(target)
        if _is_basic(key):
            out[key] += values  # basic indexing never repeats an element
        else:
            np.add.at(out, key, values)
        return out

    def index_update(self, x: Any, key: Any, values: Any) -> Any:
        out = np.array(x)
        out[key] = values
        return out


def _is_basic(key: Any) -> bool:
    items = key if isinstance(key, tuple) else (key,)
    return all(k is None or k is Ellipsis or isinstance(k, slice | int) for k in items)
