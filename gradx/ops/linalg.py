"""Matrix products and linear algebra."""

from __future__ import annotations

import builtins
import string
from typing import Any

from .._backend import backend_of, ns
from .._primitive import composed, defjvp, defjvp_argnum, defvjp, defvjp_argnum, primitive
from ..errors import ShapeError


@primitive(saves_args=False, saves_ans=False, view=True)
def matrix_transpose(x, /):
    return ns(x).matrix_transpose(x)


defvjp(matrix_transpose, lambda g, ans, x: matrix_transpose(g))
defjvp(matrix_transpose, lambda t, ans, x: matrix_transpose(t))


@primitive(broadcasts=True, saves_ans=False)
def matmul(x, y, /):
    return x @ y


def _matmul_vjp_x(g, ans, x, y):
    if y.ndim == 1:
        return g * y if x.ndim == 1 else expand_dims(g, axis=-1) * y
    if x.ndim == 1:
        return y @ g if y.ndim == 2 else squeeze(y @ expand_dims(g, axis=-1), axis=-1)
    return g @ matrix_transpose(y)


def _matmul_vjp_y(g, ans, x, y):
    if x.ndim == 1:
        return expand_dims(x, axis=-1) * expand_dims(g, axis=-2) if y.ndim > 1 else g * x
    if y.ndim == 1:
        return g @ x if x.ndim == 2 else squeeze(expand_dims(g, axis=-2) @ x, axis=-2)
    return matrix_transpose(x) @ g


# the tape sums broadcast batch dimensions back to each input's shape
defvjp(matmul, _matmul_vjp_x, _matmul_vjp_y)
defjvp(matmul, lambda t, ans, x, y: t @ y, lambda t, ans, x, y: x @ t)


def _parse_einsum(subscripts: str, shapes: list[tuple[int, ...]]) -> tuple[list[str], str]:
    """Explicit input and output subscripts, with any ellipsis spelled out as letters."""
    spec = subscripts.replace(" ", "")
    inputs, arrow, output = spec.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(shapes):
        raise ShapeError(f"einsum: {len(terms)} operand terms in {subscripts!r} but "
                         f"{len(shapes)} operands")
    used = set(spec)
    spare = [c for c in string.ascii_letters if c not in used]
    ell = 0
    for term, shape in zip(terms, shapes, strict=True):
        if "..." in term:
            ell = builtins.max(ell, len(shape) - (len(term) - 3))
    ell_letters = "".join(spare[:ell])
    out_terms = []
    for term, shape in zip(terms, shapes, strict=True):
        if "..." in term:
            n = len(shape) - (len(term) - 3)
            term = term.replace("...", ell_letters[ell - n:] if n else "")
        out_terms.append(term)
    if not arrow:
        counts: dict[str, int] = {}
        for t in out_terms:
            for c in t:
                counts[c] = counts.get(c, 0) + 1
        output = ell_letters + "".join(sorted(c for c, k in counts.items()
                                              if k == 1 and c not in ell_letters))
    else:
        output = output.replace("...", ell_letters)
    return out_terms, output


@primitive(saves_ans=False)
def _einsum(*operands, subscripts):
    return backend_of(operands[0]).einsum(subscripts, *operands)


def _einsum_vjp(argnum, g, ans, *operands, subscripts):
    terms, output = _parse_einsum(subscripts, [tuple(o.shape) for o in operands])
    target = terms[argnum]
    if len(set(target)) != len(target):
        raise ShapeError(f"einsum: the gradient through a repeated index in {target!r} "
                         "(a diagonal) is not supported; take the diagonal explicitly")
    others = [t for i, t in enumerate(terms) if i != argnum]
    available = set(output).union(*others) if others else set(output)
    kept = "".join(c for c in target if c in available)
    spec = ",".join([output, *others]) + "->" + kept
    grad = _einsum(g, *[o for i, o in enumerate(operands) if i != argnum], subscripts=spec)
    if kept != target:  # letters summed away inside this operand alone: broadcast back
        shape = tuple(operands[argnum].shape[target.index(c)] if c in kept else 1
                      for c in target)
        expanded = reshape(grad, tuple(grad.shape[kept.index(c)] if c in kept else 1
                                       for c in target))
        grad = broadcast_to(expanded, operands[argnum].shape) if shape else expanded
    return grad


def _einsum_jvp(argnum, t, ans, *operands, subscripts):
    ops = list(operands)
    ops[argnum] = t
    return _einsum(*ops, subscripts=subscripts)


defvjp_argnum(_einsum, _einsum_vjp)
defjvp_argnum(_einsum, _einsum_jvp)


