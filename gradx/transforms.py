"""Function transforms: grad, value_and_grad, vjp, jvp, jacobian, hessian, hvp, checkpoint.

Arguments and results may be Tensors, raw arrays or nested tuples, lists and dicts of them.
Raw arrays in give raw arrays out. Called on Tensors that an outer transform tracks, a
transform records its own backward pass, so transforms nest to any order.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from ._backend import backend_of
from ._forward import push_forward
from ._primitive import _mixed_error
from ._tape import _grad_enabled, backward
from ._tensor import Tensor
from ._tree import flatten, unflatten
from .errors import GradxError, ShapeError
from .ops.elementwise import positive

_SCALARS = (bool, int, float)
# True while an outer transform evaluates its function: a leaf it passes in is then tracked
_inside: ContextVar[bool] = ContextVar("gradx_inside_transform", default=False)


class _evaluating:
    """Inside: grad mode on and ``_inside`` set (a plain class: entered on every transform
    call, where a generator-based context manager costs several microseconds)."""

    __slots__ = ("_tokens",)

    def __enter__(self) -> None:
        self._tokens = (_inside.set(True), _grad_enabled.set(True))

    def __exit__(self, *exc: Any) -> None:
        inside, grad_on = self._tokens
        _grad_enabled.reset(grad_on)
        _inside.reset(inside)


class _Input:
    """One differentiated leaf of the arguments: the Tensor f sees, and how to return results."""

    __slots__ = ("tensor", "raw", "tracked")

    def __init__(self, value: Any) -> None:
        self.raw = raw = not isinstance(value, Tensor)
        if not raw:
            self.tracked = value.requires_grad and _grad_enabled.get() and (
                value._node is not None or _inside.get())
            if self.tracked:
                self.tensor = positive(value)  # a fresh node, still linked to the outer graph
            else:
                self.tensor = Tensor._make(value.data, value._backend, None, False, [0])
                self.tensor.requires_grad_()
        else:
            self.tracked = False
            if isinstance(value, _SCALARS):
                from .ops.creation import tensor

                self.tensor = tensor(float(value)).requires_grad_()
            else:
                self.tensor = Tensor(value).requires_grad_()

    def result(self, value: Any, keep_graph: bool = False) -> Any:
        """A gradient or tangent in the form the caller gave this input."""
        if value is None:
            value = self.tensor._backend.xp.zeros(self.tensor.data.shape,
                                                  dtype=self.tensor.data.dtype)
        if self.raw:
            return value.data if isinstance(value, Tensor) else value
        if isinstance(value, Tensor):
            return value if (self.tracked or keep_graph) else value.detach()
        return Tensor._make(value, self.tensor._backend, None, False, [0])


def _prepare(args: tuple, argnums: tuple[int, ...]) -> tuple[list, list[list[_Input]], list]:
    """Replace the differentiated arguments' leaves by input Tensors."""
    args = list(args)
    inputs, treedefs = [], []
    for n in argnums:
        if n >= len(args):
            raise ShapeError(f"grad: argnums {argnums} refers to argument {n}, but only "
                             f"{len(args)} were passed")
        leaves, tdef = flatten(args[n])
        if tdef is None:  # a bare leaf, the common case
            ins = [_Input(leaves[0])]
            args[n] = ins[0].tensor
        else:
            ins = [_Input(v) for v in leaves]
            args[n] = unflatten(tdef, [i.tensor for i in ins])
        inputs.append(ins)
        treedefs.append(tdef)
    return args, inputs, treedefs


def _flat(inputs: list[list[_Input]]) -> tuple[list[_Input], bool, bool]:
    """Every input leaf in order; whether an outer transform tracks any; whether all were
    passed as raw arrays (one loop where three comprehensions each cost a frame)."""
    flat: list[_Input] = []
    for ins in inputs:
        flat += ins
    tracked, raw = False, True
    for i in flat:
        tracked = tracked or i.tracked
        raw = raw and i.raw
    return flat, tracked, raw


def _as_tensor(out: Any, what: str) -> Tensor:
    if isinstance(out, Tensor):
        return out
    if isinstance(out, _SCALARS):
        from .ops.creation import tensor

        return tensor(float(out))
    try:
        return Tensor(out)
    except GradxError as exc:
        raise _mixed_error(TypeError)(f"{what} is a {type(out).__name__}, not a Tensor, an "
                                      "array or a Python number") from exc


