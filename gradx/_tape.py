"""The tape: nodes, grad mode, and backward(): a walk in creation order, accumulation, freeing.

A node is one recorded primitive application. It holds the primitive, the raw arguments
its rules read, the raw output if a rule reads it, and its parents: for each input that
needs a gradient, its position in ``argnums`` and, at the same index of ``parents``, the
producing Node or, for a leaf, the leaf Tensor itself. The output Tensor holds its node;
the node never holds its output, so graphs have no reference cycles.
"""

from __future__ import annotations

import contextlib
import itertools
import operator
import sys
import threading
import traceback
from contextvars import ContextVar
from heapq import heapify, heappop, heappush
from typing import Any

from . import _native
from ._shapes import sum_to
from .errors import AnomalyError, GraphError, NotDifferentiableError, OpError, ShapeError

# The Tensor class, bound by gradx._tensor once it is defined: that module imports this one,
# and an import inside each function would cost a microsecond and a half per call.
Tensor: Any = None
_grad_enabled: ContextVar[bool] = ContextVar("gradx_grad_enabled", default=True)
# One process-wide counter numbers both nodes (in creation order: parents before children)
# and in-place changes. A tensor's version counter holds the number of its last in-place
# change, so a saved value was modified after its node was recorded exactly when that
# number exceeds the node's; backward looks only when any change came after the node.
_SEQ = itertools.count(1)
LAST_CHANGE = [0]


def bump(counter: list) -> None:
    """Record an in-place change of the tensor(s) sharing ``counter``."""
    n = next(_SEQ)
    LAST_CHANGE[0] = n
    counter[0] = n


_anomaly: ContextVar[bool] = ContextVar("gradx_detect_anomaly", default=False)
# set for good once anomaly mode is first entered in any thread: until then recording a
# node skips even the ContextVar lookup
_DEBUG = [False]


class Meta:
    """Stand-in for an argument whose value no rule reads: keeps shape and dtype only."""

    __slots__ = ("shape", "dtype")

    def __init__(self, shape: tuple[int, ...], dtype: Any) -> None:
        self.shape = shape
        self.dtype = dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n


class Node:
    # argnums and parents are parallel tuples: argnums of the common calls are shared
    # constants, so recording allocates one tuple per node, not one pair per input
    __slots__ = ("prim", "args", "kwargs", "ans", "argnums", "parents", "shape", "dtype",
                 "versions", "site", "backend", "seq", "__weakref__")

    def __repr__(self) -> str:
        return f"<Node {self.prim.name} {self.shape} {self.dtype}>"


def new_node(prim: Any, args: tuple | None, kwargs: dict, ans: Any, argnums: tuple,
             parents: tuple, shape: tuple, dtype: Any, versions: tuple, backend: Any) -> Node:
    """A recorded application of ``prim`` (a plain function: cheaper than a constructor)."""
    node = Node()
    node.prim = prim
    node.args = args
    node.kwargs = kwargs
    node.ans = ans
    node.argnums = argnums
    node.parents = parents
    node.shape = shape
    node.dtype = dtype
    node.versions = versions
    node.backend = backend
    node.seq = next(_SEQ)
    if _DEBUG[0]:
        _annotate(node)
    return node


def _annotate(node: Node) -> None:
    """Under anomaly mode, where the user called the op (left unset otherwise)."""
    if _anomaly.get():
        node.site = _creation_site()


def identity_vjp(g: Any, ans: Any, *args: Any, **kwargs: Any) -> Any:
    """The VJP rule of an argument that passes its gradient through unchanged (x in x + y):
    the backward walk recognizes it and skips the call."""
    return g


_PACKAGE_DIRS: list[tuple[str, ...]] = []


def _creation_site() -> str:
    """The first stack frame outside the gradx package and its backends: where the user
    called the op. Decided by path prefix, so a user's own folder named gradx/ counts."""
    import os

    if not _PACKAGE_DIRS:
        import gradx.backends

        _PACKAGE_DIRS.append(tuple(os.path.dirname(os.path.abspath(f)) + os.sep
                                   for f in (__file__, gradx.backends.__file__)))
    inside = _PACKAGE_DIRS[0]
    # from this frame up: how many gradx frames lie between depends on the hot path in use
    for frame, lineno in traceback.walk_stack(sys._getframe()):
        filename = frame.f_code.co_filename
        if not os.path.abspath(filename).startswith(inside):
            return f"{filename}:{lineno} in {frame.f_code.co_name}"
    return "<unknown>"


