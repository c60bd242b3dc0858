"""Test accuracy of one sensible fixed configuration per data set (no search).

    python tests/bench/bench_accuracy.py

Fashion-MNIST: 784-256-128-10 ReLU, dropout 0.2, Nesterov momentum 0.9, L2 1e-4,
batch 128, step decay, 30 epochs, early stopping on validation loss (patience 6);
hand-tuned from-scratch MLPs typically report 85-88%. Digits: 64-256-10 ReLU,
three seeds (its test split has 359 images: one image is 0.28 points).
The test split is touched once per network, after training.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from model import TrainConfig, load_dataset, train  # noqa: E402
from model.datasets import DatasetNotFoundError  # noqa: E402

CONFIGS = {
    "digits": TrainConfig(hidden=(256,), dropout=0.2, learning_rate=0.1, batch_size=32, epochs=80,
                          l2=1e-4, patience=15, seed=0),
    "fashion-mnist": TrainConfig(hidden=(256, 128), dropout=0.2, optimizer="nesterov", learning_rate=0.05,
                                 momentum=0.9, l2=1e-4, batch_size=128, epochs=30, lr_schedule="step",
                                 lr_decay=0.3, lr_step=12, patience=6, seed=0),
}


SEEDS = {"digits": (0, 1, 2), "fashion-mnist": (0,)}
VAL_FRACTION = {"digits": 0.2, "fashion-mnist": 0.1}  # as the search uses them


def score(name: str, config: TrainConfig) -> tuple[float, int, float]:
    data = load_dataset(name, val_fraction=VAL_FRACTION[name])
    start = time.perf_counter()
    result = train(config, data.X_train, data.y_train, data.X_val, data.y_val, n_classes=data.n_classes)
    accuracy = float(np.mean(result.network.predict(data.X_test) == data.y_test))
    return accuracy, result.best_epoch, time.perf_counter() - start


def main() -> None:
    with threadpool_limits(1):
        for name, config in CONFIGS.items():
            for seed in SEEDS[name]:
                try:
                    accuracy, epoch, seconds = score(name, replace(config, seed=seed))
                except DatasetNotFoundError as exc:
                    print(f"{name}: skipped ({str(exc).splitlines()[0]})")
                    break
                print(f"{name:<14} seed {seed}  test accuracy {accuracy:.4f}  "
                      f"(best epoch {epoch}, {seconds:.1f} s, one BLAS thread)")


if __name__ == "__main__":
    main()
