"""``checkpoint``: trade compute for memory by recomputing a block's interior in backward.

The forward pass runs ``f`` under no_grad, so nothing inside it is kept for backward. While
it runs, a per-op recorder notes every Tensor that requires grad and reaches a primitive:
under no_grad nothing computed inside ``f`` requires grad, so each one comes from outside
(closed over, or inside a container or keyword argument). Those Tensors become inputs of
the one recorded ``checkpoint`` node beside the positional Tensor arguments, so they get
their gradients. The host generator's state is saved before the forward pass; backward puts
it back, recomputes ``f`` with grad on (a dropout mask is drawn again, the same), takes one
backward pass to the node's inputs, and then restores the generator's current state.
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from . import random as _random
from ._primitive import _recorder, defvjp_argnum, primitive, recording
from ._tape import _SEQ, _grad_enabled, backward, no_grad
from ._tensor import Tensor
from .errors import BackendMismatchError, GraphError, ShapeError, describe
from .ops.elementwise import positive
from .transforms import _check_fn

# Contexts a checkpoint taken inside them enters again around its recomputation (which runs
# in backward, after they have exited): gx.nn.functional_call's parameter swap.
_replay: ContextVar[tuple[Callable[[], Any], ...]] = ContextVar("gradx_checkpoint_replay",
                                                                default=())


@contextlib.contextmanager
def replaying(enter: Callable[[], Any]) -> Iterator[None]:
    """Inside the block, every checkpoint re-enters the context manager ``enter()`` around
    its recomputation, so ``f`` sees in backward what it saw in the forward pass."""
    token = _replay.set(_replay.get() + (enter,))
    try:
        yield
    finally:
        _replay.reset(token)


def checkpoint(f: Callable) -> Callable:
    """Run ``f`` without keeping its interior; recompute it during backward to save memory.

    ``f`` takes Tensors (and any other arguments, positional or keyword) and returns one
    Tensor. Positional Tensor arguments and every Tensor that requires grad which ``f``
    uses from outside (closed over, as a module's parameters are) get their gradients. The
    recomputation draws the same random numbers as the forward pass (``gx.random``'s state is
    saved and restored), and ``create_graph=True`` records through it for higher orders.

    >>> y = gx.checkpoint(lambda h: gx.tanh(layer(h)))(x)   # doctest: +SKIP
    """
    _check_fn(f, "checkpoint")

    @functools.wraps(f)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not _grad_enabled.get():
            return f(*args, **kwargs)
        return _forward(f, args, kwargs)

    return wrapped


class _Outside:
    """Per-op recorder: collects the Tensors that require grad and were not made inside the
    block (nodes numbered from ``start`` on were), in first-use order; then calls the
    recorder installed before it, if any."""

    __slots__ = ("chain", "start", "seen", "tensors")

    def __init__(self, chain: Callable | None, start: int) -> None:
        self.chain, self.start = chain, start
        self.seen: set[int] = set()
        self.tensors: list[Tensor] = []

    def __call__(self, prim: Any, args: tuple, kwargs: dict, ans: Any) -> None:
        for a in args:
            if isinstance(a, Tensor):
                if a.requires_grad:
                    self._note(a)
            elif isinstance(a, tuple | list):  # concat, stack: a sequence of Tensors
                for b in a:
                    if isinstance(b, Tensor) and b.requires_grad:
                        self._note(b)
        if self.chain is not None:
            self.chain(prim, args, kwargs, ans)

    def _note(self, t: Tensor) -> None:
        node = t._node
        if id(t) in self.seen or (node is not None and node.seq > self.start):
            return
        self.seen.add(id(t))  # t stays in self.tensors, so its id is not reused meanwhile
        self.tensors.append(t)


class _State:
    """What the checkpoint node keeps for the recomputation (its only keyword argument)."""

    __slots__ = ("fn", "template", "slots", "kwargs", "closed", "closed_data", "needed",
                 "backend", "rng", "replay", "out", "cache")

    def take_output(self) -> Any:
        out, self.out = self.out, None
        return out


def _forward(f: Callable, args: tuple, kwargs: dict) -> Any:
    slots = tuple(i for i, a in enumerate(args) if isinstance(a, Tensor))
    explicit = [args[i] for i in slots]
    call = list(args)
    template = list(args)  # the arguments without their Tensors (the node holds those)
    for i, t in zip(slots, explicit, strict=True):
        # a detached alias sharing the version counter: the recorder does not collect it
        call[i] = Tensor._make(t.data, t._backend, None, False, t._version)
        template[i] = None
    rng = _random.get_state()
    outside = _Outside(_recorder.get(), next(_SEQ))
    with recording(outside), no_grad():
        out = f(*call, **kwargs)
    if not isinstance(out, Tensor):
        raise ShapeError(f"checkpoint: f must return a single Tensor, got {type(out).__name__}")
    closed = outside.tensors
    tensors = explicit + closed
    needed = tuple(i for i, t in enumerate(tensors) if t.requires_grad)
    if not needed:
        return out
    backend = tensors[needed[0]]._backend
    if any(t._backend is not backend for t in tensors) or out._backend is not backend:
        names = list(dict.fromkeys(t._backend.name for t in [*tensors, out]))
        raise BackendMismatchError(
            f"checkpoint: f's inputs, the tensors it uses from outside and its output live on "
            f"different backends {names} ({', '.join(describe(t) for t in tensors)} -> "
            f"{describe(out)}); checkpoint a block whose tensors share one backend, and move "
            "between backends (x.to(...)) outside it")
    state = _State()
    state.fn, state.template, state.slots, state.kwargs = f, tuple(template), slots, kwargs
    state.closed, state.needed, state.backend, state.rng = closed, needed, backend, rng
    state.closed_data = tuple(t.data for t in closed)  # the node saves these arrays anyway
    state.replay, state.out, state.cache = _replay.get(), out.data, None
    return _checkpoint_call(*tensors, state=state)


@primitive(name="checkpoint", saves_ans=False)
def _checkpoint_call(*tensors: Any, state: _State) -> Any:
    """The output f computed in the forward pass (the node records the call)."""
    return state.take_output()


def _checkpoint_vjp(argnum: int, g: Any, ans: Any, *tensors: Any, state: _State) -> Any:
    """Every input's gradient comes from one recomputation per cotangent ``g``: the first
    call computes them all, each call takes its own, and the last one, or ``g`` dying
    (a walk that skips some inputs), frees the rest."""
    cache = state.cache
    if cache is None or cache[0]() is not g or argnum not in cache[1]:
        grads = _recompute(state, g, tensors)
        try:  # g is an array or Tensor; a NumPy scalar cannot be weakly referenced
            ref = weakref.ref(g, lambda _, grads=grads: grads.clear())
        except TypeError:
            ref = lambda g=g: g  # noqa: E731  (held until every gradient is taken)
        state.cache = cache = (ref, grads)
    grads = cache[1]
    gi = grads.pop(argnum)
    if not grads:
        state.cache = None
    return gi


def _recompute(state: _State, g: Any, tensors: tuple) -> dict[int, Any]:
    """Run f again with grad on, from the saved generator state, and backpropagate ``g``:
    the gradient of every input that needs one, by argnum. Recorded (a Tensor ``g``: a
    create_graph walk or forward mode) the gradients are Tensors with their own graph."""
    record = isinstance(g, Tensor)
    token = _grad_enabled.set(True)
    try:
        out, wanted = _rerun(state, tensors)
    finally:
        _grad_enabled.reset(token)
    found = backward([out], [g], retain_graph=record, create_graph=record,
                     inputs=wanted) if out.requires_grad else [None] * len(wanted)
    backend = state.backend
    grads = {}
    for argnum, gi in zip(state.needed, found, strict=True):
        if gi is None:  # the output does not depend on this input
            x = tensors[argnum]
            raw = x.data if isinstance(x, Tensor) else x
            gi = backend.xp.zeros(raw.shape, dtype=raw.dtype)
            if record:
                gi = Tensor._make(gi, backend, None, False, [0])
        grads[argnum] = gi
    return grads


def _rerun(state: _State, tensors: tuple) -> tuple[Tensor, list[Tensor]]:
    """f's output recomputed (grad mode on), and the Tensors to differentiate it by: fresh
    inputs in the positional slots and the ones it used from outside, in argnum order."""
    backend = state.backend
    n = len(state.slots)
    call = list(state.template)
    wanted: list[Tensor] = []
    for argnum, (slot, a) in enumerate(zip(state.slots, tensors, strict=False)):
        if argnum not in state.needed:
            call[slot] = a if isinstance(a, Tensor) else Tensor._make(a, backend, None, False,
                                                                       [0])
            continue
        if isinstance(a, Tensor) and a.requires_grad:  # a saved input linked to its producer
            t = positive(a)  # its own node: two arguments of one tensor stay apart
        else:
            t = Tensor._make(a.data if isinstance(a, Tensor) else a, backend, None, False, [0])
            t.requires_grad = True
        call[slot] = t
        wanted.append(t)
    # A closed-over Tensor that has stopped requiring grad since the forward pass (a
    # transform's input once the transform returned) still has its edge in the node: it
    # requires grad again while f runs, so that the recomputation records through it too.
    for t, data in zip(state.closed, state.closed_data, strict=True):
        if t.data is not data:
            # a recorded in-place update (t *= y, t[i] = v) rebinds t to a new array: the
            # recomputation would read the new value where the forward pass read the old one
            raise GraphError(
                f"checkpoint: a tensor {describe(t)} the checkpointed block uses from outside "
                "was updated in place after the forward pass, so recomputing the block in "
                "backward would not reproduce it. Update a copy instead (t = t * y), or pass "
                "the tensor to the checkpointed function as an argument")
    revived = []
    for argnum in state.needed:
        if argnum >= n:
            t = state.closed[argnum - n]
            wanted.append(t)
            if not t.requires_grad:
                revived.append(t)
    current = _random.get_state()
    _random.set_state(state.rng)
    try:
        with contextlib.ExitStack() as stack:
            for enter in state.replay:
                stack.enter_context(enter())
            for t in revived:
                t.requires_grad = True
            out = state.fn(*call, **state.kwargs)
    finally:
        for t in revived:
            t.requires_grad = False
        _random.set_state(current)
    if not isinstance(out, Tensor):
        raise ShapeError(f"checkpoint: f returned a {type(out).__name__} when recomputed in "
                         "backward; it must return the same single Tensor every time")
    return out, wanted


defvjp_argnum(_checkpoint_call, _checkpoint_vjp)
