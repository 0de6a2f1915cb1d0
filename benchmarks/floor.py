"""The floor: forward and backward of every workload written by hand, with zero framework.

Written against an array namespace ``xp`` (NumPy on the CPU, CuPy on the GPU), so the same
maths is the floor on both devices. Each ``*_grads`` function does one forward and backward
and returns the gradients in the order of ``data.make_data(...)["params"]``.
"""

from __future__ import annotations

from typing import Any


def tiny_ops_grads(xp: Any, y0: Any, ws: list, bs: list) -> list:
    """y = tanh(y * w_i + b_i) for each step, loss = sum(y); grads [w_0.., b_0..]."""
    ys = [y0]
    y = y0
    for w, b in zip(ws, bs, strict=True):
        y = xp.tanh(y * w + b)
        ys.append(y)
    g = xp.ones_like(y)
    gws: list = [None] * len(ws)
    gbs: list = [None] * len(bs)
    for i in range(len(ws) - 1, -1, -1):
        y_out = ys[i + 1]
        gz = g * (1.0 - y_out * y_out)  # tanh' = 1 - tanh^2
        gbs[i] = gz
        gws[i] = gz * ys[i]
        g = gz * ws[i]
    return gws + gbs


def mlp_step_grads(xp: Any, x: Any, labels: Any, params: list) -> list:
    """Linear-ReLU-Linear-ReLU-Linear, mean softmax cross-entropy over integer labels."""
    w1, b1, w2, b2, w3, b3 = params
    z1 = x @ w1 + b1
    a1 = xp.maximum(z1, 0.0)
    z2 = a1 @ w2 + b2
    a2 = xp.maximum(z2, 0.0)
    logits = a2 @ w3 + b3
    n = x.shape[0]
    # d(mean CE)/d logits = (softmax - onehot) / n; subtracting the row max keeps exp finite.
    e = xp.exp(logits - logits.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    p[xp.arange(n), labels] -= 1.0
    g3 = p * (1.0 / n)
    gw3 = a2.T @ g3
    gb3 = g3.sum(axis=0)
    g2 = (g3 @ w3.T) * (z2 > 0)
    gw2 = a1.T @ g2
    gb2 = g2.sum(axis=0)
    g1 = (g2 @ w2.T) * (z1 > 0)
    gw1 = x.T @ g1
    gb1 = g1.sum(axis=0)
    return [gw1, gb1, gw2, gb2, gw3, gb3]


def mlp_loss(xp: Any, x: Any, labels: Any, params: list) -> float:
    """The mlp_step loss alone, for finite-difference checks of the floor."""
    w1, b1, w2, b2, w3, b3 = params
    a2 = xp.maximum(xp.maximum(x @ w1 + b1, 0.0) @ w2 + b2, 0.0)
    logits = a2 @ w3 + b3
    m = logits.max(axis=1, keepdims=True)
    lse = m[:, 0] + xp.log(xp.exp(logits - m).sum(axis=1))
    return float((lse - logits[xp.arange(x.shape[0]), labels]).mean())


def stack_grads(xp: Any, x: Any, y: Any, params: list, act: str) -> list:
    """h = act(h @ W_i + b_i) per layer, loss = mean((h - y)^2); act is "tanh" or "relu"."""
    hs = [x]
    h = x
    for i in range(0, len(params), 2):
        z = h @ params[i] + params[i + 1]
        h = xp.tanh(z) if act == "tanh" else xp.maximum(z, 0.0)
        hs.append(h)
    g = (h - y) * (2.0 / h.size)
    del h
    grads: list = [None] * len(params)
    for i in range(len(params) - 2, -1, -2):
        # Pop each activation once used, as a tape frees saved values, so peak memory is
        # the least a backward pass needs.
        h_out = hs.pop()
        g = g * (1.0 - h_out * h_out) if act == "tanh" else g * (h_out > 0)
        del h_out
        grads[i] = hs[-1].T @ g
        grads[i + 1] = g.sum(axis=0)
        if i:
            g = g @ params[i].T
    return grads


def stack_loss(xp: Any, x: Any, y: Any, params: list, act: str) -> float:
    """The deep_narrow / memory loss alone, for finite-difference checks of the floor."""
    h = x
    for i in range(0, len(params), 2):
        z = h @ params[i] + params[i + 1]
        h = xp.tanh(z) if act == "tanh" else xp.maximum(z, 0.0)
    return float(((h - y) ** 2).mean())


def hvp(xp: Any, a: Any, x: Any, v: Any) -> list:
    """H v for f(x) = logsumexp(A x): H = A^T (diag(p) - p p^T) A with p = softmax(A x)."""
    z = a @ x
    e = xp.exp(z - z.max())
    p = e / e.sum()
    u = a @ v
    return [a.T @ (p * u - p * (p @ u))]


def logsumexp_grad(xp: Any, a: Any, x: Any) -> Any:
    """Gradient of logsumexp(A x), used to check ``hvp`` by finite differences."""
    z = a @ x
    e = xp.exp(z - z.max())
    return a.T @ (e / e.sum())
