"""Function transforms: grad, value_and_grad, vjp, jvp, jacobian, hessian, hvp, checkpoint.

Arguments and results may be Tensors, raw arrays or nested tuples, lists and dicts of them.

Transforms nest to any depth, and compose with a user's tape. Each call gives f fresh input
Tensors and asks the backward walk (or tangent pass) for their gradients only, so two levels
never mix their perturbations. Whether the call records its own pass is decided from the
graph: it does when grad mode is on and f's result depends on a Tensor that requires grad
other than its own inputs (the input of an outer transform, a model parameter a user will
call backward() on, or a Tensor argument that requires grad, which is tracked as in
torch.func). Its results then come back as Tensors carrying that graph; otherwise raw arrays
in give raw arrays out, and Tensors in give detached Tensors out.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from . import _forward, _tape
from ._backend import backend_of
from ._primitive import _mixed_error
from ._tape import Scope, _grad_enabled, backward
from ._tensor import Tensor
from ._tree import flatten, unflatten
from .errors import GradxError, ShapeError
from .ops.elementwise import positive

_SCALARS = (bool, int, float)


def _evaluating() -> Any:
    """Grad mode on while f runs, whatever the caller's mode: the transform differentiates
    what f records. A Scope (compiled where the extension is): an interrupt cannot leave
    grad mode set, and it costs less than a generator-based context manager."""
    return Scope(_GRAD_ON_VARS, _GRAD_ON_VALUES)


_GRAD_ON_VARS, _GRAD_ON_VALUES = (_grad_enabled,), (True,)


class _Input:
    """One differentiated leaf of the arguments: the Tensor f sees, and how to return results."""

    __slots__ = ("tensor", "raw", "tracked")

    def __init__(self, value: Any) -> None:
        self.raw = raw = not isinstance(value, Tensor)
        if not raw:
            # a Tensor that requires grad is tracked (as in torch.func): f sees a fresh node
            # linked to it, so its gradient keeps the graph back to it
            self.tracked = value.requires_grad and _grad_enabled.get()
            if self.tracked:
                self.tensor = positive(value)  # a fresh node, still linked to the outer graph
            else:
                # same memory, so the same version counter: an in-place update of value
                # while f runs is seen by backward (as for any alias)
                self.tensor = Tensor._make(value.data, value._backend, None, False,
                                           value._version)
                self.tensor.requires_grad_()
        else:
            self.tracked = False
            if isinstance(value, _SCALARS):
                from .ops.creation import tensor

                self.tensor = tensor(float(value)).requires_grad_()
            else:
                self.tensor = Tensor(value).requires_grad_()

    def result(self, value: Any, recorded: bool) -> Any:
        """A gradient or tangent in the form the caller gave this input; a Tensor with its
        graph when the pass ``recorded`` (it depends on an outer level), even for a raw
        input."""
        if value is None:
            value = self.tensor._backend.xp.zeros(self.tensor.data.shape,
                                                  dtype=self.tensor.data.dtype)
        if isinstance(value, Tensor):
            if recorded:
                return value
            return value.data if self.raw else value.detach()
        if self.raw and not recorded:
            return value
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


def _flat(inputs: list[list[_Input]]) -> tuple[list[_Input], bool]:
    """Every input leaf in order, and whether all were passed as raw arrays."""
    flat: list[_Input] = []
    for ins in inputs:
        flat += ins
    raw = True
    for i in flat:
        if not i.raw:
            raw = False
            break
    return flat, raw


def _key(t: Tensor) -> Any:
    """What a walk files ``t``'s gradient or tangent under: its node, or the leaf itself."""
    return t._node if t._node is not None else t


def _foreign(leaves: set, targets: set) -> bool:
    """Whether ``leaves`` hold one that is not a target and still requires grad (a finished
    transform's input leaf no longer does: see :func:`_retire`)."""
    if leaves <= targets:
        return False
    for leaf in leaves - targets:
        if leaf.requires_grad:
            return True
    return False


def _retire(flat: list[_Input]) -> None:
    """The call is over: its fresh input leaves become constants, so that a graph recorded
    through them (its gradients, when an outer level flows) does not look, to the outer
    level's check, as if it depended on a Tensor someone still differentiates."""
    for i in flat:
        if not i.tracked:
            i.tensor.requires_grad = False


