"""Logistic regression written in NumPy style, differentiated by gradx.

The model and loss are plain NumPy code; the only gradx-specific line is the import
(``import gradx.numpy as np`` where autograd code has ``import autograd.numpy as np``) and
``gx.grad`` in place of ``autograd.grad``. Inputs are NumPy float64 arrays, so the whole
computation runs in float64 as it would in NumPy. Run:
``python examples/numpy_logistic_regression.py`` (``--backend cupy`` on a CUDA machine runs the
same code on the GPU).
"""

from __future__ import annotations

import argparse

import numpy as onp

import gradx as gx
import gradx.numpy as np


def sigmoid(x):
    return 0.5 * (np.tanh(x / 2.0) + 1.0)


def logistic_predictions(weights, inputs):
    """Probability of the positive label for each row of ``inputs`` (N, D), weights (D,)."""
    return sigmoid(np.dot(inputs, weights))


def training_loss(weights, inputs, targets):
    """Negative log-likelihood of boolean ``targets`` (N,)."""
    preds = logistic_predictions(weights, inputs)
    label_probabilities = preds * targets + (1 - preds) * (1 - targets)
    return -np.sum(np.log(label_probabilities))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="numpy")
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    gx.set_backend(args.backend)

    rng = onp.random.default_rng(0)
    true_w = onp.array([1.5, -2.0, 0.5])
    inputs = gx.asarray(rng.standard_normal((200, 3)))
    targets = gx.asarray((rng.random(200) < 1 / (1 + onp.exp(-inputs.numpy() @ true_w)))
                         .astype("float64"))
    weights = gx.asarray(onp.zeros(3))
    training_gradient = gx.grad(training_loss)

    print(f"initial loss: {float(training_loss(weights, inputs, targets)):.4f}")
    for _ in range(args.steps):
        weights = weights - 0.01 * training_gradient(weights, inputs, targets)
    print(f"trained loss: {float(training_loss(weights, inputs, targets)):.4f}")
    print("weights:", onp.round(weights.numpy(), 3), "(data drawn with", true_w, ")")


if __name__ == "__main__":
    main()
