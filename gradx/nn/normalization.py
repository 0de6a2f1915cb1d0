"""Normalization: ``layer_norm``, ``batch_norm`` and ``group_norm`` as fused primitives, and
the ``BatchNorm1d``, ``BatchNorm2d`` and ``GroupNorm`` layers (PyTorch's names, arguments,
parameter and buffer names, so a torch ``state_dict`` loads by name).

The three functions share one body and one set of rules: normalize ``x`` over some axes (of
``x`` itself, or of a reshaped view of it: group norm's (N, G, C/G * spatial)), then scale
and shift by per-feature ``weight`` and ``bias``. Each is one recorded node. The mean and
the reciprocal standard deviation are computed before the primitive runs (no node) and
passed to it as constant inputs, so the first-order rules reuse them; under
``create_graph=True`` the rules recompute them from ``x`` with gradx functions, so second
derivatives see their dependence on ``x``.

float16 input is normalized in float32 and rounded once at the end, after the affine step
(as PyTorch); a float32 weight or bias gives a float32 result.
"""

from __future__ import annotations

import math
from typing import Any

import gradx as gx

from .._backend import ns
from .._primitive import defjvp, defvjp, primitive
from .._tensor import Tensor
from ..errors import ArgumentError, ShapeError, describe
from ..ops.activations import require_float
from . import init
from .module import Module


def _raw(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


def _is_half_raw(xp: Any, a: Any) -> bool:
    half = getattr(xp, "float16", None)
    return half is not None and a is not None and a.dtype == half


def _wide_raw(xp: Any, a: Any) -> Any:
    return xp.astype(a, xp.float32) if _is_half_raw(xp, a) else a


# -- the shared primitive -----------------------------------------------------------------

def _stats(x: Any, view: tuple | None, axes: tuple, eps: float) -> tuple[Any, Any, Any]:
    """Mean, biased variance and 1/sqrt(var + eps) of raw ``x`` (viewed as ``view``) over
    ``axes``, kept as size-1 axes; float32 for float16 input. Two passes, so a large mean
    does not cancel the variance."""
    xp = ns(x)
    w = _wide_raw(xp, x)
    if view is not None:
        w = xp.reshape(w, view)
    mean = xp.mean(w, axis=axes, keepdims=True)
    c = w - mean
    var = xp.mean(c * c, axis=axes, keepdims=True)
    return mean, var, 1.0 / xp.sqrt(var + eps)


def _constants(x: Any, *arrays: Any) -> tuple:
    """Raw statistics as constant Tensors of ``x``'s backend (when ``x`` is a Tensor): a
    backend's reductions may return another array type than its inputs (NumPy's of an
    ndarray subclass are plain ndarrays), which dispatch would take for another backend."""
    if not isinstance(x, Tensor):
        return arrays
    make, backend = Tensor._make, x._backend
    return tuple(make(a, backend, None, False, [0]) for a in arrays)


def _norm(x, weight, bias, mean, rstd, /, *, view, axes, wshape, eps):
    """(x - mean) * rstd over ``axes`` of ``x`` viewed as ``view``, times ``weight`` plus
    ``bias`` (each reshaped to ``wshape``, or broadcast as they are when it is None)."""
    xp = ns(x)
    w = _wide_raw(xp, x)
    if view is not None:
        out = xp.reshape((xp.reshape(w, view) - mean) * rstd, x.shape)
    else:
        out = (w - mean) * rstd
    if weight is not None:
        out = out * _param_raw(xp, weight, wshape)
    if bias is not None:
        out = out + _param_raw(xp, bias, wshape)
    if _is_half_raw(xp, x) and all(p is None or _is_half_raw(xp, p) for p in (weight, bias)):
        out = xp.astype(out, x.dtype)  # rounded once, after the affine step
    return out


def _param_raw(xp: Any, p: Any, wshape: tuple | None) -> Any:
    p = _wide_raw(xp, p)
    return p if wshape is None else xp.reshape(p, wshape)


def _wide(a: Any) -> Any:
    """float16 values (Tensor or raw) as float32, where the rules compute."""
    xp = ns(_raw(a))
    return gx.astype(a, xp.float32) if _is_half_raw(xp, _raw(a)) else a


def _param(p: Any, wshape: tuple | None) -> Any:
    p = _wide(p)
    return p if wshape is None else gx.reshape(p, wshape)


def _xhat(x: Any, mean: Any, rstd: Any, view: tuple | None, axes: tuple,
          eps: float) -> tuple[Any, Any]:
    """The normalized input in the statistics' view, and rstd. Recorded Tensors (a second
    derivative is being built) recompute the statistics from ``x`` with gradx functions; raw
    arrays (first order) use the ones the forward pass computed."""
    xv = _wide(x)
    if view is not None:
        xv = gx.reshape(xv, view)
    if isinstance(x, Tensor):
        mean = gx.mean(xv, axis=axes, keepdims=True)
        c = xv - mean
        rstd = 1.0 / gx.sqrt(gx.mean(c * c, axis=axes, keepdims=True) + eps)
        return c * rstd, rstd
    return (xv - mean) * rstd, rstd


def _project(v: Any, xhat: Any, rstd: Any, axes: tuple) -> Any:
    """rstd * (v - mean(v) - xhat * mean(v * xhat)): the derivative of the normalization
    applied to ``v`` (symmetric, so the VJP and the JVP alike)."""
    return rstd * (v - gx.mean(v, axis=axes, keepdims=True)
                   - xhat * gx.mean(v * xhat, axis=axes, keepdims=True))


def _to_stats_view(a: Any, view: tuple | None) -> Any:
    return a if view is None else gx.reshape(a, view)


def _from_stats_view(a: Any, shape: tuple, view: tuple | None) -> Any:
    return a if view is None else gx.reshape(a, shape)


def _reduce_to(a: Any, pshape: tuple, wshape: tuple | None) -> Any:
    """Sum ``a`` (x's shape) over the axes a parameter of shape ``pshape`` (applied as
    ``wshape``) was broadcast along."""
    target = pshape if wshape is None else wshape
    lead = a.ndim - len(target)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(target)
                                      if s == 1 and a.shape[lead + i] != 1)
    if axes:
        a = gx.sum(a, axis=axes)
    return gx.reshape(a, pshape)


