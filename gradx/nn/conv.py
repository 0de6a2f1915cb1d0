"""Convolution, pooling and padding layers with PyTorch's names, arguments and parameter
layouts, so a torch ``state_dict`` loads by name: Conv1d/Conv2d weight
(out_channels, in_channels / groups, *kernel_size), ConvTranspose2d weight
(in_channels, out_channels / groups, *kernel_size), bias (out_channels,)."""

from __future__ import annotations

import math
from typing import Any

from ..errors import ArgumentError
from ..ops import conv as C
from ..ops import pool as P
from . import init
from .module import Module


def _param(shape: tuple[int, ...], dtype: Any, backend: Any) -> Any:
    import gradx as gx

    return gx.empty(shape, dtype=dtype, backend=backend, requires_grad=True)


class _ConvNd(Module):
    _nd = 2
    _transposed = False
    _PADDING_MODES = ("zeros", "reflect", "replicate", "circular")

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", *, output_padding: Any = 0, dtype: Any = None,
                 backend: Any = None) -> None:
        super().__init__()
        nd, name = self._nd, type(self).__name__
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ArgumentError(f"{name}: groups={groups} must divide in_channels "
                                f"({in_channels}) and out_channels ({out_channels})")
        if padding_mode not in self._PADDING_MODES or (self._transposed and
                                                       padding_mode != "zeros"):
            raise ArgumentError(f"{name}: padding_mode must be one of "
                                f"{self._PADDING_MODES[:1 if self._transposed else 4]}, "
                                f"got {padding_mode!r}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = C._tuple(name, "kernel_size", kernel_size, nd)
        self.stride = C._tuple(name, "stride", stride, nd)
        self.dilation = C._tuple(name, "dilation", dilation, nd)
        self.padding = padding if isinstance(padding, str) else \
            C._tuple(name, "padding", padding, nd, low=0)
        self.output_padding = C._tuple(name, "output_padding", output_padding, nd, low=0)
        self.padding_mode = padding_mode
        shape = ((in_channels, out_channels // groups) if self._transposed
                 else (out_channels, in_channels // groups)) + self.kernel_size
        self.weight = _param(shape, dtype, backend)
        self.bias = _param((out_channels,), dtype, backend) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: kaiming-uniform with a=sqrt(5), bias U(+-1/sqrt(fan_in))."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init.calculate_fan_in_and_fan_out(self.weight)
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def _padded(self, x: Any) -> tuple[Any, Any]:
        """(input, padding) for the convolution: a non-zero padding mode pads first."""
        if self.padding_mode == "zeros":
            return x, self.padding
        pads = C._conv_pads(type(self).__name__, self.padding, self._nd, self.kernel_size,
                            self.dilation, self.stride)
        flat = tuple(v for pair in reversed(pads) for v in pair)  # last axis first
        return P.pad(x, flat, mode=self.padding_mode), 0

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * self._nd:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._nd:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + f", bias={self.bias is not None}"


class Conv1d(_ConvNd):
    """1-D convolution over (N, C_in, L): ``Conv1d(16, 32, 3, padding=1)``."""

    _nd = 1

    def forward(self, x: Any) -> Any:
        x, padding = self._padded(x)
        return C.conv1d(x, self.weight, self.bias, self.stride, padding, self.dilation,
                        self.groups)


class Conv2d(_ConvNd):
    """2-D convolution over (N, C_in, H, W): ``Conv2d(1, 32, 3, padding="same")``."""

    def forward(self, x: Any) -> Any:
        x, padding = self._padded(x)
        return C.conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation,
                        self.groups)


class ConvTranspose2d(_ConvNd):
    """The adjoint of Conv2d, for upsampling: ``ConvTranspose2d(32, 16, 2, stride=2)``."""

    _transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, output_padding: Any = 0, groups: int = 1, bias: bool = True,
                 dilation: Any = 1, padding_mode: str = "zeros", *, dtype: Any = None,
                 backend: Any = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, output_padding=output_padding,
                         dtype=dtype, backend=backend)

    def forward(self, x: Any) -> Any:
        return C.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                  self.output_padding, self.groups, self.dilation)


class _Pool(Module):
    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 **options: Any) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self._options = options
        for k, v in options.items():
            setattr(self, k, v)

    def extra_repr(self) -> str:
        opts = "".join(f", {k}={v}" for k, v in self._options.items())
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}{opts}")


class MaxPool1d(_Pool):
    """Maximum over windows of (N, C, L)."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 dilation: Any = 1, return_indices: bool = False,
                 ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, padding, dilation=dilation,
                         return_indices=return_indices, ceil_mode=ceil_mode)

    def forward(self, x: Any) -> Any:
        return P.max_pool1d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)


class MaxPool2d(_Pool):
    """Maximum over windows of (N, C, H, W); the gradient goes to the first maximum."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 dilation: Any = 1, return_indices: bool = False,
                 ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, padding, dilation=dilation,
                         return_indices=return_indices, ceil_mode=ceil_mode)

    def forward(self, x: Any) -> Any:
        return P.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)


class AvgPool1d(_Pool):
    """Mean over windows of (N, C, L)."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode=ceil_mode,
                         count_include_pad=count_include_pad)

    def forward(self, x: Any) -> Any:
        return P.avg_pool1d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)


class AvgPool2d(_Pool):
    """Mean over windows of (N, C, H, W)."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: Any = None) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode=ceil_mode,
                         count_include_pad=count_include_pad,
                         divisor_override=divisor_override)

    def forward(self, x: Any) -> Any:
        return P.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)


class AdaptiveAvgPool2d(Module):
    """Mean over the windows that split (H, W) into ``output_size``: (N, C, *output_size)."""

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Any) -> Any:
        return P.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class _Pad2d(Module):
    _mode = "constant"

    def __init__(self, padding: Any, value: float = 0.0) -> None:
        super().__init__()
        self.padding = C._tuple(type(self).__name__, "padding", padding, 4, low=0)
        self.value = value

    def forward(self, x: Any) -> Any:
        if self._mode == "constant":
            return P.pad(x, self.padding, mode="constant", value=self.value)
        return P.pad(x, self.padding, mode=self._mode)

    def extra_repr(self) -> str:
        return f"padding={self.padding}"


class ZeroPad2d(_Pad2d):
    """Pad (left, right, top, bottom) with zeros."""

    def __init__(self, padding: Any) -> None:
        super().__init__(padding, 0.0)


class ConstantPad2d(_Pad2d):
    """Pad (left, right, top, bottom) with ``value``."""


class ReflectionPad2d(_Pad2d):
    """Pad (left, right, top, bottom) with the input mirrored at its edges (edge excluded)."""

    _mode = "reflect"

    def __init__(self, padding: Any) -> None:
        super().__init__(padding)


class ReplicationPad2d(_Pad2d):
    """Pad (left, right, top, bottom) with copies of the edge values."""

    _mode = "replicate"

    def __init__(self, padding: Any) -> None:
        super().__init__(padding)


__all__ = [
    "Conv1d", "Conv2d", "ConvTranspose2d", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d",
    "AdaptiveAvgPool2d", "ZeroPad2d", "ConstantPad2d", "ReflectionPad2d", "ReplicationPad2d",
]
