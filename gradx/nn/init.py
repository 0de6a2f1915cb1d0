"""Parameter initializers, in place, drawn from gradx's seeded host generator.

Draws are made on the host and copied to the tensor's backend, so ``gx.random.seed(0)``
gives bit-identical parameters on NumPy, CuPy and any Array API backend.
"""

from __future__ import annotations

import math
from typing import Any

import gradx as gx

from ..errors import ShapeError
from .functional import ArgumentError

_GAINS = {"linear": 1.0, "identity": 1.0, "sigmoid": 1.0, "conv1d": 1.0, "conv2d": 1.0,
          "conv3d": 1.0, "tanh": 5.0 / 3.0, "relu": math.sqrt(2.0), "selu": 0.75}


def _assign(tensor: Any, raw: Any) -> Any:
    """Overwrite ``tensor``'s values in place (keeping its identity) and bump its version."""
    tensor.data[...] = raw
    tensor._bump_version()
    return tensor


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The factor that keeps activations' variance stable through ``nonlinearity`` (PyTorch's)."""
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1.0 + slope * slope))
    if nonlinearity in _GAINS:
        return _GAINS[nonlinearity]
    raise ArgumentError(
        f"calculate_gain: unknown nonlinearity {nonlinearity!r}; "
        f"use one of {sorted([*_GAINS, 'leaky_relu'])}"
    )


def calculate_fan_in_and_fan_out(tensor: Any) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight laid out (out, in, *receptive field), as in PyTorch."""
    shape = tuple(tensor.shape)
    if len(shape) < 2:
        raise ShapeError(
            f"fan in and fan out need a tensor with at least 2 dimensions, got shape {shape}; "
            "initialize 1-D parameters (biases) with uniform_ or zeros_"
        )
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _fan(tensor: Any, mode: str) -> int:
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    raise ArgumentError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")


def uniform_(tensor: Any, a: float = 0.0, b: float = 1.0) -> Any:
    """Fill with U(a, b) draws."""
    draw = gx.random.uniform(tuple(tensor.shape), low=a, high=b, dtype=tensor.dtype,
                             backend=tensor.backend)
    return _assign(tensor, draw.data)


def normal_(tensor: Any, mean: float = 0.0, std: float = 1.0) -> Any:
    """Fill with N(mean, std**2) draws."""
    draw = gx.random.normal(tuple(tensor.shape), mean=mean, std=std, dtype=tensor.dtype,
                            backend=tensor.backend)
    return _assign(tensor, draw.data)


def constant_(tensor: Any, value: float) -> Any:
    """Fill with ``value``."""
    full = gx.full(tuple(tensor.shape), value, dtype=tensor.dtype, backend=tensor.backend)
    return _assign(tensor, full.data)


def zeros_(tensor: Any) -> Any:
    return constant_(tensor, 0.0)


def ones_(tensor: Any) -> Any:
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor: Any, gain: float = 1.0) -> Any:
    """Glorot: U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor: Any, gain: float = 1.0) -> Any:
    """Glorot: N(0, std**2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def kaiming_uniform_(tensor: Any, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu") -> Any:
    """He: U(-b, b) with b = gain * sqrt(3 / fan); ``a`` is the leaky_relu slope."""
    gain = calculate_gain(nonlinearity, a)
    bound = gain * math.sqrt(3.0 / _fan(tensor, mode))
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor: Any, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu") -> Any:
    """He: N(0, std**2) with std = gain / sqrt(fan)."""
    gain = calculate_gain(nonlinearity, a)
    return normal_(tensor, 0.0, gain / math.sqrt(_fan(tensor, mode)))


__all__ = [
    "calculate_gain", "calculate_fan_in_and_fan_out", "uniform_", "normal_", "constant_",
    "zeros_", "ones_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
    "kaiming_normal_",
]
