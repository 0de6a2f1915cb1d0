"""Attention: ``scaled_dot_product_attention``, ``MultiheadAttention`` and
``TransformerEncoderLayer``, with PyTorch's arguments, mask conventions and parameter names
(``in_proj_weight``, ``in_proj_bias``, ``out_proj.weight``, ``linear1``, ``norm1``, ...), so a
torch ``state_dict`` loads by name.

Composed from primitives that each do a whole array's work (matmul, softmax, linear,
layer_norm): the scores are one batched matmul, masks are added once as a small additive
(..., L, S) array, and the softmax is one node.

Masks. ``scaled_dot_product_attention``'s boolean ``attn_mask`` is True where a query may
attend; ``MultiheadAttention``'s boolean ``attn_mask`` and ``key_padding_mask`` are True where
it may NOT (PyTorch's two conventions). Float masks are added to the scores either way. A
query whose keys are all masked gets zero weights and a zero output (PyTorch's
``scaled_dot_product_attention`` does the same; its MultiheadAttention returns NaN there when
``need_weights=True``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import gradx as gx

from .._shapes import broadcast_shapes
from .._tensor import Tensor
from ..errors import ArgumentError, DTypeError, GradxError, ShapeError, describe
from ..ops.activations import require_float
from . import init
from .functional import dropout, linear, relu
from .layers import Dropout, LayerNorm, Linear
from .module import Module


def _raw(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


def _backend(x: Any) -> Any:
    return x._backend if isinstance(x, Tensor) else gx.backend_of(x)


def _const(a: Any, like: Any) -> Any:
    """A raw array made here as a constant Tensor of ``like``'s backend (a backend's creation
    functions may make another array type than its ops return, e.g. a device stand-in)."""
    if isinstance(a, Tensor) or not isinstance(like, Tensor):
        return a
    return Tensor._make(a, like._backend, None, False, [0])


def _is_bool(mask: Any) -> bool:
    return _backend(mask).xp.isdtype(_raw(mask).dtype, "bool")


def _additive(op: str, name: str, mask: Any, like: Any, masked_when_true: bool) -> Any:
    """``mask`` as something to add to the scores: booleans become 0 / -inf (raw, constant)
    of ``like``'s dtype; float masks are cast to that dtype (they may carry a gradient)."""
    if not hasattr(mask, "dtype") or not hasattr(mask, "shape"):
        raise DTypeError(f"{op}: {name} must be a boolean or float Tensor, got "
                         f"{type(mask).__name__}")
    backend = _backend(like)
    if _backend(mask) is not backend:
        raise gx.BackendMismatchError(
            f"{op}: {name} lives on {_backend(mask).name!r} but the query on "
            f"{backend.name!r}; move it with {name}.to({backend.name!r})")
    xp = backend.xp
    dtype = _raw(like).dtype
    if _is_bool(mask):
        blocked = _raw(mask) if masked_when_true else xp.logical_not(_raw(mask))
        zeros = xp.zeros(blocked.shape, dtype=dtype)
        return xp.where(blocked, xp.full(blocked.shape, -math.inf, dtype=dtype), zeros)
    if not backend.is_float(_raw(mask).dtype):
        raise DTypeError(f"{op}: {name} must be boolean or floating-point, got "
                         f"{describe(mask)}")
    return mask if _raw(mask).dtype == dtype else gx.astype(mask, dtype)


def _causal(length: int, source: int, like: Any) -> Any:
    """0 where key j <= query i, -inf above the diagonal: (L, S), aligned top-left."""
    xp = _backend(like).xp
    dtype = _raw(like).dtype
    above = (xp.arange(source)[None, :] - xp.arange(length)[:, None]) > 0
    return xp.where(above, xp.full((length, source), -math.inf, dtype=dtype),
                    xp.zeros((length, source), dtype=dtype))


def _dead_rows(mask: Any, like: Any) -> tuple[Any, Any]:
    """The mask with fully masked query rows set to 0 (so the softmax stays finite), and a
    (..., L, 1) 0/1 multiplier that zeroes those rows' weights, or None when no row is fully
    masked (known without a device sync on host backends only)."""
    backend = _backend(like)
    xp = backend.xp
    raw = _raw(mask)
    if raw.ndim == 0 or raw.shape[-1] == 0:
        return mask, None
    dead = xp.all(xp.isinf(raw) & (raw < 0), axis=-1, keepdims=True)
    if backend.host_resident and not bool(xp.any(dead)):
        return mask, None
    keep = xp.astype(xp.logical_not(dead), _raw(like).dtype)
    return gx.where(_const(dead, like), 0.0, _const(mask, like)), _const(keep, like)


