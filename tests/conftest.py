"""One ``backend`` fixture: every test that takes it runs on numpy, array_api_strict and
cupy; unavailable ones skip with the reason. GRADX_TEST_BACKENDS narrows the list."""

from __future__ import annotations

import os

import pytest

import gradx as gx

ALL_BACKENDS = ("numpy", "array_api_strict", "cupy")


def _selected() -> tuple[str, ...]:
    chosen = os.environ.get("GRADX_TEST_BACKENDS")
    if not chosen:
        return ALL_BACKENDS
    return tuple(b.strip() for b in chosen.split(",") if b.strip())


def _skip_reason(name: str) -> str | None:
    try:
        backend = gx._backend._instance(name)
        return backend.unavailable_reason()
    except Exception as exc:  # not installed
        return f"{name} is not installed ({exc})"


def backend_params() -> list:
    params = []
    for name in _selected():
        reason = _skip_reason(name)
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        params.append(pytest.param(name, id=name, marks=marks))
    return params


@pytest.fixture(params=backend_params())
def backend(request) -> str:
    """The backend name; new tensors inside the test are created there."""
    with gx.use_backend(request.param):
        yield request.param


def _hot_path_params() -> list:
    built = gx._hot.compiled_available()
    why = "gradx._speedups was not built (no C compiler when gradx was installed)"
    return [pytest.param("compiled", id="compiled",
                         marks=[] if built else [pytest.mark.skip(reason=why)]),
            pytest.param("python", id="python")]


@pytest.fixture(params=_hot_path_params())
def hot_path(request) -> str:
    """Run the test on the compiled hot path and on the Python one: both must agree.
    Modules opt in with ``pytestmark = pytest.mark.usefixtures("hot_path")``."""
    with gx._hot.using_compiled(request.param == "compiled"):
        yield request.param


@pytest.fixture
def numpy_default():
    """NumPy as the process-wide default backend for the test, restored afterwards: for tests
    that mix raw NumPy arrays with new tensors or read the default from another thread,
    whatever GRADX_BACKEND says (``ci/gpu.sh`` runs the suite with GRADX_BACKEND=cupy)."""
    previous = gx._backend._default[0]
    gx.set_backend("numpy")
    with gx.use_backend("numpy"):
        yield
    gx._backend._default[0] = previous


@pytest.fixture(autouse=True)
def _fresh_state():
    """Each test starts from the same seed and the float32 default."""
    gx.random.seed(0)
    yield
    gx.set_default_dtype("float32")


# Hypothesis profiles "ci" (the default) and "long" (--hypothesis-profile=long) for the
# property tests; registered here so that pytest's option finds them at configure time.
import hypothesis_profiles  # noqa: E402, F401