def _check_fn(f: Any, name: str) -> None:
    if not callable(f):
        raise _mixed_error(TypeError)(f"{name}: f must be callable, got {type(f).__name__}")


def _ones_like(t: Tensor) -> Any:
    return t._backend.xp.ones(t.data.shape, dtype=t.data.dtype)


def _value_result(out: Tensor, raw: bool, tracked: bool) -> Any:
    if raw:
        return out.data
    return out if tracked else out.detach()


def value_and_grad(f: Callable, argnums: int | tuple[int, ...] = 0,
                   has_aux: bool = False) -> Callable:
    """``f``'s value and its gradient with respect to ``argnums`` (f must return a scalar)."""
    _check_fn(f, "value_and_grad")
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)

    @functools.wraps(f)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        args, inputs, treedefs = _prepare(args, nums)
        with _evaluating():
            result = f(*args, **kwargs)
        out, aux = result if has_aux else (result, None)
        out = _as_tensor(out, "grad: the output of f")
        if out.size != 1:
            raise ShapeError(f"grad needs f to return a scalar, got shape {out.shape}; use "
                             "gx.vjp or gx.jacobian for non-scalar outputs")
        flat, tracked, raw = _flat(inputs)
        grads = _grads_of([out], [_ones_like(out)], flat, tracked)
        per_arg = _results(inputs, treedefs, grads, False)
        value = _value_result(out, raw, tracked)
        g = per_arg[0] if single else per_arg
        return ((value, aux), g) if has_aux else (value, g)

    return wrapped


def _grads_of(roots: list[Tensor], seeds: list[Any], inputs: list[_Input],
              create_graph: bool) -> list[Any]:
    live_roots, live_seeds = [], []
    for r, s in zip(roots, seeds, strict=True):
        if r.requires_grad:
            live_roots.append(r)
            live_seeds.append(s)
    if not live_roots:
        return [None] * len(inputs)
    tensors = []
    for i in inputs:
        tensors.append(i.tensor)
    return backward(live_roots, live_seeds, retain_graph=create_graph,
                    create_graph=create_graph, inputs=tensors)


def grad(f: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False) -> Callable:
    """The gradient of scalar-valued ``f``; ``grad(grad(f))`` gives higher orders."""
    vg = value_and_grad(f, argnums, has_aux)

    @functools.wraps(f)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if has_aux:
            (_, aux), g = vg(*args, **kwargs)
            return g, aux
        return vg(*args, **kwargs)[1]

    return wrapped


def vjp(f: Callable, *primals: Any, has_aux: bool = False) -> Any:
    """``(out, vjp_fn)``; ``vjp_fn(cotangent)`` returns one gradient per primal, callable
    many times."""
    _check_fn(f, "vjp")
    args, inputs, treedefs = _prepare(primals, tuple(range(len(primals))))
    with _evaluating():
        result = f(*args)
    out, aux = result if has_aux else (result, None)
    out_leaves, out_def = flatten(out)
    outs = [_as_tensor(o, "vjp: an output of f") for o in out_leaves]
    flat, tracked, raw = _flat(inputs)

    def vjp_fn(cotangent: Any) -> tuple[Any, ...]:
        cts, _ = flatten(cotangent)
        if len(cts) != len(outs):
            raise ShapeError(f"vjp_fn got {len(cts)} cotangents for {len(outs)} outputs")
        seeds = []
        for o, c in zip(outs, cts, strict=True):
            c = _seed(o, c, tracked)
            if tuple(c.shape) != o.shape:
                raise ShapeError(f"vjp_fn: cotangent shape {tuple(c.shape)} does not match "
                                 f"output shape {o.shape}")
            seeds.append(c)
        live = [(o, s) for o, s in zip(outs, seeds, strict=True) if o.requires_grad]
        seeded = any(isinstance(s, Tensor) and s.requires_grad for s in seeds)
        grads = backward([o for o, _ in live], [s for _, s in live], retain_graph=True,
                         create_graph=tracked or seeded,
                         inputs=[i.tensor for i in flat]) if live else [None] * len(flat)
        return _results(inputs, treedefs, grads, seeded)

    value = unflatten(out_def, [_value_result(o, raw, tracked) for o in outs])
    return (value, vjp_fn, aux) if has_aux else (value, vjp_fn)


def _seed(out: Tensor, c: Any, keep_tensor: bool) -> Any:
    if isinstance(c, Tensor):
        return c if (keep_tensor or c.requires_grad) else c.data
    if isinstance(c, _SCALARS):
        return out._backend.xp.full(out.data.shape, c, dtype=out.data.dtype)
    return c


