"""Property-based gradient checks: random programs of gradx primitives, checked with
``check_grads(order=2)`` in float64 in reverse and forward mode on every backend.

A program is a list of steps over a pool of values; each step reads earlier values (any
of them, so intermediates fan out to several consumers), possibly together with constant
tensors, and appends its result. Shapes broadcast, reductions take random axes, indexing
takes slices, integers, None and repeated advanced indices. The program is drawn and its
shapes found on NumPy, then the same program runs on the backend under test.
"""

from __future__ import annotations

import numpy as np
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st
from hypothesis_profiles import examples

import gradx as gx

# Building blocks; functions that grow fast get their input squashed, so values stay O(1).

UNARY = {
    "sin": gx.sin, "cos": gx.cos, "tanh": gx.tanh, "sigmoid": gx.sigmoid, "atan": gx.atan,
    "negative": gx.negative, "positive": gx.positive, "abs": gx.abs,
    "exp": lambda x: gx.exp(gx.sin(x)), "expm1": lambda x: gx.expm1(gx.cos(x)),
    "log": lambda x: gx.log(1.0 + x * x), "log1p": lambda x: gx.log1p(x * x),
    "sqrt": lambda x: gx.sqrt(1.0 + x * x), "square": lambda x: gx.square(gx.tanh(x)),
    "sinh": lambda x: gx.sinh(gx.tanh(x)), "cosh": lambda x: gx.cosh(gx.tanh(x)),
    "asin": lambda x: gx.asin(0.5 * gx.tanh(x)), "acos": lambda x: gx.acos(0.5 * gx.tanh(x)),
    "tan": lambda x: gx.tan(0.5 * gx.tanh(x)), "pow": lambda x: (1.0 + x * x) ** 1.5,
    "rpow": lambda x: 2.0 ** gx.tanh(x), "clip": lambda x: gx.clip(x, -0.8, 0.8),
    "floor": lambda x: x + gx.floor(x), "astype": lambda x: gx.astype(x, x.dtype),
    "rsub": lambda x: 1.0 - x, "rdiv": lambda x: 1.0 / (2.0 + gx.sin(x)),
}
BINARY = {
    "add": gx.add, "subtract": gx.subtract, "multiply": gx.multiply,
    "divide": lambda a, b: a / (1.5 + b * b), "pow": lambda a, b: (1.0 + a * a) ** gx.tanh(b),
    "atan2": lambda a, b: gx.atan2(a, 1.5 + b * b), "maximum": gx.maximum,
    "minimum": gx.minimum, "operators": lambda a, b: (a - b) * a + b / 2.0,
}
REDUCTIONS = {"sum": gx.sum, "mean": gx.mean, "prod": gx.prod, "logsumexp": gx.logsumexp,
              "max": gx.max, "min": gx.min, "var": gx.var}


def _axes(draw, ndim):
    kind = draw(st.sampled_from(["one", "none", "many"])) if ndim else "none"
    if kind == "one":
        return draw(st.integers(-ndim, ndim - 1))
    if kind == "many":
        return tuple(draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim,
                                   unique=True)))
    return None


def _shape_like(draw, shape):
    """A shape that broadcasts against ``shape``: some dims set to 1, leading dims dropped."""
    dims = [1 if draw(st.booleans()) else s for s in shape]
    return tuple(dims[draw(st.integers(0, len(dims))):])


def _key(draw, shape, rng):
    """A getitem key: basic slices, an integer, None/Ellipsis, or repeated advanced indices."""
    ndim = len(shape)
    axis = draw(st.integers(0, ndim - 1))
    n = shape[axis]
    kind = draw(st.sampled_from(["slice", "int", "none", "advanced", "pairs", "negstep"]))
    lead = (slice(None),) * axis
    if kind == "slice":
        start = draw(st.integers(0, n - 1))
        return lead + (slice(start, None, draw(st.integers(1, 2))),)
    if kind == "negstep":
        return lead + (slice(None, None, -1), Ellipsis)
    if kind == "int":
        return lead + (draw(st.integers(-n, n - 1)), Ellipsis)
    if kind == "none":
        return (Ellipsis, None) if draw(st.booleans()) else (None,) + lead + (slice(0, n),)
    if kind == "pairs" and ndim >= 2:
        k = draw(st.integers(1, 4))
        return (("idx", rng.integers(0, shape[0], k)), ("idx", rng.integers(0, shape[1], k)))
    return lead + (("idx", rng.integers(0, n, draw(st.integers(1, 4)))), Ellipsis)


