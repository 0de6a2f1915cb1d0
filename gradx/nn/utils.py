"""Training utilities with PyTorch's names and semantics: gradient clipping by total norm or
by value, and flattening parameters into one vector and back."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import gradx as gx

from ..errors import ArgumentError, GradxError

__all__ = ["clip_grad_norm_", "clip_grad_value_", "parameters_to_vector",
           "vector_to_parameters"]


def _params(parameters: Any) -> list[Any]:
    if isinstance(parameters, gx.Tensor):
        return [parameters]
    return list(parameters)


def _scale_grad(p: Any, factor: Any) -> None:
    """Multiply ``p.grad`` by ``factor`` (a 0-d Tensor or a number), in place where the
    gradient owns a writable buffer that records nothing."""
    g = p.grad
    if not g.requires_grad and g._backend.writable(g.data):
        g[...] = g * factor
    else:
        p.grad = g * factor


def clip_grad_norm_(parameters: Iterable[Any] | Any, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> Any:
    """Scale the gradients of ``parameters`` in place so that their total ``norm_type``-norm
    (the norm of all gradients seen as one vector) is at most ``max_norm``; returns the total
    norm before clipping as a 0-d Tensor. Parameters without a gradient are skipped. As in
    PyTorch, the scale is ``min(1, max_norm / (total + 1e-6))``."""
    params = [p for p in _params(parameters) if p.grad is not None]
    norm_type = float(norm_type)
    if not params:
        return gx.tensor(0.0)
    with gx.no_grad():
        grads = [p.grad.detach() for p in params]
        if norm_type == math.inf:
            norms = [gx.max(gx.abs(g)) if g.size else gx.zeros((), dtype=g.dtype,
                                                               backend=g.backend)
                     for g in grads]
            total = gx.max(gx.stack([n.astype(norms[0].dtype) for n in norms]))
        else:
            norms = [gx.linalg.vector_norm(g, ord=norm_type) for g in grads]
            total = gx.linalg.vector_norm(gx.stack([n.astype(norms[0].dtype) for n in norms]),
                                          ord=norm_type)
        if error_if_nonfinite and not bool(gx.isfinite(total).item()):
            raise GradxError(f"clip_grad_norm_: the total norm of order {norm_type} of the "
                             f"gradients of {len(params)} parameters is {total.item()}; pass "
                             "error_if_nonfinite=False to clip anyway (the gradients become NaN)")
        coef = gx.minimum(float(max_norm) / (total + 1e-6), 1.0)
        for p in params:
            _scale_grad(p, coef.astype(p.grad.dtype))
    return total


def clip_grad_value_(parameters: Iterable[Any] | Any, clip_value: float) -> None:
    """Clamp every gradient of ``parameters`` to [-clip_value, clip_value], in place."""
    clip_value = float(clip_value)
    if clip_value < 0:
        raise ArgumentError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    with gx.no_grad():
        for p in _params(parameters):
            g = p.grad
            if g is None:
                continue
            clipped = gx.clip(g.detach(), -clip_value, clip_value)
            if not g.requires_grad and g._backend.writable(g.data):
                g[...] = clipped
            else:
                p.grad = clipped


def parameters_to_vector(parameters: Iterable[Any]) -> Any:
    """All parameters flattened and joined into one vector (differentiable)."""
    params = _params(parameters)
    if not params:
        raise ArgumentError("parameters_to_vector: got no parameters")
    return gx.concat([gx.reshape(p, (-1,)) for p in params])


def vector_to_parameters(vec: Any, parameters: Iterable[Any]) -> None:
    """Copy consecutive pieces of the vector ``vec`` into ``parameters``' values, in place."""
    params = _params(parameters)
    total = sum(p.size for p in params)
    if vec.ndim != 1 or vec.shape[0] != total:
        raise ArgumentError(f"vector_to_parameters: expected a vector of {total} elements for "
                            f"parameters of shapes {[tuple(p.shape) for p in params]}, got "
                            f"shape {tuple(vec.shape)}")
    with gx.no_grad():
        start = 0
        for p in params:
            piece = gx.reshape(vec[start:start + p.size], tuple(p.shape))
            p.data[...] = piece.astype(p.dtype).data
            p._bump_version()
            start += p.size
