"""Peer cells: PyTorch eager, HIPS autograd and JAX eager (jax.grad without jit).

Each builder takes the seeded host data of a workload and returns a ``Cell``: one
forward+backward per ``step()`` and the resulting gradients as host NumPy arrays.
Imports happen inside the builders, after ``benchmarks.run`` has pinned thread counts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.cells import Cell


def torch_cell(workload: str, data: dict[str, Any], device: str = "cpu") -> Cell:
    """PyTorch eager; gradients through ``.backward()`` and ``.grad``, as users write it."""
    import torch
    import torch.nn.functional as F

    def const(a: np.ndarray) -> Any:
        return torch.tensor(a, device=device)

    params = [torch.tensor(p, device=device, requires_grad=True) for p in data["params"]]
    sync = torch.cuda.synchronize if device.startswith("cuda") else _nothing

    def zero() -> None:
        for p in params:
            p.grad = None

    if workload == "tiny_ops":
        y0, half = const(data["y0"]), len(params) // 2
        ws, bs = params[:half], params[half:]

        def step() -> None:
            zero()
            y = y0
            for w, b in zip(ws, bs, strict=True):
                y = torch.tanh(y * w + b)
            y.sum().backward()

    elif workload == "mlp_step":
        x, labels = const(data["x"]), const(data["labels"])
        w1, b1, w2, b2, w3, b3 = params

        def step() -> None:
            zero()
            h = F.relu(x @ w1 + b1)
            h = F.relu(h @ w2 + b2)
            F.cross_entropy(h @ w3 + b3, labels).backward()

    elif workload in ("deep_narrow", "memory"):
        x, y = const(data["x"]), const(data["y"])
        act = torch.tanh if workload == "deep_narrow" else torch.relu

        def step() -> None:
            zero()
            h = x
            for i in range(0, len(params), 2):
                h = act(h @ params[i] + params[i + 1])
            F.mse_loss(h, y).backward()

    elif workload == "hvp":
        a, v = const(data["a"]), const(data["v"])
        x = torch.tensor(data["x"], device=device, requires_grad=True)
        out: list = [None]

        def step() -> None:
            # Double backward: differentiate <grad f(x), v> once more.
            (g,) = torch.autograd.grad(torch.logsumexp(a @ x, 0), x, create_graph=True)
            (out[0],) = torch.autograd.grad(g, x, grad_outputs=v)

        return Cell(step, lambda: [out[0].detach().cpu().numpy()], sync, _clear(out))
    else:
        raise ValueError(f"torch has no cell for workload {workload!r}")
    return Cell(step, lambda: [p.grad.detach().cpu().numpy() for p in params], sync, zero)


def autograd_cell(workload: str, data: dict[str, Any]) -> Cell:
    """HIPS autograd: ``grad`` of a function over a list of parameters."""
    import autograd
    import autograd.numpy as anp
    from autograd.scipy.special import logsumexp

    params = [p.copy() for p in data["params"]]
    out: list = [None]

    if workload == "tiny_ops":
        y0, half = data["y0"], len(params) // 2

        def loss(ps: list) -> Any:
            y = y0
            for w, b in zip(ps[:half], ps[half:], strict=True):
                y = anp.tanh(y * w + b)
            return anp.sum(y)

    elif workload == "mlp_step":
        x, labels = data["x"], data["labels"]
        rows = np.arange(x.shape[0])

        def loss(ps: list) -> Any:
            w1, b1, w2, b2, w3, b3 = ps
            h = anp.maximum(anp.dot(x, w1) + b1, 0.0)
            h = anp.maximum(anp.dot(h, w2) + b2, 0.0)
            logits = anp.dot(h, w3) + b3
            return anp.mean(logsumexp(logits, axis=1) - logits[rows, labels])

    elif workload in ("deep_narrow", "memory"):
        x, y = data["x"], data["y"]
        act = anp.tanh if workload == "deep_narrow" else (lambda z: anp.maximum(z, 0.0))

        def loss(ps: list) -> Any:
            h = x
            for i in range(0, len(ps), 2):
                h = act(anp.dot(h, ps[i]) + ps[i + 1])
            return anp.mean((h - y) ** 2)

    elif workload == "hvp":
        a, x, v = data["a"], data["x"], data["v"]
        hvp = autograd.hessian_vector_product(lambda x: logsumexp(anp.dot(a, x)))

        def step() -> None:
            out[0] = hvp(x, v)

        return Cell(step, lambda: [np.asarray(out[0])], clear=_clear(out))
    else:
        raise ValueError(f"autograd has no cell for workload {workload!r}")

    grad = autograd.grad(loss)

    def step() -> None:
        out[0] = grad(params)

    return Cell(step, lambda: [np.asarray(g) for g in out[0]], clear=_clear(out))


def jax_cell(workload: str, data: dict[str, Any]) -> Cell:
    """JAX eager: ``jax.grad`` op by op, never jitted; results are waited for (async dispatch)."""
    import jax
    import jax.numpy as jnp

    out: list = [None]

    if workload == "hvp":
        with jax.enable_x64(True):
            a, x, v = (jnp.asarray(data[k]) for k in ("a", "x", "v"))

        def f(x: Any) -> Any:
            return jax.nn.logsumexp(a @ x)

        def step() -> None:
            with jax.enable_x64(True):
                out[0] = jax.block_until_ready(jax.jvp(jax.grad(f), (x,), (v,))[1])

        return Cell(step, lambda: [np.asarray(out[0])], clear=_clear(out))

    params = [jnp.asarray(p) for p in data["params"]]
    if workload == "tiny_ops":
        y0, half = jnp.asarray(data["y0"]), len(params) // 2

        def loss(ps: list) -> Any:
            y = y0
            for w, b in zip(ps[:half], ps[half:], strict=True):
                y = jnp.tanh(y * w + b)
            return jnp.sum(y)

    elif workload == "mlp_step":
        x, labels = jnp.asarray(data["x"]), jnp.asarray(data["labels"])
        rows = jnp.arange(x.shape[0])

        def loss(ps: list) -> Any:
            w1, b1, w2, b2, w3, b3 = ps
            h = jax.nn.relu(x @ w1 + b1)
            h = jax.nn.relu(h @ w2 + b2)
            logits = h @ w3 + b3
            return jnp.mean(jax.nn.logsumexp(logits, axis=1) - logits[rows, labels])

    elif workload in ("deep_narrow", "memory"):
        x, y = jnp.asarray(data["x"]), jnp.asarray(data["y"])
        act = jnp.tanh if workload == "deep_narrow" else jax.nn.relu

        def loss(ps: list) -> Any:
            h = x
            for i in range(0, len(ps), 2):
                h = act(h @ ps[i] + ps[i + 1])
            return jnp.mean((h - y) ** 2)

    else:
        raise ValueError(f"jax has no cell for workload {workload!r}")

    grad = jax.grad(loss)

    def step() -> None:
        out[0] = jax.block_until_ready(grad(params))

    return Cell(step, lambda: [np.asarray(g) for g in out[0]], clear=_clear(out))


def _nothing() -> None:
    return None


def _clear(out: list):
    """Forget the last result held in a functional cell's one-slot list."""
    return lambda: out.__setitem__(0, None)
