"""Matrix products and linear algebra."""

from __future__ import annotations

import builtins
import functools
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


def _raw(x: Any) -> Any:
    return x.data if hasattr(x, "_backend") else x


@functools.lru_cache(maxsize=1024)
def _einsum_vjp_plan(subscripts: str, shapes: tuple, argnum: int) -> tuple:
    """How operand ``argnum``'s gradient is computed: (the einsum spec, the sizes of the
    identity matrices it takes after the other operands, the shape to reshape its result to
    or None, the axes to sum back to size 1, whether to broadcast to the operand's shape)."""
    terms, output = _parse_einsum(subscripts, list(shapes))
    target, shape = terms[argnum], shapes[argnum]
    others = [t for i, t in enumerate(terms) if i != argnum]
    # A letter repeated within this operand ("ii", a diagonal) gets a fresh letter for each
    # repeat, tied to the first by an identity matrix: the gradient is then embedded on that
    # diagonal (zero elsewhere) and no einsum of the rule repeats a letter, so the rule is
    # differentiable again for higher orders.
    used = set(subscripts) | set(output).union(*terms)
    spare = (c for c in string.ascii_letters if c not in used)
    letters: list[str] = []
    eyes = []
    # the sizes of the letters of the rule's einsum: the forward output's, the other
    # operands', the identity matrices'
    sizes: dict[str, int] = {}
    for t, sh in zip(terms, shapes, strict=True):
        for c, n in zip(t, sh, strict=True):
            if c in output:
                sizes[c] = builtins.max(n, sizes.get(c, 1))
    for t, sh in (p for i, p in enumerate(zip(terms, shapes, strict=True)) if i != argnum):
        for c, n in zip(t, sh, strict=True):
            sizes[c] = builtins.max(n, sizes.get(c, 1))
    for c, n in zip(target, shape, strict=True):
        if c in letters:
            fresh = next(spare)
            others.append(c + fresh)
            eyes.append(n)
            sizes[c] = sizes[fresh] = n
            c = fresh
        letters.append(c)
    available = set(output).union(*others)
    kept = "".join(c for c in letters if c in available)
    full = tuple(sizes[c] if c in kept else 1 for c in letters)
    reshaped = full if kept != "".join(letters) else None  # letters summed in this operand
    # an axis this operand broadcasts (size 1 against n, as an ellipsis allows)
    wide = tuple(d for d, n in enumerate(shape) if n == 1 and full[d] != 1)
    after = tuple(1 if d in wide else n for d, n in enumerate(full))
    spec = ",".join([output, *others]) + "->" + kept
    return spec, tuple(eyes), reshaped, wide, after != shape


def _einsum_vjp(argnum, g, ans, *operands, subscripts):
    shape = tuple(operands[argnum].shape)
    spec, eyes, reshaped, wide, widen = _einsum_vjp_plan(
        subscripts, tuple(tuple(o.shape) for o in operands), argnum)
    consts = [o for i, o in enumerate(operands) if i != argnum]
    if eyes:
        raw = _raw(g)
        consts += [ns(raw).eye(n, dtype=raw.dtype) for n in eyes]
    grad = _einsum(g, *consts, subscripts=spec)
    if reshaped is not None:
        grad = reshape(grad, reshaped)
    if wide:
        grad = sum(grad, axis=wide, keepdims=True)
    if widen:
        grad = broadcast_to(grad, shape)
    return grad


def _einsum_jvp(argnum, t, ans, *operands, subscripts):
    ops = list(operands)
    ops[argnum] = t
    return _einsum(*ops, subscripts=subscripts)


defvjp_argnum(_einsum, _einsum_vjp)
defjvp_argnum(_einsum, _einsum_jvp)


@composed
def einsum(subscripts: str, /, *operands: Any) -> Any:
    """Einstein summation; differentiable in every operand, diagonals (``"ii->i"``) and
    broadcast ellipsis dimensions included."""
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
    """``x`` with ``a @ x == b``, the Array API's way: a 1-D ``b`` of shape (n,) is one
    vector for every matrix of ``a`` (..., n, n); any other ``b`` is a stack of matrices
    (..., n, k) whose batch dimensions broadcast against ``a``'s."""
    xp = ns(a, b)
    if b.ndim == 1:
        return xp.linalg.solve(a, b[:, None])[..., 0]
    return xp.linalg.solve(a, b)


def _solve_vec(a, b, /):
    """``solve`` of the stack ``a`` (..., n, n) with a stack of vectors ``b`` (..., n)."""
    return squeeze(solve(a, expand_dims(b, axis=-1)), axis=-1)


def _solve_vjp_a(g, ans, a, b):
    if b.ndim == 1:
        gb = _solve_vec(matrix_transpose(a), g)
        return -expand_dims(gb, axis=-1) * expand_dims(ans, axis=-2)
    return -(solve(matrix_transpose(a), g) @ matrix_transpose(ans))


def _solve_vjp_b(g, ans, a, b):
    if b.ndim == 1:
        return _solve_vec(matrix_transpose(a), g)
    return solve(matrix_transpose(a), g)


def _solve_jvp_a(t, ans, a, b):
    if b.ndim == 1:
        return -_solve_vec(a, squeeze(t @ expand_dims(ans, axis=-1), axis=-1))
    return -solve(a, t @ ans)


