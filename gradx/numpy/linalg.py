"""``gradx.numpy.linalg``: NumPy's ``numpy.linalg`` names over ``gx.linalg``.

``inv``, ``solve``, ``det`` and ``norm`` are gradx's; ``matrix_power``, ``multi_dot`` and
``slogdet``'s sign are composed. ``svd(a, compute_uv=False)`` is ``gx.linalg.svdvals``.
gradx has no eigendecomposition, Cholesky or full SVD yet (``eigh``, ``eig``, ``cholesky``,
``svd`` with vectors, ``pinv``, ``slogdet``): they raise :class:`NotDifferentiableError`
naming the missing primitive rather than computing without a gradient.
"""

from __future__ import annotations

from typing import Any

import gradx as _gx

from .. import linalg as _la
from .._tensor import Tensor
from ..errors import ArgumentError, NotDifferentiableError


def _t(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else _gx.asarray(x)


def inv(a: Any) -> Any:
    """Matrix inverse (batched over leading axes)."""
    return _la.inv(_t(a))


def solve(a: Any, b: Any) -> Any:
    """``x`` with ``a @ x == b``; ``b`` a vector or a matrix (batched)."""
    a = _t(a)
    return _la.solve(a, b if isinstance(b, Tensor) else _gx.asarray(b, backend=a.backend))


def det(a: Any) -> Any:
    """Determinant (batched)."""
    return _la.det(_t(a))


def norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Any:
    """``numpy.linalg.norm``: vector or matrix norms by ``ord`` and ``axis``."""
    return _la.norm(_t(x), ord=ord, axis=axis, keepdims=keepdims)


def vector_norm(x: Any, /, *, axis: Any = None, keepdims: bool = False, ord: Any = 2) -> Any:
    return _la.vector_norm(_t(x), axis=axis, keepdims=keepdims, ord=ord)


def matrix_norm(x: Any, /, *, keepdims: bool = False, ord: Any = "fro") -> Any:
    return _la.matrix_norm(_t(x), keepdims=keepdims, ord=ord)


def svdvals(x: Any, /) -> Any:
    """Singular values, descending."""
    return _la.svdvals(_t(x))


def svd(a: Any, full_matrices: bool = True, compute_uv: bool = True, hermitian: bool = False
        ) -> Any:
    """Only ``compute_uv=False`` (the singular values): gradx has no differentiable SVD with
    singular vectors yet."""
    if compute_uv:
        raise _missing("svd", "svd(a, compute_uv=False) or gx.linalg.svdvals for the values")
    return svdvals(a)


def matrix_power(a: Any, n: int) -> Any:
    """``a`` multiplied by itself ``n`` times (square-and-multiply; ``inv`` for n < 0)."""
    a = _t(a)
    if n < 0:
        a, n = inv(a), -n
    result = None
    base = a
    while n:
        if n & 1:
            result = base if result is None else _gx.matmul(result, base)
        n >>= 1
        if n:
            base = _gx.matmul(base, base)
    if result is None:
        eye = _gx.eye(a.shape[-1], dtype=a.dtype, backend=a.backend)
        return _gx.broadcast_to(eye, a.shape)
    return result


def multi_dot(arrays: Any, *, out: Any = None) -> Any:
    """Left-to-right chain of matrix products."""
    if out is not None:
        raise ArgumentError("gradx.numpy.linalg.multi_dot: out= is not supported")
    arrays = [_t(a) for a in arrays]
    result = arrays[0]
    for a in arrays[1:]:
        result = _gx.matmul(result, a)
    return result


matmul = _gx.matmul
outer = _gx.outer
tensordot = _gx.tensordot
vecdot = _gx.vecdot
matrix_transpose = _gx.matrix_transpose


def trace(x: Any, /, *, offset: int = 0, dtype: Any = None) -> Any:
    """The Array API's ``linalg.trace``: over the last two axes."""
    from . import trace as _trace

    return _trace(x, offset=offset, axis1=-2, axis2=-1, dtype=dtype)


def _missing(name: str, hint: str) -> NotDifferentiableError:
    return NotDifferentiableError(
        f"gradx.numpy.linalg.{name}: gradx has no differentiable {name} primitive yet; use "
        f"{hint}, or compute it on t.numpy() outside the graph")


def slogdet(a: Any) -> Any:
    raise _missing("slogdet", "det (and log(abs(det)) where it does not overflow)")


def eigh(a: Any, UPLO: str = "L") -> Any:
    raise _missing("eigh", "an iterative method built from matmul")


def eigvalsh(a: Any, UPLO: str = "L") -> Any:
    raise _missing("eigvalsh", "svdvals for a positive semi-definite matrix")


def eig(a: Any) -> Any:
    raise _missing("eig", "an iterative method built from matmul")


def cholesky(a: Any, *, upper: bool = False) -> Any:
    raise _missing("cholesky", "solve / inv where a factor is not needed")


def pinv(a: Any, rcond: Any = None, hermitian: bool = False, *, rtol: Any = None) -> Any:
    raise _missing("pinv", "solve(a.T @ a, a.T) for a full-column-rank a")


MISSING = ("slogdet", "eigh", "eigvalsh", "eig", "cholesky", "pinv")