def _const(rng, shape, low=-1.5, high=1.5):
    return ("const", rng.uniform(low, high, shape))


def draw_step(draw, shapes, rng):
    """One step: (op, operand indices, params), or None when the drawn op does not apply."""
    # sampled_from shrinks to the first element: list the newest value first, for depth
    newest_first = list(range(len(shapes)))[::-1]
    i = draw(st.sampled_from(newest_first))
    s = shapes[i]
    nd = len(s)
    op = draw(st.sampled_from([
        "unary", "binary", "binary_const", "scalar", "reduce", "cumsum", "reshape",
        "permute", "expand", "squeeze", "broadcast", "flip", "concat", "stack", "tile",
        "getitem", "take", "take_along", "transpose", "sort", "split", "matmul", "einsum",
        "tensordot", "norm", "spd", "solve", "where", "setitem", "to_backend", "checkpoint",
        "moveaxis", "outer",
    ]))
    if op == "unary":
        names = st.sampled_from(sorted(UNARY))
        return op, (i,), {"fns": tuple(draw(st.lists(names, min_size=1, max_size=3)))}
    if op in ("binary", "binary_const", "where"):
        fn = draw(st.sampled_from(sorted(BINARY)))
        if op == "binary":
            ok = [j for j in newest_first if _fits(np.add, s, shapes[j])]
            j = draw(st.sampled_from(ok))  # i itself is always there: fan-out
            return op, (i, j), {"fn": fn, "swap": draw(st.booleans())}
        other = _const(rng, _shape_like(draw, s))
        if op == "where":
            return op, (i,), {"mask": ("const", rng.uniform(size=s) > 0.5), "other": other}
        return op, (i,), {"fn": fn, "other": other, "swap": draw(st.booleans())}
    if op == "scalar":
        return op, (i,), {"c": draw(st.sampled_from([2.0, -0.5, 3])), "swap": draw(st.booleans())}
    if op == "reduce":
        fn = draw(st.sampled_from(sorted(REDUCTIONS)))
        if fn == "var" and nd == 0:
            return None
        return op, (i,), {"fn": fn, "axis": _axes(draw, nd), "keepdims": draw(st.booleans())}
    if nd == 0:
        if op == "reshape":
            return op, (i,), {"shape": (1, 1)}
        return None
    if op == "reshape":
        size = int(np.prod(s))
        target = draw(st.sampled_from([(-1,), s[::-1], (1,) + s, (size, 1)]))
        return op, (i,), {"shape": target}
    if op in ("permute", "moveaxis"):
        return op, (i,), {"axes": tuple(draw(st.permutations(range(nd))))}
    if op == "expand":
        return op, (i,), {"axis": draw(st.integers(-nd - 1, nd))}
    if op == "squeeze":
        ones = [a for a, d in enumerate(s) if d == 1]
        return (op, (i,), {"axis": tuple(ones)}) if ones else None
    if op == "broadcast":
        new = tuple(2 if d == 1 and draw(st.booleans()) else d for d in s)
        return op, (i,), {"shape": (draw(st.integers(1, 2)),) + new}
    if op in ("cumsum", "flip"):
        return op, (i,), {"axis": draw(st.one_of(st.none(), st.integers(-nd, nd - 1)))}
    if op in ("concat", "stack"):
        axis = draw(st.integers(-nd, nd - 1))
        if op == "concat":
            ok = [j for j in newest_first if _fits(
                lambda a, b: np.concatenate([a, b], axis=axis), s, shapes[j])]
        else:
            ok = [j for j in newest_first if shapes[j] == s]
        return op, (i, draw(st.sampled_from(ok))), {"axis": axis}
    if op == "tile":
        return op, (i,), {"reps": tuple(draw(st.lists(st.integers(1, 2), min_size=1,
                                                      max_size=nd + 1)))}
    if op == "getitem":
        return op, (i,), {"key": _key(draw, s, rng)}
    if op == "take":
        axis = draw(st.one_of(st.none(), st.integers(0, nd - 1)))
        n = int(np.prod(s)) if axis is None else s[axis]
        return op, (i,), {"axis": axis, "idx": ("idx", rng.integers(0, n, draw(
            st.integers(1, 4))))}
    if op == "take_along":
        axis = draw(st.integers(-nd, nd - 1))
        shape = list(s)
        shape[axis] = draw(st.integers(1, 3))
        return op, (i,), {"axis": axis, "idx": ("idx", rng.integers(0, s[axis], shape))}
    if op == "transpose":
        return (op, (i,), {}) if nd >= 2 else None
    if op == "sort":
        return op, (i,), {"axis": draw(st.integers(-nd, nd - 1)),
                          "descending": draw(st.booleans())}
    if op == "split":
        axis = draw(st.integers(0, nd - 1))
        return (op, (i,), {"axis": axis}) if s[axis] % 2 == 0 or s[axis] == 1 else None
    if op == "matmul":
        ok = [j for j in newest_first if _fits(np.matmul, s, shapes[j])]
        if ok and draw(st.booleans()):
            return op, (i, draw(st.sampled_from(ok))), {}
        k = draw(st.sampled_from([(), (2,)]))
        return op, (i,), {"other": _const(rng, (s[-1],) + k), "left": draw(st.booleans())}
    if op == "einsum":
        return op, (i,), {"other": _const(rng, (s[-1],))}
    if op == "tensordot":
        return op, (i,), {"other": _const(rng, (s[-1], 2))}
    if op == "norm":
        return op, (i,), {"axis": draw(st.sampled_from([None, -1]))}
    if op == "spd":
        if nd != 1 or s[0] > 4:
            return None
        return op, (i,), {"fn": draw(st.sampled_from(["inv", "det", "solve"]))}
    if op == "solve":
        if nd > 2:
            return None
        m = rng.standard_normal((s[0], s[0]))
        return op, (i,), {"a": ("const", m @ m.T + s[0] * np.eye(s[0]))}
    if op == "setitem":
        return op, (i,), {"key": (slice(0, draw(st.integers(1, s[0]))),)}
    if op == "outer":
        return op, (i, draw(st.sampled_from(newest_first))), {}
    return op, (i,), {}  # to_backend, checkpoint