# -- grad mode ------------------------------------------------------------------------

def is_grad_enabled() -> bool:
    return _grad_enabled.get()


class _PyScope:
    """``Scope(vars, values, counted=None)``: set each ContextVar of the tuple ``vars`` to the
    value at the same index of ``values`` for a ``with`` block, and restore the values they
    had when the block ends. ``counted``, if given, is a pair of one-item lists ``(count,
    flag)``: the number of entries open in any thread, and whether any is.

    One object may be entered again, nested or by several threads at once (a decorated
    function): each thread keeps its own stack of entries.

    This is the reference of the compiled ``gradx._speedups.Scope``, used where the
    extension is not. The pair of a set and its restore must survive an interrupt
    (Ctrl-C, an asynchronous exception), which Python raises between bytecodes, at a call's
    return and a function's start: compiled, ``__enter__`` and ``__exit__`` run no bytecode,
    so an interrupt lands either before the values are set (``__exit__`` is then not called)
    or inside the block (it then is). Here ``__enter__`` undoes its own work when one lands
    inside it, and ``__exit__`` restores with its first call, but one that lands as
    ``__exit__`` starts leaves the values set."""

    __slots__ = ("_vars", "_values", "_counted", "_local", "_result", "__dict__",
                 "__weakref__")

    def __new__(cls, vars: tuple, values: tuple, counted: tuple | None = None) -> Any:
        if not (type(vars) is tuple and type(values) is tuple and vars
                and len(vars) == len(values)):
            raise TypeError("Scope: vars and values must be tuples of one length")
        if not all(type(v) is ContextVar for v in vars):
            raise TypeError("Scope: vars must be ContextVars")
        self = object.__new__(cls)
        self._vars = vars
        self._values = values
        self._counted = counted
        self._local = threading.local()  # .stack: the values before, per open entry
        self._result = values[0] if len(vars) == 1 else None  # what ``as`` receives
        return self

    def __enter__(self) -> Any:
        vars = self._vars
        prev = tuple([v.get() for v in vars])  # nothing is changed yet
        stack = self._local.__dict__.setdefault("stack", [])
        try:
            for var, value in zip(vars, self._values, strict=True):
                var.set(value)
            stack.append(prev)
            if self._counted is not None:
                _count(self._counted, 1)
        except BaseException:  # an interrupt inside: undo, most recent first
            for var, value in zip(reversed(vars), reversed(prev), strict=True):
                var.set(value)
            if stack and stack[-1] is prev:
                del stack[-1]
            raise
        return self._result  # no call between the try and the return

    def __exit__(self, *exc: Any) -> bool:
        # no call before the first restore: an interrupt is checked for at calls' returns
        try:
            stack = self._local.stack
            prev = stack[-1]
        except (AttributeError, IndexError):
            raise RuntimeError("Scope.__exit__ without __enter__ in this thread") from None
        del stack[-1]
        vars = self._vars
        vars[-1].set(prev[-1])
        for i in range(len(vars) - 2, -1, -1):
            vars[i].set(prev[i])
        if self._counted is not None:
            _count(self._counted, -1)
        return False


_COUNT_LOCK = threading.Lock()


def _py_count(counted: tuple, delta: int) -> None:
    """Add ``delta`` to a Scope's count ``([count], [flag])``, and set the flag to count > 0."""
    cell, flag = counted
    with _COUNT_LOCK:
        cell[0] = max(cell[0] + delta, 0)
        flag[0] = cell[0] > 0


# The compiled Scope where the extension is in use (chosen once, as gradx._backend.ns is),
# and the count every other counter of the same cells must use: the compiled Scope counts
# in one C step, which a Python update under a lock could interleave with
_ext = _native.extension()
Scope: Any = _PyScope if _ext is None else _ext.Scope
_count: Any = _py_count if _ext is None else _ext.count


