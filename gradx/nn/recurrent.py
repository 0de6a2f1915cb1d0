"""Recurrent layers: RNN, LSTM and GRU with PyTorch's arguments, gate order and parameter
names (``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``, ``..._reverse``),
so a torch ``state_dict`` loads by name and gives the same outputs.

Each layer and direction projects the inputs of all time steps in one matmul
(``x @ W_ih^T + b``, (T, B, G)), splits the result into steps in O(T)
(:func:`gradx.ops.cells.split_steps`) and runs one fused cell primitive per step.
"""

from __future__ import annotations

import math
from typing import Any

import gradx as gx

from .._backend import ns
from ..errors import ArgumentError, ShapeError
from ..ops import cells
from . import functional as F
from . import init
from .module import Module

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}
_CELLS = {"RNN_TANH": cells.rnn_tanh_cell, "RNN_RELU": cells.rnn_relu_cell,
          "LSTM": cells.lstm_cell, "GRU": cells.gru_cell}


def _row_major_transpose(w: Any) -> Any:
    """w^T as a fresh row-major array (a raw constant the cells multiply by every step)."""
    xp = ns(w)
    out = xp.empty((w.shape[1], w.shape[0]), dtype=w.dtype)
    out[...] = xp.matrix_transpose(w)
    return out


class _RNNBase(Module):
    """What RNN, LSTM and GRU share: parameters, argument checks and the layer loop."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, *, dtype: Any = None,
                 backend: Any = None) -> None:
        super().__init__()
        name = type(self).__name__
        if hidden_size <= 0 or input_size < 0 or num_layers < 1:
            raise ArgumentError(f"{name}: hidden_size and num_layers must be positive, got "
                                f"hidden_size={hidden_size}, num_layers={num_layers}")
        if not 0.0 <= float(dropout) <= 1.0:
            raise ArgumentError(f"{name}: dropout must be in [0, 1], got {dropout}")
        self.mode = mode
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first = bias, batch_first
        self.dropout, self.bidirectional = float(dropout), bidirectional
        gates = _GATES[mode] * hidden_size
        for layer in range(num_layers):
            for suffix in ("", "_reverse")[:2 if bidirectional else 1]:
                size_in = input_size if layer == 0 else hidden_size * (2 if bidirectional
                                                                       else 1)
                shapes = [("weight_ih", (gates, size_in)), ("weight_hh", (gates, hidden_size))]
                if bias:
                    shapes += [("bias_ih", (gates,)), ("bias_hh", (gates,))]
                for pname, shape in shapes:
                    setattr(self, f"{pname}_l{layer}{suffix}",
                            gx.empty(shape, dtype=dtype, backend=backend, requires_grad=True))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every parameter U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as in PyTorch."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        for attr, default in (("bias", True), ("batch_first", False), ("dropout", 0.0),
                              ("bidirectional", False)):
            if getattr(self, attr) != default:
                s += f", {attr}={getattr(self, attr)}"
        return s

    def _weights(self, layer: int, direction: int) -> tuple[Any, Any, Any, Any]:
        suffix = f"_l{layer}" + ("_reverse" if direction else "")
        w_ih, w_hh = getattr(self, "weight_ih" + suffix), getattr(self, "weight_hh" + suffix)
        if not self.bias:
            return w_ih, w_hh, None, None
        return w_ih, w_hh, getattr(self, "bias_ih" + suffix), getattr(self, "bias_hh" + suffix)

    def _check(self, x: Any, hx: Any) -> tuple[Any, bool]:
        name = type(self).__name__
        if not isinstance(x, gx.Tensor):
            x = gx.tensor(x)
        if x.ndim not in (2, 3):
            raise ShapeError(f"{name}: expected input of shape (T, B, {self.input_size}) "
                             f"(batch_first: (B, T, {self.input_size})) or unbatched "
                             f"(T, {self.input_size}), got shape {tuple(x.shape)}")
        if x.shape[-1] != self.input_size:
            raise ShapeError(f"{name}: input has {x.shape[-1]} features (shape "
                             f"{tuple(x.shape)}), the layer expects input_size="
                             f"{self.input_size}")
        if not x.backend.is_float(x.data.dtype):
            raise gx.DTypeError(f"{name}: expected a floating-point input, got dtype "
                                f"{x.dtype}; convert it with x.astype('float32')")
        return x, x.ndim == 2

    def _initial(self, hx: Any, batch: int, like: Any, unbatched: bool) -> Any:
        """The initial state as (L * D, B, H); zeros where ``hx`` is None."""
        d = 2 if self.bidirectional else 1
        want = (self.num_layers * d, batch, self.hidden_size)
        if hx is None:
            return gx.zeros(want, dtype=like.dtype, backend=like.backend)
        if not isinstance(hx, gx.Tensor):
            hx = gx.tensor(hx)
        if unbatched and hx.ndim == 2:
            hx = gx.expand_dims(hx, axis=1)
        if tuple(hx.shape) != want:
            raise ShapeError(f"{type(self).__name__}: expected an initial state of shape "
                             f"{want[:1] + want[2:] if unbatched else want}, got "
                             f"{tuple(hx.shape)}")
        return hx

    def _run(self, x: Any, states: list[Any]) -> tuple[Any, list[Any]]:
        """Run every layer over ``x`` (T, B, I) from ``states`` (one per layer and direction:
        (B, H), or for the LSTM (2, B, H)); returns the last layer's output and the final
        states."""
        mode, d = self.mode, 2 if self.bidirectional else 1
        cell = _CELLS[mode]
        finals = []
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0.0 and self.training:
                x = F.dropout(x, p=self.dropout, training=True)
            outs = []
            for direction in range(d):
                w_ih, w_hh, b_ih, b_hh = self._weights(layer, direction)
                # the input part of every step's gates in one matmul; the hidden bias joins
                # it except in the GRU, where b_hn sits inside r * (...)
                if b_ih is None:
                    bias, b_cell = None, None
                elif mode == "GRU":
                    bias, b_cell = b_ih, b_hh
                else:
                    bias, b_cell = b_ih + b_hh, None
                xg = F.linear(x, w_ih, bias)
                steps = cells.split_steps(xg)
                order = range(len(steps) - 1, -1, -1) if direction else range(len(steps))
                state = states[layer * d + direction]
                wt = _row_major_transpose(w_hh.data)
                hs = []
                for t in order:
                    if mode in ("LSTM", "GRU"):
                        state = cell(steps[t], state, w_hh, b_cell, memo={}, wt=wt)
                    else:
                        state = cell(steps[t], state, w_hh, b_cell, wt=wt)
                    hs.append(state)
                finals.append(state)
                if direction:
                    hs.reverse()
                out = gx.stack(hs)  # (T, B, H), for the LSTM (T, 2, B, H)
                if mode == "LSTM":
                    out = out[:, 0]
                outs.append(out)
            x = outs[0] if d == 1 else gx.concat(outs, axis=-1)
        return x, finals

    def _forward(self, input: Any, hx: Any) -> tuple[Any, Any, bool]:
        x, unbatched = self._check(input, hx)
        if unbatched:
            x = gx.expand_dims(x, axis=1)
        elif self.batch_first:
            x = gx.permute_dims(x, (1, 0, 2))
        return x, hx, unbatched

    def _output(self, out: Any, unbatched: bool) -> Any:
        if unbatched:
            return out[:, 0]
        return gx.permute_dims(out, (1, 0, 2)) if self.batch_first else out


class _ElmanOrGRU(_RNNBase):
    def forward(self, input: Any, hx: Any = None) -> tuple[Any, Any]:
        """``input`` (T, B, I) (batch_first: (B, T, I); unbatched: (T, I)), ``hx``
        (L * D, B, H) or None; returns (output (T, B, D * H), h_n (L * D, B, H))."""
        x, hx, unbatched = self._forward(input, hx)
        h0 = self._initial(hx, x.shape[1], x, unbatched)
        out, finals = self._run(x, [h0[i] for i in range(h0.shape[0])])
        h_n = gx.stack(finals)
        return self._output(out, unbatched), h_n[:, 0] if unbatched else h_n


class RNN(_ElmanOrGRU):
    """Elman RNN: h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), act tanh or relu."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, *, dtype: Any = None,
                 backend: Any = None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ArgumentError(f"RNN: nonlinearity must be 'tanh' or 'relu', got "
                                f"{nonlinearity!r}")
        super().__init__(f"RNN_{nonlinearity.upper()}", input_size, hidden_size, num_layers,
                         bias, batch_first, dropout, bidirectional, dtype=dtype,
                         backend=backend)
        self.nonlinearity = nonlinearity


