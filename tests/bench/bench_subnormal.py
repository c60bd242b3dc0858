"""What flushing subnormal numbers once an epoch saves: one table network trained with it and without, in one run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tests/bench/bench_subnormal.py [--epochs 180]

The network a ``--budget 2m`` run chose on Wells (draw 2, 2026-12-07): 950 ReLU
units, Adam at 0.0002, L2 0.004, dropout 0.23, batches of 16, cosine schedule,
trained on draw 0's z-scored training rows (``bench_table_inputs.load``; the test
rows are never read), one BLAS thread as in a worker. The baseline is the same
training with ``Optimizer.flush_subnormal`` made a no-op. Prints each one's
seconds, the epochs' seconds first and last tenth, the subnormal weights it ends
with, and its final training loss (the flush changes no value float32 can add).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.bench_table_inputs import folds_of, treatment  # noqa: E402


def main() -> None:
    from threadpoolctl import threadpool_limits

    from model import TrainConfig, train
    from model.optim import Optimizer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=180)
    args = parser.parse_args()
    threadpool_limits(1)
    X, y, _, _ = folds_of("Wells", 3)
    Xz = treatment(X, "zscore").fit_transform(X).astype(np.float32)
    labels = np.unique(y, return_inverse=True)[1]
    config = TrainConfig(
        hidden=(950,),
        optimizer="adam",
        learning_rate=2e-4,
        l2=0.004,
        dropout=0.226,
        batch_size=16,
        epochs=args.epochs,
        lr_schedule="cosine",
        seed=0,
    )
    flush = Optimizer.flush_subnormal
    for name, method in (("without the flush", lambda self: None), ("with the flush", flush)):
        Optimizer.flush_subnormal = method  # type: ignore[method-assign]
        start = time.perf_counter()
        result = train(config, Xz, labels, Xz[:200], labels[:200], n_classes=2)
        seconds = time.perf_counter() - start
        w = result.network.flat_parameters
        subnormal = int(((w != 0) & (np.abs(w) < np.finfo(np.float32).tiny)).sum())
        epochs = [e.seconds for e in result.history]
        tenth = max(1, len(epochs) // 10)
        print(
            f"{name:<18} {seconds:6.2f} s; an epoch {np.mean(epochs[:tenth]):.4f} s first, "
            f"{np.mean(epochs[-tenth:]):.4f} s last; {subnormal} of {w.size} weights subnormal; "
            f"train loss {result.history[-1].train_loss:.6f}",
            flush=True,
        )
    Optimizer.flush_subnormal = flush  # type: ignore[method-assign]


if __name__ == "__main__":
    main()