class ContextScope(Scope, contextlib.ContextDecorator):
    """A :class:`Scope` that also decorates functions (``@gx.no_grad()``)."""


class _GradMode(ContextScope):
    """Usable as ``with gx.no_grad():`` and as ``@gx.no_grad()``; thread-local. (No Python
    ``__new__``, ``__enter__`` or ``__exit__`` here: the first costs a frame per block, the
    others would reopen the window an interrupt can split.)"""


_GRAD_VARS, _OFF, _ON = (_grad_enabled,), (False,), (True,)


def no_grad() -> _GradMode:
    """Record nothing inside the block (evaluation, optimizer updates)."""
    return _GradMode(_GRAD_VARS, _OFF)


def enable_grad() -> _GradMode:
    """Record again inside a ``no_grad`` block."""
    return _GradMode(_GRAD_VARS, _ON)


def is_anomaly_enabled() -> bool:
    return _anomaly.get()


class _AnomalyMode(ContextScope):
    def __new__(cls) -> Any:
        return super().__new__(cls, (_anomaly,), (True,))


def detect_anomaly() -> ContextScope:
    """Make backward raise on the first NaN or infinity, naming the primitive and the
    file and line of the forward call that created it. Slow: for debugging only."""
    _DEBUG[0] = True
    return _AnomalyMode()


# -- backward -------------------------------------------------------------------------

def toposort(roots: list[Node]) -> list[Node]:
    """Nodes reachable from ``roots``, each after all of its consumers, without recursion."""
    return _toposort_impl(list(roots), None)


def _toposort(roots: list[Node], leaves: set | None) -> list[Node]:
    """:func:`toposort`, adding each leaf it reaches to ``leaves`` (unless None).

    A node is always recorded after its parents, so descending creation number is a
    topological order: collect the reachable nodes, then sort (in C) by that number."""
    seen = set(roots)
    stack = list(seen)
    add = seen.add
    while stack:
        node = stack.pop()
        for p in node.parents:
            if type(p) is Node:
                if p not in seen:
                    add(p)
                    stack.append(p)
            elif leaves is not None and p is not None:
                leaves.add(p)
    return sorted(seen, key=_creation_number, reverse=True)


_creation_number = operator.attrgetter("seq")


def _reaching(order: list[Node], targets: set) -> set:
    """Nodes in ``order`` from which some target is reachable."""
    reach: set = set()
    for node in reversed(order):
        if node in targets:
            reach.add(node)
            continue
        for p in node.parents:
            if p in reach or p in targets:
                reach.add(node)
                break
    return reach


def _pruning(roots: list[Node], targets: set) -> tuple[set | None, bool]:
    """The nodes and leaves a walk towards ``targets`` needs, or None when it needs all of
    them (every leaf it reaches is a target and no target is an interior node); and whether
    the graph reaches a leaf that is not a target and still requires grad, one that something
    outside the walk (an outer transform, a user's tape) differentiates. A transform's input
    leaf stops requiring grad when the transform returns, so it never counts for a later
    walk. Leaves behind an interior target count: such a target is a tracked transform
    input, whose gradient keeps its graph anyway."""
    leaves: set = set()
    order = _toposort_impl(roots, leaves)
    if leaves <= targets:
        if Node not in map(type, targets):
            return None, False
        return _reaching(order, targets) | targets, False
    outer = False
    for leaf in leaves - targets:
        if leaf.requires_grad:
            outer = True
            break
    return _reaching(order, targets) | targets, outer


