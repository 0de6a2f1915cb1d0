"""No host synchronization inside a training step, checked without a GPU.

``host_sync.GuardedBackend`` behaves as a device backend (arrays off the host) and notes
every value read back on the host and every host-to-device copy. A forward, loss, backward,
optimizer step and zero_grad on it must note nothing: on CuPy each note would be a stall
of the CUDA stream.
"""

from __future__ import annotations

import numpy as np
import pytest
from host_sync import GuardedBackend, watching

import gradx as gx
import gradx.nn as nn
import gradx.nn.functional as F

# every test here runs on the compiled hot path and on the Python one
pytestmark = pytest.mark.usefixtures("hot_path")

RNG = np.random.default_rng(0)
X = RNG.standard_normal((16, 6)).astype(np.float32)
LABELS = np.arange(16) % 3
TARGET = RNG.standard_normal((16, 3)).astype(np.float32)
BINARY = (RNG.random((16, 3)) > 0.5).astype(np.float32)
TOKENS = RNG.integers(0, 10, (16, 4))


@pytest.fixture
def device():
    backend = GuardedBackend()
    with gx.use_backend(backend):
        gx.random.seed(0)
        yield backend


def _mlp(act):
    return nn.Sequential(nn.Linear(6, 8), act, nn.LayerNorm(8), nn.Linear(8, 3))


class _Embedder(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 5)
        self.out = nn.Linear(20, 3)

    def forward(self, tokens):
        return self.out(self.emb(tokens).reshape(16, 20))


MODELS = {
    "mlp-relu": (lambda: _mlp(nn.ReLU()), "x"),
    "mlp-gelu": (lambda: _mlp(nn.GELU()), "x"),
    "mlp-tanh-sigmoid": (lambda: nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 8),
                                               nn.Sigmoid(), nn.Linear(8, 3)), "x"),
    "embedding": (_Embedder, "tokens"),
}
LOSSES = {
    "cross_entropy": lambda out, d: F.cross_entropy(out, d["labels"]),
    "cross_entropy-smooth-sum": lambda out, d: F.cross_entropy(
        out, d["labels"], label_smoothing=0.1, reduction="sum"),
    "mse": lambda out, d: F.mse_loss(out, d["target"]),
    "bce_with_logits": lambda out, d: F.binary_cross_entropy_with_logits(out, d["binary"]),
}
OPTIMIZERS = {
    "sgd-nesterov-wd": lambda ps: gx.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True,
                                               weight_decay=1e-4),
    "adam": lambda ps: gx.optim.Adam(ps, lr=1e-3),
    "adamw-amsgrad": lambda ps: gx.optim.AdamW(ps, lr=1e-3, amsgrad=True),
}
CASES = [(m, loss, o) for m in MODELS for loss in LOSSES for o in OPTIMIZERS
         if m == "mlp-relu" or (loss == "cross_entropy" and o == "adam")]


def _data():
    """Inputs on the device, moved before the step as a data loader would."""
    return {"x": gx.tensor(X), "labels": gx.tensor(LABELS), "target": gx.tensor(TARGET),
            "binary": gx.tensor(BINARY), "tokens": gx.tensor(TOKENS)}


HOST_READS = {
    "float(tensor)": lambda x, loss: float(loss),
    "tensor.item()": lambda x, loss: loss.item(),
    "bool(tensor)": lambda x, loss: bool(loss > 0),
    "int(tensor)": lambda x, loss: int(gx.argmax(x[0])),
    "tensor.numpy()": lambda x, loss: loss.numpy(),
    "if on a raw array": lambda x, loss: bool(loss.data > 0),
    "float of a raw array": lambda x, loss: float(loss.data),
    "raw array .item()": lambda x, loss: loss.data.item(),
    "host data in": lambda x, loss: gx.tensor(X),
}


@pytest.mark.parametrize("read", list(HOST_READS))
def test_the_guard_notices_every_kind_of_host_read(device, read):
    x = gx.tensor(X, requires_grad=True)
    loss = (x * x).sum()
    with watching() as events:
        HOST_READS[read](x, loss)
    assert events, f"{read} went unnoticed"


