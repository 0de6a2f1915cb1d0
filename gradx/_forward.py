"""Forward mode over the tape: push tangents from inputs through recorded primitives.

Each primitive's JVP rule gives its output tangent; a primitive without one uses its VJP
rule transposed (the VJP is linear in ``g``, so its VJP in ``g`` is the JVP).
"""

from __future__ import annotations

from typing import Any

from . import _tape
from ._tape import Node, _grad_enabled, backward, enable_grad
from ._tensor import Tensor
from .errors import GraphError


def root_keys(outs: list[Tensor]) -> tuple[list[Any], list[Node]]:
    """What each output's tangent is filed under (its node, or the Tensor itself when it has
    none), and the nodes among them: where the tangent pass starts."""
    keys, roots = [], []
    for o in outs:
        if o._node is None:
            keys.append(o)
        else:
            keys.append(o._node)
            roots.append(o._node)
    return keys, roots


def push_forward(outs: list[Tensor], seeds: dict, create: bool) -> list[Any]:
    keys, roots = root_keys(outs)
    tangents = dict(seeds)
    _push_impl(_tape._toposort_impl(roots, None), tangents, create)
    return list(map(tangents.get, keys))


def _push(order: list[Node], tangents: dict, create: bool) -> None:
    """File under each node of ``order`` (consumers first, as toposort gives them) the sum of
    the tangents its parents contribute; ``tangents`` starts with the seeds."""
    for node in reversed(order):
        if node in tangents:
            continue
        total = None
        args = ans = None
        for argnum, parent in zip(node.argnums, node.parents, strict=True):
            tp = tangents.get(parent)
            if tp is None:
                continue
            if args is None:
                if node.args is None:
                    _freed(node)
                args, ans = (_tape._wrap_saved_impl(node, Tensor) if create
                             else (node.args, node.ans))
            c = _jvp_one(node, argnum, parent, tp, args, ans)
            total = c if total is None else total + c
        if total is not None:
            tangents[node] = total


# the tangent pass over the nodes: gradx._hot swaps in the compiled one, which calls the
# helpers below for every case but a JVP rule's result of the node's shape and dtype
_push_impl = _push


def _freed(node: Node) -> None:
    raise GraphError(f"jvp through '{node.prim.name}': its saved values were freed by an "
                     "earlier backward")


def _jvp_one(node: Node, argnum: int, parent: Any, tp: Any, args: tuple, ans: Any) -> Any:
    prim = node.prim
    rule = prim.jvps.get(argnum)
    if rule is not None:
        c = rule(tp, ans, *args, **node.kwargs)
    elif prim.jvp_argnum is not None:
        c = prim.jvp_argnum(argnum, tp, ans, *args, **node.kwargs)
    else:
        c = _transposed_vjp(node, argnum, parent, tp, args, ans)
    return _conform(c, node)


def _conform(c: Any, node: Node) -> Any:
    """A tangent contribution as the node's output tangent: its shape and its dtype."""
    raw = c.data if isinstance(c, Tensor) else c  # its shape and dtype without a property call
    if raw.shape != node.shape and tuple(raw.shape) != node.shape:
        from .ops.shape import broadcast_to

        c = broadcast_to(c, node.shape)
    if raw.dtype != node.dtype:
        from .ops.elementwise import astype

        c = astype(c, dtype=node.dtype)
    return c


def _transposed_vjp(node: Node, argnum: int, parent: Any, tp: Any, args: tuple,
                    ans: Any) -> Any:
    """J t from the VJP rule: the rule is linear in g, so its VJP in g is the JVP."""
    from ._tape import _fit

    prim = node.prim
    rule = prim.vjps.get(argnum)
    if rule is None and prim.vjp_argnum is None:
        from .errors import NotDifferentiableError

        raise NotDifferentiableError(f"'{prim.name}' has no JVP or VJP rule for argument "
                                     f"{argnum}")
    g = Tensor._make(node.backend.xp.zeros(node.shape, dtype=node.dtype), node.backend, None,
                     True, [0])
    with enable_grad():
        if rule is not None:
            ct = rule(g, ans, *args, **node.kwargs)
        else:
            ct = prim.vjp_argnum(argnum, g, ans, *args, **node.kwargs)
        ct = _fit(ct, parent, prim, argnum)
        if not isinstance(ct, Tensor) or not ct.requires_grad:
            res = None  # the rule's result does not depend on g: a zero tangent
        else:
            (res,) = backward([ct], [tp], retain_graph=True, create_graph=True, inputs=[g])
    if res is None:  # a Tensor when recorded: a raw array left of a Tensor fails on strict xp
        zeros = node.backend.xp.zeros(node.shape, dtype=node.dtype)
        return Tensor._make(zeros, node.backend, None, False, [0]) if _grad_enabled.get() \
            else zeros
    if not _grad_enabled.get() and isinstance(res, Tensor):
        return res.data
    return res
