"""Neural-network building blocks: Module, layers, functional activations and losses,
and initializers that draw from gradx's seeded host generator."""

from . import functional, init, utils
from .attention import MultiheadAttention, TransformerEncoderLayer
from .conv import (  # noqa: F401  (convolution, pooling and padding layers)
    AdaptiveAvgPool2d,
    AvgPool1d,
    AvgPool2d,
    ConstantPad2d,
    Conv1d,
    Conv2d,
    ConvTranspose2d,
    MaxPool1d,
    MaxPool2d,
    ReflectionPad2d,
    ReplicationPad2d,
    ZeroPad2d,
)
from .functional import ArgumentError
from .functional_call import functional_call
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
from .normalization import BatchNorm1d, BatchNorm2d, GroupNorm
from .recurrent import GRU, LSTM, RNN

__all__ = [
    "functional", "init", "Module", "Parameter", "StateDictError", "IncompatibleKeys",
    "ArgumentError", "Sequential", "ModuleList", "Linear", "Embedding", "LayerNorm", "Dropout",
    "Flatten", "ReLU", "Tanh", "Sigmoid", "SiLU", "Softplus", "GELU", "LeakyReLU", "Softmax",
    "functional_call",
    "Conv1d", "Conv2d", "ConvTranspose2d", "MaxPool1d", "MaxPool2d", "AvgPool1d",
    "AvgPool2d", "AdaptiveAvgPool2d", "ZeroPad2d", "ConstantPad2d", "ReflectionPad2d",
    "ReplicationPad2d",
    "BatchNorm1d", "BatchNorm2d", "GroupNorm", "RNN", "LSTM", "GRU", "utils",
    "MultiheadAttention", "TransformerEncoderLayer",
]
