"""Activations, normalization, attention and losses as functions of tensors.

``relu``, ``softmax`` and ``log_softmax`` are primitives because composing them is unstable
at large magnitudes (or wasteful); their rules sit right under them. ``gelu``, ``silu``,
``softplus``, ``elu`` and ``leaky_relu`` are primitives in gradx/ops/activations.py;
``layer_norm``, ``batch_norm`` and ``group_norm`` in gradx/nn/normalization.py;
``scaled_dot_product_attention`` is composed in gradx/nn/attention.py. The rest are
compositions of gradx ops and need no rules.
"""

from __future__ import annotations

import math
from typing import Any

import gradx as gx

from .._primitive import defjvp, defvjp, primitive
from .._tape import is_anomaly_enabled
from ..errors import ArgumentError, DTypeError, ShapeError
from ..ops.activations import _softplus as _softplus_primitive
from ..ops.activations import elu, erf, gelu, leaky_relu, silu, softplus  # noqa: F401
from ..ops.conv import conv1d, conv2d, conv_transpose1d, conv_transpose2d  # noqa: F401
from ..ops.masking import masked_fill, one_hot  # noqa: F401  (re-exported)
from ..ops.pool import (  # noqa: F401  (re-exported)
    adaptive_avg_pool2d,
    avg_pool1d,
    avg_pool2d,
    max_pool1d,
    max_pool2d,
    pad,
)
from .functional_call import functional_call  # noqa: F401  (re-exported, as in torch.func)
from .normalization import batch_norm, group_norm, layer_norm  # noqa: F401

_REDUCTIONS = ("mean", "sum", "none")


# -- primitives ------------------------------------------------------------------------

@primitive(saves_args=False)
def relu(x: Any, /) -> Any:
    """max(x, 0); the gradient at 0 is taken as 0, as in PyTorch."""
    xp = gx.array_namespace(x)
    return xp.maximum(x, xp.zeros_like(x))


# sign(ans) is 1 where x > 0 and 0 elsewhere, so the rule needs only the output.
defvjp(relu, lambda g, ans, x: g * gx.sign(ans))
defjvp(relu, lambda t, ans, x: t * gx.sign(ans))


def _softplus(x: Any, /) -> Any:
    """log(1 + e^x) for any x, with no threshold (the losses' exact form)."""
    return _softplus_primitive(x, beta=1.0, threshold=math.inf)


# softmax and log_softmax are core primitives (logsumexp's rules use softmax)
softmax = gx.softmax
log_softmax = gx.log_softmax


# -- activations -----------------------------------------------------------------------

def sigmoid(x: Any, /) -> Any:
    """1 / (1 + exp(-x)); the core's primitive."""
    return gx.sigmoid(x)


def tanh(x: Any, /) -> Any:
    """The core's tanh, here so activations can be picked from one namespace."""
    return gx.tanh(x)


def dropout(x: Any, /, p: float = 0.5, *, training: bool = True) -> Any:
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p), so the
    expected value is unchanged; the identity when not training.

    The mask comes from one key drawn from gx.random's seeded host generator
    (``gx.random.mask_key``) and is computed where ``x`` lives, so a seed gives the same
    mask on every backend and ``gx.random.set_state`` replays it."""
    if not 0.0 <= p <= 1.0:
        raise ArgumentError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    backend = x.backend
    mask = backend.dropout_mask(gx.random.mask_key(), tuple(x.shape), p, x.data.dtype)
    return x * gx.Tensor._make(mask, backend, None, False, [0])


# -- layers as functions ---------------------------------------------------------------

def linear(x: Any, weight: Any, bias: Any = None) -> Any:
    """x @ weight.T + bias with weight of shape (out_features, in_features), as in PyTorch."""
    if weight.ndim != 2 or x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ShapeError(
            f"linear: input of shape {tuple(x.shape)} does not fit weight of shape "
            f"{tuple(weight.shape)}; the input's last axis must equal weight.shape[1]"
        )
    out = _linear(x, weight)
    return out if bias is None else out + bias


@primitive(name="linear", saves_ans=False)
def _linear(x: Any, weight: Any, /) -> Any:
    """(..., in) @ (out, in).T -> (..., out). A primitive, not ``x @ weight.T``, so that the
    weight's gradient is computed in the weight's own (row-major) layout, ``g.T @ x``, instead
    of arriving as the transposed view of ``x.T @ g``: a view is copied or left read-only
    when stored as ``.grad``, and a column-ordered gradient slows every optimizer step."""
    return x @ weight.T


def _linear_vjp_weight(g: Any, ans: Any, x: Any, weight: Any) -> Any:
    if x.ndim == 1:
        return gx.expand_dims(g, axis=-1) * x
    if x.ndim > 2:  # batch axes folded into one: (N, out).T @ (N, in)
        g, x = gx.reshape(g, (-1, g.shape[-1])), gx.reshape(x, (-1, x.shape[-1]))
    return gx.matrix_transpose(g) @ x


defvjp(_linear, lambda g, ans, x, weight: g @ weight, _linear_vjp_weight)
defjvp(_linear, lambda t, ans, x, weight: t @ gx.matrix_transpose(weight),
       lambda t, ans, x, weight: x @ gx.matrix_transpose(t))


# -- losses ----------------------------------------------------------------------------

def _reduce(loss: Any, reduction: str, op: str) -> Any:
    if reduction == "mean":
        return gx.mean(loss)
    if reduction == "sum":
        return gx.sum(loss)
    if reduction == "none":
        return loss
    raise ArgumentError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _require_arrays(op: str, **named: Any) -> None:
    """A loss's inputs must be Tensors or arrays; say which one is not, and what it is."""
    for name, value in named.items():
        if not hasattr(value, "shape") or not hasattr(value, "dtype"):
            raise DTypeError(f"{op}: {name} must be a Tensor or an array, got "
                             f"{type(value).__name__}; wrap it with gx.tensor(...)")


