"""Nested transforms whose inner function closes over what an outer transform differentiates,
and checkpointed sub-programs, compared with ``torch.func`` compositions.

A random program ``L(y, r1, ...)`` (no in-place steps: ``torch.func`` takes the functional
form) becomes ``inner(y; x) = L(y + h(x), r1 * (1 + h(x)), r2, ...)`` with ``h(x) = 0.01 *
mean(tanh(x))`` for an outer variable ``x`` of shape (3,): the inner function depends on
``x`` only through its closure. Each composition (``COMPOSITIONS``) is written once per
library, gradx with ``gx.grad / jvp / vjp / hvp / hessian / value_and_grad`` and PyTorch with
``torch.func``; two or three levels, first to third order.

``checkpoint_spec`` draws which values of a program come from ``gx.checkpoint`` around a
sub-program and which of its reads are arguments rather than closed over (see
``runner.execute``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

import gradx as gx

from . import runner
from .programs import Program

SCALE = 0.01  # h(x) moves every value by at most 0.01: inside the domains programs keep


class Nest:
    """The inner function in both libraries, and the fixed points and directions."""

    def __init__(self, prog: Program) -> None:
        self.prog = prog
        _, self.gl = runner.gx_functions(prog)
        _, self.tl = runner.th_functions(prog)
        rng = np.random.default_rng(17 + len(prog.steps))
        y0 = prog.leaves[0]
        self.a = {"y0": y0, "x0": rng.standard_normal(3), "yc": rng.standard_normal(3),
                  "v": rng.standard_normal(y0.shape), "t": rng.standard_normal(y0.shape),
                  "tx": rng.standard_normal(3),
                  "vv": rng.standard_normal(y0.shape + y0.shape)}

    def gx_inner(self, y: Any, x: Any) -> Any:
        h = gx.mean(gx.tanh(x)) * SCALE
        rest = [gx.tensor(r) for r in self.prog.leaves[1:]]
        if rest:
            rest[0] = rest[0] * (1.0 + h)
        return self.gl(y + h, *rest)

    def th_inner(self, y: Any, x: Any) -> Any:
        h = torch.mean(torch.tanh(x)) * SCALE
        rest = [torch.tensor(r) for r in self.prog.leaves[1:]]
        if rest:
            rest[0] = rest[0] * (1.0 + h)
        return self.tl(y + h, *rest)

    def gxa(self, name: str) -> Any:
        return gx.tensor(self.a[name])

    def tha(self, name: str) -> Any:
        return torch.tensor(self.a[name])


# Each composition: (order it needs, gradx version, torch version); both return a tuple of
# arrays in the same order. The torch side uses reverse mode only: a JVP is the VJP of the
# (linear) VJP, and the Hessian jacrev(jacrev). PyTorch's forward-mode formulas are less
# tested: grad of torch.func.jvp through torch.linalg.solve is half the true value
# (d/dx jvp(A -> sum(solve(A + x, b)), A0, T) = 2 b T / (A0 + x)^3 for 1x1: gradx has it,
# torch.func gives half), which made a wrong oracle.


def _tjvp(f: Callable, primals: tuple, tangents: tuple) -> tuple:
    """``torch.func.jvp`` by reverse mode: the VJP of ``u -> J^T u`` applied to the tangents."""
    out, back = torch.func.vjp(f, *primals)
    _, back2 = torch.func.vjp(back, torch.zeros_like(out))
    (jt,) = back2(tuple(tangents))
    return out, jt


def _gx_grad_grad(n: Nest) -> tuple:
    f = n.gx_inner
    return (gx.grad(lambda x: gx.sum(gx.grad(lambda y: f(y, x))(n.gxa("y0")) * n.gxa("v")))(
        n.gxa("x0")),)


def _th_grad_grad(n: Nest) -> tuple:
    f, tf = n.th_inner, torch.func
    return (tf.grad(lambda x: torch.sum(tf.grad(lambda y: f(y, x))(n.tha("y0")) * n.tha("v")))(
        n.tha("x0")),)


def _gx_jvp_grad(n: Nest) -> tuple:
    f = n.gx_inner
    return gx.jvp(lambda x: gx.grad(lambda y: f(y, x))(n.gxa("y0")), (n.gxa("x0"),),
                  (n.gxa("tx"),))


def _th_jvp_grad(n: Nest) -> tuple:
    f, tf = n.th_inner, torch.func
    return _tjvp(lambda x: tf.grad(lambda y: f(y, x))(n.tha("y0")), (n.tha("x0"),),
                  (n.tha("tx"),))


def _gx_grad_jvp(n: Nest) -> tuple:
    f = n.gx_inner
    return (gx.grad(lambda x: gx.jvp(lambda y: f(y, x), (n.gxa("y0"),), (n.gxa("t"),))[1])(
        n.gxa("x0")),)


def _th_grad_jvp(n: Nest) -> tuple:
    f, tf = n.th_inner, torch.func
    return (tf.grad(lambda x: _tjvp(lambda y: f(y, x), (n.tha("y0"),), (n.tha("t"),))[1])(
        n.tha("x0")),)


def _gx_grad_vjp(n: Nest) -> tuple:
    f = n.gx_inner

    def outer(x: Any) -> Any:
        out, back = gx.vjp(lambda y: f(y, x), n.gxa("y0"))
        (g,) = back(gx.ones_like(out))
        return gx.sum(g * n.gxa("v")) + out

    return (gx.grad(outer)(n.gxa("x0")),)


def _th_grad_vjp(n: Nest) -> tuple:
    f, tf = n.th_inner, torch.func

    def outer(x: Any) -> Any:
        out, back = tf.vjp(lambda y: f(y, x), n.tha("y0"))
        (g,) = back(torch.ones_like(out))
        return torch.sum(g * n.tha("v")) + out

    return (tf.grad(outer)(n.tha("x0")),)


def _gx_grad_value_and_grad(n: Nest) -> tuple:
    f = n.gx_inner

    def outer(x: Any) -> Any:
        val, g = gx.value_and_grad(lambda y: f(y, x))(n.gxa("y0"))
        return val * 0.5 + gx.sum(g * n.gxa("v"))

    return (gx.grad(outer)(n.gxa("x0")),)


def _th_grad_value_and_grad(n: Nest) -> tuple:
    f, tf = n.th_inner, torch.func

    def outer(x: Any) -> Any:
        g, val = tf.grad_and_value(lambda y: f(y, x))(n.tha("y0"))
        return val * 0.5 + torch.sum(g * n.tha("v"))

    return (tf.grad(outer)(n.tha("x0")),)


def _gx_grad_hvp(n: Nest) -> tuple:
    f = n.gx_inner
    return (gx.grad(lambda x: gx.sum(
        gx.hvp(lambda y: f(y, x), (n.gxa("y0"),), (n.gxa("t"),))[0] * n.gxa("v")))(
            n.gxa("x0")),)


def _th_grad_hvp(n: Nest) -> tuple:
    f, tf = n.th_inner, torch.func

    def hvp(x: Any) -> Any:
        return _tjvp(tf.grad(lambda y: f(y, x)), (n.tha("y0"),), (n.tha("t"),))[1]

    return (tf.grad(lambda x: torch.sum(hvp(x) * n.tha("v")))(n.tha("x0")),)


def _gx_grad_hessian(n: Nest) -> tuple:
    f = n.gx_inner
    return (gx.grad(lambda x: gx.sum(gx.hessian(lambda y: f(y, x))(n.gxa("y0"))
                                     * n.gxa("vv")))(n.gxa("x0")),)


def _th_grad_hessian(n: Nest) -> tuple:
    f, tf = n.th_inner, torch.func
    return (tf.grad(lambda x: torch.sum(tf.jacrev(tf.jacrev(lambda y: f(y, x)))(n.tha("y0"))
                                        * n.tha("vv")))(n.tha("x0")),)


def _gx_jvp_grad_grad(n: Nest) -> tuple:
    f = n.gx_inner

    def mid(x: Any) -> Any:
        return gx.grad(lambda y: gx.sum(gx.grad(lambda z: f(z, x * y))(n.gxa("y0"))
                                        * n.gxa("v")))(n.gxa("yc"))

    return gx.jvp(mid, (n.gxa("x0"),), (n.gxa("tx"),))


def _th_jvp_grad_grad(n: Nest) -> tuple:
    f, tf = n.th_inner, torch.func

    def mid(x: Any) -> Any:
        return tf.grad(lambda y: torch.sum(tf.grad(lambda z: f(z, x * y))(n.tha("y0"))
                                           * n.tha("v")))(n.tha("yc"))

    return _tjvp(mid, (n.tha("x0"),), (n.tha("tx"),))


def _gx_grad_grad_jvp(n: Nest) -> tuple:
    f = n.gx_inner

    def mid(y: Any, x: Any) -> Any:
        return gx.jvp(lambda z: f(z, x * y), (n.gxa("y0"),), (n.gxa("t"),))[1]

    return (gx.grad(lambda x: gx.sum(gx.grad(lambda y: mid(y, x))(n.gxa("yc"))
                                     * n.gxa("tx")))(n.gxa("x0")),)


def _th_grad_grad_jvp(n: Nest) -> tuple:
    f, tf = n.th_inner, torch.func

    def mid(y: Any, x: Any) -> Any:
        return _tjvp(lambda z: f(z, x * y), (n.tha("y0"),), (n.tha("t"),))[1]

    return (tf.grad(lambda x: torch.sum(tf.grad(lambda y: mid(y, x))(n.tha("yc"))
                                        * n.tha("tx")))(n.tha("x0")),)


# name -> (derivative order of L it needs, gradx, torch)
COMPOSITIONS: dict[str, tuple[int, Callable, Callable]] = {
    "grad(grad)": (2, _gx_grad_grad, _th_grad_grad),
    "jvp(grad)": (2, _gx_jvp_grad, _th_jvp_grad),
    "grad(jvp)": (2, _gx_grad_jvp, _th_grad_jvp),
    "grad(vjp)": (2, _gx_grad_vjp, _th_grad_vjp),
    "grad(value_and_grad)": (2, _gx_grad_value_and_grad, _th_grad_value_and_grad),
    "grad(hvp)": (3, _gx_grad_hvp, _th_grad_hvp),
    "grad(hessian)": (3, _gx_grad_hessian, _th_grad_hessian),
    "jvp(grad(grad))": (3, _gx_jvp_grad_grad, _th_jvp_grad_grad),
    "grad(grad(jvp))": (3, _gx_grad_grad_jvp, _th_grad_grad_jvp),
}


def check_nested(prog: Program, name: str, backend: str = "numpy",
                 compiled: bool | None = None) -> bool:
    """Compare composition ``name`` on ``prog``; False when ``prog`` lacks the order."""
    order, gxf, thf = COMPOSITIONS[name]
    if runner.order_of(prog) < order:
        return False
    if name == "grad(hessian)" and prog.leaves[0].size > 6:
        return False
    n = Nest(prog)
    try:
        want = [w.detach() for w in thf(n)]
    except RuntimeError:
        # PyTorch has no answer: some of its third-order formulas modify a saved tensor in
        # place ("MaskedFill ... is at version 1"); gradx is not checked on this program
        return False
    hot = gx._hot.using_compiled(compiled) if compiled is not None else runner._null()
    where = f"[{name}, {backend}, {'compiled' if compiled else 'python'}]"
    with gx.use_backend(backend), gx.default_dtype("float64"), hot:
        try:
            got = gxf(n)
            for k, (g, w) in enumerate(zip(got, want, strict=True)):
                runner.compare(f"{name} result {k}", g, w, shape=tuple(w.shape))
        except runner.Mismatch as exc:
            raise runner.Mismatch(f"{where} {exc}\ninner(y; x) = L(y + h(x), r1 * (1 + h(x)), "
                                  f"...), L ({prog.n_ops} ops):\n{prog.describe()}") from None
        except Exception as exc:
            raise runner.Mismatch(f"{where} gradx raised {type(exc).__name__}: {exc}\n"
                                  f"L ({prog.n_ops} ops):\n{prog.describe()}") from exc
    return True


def checkpoint_spec(prog: Program, draw_int: Callable[[int, int], int]) -> dict:
    """One or two checkpointed values: ``{k: (start, args)}`` with ``start <= k`` op steps,
    and a random part of the sub-program's outside reads passed as arguments (the rest
    closed over). ``draw_int(lo, hi)`` draws inclusive integers."""
    ops = [i for i, s in enumerate(prog.steps) if s.key != "leaf"]
    spec: dict = {}
    for _ in range(draw_int(1, 2) if ops else 0):
        k = ops[draw_int(0, len(ops) - 1)]
        earlier = [i for i in ops if i <= k][-5:]
        start = earlier[draw_int(0, len(earlier) - 1)]
        if any(not (k < i or j < start) for j, (i, _) in spec.items()):
            continue  # ranges overlap
        reads = sorted({a for i in range(start, k + 1) for a in prog.steps[i].args
                        if a < start})
        spec[k] = (start, frozenset(a for a in reads if draw_int(0, 1)))
    return spec
