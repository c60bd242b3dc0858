"""Epoch time of a regression network: the fused fast path (what ``train()`` runs) against the reference path.

Run as ``python tests/bench/bench_regression_epoch.py`` (not collected by pytest). One
BLAS thread; make_friedman1 (20,000 rows, 10 features) with 10-256-128-1 and the
diabetes table (442 rows) with 10-64-1, relu, momentum 0.9, l2 1e-4, batch 128; a
10-class classifier of the same shape for comparison. The reference path is
``Network.batch_gradients`` then ``Momentum.step_scaled``; the fast path
``FastPath.momentum_step`` (model/fused.py), which serves every loss of ``LOSSES``.
The two are interleaved epoch by epoch and each figure is the best of the runs
(CPU time of this thread, steadier than wall time on a shared machine).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sklearn.datasets import load_diabetes, make_friedman1  # noqa: E402

from model import TrainConfig, Training  # noqa: E402
from model.fused import FastPath  # noqa: E402
from model.train import _run_epoch  # noqa: E402


class Reference(FastPath):
    """Each batch through the reference maths (``Network.batch_gradients``), then the optimizer's own step."""

    def gradients(self, X, y, rng=None, *, scale=1.0, sample_weight=None):
        return self.net.batch_gradients(X, y, rng, scale=scale, sample_weight=sample_weight)


def data(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "friedman1":
        X, y = make_friedman1(20_000, n_features=10, noise=1.0, random_state=0)
    else:
        X, y = load_diabetes(return_X_y=True)
        X = (X - X.mean(axis=0)) / X.std(axis=0)
    return X.astype(np.float32), ((y - y.mean()) / y.std()).astype(np.float32)


def best_epochs(config: TrainConfig, X: np.ndarray, y: np.ndarray, repeats: int) -> dict[str, float]:
    """Best CPU seconds of one epoch, fast and reference, interleaved."""
    times: dict[str, list[float]] = {"fast": [], "reference": []}
    runs = {kind: Training(config, X, y, X[:500], y[:500]) for kind in times}
    for run in runs.values():
        run.step()  # the first epoch allocates
    for _ in range(repeats):
        for kind, run in runs.items():
            optimizer = run._optimizer
            path = run._fast if kind == "fast" else Reference(run.net)
            if kind == "reference":
                optimizer.accumulator = lambda: None  # the plain optimizer step
            start = time.thread_time()
            _run_epoch(run.net, optimizer, run.X_train, run.y_train, config.batch_size, run._shuffle_rng,
                       run._dropout_rng, 2, None, None, path)  # fmt: skip
            times[kind].append(time.thread_time() - start)
    return {kind: min(seconds) for kind, seconds in times.items()}


def main() -> None:
    for name, hidden, repeats in (("friedman1", (256, 128), 15), ("diabetes", (64,), 200)):
        X, y = data(name)
        labels = (np.argsort(np.argsort(y)) * 10 // len(y)).astype(np.int64)  # 10 classes by rank
        for loss, dropout in (("squared_error", 0.0), ("huber", 0.0), ("squared_error", 0.2), ("cross_entropy", 0.0)):
            config = TrainConfig(hidden=hidden, loss=loss, dropout=dropout, l2=1e-4, batch_size=128)
            best = best_epochs(config, X, labels if loss == "cross_entropy" else y, repeats)
            fast, reference = best["fast"], best["reference"]
            print(
                f"{name:9s} {X.shape[0]:6d} rows {hidden!s:10s} {loss:13s} dropout {dropout}: "
                f"fast {fast * 1e3:7.2f} ms, reference {reference * 1e3:7.2f} ms ({reference / fast:.2f}x)"
            )


if __name__ == "__main__":
    with threadpool_limits(1):
        main()
