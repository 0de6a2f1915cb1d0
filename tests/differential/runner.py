"""Run a ``Program`` in gradx and in PyTorch (both float64) and compare.

Checks (``MODES``): ``values`` (every loss term's value), ``backward`` (``loss.backward()``
and the leaves' ``.grad``), ``grad`` (``gx.grad`` over all leaves), ``double`` (a
``create_graph=True`` backward, then the backward of ``<grad, v>``), ``hvp`` (``gx.hvp``),
``hessian`` (``gx.hessian`` in the first leaf, when it has at most 16 elements) and ``jvp``
(``gx.jvp`` of the loss terms). The reference for the derivatives is PyTorch on the
functional form of the program (an in-place update or setitem becomes out-of-place), which
is what the in-place program means whenever PyTorch accepts it; where PyTorch's autograd
refuses the in-place program (a saved value was overwritten), gradx may raise a gradx error
instead of answering, and must otherwise answer like the functional form.

Tolerance: ``|gradx - torch| <= RTOL * (|torch| + max|torch|) + ATOL * scale`` elementwise
(``scale``: the largest value or first derivative anywhere in the program, so that a result
which is 0 up to the rounding of large intermediates passes), NaN where PyTorch has NaN.
A mismatch raises ``Mismatch`` naming the check, the output, the worst element and the
program.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

import gradx as gx

from .oracle import OPS_BY_KEY, GxCtx, ThCtx
from .programs import Program

RTOL = 1e-7
ATOL = 1e-9  # times the largest value or first derivative of the program (Reference.scale)
MODES = ("values", "backward", "grad", "double", "hvp", "hessian", "jvp")


class Mismatch(AssertionError):
    """gradx and PyTorch disagree (or gradx raised where PyTorch answers)."""


def report(config: Any, line: str) -> None:
    """Print a module's count line on the terminal even while pytest captures output."""
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        with capture.global_and_fixture_disabled():
            print("\n" + line)
    else:
        print(line)


def _np(x: Any) -> np.ndarray | None:
    if x is None:
        return None
    if isinstance(x, torch.Tensor):
        return x.detach().numpy()
    if isinstance(x, gx.Tensor):
        return np.asarray(x.numpy(), dtype=np.float64)
    return np.asarray(gx.tensor(x).numpy(), dtype=np.float64)


def compare(what: str, got: Any, want: Any, shape: tuple | None = None,
            rtol: float = RTOL, atol: float = 1e-12) -> None:
    """Raise ``Mismatch`` unless ``got`` (gradx) matches ``want`` (PyTorch). ``None`` on
    either side (no gradient reached) means zeros of ``shape``. ``atol``: the rounding noise
    of the program (``ATOL * Reference.scale``), for results that are 0 up to it."""
    g, w = _np(got), _np(want)
    if g is None and w is None:
        return
    if g is None:
        g = np.zeros(shape if shape is not None else w.shape)
    if w is None:
        w = np.zeros(shape if shape is not None else g.shape)
    if g.shape != w.shape:
        raise Mismatch(f"{what}: gradx shape {g.shape}, torch shape {w.shape}")
    nan_g, nan_w = np.isnan(g), np.isnan(w)
    if np.any(nan_g != nan_w):
        i = np.unravel_index(np.argmax(nan_g != nan_w), g.shape)
        raise Mismatch(f"{what}: NaN pattern differs at {tuple(int(k) for k in i)}: "
                       f"gradx {g[i]!r}, torch {w[i]!r}\n gradx {g!r}\n torch {w!r}")
    fin = ~nan_w
    with np.errstate(invalid="ignore"):
        same_inf = np.isinf(w) & (g == w)
    scale = np.max(np.abs(w[fin & ~np.isinf(w)]), initial=0.0)
    with np.errstate(invalid="ignore"):
        err = np.where(fin & ~same_inf, np.abs(g - w), 0.0)
        tol = rtol * (np.abs(np.where(np.isinf(w), 0, w)) + scale) + atol
    bad = (err > tol) | np.isnan(err)
    if np.any(bad):
        i = np.unravel_index(np.argmax(np.where(bad, err, -1)), g.shape)
        raise Mismatch(f"{what}: max error {float(np.max(np.where(bad, err, 0))):.3e} at "
                       f"{tuple(int(k) for k in i)}: gradx {g[i]!r}, torch {w[i]!r} "
                       f"(scale {scale:.3e})\n gradx {np.array2string(g.ravel()[:12])}\n"
                       f" torch {np.array2string(w.ravel()[:12])}")