@pytest.mark.parametrize("model_name,loss_name,opt_name", CASES)
@pytest.mark.parametrize("set_to_none", [True, False])
def test_training_step_never_waits_for_the_device(device, model_name, loss_name, opt_name,
                                                  set_to_none):
    make, input_name = MODELS[model_name]
    model = make()
    opt = OPTIMIZERS[opt_name](model.parameters())
    data = _data()
    loss_fn = LOSSES[loss_name]

    def step():
        opt.zero_grad(set_to_none=set_to_none)
        loss = loss_fn(model(data[input_name]), data)
        loss.backward()
        opt.step()
        return loss

    step()  # the first step creates optimizer state; it must not sync either
    with watching() as events:
        for _ in range(2):
            loss = step()
    assert events == []
    assert np.isfinite(loss.numpy()), "the steps computed something"


def test_checkpointed_step_never_waits_for_the_device(device):
    layer1, layer2 = nn.Linear(6, 8), nn.Linear(8, 3)
    opt = gx.optim.Adam([*layer1.parameters(), *layer2.parameters()], lr=1e-3)
    x, labels = gx.tensor(X), gx.tensor(LABELS)
    with watching() as events:
        for _ in range(2):
            opt.zero_grad()
            h = gx.checkpoint(lambda t: gx.tanh(layer1(t)))(x)
            F.cross_entropy(layer2(h), labels).backward()
            opt.step()
    assert events == []


def test_dropout_copies_one_host_drawn_mask_per_layer(device):
    """Masks come from the seeded host generator, so every backend drops the same units;
    the price on a device is one host-to-device copy per dropout call, and nothing else."""
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 8),
                          nn.Dropout(0.1), nn.Linear(8, 3))
    opt = gx.optim.SGD(model.parameters(), lr=0.1)
    x, labels = gx.tensor(X), gx.tensor(LABELS)
    with watching() as events:
        opt.zero_grad()
        F.cross_entropy(model(x), labels).backward()
        opt.step()
    assert events == ["host to device", "host to device"]
    model.eval()
    with watching() as events:
        F.cross_entropy(model(x), labels)
    assert events == []


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_on_a_device_marks_bad_labels_nan_without_reading_them(device,
                                                                             smoothing):
    logits = gx.tensor(X[:4, :3], requires_grad=True)
    labels = gx.tensor(np.array([0, 3, 2, -1]))
    with watching() as events:
        rows = F.cross_entropy(logits, labels, label_smoothing=smoothing, reduction="none")
        total = F.cross_entropy(logits, labels, label_smoothing=smoothing)
        total.backward()
    assert events == []
    got = rows.numpy()
    assert np.isnan(got[[1, 3]]).all() and np.isfinite(got[[0, 2]]).all()
    assert np.isnan(total.numpy())
    assert np.isfinite(logits.grad.numpy()).all()
    good = F.cross_entropy(gx.tensor(X[:4, :3])[gx.tensor(np.array([0, 2]))],
                           gx.tensor(np.array([0, 2])), label_smoothing=smoothing,
                           reduction="none")
    np.testing.assert_allclose(got[[0, 2]], good.numpy(), rtol=1e-6)


def test_cross_entropy_on_a_device_checks_labels_under_detect_anomaly(device):
    with gx.detect_anomaly(), pytest.raises(F.ArgumentError, match=r"\[0, 3\).*\[-1, 3\]"):
        F.cross_entropy(gx.tensor(X[:4, :3]), gx.tensor(np.array([0, 3, 2, -1])))


def test_only_host_backends_claim_free_reads():
    from gradx._backend import resolve
    from gradx.backends.cupy_backend import CupyBackend

    assert resolve("numpy").host_resident
    assert resolve("array_api_strict").host_resident
    assert not CupyBackend.host_resident
    assert not GuardedBackend.host_resident
