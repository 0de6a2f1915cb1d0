"""Gradient-check rows for the primitives that gradx.nn registers.

``tests/op_table.py`` folds these into the table that the coverage test reads, and
``test_functional.py`` runs every row through ``check_grads`` on every backend.
"""

from __future__ import annotations

import gradx.nn.functional as F

NN_ROWS: list[dict] = [
    {"name": "relu", "fn": F.relu, "shapes": [(3, 4)], "domain": "real", "order": 2},
    {"name": "relu", "fn": F.relu, "shapes": [()], "domain": "real", "order": 2,
     "label": "scalar"},
    {"name": "softplus", "fn": F.softplus, "shapes": [(3, 4)], "domain": "real", "order": 2},
    {"name": "softplus", "fn": F.softplus, "shapes": [(5,)], "kwargs": {"beta": 2.0},
     "domain": "real", "order": 2, "label": "beta"},
    {"name": "log_softmax", "fn": F.log_softmax, "shapes": [(3, 4)], "kwargs": {"axis": -1},
     "domain": "real", "order": 2},
    {"name": "log_softmax", "fn": F.log_softmax, "shapes": [(3, 4, 2)], "kwargs": {"axis": 1},
     "domain": "real", "order": 2, "label": "axis1"},
    {"name": "softmax", "fn": F.softmax, "shapes": [(3, 4)], "kwargs": {"axis": -1},
     "domain": "real", "order": 2},
    {"name": "softmax", "fn": F.softmax, "shapes": [(4, 3)], "kwargs": {"axis": 0},
     "domain": "real", "order": 2, "label": "axis0"},
    {"name": "linear", "fn": F._linear, "shapes": [(3, 4), (2, 4)], "domain": "real",
     "order": 2},
    {"name": "linear", "fn": F._linear, "shapes": [(2, 3, 4), (5, 4)], "domain": "real",
     "order": 2, "label": "batch"},
    {"name": "linear", "fn": F._linear, "shapes": [(4,), (2, 4)], "domain": "real",
     "order": 2, "label": "vector"},
]

# convolution, pooling and padding (gradx/ops/conv.py, pool.py): every primitive and its
# adjoint; the adjoints' own rows call them directly with the geometry the forms compute
import gradx.ops.conv as _C  # noqa: E402

_CFG = (2, 1, 1, 0, 1, 1, 1, 2, 1)  # stride (2, 1), padding (1, 0 | 1, 1), dilation (1, 2)
_CFG_G = (1, 1, 0, 0, 1, 1, 1, 1, 2)  # groups 2


def _max_pool_backward(g):
    # (N, OH, OW, C) flat indices into a (1, 1, 4, 4) input's channels-last layout
    idx = g.backend.asarray([[[[0], [3]], [[9], [14]]]])
    return _C._max_pool_scatter(g, idx=idx, x_shape=(1, 1, 4, 4))


NN_ROWS += [
    {"name": "conv2d", "fn": lambda x, w: F.conv2d(x, w, stride=(2, 1), padding=1,
                                                   dilation=(1, 2)),
     "shapes": [(2, 2, 5, 6), (3, 2, 2, 3)], "label": "strided"},
    {"name": "conv2d", "fn": lambda x, w: F.conv2d(x, w, groups=2, padding="same"),
     "shapes": [(1, 4, 3, 4), (2, 2, 2, 2)], "label": "groups-same"},
    {"name": "conv2d", "fn": lambda x, w: F.conv1d(x, w, stride=2), "shapes": [(2, 2, 7),
                                                                              (3, 2, 3)],
     "label": "1d"},
    {"name": "conv_transpose2d", "fn": lambda x, w: F.conv_transpose2d(
        x, w, stride=2, padding=1, output_padding=1), "shapes": [(1, 2, 3, 2), (2, 3, 3, 2)]},
    {"name": "conv2d_weight", "fn": lambda x, g: _C._conv2d_weight(x, g, cfg=_CFG,
                                                                   k_size=(2, 2)),
     "shapes": [(2, 2, 5, 4), (2, 3, 3, 4)]},
    {"name": "conv2d_weight", "fn": lambda x, g: _C._conv2d_weight(x, g, cfg=_CFG_G,
                                                                   k_size=(1, 3)),
     "shapes": [(1, 4, 3, 4), (1, 2, 3, 4)], "label": "groups"},
    {"name": "max_pool2d", "fn": lambda x: F.max_pool2d(x, 2, 1, padding=1),
     "shapes": [(2, 2, 3, 4)]},
    {"name": "max_pool2d", "fn": lambda x: F.max_pool1d(x, 3, 2, ceil_mode=True),
     "shapes": [(1, 2, 6)], "label": "1d-ceil"},
    {"name": "max_pool2d_backward", "fn": _max_pool_backward, "shapes": [(1, 1, 2, 2)]},
    {"name": "avg_pool2d", "fn": lambda x: F.avg_pool2d(x, (2, 3), 2, padding=1,
                                                        count_include_pad=False),
     "shapes": [(2, 2, 4, 5)]},
    {"name": "avg_pool2d_backward", "fn": lambda g: _C._avg_pool2d_backward(
        g, cfg=(1, 2, 0, 0, 1, 1, 1, 1, 1), k_size=(2, 3), divisor=6.0,
        x_shape=(1, 2, 3, 4)), "shapes": [(1, 2, 2, 2)]},
    {"name": "pad", "fn": lambda x: F.pad(x, (1, 2, 0, 1), value=0.5), "shapes": [(2, 3, 4)]},
]

# recurrent cells and the O(T) split (gradx/ops/cells.py, steps.py)
from op_rows_rnn import RNN_ROWS  # noqa: E402

NN_ROWS += RNN_ROWS