def backward(roots: list[Any], seeds: list[Any], *, retain_graph: bool = False,
             create_graph: bool | None = False,
             inputs: list[Any] | None = None) -> list[Any] | tuple[list[Any], bool] | None:
    """Propagate ``seeds`` from ``roots`` (Tensors) back through the tape.

    Without ``inputs``, leaf gradients are accumulated into ``.grad``; with ``inputs``
    (Tensors), their gradients are returned instead and ``.grad`` is left untouched.

    ``create_graph=None`` (with ``inputs``; what the transforms use) decides from the graph:
    the pass records, and keeps the graph, exactly when grad mode is on and the roots depend
    on a Tensor that requires grad other than ``inputs``, so that an outer transform or tape
    sees the gradients' dependence on it; the call then returns ``(gradients, recorded)``.
    """
    auto = create_graph is None
    keys = keep = targets = None
    if inputs is not None:
        keys = []  # what each input's gradient is filed under: its node, or the leaf itself
        for t in inputs:
            keys.append(t._node if t._node is not None else t)
        targets = set(keys)
    root_keys, root_nodes = [], []
    outer = False
    for root in roots:
        key = root._node if root._node is not None else root
        root_keys.append(key)
        if type(key) is Node:
            root_nodes.append(key)
        elif targets is not None and root.requires_grad and key not in targets:
            outer = True  # a root that is itself someone else's leaf
    if inputs is not None:
        keep, reaches = _pruning(root_nodes, targets)
        outer = outer or reaches
        if keep is None:
            targets = None  # nothing to prune and no interior node to stop at: a plain walk
    if auto:
        create_graph = outer and _grad_enabled.get()
        retain_graph = retain_graph or create_graph
    grads: dict[Any, Any] = {}
    for key, root, seed in zip(root_keys, roots, seeds, strict=True):
        if not create_graph and isinstance(seed, Tensor):
            seed = seed.data
        elif create_graph and not isinstance(seed, Tensor):  # rules then see Tensors only
            seed = Tensor._make(seed, root._backend, None, False, [0])
        grads[key] = seed if key not in grads else grads[key] + seed
    prev = _grad_enabled.get()
    try:  # set inside the try: an interrupt just after the set still restores
        _grad_enabled.set(create_graph)
        _walk_impl(root_nodes, grads, keep, targets, create_graph, retain_graph,
                   inputs is None and not create_graph)
    finally:
        _grad_enabled.set(prev)
    if inputs is not None:
        found = list(map(grads.get, keys))
        return (found, create_graph) if auto else found
    _leaves_impl(grads, create_graph)
    return (None, False) if auto else None


def _walk(roots: list[Node], grads: dict, keep: set | None, targets: set | None,
          create_graph: bool, retain_graph: bool, into_grad: bool = False) -> None:
    """Apply the VJP rules, latest node first; no separate topological sort.

    A node enters the heap when its first gradient arrives. Every consumer of a node was
    recorded after it, so by the time the node has the highest creation number left, all
    of its gradient contributions are summed: the heap is the topological order.

    With ``into_grad``, a contribution for a leaf that already has a ``.grad`` is added
    into it at once, so the array is freed while the walk goes on (one fresh gradient
    alive at a time instead of all of them until the end; if a rule raises later, the
    leaves reached so far keep what they got, as in PyTorch)."""
    anomaly = _anomaly.get()
    heap = [(-n.seq, n) for n in dict.fromkeys(roots)]
    heapify(heap)
    while heap:
        node = heappop(heap)[1]
        if targets is not None and node in targets:
            continue  # a requested input: its gradient is the answer, not passed further
        g = grads.pop(node)
        args = node.args
        if args is None:
            _freed(node)
        if node.seq < LAST_CHANGE[0]:
            _check_versions(node)
        ans = node.ans
        kwargs = node.kwargs
        prim = node.prim
        if create_graph:
            args, ans = _wrap_saved(node, Tensor)
        vjps = prim.vjps
        for argnum, parent in zip(node.argnums, node.parents, strict=True):
            if keep is not None and parent not in keep:
                continue
            rule = vjps.get(argnum)
            try:
                if rule is identity_vjp:
                    gi = g
                elif rule is not None:
                    gi = rule(g, ans, *args, **kwargs) if kwargs else rule(g, ans, *args)
                elif prim.vjp_argnum is not None:
                    gi = prim.vjp_argnum(argnum, g, ans, *args, **kwargs)
                else:
                    _no_rule(prim, argnum)
            except (NotDifferentiableError, GraphError):
                raise
            except Exception as exc:
                _rule_failed(prim, argnum, g, exc)
            gd = gi.dtype
            is_node = type(parent) is Node
            # a leaf's shape and dtype straight from its array: properties cost a call
            ref = parent if is_node else parent.data
            if gi.shape != ref.shape or (gd is not ref.dtype and gd != ref.dtype):
                gi = _fit(gi, parent, prim, argnum)
            if anomaly:
                _check_finite(gi, node, argnum)
            prev = grads.get(parent)
            if prev is None:
                if is_node:  # its first gradient: the node joins the walk
                    grads[parent] = gi
                    heappush(heap, (-parent.seq, parent))
                elif into_grad and (old := parent.grad) is not None and not old.requires_grad:
                    parent.grad = _add_into(old, gi, parent._backend)
                else:
                    grads[parent] = gi
            elif create_graph or _holders(prev) > _ONE_HOLDER + 1 or not \
                    (parent.backend if is_node else parent._backend).writable(prev):
                grads[parent] = prev + gi
            else:  # only this sum holds prev (and it owns its memory): add in place
                prev += gi
        if not retain_graph and (prim.saves_args is True or prim.saves_ans):
            # a node that saved nothing (None or Meta stand-ins) keeps them: a later walk
            # through it needs no freed value, as in PyTorch (x.to(other) twice)
            node.args = None
            node.ans = None


