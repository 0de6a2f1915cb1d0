"""Convolution, pooling and padding over (N, C, H, W) arrays, as PyTorch's functional forms.

Three bilinear primitives share one trilinear form ``<g, conv2d(x, w)>``:

- ``conv2d(x, w)``            correlation, the forward pass (weight (O, C/groups, kH, kW));
- ``conv_transpose2d(g, w)``  its adjoint in ``x`` (the input gradient, and ConvTranspose2d);
- ``conv2d_weight(x, g)``     its adjoint in ``w`` (the weight gradient).

So every rule of each is one of the three, with the cotangent in the slot of the argument
being differentiated, and create_graph / second order come for free. The sliding-window
step is the backend's ``sliding_windows`` (a strided view on NumPy and CuPy, a gather
elsewhere); the arithmetic is one batched ``matmul`` over ``groups`` so it runs on BLAS.

A geometry ``cfg`` is ``(sh, sw, pad_top, pad_bottom, pad_left, pad_right, dh, dw, groups)``.
1-D forms add a unit height axis and call the 2-D primitives.
"""

from __future__ import annotations

import math
from typing import Any

from .._backend import backend_of, ns
from .._primitive import defjvp, defvjp, primitive
from .._tensor import Tensor
from ..errors import ArgumentError, DTypeError, ShapeError

# -- raw-array helpers (bodies only; rules below use the primitives) ------------------


def _nhwc(x: Any, pt: int, pb: int, pl: int, pr: int, value: float = 0.0) -> Any:
    """(N, C, H, W) -> a fresh channels-last (N, H + pt + pb, W + pl + pr, C) copy inside a
    border of ``value``: windows of it run over contiguous channel rows, which makes the
    im2col copy below about 20x faster than windows of the (N, C, H, W) layout."""
    xp = ns(x)
    n, c, h, w = x.shape
    shape = (n, h + pt + pb, w + pl + pr, c)
    out = xp.full(shape, value, dtype=x.dtype) if (pt or pb or pl or pr) else \
        xp.empty(shape, dtype=x.dtype)
    out[:, pt:pt + h, pl:pl + w, :] = xp.permute_dims(x, (0, 2, 3, 1))
    return out


def _windows(x: Any, cfg: tuple, kh: int, kw: int, out_size: Any = None,
             value: float = 0.0) -> Any:
    """(N, OH, OW, kH, kW, C) windows of the padded ``x`` (a view where the backend can)."""
    sh, sw, pt, pb, pl, pr, dh, dw, _ = cfg
    xpad = _nhwc(x, pt, pb, pl, pr, value)
    v = backend_of(x).sliding_windows(xpad, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), (1, 2))
    oh = (xpad.shape[1] - dh * (kh - 1) - 1) // sh + 1 if out_size is None else out_size[0]
    ow = (xpad.shape[2] - dw * (kw - 1) - 1) // sw + 1 if out_size is None else out_size[1]
    v = v[:, 0:(oh - 1) * sh + 1:sh, 0:(ow - 1) * sw + 1:sw, :, ::dh, ::dw]
    return ns(x).permute_dims(v, (0, 1, 2, 4, 5, 3))


def _cols(x: Any, cfg: tuple, kh: int, kw: int, out_size: Any) -> tuple[Any, tuple]:
    """im2col: (G, N*OH*OW, kH*kW*C/G) (each row a window, channels fastest) and
    (N, OH, OW)."""
    xp = ns(x)
    g = cfg[8]
    v = _windows(x, cfg, kh, kw, out_size)
    n, oh, ow = v.shape[:3]
    cg = x.shape[1] // g
    if g == 1:
        return xp.reshape(v, (1, n * oh * ow, kh * kw * cg)), (n, oh, ow)
    v = xp.reshape(v, (n * oh * ow, kh, kw, g, cg))
    cols = xp.reshape(xp.permute_dims(v, (3, 0, 1, 2, 4)), (g, n * oh * ow, kh * kw * cg))
    return cols, (n, oh, ow)