def _fits(op, a, b):
    try:
        op(np.zeros(a), np.zeros(b))
        return True
    except ValueError:
        return False


def _materialize(p, like):
    """A param with its constants and index arrays as tensors on ``like``'s backend."""
    if isinstance(p, tuple) and len(p) == 2 and p[0] in ("const", "idx"):
        return gx.tensor(p[1], backend=like.backend)
    if isinstance(p, tuple):
        return tuple(_materialize(q, like) for q in p)
    return p


def _other_backend(x):
    return "array_api_strict" if x.backend.name != "array_api_strict" else "numpy"


def apply_step(step, pool):
    op, idx, raw = step
    x = pool[idx[0]]
    p = {k: _materialize(v, x) for k, v in raw.items()}
    y = pool[idx[1]] if len(idx) > 1 else None
    if op == "unary":
        for name in p["fns"]:
            x = UNARY[name](x)
        return x
    if op in ("binary", "binary_const"):
        b = y if op == "binary" else p["other"]
        return BINARY[p["fn"]](b, x) if p["swap"] else BINARY[p["fn"]](x, b)
    if op == "scalar":
        return p["c"] - x if p["swap"] else x * p["c"]
    if op == "where":
        return gx.where(p["mask"], x, p["other"])
    if op == "reduce":
        return REDUCTIONS[p["fn"]](x, axis=p["axis"], keepdims=p["keepdims"])
    table = {
        "cumsum": lambda: gx.cumsum(x, axis=p["axis"]),
        "reshape": lambda: gx.reshape(x, p["shape"]),
        "permute": lambda: gx.permute_dims(x, p["axes"]),
        "moveaxis": lambda: gx.moveaxis(x, p["axes"][0], -1),
        "expand": lambda: gx.expand_dims(x, axis=p["axis"]),
        "squeeze": lambda: gx.squeeze(x, axis=p["axis"]),
        "broadcast": lambda: gx.broadcast_to(x, p["shape"]),
        "flip": lambda: gx.flip(x, axis=p["axis"]),
        "concat": lambda: gx.concat([x, y], axis=p["axis"]),
        "stack": lambda: gx.stack([x, y], axis=p["axis"]),
        "tile": lambda: gx.tile(x, p["reps"]),
        "getitem": lambda: x[p["key"]],
        "take": lambda: gx.take(x, p["idx"], axis=p["axis"]),
        "take_along": lambda: gx.take_along_axis(x, p["idx"], axis=p["axis"]),
        "transpose": lambda: gx.matrix_transpose(x),
        "sort": lambda: gx.sort(x, axis=p["axis"], descending=p["descending"]),
        "split": lambda: gx.stack(gx.split(x, x.shape[p["axis"]] // 2 or 1,
                                           axis=p["axis"])[::-1], axis=0),
        "einsum": lambda: gx.einsum("...i,i->...", x, p["other"]),
        "tensordot": lambda: gx.tensordot(x, p["other"], axes=1),
        "norm": lambda: gx.linalg.norm(x, axis=p["axis"]),
        "solve": lambda: gx.linalg.solve(p["a"], x),
        "outer": lambda: gx.outer(x, y),
        "to_backend": lambda: (x.to(_other_backend(x)) * 2.0 + 1.0).to(x.backend),
        "checkpoint": lambda: gx.checkpoint(lambda t: gx.sin(t) * t)(x),
    }
    if op in table:
        return table[op]()
    if op == "matmul":
        if y is not None:
            return x @ y
        return p["other"].T @ gx.matrix_transpose(x) if p["left"] and x.ndim >= 2 \
            else x @ p["other"]
    if op == "spd":
        a = x.shape[0] * gx.eye(x.shape[0], dtype=x.dtype, backend=x.backend) + gx.outer(x, x)
        if p["fn"] == "inv":
            return gx.linalg.inv(a)
        return gx.linalg.det(a) if p["fn"] == "det" else gx.linalg.solve(a, gx.sin(x))
    if op == "setitem":
        z = x * 1.0  # a fresh tensor: updating x itself would change a value saved for backward
        z[p["key"]] = gx.tanh(x[p["key"]]) * 2.0
        return z
    raise AssertionError(op)


