"""Layers: containers, Linear, Embedding, LayerNorm, Dropout and activation modules."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

import gradx as gx

from ..errors import DTypeError, ShapeError
from . import functional as F
from . import init
from .functional import ArgumentError
from .module import Module


def _param(shape: tuple[int, ...], dtype: Any, backend: Any) -> Any:
    return gx.empty(shape, dtype=dtype, backend=backend, requires_grad=True)


# -- containers ------------------------------------------------------------------------

class Sequential(Module):
    """Modules applied in order: ``Sequential(Linear(4, 8), ReLU(), Linear(8, 2))``."""

    def __init__(self, *modules: Module | OrderedDict) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def forward(self, x: Any) -> Any:
        for m in self._modules.values():
            x = m(x)
        return x

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self._modules)), module)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, idx: int | slice) -> Any:
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            return Sequential(*mods[idx])
        return mods[idx]


class ModuleList(Module):
    """A list of modules whose parameters are registered (a plain list hides them)."""

    def __init__(self, modules: Iterable[Module] = ()) -> None:
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self._modules)), module)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, idx: int) -> Module:
        return list(self._modules.values())[idx]


# -- parameterized layers --------------------------------------------------------------

class Linear(Module):
    """y = x @ weight.T + bias, weight (out_features, in_features); initialized as in
    PyTorch (kaiming-uniform with a=sqrt(5), bias U(+-1/sqrt(in_features)))."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 dtype: Any = None, backend: Any = None) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = _param((out_features, in_features), dtype, backend)
        self.bias = _param((out_features,), dtype, backend) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Any) -> Any:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Embedding(Module):
    """A lookup table: integer indices of any shape -> rows of ``weight`` (N(0, 1) init)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, *, dtype: Any = None,
                 backend: Any = None) -> None:
        super().__init__()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.weight = _param((num_embeddings, embedding_dim), dtype, backend)
        init.normal_(self.weight)

    def forward(self, indices: Any) -> Any:
        if not isinstance(indices, gx.Tensor):
            indices = gx.asarray(indices, backend=self.weight.backend)
        if not indices.backend.xp.isdtype(indices.data.dtype, "integral"):
            raise DTypeError(
                f"Embedding: indices must be integers, got dtype {indices.dtype}; "
                "convert with indices.astype('int64')"
            )
        flat = gx.reshape(indices, (-1,))
        rows = gx.take(self.weight, flat, axis=0)
        return gx.reshape(rows, (*indices.shape, self.embedding_dim))

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


class LayerNorm(Module):
    """Normalize over the trailing ``normalized_shape`` axes, then scale and shift."""

    def __init__(self, normalized_shape: int | tuple[int, ...], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True, *, dtype: Any = None,
                 backend: Any = None) -> None:
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        self.weight = self.bias = None
        if elementwise_affine:
            self.weight = init.ones_(_param(self.normalized_shape, dtype, backend))
            if bias:
                self.bias = init.zeros_(_param(self.normalized_shape, dtype, backend))

    def forward(self, x: Any) -> Any:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class Dropout(Module):
    """Zero elements with probability p while training; the identity in eval mode."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ArgumentError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x: Any) -> Any:
        return F.dropout(x, self.p, training=self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Flatten(Module):
    """Flatten all axes after the first: (N, *rest) -> (N, prod(rest))."""

    def forward(self, x: Any) -> Any:
        if x.ndim < 1:
            raise ShapeError("Flatten: expected an input with a batch axis, got a scalar")
        return gx.reshape(x, (x.shape[0], -1))


# -- activations -----------------------------------------------------------------------

class ReLU(Module):
    def forward(self, x: Any) -> Any:
        return F.relu(x)


class Tanh(Module):
    def forward(self, x: Any) -> Any:
        return gx.tanh(x)


class Sigmoid(Module):
    def forward(self, x: Any) -> Any:
        return gx.sigmoid(x)


class SiLU(Module):
    def forward(self, x: Any) -> Any:
        return F.silu(x)


class Softplus(Module):
    def __init__(self, beta: float = 1.0) -> None:
        super().__init__()
        self.beta = beta

    def forward(self, x: Any) -> Any:
        return F.softplus(x, beta=self.beta)

    def extra_repr(self) -> str:
        return f"beta={self.beta}"


class GELU(Module):
    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ArgumentError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Any) -> Any:
        return F.gelu(x, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: Any) -> Any:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Softmax(Module):
    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, x: Any) -> Any:
        return F.softmax(x, axis=self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


__all__ = [
    "Sequential", "ModuleList", "Linear", "Embedding", "LayerNorm", "Dropout", "Flatten",
    "ReLU", "Tanh", "Sigmoid", "SiLU", "Softplus", "GELU", "LeakyReLU", "Softmax",
]
