"""Singular values and their derivatives to second order.

For ``x = U diag(s) V^T`` (reduced SVD, ``k = min(m, n)`` values) the first derivative maps
are ``Q(t) = diag(U^T t V)`` (JVP) and ``P(w) = U diag(w) V^T`` (VJP). Their derivatives in
``x`` are one bilinear map ``R(w, Y)``, self-adjoint in ``Y``, and its contraction
``C(Y, Z)_l = <R(e_l, Y), Z>``. With ``E = U^T Y V``:

    R(w, Y) = U (A o E + B o E^T) V^T + (I - U U^T) Y V D V^T + U D U^T Y (I - V V^T)

where ``D = diag(w / s)``, ``A_ij = (w_j - w_i) a_ij + (w_j + w_i) b_ij`` and
``B_ij = (w_j - w_i) a_ij - (w_j + w_i) b_ij`` off the diagonal, ``a_ij = 1 / 2(s_j - s_i)``,
``b_ij = 1 / 2(s_j + s_i)``. Written this way a tie ``s_i == s_j`` only divides where
``w_i != w_j`` (where the function itself has a kink): the nuclear norm's Hessian is finite
at repeated singular values. Third derivatives are refused by name.
"""

from __future__ import annotations

from typing import Any

from .._backend import ns
from .._primitive import defjvp, defvjp, primitive


def _svd(x: Any) -> tuple:
    xp = ns(x)
    u, s, vh = xp.linalg.svd(x, full_matrices=False)
    return xp, u, s, xp.matrix_transpose(vh)


@primitive(saves_ans=False)
def svdvals(x, /):
    """Singular values (..., min(m, n)) of matrices (..., m, n), in descending order."""
    xp = ns(x)
    if hasattr(xp.linalg, "svdvals"):
        return xp.linalg.svdvals(x)
    return xp.linalg.svd(x, full_matrices=False)[1]


@primitive(saves_ans=False)
def _svdvals_push(t, x, /, *, transpose=False):
    """The derivative of ``svdvals`` at ``x`` applied to ``t``: the JVP ``Q(t) = diag(U^T t
    V)`` (``transpose=False``, ``t`` (..., m, n)), or the VJP ``P(t) = U diag(t) V^T``."""
    xp, u, s, v = _svd(x)
    if transpose:
        return (u * t[..., None, :]) @ xp.matrix_transpose(v)
    return xp.sum(u * (t @ v), axis=-2)


def _safe_inverse(xp: Any, d: Any) -> Any:
    nonzero = d != 0
    return xp.where(nonzero, 1 / xp.where(nonzero, d, xp.ones_like(d)), xp.zeros_like(d))


def _coefficients(xp: Any, s: Any) -> tuple:
    """``a``, ``b`` (..., k, k) (zero on the diagonal and where undefined) and ``1 / s``."""
    k = s.shape[-1]
    off = 1 - xp.eye(k, dtype=s.dtype)
    a = off * _safe_inverse(xp, 2 * (s[..., None, :] - s[..., :, None]))
    b = off * _safe_inverse(xp, 2 * (s[..., None, :] + s[..., :, None]))
    return a, b, _safe_inverse(xp, s)


@primitive(saves_ans=False)
def _svdvals_curv(p, q, x, /, *, vector=False):
    """Second derivatives of ``svdvals`` at ``x``: ``R(w=p, Y=q)`` (..., m, n), or with
    ``vector=True`` ``C(Y=p, Z=q)`` (..., k); see the module docstring."""
    xp, u, s, v = _svd(x)
    a, b, inv_s = _coefficients(xp, s)
    ut, vt = xp.matrix_transpose(u), xp.matrix_transpose(v)
    if not vector:
        w, y = p, q
        yv, uty = y @ v, ut @ y
        e = ut @ yv
        dw = w[..., None, :] - w[..., :, None]
        sw = w[..., None, :] + w[..., :, None]
        m = (dw * a + sw * b) * e + (dw * a - sw * b) * xp.matrix_transpose(e)
        d = w * inv_s
        return (u @ m @ vt + ((yv - u @ e) * d[..., None, :]) @ vt
                + u @ (d[..., :, None] * (uty - e @ vt)))
    y, z = p, q
    yv, zv, uty, utz = y @ v, z @ v, ut @ y, ut @ z
    ey, ez = ut @ yv, ut @ zv
    p1, p2 = ey * ez, xp.matrix_transpose(ey) * ez
    sa, sb = a * (p1 + p2), b * (p1 - p2)
    first = (xp.sum(sa, axis=-2) - xp.sum(sa, axis=-1) + xp.sum(sb, axis=-2)
             + xp.sum(sb, axis=-1))
    rest = xp.sum(yv * (zv - u @ ez), axis=-2) + xp.sum(uty * (utz - ez @ vt), axis=-1)
    return first + rest * inv_s


# R(w, Y) is linear in w and Y and self-adjoint in Y; C(Y, Z) = <R(e_l, Y), Z> per l.
# No rule for x: third derivatives of singular values are refused by name.
def _curv_vjp_p(g, ans, p, q, x, *, vector=False):
    return _svdvals_curv(q, g, x, vector=True) if not vector else _svdvals_curv(g, q, x)


def _curv_vjp_q(g, ans, p, q, x, *, vector=False):
    return _svdvals_curv(p, g, x) if not vector else _svdvals_curv(g, p, x)


defvjp(_svdvals_curv, _curv_vjp_p, _curv_vjp_q)
defjvp(_svdvals_curv,
       lambda t, ans, p, q, x, *, vector=False: _svdvals_curv(t, q, x, vector=vector),
       lambda t, ans, p, q, x, *, vector=False: _svdvals_curv(p, t, x, vector=vector))


def _push_vjp_x(g, ans, t, x, *, transpose=False):
    # P(t) = U diag(t) V^T: its VJP in x is R(t, g); Q(t): R(g, t)
    return _svdvals_curv(t, g, x) if transpose else _svdvals_curv(g, t, x)


def _push_jvp_x(tx, ans, t, x, *, transpose=False):
    return _svdvals_curv(t, tx, x) if transpose else _svdvals_curv(t, tx, x, vector=True)


defvjp(_svdvals_push, lambda g, ans, t, x, *, transpose=False:
       _svdvals_push(g, x, transpose=not transpose), _push_vjp_x)
defjvp(_svdvals_push, lambda tt, ans, t, x, *, transpose=False:
       _svdvals_push(tt, x, transpose=transpose), _push_jvp_x)
defvjp(svdvals, lambda g, ans, x: _svdvals_push(g, x, transpose=True))
defjvp(svdvals, lambda t, ans, x: _svdvals_push(t, x))
