"""``checkpoint``: trade compute for memory by recomputing a block's interior in backward."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from ._primitive import defvjp_argnum, primitive
from ._tape import _grad_enabled, no_grad
from ._tensor import Tensor
from .errors import ShapeError
from .transforms import _check_fn, vjp


def checkpoint(f: Callable) -> Callable:
    """Run ``f`` without keeping its interior; recompute it during backward to save memory.

    ``f`` takes Tensors and returns one Tensor."""
    _check_fn(f, "checkpoint")

    @functools.wraps(f)
    def wrapped(*args: Any) -> Any:
        tensors = [a for a in args if isinstance(a, Tensor)]
        if not (_grad_enabled.get() and any(t.requires_grad for t in tensors)):
            return f(*args)
        slots = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        return _checkpoint_call(*tensors, fn=f, args=args, slots=tuple(slots), cache={})

    return wrapped


@primitive(name="checkpoint", saves_ans=False)
def _checkpoint_call(*tensors, fn, args, slots, cache):
    call = list(args)
    for s, t in zip(slots, tensors, strict=True):
        call[s] = Tensor(t)
    with no_grad():
        out = fn(*call)
    if not isinstance(out, Tensor):
        raise ShapeError("checkpoint: f must return a single Tensor")
    return out.data


def _checkpoint_vjp(argnum, g, ans, *tensors, fn, args, slots, cache):
    key = id(g)
    if cache.get("key") != key:
        def inner(*ts: Any) -> Any:
            call = list(args)
            for s, t in zip(slots, ts, strict=True):
                call[s] = t
            return fn(*call)

        primals = tuple(t if isinstance(t, Tensor) else Tensor(t) for t in tensors)
        _, vjp_fn = vjp(inner, *primals)
        cache["grads"] = vjp_fn(g)
        cache["key"] = key
        cache["g"] = g  # keep g alive so its id stays unique while cached
    result = cache["grads"][argnum]
    return result if isinstance(g, Tensor) else (result.data if isinstance(result, Tensor)
                                                 else result)


defvjp_argnum(_checkpoint_call, _checkpoint_vjp)

