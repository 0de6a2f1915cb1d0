"""Train a small MLP on scikit-learn's bundled 8x8 digits (no download) with gradx.

    python examples/train_digits.py                      # CPU, default settings
    python examples/train_digits.py --backend cupy       # the same run on a CUDA GPU

Prints the final test accuracy and the wall time, and saves a checkpoint that
``gx.load`` reads back on any backend.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time
from typing import Any

import numpy as np

import gradx as gx
import gradx.nn as nn
import gradx.nn.functional as F


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", default="numpy", choices=("numpy", "cupy", "array_api_strict"))
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (cosine decay)")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--test-size", type=float, default=0.25)
    p.add_argument("--checkpoint", default=os.path.join("checkpoints", "digits.npz"))
    p.add_argument("--blas-threads", type=int, default=1,
                   help="BLAS threads for the CPU backends (0: the library's default); one is "
                        "fastest for matrices this small, and immune to oversubscribed cores")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    return p.parse_args(argv)


def load_data(test_size: float, seed: int) -> tuple[np.ndarray, ...]:
    """Standardized float32 features and int64 labels, split with stratification."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_size, random_state=seed,
                                              stratify=y)
    mean = x_tr.mean(axis=0)
    std = x_tr.std(axis=0) + 1e-6  # a few border pixels are constant in training
    x_tr = ((x_tr - mean) / std).astype(np.float32)
    x_te = ((x_te - mean) / std).astype(np.float32)
    return x_tr, x_te, y_tr.astype(np.int64), y_te.astype(np.int64)


def blas_threads(n: int) -> contextlib.AbstractContextManager:
    """Limit NumPy's BLAS to ``n`` threads while training (threadpoolctl ships with sklearn)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas") if n > 0 else contextlib.nullcontext()


def make_model(hidden: int, dropout: float = 0.0) -> nn.Module:
    return nn.Sequential(
        nn.Linear(64, hidden), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden, 10),
    )


def accuracy(model: nn.Module, x: Any, y: Any) -> float:
    """Fraction of correct predictions, evaluated without recording a graph."""
    model.eval()
    with gx.no_grad():
        pred = gx.argmax(model(x), axis=1)
    model.train()
    return float(np.mean(pred.numpy() == y.numpy()))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from tqdm.auto import tqdm

    gx.random.seed(args.seed)
    x_tr_h, x_te_h, y_tr_h, y_te_h = load_data(args.test_size, args.seed)
    with gx.use_backend(args.backend), blas_threads(args.blas_threads):
        backend = gx.get_backend()
        x_tr, y_tr = gx.tensor(x_tr_h), gx.tensor(y_tr_h)
        x_te, y_te = gx.tensor(x_te_h), gx.tensor(y_te_h)
        model = make_model(args.hidden, args.dropout)
        opt = gx.optim.Adam(model.parameters(), lr=args.lr)
        n = x_tr.shape[0]
        start = time.perf_counter()
        bar = tqdm(range(args.epochs), desc=f"digits [{backend.name}]", unit="epoch",
                   disable=args.no_progress, file=sys.stderr)
        loss_value = float("nan")
        for epoch in bar:
            # cosine decay from the peak rate: large steps early, fine ones at the end
            for group in opt.param_groups:
                group["lr"] = 0.5 * args.lr * (1.0 + math.cos(math.pi * epoch / args.epochs))
            order = gx.tensor(gx.random.permutation(n))
            total = None  # summed where it is computed: read once per epoch, not per step
            for i in range(0, n, args.batch_size):
                idx = order[i:i + args.batch_size]
                loss = F.cross_entropy(model(x_tr[idx]), y_tr[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                batch_total = loss.detach() * idx.shape[0]
                total = batch_total if total is None else total + batch_total
            loss_value = total.item() / n
            bar.set_postfix(loss=f"{loss_value:.4f}", test_acc=f"{accuracy(model, x_te, y_te):.4f}")
        backend.synchronize()
        wall = time.perf_counter() - start
        train_acc = accuracy(model, x_tr, y_tr)
        test_acc = accuracy(model, x_te, y_te)
    if args.checkpoint:
        os.makedirs(os.path.dirname(os.path.abspath(args.checkpoint)), exist_ok=True)
        gx.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                 "args": vars(args), "test_accuracy": test_acc}, args.checkpoint)
    print(f"backend {backend.name}: final loss {loss_value:.4f}, train accuracy "
          f"{train_acc:.4f}, test accuracy {test_acc:.4f}, wall time {wall:.2f} s"
          + (f", checkpoint {args.checkpoint}" if args.checkpoint else ""))
    return {"model": model, "optimizer": opt, "test_accuracy": test_acc,
            "train_accuracy": train_acc, "loss": loss_value, "wall_time": wall,
            "checkpoint": args.checkpoint, "hidden": args.hidden, "backend": backend.name}


if __name__ == "__main__":
    main()