# -- forward mode ---------------------------------------------------------------------

def _with_tangents(name: str, primals: Any, tangents: Any) -> tuple:
    """Inputs for ``primals`` (as :func:`_prepare`) and their tangents, flattened alike, and
    whether every primal was a raw array."""
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ShapeError(f"{name}: {len(primals)} primals but {len(tangents)} tangents")
    args, inputs, treedefs = _prepare(primals, tuple(range(len(primals))))
    flat, _, raw = _flat(inputs)
    tans = []
    for tan in tangents:
        tans += flatten(tan)[0]
    if len(tans) != len(flat):
        raise ShapeError(f"{name}: tangents must have the same structure as primals")
    return args, inputs, treedefs, flat, tans, raw


def _push_tangents(roots: list[Tensor], flat: list[_Input], tans: list[Any],
                   record: bool = False) -> tuple:
    """Tangents of ``roots`` along ``tans``, recorded when an outer transform tracks them or
    ``record`` asks for it; returns them and whether an outer transform tracks them."""
    tracked = False
    for i, t in zip(flat, tans, strict=True):
        if i.tracked or (isinstance(t, Tensor) and t.requires_grad):
            tracked = True
            break
    create = tracked or record
    seeds = {}
    for i, t in zip(flat, tans, strict=True):
        x = i.tensor
        seed = _tangent_value(x, t, create)
        if create and not isinstance(seed, Tensor):  # recorded rules see Tensors only
            seed = Tensor._make(seed, x._backend, None, False, [0])
        seeds[x._node if x._node is not None else x] = seed
    token = _grad_enabled.set(create)
    try:
        return push_forward(roots, seeds, create), tracked
    finally:
        _grad_enabled.reset(token)


def jvp(f: Callable, primals: tuple | list, tangents: tuple | list) -> tuple[Any, Any]:
    """Forward mode: ``(f(*primals), J @ tangents)`` in one forward pass plus a tangent pass
    over the recorded primitives, using each primitive's JVP rule (or its transposed VJP)."""
    _check_fn(f, "jvp")
    args, _, _, flat, tans, raw = _with_tangents("jvp", primals, tangents)
    with _evaluating():
        out = f(*args)
    out_leaves, out_def = flatten(out)
    outs = [_as_tensor(o, "jvp: an output of f") for o in out_leaves]
    tangent, create = _push_tangents(outs, flat, tans)
    results = []
    for o, t in zip(outs, tangent, strict=True):
        if t is None:
            t = o._backend.xp.zeros(o.data.shape, dtype=o.data.dtype)
        if raw:
            results.append(t.data if isinstance(t, Tensor) else t)
        elif isinstance(t, Tensor):
            results.append(t if create else t.detach())
        else:
            results.append(Tensor._make(t, o._backend, None, False, [0]))
    value = unflatten(out_def, [_value_result(o, raw, create) for o in outs])
    return value, unflatten(out_def, results)


def _tangent_value(x: Tensor, t: Any, create: bool) -> Any:
    if isinstance(t, Tensor):
        if t._backend is not x._backend:
            from ._backend import check_same

            check_same("jvp", x._backend, t._backend)
        raw = t if create else t.data
    elif isinstance(t, _SCALARS):
        raw = x._backend.xp.full(x.data.shape, t, dtype=x.data.dtype)
    else:
        raw = t
    if tuple(raw.shape) != x.shape:
        raise ShapeError(f"jvp: tangent of shape {tuple(raw.shape)} for a primal of shape "
                         f"{x.shape}")
    if raw.dtype != x.dtype:
        from .ops.elementwise import astype

        raw = astype(raw, dtype=x.dtype)
    return raw


# -- derived transforms ---------------------------------------------------------------

def jacobian(f: Callable, argnums: int | tuple[int, ...] = 0, mode: str = "rev") -> Callable:
    """The Jacobian, shaped ``out.shape + in.shape``, by rows of VJPs (``"rev"``) or
    columns of JVPs (``"fwd"``)."""
    if mode not in ("rev", "fwd"):
        raise ValueError(f"jacobian: mode must be 'rev' or 'fwd', got {mode!r}")
    _check_fn(f, "jacobian")
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)

    @functools.wraps(f)
    def jac(*args: Any) -> Any:
        if any(n >= len(args) for n in nums):
            raise ShapeError(f"jacobian: argnums {argnums} refers to an argument beyond the "
                             f"{len(args)} passed")
        results = [_jacobian_one(f, args, n, mode) for n in nums]
        return results[0] if single else tuple(results)

    return jac