def _attend(q: Any, kt: Any, v: Any, mask: Any, scale: float,
            dropout_p: float) -> tuple[Any, Any]:
    """softmax(q kt * scale + mask) @ v for q (..., L, E), kt (..., E, S), v (..., S, Ev);
    also returns the weights (..., L, S)."""
    scores = (q * scale) @ kt
    keep = None
    if mask is not None:
        mask, keep = _dead_rows(mask, q)
        scores = scores + _const(mask, q)
    weights = gx.softmax(scores, axis=-1)
    if keep is not None:
        weights = weights * keep
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p, training=True)
    return weights @ v, weights


def _check_mask_shape(op: str, name: str, mask: Any, target: tuple, expected: str) -> None:
    try:
        fits = broadcast_shapes(tuple(mask.shape), target) == target
    except GradxError:
        fits = False
    if not fits:
        raise ShapeError(f"{op}: {name} of shape {tuple(mask.shape)} does not fit attention "
                         f"scores of shape {target}; expected {expected}")


def scaled_dot_product_attention(query: Any, key: Any, value: Any, attn_mask: Any = None,
                                 dropout_p: float = 0.0, is_causal: bool = False,
                                 scale: float | None = None) -> Any:
    """softmax(query @ key^T * scale + mask) @ value, PyTorch's function.

    Shapes: query (..., L, E), key (..., S, E), value (..., S, Ev) -> (..., L, Ev); leading
    axes broadcast. ``scale`` defaults to 1/sqrt(E). ``attn_mask`` broadcasts to (..., L, S):
    boolean (True = may attend) or float (added to the scores). ``is_causal`` masks keys after
    each query (top-left aligned, as PyTorch) and excludes ``attn_mask``. ``dropout_p`` drops
    attention weights whenever it is positive (pass 0.0 in evaluation, as with PyTorch)."""
    op = "scaled_dot_product_attention"
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not hasattr(t, "ndim") or t.ndim < 2:
            raise ShapeError(f"{op}: {name} must have at least 2 axes (..., length, features), "
                             f"got {describe(t)}")
        require_float(op, t)
    length, features = query.shape[-2:]
    source = key.shape[-2]
    if key.shape[-1] != features or value.shape[-2] != source:
        raise ShapeError(f"{op}: query {tuple(query.shape)}, key {tuple(key.shape)} and value "
                         f"{tuple(value.shape)} do not fit: expected key (..., S, "
                         f"{features}) and value (..., S, Ev) with the same S")
    try:
        batch = broadcast_shapes(tuple(query.shape[:-2]), tuple(key.shape[:-2]),
                                 tuple(value.shape[:-2]))
    except GradxError:
        raise ShapeError(f"{op}: the leading axes of query {tuple(query.shape)}, key "
                         f"{tuple(key.shape)} and value {tuple(value.shape)} do not "
                         "broadcast") from None
    if not 0.0 <= dropout_p <= 1.0:
        raise ArgumentError(f"{op}: dropout_p must be in [0, 1], got {dropout_p}")
    mask = None
    if is_causal:
        if attn_mask is not None:
            raise ArgumentError(f"{op}: pass either attn_mask or is_causal=True, not both")
        mask = _causal(length, source, query)
    elif attn_mask is not None:
        _check_mask_shape(op, "attn_mask", attn_mask, (*batch, length, source),
                          f"a shape that broadcasts to (..., {length}, {source})")
        mask = _additive(op, "attn_mask", attn_mask, query, masked_when_true=False)
    s = 1.0 / math.sqrt(features) if scale is None else float(scale)
    return _attend(query, gx.matrix_transpose(key), value, mask, s, dropout_p)[0]


# -- MultiheadAttention -------------------------------------------------------------------

def _param(shape: tuple[int, ...], dtype: Any, backend: Any) -> Any:
    return gx.empty(shape, dtype=dtype, backend=backend, requires_grad=True)