def execute(prog: Program, leaves: list, lib: str, ctx: Any,
            ckpt: dict[int, tuple[int, frozenset]] | None = None) -> list:
    """Every step's value: ``lib`` is ``"gx"`` or ``"th"``. ``ckpt`` (gradx only) maps a step
    ``k`` to ``(start, args)``: its value comes from ``gx.checkpoint(body)(*args' values)``,
    where ``body`` recomputes steps ``start..k`` and reads the other values from before
    ``start`` from the enclosing program (closed over)."""
    env: list = []
    j = 0
    for k, s in enumerate(prog.steps):
        if s.key == "leaf":
            env.append(leaves[j])
            j += 1
            continue
        if ckpt and k in ckpt:
            env.append(_checkpointed(prog, env, k, *ckpt[k], ctx))
            continue
        row = OPS_BY_KEY[s.key]
        fn = row.gx if lib == "gx" else row.th
        env.append(fn(ctx, [env[a] for a in s.args], s.params))
    return env


def _checkpointed(prog: Program, env: list, k: int, start: int, args: frozenset,
                  ctx: Any) -> Any:
    inside = range(start, k + 1)
    reads = sorted({a for i in inside for a in prog.steps[i].args if a < start})
    passed = [a for a in reads if a in args]

    def body(*vals: Any) -> Any:
        local = {a: env[a] for a in reads}  # closed over: the enclosing program's values
        local.update(zip(passed, vals, strict=True))
        for i in inside:
            s = prog.steps[i]
            if s.key == "leaf":
                local[i] = env[i]
                continue
            local[i] = OPS_BY_KEY[s.key].gx(ctx, [local[a] for a in s.args], s.params)
        return local[k]

    return gx.checkpoint(body)(*[env[a] for a in passed])


def gx_functions(prog: Program, ckpt: dict | None = None) -> tuple[Callable, Callable]:
    """``(outs, loss)`` in gradx: the loss terms' values and the scalar loss."""
    def outs(*leaves: Any) -> tuple:
        env = execute(prog, list(leaves), "gx", GxCtx(), ckpt)
        return tuple(env[o] for o in prog.outputs)

    def loss(*leaves: Any) -> Any:
        ctx = GxCtx()
        env = execute(prog, list(leaves), "gx", ctx, ckpt)
        terms = [gx.sum(env[o] * ctx.const(w)) for o, w in zip(prog.outputs, prog.weights,
                                                                strict=True)]
        return functools.reduce(operator.add, terms)

    return outs, loss


def th_functions(prog: Program, functional: bool = True) -> tuple[Callable, Callable]:
    def outs(*leaves: Any) -> tuple:
        env = execute(prog, list(leaves), "th", ThCtx(functional))
        return tuple(env[o] for o in prog.outputs)

    def loss(*leaves: Any) -> Any:
        ctx = ThCtx(functional)
        env = execute(prog, list(leaves), "th", ctx)
        terms = [torch.sum(env[o] * ctx.const(w)) for o, w in zip(prog.outputs, prog.weights,
                                                                   strict=True)]
        return functools.reduce(operator.add, terms)

    return outs, loss


def order_of(prog: Program) -> int:
    """The highest derivative order every op of ``prog`` supports in gradx."""
    return min((OPS_BY_KEY[s.key].order for s in prog.steps if s.key != "leaf"), default=3)