def _jacobian_one(f: Callable, args: tuple, n: int, mode: str) -> Any:
    from .ops.creation import zeros_like
    from .ops.shape import reshape, stack

    x = args[n]

    def f_n(xn: Any) -> Any:
        call = list(args)
        call[n] = xn
        return f(*call)

    if mode == "rev":
        out, vjp_fn = vjp(f_n, x)
        out_shape = tuple(out.shape)
        basis = _basis(out)
        rows = [vjp_fn(e)[0] for e in basis]
        in_shape = tuple(getattr(x, "shape", ()))
    else:
        in_shape = tuple(getattr(x, "shape", ()))
        basis = _basis(x if not isinstance(x, _SCALARS) else _as_tensor(x, "input"))
        cols = []
        out_shape = None
        for e in basis:
            out, t = jvp(f_n, (x,), (e,))
            out_shape = tuple(out.shape)
            cols.append(t)
        if not cols:
            out_shape = tuple(f_n(x).shape)
        rows = cols
    if not rows:
        z = zeros_like(_as_tensor(x, "input"))
        return reshape(z, out_shape + in_shape) if z.size else z
    stacked = stack([_to_tensor_like(r) for r in rows], axis=0)
    if mode == "fwd":
        # columns were stacked first: move the input axes to the back
        from .ops.shape import permute_dims

        flat = reshape(stacked, (len(rows), -1))
        stacked = permute_dims(flat, (1, 0))
    result = reshape(stacked, out_shape + in_shape)
    return result.data if not isinstance(x, Tensor) and isinstance(result, Tensor) else result


def _to_tensor_like(v: Any) -> Any:
    return v if isinstance(v, Tensor) else Tensor(v)


def _basis(t: Any) -> list[Any]:
    data = t.data if isinstance(t, Tensor) else t
    backend = t._backend if isinstance(t, Tensor) else backend_of(data)
    xp = backend.xp
    n = 1
    for s in data.shape:
        n *= s
    eye = xp.eye(n, dtype=data.dtype)
    return [xp.reshape(eye[k, ...], tuple(data.shape)) for k in range(n)]  # standard: full key


def hessian(f: Callable, argnums: int = 0) -> Callable:
    """Second derivatives, forward-over-reverse: ``jacobian(jacobian(f), mode="fwd")``."""
    return jacobian(jacobian(f, argnums, mode="rev"), argnums, mode="fwd")


def hvp(f: Callable, primals: tuple | list, tangents: tuple | list) -> tuple[Any, ...]:
    """Hessian-vector product of scalar ``f`` without forming H, reverse-over-forward:
    ``H v`` is the gradient of the directional derivative ``<grad f, v>``. One recorded
    forward pass, one recorded tangent pass, one backward pass; unlike forward-over-reverse,
    no work goes into the gradient itself, which is never needed.

    Returns a tuple shaped like ``primals``."""
    args, inputs, treedefs, flat, tans, _ = _with_tangents("hvp", primals, tangents)
    with _evaluating():
        out = _as_tensor(f(*args), "hvp: the output of f")
        if out.size != 1:
            raise ShapeError(f"hvp needs f to return a scalar, got shape {out.shape}")
        (slope,), tracked = _push_tangents([out], flat, tans, record=True)
    if isinstance(slope, Tensor):
        grads = _grads_of([slope], [_ones_like(slope)], flat, tracked)
    else:  # f is at most linear in its inputs along the tangents: H v = 0
        grads = [None] * len(flat)
    return _results(inputs, treedefs, grads, tracked)


def _results(inputs: list[list[_Input]], treedefs: list, values: list, keep_graph: bool) -> tuple:
    """One result per differentiated argument, shaped as the caller passed it."""
    it = iter(values)
    out = []
    for ins, tdef in zip(inputs, treedefs, strict=True):
        if tdef is None:  # a bare leaf
            out.append(ins[0].result(next(it), keep_graph))
        else:
            out.append(unflatten(tdef, [i.result(next(it), keep_graph) for i in ins]))
    return tuple(out)


def stop_gradient(x: Any) -> Any:
    """``x`` treated as a constant by every transform."""
    return x.detach() if isinstance(x, Tensor) else x


