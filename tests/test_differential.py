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
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        with capture.global_and_fixture_disabled():
            print("\n" + line)
    else:
        print(line)


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


# no explain phase: its source patches cost seconds per failure and the program listing in
# the failure message already says what failed
PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink)


@settings(max_examples=PROGRAMS, phases=PHASES)
@given(prog=programs.programs())
def test_random_programs_match_torch(backend, hot_path, prog):
    runner.check(prog, _reference(prog), backend=backend, compiled=hot_path == "compiled")
    COUNTS["runs"] += 1
    key = _key(prog)
    if key not in COUNTS["programs"]:
        COUNTS["programs"].add(key)
        COUNTS["ops"] += prog.n_ops
