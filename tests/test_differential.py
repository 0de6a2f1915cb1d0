"""Differential tests: random programs over every differentiable gradx primitive, run in gradx
and in PyTorch (float64), compared on values, gradients (``backward`` and ``gx.grad``), second
order (``create_graph`` backward, ``gx.hvp``, ``gx.hessian``) and forward mode (``gx.jvp``),
on both hot paths and every test backend. See ``tests/differential`` for the oracle table,
the program generator and the runner.

The CI profile is derandomized and bounded (``CI_PROGRAMS`` per backend and hot path); the
count of programs checked is printed at the end of the module. A longer hunt:
``GRADX_DIFFERENTIAL_PROGRAMS=20000 python -m pytest tests/test_differential.py`` (that many
per backend and path), or ``python -m tests.differential.long_run --programs 20000`` (seeded,
several processes).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("hypothesis")

from differential import oracle, programs, runner  # noqa: E402
from hypothesis import Phase, given, settings  # noqa: E402

import gradx as gx  # noqa: E402
import gradx.nn  # noqa: E402, F401  (registers the nn primitives)

CI_PROGRAMS = 80
PROGRAMS = int(os.environ.get("GRADX_DIFFERENTIAL_PROGRAMS", "0")) or CI_PROGRAMS

COUNTS = {"runs": 0, "programs": set(), "ops": 0}
_REFS: dict[str, runner.Reference] = {}


@pytest.fixture(scope="module", autouse=True)
def _report_counts(request):
    """Print how many programs this module checked (also under output capture)."""
    yield
    line = (f"differential: {len(COUNTS['programs'])} programs checked "
            f"({COUNTS['runs']} runs over backends and hot paths), {COUNTS['ops']} ops")
    runner.report(request.config, line)


def _key(prog: programs.Program) -> str:
    return prog.describe() + "".join(a.tobytes().hex() for a in prog.leaves)


def _reference(prog: programs.Program) -> runner.Reference:
    """PyTorch's answers, shared by the backend and hot-path runs of the same program."""
    key = _key(prog)
    ref = _REFS.get(key)
    if ref is None:
        if len(_REFS) > 256:
            _REFS.clear()
        ref = _REFS[key] = runner.Reference(prog)
    return ref


def _registered() -> set[str]:
    return {name for name, p in gx.primitives().items()
            if p.fun.__module__.split(".")[0] == "gradx"}


def test_oracle_covers_every_registered_primitive():
    # a new primitive fails here until it has a row in oracle.OPS or a reason in EXCLUDED
    mapped, excluded = oracle.mapped_primitives(), set(oracle.EXCLUDED)
    missing = sorted(_registered() - mapped - excluded)
    assert not missing, f"primitives with no differential row and no exclusion: {missing}"
    stale = sorted((mapped | excluded) - _registered())
    assert not stale, f"rows or exclusions name unregistered primitives: {stale}"
    assert not mapped & excluded, f"both mapped and excluded: {sorted(mapped & excluded)}"


def test_generator_reaches_every_row():
    # a row the generator can never apply would silently leave its primitive untested
    seen: set[str] = set()
    for seed in range(400):
        seen |= {s.key for s in programs.random_program(seed).steps}
        if len(seen) > len(oracle.OPS):
            break
    never = sorted(o.key for o in oracle.OPS if o.weight > 0 and o.key not in seen)
    assert not never, f"rows no program in 400 used: {never}"


def test_generated_programs_have_the_promised_features():
    features = {"fanout": False, "broadcast": False, "zero_d": False, "size_one": False,
                "repeated_index": False, "setitem_intermediate": False, "inplace": False}
    for seed in range(200):
        prog = programs.random_program(seed)
        uses: dict[int, int] = {}
        for s in prog.steps:
            for a in s.args:
                uses[a] = uses.get(a, 0) + 1
            row = oracle.OPS_BY_KEY.get(s.key)
            if row is None:
                continue
            features["fanout"] |= any(n > 1 for n in uses.values())
            features["inplace"] |= s.key in ("iadd", "isub", "imul", "idiv")
            features["setitem_intermediate"] |= s.key.startswith("setitem")
            key = s.params.get("key", ())
            features["repeated_index"] |= any(
                k[0] == "a" and len(set(k[1].tolist())) < len(k[1]) for k in key)
        shapes = [a.shape for a in prog.leaves]
        features["zero_d"] |= () in shapes
        features["size_one"] |= any(1 in s for s in shapes)
        features["broadcast"] |= len({len(s) for s in shapes}) > 1
    assert all(features.values()), features


# CI: no shrink or explain phase (minutes per failure); runner.check_or_shrink cuts a failing
# program down instead. The long profile (GRADX_DIFFERENTIAL_PROGRAMS) shrinks as usual.
PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target) + (
    (Phase.shrink,) if os.environ.get("GRADX_DIFFERENTIAL_PROGRAMS") else ())


@settings(max_examples=PROGRAMS, phases=PHASES)
@given(prog=programs.programs())
def test_random_programs_match_torch(backend, hot_path, prog):
    runner.check_or_shrink(prog, _reference(prog), backend=backend,
                           compiled=hot_path == "compiled")
    COUNTS["runs"] += 1
    key = _key(prog)
    if key not in COUNTS["programs"]:
        COUNTS["programs"].add(key)
        COUNTS["ops"] += prog.n_ops


