"""Differential tests of composed transforms against ``torch.func`` (float64): nested
``grad / jvp / vjp / value_and_grad / hvp / hessian`` whose inner function closes over the
variable an outer transform differentiates (two and three levels, to third order), and
``gx.checkpoint`` around random sub-programs that close over tensors, against the same
program without checkpoint. Random programs come from ``tests/differential``; both hot
paths, every test backend. ``GRADX_DIFFERENTIAL_PROGRAMS`` raises the program count.
"""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("hypothesis")

from differential import nested, programs, runner  # noqa: E402
from hypothesis import Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import gradx.nn  # noqa: E402, F401  (registers the nn primitives)

CI_NESTED = 12
CI_CHECKPOINT = 25
_LONG = int(os.environ.get("GRADX_DIFFERENTIAL_PROGRAMS", "0"))
# CI: no shrink or explain phase (minutes per failure); failing programs are cut down by
# runner.check_or_shrink instead. The long profile shrinks as usual.
PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target) + (
    (Phase.shrink,) if _LONG else ())

COUNTS = {"nested": 0, "skipped": 0, "checkpoint": 0, "ops": 0}


@pytest.fixture(scope="module", autouse=True)
def _report_counts(request):
    yield
    line = (f"differential transforms: {COUNTS['nested']} nested compositions checked "
            f"({COUNTS['skipped']} without a torch answer or the order), "
            f"{COUNTS['checkpoint']} checkpointed programs, {COUNTS['ops']} ops")
    runner.report(request.config, line)


def _small_programs():
    # no in-place steps (torch.func takes the functional form), no size-0 arrays
    return programs.programs(min_ops=3, max_ops=12, inplace=False, empty=False)


@pytest.mark.parametrize("composition", sorted(nested.COMPOSITIONS))
@settings(max_examples=_LONG or CI_NESTED, phases=PHASES)
@given(prog=_small_programs())
def test_nested_transforms_with_closures_match_torch_func(backend, hot_path, composition,
                                                          prog):
    if nested.check_nested(prog, composition, backend=backend,
                           compiled=hot_path == "compiled"):
        COUNTS["nested"] += 1
        COUNTS["ops"] += prog.n_ops
    else:
        COUNTS["skipped"] += 1


@settings(max_examples=_LONG or CI_CHECKPOINT, phases=PHASES)
@given(prog=programs.programs(min_ops=3, max_ops=20, inplace=False), data=st.data())
def test_checkpointed_subprograms_match_the_plain_program(backend, hot_path, prog, data):
    spec = nested.checkpoint_spec(prog, lambda lo, hi: data.draw(st.integers(lo, hi)))
    runner.check_or_shrink(prog, backend=backend, compiled=hot_path == "compiled", ckpt=spec)
    COUNTS["checkpoint"] += 1
    COUNTS["ops"] += prog.n_ops
