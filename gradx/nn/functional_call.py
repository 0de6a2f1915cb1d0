"""``functional_call``: call a Module with some of its parameters and buffers replaced.

The way to hand a module's parameters to a transform explicitly (``gx.grad`` over a dict
of parameters, or ``gx.checkpoint`` with the parameters as arguments), as
``torch.func.functional_call`` does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from .._tensor import Tensor
from ..checkpoint import replaying
from ..errors import ArgumentError, StateDictError


def functional_call(module: Any, params: Mapping[str, Any], *args: Any, **kwargs: Any) -> Any:
    """``module(*args, **kwargs)`` with each parameter or buffer named in ``params`` (dotted
    names, as ``named_parameters()`` gives them, to Tensors) put in place of the module's own
    for the call. The module is restored afterwards, also when the call raises. A tensor
    tied under several names is replaced under all of them. A ``gx.checkpoint`` inside the
    call recomputes with the same replacement.

    >>> params = dict(model.named_parameters())                        # doctest: +SKIP
    >>> grads = gx.grad(lambda p: loss(gx.nn.functional_call(model, p, x)))(params)
    """
    from .module import Module

    if not isinstance(module, Module):
        raise ArgumentError(f"functional_call: module must be a gx.nn.Module, got "
                            f"{type(module).__name__}")
    if not isinstance(params, Mapping):
        raise ArgumentError(f"functional_call: params must be a dict of names to Tensors, got "
                            f"{type(params).__name__}")
    params = dict(params)
    with _swapped(module, params), replaying(lambda: _swapped(module, params)):
        return module(*args, **kwargs)


def _slots(module: Any) -> dict[str, tuple[dict, str]]:
    """Every parameter and buffer slot by dotted name: ``(the dict holding it, its key)``.
    A module reachable under two names gives its slots under both."""
    found: dict[str, tuple[dict, str]] = {}
    stack: list[tuple[str, Any]] = [("", module)]
    while stack:
        prefix, mod = stack.pop()
        head = f"{prefix}." if prefix else ""
        for store in (mod._parameters, mod._buffers):
            for name in store:
                found[head + name] = (store, name)
        stack.extend((head + k, m) for k, m in reversed(mod._modules.items()) if m is not None)
    return found


@contextlib.contextmanager
def _swapped(module: Any, params: dict[str, Any]) -> Iterator[None]:
    """The module with ``params`` in place of its own tensors, restored on exit."""
    slots = _slots(module)
    unknown = [k for k in params if k not in slots]
    if unknown:
        raise StateDictError(
            f"functional_call: {type(module).__name__} has no parameter or buffer named "
            f"{unknown}; its names are {sorted(slots)}")
    by_tensor: dict[int, tuple[str, Any]] = {}  # the module's tensor -> (name, replacement)
    for name, value in params.items():
        if not isinstance(value, Tensor):
            raise ArgumentError(f"functional_call: params[{name!r}] must be a Tensor, got "
                                f"{type(value).__name__}")
        store, key = slots[name]
        own = store[key]
        if own is None:
            continue
        if id(own) in by_tensor and by_tensor[id(own)][1] is not value:
            raise ArgumentError(
                f"functional_call: {by_tensor[id(own)][0]!r} and {name!r} are one tied tensor "
                "in the module, but params gives them different values; give one of them")
        by_tensor[id(own)] = (name, value)
    undo: list[tuple[dict, str, Any]] = []
    try:
        for name, (store, key) in slots.items():
            own = store[key]
            if name in params:
                value = params[name]
            elif own is not None and id(own) in by_tensor:
                value = by_tensor[id(own)][1]  # tied to a replaced tensor
            else:
                continue
            undo.append((store, key, own))
            store[key] = value
        yield
    finally:
        for store, key, own in reversed(undo):
            store[key] = own


__all__ = ["functional_call"]