def mse_loss(input: Any, target: Any, *, reduction: str = "mean") -> Any:
    """Mean (or sum) of squared differences."""
    _require_arrays("mse_loss", input=input, target=target)
    if tuple(input.shape) != tuple(target.shape):
        raise ShapeError(
            f"mse_loss: input {tuple(input.shape)} and target {tuple(target.shape)} differ in "
            "shape; reshape one so they match (broadcasting here is usually a bug)"
        )
    d = input - target
    return _reduce(d * d, reduction, "mse_loss")


def _as_labels(labels: Any, backend: Any) -> Any:
    if not isinstance(labels, gx.Tensor):
        labels = gx.asarray(labels, backend=backend)
    if labels.backend is not backend:
        raise gx.BackendMismatchError(
            f"cross_entropy: logits live on {backend.name!r} but labels on "
            f"{labels.backend.name!r}; move them with labels.to({backend.name!r})"
        )
    if not labels.backend.xp.isdtype(labels.data.dtype, "integral"):
        raise DTypeError(
            f"cross_entropy: labels must be integer class indices, got dtype {labels.dtype}; "
            "convert with labels.astype('int64') or pass class indices instead of one-hot rows"
        )
    return labels


def cross_entropy(logits: Any, labels: Any, *, label_smoothing: float = 0.0,
                  reduction: str = "mean") -> Any:
    """Softmax cross-entropy of (N, C) logits against N integer class labels.

    With ``label_smoothing`` e the target puts 1 - e on the label and e / C on every
    class, as in PyTorch. A label outside [0, C) raises where checking is free (host
    backends, or under ``gx.detect_anomaly()``); on a device it makes that row's loss NaN
    instead, since reading labels back would stall every training step.
    """
    _require_arrays("cross_entropy", logits=logits)
    if logits.ndim != 2:
        raise ShapeError(
            f"cross_entropy: logits must have shape (N, C), got {tuple(logits.shape)}; "
            "flatten leading axes with logits.reshape(-1, C) and labels.reshape(-1)"
        )
    labels = _as_labels(labels, logits.backend)
    n, c = logits.shape
    if tuple(labels.shape) != (n,):
        raise ShapeError(
            f"cross_entropy: labels of shape {tuple(labels.shape)} do not match logits of shape "
            f"{(n, c)}; expected labels of shape ({n},)"
        )
    if not 0.0 <= label_smoothing <= 1.0:
        raise ArgumentError(
            f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}"
        )
    backend = logits.backend
    checked = backend.host_resident or is_anomaly_enabled()
    if not checked:
        # reading the labels back would stall the device every step: out-of-range labels
        # make their rows' losses NaN instead (detect_anomaly() names them)
        valid = (labels >= 0) & (labels < c)
        labels = gx.where(valid, labels, 0)
    elif n > 0:
        lo, hi = (int(v) for v in gx.stack([gx.min(labels), gx.max(labels)]).numpy())
        if lo < 0 or hi >= c:
            raise ArgumentError(
                f"cross_entropy: labels must lie in [0, {c}) for logits of shape {(n, c)}, "
                f"found values in [{lo}, {hi}]"
            )
    lsm = log_softmax(logits, axis=1)
    loss = -lsm[gx.arange(n, backend=backend), labels]
    if not checked:
        loss = gx.where(valid, loss, float("nan"))
    if label_smoothing > 0.0:
        loss = (1.0 - label_smoothing) * loss - label_smoothing * gx.mean(lsm, axis=1)
    return _reduce(loss, reduction, "cross_entropy")


def binary_cross_entropy_with_logits(logits: Any, target: Any, *, pos_weight: Any = None,
                                     reduction: str = "mean") -> Any:
    """-[y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))] written as softplus(x) - x*y,
    which stays finite for logits of any magnitude."""
    _require_arrays("binary_cross_entropy_with_logits", logits=logits, target=target)
    if tuple(logits.shape) != tuple(target.shape):
        raise ShapeError(
            f"binary_cross_entropy_with_logits: logits {tuple(logits.shape)} and target "
            f"{tuple(target.shape)} must have the same shape"
        )
    if pos_weight is None:
        loss = _softplus(logits) - logits * target
    else:
        loss = (1.0 - target) * logits + (1.0 + (pos_weight - 1.0) * target) * _softplus(-logits)
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


__all__ = [
    "ArgumentError",
    "relu", "sigmoid", "tanh", "gelu", "softplus", "silu", "leaky_relu", "softmax",
    "log_softmax", "dropout", "linear", "layer_norm", "mse_loss", "cross_entropy",
    "binary_cross_entropy_with_logits",
    "elu", "erf", "batch_norm", "group_norm", "scaled_dot_product_attention", "one_hot",
    "masked_fill",
]

# attention is composed from the functions above (linear, dropout): imported last
from .attention import scaled_dot_product_attention  # noqa: E402, F401
