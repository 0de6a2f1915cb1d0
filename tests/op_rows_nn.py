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