def _outer(outs: list[Tensor], flat: list[_Input]) -> bool:
    """Whether the pass over ``outs`` must record: grad mode is on and they depend on a
    Tensor that requires grad other than the inputs (an outer transform's input, a tracked
    argument, a parameter of a user's tape). One topological sort, collecting leaves."""
    if not _grad_enabled.get():
        return False
    targets = set()
    for i in flat:
        targets.add(_key(i.tensor))
    roots = []
    for o in outs:
        if o._node is not None:
            roots.append(o._node)
        elif o.requires_grad and o not in targets:
            return True
    if not roots:
        return False
    leaves: set = set()
    _tape._toposort_impl(roots, leaves)
    return _foreign(leaves, targets)


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


def _value_result(out: Tensor, raw: bool, recorded: bool) -> Any:
    """f's value: with its graph when it depends on an outer level."""
    if recorded:
        return out
    return out.data if raw else out.detach()


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
        flat, raw = _flat(inputs)
        grads, recorded = _grads_of([out], [_ones_like(out)], flat)
        _retire(flat)
        per_arg = _results(inputs, treedefs, grads, recorded)
        value = _value_result(out, raw, recorded)
        g = per_arg[0] if single else per_arg
        return ((value, aux), g) if has_aux else (value, g)

    return wrapped


def _grads_of(roots: list[Tensor], seeds: list[Any],
              inputs: list[_Input]) -> tuple[list[Any], bool]:
    """The inputs' gradients, and whether the walk recorded: the backward pass decides that
    from the graph it walks anyway (``create_graph=None``), at no extra cost."""
    live_roots, live_seeds = [], []
    for r, s in zip(roots, seeds, strict=True):
        if r.requires_grad:
            live_roots.append(r)
            live_seeds.append(s)
    if not live_roots:
        return [None] * len(inputs), False
    tensors = []
    for i in inputs:
        tensors.append(i.tensor)
    return backward(live_roots, live_seeds, create_graph=None, inputs=tensors)


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
    flat, raw = _flat(inputs)
    outer = _outer(outs, flat)  # decided now: the value is returned before any vjp_fn call
    wired = [o.requires_grad for o in outs]  # before _retire: f may return an input itself
    _retire(flat)  # vjp_fn still walks to the leaves: a walk's targets need not require grad

    def vjp_fn(cotangent: Any) -> tuple[Any, ...]:
        cts, _ = flatten(cotangent)
        if len(cts) != len(outs):
            raise ShapeError(f"vjp_fn got {len(cts)} cotangents for {len(outs)} outputs")
        seeds = []
        for o, c in zip(outs, cts, strict=True):
            c = _seed(o, c, outer)
            if tuple(c.shape) != o.shape:
                raise ShapeError(f"vjp_fn: cotangent shape {tuple(c.shape)} does not match "
                                 f"output shape {o.shape}")
            seeds.append(c)
        live = [(o, s) for o, s, w in zip(outs, seeds, wired, strict=True) if w]
        create = outer or any(isinstance(s, Tensor) and s.requires_grad for s in seeds)
        grads = backward([o for o, _ in live], [s for _, s in live], retain_graph=True,
                         create_graph=create,
                         inputs=[i.tensor for i in flat]) if live else [None] * len(flat)
        return _results(inputs, treedefs, grads, create)

    value = unflatten(out_def, [_value_result(o, raw, outer) for o in outs])
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
    flat, raw = _flat(inputs)
    tans = []
    for tan in tangents:
        tans += flatten(tan)[0]
    if len(tans) != len(flat):
        raise ShapeError(f"{name}: tangents must have the same structure as primals")
    return args, inputs, treedefs, flat, tans, raw


