"""One step of a recurrent layer as a single primitive: rnn_tanh_cell, rnn_relu_cell,
lstm_cell and gru_cell, and the sequence split that feeds them.

A recurrent layer computes the input part of every gate for the whole sequence in one matmul
(``x @ W_ih^T``, shape (T, B, G)); each step then adds ``h @ W_hh^T`` and applies the gate
nonlinearities. Composed, that step records a dozen nodes; here it is one node whose VJP rule
is a handful of array passes. Arguments of every cell: ``xg`` (B, G), the step's input part
of the gates (input bias included); the state (``h`` (B, H), or for the LSTM ``hc`` (2, B, H),
h and c stacked, so that one node carries both); ``w_hh`` (G, H); ``b_hh`` (G,), or None
where the layer added it to ``xg``. The rules are
written with gradx functions, so ``create_graph=True`` differentiates them again; the gate
activations the forward pass computed are kept in the node's ``memo`` for the first-order
rules (recomputed when the rule runs on Tensors).

:func:`gradx.ops.steps.split_steps` splits the (T, B, G) projection into steps with a
backward of O(T) work.
"""

from __future__ import annotations

import weakref
from typing import Any

from .._backend import ns
from .._primitive import defvjp_argnum, primitive
from .._tensor import Tensor
from .elementwise import sigmoid, tanh
from .reductions import sum as _sum
from .shape import concat, stack
from .steps import split_steps  # noqa: F401  (re-exported: the layers split with it)


def _act(memo: dict | None, key: Any) -> Any:
    """The activations the forward pass saved, or None where the rule must recompute them
    (Tensors under create_graph, or a node without a memo)."""
    if memo is None or isinstance(key, Tensor):
        return None
    return memo.get("act")


def _split_last(a: Any, n: int) -> list[Any]:
    size = a.shape[-1] // n
    return [a[..., k * size:(k + 1) * size] for k in range(n)]


def _param_grads(argnum: int, da: Any, h: Any, w_hh: Any, dh_direct: Any = None) -> Any:
    """Gradients through ``a = h @ w_hh^T + b_hh`` from ``da`` (B, G): for h (argnum 1),
    w_hh (2) and b_hh (3)."""
    if argnum == 1:
        out = da @ w_hh
        return out if dh_direct is None else out + dh_direct
    if argnum == 2:
        if isinstance(da, Tensor) or isinstance(h, Tensor):
            return _mT(da) @ h
        return ns(da).matrix_transpose(da) @ h
    return _sum(da, axis=0)


def _mT(a: Any) -> Any:
    from .shape import permute_dims

    return permute_dims(a, (1, 0))


# -- Elman cells: h' = act(xg + h @ W_hh^T + b_hh) -------------------------------------------

@primitive
def rnn_tanh_cell(xg, h, w_hh, b_hh, /, *, wt=None):
    """tanh(xg + h @ w_hh^T + b_hh): one step of ``RNN(nonlinearity="tanh")``, (B, H)."""
    xp = ns(xg)
    return xp.tanh(_preact(xp, xg, h, w_hh, b_hh, wt))


def _rnn_tanh_vjp(argnum, g, ans, xg, h, w_hh, b_hh, *, wt=None):
    da = g * (1.0 - ans * ans)
    return da if argnum == 0 else _param_grads(argnum, da, h, w_hh)


defvjp_argnum(rnn_tanh_cell, _rnn_tanh_vjp)


@primitive
def rnn_relu_cell(xg, h, w_hh, b_hh, /, *, wt=None):
    """relu(xg + h @ w_hh^T + b_hh): one step of ``RNN(nonlinearity="relu")``, (B, H)."""
    xp = ns(xg)
    a = _preact(xp, xg, h, w_hh, b_hh, wt)
    return xp.maximum(a, xp.zeros_like(a))


def _rnn_relu_vjp(argnum, g, ans, xg, h, w_hh, b_hh, *, wt=None):
    raw = ans.data if isinstance(ans, Tensor) else ans
    mask = ns(raw).astype(raw > 0, raw.dtype)
    da = g * mask
    return da if argnum == 0 else _param_grads(argnum, da, h, w_hh)