class MultiheadAttention(Module):
    """Attention over ``num_heads`` heads of ``embed_dim / num_heads`` features each, with
    PyTorch's parameters: ``in_proj_weight`` (3E, E) and ``in_proj_bias`` (3E) (or
    ``q_proj_weight``, ``k_proj_weight``, ``v_proj_weight`` when ``kdim``/``vdim`` differ from
    ``embed_dim``) and ``out_proj`` (a Linear(E, E)).

    ``batch_first=True`` (the default here; PyTorch's default is False): inputs (N, L, E);
    with False, (L, N, E). Unbatched (L, E) input works either way. ``forward`` returns
    ``(output, weights)``, weights averaged over heads (N, L, S) or per head (N, H, L, S), or
    None when ``need_weights=False``. ``dropout`` drops attention weights while training."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False,
                 kdim: int | None = None, vdim: int | None = None, batch_first: bool = True,
                 *, dtype: Any = None, backend: Any = None) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0 or embed_dim % num_heads:
            raise ArgumentError(f"MultiheadAttention: embed_dim={embed_dim} must be divisible by "
                                f"num_heads={num_heads} (each head gets embed_dim // num_heads "
                                "features)")
        if add_bias_kv or add_zero_attn:
            raise ArgumentError("MultiheadAttention: add_bias_kv and add_zero_attn are not "
                                "supported; append the extra key/value rows to the inputs")
        if not 0.0 <= dropout <= 1.0:
            raise ArgumentError(f"MultiheadAttention: dropout must be in [0, 1], got {dropout}")
        self.embed_dim = embed_dim
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        if self._qkv_same_embed_dim:
            self.in_proj_weight = _param((3 * embed_dim, embed_dim), dtype, backend)
            self.q_proj_weight = self.k_proj_weight = self.v_proj_weight = None
        else:
            self.q_proj_weight = _param((embed_dim, embed_dim), dtype, backend)
            self.k_proj_weight = _param((embed_dim, self.kdim), dtype, backend)
            self.v_proj_weight = _param((embed_dim, self.vdim), dtype, backend)
            self.in_proj_weight = None
        self.in_proj_bias = _param((3 * embed_dim,), dtype, backend) if bias else None
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dtype, backend=backend)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """Xavier-uniform projections and zero biases, as PyTorch."""
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)

    def _projections(self) -> list[tuple[Any, Any]]:
        e = self.embed_dim
        b = self.in_proj_bias
        biases = [None] * 3 if b is None else [b[0:e], b[e:2 * e], b[2 * e:]]
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            weights = [w[0:e], w[e:2 * e], w[2 * e:]]
        else:
            weights = [self.q_proj_weight, self.k_proj_weight, self.v_proj_weight]
        return list(zip(weights, biases, strict=True))

    def forward(self, query: Any, key: Any, value: Any, key_padding_mask: Any = None,
                need_weights: bool = True, attn_mask: Any = None,
                average_attn_weights: bool = True, is_causal: bool = False
                ) -> tuple[Any, Any]:
        """Attend from ``query`` to ``key``/``value``. ``key_padding_mask`` (N, S): True (or
        -inf) marks padding keys. ``attn_mask`` (L, S) or (N * num_heads, L, S): True (or
        -inf) marks pairs that may not attend. ``is_causal`` without ``attn_mask`` applies
        the causal mask; with one, ``attn_mask`` is taken as that mask (PyTorch's hint)."""
        op = "MultiheadAttention"
        for name, t in (("query", query), ("key", key), ("value", value)):
            if not hasattr(t, "ndim") or t.ndim not in (2, 3):
                layout = "(N, L, E)" if self.batch_first else "(L, N, E)"
                raise ShapeError(f"{op}: {name} must be {layout} or unbatched (L, E), got "
                                 f"{describe(t)}")
            require_float(op, t)
        batched = query.ndim == 3
        if key.ndim != query.ndim or value.ndim != query.ndim:
            raise ShapeError(f"{op}: query {tuple(query.shape)}, key {tuple(key.shape)} and "
                             f"value {tuple(value.shape)} must all be batched or all unbatched")
        if not batched:
            query, key, value = (gx.expand_dims(t, axis=0) for t in (query, key, value))
            if key_padding_mask is not None and key_padding_mask.ndim == 1:
                key_padding_mask = gx.expand_dims(key_padding_mask, axis=0)
        elif not self.batch_first:
            query, key, value = (gx.permute_dims(t, (1, 0, 2)) for t in (query, key, value))
        n, length, e = query.shape
        source = key.shape[1]
        if (e != self.embed_dim or key.shape[2] != self.kdim or value.shape[2] != self.vdim
                or key.shape[0] != n or value.shape[0] != n or value.shape[1] != source):
            raise ShapeError(
                f"{op}(embed_dim={self.embed_dim}, kdim={self.kdim}, vdim={self.vdim}): "
                f"query {tuple(query.shape)}, key {tuple(key.shape)} and value "
                f"{tuple(value.shape)} (batch first) do not fit; expected (N, L, "
                f"{self.embed_dim}), (N, S, {self.kdim}) and (N, S, {self.vdim})")
        h, d = self.num_heads, self.head_dim
        (wq, bq), (wk, bk), (wv, bv) = self._projections()
        q = gx.permute_dims(gx.reshape(linear(query, wq, bq), (n, length, h, d)), (0, 2, 1, 3))
        kt = gx.permute_dims(gx.reshape(linear(key, wk, bk), (n, source, h, d)), (0, 2, 3, 1))
        v = gx.permute_dims(gx.reshape(linear(value, wv, bv), (n, source, h, d)), (0, 2, 1, 3))
        mask = self._mask(attn_mask, key_padding_mask, is_causal, query, n, length, source)
        p = self.dropout if self.training else 0.0
        out, weights = _attend(q, kt, v, mask, 1.0 / math.sqrt(d), p)
        out = self.out_proj(gx.reshape(gx.permute_dims(out, (0, 2, 1, 3)), (n, length, e)))
        if not batched:
            out = gx.squeeze(out, axis=0)
        elif not self.batch_first:
            out = gx.permute_dims(out, (1, 0, 2))
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = gx.mean(weights, axis=1)
        if not batched:
            weights = gx.squeeze(weights, axis=0)
        return out, weights

    def _mask(self, attn_mask: Any, key_padding_mask: Any, is_causal: bool, like: Any, n: int,
              length: int, source: int) -> Any:
        """The additive mask, (1 or N, 1 or H, L, S), or None."""
        op = "MultiheadAttention"
        h = self.num_heads
        mask = None
        if attn_mask is not None:
            shape = tuple(attn_mask.shape)
            if shape == (length, source):
                mask = _additive(op, "attn_mask", attn_mask, like, masked_when_true=True)
            elif shape == (n * h, length, source):
                mask = gx.reshape(_additive(op, "attn_mask", attn_mask, like, True),
                                  (n, h, length, source))
            else:
                raise ShapeError(f"{op}: attn_mask of shape {shape} does not fit; expected "
                                 f"({length}, {source}) or ({n * h}, {length}, {source}) "
                                 f"(N * num_heads, L, S)")
        elif is_causal:
            mask = _causal(length, source, like)
        if key_padding_mask is not None:
            if tuple(key_padding_mask.shape) != (n, source):
                raise ShapeError(f"{op}: key_padding_mask of shape "
                                 f"{tuple(key_padding_mask.shape)} does not fit; expected "
                                 f"({n}, {source}) (N, S)")
            pad = _additive(op, "key_padding_mask", key_padding_mask, like, True)
            pad = gx.reshape(pad, (n, 1, 1, source))
            mask = pad if mask is None else mask + pad
        return mask

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"dropout={self.dropout}, batch_first={self.batch_first}")


