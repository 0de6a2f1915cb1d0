"""Gradient checking and cross-backend comparison helpers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._tensor import Tensor
from .errors import GradxError


def _host(x: Any) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.numpy()
    if isinstance(x, np.ndarray | np.generic | int | float | bool | list | tuple):
        return np.asarray(x)
    from ._backend import backend_of

    return backend_of(x).to_numpy(x)


def assert_allclose(actual: Any, desired: Any, rtol: float = 1e-7, atol: float = 0.0,
                    err_msg: str = "") -> None:
    """``numpy.testing.assert_allclose`` for Tensors and arrays of any backend."""
    a, d = _host(actual), _host(desired)
    if a.shape != d.shape:
        raise AssertionError(f"shapes differ: {a.shape} vs {d.shape}. {err_msg}")
    np.testing.assert_allclose(a, d, rtol=rtol, atol=atol, err_msg=err_msg)


def _inner(xs: Sequence[Any], ys: Sequence[Any]) -> float:
    return float(sum(np.sum(_host(x).astype(np.float64) * _host(y).astype(np.float64))
                     for x, y in zip(xs, ys, strict=True)))


def _to64(x: Tensor) -> Tensor:
    from .ops.elementwise import astype

    return astype(x.detach(), dtype=x.backend.dtype("float64"))


def _randn_like(rng: np.random.Generator, x: Tensor) -> Tensor:
    return Tensor(x.backend.from_numpy(rng.standard_normal(x.shape), dtype=x.dtype))


def _perturb(xs: list[Tensor], us: list[Tensor], eps: float) -> list[Tensor]:
    return [Tensor(x.data + eps * u.data) for x, u in zip(xs, us, strict=True)]


def _flat_out(out: Any) -> list[Tensor]:
    from ._tree import flatten

    leaves, _ = flatten(out)
    return [o if isinstance(o, Tensor) else Tensor(o) for o in leaves]


def check_grads(f: Callable, *args: Any, modes: Sequence[str] = ("rev", "fwd"), order: int = 2,
                eps: float = 1e-6, rtol: float = 1e-5, atol: float = 1e-6,
                seed: int = 0) -> None:
    """Check ``f``'s derivatives against central finite differences in float64.

    Compares ``<v, J u>`` (finite differences along a random direction ``u``) with
    ``<VJP(v), u>`` and ``<v, JVP(u)>`` for a random ``v``: a few evaluations per order
    instead of one per element. Then checks the VJP and JVP themselves the same way, up
    to ``order``. Also asserts every gradient has its input's shape and dtype."""
    from .transforms import jvp, vjp

    xs = [_to64(a if isinstance(a, Tensor) else Tensor(a)) for a in args]
    rng = np.random.default_rng(seed)
    us = [_randn_like(rng, x) for x in xs]
    outs = _flat_out(f(*xs))
    vs = [_randn_like(rng, o) for o in outs]
    plus = _flat_out(f(*_perturb(xs, us, eps)))
    minus = _flat_out(f(*_perturb(xs, us, -eps)))
    fd = [Tensor((p.data - m.data) / (2 * eps)) for p, m in zip(plus, minus, strict=True)]
    numeric = _inner(vs, fd)
    tol = atol + rtol * (abs(numeric) + 1.0)

    if "rev" in modes:
        _, vjp_fn = vjp(f, *xs)
        cts = vjp_fn(vs if len(outs) > 1 else vs[0])
        for x, c in zip(xs, cts, strict=True):
            _assert_like(c, x, "VJP")
        analytic = _inner(cts, us)
        if abs(analytic - numeric) > tol:
            raise AssertionError(f"reverse mode: <VJP(v), u> = {analytic!r} but finite "
                                 f"differences give <v, J u> = {numeric!r}")
        if order > 1:
            def vjp_of(*ys: Any) -> Any:
                return vjp(f, *ys)[1](vs if len(outs) > 1 else vs[0])

            check_grads(vjp_of, *xs, modes=modes, order=order - 1, eps=eps, rtol=rtol,
                        atol=atol, seed=seed + 1)
    if "fwd" in modes:
        _, tangent = jvp(f, tuple(xs), tuple(us))
        touts = _flat_out(tangent)
        for o, t in zip(outs, touts, strict=True):
            _assert_like(t, o, "JVP")
        analytic = _inner(vs, touts)
        if abs(analytic - numeric) > tol:
            raise AssertionError(f"forward mode: <v, JVP(u)> = {analytic!r} but finite "
                                 f"differences give <v, J u> = {numeric!r}")
        if order > 1:
            def jvp_of(*ys: Any) -> Any:
                return jvp(f, tuple(ys), tuple(us))[1]

            check_grads(jvp_of, *xs, modes=modes, order=order - 1, eps=eps, rtol=rtol,
                        atol=atol, seed=seed + 1)


def _assert_like(g: Any, x: Tensor, what: str) -> None:
    shape = tuple(g.shape)
    if shape != x.shape or g.dtype != x.dtype:
        raise AssertionError(f"{what} result has shape {shape} dtype {g.dtype}, expected "
                             f"{x.shape} {x.dtype} (a missing unbroadcast or a stray cast)")


__all__ = ["assert_allclose", "check_grads", "GradxError"]

from .compare import ComparisonReport, compare_backends  # noqa: E402, F401