# Edge points that random programs keep away from (each op's domain boundary, zeros, empty
# axes, half precision): PyTorch's value, gradient and second derivative at the point itself,
# NaN and infinity included. (name, gradx f, torch f, input, dtype)
_EDGE = [
    # (sqrt's gradient at 0 is 0 by a documented choice, PyTorch's inf: not compared)
    ("sqrt at -1 and 4", gx.sqrt, torch.sqrt, [-1.0, 4.0], "float64"),
    ("log at 0", gx.log, torch.log, [0.0, 1.0], "float64"),
    ("x ** 0 at 0", lambda x: x ** 0, lambda x: x ** 0, [0.0, 2.0, -1.5], "float64"),
    ("pow(x, 0.0) at 0", lambda x: gx.pow(x, 0.0), lambda x: torch.pow(x, 0.0), [0.0, 2.0],
     "float64"),
    ("x ** 2 at 0", lambda x: x ** 2, lambda x: x ** 2, [0.0, 3.0], "float64"),
    ("prod with zeros", lambda x: gx.prod(x, axis=1),
     lambda x: torch.prod(x, dim=1), [[0.0, 2.0, 3.0], [0.0, 0.0, 3.0], [1.0, 2.0, 0.5]],
     "float64"),
    ("sum over an empty axis", lambda x: gx.sum(x, axis=0), lambda x: torch.sum(x, dim=0),
     np.zeros((0, 3)), "float64"),
    ("mean over an empty axis", lambda x: gx.mean(x, axis=0), lambda x: torch.mean(x, dim=0),
     np.zeros((0, 3)), "float64"),
    ("prod over an empty axis", lambda x: gx.prod(x, axis=0), lambda x: torch.prod(x, dim=0),
     np.zeros((0, 3)), "float64"),
    ("logsumexp over an empty axis", lambda x: gx.logsumexp(x, axis=0),
     lambda x: torch.logsumexp(x, dim=0), np.zeros((0, 3)), "float64"),
    ("float16 sum of 4096 values", lambda x: gx.sum(x), lambda x: torch.sum(x),
     np.full(4096, 0.1), "float16"),
    ("float16 mean of 4096 values", lambda x: gx.mean(x), lambda x: torch.mean(x),
     np.full(4096, 0.1), "float16"),
    ("float16 mean past float16's range", lambda x: gx.mean(x), lambda x: torch.mean(x),
     np.full(4096, 100.0), "float16"),
    ("float16 var of values near 300", lambda x: gx.var(x), lambda x: torch.var(x, correction=0),
     300.0 + np.linspace(-1.0, 1.0, 64), "float16"),
    ("float16 norm past float16's range", lambda x: gx.linalg.norm(x),
     lambda x: torch.linalg.vector_norm(x), np.full(64, 300.0), "float16"),
]


@pytest.mark.parametrize("case", _EDGE, ids=[c[0] for c in _EDGE])
def test_edge_points_match_torch(backend, case):
    name, gf, tf, data, dtype = case
    if dtype == "float16" and backend == "array_api_strict":
        pytest.skip("array_api_strict has no float16")
    arr = np.asarray(data, dtype=np.float64)
    rtol = 1e-7 if dtype == "float64" else 2e-3
    tx = torch.tensor(arr, dtype=getattr(torch, dtype), requires_grad=True)
    want = tf(tx)
    w = torch.from_numpy(np.linspace(0.5, 1.5, want.numel()).reshape(want.shape)).to(want.dtype)
    (g1,) = torch.autograd.grad(torch.sum(want * w), tx, create_graph=True)
    g2 = None
    if g1.requires_grad and arr.size:
        (g2,) = torch.autograd.grad(torch.sum(g1), tx, allow_unused=True)
    with gx.default_dtype("float64"):
        x = gx.tensor(arr.astype(dtype), requires_grad=True)
        got = gf(x)
        assert str(got.dtype).endswith(dtype), f"{name}: dtype {got.dtype}, torch {want.dtype}"
        runner.compare(f"{name}: value", got, want.detach().double(), rtol=rtol)
        gw = gx.tensor(np.linspace(0.5, 1.5, want.numel()).reshape(tuple(want.shape))
                       .astype(dtype))
        gx.sum(got * gw).backward(create_graph=True)
        runner.compare(f"{name}: gradient", x.grad, g1.detach().double(), shape=arr.shape,
                       rtol=rtol)
        if g2 is not None and dtype == "float64":
            first = x.grad
            x.grad = None
            gx.sum(first).backward()
            runner.compare(f"{name}: second derivative", x.grad, g2.detach(),
                           shape=arr.shape)


_SCALAR_OPS = {"x * s": lambda x, s: x * s, "s * x": lambda x, s: s * x,
               "x + s": lambda x, s: x + s, "s - x": lambda x, s: s - x,
               "s / x": lambda x, s: s / x, "x ** s": lambda x, s: x ** s}


@pytest.mark.parametrize("scalar", [np.float64(2.0), np.float32(2.0), np.int64(2), 2.0],
                         ids=["np.float64", "np.float32", "np.int64", "float"])
@pytest.mark.parametrize("op", sorted(_SCALAR_OPS))
def test_scalars_are_weak_as_in_torch(backend, op, scalar):
    # a NumPy or Python scalar takes the tensor's dtype (DESIGN; PyTorch does the same)
    fn = _SCALAR_OPS[op]
    want = fn(torch.ones(2, dtype=torch.float32), scalar)
    x = gx.tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    got = fn(x, scalar)
    assert str(got.dtype).endswith(str(want.dtype).split(".")[-1]), (
        f"{op} with {type(scalar).__name__}: gradx {got.dtype}, torch {want.dtype}")
    gx.sum(got).backward()
    assert str(x.grad.dtype).endswith("float32"), f"{op}: gradient dtype {x.grad.dtype}"