def run(program, xs):
    steps, outputs = program
    pool = list(xs)
    for step in steps:
        pool.append(apply_step(step, pool))
    outs = tuple(pool[o] for o in outputs)
    return outs[0] if len(outs) == 1 else outs


@st.composite
def programs(draw, min_steps=1, max_steps=6):
    """(program, host inputs): random steps over 1-3 broadcast-compatible float64 inputs."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    base = tuple(draw(st.lists(st.integers(1, 3), max_size=3)))
    shapes = [base] + [_shape_like(draw, base) for _ in range(draw(st.integers(0, 2)))]
    host = [rng.uniform(-1.5, 1.5, s) for s in shapes]
    with gx.use_backend("numpy"), gx.no_grad():
        pool = [gx.tensor(h) for h in host]
        steps = []
        wanted = draw(st.integers(min_steps, max_steps))
        for _ in range(3 * wanted):  # a drawn op may not apply to the value it got
            if len(steps) == wanted:
                break
            step = draw_step(draw, [t.shape for t in pool], rng)
            if step is None:
                continue
            steps.append(step)
            pool.append(apply_step(step, pool))
        for step in steps:  # shown by --hypothesis-show-statistics
            event(f"op {step[0]}")
        assume(steps)
        n = len(pool)
        outputs = (n - 1,) if draw(st.booleans()) else (n - 1, draw(st.integers(0, n - 2)))
        for o in outputs:
            vals = pool[o].numpy()
            assume(vals.size and np.all(np.isfinite(vals)) and np.abs(vals).max() < 1e4)
    return (steps, outputs), host


def _check(program, host, order):
    xs = [gx.tensor(h) for h in host]
    gx.testing.check_grads(lambda *a: run(program, a), *xs, order=order)


@settings(max_examples=examples(6))
@given(case=programs(min_steps=2))
def test_random_programs_first_and_second_order(backend, case):
    program, host = case
    _check(program, host, order=2)


@settings(max_examples=examples(4))
@given(case=programs(min_steps=6, max_steps=12))
def test_deep_random_programs_first_order(backend, case):
    program, host = case
    _check(program, host, order=1)


@settings(max_examples=examples(2))
@given(case=programs())
def test_backends_agree_on_values_and_gradients(backend, case):
    program, host = case

    def value_and_grads(name):
        with gx.use_backend(name):
            xs = [gx.tensor(h) for h in host]
            out, vjp_fn = gx.vjp(lambda *a: run(program, a), *xs)
            outs = out if isinstance(out, tuple) else (out,)
            cts = tuple(gx.ones_like(o) for o in outs)
            return [o.numpy() for o in outs], [g.numpy() for g in vjp_fn(
                cts if isinstance(out, tuple) else cts[0])]

    here, ref = value_and_grads(backend), value_and_grads("numpy")
    for a, b in zip(here[0] + here[1], ref[0] + ref[1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


# -- the checks can fail ---------------------------------------------------------------

@gx.primitive(saves_ans=False)
def _wrong_cube(x, /):
    return x * x * x


gx.defvjp(_wrong_cube, lambda g, ans, x: g * 3 * x)  # should be 3 * x**2


@settings(max_examples=examples(0.4))
@given(case=programs(max_steps=3))
def test_a_wrong_rule_inside_a_random_program_is_caught(backend, case):
    (steps, outputs), host = case
    xs = [gx.tensor(h) for h in host]

    def f(*a):
        out = run((steps, outputs), a)
        first = out[0] if isinstance(out, tuple) else out
        return first + gx.sum(_wrong_cube(a[0] + 2.0))

    try:
        gx.testing.check_grads(f, *xs, order=1)
    except AssertionError as exc:
        assert "reverse mode" in str(exc)
    else:
        raise AssertionError("check_grads accepted a VJP rule that is off by a factor of x")


# -- programs the random search failed on, kept as fixed cases ----------------------------

def test_an_output_that_feeds_another_output(backend):
    # backward from several roots where one root is the other's ancestor (and listed twice)
    x = gx.tensor(np.array([0.3, -0.5, 1.1]))

    def f(x):
        h = gx.exp(gx.sin(x))
        return gx.sin(h), h, h

    gx.testing.check_grads(f, x, order=2)
    g = gx.vjp(f, x)[1]((gx.ones_like(x),) * 3)[0]
    hx = np.exp(np.sin(x.numpy()))
    np.testing.assert_allclose(g.numpy(), (np.cos(hx) + 2) * hx * np.cos(x.numpy()), rtol=1e-12)


def test_constant_operands_left_of_the_cotangent_under_create_graph(backend):
    rng = np.random.default_rng(3)
    c = gx.tensor(rng.standard_normal((2, 3)))
    x = gx.tensor(rng.standard_normal(3))
    gx.testing.check_grads(lambda x: gx.sin(c @ x) * c[:, 0], x, order=2)
    h = gx.hessian(lambda x: gx.sum(gx.sin(c @ x)))(x)
    cc, xx = c.numpy(), x.numpy()
    expected = -(cc.T * np.sin(cc @ xx)) @ cc
    np.testing.assert_allclose(h.numpy(), expected, rtol=1e-10, atol=1e-12)


def test_setitem_with_a_partial_key_outside_recording(backend):
    z = gx.zeros((2, 3), dtype="float64")
    z[0:1] = 2.0
    z[1] = gx.tensor([1.0, 2.0, 3.0], dtype="float64")
    np.testing.assert_array_equal(z.numpy(), [[2.0, 2.0, 2.0], [1.0, 2.0, 3.0]])
