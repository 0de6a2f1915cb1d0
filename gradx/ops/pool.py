"""Pooling and padding, as torch.nn.functional: max and average pooling over windows,
adaptive average pooling, and ``pad`` (constant, reflect, replicate, circular).

The primitives (``max_pool2d``, ``avg_pool2d``, ``pad`` and their adjoints) live in
``conv.py`` next to the window helpers they share; here the arguments are checked and the
window geometry is worked out, PyTorch's way.
"""

from __future__ import annotations

import math
from typing import Any

from .._backend import ns
from .._tape import no_grad
from .._tensor import Tensor
from ..errors import ArgumentError, ShapeError
from .conv import (
    _avg_pool2d,
    _backend,
    _check_float,
    _check_ndim,
    _from_2d,
    _is_int,
    _max_pool_take,
    _nchw,
    _pad_constant,
    _raw,
    _to_2d,
    _tuple,
    _windows,
)


def _pool_geometry(op: str, x: Any, nd: int, kernel_size: Any, stride: Any, padding: Any,
                   dilation: Any, ceil_mode: bool) -> tuple:
    """(k, s, p, d, out, extra) per spatial axis; ``extra`` pads after the input so that
    ceil_mode's last, partial window exists (it starts inside the input or left padding)."""
    k = _tuple(op, "kernel_size", kernel_size, nd)
    s = k if stride is None or stride == () or stride == [] else _tuple(op, "stride", stride,
                                                                          nd)
    p = _tuple(op, "padding", padding, nd, low=0)
    d = _tuple(op, "dilation", dilation, nd)
    out, extra = [], []
    for n, ki, si, pi, di in zip(x.shape[-nd:], k, s, p, d, strict=True):
        eff = di * (ki - 1) + 1
        if pi > eff // 2:
            raise ArgumentError(f"{op}: padding {p} must be at most half of the effective "
                                f"kernel size {k} (dilation {d})")
        span = n + 2 * pi - eff
        if span < 0:
            raise ShapeError(f"{op}: kernel {k} (dilation {d}) is larger than the padded "
                             f"input: input of shape {tuple(x.shape)}, padding {p}")
        o = (-(-span // si) if ceil_mode else span // si) + 1
        if ceil_mode and (o - 1) * si >= n + pi:
            o -= 1
        out.append(o)
        extra.append(max(0, (o - 1) * si + eff - (n + 2 * pi)))
    return k, s, p, d, tuple(out), tuple(extra)


def _cfg2(nd: int, s: tuple, p: tuple, d: tuple, extra: tuple) -> tuple:
    if nd == 1:
        s, p, d, extra = (1,) + s, (0,) + p, (1,) + d, (0,) + extra
    return (s[0], s[1], p[0], p[0] + extra[0], p[1], p[1] + extra[1], d[0], d[1], 1)


def _max_pool_index(x: Any, cfg: tuple, kh: int, kw: int) -> Any:
    """(N, OH, OW, C) flat indices into the channels-last (N, H, W, C) layout of ``x``
    (N, C, H, W) of each window's first maximum (PyTorch's choice among ties; a NaN counts
    as the maximum). Channels-last like the convolutions, so every step is contiguous."""
    xp = ns(x)
    n, c, h, w = x.shape
    sh, sw, pt, _, pl, _, dh, dw, _ = cfg
    v = _windows(x, cfg, kh, kw, value=-math.inf)  # (N, OH, OW, kH, kW, C)
    oh, ow = v.shape[1:3]
    # elementwise over the kH*kW taps (each a channels-last slab), not an argmax over a
    # short middle axis, which NumPy runs element by element
    m = v[:, :, :, 0, 0, :]
    for t in range(1, kh * kw):
        m = xp.maximum(m, v[:, :, :, t // kw, t % kw, :])  # NaN propagates, as in PyTorch
    a = xp.zeros(m.shape, dtype=xp.int64)
    for t in reversed(range(kh * kw)):  # the first tap holding the maximum (or a NaN) wins
        tap = v[:, :, :, t // kw, t % kw, :]
        a = xp.where((tap == m) | xp.isnan(tap), xp.asarray(t, dtype=xp.int64), a)
    rows = (a // kw) * dh + xp.reshape(xp.arange(oh) * sh, (oh, 1, 1)) - pt
    cols = (a % kw) * dw + xp.reshape(xp.arange(ow) * sw, (ow, 1)) - pl
    # a window of -inf alone may pick its padding: point it at the input instead
    rows, cols = xp.clip(rows, 0, h - 1), xp.clip(cols, 0, w - 1)
    return ((xp.reshape(xp.arange(n), (n, 1, 1, 1)) * h + rows) * w + cols) * c + xp.arange(c)


def _max_pool(op: str, nd: int, x: Any, kernel_size: Any, stride: Any, padding: Any,
              dilation: Any, ceil_mode: bool, return_indices: bool) -> Any:
    _check_float(op, input=x)
    unbatched = _check_ndim(op, x, nd)
    k, s, p, d, _, extra = _pool_geometry(op, x, nd, kernel_size, stride, padding, dilation,
                                          ceil_mode)
    cfg = _cfg2(nd, s, p, d, extra)
    x2 = _to_2d(x, nd, unbatched)
    kh, kw = ((1,) + k) if nd == 1 else k
    with no_grad():
        idx = _max_pool_index(_raw(x2), cfg, kh, kw)
    # windows that cannot overlap receive each gradient by assignment, not a scatter-add
    unique = all(si >= di * (ki - 1) + 1 for si, di, ki in zip(s, d, k, strict=True))
    y = _from_2d(_max_pool_take(x2, idx=idx, unique=unique), nd, unbatched)
    if not return_indices:
        return y
    # PyTorch's indices count within one (H, W) plane
    plane = _nchw(ns(idx), (idx // x2.shape[1]) % math.prod(x2.shape[2:]))
    plane = _from_2d(plane, nd, unbatched)
    return y, (Tensor(plane) if isinstance(x, Tensor) else plane)


def max_pool1d(input: Any, kernel_size: Any, stride: Any = None, padding: Any = 0,
               dilation: Any = 1, ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """Maximum over windows of (N, C, L); the gradient goes to each window's first maximum."""
    return _max_pool("max_pool1d", 1, input, kernel_size, stride, padding, dilation,
                     ceil_mode, return_indices)


def max_pool2d(input: Any, kernel_size: Any, stride: Any = None, padding: Any = 0,
               dilation: Any = 1, ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """Maximum over windows of (N, C, H, W) (stride defaults to kernel_size; padding is
    -inf). Ties: the gradient goes to the first maximum in row-major window order, as in
    PyTorch, not shared."""
    return _max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation,
                     ceil_mode, return_indices)


def _avg_counts(n: int, k: int, s: int, p: int, out: int, include_pad: bool) -> list[int]:
    """Each window's divisor along one axis, PyTorch's: the window clipped to the padded
    input (include_pad) or to the input itself."""
    counts = []
    for i in range(out):
        start = i * s - p
        end = min(start + k, n + p)
        counts.append(end - start if include_pad else min(end, n) - max(start, 0))
    return counts


def _avg_pool(op: str, nd: int, x: Any, kernel_size: Any, stride: Any, padding: Any,
              ceil_mode: bool, count_include_pad: bool, divisor_override: Any) -> Any:
    _check_float(op, input=x)
    unbatched = _check_ndim(op, x, nd)
    k, s, p, d, out, extra = _pool_geometry(op, x, nd, kernel_size, stride, padding, 1,
                                            ceil_mode)
    cfg = _cfg2(nd, s, p, d, extra)
    if divisor_override is not None:
        divisor: Any = float(divisor_override)
    else:
        counts = [_avg_counts(n, ki, si, pi, o, count_include_pad)
                  for n, ki, si, pi, o in zip(x.shape[-nd:], k, s, p, out, strict=True)]
        full = math.prod(k)
        rows = counts[0] if nd == 2 else [1]
        host = [[float(a * b) for b in counts[-1]] for a in rows]  # (OH, OW) products
        divisor = float(full) if all(v == full for r in host for v in r) else \
            _backend(x).asarray([[host]], dtype=x.dtype)
    k2 = ((1,) + k) if nd == 1 else k
    y = _avg_pool2d(_to_2d(x, nd, unbatched), cfg=cfg, k_size=k2, divisor=divisor)
    return _from_2d(y, nd, unbatched)


def avg_pool1d(input: Any, kernel_size: Any, stride: Any = None, padding: Any = 0,
               ceil_mode: bool = False, count_include_pad: bool = True) -> Any:
    """Mean over windows of (N, C, L)."""
    return _avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, None)


def avg_pool2d(input: Any, kernel_size: Any, stride: Any = None, padding: Any = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Any = None) -> Any:
    """Mean over windows of (N, C, H, W); zero padding counts in the divisor unless
    ``count_include_pad=False``."""
    return _avg_pool("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)


def _adaptive_matrix(n: int, out: int, transpose: bool = False) -> list[list[float]]:
    """(out, n) (or its transpose): row i averages input [floor(i n / out),
    ceil((i + 1) n / out))."""
    m = [[0.0] * n for _ in range(out)]
    for i in range(out):
        a, b = (i * n) // out, -(-((i + 1) * n) // out)
        m[i][a:b] = [1.0 / (b - a)] * (b - a)
    return [list(c) for c in zip(*m, strict=True)] if transpose else m


def adaptive_avg_pool2d(input: Any, output_size: Any) -> Any:
    """Mean over the windows that split (H, W) into ``output_size`` parts (None keeps that
    axis), as PyTorch: an average pool when the sizes divide, else two small matmuls."""
    op = "adaptive_avg_pool2d"
    _check_float(op, input=input)
    _check_ndim(op, input, 2)
    h, w = input.shape[-2:]
    size = (output_size, output_size) if isinstance(output_size, int | None) else \
        tuple(output_size)
    if len(size) != 2:
        raise ArgumentError(f"{op}: output_size must be an int or a pair, got {output_size!r}")
    oh, ow = (h if size[0] is None else size[0]), (w if size[1] is None else size[1])
    if oh < 1 or ow < 1 or h < 1 or w < 1:
        raise ShapeError(f"{op}: output_size {(oh, ow)} and input of shape "
                         f"{tuple(input.shape)} must be positive")
    if h % oh == 0 and w % ow == 0:
        return avg_pool2d(input, (h // oh, w // ow))
    from .. import matmul

    backend = _backend(input)
    mh = backend.asarray(_adaptive_matrix(h, oh), dtype=input.dtype)
    mwt = backend.asarray(_adaptive_matrix(w, ow, transpose=True), dtype=input.dtype)
    return matmul(matmul(mh, input), mwt)


def pad(input: Any, pad: Any, mode: str = "constant", value: float | None = None) -> Any:
    """Pad the trailing axes; ``pad`` lists (before, after) pairs starting from the LAST
    axis, as PyTorch: ``pad(x, (1, 1, 2, 0))`` pads W by 1 and 1 and H by 2 before.
    Modes: constant (``value``, default 0), reflect, replicate, circular."""
    pads = tuple(pad)
    if len(pads) % 2 or len(pads) // 2 > input.ndim or any(
            not _is_int(q) or q < 0 for q in pads):
        raise ArgumentError(f"pad: pad={pad!r} must hold non-negative int pairs, at most one "
                            f"pair per axis of the input of shape {tuple(input.shape)}")
    per_axis = [(0, 0)] * input.ndim
    for i in range(len(pads) // 2):
        per_axis[input.ndim - 1 - i] = (int(pads[2 * i]), int(pads[2 * i + 1]))
    if mode == "constant":
        return _pad_constant(input, pads=tuple(per_axis), value=0.0 if value is None else value)
    if mode not in ("reflect", "replicate", "circular"):
        raise ArgumentError(f"pad: mode must be 'constant', 'reflect', 'replicate' or "
                            f"'circular', got {mode!r}")
    _check_float("pad", input=input)
    from .. import take

    backend = _backend(input)
    y = input
    for ax, (a, b) in enumerate(per_axis):
        if not (a or b):
            continue
        n = input.shape[ax]
        i = list(range(-a, n + b))
        if mode == "reflect":
            if a >= n or b >= n:
                raise ShapeError(f"pad: reflect padding ({a}, {b}) must be smaller than the "
                                 f"axis it pads (size {n}) of the input of shape "
                                 f"{tuple(input.shape)}")
            i = [2 * (n - 1) - abs(j) if abs(j) >= n else abs(j) for j in i]
        elif mode == "replicate":
            i = [min(max(j, 0), n - 1) for j in i]
        else:
            if a > n or b > n:
                raise ShapeError(f"pad: circular padding ({a}, {b}) must be at most the size "
                                 f"{n} of the axis it pads")
            i = [j % n for j in i]
        y = take(y, backend.asarray(i, dtype="int64"), axis=ax)
    return y