def _vjp_x(g, ans, x, weight, bias, mean, rstd, *, view, axes, wshape, eps):
    xhat, rstd = _xhat(x, mean, rstd, view, axes, eps)
    g = _wide(g)
    if weight is not None:
        g = g * _param(weight, wshape)
    return _from_stats_view(_project(_to_stats_view(g, view), xhat, rstd, axes), x.shape,
                            view)


def _vjp_weight(g, ans, x, weight, bias, mean, rstd, *, view, axes, wshape, eps):
    xhat, _ = _xhat(x, mean, rstd, view, axes, eps)
    return _reduce_to(_wide(g) * _from_stats_view(xhat, x.shape, view), weight.shape, wshape)


def _vjp_bias(g, ans, x, weight, bias, mean, rstd, *, view, axes, wshape, eps):
    return _reduce_to(_wide(g), bias.shape, wshape)


def _jvp_x(t, ans, x, weight, bias, mean, rstd, *, view, axes, wshape, eps):
    xhat, rstd = _xhat(x, mean, rstd, view, axes, eps)
    out = _from_stats_view(_project(_to_stats_view(_wide(t), view), xhat, rstd, axes),
                           x.shape, view)
    return out if weight is None else out * _param(weight, wshape)


def _jvp_weight(t, ans, x, weight, bias, mean, rstd, *, view, axes, wshape, eps):
    xhat, _ = _xhat(x, mean, rstd, view, axes, eps)
    return _from_stats_view(xhat, x.shape, view) * _param(t, wshape)


def _jvp_bias(t, ans, x, weight, bias, mean, rstd, *, view, axes, wshape, eps):
    return _param(t, wshape)  # broadcast to the output's shape by the tangent pass


def _norm_primitive(name: str) -> Any:
    prim = primitive(_norm, name=name, saves_ans=False)
    defvjp(prim, _vjp_x, _vjp_weight, _vjp_bias)
    defjvp(prim, _jvp_x, _jvp_weight, _jvp_bias)
    return prim


_layer_norm = _norm_primitive("layer_norm")
_batch_norm = _norm_primitive("batch_norm")
_group_norm = _norm_primitive("group_norm")


def _check_param(op: str, name: str, p: Any, shape: tuple) -> None:
    if p is not None and tuple(p.shape) != tuple(shape):
        raise ShapeError(f"{op}: {name} of shape {tuple(p.shape)} does not fit; expected "
                         f"shape {tuple(shape)}")


# -- functional forms ---------------------------------------------------------------------