defvjp_argnum(rnn_relu_cell, _rnn_relu_vjp)


# -- LSTM: gates i, f, g, o (PyTorch's order) -------------------------------------------------

@primitive
def lstm_cell(xg, hc, w_hh, b_hh, /, *, memo=None, wt=None):
    """One LSTM step. ``xg`` (B, 4H), ``hc`` (2, B, H) = stack(h, c), ``b_hh`` (4H,) or None
    (when the layer folded it into ``xg``); returns stack(h', c') with c' = f * c + i * g,
    h' = o * tanh(c')."""
    xp = ns(xg)
    h, c = hc[0, ...], hc[1, ...]
    a = _preact(xp, xg, h, w_hh, b_hh, wt)
    hs = a.shape[-1] // 4
    s = xp.exp(-a)  # sigmoid of all four blocks (the g block's is unused): no gather copy
    s += 1.0
    s = 1.0 / s
    i, f, o = s[..., :hs], s[..., hs:2 * hs], s[..., 3 * hs:]
    gg = xp.tanh(a[..., 2 * hs:3 * hs])
    out = xp.empty((2, *c.shape), dtype=a.dtype)
    c2 = f * c
    c2 += i * gg
    tc = xp.tanh(c2)
    out[1, ...] = c2
    out[0, ...] = o * tc
    if memo is not None:
        memo["act"] = (i, f, gg, o, tc)
    return out


def _preact(xp: Any, xg: Any, h: Any, w_hh: Any, b_hh: Any, wt: Any = None) -> Any:
    """xg + h @ w_hh^T (+ b_hh), added in place into the matmul's fresh result; ``wt`` is
    w_hh^T laid out row-major where the layer made one (BLAS runs it faster than the
    transposed view)."""
    a = h @ (xp.matrix_transpose(w_hh) if wt is None else wt)
    if xg.dtype == a.dtype and xg.shape == a.shape:
        a += xg
    else:
        a = a + xg
    if b_hh is not None:
        a = a + b_hh if b_hh.dtype != a.dtype else _iadd(a, b_hh)
    return a


def _iadd(a: Any, b: Any) -> Any:
    a += b
    return a


def _lstm_grads_raw(g, hc, w_hh, act):
    """(d xg, d hc) on raw arrays from the saved activations: the first-order path."""
    xp = ns(g)
    i, f, gg, o, tc = act
    c = hc[1, ...]
    gh, gc = g[0, ...], g[1, ...]
    dc = 1.0 - tc * tc
    dc *= gh * o
    dc += gc
    hs = i.shape[-1]
    da = xp.empty((*i.shape[:-1], 4 * hs), dtype=i.dtype)
    da[..., :hs] = dc * gg * i * (1.0 - i)
    da[..., hs:2 * hs] = dc * c * f * (1.0 - f)
    da[..., 2 * hs:3 * hs] = dc * i * (1.0 - gg * gg)
    da[..., 3 * hs:] = gh * tc * o * (1.0 - o)
    dhc = xp.empty(hc.shape, dtype=da.dtype)
    dhc[0, ...] = da @ w_hh
    dhc[1, ...] = dc * f
    return da, dhc


def _lstm_dgates(g, ans, xg, hc, w_hh, b_hh, memo):
    act = _act(memo, g)
    if act is not None and not isinstance(hc, Tensor) and not isinstance(w_hh, Tensor):
        return _lstm_grads_raw(g, hc, w_hh, act)
    h, c = hc[0, ...], hc[1, ...]
    if act is None:
        a = xg + h @ _mT(w_hh)
        if b_hh is not None:
            a = a + b_hh
        ai, af, ag, ao = _split_last(a, 4)
        i, f, gg, o = sigmoid(ai), sigmoid(af), tanh(ag), sigmoid(ao)
        tc = tanh(ans[1, ...])
    else:
        i, f, gg, o, tc = act
    gh, gc = g[0, ...], g[1, ...]
    dc = gc + gh * o * (1.0 - tc * tc)
    da = concat([dc * gg * i * (1.0 - i), dc * c * f * (1.0 - f),
                 dc * i * (1.0 - gg * gg), gh * tc * o * (1.0 - o)], axis=-1)
    return da, stack([da @ w_hh, dc * f])


