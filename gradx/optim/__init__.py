"""Optimizers: SGD, Adam and AdamW, numerically matching torch.optim of the same names.

Updates run in place on each parameter's raw backend array, with no graph recorded, and
then bump the parameter's version counter. State (momentum, moments) is kept as raw
arrays on the parameter's backend. Where the backend has a fused kernel for an update (CuPy:
``backends/cupy_kernels.py``, one launch per parameter), it runs instead; the array code
here is the reference the kernels are tested against and the fallback where one cannot build.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import gradx as gx

from ..errors import BackendMismatchError, OptimizerError
from . import lr_scheduler  # noqa: F401  (gx.optim.lr_scheduler, as torch.optim.lr_scheduler)


class Optimizer:
    """Base class: parameter groups with per-group hyperparameters, per-parameter state."""

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[int, dict[str, Any]] = {}
        if isinstance(params, gx.Tensor):
            raise OptimizerError(
                f"{type(self).__name__}: params must be an iterable of tensors or of dicts, "
                "got a single Tensor; wrap it in a list"
            )
        groups = list(params)
        if not groups:
            raise OptimizerError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Add parameters with their own hyperparameters (unset ones take the defaults)."""
        name = type(self).__name__
        params = group["params"]
        params = [params] if isinstance(params, gx.Tensor) else list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for i, p in enumerate(params):
            if not isinstance(p, gx.Tensor):
                raise OptimizerError(f"{name}: parameter {i} is a {type(p).__name__}, not a Tensor")
            if not p.is_leaf:
                raise OptimizerError(
                    f"{name}: parameter {i} of shape {tuple(p.shape)} is not a leaf tensor (it "
                    "was computed from others); optimize the leaves, or pass x.detach()"
                )
            if id(p) in seen:
                raise OptimizerError(
                    f"{name}: parameter {i} of shape {tuple(p.shape)} appears in more than one "
                    "parameter group (or twice in one)"
                )
            seen.add(id(p))
        unknown = set(group) - set(self.defaults) - {"params"}
        if unknown:
            raise OptimizerError(
                f"{name}: unknown hyperparameters {sorted(unknown)} in a parameter group; "
                f"known ones are {sorted(self.defaults)}"
            )
        full = {**self.defaults, **{k: v for k, v in group.items() if k != "params"}}
        self._validate(full)
        full["params"] = params
        self.param_groups.append(full)

    def _validate(self, group: dict[str, Any]) -> None:
        name = type(self).__name__
        for key in ("lr", "weight_decay", "eps", "momentum", "dampening"):
            if key in group and not group[key] >= 0.0:
                raise OptimizerError(f"{name}: {key} must be >= 0, got {group[key]}")
        for i, beta in enumerate(group.get("betas", ())):
            if not 0.0 <= beta < 1.0:
                raise OptimizerError(f"{name}: betas[{i}] must be in [0, 1), got {beta}")

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's gradient before the next backward."""
        for group in self.param_groups:
            for p in group["params"]:
                p.zero_grad_(set_to_none)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; ``closure`` recomputes the loss."""
        loss = None
        if closure is not None:
            with gx.enable_grad():
                loss = closure()
        with gx.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    if p.grad.backend is not p.backend:
                        raise BackendMismatchError(
                            f"{type(self).__name__}.step: parameter of shape {tuple(p.shape)} "
                            f"lives on {p.backend.name!r} but its gradient on "
                            f"{p.grad.backend.name!r}; move the model before training"
                        )
                    self._update(p, p.grad.data, group, self.state.setdefault(id(p), {}))
                    p._bump_version()
        return loss

    def _update(self, p: Any, g: Any, group: dict[str, Any], state: dict[str, Any]) -> None:
        raise NotImplementedError

    # -- state -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """{"state": {index: {...}}, "param_groups": [...]}, parameters replaced by their
        position across groups, as in PyTorch; array state is copied into Tensors."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            ids = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if self.state.get(id(p)):
                    state[index[id(p)]] = {
                        k: (gx.tensor(v, backend=p.backend) if hasattr(v, "shape") else v)
                        for k, v in self.state[id(p)].items()
                    }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyperparameters and state saved by ``state_dict`` (possibly on another
        backend); the groups must hold the same numbers of parameters."""
        name = type(self).__name__
        saved = state_dict["param_groups"]
        sizes = [len(g["params"]) for g in self.param_groups]
        saved_sizes = [len(g["params"]) for g in saved]
        if sizes != saved_sizes:
            raise OptimizerError(
                f"{name}.load_state_dict: the checkpoint has parameter groups of sizes "
                f"{saved_sizes} but this optimizer has {sizes}; build the optimizer over the "
                "same parameters in the same order"
            )
        by_index = {}
        for group, sgroup in zip(self.param_groups, saved, strict=True):
            for p, i in zip(group["params"], sgroup["params"], strict=True):
                by_index[int(i)] = p
        new_state: dict[int, dict[str, Any]] = {}
        for i, entry in state_dict["state"].items():
            p = by_index[int(i)]
            new_state[id(p)] = {k: _state_value(v, p, k, name) for k, v in entry.items()}
        for group, sgroup in zip(self.param_groups, saved, strict=True):
            for k, v in sgroup.items():
                if k != "params":
                    group[k] = tuple(v) if k == "betas" else v
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines) + "\n)"


def _state_value(value: Any, p: Any, key: str, opt: str) -> Any:
    """A saved state entry as a raw array on ``p``'s backend and dtype (scalars as is)."""
    if not hasattr(value, "shape"):
        return value
    if tuple(value.shape) != tuple(p.shape):
        raise OptimizerError(
            f"{opt}.load_state_dict: state {key!r} has shape {tuple(value.shape)} but its "
            f"parameter has shape {tuple(p.shape)}"
        )
    if isinstance(value, gx.Tensor) and value.backend is p.backend:
        raw = p.backend.copy(value.data)
        return raw if raw.dtype == p.data.dtype else p.backend.xp.astype(raw, p.data.dtype)
    host = value.numpy() if isinstance(value, gx.Tensor) else gx.asarray(value).numpy()
    return p.backend.asarray(host, dtype=p.dtype)


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, dampening, Nesterov momentum
    and L2 weight decay, as torch.optim.SGD."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
                 *, maximize: bool = False) -> None:
        if nesterov and (momentum <= 0 or dampening != 0):
            raise OptimizerError("SGD: nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))

    def _update(self, p: Any, g: Any, group: dict[str, Any], state: dict[str, Any]) -> None:
        momentum = group["momentum"]
        fused = _fused_kernel(p, g, "gradx_sgd_momentum" if momentum else "gradx_sgd")
        if fused is not None and self._fused_update(fused, p, g, group, state):
            return
        if group["maximize"]:
            g = -g
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p.data
        momentum = group["momentum"]
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = p.backend.copy(g)
            else:
                buf *= momentum
                buf += (1.0 - group["dampening"]) * g
            g = g + momentum * buf if group["nesterov"] else buf
        d = p.data
        d -= group["lr"] * g

    @staticmethod
    def _fused_update(kernel: Any, p: Any, g: Any, group: dict[str, Any],
                      state: dict[str, Any]) -> bool:
        """The update above as one kernel launch; False (nothing changed) where it cannot run."""
        d = p.data
        t = d.dtype.type
        lr, wd, maximize = t(group["lr"]), t(group["weight_decay"]), group["maximize"]
        momentum = group["momentum"]
        if not momentum:
            return kernel(g, lr, wd, maximize, d)
        buf = state.get("momentum_buffer")
        first = buf is None
        if first:
            buf = p.backend.xp.empty_like(d)  # written whole by the kernel
        if not kernel(g, lr, wd, t(momentum), t(1.0 - group["dampening"]), maximize,
                      group["nesterov"], first, d, buf):
            return False
        state["momentum_buffer"] = buf
        return True


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction, L2 weight decay added to the gradient and
    optional AMSGrad, as torch.optim.Adam."""

    _decoupled = False

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize))

    def _update(self, p: Any, g: Any, group: dict[str, Any], state: dict[str, Any]) -> None:
        xp = p.backend.xp
        d = p.data
        lr, wd = group["lr"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(d)
            state["exp_avg_sq"] = xp.zeros_like(d)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = xp.zeros_like(d)
        state["step"] += 1
        step = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        fused = _fused_kernel(p, g, "gradx_adam_amsgrad" if group["amsgrad"] else "gradx_adam")
        if fused is not None:
            t = d.dtype.type
            decoupled = bool(wd) and self._decoupled
            out = (d, m, v, state.setdefault("max_exp_avg_sq", xp.zeros_like(d))) \
                if group["amsgrad"] else (d, m, v)
            if fused(g, t(0.0 if decoupled else wd), t(1.0 - lr * wd if decoupled else 1.0),
                     t(beta1), t(1.0 - beta1), t(beta2), t(1.0 - beta2), t(group["eps"]),
                     t(lr / (1.0 - beta1**step)), t(math.sqrt(1.0 - beta2**step)),
                     group["maximize"], *out):
                return
        if group["maximize"]:
            g = -g
        if wd and self._decoupled:
            d *= 1.0 - lr * wd
        elif wd:
            g = g + wd * d
        m *= beta1
        m += (1.0 - beta1) * g
        v *= beta2
        v += (1.0 - beta2) * (g * g)
        if group["amsgrad"]:
            vmax = state.setdefault("max_exp_avg_sq", xp.zeros_like(d))
            vmax[...] = xp.maximum(vmax, v)
            v = vmax
        step_size = lr / (1.0 - beta1**step)
        denom = xp.sqrt(v) / math.sqrt(1.0 - beta2**step) + group["eps"]
        d -= step_size * (m / denom)


class AdamW(Adam):
    """Adam with weight decay decoupled from the gradient (Loshchilov & Hutter): each step
    first shrinks the parameters by lr * weight_decay, as torch.optim.AdamW."""

    _decoupled = True

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize)


def _fused_kernel(p: Any, g: Any, name: str) -> Any:
    """The backend's fused update kernel for this parameter (CuPy: one launch instead of
    about a dozen), or None where the backend has none or the arrays do not fit its float32
    or float64 signature; the array code in ``_update`` is then the update."""
    kernel = p.backend.fused_kernel(name)
    if kernel is None:
        return None
    d = p.data
    if g.dtype != d.dtype or g.shape != d.shape or d.dtype.kind != "f" or d.itemsize < 4:
        return None
    return kernel


__all__ = ["Optimizer", "OptimizerError", "SGD", "Adam", "AdamW", "lr_scheduler"]