def layer_norm(x: Any, normalized_shape: int | tuple[int, ...], weight: Any = None,
               bias: Any = None, eps: float = 1e-5) -> Any:
    """Normalize over the trailing ``normalized_shape`` axes (biased variance), then
    ``* weight + bias`` (each of shape ``normalized_shape``); one primitive."""
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    normalized_shape = tuple(normalized_shape)
    k = len(normalized_shape)
    if x.ndim < k or tuple(x.shape[x.ndim - k:]) != normalized_shape:
        raise ShapeError(
            f"layer_norm: input of shape {tuple(x.shape)} does not end with normalized_shape "
            f"{normalized_shape}"
        )
    require_float("layer_norm", x)
    _check_param("layer_norm", "weight", weight, normalized_shape)
    _check_param("layer_norm", "bias", bias, normalized_shape)
    axes = tuple(range(x.ndim - k, x.ndim))
    mean, rstd = _constants(x, *_stats(_raw(x), None, axes, eps)[::2])
    return _layer_norm(x, weight, bias, mean, rstd, view=None, axes=axes, wshape=None,
                       eps=eps)


def _channels(op: str, x: Any) -> int:
    if x.ndim < 2:
        raise ShapeError(f"{op}: expected an input of shape (N, C, *), got {tuple(x.shape)}")
    require_float(op, x)
    return x.shape[1]


def batch_norm(input: Any, running_mean: Any, running_var: Any, weight: Any = None,
               bias: Any = None, training: bool = False, momentum: float = 0.1,
               eps: float = 1e-5) -> Any:
    """Normalize each channel of ``input`` (N, C, *) over the batch and spatial axes.

    ``training``: with the batch's statistics (biased variance), and ``running_mean`` and
    ``running_var`` (when given) updated in place to ``(1 - momentum) * running +
    momentum * batch`` with the batch's unbiased variance, as PyTorch. Otherwise with the
    running statistics. ``weight`` and ``bias`` have shape (C,)."""
    c = _channels("batch_norm", input)
    for name, p in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        _check_param("batch_norm", name, p, (c,))
    wshape = (c,) + (1,) * (input.ndim - 2)
    if training:
        n = math.prod(input.shape) // c if c else 0
        if n <= 1:
            raise ShapeError(f"batch_norm: training needs more than one value per channel, got "
                             f"an input of shape {tuple(input.shape)}; use eval() for a single "
                             "sample, or a larger batch")
        axes = (0,) + tuple(range(2, input.ndim))
        mean, var, rstd = _stats(_raw(input), None, axes, eps)
        out = _batch_norm(input, weight, bias, *_constants(input, mean, rstd), view=None, axes=axes,
                          wshape=wshape, eps=eps)
        _update_running(running_mean, mean, momentum, 1.0)
        _update_running(running_var, var, momentum, n / (n - 1))
        return out
    if running_mean is None or running_var is None:
        raise ArgumentError("batch_norm: training=False normalizes with running_mean and "
                            "running_var; pass both, or training=True for batch statistics")
    x = _wide(input)
    scale = 1.0 / gx.sqrt(_wide(running_var) + eps)
    if weight is not None:
        scale = scale * _wide(weight)
    shift = -_wide(running_mean) * scale
    if bias is not None:
        shift = shift + _wide(bias)
    out = x * gx.reshape(scale, wshape) + gx.reshape(shift, wshape)
    if out.dtype != input.dtype and x is not input and all(
            p is None or p.dtype == input.dtype for p in (weight, bias)):
        out = gx.astype(out, input.dtype)
    return out


def _update_running(buf: Any, stat: Any, momentum: float, factor: float) -> None:
    """``buf = (1 - momentum) * buf + momentum * factor * stat`` in place, recording nothing."""
    if buf is None:
        return
    raw = _raw(buf)
    xp = ns(raw)
    new = xp.reshape(stat, (raw.shape[0],))
    if factor != 1.0:
        new = new * factor
    raw[...] = xp.astype(raw * (1.0 - momentum) + new * momentum, raw.dtype)
    if isinstance(buf, Tensor):
        buf._bump_version()


