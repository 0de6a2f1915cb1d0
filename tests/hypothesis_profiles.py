"""Hypothesis profiles for the property-based tests.

``ci`` (the default): derandomized, so every run draws the same examples, with a bounded
example count and no per-example deadline (the first call of an op warms caches).
``long``: many random examples for local runs. Choose one with
``pytest --hypothesis-profile=long`` or ``GRADX_HYPOTHESIS_PROFILE=long``.
"""

from __future__ import annotations

import os

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # the property tests then fail at import with the reason
    settings = None

CI_EXAMPLES = 50
LONG_EXAMPLES = 1000

if settings is not None:
    _quiet = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
              HealthCheck.data_too_large, HealthCheck.filter_too_much]
    settings.register_profile("ci", derandomize=True, database=None, deadline=None,
                              max_examples=CI_EXAMPLES, print_blob=True,
                              suppress_health_check=_quiet)
    settings.register_profile("long", deadline=None, max_examples=LONG_EXAMPLES,
                              print_blob=True, suppress_health_check=_quiet)
    settings.load_profile(os.environ.get("GRADX_HYPOTHESIS_PROFILE", "ci"))


def examples(factor: float) -> int:
    """The loaded profile's example count scaled by a test's own weight (cheap tests run
    more). Read at decoration time, after pytest has loaded ``--hypothesis-profile``."""
    base = settings.default.max_examples if settings is not None else CI_EXAMPLES
    return max(1, int(base * factor))