# Errors of the walk, raised by the Python walk and the compiled one alike.

def _freed(node: Node) -> None:
    raise GraphError(
        f"backward through '{node.prim.name}' a second time: its saved values were "
        "freed by the first backward. Pass retain_graph=True to the first call"
    )


def _no_rule(prim: Any, argnum: int) -> None:
    raise NotDifferentiableError(
        f"'{prim.name}' has no VJP rule for argument {argnum}; define one with "
        f"gx.defvjp, or detach that input (gx.stop_gradient)"
    )


def _rule_failed(prim: Any, argnum: int, g: Any, exc: Exception) -> None:
    raise OpError(
        f"the VJP rule of '{prim.name}' failed for argument {argnum} with gradient "
        f"shape {tuple(g.shape)}: {type(exc).__name__}: {exc}"
    ) from exc


def _check_versions(node: Node) -> None:
    """Raise if a value ``node`` saved for backward was modified in place since."""
    versions = node.versions
    for i in range(0, len(versions), 2):
        if versions[i][0] > node.seq:
            where = versions[i + 1]
            what = "its output" if where < 0 else f"its input {where}"
            raise GraphError(
                f"'{node.prim.name}' needs {what} for backward, but it was modified in place "
                "after the forward pass. Use an out-of-place op (x = x + y) or clone before "
                "modifying"
            )


def _fit(gi: Any, parent: Any, prim: Any, argnum: int) -> Any:
    """Unbroadcast a broadcasting op's gradient and keep it in the input's dtype."""
    shape = parent.shape
    if gi.shape != shape:
        if prim.broadcasts:
            gi = sum_to(gi, shape)
        else:
            raise ShapeError(
                f"the VJP rule of '{prim.name}' returned a gradient of shape {tuple(gi.shape)} "
                f"for argument {argnum} of shape {tuple(shape)}; a rule of a non-broadcasting "
                "op must return the input's shape"
            )
    dtype = parent.dtype
    if gi.dtype != dtype:
        from .ops.elementwise import astype

        gi = astype(gi, dtype)
    return gi


def _check_finite(gi: Any, node: Node, argnum: int) -> None:
    raw = gi.data if isinstance(gi, Tensor) else gi
    site = getattr(node, "site", None) or "<unknown: enable detect_anomaly before the forward pass>"
    xp = node.backend.xp
    if not bool(xp.all(xp.isfinite(raw))):
        kind = "NaN" if bool(xp.any(xp.isnan(raw))) else "infinity"
        raise AnomalyError(
            f"backward of '{node.prim.name}' produced {kind} in the gradient of argument "
            f"{argnum} (output shape {node.shape}, dtype {node.dtype}); the op was called "
            f"at {site}"
        )