@composed
def einsum(subscripts: str, /, *operands: Any) -> Any:
    """Einstein summation; differentiable in every operand (diagonals excepted)."""
    return _einsum(*operands, subscripts=subscripts)


@composed
def tensordot(x: Any, y: Any, /, *, axes: Any = 2) -> Any:
    """Composed from einsum."""
    if isinstance(axes, int):
        ax = (tuple(range(x.ndim - axes, x.ndim)), tuple(range(axes)))
    else:
        ax = tuple(tuple([a] if isinstance(a, int) else a) for a in axes)
    xa = [a % x.ndim for a in ax[0]]
    ya = [a % y.ndim for a in ax[1]]
    letters = iter(string.ascii_letters)
    xs = [next(letters) for _ in range(x.ndim)]
    ys = [next(letters) for _ in range(y.ndim)]
    for i, j in zip(xa, ya, strict=True):
        ys[j] = xs[i]
    out = [c for i, c in enumerate(xs) if i not in xa] + [c for j, c in enumerate(ys)
                                                          if j not in ya]
    return einsum(f"{''.join(xs)},{''.join(ys)}->{''.join(out)}", x, y)


@composed
def vecdot(x: Any, y: Any, /, *, axis: int = -1) -> Any:
    """Dot product along ``axis`` with broadcasting; composed."""
    return sum(x * y, axis=axis)


@composed
def outer(x: Any, y: Any, /) -> Any:
    return reshape(x, (-1, 1)) * reshape(y, (1, -1))


@primitive(saves_args=False)
def inv(x, /):
    return ns(x).linalg.inv(x)


defvjp(inv, lambda g, ans, x: -(matrix_transpose(ans) @ g @ matrix_transpose(ans)))
defjvp(inv, lambda t, ans, x: -(ans @ t @ ans))


@primitive(broadcasts=True)
def solve(a, b, /):
    return ns(a, b).linalg.solve(a, b)


def _solve_vjp_a(g, ans, a, b):
    gb = solve(matrix_transpose(a), g)
    if b.ndim == 1:
        return -expand_dims(gb, axis=-1) * expand_dims(ans, axis=-2)
    return -(gb @ matrix_transpose(ans))


defvjp(solve, _solve_vjp_a, lambda g, ans, a, b: solve(matrix_transpose(a), g))


@primitive()
def det(x, /):
    return ns(x).linalg.det(x)


defvjp(det, lambda g, ans, x: expand_dims(expand_dims(g * ans, axis=-1), axis=-1)
       * matrix_transpose(inv(x)))


@primitive(name="norm")
def _norm2(x, /, *, axis=None, keepdims=False):
    xp = ns(x)
    return xp.sqrt(xp.sum(x * x, axis=axis, keepdims=keepdims))


def _norm2_vjp(g, ans, x, *, axis=None, keepdims=False):
    # subgradient 0 at the origin instead of 0/0
    scale = _expand(ans, x, axis, keepdims)
    nonzero = greater(scale, 0)
    return where(nonzero, _expand(g, x, axis, keepdims) * x / where(nonzero, scale, 1.0), 0.0)


defvjp(_norm2, _norm2_vjp)


@composed
def norm(x: Any, /, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Any:
    """Vector norms of any order, and the Frobenius norm of matrices."""
    if ord in (None, 2, "fro") and not (ord == 2 and axis is not None and not
                                        isinstance(axis, int) and len(axis) == 2):
        if ord == 2 and axis is None and x.ndim == 2:
            raise ShapeError("norm: the spectral norm (ord=2 of a matrix) is not supported; "
                             "use ord='fro' or pass axis= for vector norms")
        return _norm2(x, axis=axis, keepdims=keepdims)
    if isinstance(ord, str) or (axis is not None and not isinstance(axis, int)):
        raise ShapeError(f"norm: ord={ord!r} with axis={axis!r} is not supported; vector "
                         "norms of any order and ord='fro' are")
    a = abs(x)
    if ord == float("inf"):
        return max(a, axis=axis, keepdims=keepdims)
    if ord == -float("inf"):
        return min(a, axis=axis, keepdims=keepdims)
    if ord == 1:
        return sum(a, axis=axis, keepdims=keepdims)
    if ord == 0:
        return sum(astype(not_equal(x, 0), dtype=x.dtype), axis=axis, keepdims=keepdims)
    return sum(a**ord, axis=axis, keepdims=keepdims) ** (1.0 / ord)



from .comparison import greater, not_equal  # noqa: E402
from .elementwise import abs, astype, where  # noqa: E402
from .reductions import _expand, max, min, sum  # noqa: E402
from .shape import broadcast_to, expand_dims, reshape, squeeze  # noqa: E402