def _push_tangents(roots: list[Tensor], flat: list[_Input], tans: list[Any],
                   record: bool = False) -> tuple[list[Any], bool]:
    """Tangents of ``roots`` along ``tans``, and whether the pass recorded: when ``record``
    asks for it, a tangent requires grad, or (grad mode on) the roots depend on a Tensor that
    requires grad other than the inputs; the topological sort that orders the pass collects
    the leaves for that last check."""
    create = record
    if not create:
        for t in tans:
            if isinstance(t, Tensor) and t.requires_grad:
                create = True
                break
    keys, nodes = _forward.root_keys(roots)
    if create:
        order = _tape._toposort_impl(nodes, None)
    else:
        leaves: set = set()
        order = _tape._toposort_impl(nodes, leaves)
        if _grad_enabled.get():
            for o in roots:  # a root that is itself a leaf: f returned one it closed over
                if o._node is None and o.requires_grad:
                    leaves.add(o)
            targets = set()
            for i in flat:
                targets.add(_key(i.tensor))
            create = _foreign(leaves, targets)
    tangents = {}
    for i, t in zip(flat, tans, strict=True):
        x = i.tensor
        seed = _tangent_value(x, t, create)
        if create and not isinstance(seed, Tensor):  # recorded rules see Tensors only
            seed = Tensor._make(seed, x._backend, None, False, [0])
        tangents[_key(x)] = seed
    prev = _grad_enabled.get()
    try:  # set inside the try: an interrupt just after the set still restores
        _grad_enabled.set(create)
        _forward._push_impl(order, tangents, create)
    finally:
        _grad_enabled.set(prev)
    return list(map(tangents.get, keys)), create


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
    _retire(flat)
    results = []
    for o, t in zip(outs, tangent, strict=True):
        if t is None:
            t = o._backend.xp.zeros(o.data.shape, dtype=o.data.dtype)
        if isinstance(t, Tensor):
            results.append(t if create else (t.data if raw else t.detach()))
        elif raw and not create:
            results.append(t)
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
    from .ops.shape import permute_dims, reshape, stack

    x = args[n]
    in_shape = tuple(getattr(x, "shape", ()))

    def f_n(xn: Any) -> Any:
        call = list(args)
        call[n] = xn
        return f(*call)

    if mode == "rev":
        out, vjp_fn = vjp(f_n, x)
        out_shape = tuple(out.shape)
        rows = [] if _empty(in_shape) else [vjp_fn(e)[0] for e in _basis(out)]
        like = x  # a gradient has its input's dtype
    elif _empty(in_shape):
        like = out = _as_tensor(f_n(x), "jacobian: the output of f")
        out_shape, rows = tuple(out.shape), []
    else:
        rows = []  # columns here: one JVP per input element
        for e in _basis(x if not isinstance(x, _SCALARS) else _as_tensor(x, "input")):
            like, t = jvp(f_n, (x,), (e,))  # a tangent has its output's dtype
            rows.append(t)
        out_shape = tuple(like.shape)
        if _empty(out_shape):
            rows = []
    if not rows:  # no element to differentiate: the (empty) Jacobian is all there is
        return _zeros(out_shape + in_shape, like, isinstance(x, Tensor))
    stacked = stack([_to_tensor_like(r) for r in rows], axis=0)
    if mode == "fwd":
        # columns were stacked first: move the input axes to the back
        stacked = permute_dims(reshape(stacked, (len(rows), -1)), (1, 0))
    result = reshape(stacked, out_shape + in_shape)
    # a raw input gets Tensor rows only when they depend on an outer level: keep their graph
    return result if isinstance(x, Tensor) or isinstance(rows[0], Tensor) else result.data


def _empty(shape: tuple[int, ...]) -> bool:
    return 0 in shape


def _zeros(shape: tuple[int, ...], like: Any, as_tensor: bool) -> Any:
    """Zeros of ``shape`` where ``like`` lives, in its dtype (the default float dtype for a
    Python number); a Tensor or a raw array."""
    t = _as_tensor(like, "jacobian: an input")
    z = t._backend.xp.zeros(shape, dtype=t.data.dtype)
    return Tensor._make(z, t._backend, None, False, [0]) if as_tensor else z


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
        (slope,), _ = _push_tangents([out], flat, tans, record=True)
    if isinstance(slope, Tensor):
        # the backward walk decides whether H v depends on an outer level (and records)
        grads, recorded = _grads_of([slope], [_ones_like(slope)], flat)
    else:  # f is at most linear in its inputs along the tangents: H v = 0
        grads, recorded = [None] * len(flat), False
    _retire(flat)
    return _results(inputs, treedefs, grads, recorded)


def _results(inputs: list[list[_Input]], treedefs: list, values: list, recorded: bool) -> tuple:
    """One result per differentiated argument, shaped as the caller passed it."""
    it = iter(values)
    out = []
    for ins, tdef in zip(inputs, treedefs, strict=True):
        if tdef is None:  # a bare leaf
            out.append(ins[0].result(next(it), recorded))
        else:
            out.append(unflatten(tdef, [i.result(next(it), recorded) for i in ins]))
    return tuple(out)


def stop_gradient(x: Any) -> Any:
    """``x`` treated as a constant by every transform."""
    return x.detach() if isinstance(x, Tensor) else x