def _wrap_saved(node: Node, tensor_cls: Any) -> tuple[tuple, Any]:
    """Saved raw values as Tensors linked to their producers, so rules record (create_graph)."""
    args = list(node.args)
    backend = node.backend
    make = tensor_cls._make
    parents = node.parents
    for argnum, parent in zip(node.argnums, parents, strict=True):
        a = args[argnum]
        if isinstance(a, Meta) or not hasattr(a, "dtype"):  # nothing saved: Meta or None
            continue
        args[argnum] = make(a, backend, parent, True, [0]) if type(parent) is Node else parent
    if len(parents) < len(args):
        # a constant float input as a Tensor too: a rule such as ``x @ g`` must not put a
        # raw array left of a Tensor (strict namespaces raise instead of deferring)
        saved = node.args
        for argnum, a in enumerate(args):
            if (a is saved[argnum] and not isinstance(a, Meta) and hasattr(a, "dtype")
                    and backend.is_float(a.dtype)):  # not linked above
                args[argnum] = make(a, backend, None, False, [0])
    ans = node.ans
    if ans is not None:
        ans = make(ans, backend, node, True, [0])
    return tuple(args), ans


def _accumulate_leaves(grads: dict, create_graph: bool) -> None:
    """Store or add each leaf's gradient into ``.grad``.

    A first gradient is kept without a copy when nothing else holds it (a fresh rule
    result), else copied, so no two leaves, saved values or user arrays ever share a
    ``.grad`` buffer, and ``.grad`` is never the caller's seed: a seed reaches a leaf
    unchanged through ``y = x`` or an identity rule (add), which also hands one object to
    both of its inputs. A later one is added into the existing ``.grad`` in place."""
    for leaf in [k for k in grads if type(k) is not Node]:
        g = grads.pop(leaf)
        if isinstance(g, Tensor):  # recorded (create_graph), or a seed given as a Tensor
            if create_graph and g.requires_grad:  # keeps its graph: added out of place later
                if leaf.grad is None:
                    leaf.grad = g if _holders(g) <= _ONE_HOLDER else _recorded_copy(g)
                else:
                    leaf.grad = leaf.grad + g
                continue
            g = g.data  # no graph to keep: an array like any other, copied if held elsewhere
        backend = leaf._backend
        old = leaf.grad
        if old is None:
            # g is held here and, for a fresh result, nowhere else
            g = backend.owned(g) if _holders(g) <= _ONE_HOLDER else backend.copy(g)
            leaf.grad = Tensor._make(g, backend, None, False, [0])
        elif old.requires_grad:  # a gradient that itself has a graph keeps recording
            leaf.grad = old + g
        else:
            leaf.grad = _add_into(old, g, backend)


def _recorded_copy(g: Any) -> Any:
    """A copy of Tensor ``g`` with its own memory that records (its gradient flows to
    ``g``'s graph), whatever the caller's grad mode."""
    from .ops.elementwise import astype

    prev = _grad_enabled.get()
    try:
        _grad_enabled.set(True)
        return astype(g, g.data.dtype, copy=True)
    finally:
        _grad_enabled.set(prev)


def _add_into(old: Any, g: Any, backend: Any) -> Any:
    """``old`` with ``g`` added into its array in place (a change its version counter
    records) where the backend says the array allows it; else a new Tensor: read-only or
    immutable arrays, a shape or dtype set by hand."""
    data = old.data
    if data.shape == g.shape and data.dtype == g.dtype and backend.writable(data):
        data += g
        bump(old._version)
        return old
    return old._make(data + g, backend, None, False, [0])


def _holders(x: Any) -> int:
    """How many references keep ``x`` alive; a number no check accepts where unknown."""
    return _getrefcount(x) if _getrefcount is not None else sys.maxsize


def _one_holder() -> int:
    probe = object()  # held by this local name only, as ``g`` is where _holders is asked
    return _holders(probe)


_getrefcount = getattr(sys, "getrefcount", None)  # CPython; elsewhere nothing is stolen
# What _holders reports for an array held by one local name; measured rather than assumed,
# since interpreters differ in the references a call adds (3.14 borrows some).
_ONE_HOLDER = _one_holder()


# What backward() runs: the functions above, or their compiled counterparts (gradx._hot).
_toposort_impl = _toposort
_wrap_saved_impl = _wrap_saved
_walk_impl = _walk
_leaves_impl = _accumulate_leaves
