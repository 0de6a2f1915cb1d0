"""Neural-network building blocks: Module, layers, functional activations and losses,
and initializers that draw from gradx's seeded host generator."""

from . import functional, init
from .functional import ArgumentError
from .layers import (
    GELU,
    Dropout,
    Embedding,
    Flatten,
    LayerNorm,
    LeakyReLU,
    Linear,
    ModuleList,
    ReLU,
    Sequential,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from .module import IncompatibleKeys, Module, Parameter, StateDictError

__all__ = [
    "functional", "init", "Module", "Parameter", "StateDictError", "IncompatibleKeys",
    "ArgumentError", "Sequential", "ModuleList", "Linear", "Embedding", "LayerNorm", "Dropout",
    "Flatten", "ReLU", "Tanh", "Sigmoid", "SiLU", "Softplus", "GELU", "LeakyReLU", "Softmax",
]