def group_norm(input: Any, num_groups: int, weight: Any = None, bias: Any = None,
               eps: float = 1e-5) -> Any:
    """Normalize ``input`` (N, C, *) over each group of C / num_groups channels together
    with the spatial axes, then scale and shift per channel (``weight``, ``bias``: (C,))."""
    c = _channels("group_norm", input)
    if not isinstance(num_groups, int) or num_groups <= 0 or c % num_groups:
        raise ArgumentError(f"group_norm: the {c} channels of input {describe(input)} do not "
                            f"divide into num_groups={num_groups} groups")
    _check_param("group_norm", "weight", weight, (c,))
    _check_param("group_norm", "bias", bias, (c,))
    n = input.shape[0]
    view = (n, num_groups, math.prod(input.shape[1:]) // num_groups)
    mean, rstd = _constants(input, *_stats(_raw(input), view, (2,), eps)[::2])
    return _group_norm(input, weight, bias, mean, rstd, view=view, axes=(2,),
                       wshape=(c,) + (1,) * (input.ndim - 2), eps=eps)


# -- layers -------------------------------------------------------------------------------

def _param_tensor(shape: tuple[int, ...], dtype: Any, backend: Any) -> Any:
    return gx.empty(shape, dtype=dtype, backend=backend, requires_grad=True)


class _BatchNorm(Module):
    """Shared by BatchNorm1d and BatchNorm2d: parameters ``weight`` and ``bias`` (C,);
    buffers ``running_mean``, ``running_var`` (C,) and ``num_batches_tracked`` (int64), as
    PyTorch. ``momentum=None`` averages the running statistics over all batches seen."""

    _dims: tuple[int, ...] = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, *, dtype: Any = None,
                 backend: Any = None) -> None:
        super().__init__()
        if not isinstance(num_features, int) or num_features <= 0:
            raise ArgumentError(f"{type(self).__name__}: num_features must be a positive "
                                f"integer, got {num_features!r}")
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        self.weight = self.bias = None
        if affine:
            self.weight = init.ones_(_param_tensor((num_features,), dtype, backend))
            self.bias = init.zeros_(_param_tensor((num_features,), dtype, backend))
        if track_running_stats:
            self.register_buffer("running_mean",
                                 gx.zeros((num_features,), dtype=dtype, backend=backend))
            self.register_buffer("running_var",
                                 gx.ones((num_features,), dtype=dtype, backend=backend))
            self.register_buffer("num_batches_tracked",
                                 gx.zeros((), dtype="int64", backend=backend))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            with gx.no_grad():
                self.running_mean[...] = 0.0
                self.running_var[...] = 1.0
                self.num_batches_tracked[...] = 0

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            init.zeros_(self.bias)

    def forward(self, x: Any) -> Any:
        name = type(self).__name__
        if x.ndim not in self._dims:
            dims = " or ".join(f"{d}D" for d in self._dims)
            raise ShapeError(f"{name}: expected a {dims} input, got shape {tuple(x.shape)}")
        if x.shape[1] != self.num_features:
            raise ShapeError(f"{name}({self.num_features}): input of shape {tuple(x.shape)} has "
                             f"{x.shape[1]} channels on axis 1, expected {self.num_features}")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            count = self.num_batches_tracked
            with gx.no_grad():
                count[...] = count + 1
            if self.momentum is None:  # a cumulative average: reads the count back
                factor = 1.0 / float(count.item())
        use_batch = self.training or self.running_mean is None
        keep = not self.training or self.track_running_stats
        return batch_norm(x, self.running_mean if keep else None,
                          self.running_var if keep else None, self.weight, self.bias,
                          use_batch, factor, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalization of (N, C) or (N, C, L) input, per channel C."""

    _dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalization of (N, C, H, W) input, per channel C."""

    _dims = (4,)


class GroupNorm(Module):
    """Normalize groups of ``num_channels / num_groups`` channels (with the spatial axes) of
    (N, C, *) input; per-channel ``weight`` (ones) and ``bias`` (zeros) when ``affine``."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, *, dtype: Any = None, backend: Any = None) -> None:
        super().__init__()
        if num_groups <= 0 or num_channels % num_groups:
            raise ArgumentError(f"GroupNorm: num_channels={num_channels} must be divisible by "
                                f"num_groups={num_groups}")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        self.weight = self.bias = None
        if affine:
            self.weight = init.ones_(_param_tensor((num_channels,), dtype, backend))
            self.bias = init.zeros_(_param_tensor((num_channels,), dtype, backend))

    def forward(self, x: Any) -> Any:
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ShapeError(f"GroupNorm({self.num_groups}, {self.num_channels}): expected an "
                             f"input of shape (N, {self.num_channels}, *), got "
                             f"{tuple(x.shape)}")
        return group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


__all__ = ["layer_norm", "batch_norm", "group_norm", "BatchNorm1d", "BatchNorm2d",
           "GroupNorm"]