class Reference:
    """PyTorch's answers for one program, computed once and shared by every gradx run."""

    def __init__(self, prog: Program, seed: int = 0) -> None:
        self.prog = prog
        rng = np.random.default_rng(seed + 7919 * len(prog.steps))
        self.vs = [rng.standard_normal(a.shape) for a in prog.leaves]
        self.ts = [rng.standard_normal(a.shape) for a in prog.leaves]
        outs, loss = th_functions(prog, functional=True)
        self.t_outs, self.t_loss = outs, loss
        leaves = [torch.tensor(a, requires_grad=True) for a in prog.leaves]
        values = outs(*leaves)
        self.values = [v.detach().clone() for v in values]
        lval = loss(*leaves)
        self.loss = lval.detach().clone()
        grads = torch.autograd.grad(lval, leaves, create_graph=True, allow_unused=True)
        self.grads = [None if g is None else g.detach().clone() for g in grads]
        mags = [float(torch.max(torch.abs(t))) for t in [*self.values, *(
            g for g in self.grads if g is not None)] if t.numel() and torch.isfinite(t).all()]
        self.atol = ATOL * max([1.0, *mags]) + 1e-12
        s = sum((torch.sum(g * torch.from_numpy(v)) for g, v in zip(grads, self.vs, strict=True)
                 if g is not None and g.requires_grad), torch.zeros((), dtype=torch.float64))
        if s.requires_grad:
            hv = torch.autograd.grad(s, leaves, allow_unused=True)
        else:
            hv = [None] * len(leaves)
        self.hvp = [None if h is None else h.detach().clone() for h in hv]
        self.hessian = None
        if prog.leaves and order_of(prog) > 1 and 0 < prog.leaves[0].size <= 16:
            rest = [torch.tensor(a) for a in prog.leaves[1:]]
            x0 = torch.tensor(prog.leaves[0])
            self.hessian = torch.autograd.functional.hessian(lambda x: loss(x, *rest), x0)
        primals = tuple(torch.tensor(a) for a in prog.leaves)
        tangents = tuple(torch.from_numpy(t) for t in self.ts)
        # reverse mode only (the VJP of the VJP): PyTorch's forward-mode formulas are the
        # less tested oracle (see nested.py)
        _, jv = torch.autograd.functional.jvp(outs, primals, tangents)
        self.jvp = [j.detach().clone() for j in jv]
        self.inplace_refused = False
        if prog.has_inplace():
            self.inplace_refused = self._inplace_refused()

    def _inplace_refused(self) -> bool:
        """Whether PyTorch's autograd refuses the in-place program (an overwritten saved
        value), and its values equal the functional form's when it accepts it."""
        _, loss = th_functions(self.prog, functional=False)
        leaves = [torch.tensor(a, requires_grad=True) for a in self.prog.leaves]
        try:
            lval = loss(*leaves)
            torch.autograd.grad(lval, leaves, allow_unused=True)
        except RuntimeError as exc:
            if "inplace" in str(exc) or "in-place" in str(exc):
                return True
            raise
        return False


def _leaves(prog: Program, requires_grad: bool) -> list:
    return [gx.tensor(a, requires_grad=requires_grad) for a in prog.leaves]


def _tensors(arrays: list) -> tuple:
    return tuple(gx.tensor(a) for a in arrays)


def check(prog: Program, ref: Reference | None = None, backend: str = "numpy",
          compiled: bool | None = None, modes: tuple = MODES,
          ckpt: dict | None = None) -> Reference:
    """Compare gradx with PyTorch on ``prog`` in every mode of ``modes``; raise ``Mismatch``
    with the program listing on the first disagreement. Returns the PyTorch reference."""
    ref = ref if ref is not None else Reference(prog)
    hot = gx._hot.using_compiled(compiled) if compiled is not None else _null()
    if order_of(prog) < 2:
        modes = tuple(m for m in modes if m not in ("double", "hvp", "hessian"))
    with gx.use_backend(backend), gx.default_dtype("float64"), hot:
        for mode in modes:
            try:
                _CHECKS[mode](prog, ref, ckpt)
            except Mismatch as exc:
                raise Mismatch(f"[{mode}, {backend}, "
                               f"{'compiled' if compiled else 'python'}] {exc}\n"
                               f"program ({prog.n_ops} ops):\n{prog.describe()}") from None
            except gx.GradxError as exc:
                if ref.inplace_refused:
                    continue  # PyTorch refuses the in-place program too
                raise Mismatch(f"[{mode}, {backend}, "
                               f"{'compiled' if compiled else 'python'}] gradx raised "
                               f"{type(exc).__name__}: {exc}\nwhere torch answers; "
                               f"program ({prog.n_ops} ops):\n{prog.describe()}") from exc
            except Exception as exc:
                raise Mismatch(f"[{mode}, {backend}, "
                               f"{'compiled' if compiled else 'python'}] gradx raised "
                               f"{type(exc).__name__}: {exc}\nprogram ({prog.n_ops} ops):\n"
                               f"{prog.describe()}") from exc
    return ref


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def _check_values(prog: Program, ref: Reference, ckpt: dict | None) -> None:
    outs, _ = gx_functions(prog, ckpt)
    got = outs(*_leaves(prog, False))
    for k, (g, w) in enumerate(zip(got, ref.values, strict=True)):
        compare(f"value of v{prog.outputs[k]}", g, w, atol=ref.atol)


