"""Random numbers from one seeded host generator, copied to the target backend, so one
seed gives the same numbers on every backend."""

from __future__ import annotations

import copy
from typing import Any

from gradx.backends.base import new_host_generator

from ._backend import get_backend, resolve
from .errors import ArgumentError
from .ops.creation import get_default_dtype

_state = [new_host_generator(None)]


def seed(s: int | None) -> None:
    """Reseed the host generator that initializers and random draws use."""
    _state[0] = new_host_generator(s)


def host_generator() -> Any:
    """The seeded host generator itself (a NumPy ``Generator``)."""
    return _state[0]


def get_state() -> dict[str, Any]:
    """A copy of the host generator's state (a plain dict), for ``set_state``.

    ``gx.checkpoint`` saves it before a block's forward pass and restores it for the
    recomputation, so dropout draws the same mask both times.

    >>> s = gx.random.get_state(); a = gx.random.rand(3)
    >>> gx.random.set_state(s); b = gx.random.rand(3)   # a == b
    """
    return copy.deepcopy(_state[0].bit_generator.state)


def set_state(state: dict[str, Any]) -> None:
    """Put the host generator back in ``state`` (from ``get_state``): the draws that
    followed ``get_state`` come again. The generator object itself is kept, so a reference
    from ``host_generator()`` follows too."""
    bits = _state[0].bit_generator
    if not isinstance(state, dict) or state.get("bit_generator") != type(bits).__name__:
        raise ArgumentError(
            f"gx.random.set_state: expected a state from gx.random.get_state() for a "
            f"{type(bits).__name__} generator, got "
            + (f"a state for {state.get('bit_generator')!r}" if isinstance(state, dict)
               else type(state).__name__))
    try:
        bits.state = copy.deepcopy(state)
    except (TypeError, ValueError, KeyError) as exc:
        raise ArgumentError(f"gx.random.set_state: the state does not fit the "
                            f"{type(bits).__name__} generator ({type(exc).__name__}: {exc}); "
                            "pass a state from gx.random.get_state()") from exc


def _place(host: Any, dtype: Any, backend: Any, requires_grad: bool) -> Any:
    from ._tensor import Tensor

    b = get_backend() if backend is None else resolve(backend)
    raw = b.from_numpy(host, dtype=b.dtype(dtype))
    return Tensor._make(raw, b, None, False, [0]).requires_grad_(requires_grad)


def _shape(shape: Any) -> tuple[int, ...]:
    return (shape,) if isinstance(shape, int) else tuple(shape)


def normal(shape: Any, mean: float = 0.0, std: float = 1.0, *, dtype: Any = None,
           backend: Any = None, requires_grad: bool = False) -> Any:
    host = _state[0].normal(mean, std, _shape(shape))
    return _place(host, dtype or get_default_dtype(), backend, requires_grad)


def uniform(shape: Any, low: float = 0.0, high: float = 1.0, *, dtype: Any = None,
            backend: Any = None, requires_grad: bool = False) -> Any:
    host = _state[0].uniform(low, high, _shape(shape))
    return _place(host, dtype or get_default_dtype(), backend, requires_grad)


def randint(low: int, high: int, shape: Any, *, dtype: Any = "int64",
            backend: Any = None) -> Any:
    host = _state[0].integers(low, high, _shape(shape))
    return _place(host, dtype, backend, False)


def bernoulli(p: float, shape: Any, *, dtype: Any = None, backend: Any = None) -> Any:
    """1 with probability ``p``, else 0 (dropout masks)."""
    host = (_state[0].random(_shape(shape)) < p).astype("float64")
    return _place(host, dtype or get_default_dtype(), backend, False)


def permutation(n: int) -> Any:
    """A host (NumPy) permutation of range(n), for shuffling batches."""
    return _state[0].permutation(n)


def randn(*shape: int, dtype: Any = None, backend: Any = None) -> Any:
    return normal(shape, dtype=dtype, backend=backend)


def rand(*shape: int, dtype: Any = None, backend: Any = None) -> Any:
    return uniform(shape, dtype=dtype, backend=backend)


def mask_key() -> int:
    """One 64-bit key from the host generator, from which a backend computes a whole dropout
    mask where its arrays live (``Backend.dropout_mask``: SplitMix64 counters, no device
    generator state). So there is one stream: ``seed`` fixes the keys, ``get_state`` and
    ``set_state`` replay them (a checkpointed block recomputes the same mask), every backend
    turns a key into the same mask, and a mask of any size advances the host generator by
    one draw, with no host-to-device copy on a device backend."""
    return int(_state[0].integers(0, 2**64, dtype="uint64"))
