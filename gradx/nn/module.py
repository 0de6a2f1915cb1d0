"""Module: a container of parameters, buffers and sub-modules, found by attribute assignment.

A tensor assigned as an attribute becomes a parameter when it is a leaf that requires
grad; other state that should travel with ``state_dict()`` and ``to()`` is registered with
``register_buffer``. Sub-modules assigned as attributes are registered by name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

import gradx as gx

from ..errors import ShapeError, StateDictError


class IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


def Parameter(data: Any, requires_grad: bool = True) -> Any:  # noqa: N802 (PyTorch's name)
    """A leaf tensor that a Module registers as a parameter when assigned as an attribute."""
    t = data.detach() if isinstance(data, gx.Tensor) else gx.tensor(data)
    return t.requires_grad_(requires_grad)


def _is_param(value: Any) -> bool:
    return isinstance(value, gx.Tensor) and value.requires_grad and value.is_leaf


def _to_host(value: Any) -> np.ndarray:
    """A NumPy copy of a tensor, a raw array of any backend, or nested Python numbers."""
    if isinstance(value, gx.Tensor):
        return value.numpy()
    if isinstance(value, np.ndarray | np.generic | int | float | list | tuple):
        return np.asarray(value)
    return gx.asarray(value, backend="numpy").numpy()  # e.g. a torch tensor, on any default


class Module:
    """Base class of layers and models: subclass it, assign parameters and sub-modules in
    ``__init__`` (after ``super().__init__()``), and define ``forward``."""

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    # -- registration ------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() ran; call "
                f"super().__init__() at the top of {type(self).__name__}.__init__"
            )
        params, buffers, modules = self._parameters, self._buffers, self._modules
        if isinstance(value, Module):
            self._forget(name)
            modules[name] = value
        elif name in params:
            if value is not None and not (isinstance(value, gx.Tensor) and value.is_leaf):
                raise TypeError(
                    f"{type(self).__name__}.{name} is a parameter; assign a leaf tensor or None, "
                    f"got {type(value).__name__} (use .detach() for a computed tensor)"
                )
            params[name] = value
        elif name in buffers:
            buffers[name] = value
        elif name in modules and value is None:
            modules[name] = None
        elif _is_param(value):
            self._forget(name)
            params[name] = value
        else:
            self._forget(name)
            object.__setattr__(self, name, value)

    def _forget(self, name: str) -> None:
        for d in (self._parameters, self._buffers, self._modules):
            d.pop(name, None)
        self.__dict__.pop(name, None)

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        for key in ("_parameters", "_buffers", "_modules"):
            if key in d and name in d[key]:
                return d[key][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        for d in (self._parameters, self._buffers, self._modules):
            if name in d:
                del d[name]
                return
        object.__delattr__(self, name)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))

    def register_parameter(self, name: str, param: Any) -> None:
        """Register ``param`` (a leaf tensor or None) even if it does not require grad."""
        if param is not None and not (isinstance(param, gx.Tensor) and param.is_leaf):
            raise TypeError(f"register_parameter({name!r}): expected a leaf tensor or None")
        self._forget(name)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Any, persistent: bool = True) -> None:
        """State that is not trained but moves with ``to()`` and, if persistent, is saved."""
        if tensor is not None and not isinstance(tensor, gx.Tensor):
            raise TypeError(f"register_buffer({name!r}): expected a Tensor or None")
        self._forget(name)
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        self._forget(name)
        self._modules[name] = module

    # -- traversal ---------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every sub-module once, in registration order (pre-order)."""
        seen: set[int] = set()
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:
            name, mod = stack.pop()
            if id(mod) in seen:
                continue
            seen.add(id(mod))
            yield name, mod
            kids = [(f"{name}.{k}" if name else k, m) for k, m in mod._modules.items()
                    if m is not None]
            stack.extend(reversed(kids))

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def _named(self, attr: str, prefix: str, recurse: bool) -> Iterator[tuple[str, Any]]:
        seen: set[int] = set()
        mods = self.named_modules(prefix) if recurse else iter([(prefix, self)])
        for mname, mod in mods:
            for name, t in getattr(mod, attr).items():
                if t is None or id(t) in seen:
                    continue
                seen.add(id(t))
                yield (f"{mname}.{name}" if mname else name), t

    def named_parameters(self, prefix: str = "", recurse: bool = True
                         ) -> Iterator[tuple[str, Any]]:
        """(dotted name, parameter) pairs; a parameter shared by two modules appears once."""
        return self._named("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True) -> Iterator[Any]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Any]]:
        return self._named("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True) -> Iterator[Any]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn: Callable[[Module], None]) -> Module:
        """Call ``fn`` on every sub-module and then on this one (e.g. custom init), in
        PyTorch's order: each child's subtree in registration order, the module last (so
        initializers drawing from the seeded generator draw in the same order as there)."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # -- modes and moves ---------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout active); returns self."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Evaluation mode (dropout off); returns self."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freeze (False) or unfreeze every parameter."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients that backward accumulated into every parameter."""
        for p in self.parameters():
            p.zero_grad_(set_to_none)

    def to(self, backend: Any) -> Module:
        """Move every parameter, gradient and buffer to ``backend`` (a name, Backend or
        namespace). Moved parameters are new tensors: create optimizers after moving."""
        done: dict[int, Any] = {}  # a tied parameter stays one tensor after the move
        for mod in self.modules():
            for name, p in mod._parameters.items():
                if p is None:
                    continue
                if id(p) in done:
                    mod._parameters[name] = done[id(p)]
                    continue
                moved = p.detach().to(backend)
                if moved.backend is p.backend:
                    continue  # already there: keep the parameter itself
                moved.requires_grad_(p.requires_grad)
                if p.grad is not None:
                    moved.grad = p.grad.detach().to(backend)
                mod._parameters[name] = done[id(p)] = moved
            for name, b in mod._buffers.items():
                if b is not None:
                    moved = b.detach().to(backend)
                    if moved.backend is not b.backend:
                        mod._buffers[name] = moved
        return self

    # -- state -------------------------------------------------------------------------
    def state_dict(self, *, prefix: str = "", keep_vars: bool = False) -> dict[str, Any]:
        """Every parameter and persistent buffer by dotted name (detached unless keep_vars);
        a parameter shared by two modules appears under each name, as in PyTorch."""
        out: dict[str, Any] = {}
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:
            mname, mod = stack.pop()
            kids = [(f"{mname}.{k}" if mname else k, m) for k, m in mod._modules.items()
                    if m is not None]
            stack.extend(reversed(kids))
            head = f"{mname}." if mname else ""
            for name, p in mod._parameters.items():
                if p is not None:
                    out[head + name] = p if keep_vars else p.detach()
            for name, b in mod._buffers.items():
                if b is not None and name not in mod._non_persistent:
                    out[head + name] = b if keep_vars else b.detach()
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True
                        ) -> IncompatibleKeys:
        """Copy values into the existing parameters and buffers, in place (optimizers keep
        working); values may live on any backend and are cast to each parameter's dtype."""
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        shapes = {k: tuple(np.shape(v) if not hasattr(v, "shape") else v.shape)
                  for k, v in state_dict.items() if k in own}
        bad = [f"{k}: checkpoint {shapes[k]} vs model {tuple(own[k].shape)}"
               for k in shapes if shapes[k] != tuple(own[k].shape)]
        if bad or (strict and (missing or unexpected)):
            parts = []
            if missing:
                parts.append(f"missing keys {missing}")
            if unexpected:
                parts.append(f"unexpected keys {unexpected}")
            if bad:
                parts.append("shape mismatches: " + "; ".join(bad))
            msg = (f"{type(self).__name__}.load_state_dict: " + ", ".join(parts)
                   + ". Check that the checkpoint was saved from the same architecture"
                   + ("" if bad else ", or pass strict=False to load the keys that match"))
            raise (ShapeError if bad and not (missing or unexpected) else StateDictError)(msg)
        for key, value in state_dict.items():
            if key in own:
                _copy_into(own[key], value)
        return IncompatibleKeys(missing, unexpected)

    # -- calling and printing ----------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def extra_repr(self) -> str:
        """The part inside the parentheses of this module's repr line."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        kids = [f"({name}): {repr(m).replace(chr(10), chr(10) + '  ')}"
                for name, m in self._modules.items()]
        if not kids:
            return f"{type(self).__name__}({extra})"
        lines = ([extra] if extra else []) + kids
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"


def _copy_into(dst: Any, value: Any) -> None:
    """Overwrite ``dst``'s values with ``value`` in place, on dst's backend and dtype."""
    backend = dst.backend
    if isinstance(value, gx.Tensor) and value.backend is backend:
        raw = value.data
        if raw.dtype != dst.data.dtype:
            raw = backend.xp.astype(raw, dst.data.dtype)
    else:
        raw = backend.asarray(_to_host(value), dtype=dst.dtype)
    dst.data[...] = raw
    dst._bump_version()


__all__ = ["Module", "Parameter", "StateDictError", "IncompatibleKeys"]
