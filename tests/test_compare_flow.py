"""compare_backends does not pass a comparison in which no gradient flowed: gradients that
are absent (no path from the outputs reaches the input) or identically zero are flagged in
the entries, the text and HTML reports and the overall verdict."""

from __future__ import annotations

import json

import numpy as np
import pytest

import gradx as gx

PAIR = ("numpy", "array_api_strict")
pytestmark = pytest.mark.skipif("array_api_strict" not in gx.available_backends(),
                                reason="array_api_strict is not installed")
W0 = np.random.default_rng(0).standard_normal((3, 2))
X0 = np.random.default_rng(1).standard_normal((4, 3))


def _on_strict(x) -> bool:
    return "strict" in gx.array_namespace(x).__name__


def rebuilt(w, x):
    """The model is rebuilt inside from host copies: no gradient reaches w or x."""
    w2, x2 = gx.tensor(w.numpy(), requires_grad=True), gx.tensor(x.numpy())
    return gx.sum(gx.tanh(x2 @ w2))


@pytest.mark.parametrize("per_op", [False, True])
def test_nothing_flowed_is_not_a_pass(per_op):
    report = gx.testing.compare_backends(rebuilt, W0, X0, backends=PAIR, per_op=per_op)
    assert all(e.ok for e in report.entries)  # the values themselves agree (all zero)
    assert not report.ok
    assert [e.name for e in report.no_flow] == ["grad w", "grad x"]
    assert all(e.flow.startswith("absent") for e in report.no_flow)
    text = str(report)
    assert "NOTHING FLOWED" in text.splitlines()[0]
    assert text.count("NO GRAD") == 2 and "no gradient reaches this input" in text
    page = report._repr_html_()
    assert "NOTHING FLOWED" in page and page.count("NO GRAD") == 2
    d = json.loads(json.dumps(report.to_dict()))
    assert d["ok"] is False and d["entries"][1]["flow"].startswith("absent")


def test_all_zero_gradient_is_flagged():
    report = gx.testing.compare_backends(lambda x: gx.sum(gx.floor(x) * 3.0), X0,
                                         backends=PAIR)
    (grad,) = report.no_flow
    assert grad.ok and grad.flow.startswith("zero") and not report.ok
    assert "ZERO GRAD" in str(report) and "ZERO GRAD" in report._repr_html_()
    assert "identically zero on numpy and array_api_strict" in str(report)


def test_one_input_without_gradient_fails_unless_allowed():
    def f(w, threshold):  # threshold never reaches the output
        return gx.sum(gx.tanh(gx.tensor(X0) @ w))

    report = gx.testing.compare_backends(f, W0, np.array(0.3), backends=PAIR)
    assert not report.ok and [e.name for e in report.no_flow] == ["grad threshold"]
    assert "1 of 2 gradients absent or zero" in str(report)
    allowed = gx.testing.compare_backends(f, W0, np.array(0.3), backends=PAIR,
                                          allow_zero_grads=True)
    assert allowed.ok and "(allowed)" in str(allowed) and "NO GRAD" in str(allowed)


def test_gradient_absent_on_one_backend_only():
    def f(x):
        return gx.sum(gx.sin(gx.stop_gradient(x) if _on_strict(x) else x))

    report = gx.testing.compare_backends(f, X0, backends=PAIR)
    (grad,) = report.no_flow
    assert not grad.ok and "absent: no gradient reaches this input on array_api_strict" in \
        grad.flow
    assert not report.ok and "FAIL" in str(report)


@pytest.mark.parametrize("name", ["mlp", "identity", "inner_grad", "checkpoint"])
def test_gradients_that_flow_are_not_flagged(name):
    fns = {
        "mlp": lambda w, x: gx.mean(gx.tanh(x @ w) ** 2),
        "identity": lambda w, x: (w, x),
        "inner_grad": lambda w, x: gx.sum(gx.grad(lambda v: gx.sum(gx.sin(x @ v)))(w)),
        "checkpoint": lambda w, x: gx.sum(gx.checkpoint(lambda h: gx.tanh(h @ w))(x)),
    }
    report = gx.testing.compare_backends(fns[name], W0, X0, backends=PAIR)
    assert report.ok and report.no_flow == [], report
    assert "absent" not in str(report) and "ZERO" not in str(report)
