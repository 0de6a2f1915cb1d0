"""``gx.linalg``: the Array API linalg extension's differentiable subset."""

from .ops.linalg import det, inv, matrix_transpose, norm, outer, solve, tensordot, vecdot

__all__ = ["det", "inv", "matrix_transpose", "norm", "outer", "solve", "tensordot", "vecdot"]
