"""Gradient-check rows for the recurrent cells (gradx/ops/cells.py) and the O(T) split
(gradx/ops/steps.py); ``tests/op_rows_nn.py`` appends them to its rows."""

from __future__ import annotations

import gradx as gx
from gradx.ops import cells
from gradx.ops.steps import split_pieces


def _unstack_some(x):
    """Pieces 2 and 0 of an unstack (piece 1 gets no gradient: the hub fills zeros)."""
    a, _, c = gx.unstack(x, axis=1)
    return c * 2.0 + gx.sin(a) * c


def _split_uneven(x):
    a, b = split_pieces(x, [0, 1, 3], 0)
    return gx.sum(a * a) + gx.sum(gx.exp(b))


RNN_ROWS: list[dict] = [
    {"name": "rnn_tanh_cell", "fn": cells.rnn_tanh_cell,
     "shapes": [(3, 2), (3, 2), (2, 2), (2,)], "order": 2},
    {"name": "rnn_relu_cell", "fn": cells.rnn_relu_cell,
     "shapes": [(3, 2), (3, 2), (2, 2), (2,)], "order": 2},
    {"name": "lstm_cell", "fn": cells.lstm_cell,
     "shapes": [(2, 8), (2, 2, 2), (8, 2), (8,)], "order": 2},
    {"name": "lstm_cell", "fn": lambda xg, hc, w, b: cells.lstm_cell(xg, hc, w, b, memo={}),
     "shapes": [(2, 8), (2, 2, 2), (8, 2), (8,)], "order": 2, "label": "memo"},
    {"name": "gru_cell", "fn": cells.gru_cell,
     "shapes": [(2, 6), (2, 2), (6, 2), (6,)], "order": 2},
    {"name": "gru_cell", "fn": lambda xg, h, w, b: cells.gru_cell(xg, h, w, b, memo={}),
     "shapes": [(2, 6), (2, 2), (6, 2), (6,)], "order": 2, "label": "memo"},
    {"name": "split_hub", "fn": _unstack_some, "shapes": [(2, 3, 2)], "order": 2},
    {"name": "split_piece", "fn": _split_uneven, "shapes": [(3, 2)], "order": 2},
]