class GRU(_ElmanOrGRU):
    """GRU with PyTorch's gates r, z, n: n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),
    h' = (1 - z) * n + z * h."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, *, dtype: Any = None,
                 backend: Any = None) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, dtype=dtype, backend=backend)


class LSTM(_RNNBase):
    """LSTM with PyTorch's gates i, f, g, o: c' = f * c + i * g, h' = o * tanh(c')."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, *, dtype: Any = None,
                 backend: Any = None) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, dtype=dtype, backend=backend)

    def forward(self, input: Any, hx: Any = None) -> tuple[Any, tuple[Any, Any]]:
        """``input`` (T, B, I) (batch_first: (B, T, I); unbatched: (T, I)), ``hx`` a pair
        (h_0, c_0) of (L * D, B, H) or None; returns (output (T, B, D * H), (h_n, c_n))."""
        x, hx, unbatched = self._forward(input, hx)
        if hx is not None and (not isinstance(hx, tuple | list) or len(hx) != 2):
            raise ArgumentError("LSTM: hx must be a pair (h_0, c_0) or None")
        h0 = self._initial(None if hx is None else hx[0], x.shape[1], x, unbatched)
        c0 = self._initial(None if hx is None else hx[1], x.shape[1], x, unbatched)
        hc0 = gx.stack([h0, c0], axis=1)  # (L * D, 2, B, H)
        out, finals = self._run(x, [hc0[i] for i in range(hc0.shape[0])])
        hc_n = gx.stack(finals)  # (L * D, 2, B, H)
        h_n, c_n = hc_n[:, 0], hc_n[:, 1]
        if unbatched:
            h_n, c_n = h_n[:, 0], c_n[:, 0]
        return self._output(out, unbatched), (h_n, c_n)