# the tape sums b's gradient over the batch dimensions it was broadcast along
defvjp(solve, _solve_vjp_a, _solve_vjp_b)
defjvp(solve, _solve_jvp_a, lambda t, ans, a, b: solve(a, t))


@primitive()
def det(x, /):
    return ns(x).linalg.det(x)


def _invertible(ans: Any) -> bool:
    """Whether no determinant in ``ans`` is zero (a 0-d one without a reduction)."""
    nonzero = _raw(ans) != 0
    return bool(nonzero) if nonzero.ndim == 0 else bool(ns(nonzero).all(nonzero))


def _det_vjp(g, ans, x):
    # det(x) inv(x)^T where every matrix is invertible, else the transposed adjugate, which
    # is also defined (and the gradient) at singular matrices
    if _invertible(ans):
        return expand_dims(expand_dims(g * ans, axis=-1), axis=-1) * matrix_transpose(inv(x))
    return expand_dims(expand_dims(g, axis=-1), axis=-1) * matrix_transpose(_adjugate(x))


def _det_jvp(t, ans, x):
    if _invertible(ans):  # d det = det(x) tr(inv(x) t)
        return ans * sum(matrix_transpose(inv(x)) * t, axis=(-2, -1))
    return sum(matrix_transpose(_adjugate(x)) * t, axis=(-2, -1))


defvjp(det, _det_vjp)
defjvp(det, _det_jvp)


def _svd_adjugate_parts(x: Any) -> tuple:
    """For ``x = U diag(s) V^T`` (..., n, n): ``U``, ``V``, ``c = det(U) det(V)`` (..., 1, 1),
    ``p`` (..., n) with ``p_i = prod_{j != i} s_j`` and ``q`` (..., n, n) with
    ``q_ik = prod_{j not in (i, k)} s_j`` (zero diagonal). Zero singular values are counted,
    never divided by, so every product is exact at singular matrices."""
    xp = ns(x)
    u, s, vh = xp.linalg.svd(x, full_matrices=False)
    c = xp.asarray(xp.linalg.det(u) * xp.linalg.det(vh))
    zero = s == 0
    logs = xp.log(xp.where(zero, xp.ones_like(s), s))
    total = xp.sum(logs, axis=-1, keepdims=True)
    zi = xp.astype(zero, s.dtype)
    nz = xp.sum(zi, axis=-1, keepdims=True)
    p = xp.where(nz - zi == 0, xp.exp(total - logs), xp.zeros_like(s))
    pair = logs[..., :, None] + logs[..., None, :]
    q = xp.where((nz[..., None] - zi[..., :, None] - zi[..., None, :] == 0),
                 xp.exp(total[..., None] - pair), xp.zeros_like(pair))
    q = q * (1 - xp.eye(s.shape[-1], dtype=s.dtype))
    return u, xp.matrix_transpose(vh), c[..., None, None], p, q


@primitive(saves_ans=False)
def _adjugate(x, /):
    """The adjugate (..., n, n): ``det(x) inv(x)`` where ``x`` is invertible, and defined at
    every matrix: ``adj(U S V^T) = det(U) det(V) V adj(S) U^T``."""
    u, v, c, p, q = _svd_adjugate_parts(x)
    return c * ((v * p[..., None, :]) @ ns(x).matrix_transpose(u))


@primitive(saves_ans=False)
def _adjugate_push(t, x, /, *, transpose=False):
    """The derivative of the adjugate at ``x`` applied to ``t`` (``transpose=False``: the
    JVP ``c V D(U^T t V) U^T``) or its transpose (the VJP ``c U D(V^T t U) V^T``), where
    ``D(E) = -E * q + diag(q @ diag(E))`` is the adjugate's derivative at ``diag(s)``."""
    xp = ns(t, x)
    u, v, c, p, q = _svd_adjugate_parts(x)
    if transpose:
        u, v = v, u
    e = xp.matrix_transpose(u) @ t @ v
    n = e.shape[-1]
    diag = xp.sum(e * xp.eye(n, dtype=e.dtype), axis=-1)
    d = -e * q + xp.eye(n, dtype=e.dtype) * xp.sum(q * diag[..., None, :], axis=-1)[..., None]
    return c * (v @ d @ xp.matrix_transpose(u))


# linear in t; no rule for x (third derivatives of det at singular matrices are refused)
defvjp(_adjugate_push, lambda g, ans, t, x, *, transpose=False:
       _adjugate_push(g, x, transpose=not transpose))
defjvp(_adjugate_push, lambda tt, ans, t, x, *, transpose=False:
       _adjugate_push(tt, x, transpose=transpose))
defvjp(_adjugate, lambda g, ans, x: _adjugate_push(g, x, transpose=True))
defjvp(_adjugate, lambda t, ans, x: _adjugate_push(t, x))


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


from .comparison import greater  # noqa: E402
from .elementwise import where  # noqa: E402
from .reductions import _expand, sum  # noqa: E402
from .shape import broadcast_to, expand_dims, reshape, squeeze  # noqa: E402
from .spectral import _svdvals_push, svdvals  # noqa: E402, F401