# -- TransformerEncoderLayer --------------------------------------------------------------

_ACTIVATIONS: dict[str, Callable[[Any], Any]] = {"relu": relu}


def _activation(activation: str | Callable[[Any], Any]) -> Callable[[Any], Any]:
    if callable(activation):
        return activation
    if activation == "gelu":
        from .functional import gelu

        return gelu
    if activation in _ACTIVATIONS:
        return _ACTIVATIONS[activation]
    raise ArgumentError(f"TransformerEncoderLayer: activation must be 'relu', 'gelu' or a "
                        f"callable, got {activation!r}")


class TransformerEncoderLayer(Module):
    """Self-attention then a feed-forward block, each with a residual connection and
    LayerNorm: PyTorch's layer, with its submodule names (``self_attn``, ``linear1``,
    ``dropout``, ``linear2``, ``norm1``, ``norm2``, ``dropout1``, ``dropout2``).
    ``norm_first`` normalizes before each block instead of after. ``batch_first=True`` is
    the default here (PyTorch's is False)."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation: str | Callable[[Any], Any] = "relu",
                 layer_norm_eps: float = 1e-5, batch_first: bool = True,
                 norm_first: bool = False, bias: bool = True, *, dtype: Any = None,
                 backend: Any = None) -> None:
        super().__init__()
        kw = {"dtype": dtype, "backend": backend}
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, **kw)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = _activation(activation)

    def forward(self, src: Any, src_mask: Any = None, src_key_padding_mask: Any = None,
                is_causal: bool = False) -> Any:
        """``src`` (N, L, d_model) (batch first); masks as in MultiheadAttention."""
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._ff_block(self.norm2(x))
        x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._ff_block(x))

    def _sa_block(self, x: Any, attn_mask: Any, key_padding_mask: Any, is_causal: bool) -> Any:
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           need_weights=False, is_causal=is_causal)[0]
        return self.dropout1(x)

    def _ff_block(self, x: Any) -> Any:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))


__all__ = ["scaled_dot_product_attention", "MultiheadAttention", "TransformerEncoderLayer"]
