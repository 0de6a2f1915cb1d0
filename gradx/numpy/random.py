"""``gradx.numpy.random``: NumPy's legacy ``numpy.random`` functions over ``gx.random``.

Draws come from gradx's seeded host generator (``seed`` is ``gx.random.seed``), so one seed
gives the same numbers on every backend; they are not NumPy's streams for the same seed.
Floats take gradx's default float dtype.
"""

from __future__ import annotations

from typing import Any

import gradx as _gx
from gradx import random as _r


def _size(size: Any) -> tuple[int, ...]:
    if size is None:
        return ()
    return (int(size),) if isinstance(size, int) else tuple(size)


def seed(seed: int | None = None) -> None:
    """Reseed gradx's host generator."""
    _r.seed(seed)


def randn(*shape: int) -> Any:
    """Standard normal draws of shape ``shape``."""
    return _r.normal(shape)


def rand(*shape: int) -> Any:
    """Uniform draws on [0, 1) of shape ``shape``."""
    return _r.uniform(shape)


def normal(loc: float = 0.0, scale: float = 1.0, size: Any = None) -> Any:
    return _r.normal(_size(size), loc, scale)


def standard_normal(size: Any = None) -> Any:
    return _r.normal(_size(size))


def uniform(low: float = 0.0, high: float = 1.0, size: Any = None) -> Any:
    return _r.uniform(_size(size), low, high)


def random(size: Any = None) -> Any:
    return _r.uniform(_size(size))


random_sample = sample = ranf = random


def randint(low: int, high: int | None = None, size: Any = None, dtype: Any = "int64") -> Any:
    if high is None:
        low, high = 0, low
    return _r.randint(low, high, _size(size), dtype=dtype)


def permutation(x: Any) -> Any:
    """A permuted ``range(x)`` (a host array, for indexing), or a shuffled copy of ``x``
    along its first axis (differentiable: a gather)."""
    if isinstance(x, int):
        return _r.permutation(x)
    t = x if isinstance(x, _gx.Tensor) else _gx.asarray(x)
    idx = _r.permutation(t.shape[0])
    return _gx.take(t, t.backend.from_numpy(idx), axis=0)


def choice(a: Any, size: Any = None, replace: bool = True, p: Any = None) -> Any:
    """Draws from ``range(a)`` or the elements of ``a`` (host generator)."""
    gen = _r.host_generator()
    if isinstance(a, int):
        return gen.choice(a, size=size, replace=replace, p=p)
    t = a if isinstance(a, _gx.Tensor) else _gx.asarray(a)
    idx = gen.choice(t.shape[0], size=size if size is not None else (), replace=replace, p=p)
    flat = _gx.take(t, t.backend.from_numpy(idx.reshape(-1)), axis=0)
    return _gx.reshape(flat, idx.shape + t.shape[1:])


def shuffle(x: Any) -> None:
    """In-place shuffle along the first axis (a recorded in-place update for a tensor)."""
    shuffled = permutation(x)
    x[...] = shuffled


def exponential(scale: float = 1.0, size: Any = None) -> Any:
    return -scale * _gx.log1p(-_r.uniform(_size(size)))


def lognormal(mean: float = 0.0, sigma: float = 1.0, size: Any = None) -> Any:
    return _gx.exp(_r.normal(_size(size), mean, sigma))


__all__ = ["seed", "randn", "rand", "normal", "standard_normal", "uniform", "random",
           "random_sample", "sample", "ranf", "randint", "permutation", "choice", "shuffle",
           "exponential", "lognormal"]