def _check_backward(prog: Program, ref: Reference, ckpt: dict | None) -> None:
    _, loss = gx_functions(prog, ckpt)
    leaves = _leaves(prog, True)
    lval = loss(*leaves)
    compare("loss", lval, ref.loss, atol=ref.atol)
    lval.backward()
    for k, (x, w) in enumerate(zip(leaves, ref.grads, strict=True)):
        compare(f"backward: leaf{k}.grad", x.grad, w, shape=x.shape, atol=ref.atol)


def _check_grad(prog: Program, ref: Reference, ckpt: dict | None) -> None:
    _, loss = gx_functions(prog, ckpt)
    n = len(prog.leaves)
    grads = gx.grad(loss, argnums=tuple(range(n)))(*_leaves(prog, False))
    for k, (g, w) in enumerate(zip(grads, ref.grads, strict=True)):
        compare(f"gx.grad: d loss / d leaf{k}", g, w, shape=prog.leaves[k].shape, atol=ref.atol)


def _check_double(prog: Program, ref: Reference, ckpt: dict | None) -> None:
    _, loss = gx_functions(prog, ckpt)
    leaves = _leaves(prog, True)
    loss(*leaves).backward(create_graph=True)
    grads = [x.grad for x in leaves]
    for x in leaves:
        x.grad = None
    terms = [gx.sum(g * gx.tensor(v)) for g, v in zip(grads, ref.vs, strict=True)
             if isinstance(g, gx.Tensor) and g.requires_grad]
    if terms:
        functools.reduce(operator.add, terms).backward()
    for k, (x, w) in enumerate(zip(leaves, ref.hvp, strict=True)):
        compare(f"create_graph backward: H v for leaf{k}", x.grad, w, shape=x.shape, atol=ref.atol)


def _check_hvp(prog: Program, ref: Reference, ckpt: dict | None) -> None:
    _, loss = gx_functions(prog, ckpt)
    got = gx.hvp(loss, _tensors(prog.leaves), _tensors(ref.vs))
    for k, (g, w) in enumerate(zip(got, ref.hvp, strict=True)):
        compare(f"gx.hvp: leaf{k}", g, w, shape=prog.leaves[k].shape, atol=ref.atol)


def _check_hessian(prog: Program, ref: Reference, ckpt: dict | None) -> None:
    if ref.hessian is None:
        return
    _, loss = gx_functions(prog, ckpt)
    rest = _tensors(prog.leaves[1:])
    h = gx.hessian(lambda x: loss(x, *rest))(gx.tensor(prog.leaves[0]))
    compare("gx.hessian in leaf0", h, ref.hessian, atol=ref.atol)


def _check_jvp(prog: Program, ref: Reference, ckpt: dict | None) -> None:
    outs, _ = gx_functions(prog, ckpt)
    vals, tans = gx.jvp(outs, _tensors(prog.leaves), _tensors(ref.ts))
    for k, (v, w) in enumerate(zip(vals, ref.values, strict=True)):
        compare(f"gx.jvp primal out of v{prog.outputs[k]}", v, w, atol=ref.atol)
    for k, (t, w) in enumerate(zip(tans, ref.jvp, strict=True)):
        compare(f"gx.jvp tangent of v{prog.outputs[k]}", t, w, shape=tuple(w.shape), atol=ref.atol)


_CHECKS = {"values": _check_values, "backward": _check_backward, "grad": _check_grad,
           "double": _check_double, "hvp": _check_hvp, "hessian": _check_hessian,
           "jvp": _check_jvp}


def shrink(prog: Program, fails: Callable[[Program], bool]) -> Program:
    """A smaller program that still ``fails``: one loss term when one suffices (else as few
    as it needs, dropped greedily), and only the steps they depend on."""
    for o in prog.outputs:
        cand = prog.restrict([o])
        if fails(cand):
            return cand
    outs = list(prog.outputs)
    for o in list(outs):
        rest = [k for k in outs if k != o]
        if rest and fails(prog.restrict(rest)):
            outs = rest
    return prog.restrict(outs)


def check_or_shrink(prog: Program, ref: Reference | None = None, **kw: Any) -> None:
    """``check``; on a mismatch, raise the mismatch of ``shrink(prog)`` instead (the cut-down
    program), without hypothesis's own shrinking, which costs minutes per failure."""
    try:
        check(prog, ref, **kw)
    except Mismatch as exc:
        def fails(q: Program) -> bool:
            try:
                check(q, **kw)
            except Mismatch:
                return True
            except Exception:
                return False
            return False

        small = shrink(prog, fails)
        try:
            check(small, **kw)
        except Mismatch as smaller:
            raise smaller from None
        raise exc from None
