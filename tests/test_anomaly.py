"""detect_anomaly: backward raises gx.AnomalyError on the first NaN or infinity in a
gradient, naming the primitive whose rule produced it and the file and line of the
forward call that recorded it.

Forward values are deliberately not checked. NaN and infinity in a forward pass are
often intended and harmless for gradients (-inf as a mask before softmax, the unused
branch of ``where(x > 0, log(x), 0)``); what breaks training is a non-finite gradient,
and that is caught where it first appears, with the forward site of its op.
"""

from __future__ import annotations

import importlib.util
import sys
import threading

import numpy as np
import pytest

import gradx as gx
import gradx.nn.functional as F

# every test here runs on the compiled hot path and on the Python one
pytestmark = pytest.mark.usefixtures("hot_path")

HERE = __file__


def _here() -> int:
    return sys._getframe(1).f_lineno


def _raises_anomaly(loss):
    with pytest.raises(gx.AnomalyError) as info:
        loss.backward()
    return str(info.value)


def test_infinite_gradient_names_the_op_and_the_forward_line(backend):
    x = gx.tensor([0.0, 1.0], requires_grad=True)
    with gx.detect_anomaly(), np.errstate(all="ignore"):
        y = gx.log(x); line = _here()  # noqa: E702  d/dx log x at 0 is infinite
        msg = _raises_anomaly(gx.sum(y * 2.0))
    assert "'log'" in msg and "infinity" in msg
    assert f"{HERE}:{line}" in msg, msg


def test_nan_gradient_of_the_where_trap(backend):
    x = gx.tensor([0.0, 2.0], requires_grad=True)
    with gx.detect_anomaly(), np.errstate(all="ignore"):
        safe = gx.where(x > 0, gx.log(x), 0.0); line = _here()  # noqa: E702
        msg = _raises_anomaly(gx.sum(safe))  # 0 / 0 in log's rule at x = 0
    assert "'log'" in msg and "NaN" in msg
    assert f"{HERE}:{line}" in msg, msg
    assert isinstance(gx.AnomalyError("x"), FloatingPointError)


def test_the_first_anomaly_in_backward_order_is_reported(backend):
    x = gx.tensor([0.0, 4.0], requires_grad=True)
    with gx.detect_anomaly(), np.errstate(all="ignore"):
        h = x**0.5; pow_line = _here()  # noqa: E702  infinite derivative at 0 as well
        y = gx.log(h); log_line = _here()  # noqa: E702  reached first in backward
        msg = _raises_anomaly(gx.sum(y))
    assert "'log'" in msg and f"{HERE}:{log_line}" in msg
    assert "'pow'" not in msg and f":{pow_line}" not in msg


def test_an_op_inside_a_composed_function_reports_the_callers_line(backend):
    x = gx.tensor([1e30, 0.0, 0.0], requires_grad=True)  # float32: |x|**3 overflows
    with gx.detect_anomaly(), np.errstate(all="ignore"):
        n = gx.linalg.norm(x, ord=3); line = _here()  # noqa: E702  sum(|x|**3) ** (1/3)
        msg = _raises_anomaly(n)
    assert "'pow'" in msg and f"{HERE}:{line}" in msg, msg
    assert "gradx/ops" not in msg


def test_anomaly_inside_transforms_and_create_graph(backend):
    x = gx.tensor([0.0, 1.0])
    with gx.detect_anomaly(), np.errstate(all="ignore"):
        with pytest.raises(gx.AnomalyError, match="'log'"):
            gx.grad(lambda t: gx.sum(gx.log(t)))(x)
        with pytest.raises(gx.AnomalyError, match="'sqrt'|'pow'|'divide'"):
            gx.grad(lambda t: gx.sum(gx.grad(lambda u: gx.sum(u**1.5))(t)))(x)
        xt = gx.tensor([0.0, 1.0], requires_grad=True)
        with pytest.raises(gx.AnomalyError):
            gx.sum(gx.log(xt)).backward(create_graph=True)


def test_enabled_only_for_backward_still_raises_and_says_why_no_site(backend):
    x = gx.tensor([0.0, 1.0], requires_grad=True)
    with np.errstate(all="ignore"):
        y = gx.sum(gx.log(x))
    with gx.detect_anomaly(), np.errstate(all="ignore"):
        msg = _raises_anomaly(y)
    assert "'log'" in msg and "enable detect_anomaly before the forward pass" in msg


def test_off_by_default_gradients_are_returned_as_computed(backend):
    x = gx.tensor([0.0, 1.0], requires_grad=True)
    with np.errstate(all="ignore"):
        gx.sum(gx.log(x)).backward()
    assert np.isinf(x.grad.numpy()[0]) and x.grad.numpy()[1] == 1.0


def test_finite_gradients_pass_and_forward_masks_are_not_anomalies(backend):
    logits = gx.tensor([[-np.inf, 0.5, 1.0], [2.0, -np.inf, 0.0]], requires_grad=True)
    x = gx.tensor([-1.0, 2.0], requires_grad=True)
    with gx.detect_anomaly(), np.errstate(all="ignore"):
        loss = F.cross_entropy(logits, gx.tensor([2, 0], backend=logits.backend))
        loss = loss + gx.sum(gx.where(x > 0, gx.log(gx.abs(x)), 0.0))  # log(-1) unused
        loss.backward()
    assert np.all(np.isfinite(logits.grad.numpy()))
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.5])


def test_the_anomaly_mode_is_per_thread(backend):
    name = gx.get_backend().name
    seen = {}

    def other():
        with gx.use_backend(name):
            x = gx.tensor([0.0], requires_grad=True)
            with np.errstate(all="ignore"):
                gx.sum(gx.log(x)).backward()  # no anomaly mode here: no exception
            seen["grad"] = x.grad.numpy()[0]

    with gx.detect_anomaly(), np.errstate(all="ignore"):
        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert np.isinf(seen["grad"])


def test_user_code_in_a_directory_named_gradx_is_still_the_site(backend, tmp_path):
    # a project checked out as .../gradx/ must not be mistaken for the library itself
    folder = tmp_path / "gradx" / "scripts"
    folder.mkdir(parents=True)
    script = folder / "train_step.py"
    script.write_text("import gradx as gx\n\n\ndef step(x):\n    return gx.sum(gx.log(x))\n")
    spec = importlib.util.spec_from_file_location("train_step_for_anomaly", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    x = gx.tensor([0.0, 1.0], requires_grad=True)
    with gx.detect_anomaly(), np.errstate(all="ignore"):
        msg = _raises_anomaly(module.step(x))
    assert f"{script}:5 in step" in msg, msg