def _lstm_vjp(argnum, g, ans, xg, hc, w_hh, b_hh, *, memo=None, wt=None):
    da, dhc = _cached(g, hc, lambda: _lstm_dgates(g, ans, xg, hc, w_hh, b_hh, memo))
    if argnum == 0:
        return da
    if argnum == 1:
        return dhc
    return _param_grads(argnum, da, hc[0, ...], w_hh)


defvjp_argnum(lstm_cell, _lstm_vjp)


# -- GRU: gates r, z, n; n = tanh(xn + r * (h @ W_hn^T + b_hn)) -------------------------------

@primitive
def gru_cell(xg, h, w_hh, b_hh, /, *, memo=None, wt=None):
    """One GRU step (PyTorch's): ``xg`` (B, 3H) = x @ W_ih^T + b_ih; r = sigmoid(xr + hr),
    z = sigmoid(xz + hz), n = tanh(xn + r * hn) with (hr, hz, hn) = h @ W_hh^T + b_hh;
    returns h' = (1 - z) * n + z * h, (B, H)."""
    xp = ns(xg)
    gh = h @ (xp.matrix_transpose(w_hh) if wt is None else wt)
    if b_hh is not None:
        gh = gh + b_hh
    hs = gh.shape[-1] // 3
    rz = 1.0 / (1.0 + xp.exp(-(xg[..., :2 * hs] + gh[..., :2 * hs])))
    r, z = rz[..., :hs], rz[..., hs:]
    hn = gh[..., 2 * hs:]
    n = xp.tanh(xg[..., 2 * hs:] + r * hn)
    if memo is not None:
        memo["act"] = (r, z, n, hn)
    return n + z * (h - n)


def _gru_dgates(g, ans, xg, h, w_hh, b_hh, memo):
    act = _act(memo, g)
    if act is None:
        gh = h @ _mT(w_hh)
        if b_hh is not None:
            gh = gh + b_hh
        xr, xz, xn = _split_last(xg, 3)
        hr, hz, hn = _split_last(gh, 3)
        r, z = sigmoid(xr + hr), sigmoid(xz + hz)
        n = tanh(xn + r * hn)
    else:
        r, z, n, hn = act
    dn = g * (1.0 - z) * (1.0 - n * n)
    dr = dn * hn * r * (1.0 - r)
    dz = g * (h - n) * z * (1.0 - z)
    return concat([dr, dz, dn], axis=-1), concat([dr, dz, dn * r], axis=-1)


def _gru_vjp(argnum, g, ans, xg, h, w_hh, b_hh, *, memo=None, wt=None):
    dx, dgh = _cached(g, h, lambda: _gru_dgates(g, ans, xg, h, w_hh, b_hh, memo))
    if argnum == 0:
        return dx
    return _param_grads(argnum, dgh, h, w_hh, g * _gru_z(memo, g, xg, h, w_hh, b_hh)
                        if argnum == 1 else None)


def _gru_z(memo, g, xg, h, w_hh, b_hh):
    act = _act(memo, g)
    if act is not None:
        return act[1]
    hs = xg.shape[-1] // 3
    a = xg[..., hs:2 * hs] + h @ _mT(w_hh[hs:2 * hs, ...])
    return sigmoid(a if b_hh is None else a + b_hh[hs:2 * hs])


defvjp_argnum(gru_cell, _gru_vjp)

# the rules of one node run one argument after another with the same cotangent: the gate
# gradients they share are computed once, and held only while that cotangent lives (the walk
# drops it once the node is done), so no gradient or graph outlives its backward pass
_LAST: list = [None, None, None]


def _forget(_: Any) -> None:
    _LAST[:] = [None, None, None]


def _cached(g: Any, state: Any, compute: Any) -> Any:
    held = _LAST[0]
    if held is not None and held() is g and _LAST[1] is state:
        return _LAST[2]
    out = compute()
    try:
        ref = weakref.ref(g, _forget)
    except TypeError:  # a NumPy scalar cannot be weakly referenced: nothing is shared then
        return out
    _LAST[:] = [ref, state, out]
    return out