def _w_mat(xp: Any, w: Any, groups: int, transpose: bool = False) -> Any:
    """(O, C/G, kH, kW) -> (G, O/G, kH*kW*C/G) in the columns' order, or its (G, K, O/G)
    transpose; either way a row-major copy (BLAS is slow on NumPy's strided batches)."""
    o, cg, kh, kw = w.shape
    w = xp.reshape(w, (groups, o // groups, cg, kh, kw))
    if transpose:
        return xp.reshape(xp.permute_dims(w, (0, 3, 4, 2, 1)), (groups, kh * kw * cg, -1))
    return xp.reshape(xp.permute_dims(w, (0, 1, 3, 4, 2)), (groups, o // groups, -1))


def _bmm(xp: Any, a: Any, b: Any) -> Any:
    """(G, M, K) @ (G, K, P); one 2-D product when G is 1."""
    if a.shape[0] == 1:
        return xp.matmul(a[0, ...], b[0, ...])[None, ...]
    return xp.matmul(a, b)


def _g_mat(xp: Any, g: Any, groups: int) -> Any:
    """(N, O, OH, OW) -> (G, N*OH*OW, O/G)."""
    n, o, oh, ow = g.shape
    gm = xp.reshape(xp.permute_dims(g, (0, 2, 3, 1)), (n * oh * ow, groups, o // groups))
    return xp.permute_dims(gm, (1, 0, 2))


def _col2im(xp: Any, piece: Any, shape: tuple, chans: tuple, dtype: Any, cfg: tuple,
            kh: int, kw: int, oh: int, ow: int) -> Any:
    """Sum ``piece(i, j)`` (N, OH, OW, *chans) into the windows' places of a zero
    (N, Hp, Wp, *chans) buffer: the adjoint of taking windows. Returns (N, C, H, W) (a view
    of channels-last memory) with the padding cut off."""
    sh, sw, pt, pb, pl, pr, dh, dw, _ = cfg
    n, c, h, w = shape
    out = xp.zeros((n, h + pt + pb, w + pl + pr) + chans, dtype=dtype)
    for i in range(kh):
        rows = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
        for j in range(kw):
            cols = slice(j * dw, j * dw + sw * (ow - 1) + 1, sw)
            out[:, rows, cols, ...] += piece(i, j)
    out = xp.reshape(out, (n, h + pt + pb, w + pl + pr, c))
    return xp.permute_dims(out[:, pt:pt + h, pl:pl + w, :], (0, 3, 1, 2))


# -- the three convolution primitives -------------------------------------------------


@primitive(name="conv2d", saves_ans=False)
def _conv2d(x: Any, w: Any, /, *, cfg: tuple, out_size: Any = None) -> Any:
    """(N, C, H, W) correlated with (O, C/G, kH, kW) -> (N, O, OH, OW)."""
    xp = ns(x)
    groups = cfg[8]
    o, cg, kh, kw = w.shape
    cols, (n, oh, ow) = _cols(x, cfg, kh, kw, out_size)
    out = _bmm(xp, cols, _w_mat(xp, w, groups, transpose=True))  # (G, M, O/G)
    out = xp.reshape(xp.permute_dims(out, (1, 0, 2)), (n, oh, ow, o))
    return xp.permute_dims(out, (0, 3, 1, 2))


@primitive(name="conv_transpose2d", saves_ans=False)
def _conv_transpose2d(g: Any, w: Any, /, *, cfg: tuple, x_size: tuple) -> Any:
    """The adjoint of ``conv2d`` in its input: (N, O, OH, OW), (O, C/G, kH, kW) ->
    (N, C, *x_size)."""
    xp = ns(g)
    groups = cfg[8]
    o, cg, kh, kw = w.shape
    n, _, oh, ow = g.shape
    cols = _bmm(xp, _g_mat(xp, g, groups), _w_mat(xp, w, groups))  # (G, M, kH*kW*C/G)
    cols = xp.reshape(cols, (groups, n, oh, ow, kh, kw, cg))
    if groups == 1:
        def piece(i: int, j: int) -> Any:
            return cols[0, :, :, :, i, j, None, :]
    else:
        def piece(i: int, j: int) -> Any:
            return xp.permute_dims(cols[:, :, :, :, i, j, :], (1, 2, 3, 0, 4))
    return _col2im(xp, piece, (n, groups * cg) + tuple(x_size), (groups, cg), g.dtype, cfg,
                   kh, kw, oh, ow)


@primitive(name="conv2d_weight", saves_ans=False)
def _conv2d_weight(x: Any, g: Any, /, *, cfg: tuple, k_size: tuple) -> Any:
    """The adjoint of ``conv2d`` in its weight: (N, C, H, W), (N, O, OH, OW) ->
    (O, C/G, *k_size), computed in the weight's own row-major layout."""
    xp = ns(x)
    groups = cfg[8]
    kh, kw = k_size
    o = g.shape[1]
    cols, _ = _cols(x, cfg, kh, kw, tuple(g.shape[2:]))
    dw = _bmm(xp, xp.permute_dims(_g_mat(xp, g, groups), (0, 2, 1)), cols)  # (G, O/G, K)
    dw = xp.reshape(dw, (o, kh, kw, x.shape[1] // groups))
    return xp.permute_dims(dw, (0, 3, 1, 2))


def _xs(x: Any) -> tuple:
    return tuple(x.shape[2:])


defvjp(_conv2d,
       lambda g, ans, x, w, cfg, out_size=None: _conv_transpose2d(g, w, cfg=cfg, x_size=_xs(x)),
       lambda g, ans, x, w, cfg, out_size=None: _conv2d_weight(x, g, cfg=cfg,
                                                               k_size=_xs(w)))
defjvp(_conv2d,
       lambda t, ans, x, w, cfg, out_size=None: _conv2d(t, w, cfg=cfg, out_size=out_size),
       lambda t, ans, x, w, cfg, out_size=None: _conv2d(x, t, cfg=cfg, out_size=out_size))
defvjp(_conv_transpose2d,
       lambda h, ans, g, w, cfg, x_size: _conv2d(h, w, cfg=cfg, out_size=_xs(g)),
       lambda h, ans, g, w, cfg, x_size: _conv2d_weight(h, g, cfg=cfg, k_size=_xs(w)))
defjvp(_conv_transpose2d,
       lambda t, ans, g, w, cfg, x_size: _conv_transpose2d(t, w, cfg=cfg, x_size=x_size),
       lambda t, ans, g, w, cfg, x_size: _conv_transpose2d(g, t, cfg=cfg, x_size=x_size))
defvjp(_conv2d_weight,
       lambda h, ans, x, g, cfg, k_size: _conv_transpose2d(g, h, cfg=cfg, x_size=_xs(x)),
       lambda h, ans, x, g, cfg, k_size: _conv2d(x, h, cfg=cfg, out_size=_xs(g)))
defjvp(_conv2d_weight,
       lambda t, ans, x, g, cfg, k_size: _conv2d_weight(t, g, cfg=cfg, k_size=k_size),
       lambda t, ans, x, g, cfg, k_size: _conv2d_weight(x, t, cfg=cfg, k_size=k_size))


# -- pooling primitives ---------------------------------------------------------------


def _nchw(xp: Any, y: Any) -> Any:
    return xp.permute_dims(y, (0, 3, 1, 2))


def _flat_nhwc(xp: Any, x: Any) -> Any:
    """(N, C, H, W) -> its channels-last elements in order (free for channels-last memory)."""
    return xp.reshape(xp.permute_dims(x, (0, 2, 3, 1)), (-1,))


@primitive(name="max_pool2d", saves_args="meta", saves_ans=False)
def _max_pool_take(x: Any, /, *, idx: Any, unique: bool = False) -> Any:
    """Max pooling once each window's argmax is known: ``idx`` (N, OH, OW, C) holds flat
    indices into the channels-last layout of ``x`` (computed without recording)."""
    xp = ns(x)
    return _nchw(xp, xp.reshape(xp.take(_flat_nhwc(xp, x), xp.reshape(idx, (-1,))),
                                idx.shape))


@primitive(name="max_pool2d_backward", saves_args="meta", saves_ans=False)
def _max_pool_scatter(g: Any, /, *, idx: Any, x_shape: tuple, unique: bool = False) -> Any:
    """Each window's gradient added at its argmax: (N, C, OH, OW) -> ``x_shape``; a plain
    assignment where no two windows overlap (``unique``), a scatter-add otherwise."""
    xp = ns(g)
    backend = backend_of(g)
    flat = xp.zeros((math.prod(x_shape),), dtype=g.dtype)
    key, vals = xp.reshape(idx, (-1,)), _flat_nhwc(xp, g)
    if unique:
        out = backend.index_update(flat, key, vals)
    else:
        out = backend.scatter_add(flat, key, vals)
    n, c, h, w = x_shape
    return _nchw(xp, xp.reshape(out, (n, h, w, c)))


# both are linear in their one array argument: each one's VJP is the other, its JVP itself
defvjp(_max_pool_take, lambda g, ans, x, idx, unique=False: _max_pool_scatter(
    g, idx=idx, x_shape=tuple(x.shape), unique=unique))
defjvp(_max_pool_take, lambda t, ans, x, idx, unique=False: _max_pool_take(
    t, idx=idx, unique=unique))
defvjp(_max_pool_scatter, lambda h, ans, g, idx, x_shape, unique=False: _max_pool_take(
    h, idx=idx, unique=unique))
defjvp(_max_pool_scatter, lambda t, ans, g, idx, x_shape, unique=False: _max_pool_scatter(
    t, idx=idx, x_shape=x_shape, unique=unique))


@primitive(name="avg_pool2d", saves_args="meta", saves_ans=False)
def _avg_pool2d(x: Any, /, *, cfg: tuple, k_size: tuple, divisor: Any) -> Any:
    """Window sums divided by ``divisor`` (a number, or an (OH, OW) array)."""
    xp = ns(x)
    out = xp.sum(_windows(x, cfg, *k_size), axis=(3, 4))  # (N, OH, OW, C)
    return xp.permute_dims(out, (0, 3, 1, 2)) / divisor


@primitive(name="avg_pool2d_backward", saves_args="meta", saves_ans=False)
def _avg_pool2d_backward(g: Any, /, *, cfg: tuple, k_size: tuple, divisor: Any,
                         x_shape: tuple) -> Any:
    """The adjoint of ``avg_pool2d``: each output's gradient spread over its window."""
    xp = ns(g)
    gd = xp.permute_dims(g / divisor, (0, 2, 3, 1))[:, :, :, None, :]
    return _col2im(xp, lambda i, j: gd, x_shape, (1, x_shape[1]), g.dtype, cfg, *k_size,
                   *g.shape[2:])


defvjp(_avg_pool2d, lambda g, ans, x, cfg, k_size, divisor: _avg_pool2d_backward(
    g, cfg=cfg, k_size=k_size, divisor=divisor, x_shape=tuple(x.shape)))
defjvp(_avg_pool2d, lambda t, ans, x, cfg, k_size, divisor: _avg_pool2d(
    t, cfg=cfg, k_size=k_size, divisor=divisor))
defvjp(_avg_pool2d_backward, lambda h, ans, g, cfg, k_size, divisor, x_shape: _avg_pool2d(
    h, cfg=cfg, k_size=k_size, divisor=divisor))
defjvp(_avg_pool2d_backward, lambda t, ans, g, cfg, k_size, divisor, x_shape:
       _avg_pool2d_backward(t, cfg=cfg, k_size=k_size, divisor=divisor, x_shape=x_shape))


@primitive(name="pad", saves_args="meta", saves_ans=False)
def _pad_constant(x: Any, /, *, pads: tuple, value: float = 0.0) -> Any:
    """``x`` inside a border of ``value``; ``pads`` is ((before, after), ...) per axis."""
    xp = ns(x)
    out = xp.full(tuple(s + a + b for s, (a, b) in zip(x.shape, pads, strict=True)), value,
                  dtype=x.dtype)
    out[tuple(slice(a, a + s) for s, (a, _) in zip(x.shape, pads, strict=True))] = x
    return out


def _crop(g: Any, pads: tuple, shape: tuple) -> Any:
    return g[tuple(slice(a, a + s) for s, (a, _) in zip(shape, pads, strict=True))]


defvjp(_pad_constant, lambda g, ans, x, pads, value=0.0: _crop(g, pads, tuple(x.shape)))
defjvp(_pad_constant, lambda t, ans, x, pads, value=0.0: _pad_constant(t, pads=pads))


# -- argument handling ----------------------------------------------------------------


def _backend(x: Any) -> Any:
    return x.backend if isinstance(x, Tensor) else backend_of(x)


def _raw(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


def _check_float(op: str, **arrays: Any) -> None:
    for name, a in arrays.items():
        if a is not None and not _backend(a).is_float(a.dtype):
            raise DTypeError(f"{op}: {name} has dtype {a.dtype} of shape {tuple(a.shape)}; "
                             "it needs a floating dtype, e.g. x.astype('float32')")


def _is_int(v: Any) -> bool:
    """A Python or NumPy integer (any type with ``__index__``), not a bool."""
    return not isinstance(v, bool) and hasattr(type(v), "__index__")


def _tuple(op: str, name: str, v: Any, n: int, low: int = 1) -> tuple[int, ...]:
    t = (v,) * n if _is_int(v) else tuple(v)
    if len(t) != n or any(not _is_int(i) or i < low for i in t):
        raise ArgumentError(f"{op}: {name} must be an int >= {low} or a tuple of {n} such "
                            f"ints, got {v!r}")
    return tuple(int(i) for i in t)


def _check_ndim(op: str, x: Any, nd: int) -> bool:
    """True when ``x`` is unbatched (no N axis)."""
    if x.ndim not in (nd + 1, nd + 2):
        raise ShapeError(f"{op}: input of shape {tuple(x.shape)} must have {nd + 2} "
                         f"dimensions (N, C, {', '.join('HW'[2 - nd:])}) or {nd + 1} "
                         "without the batch axis")
    return x.ndim == nd + 1


def _to_2d(x: Any, nd: int, unbatched: bool) -> Any:
    from .. import expand_dims

    if unbatched:
        x = expand_dims(x, axis=0)
    return expand_dims(x, axis=2) if nd == 1 else x


def _from_2d(y: Any, nd: int, unbatched: bool) -> Any:
    from .. import squeeze

    if nd == 1:
        y = squeeze(y, axis=2)
    return squeeze(y, axis=0) if unbatched else y


def _add_bias(op: str, y: Any, bias: Any) -> Any:
    if bias is None:
        return y
    if tuple(bias.shape) != (y.shape[1],):
        raise ShapeError(f"{op}: bias of shape {tuple(bias.shape)} must be ({y.shape[1]},), "
                         "one value per output channel")
    from .. import reshape

    return y + reshape(bias, (1, -1, 1, 1))


def _conv_pads(op: str, padding: Any, nd: int, k: tuple, d: tuple, s: tuple) -> tuple:
    """((before, after) per spatial axis) from PyTorch's padding argument."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * nd
        if padding != "same":
            raise ArgumentError(f"{op}: padding must be 'same', 'valid', an int or a tuple, "
                                f"got {padding!r}")
        if any(i != 1 for i in s):
            raise ArgumentError(f"{op}: padding='same' needs stride 1, got stride {s}")
        # an odd total puts the extra element after, as PyTorch does
        return tuple((di * (ki - 1) // 2, di * (ki - 1) - di * (ki - 1) // 2)
                     for ki, di in zip(k, d, strict=True))
    return tuple((p, p) for p in _tuple(op, "padding", padding, nd, low=0))


def _conv_nd(op: str, nd: int, x: Any, weight: Any, bias: Any, stride: Any, padding: Any,
             dilation: Any, groups: int) -> Any:
    _check_float(op, input=x, weight=weight, bias=bias)
    unbatched = _check_ndim(op, x, nd)
    if weight.ndim != nd + 2:
        raise ShapeError(f"{op}: weight of shape {tuple(weight.shape)} must have {nd + 2} "
                         "dimensions (out_channels, in_channels / groups, *kernel_size)")
    s, d = _tuple(op, "stride", stride, nd), _tuple(op, "dilation", dilation, nd)
    k = tuple(weight.shape[2:])
    pads = _conv_pads(op, padding, nd, k, d, s)
    c, o = x.shape[-nd - 1], weight.shape[0]
    if not isinstance(groups, int) or groups < 1 or c % groups or o % groups:
        raise ArgumentError(f"{op}: groups={groups!r} must be a positive int dividing both "
                            f"in_channels ({c}) and out_channels ({o})")
    if c != weight.shape[1] * groups:
        raise ShapeError(f"{op}: input of shape {tuple(x.shape)} has {c} channels but weight "
                         f"of shape {tuple(weight.shape)} with groups={groups} expects "
                         f"{weight.shape[1] * groups}")
    for n_in, (a, b), ki, di in zip(x.shape[-nd:], pads, k, d, strict=True):
        if n_in + a + b < di * (ki - 1) + 1:
            raise ShapeError(f"{op}: kernel of size {k} (dilation {d}) is larger than the "
                             f"padded input: input {tuple(x.shape)}, padding {pads}")
    if nd == 1:
        s, d, pads = (1,) + s, (1,) + d, ((0, 0),) + pads
    cfg = (s[0], s[1], *pads[0], *pads[1], d[0], d[1], groups)
    y = _conv2d(_to_2d(x, nd, unbatched), _to_2d(weight, nd, False), cfg=cfg)
    return _from_2d(_add_bias(op, y, bias), nd, unbatched)


def _conv_transpose_nd(op: str, nd: int, x: Any, weight: Any, bias: Any, stride: Any,
                       padding: Any, output_padding: Any, groups: int, dilation: Any) -> Any:
    _check_float(op, input=x, weight=weight, bias=bias)
    unbatched = _check_ndim(op, x, nd)
    if weight.ndim != nd + 2:
        raise ShapeError(f"{op}: weight of shape {tuple(weight.shape)} must have {nd + 2} "
                         "dimensions (in_channels, out_channels / groups, *kernel_size)")
    s, d = _tuple(op, "stride", stride, nd), _tuple(op, "dilation", dilation, nd)
    p = _tuple(op, "padding", padding, nd, low=0)
    op_ = _tuple(op, "output_padding", output_padding, nd, low=0)
    k = tuple(weight.shape[2:])
    c = x.shape[-nd - 1]
    if not isinstance(groups, int) or groups < 1 or c % groups:
        raise ArgumentError(f"{op}: groups={groups!r} must be a positive int dividing "
                            f"in_channels ({c})")
    if c != weight.shape[0]:
        raise ShapeError(f"{op}: input of shape {tuple(x.shape)} has {c} channels but weight "
                         f"of shape {tuple(weight.shape)} expects {weight.shape[0]}")
    if any(o >= max(si, di) for o, si, di in zip(op_, s, d, strict=True)):
        raise ArgumentError(f"{op}: output_padding {op_} must be smaller than stride {s} or "
                            f"dilation {d}")
    size = tuple((n - 1) * si - 2 * pi + di * (ki - 1) + oi + 1 for n, si, pi, di, ki, oi
                 in zip(x.shape[-nd:], s, p, d, k, op_, strict=True))
    if any(n < 1 for n in size):
        raise ShapeError(f"{op}: input of shape {tuple(x.shape)} with kernel {k}, stride {s} "
                         f"and padding {p} gives an empty output of size {size}")
    if nd == 1:
        s, d, p, size = (1,) + s, (1,) + d, (0,) + p, (1,) + size
    cfg = (s[0], s[1], p[0], p[0], p[1], p[1], d[0], d[1], groups)
    y = _conv_transpose2d(_to_2d(x, nd, unbatched), _to_2d(weight, nd, False), cfg=cfg,
                          x_size=size)
    return _from_2d(_add_bias(op, y, bias), nd, unbatched)


# -- convolution, as torch.nn.functional ----------------------------------------------


def conv1d(input: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1) -> Any:
    """(N, C, L) correlated with weight (O, C/groups, k) -> (N, O, L_out), as PyTorch."""
    return _conv_nd("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1) -> Any:
    """(N, C, H, W) correlated with weight (O, C/groups, kH, kW) -> (N, O, H_out, W_out).

    ``padding`` is an int, a pair, ``"valid"`` (none) or ``"same"`` (stride 1; an odd total
    pads one more after than before, as PyTorch)."""
    return _conv_nd("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def conv_transpose1d(input: Any, weight: Any, bias: Any = None, stride: Any = 1,
                     padding: Any = 0, output_padding: Any = 0, groups: int = 1,
                     dilation: Any = 1) -> Any:
    """The adjoint of conv1d: (N, C_in, L), weight (C_in, C_out/groups, k)."""
    return _conv_transpose_nd("conv_transpose1d", 1, input, weight, bias, stride, padding,
                              output_padding, groups, dilation)


def conv_transpose2d(input: Any, weight: Any, bias: Any = None, stride: Any = 1,
                     padding: Any = 0, output_padding: Any = 0, groups: int = 1,
                     dilation: Any = 1) -> Any:
    """The adjoint of conv2d (a "deconvolution"): (N, C_in, H, W) with weight
    (C_in, C_out/groups, kH, kW) -> (N, C_out, H_out, W_out), H_out = (H - 1) * stride -
    2 * padding + dilation * (kH - 1) + output_padding + 1."""
    return _conv_transpose_nd("conv_transpose2d", 2, input, weight, bias, stride, padding,
                              output_padding, groups, dilation)
