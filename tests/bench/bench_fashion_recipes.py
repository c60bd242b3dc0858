"""Which training recipe a wide MLP needs on Fashion-MNIST within the search's time budget.

    python tests/bench/bench_fashion_recipes.py epoch-time          # seconds per epoch by width
    python tests/bench/bench_fashion_recipes.py val exp30 cos30 ...  # selection: train -> validation
    python tests/bench/bench_fashion_recipes.py test cos30 --seeds 0 1 2   # final: train+val -> test

Not collected by pytest. One BLAS thread per training (threadpoolctl), at most
``--jobs`` (default 2) trainings at once, because the search's two workers share
the machine's two cores the same way. ``val`` trains on the training split and
reports the validation curve (last epoch, best epoch): the only figures used to
choose a recipe. ``test`` trains on train + validation, as ``best --retrain``
does, and scores the final epoch once on the test split. Each finished run is
also appended as one JSON line to ``--log`` (default fashion_recipes.jsonl in
the working directory), with the load average at its start, since the machine
is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from model import TrainConfig, load_dataset, train  # noqa: E402
from model.augment import Augmenter  # noqa: E402
from model.network import Network  # noqa: E402
from model.optim import learning_rate_at, make_optimizer  # noqa: E402
from model.train import _run_epoch  # noqa: E402

# The recipe: 2048 units, dropout 0.4, Nesterov, lr 0.05, L2 1e-5 (test 0.9020 with a
# 100x exponential decay over 40 epochs, trained on train + val).
BASE = TrainConfig(hidden=(2048,), dropout=0.4, optimizer="nesterov", learning_rate=0.05, momentum=0.9,
                   l2=1e-5, batch_size=128, epochs=30)


def _exp(epochs: int) -> dict:
    return {"lr_schedule": "exponential", "lr_decay": 0.01 ** (1 / epochs), "epochs": epochs}  # 100x over the run


def _cos(epochs: int) -> dict:
    return {"lr_schedule": "cosine", "epochs": epochs}


RECIPES: dict[str, TrainConfig] = {
    "exp30": replace(BASE, **_exp(30)),
    "exp40": replace(BASE, **_exp(40)),
    "cos30": replace(BASE, **_cos(30)),
    "cos40": replace(BASE, **_cos(40)),
    "cos30-lr0.1": replace(BASE, **_cos(30), learning_rate=0.1),
    "cos30-shift1": replace(BASE, **_cos(30), augment_shift=1),
    "cos30-shift2": replace(BASE, **_cos(30), augment_shift=2),
    "cos30-flip": replace(BASE, **_cos(30), augment_flip=True),
    "cos30-shift1-flip": replace(BASE, **_cos(30), augment_shift=1, augment_flip=True),
    "cos30-warp0.5": replace(BASE, **_cos(30), augment_warp=0.5),
    "cos30-warp1": replace(BASE, **_cos(30), augment_warp=1.0),
    "cos30-warp0.5-d0.3": replace(BASE, **_cos(30), augment_warp=0.5, dropout=0.3),
    "cos30-warm2": replace(BASE, **_cos(30), warmup=2),
    "cos30-adam": replace(BASE, **_cos(30), optimizer="adam", learning_rate=1e-3),
    "cos30-1024x2": replace(BASE, **_cos(30), hidden=(1024, 1024), dropout=0.3),
    "cos30-4096": replace(BASE, **_cos(30), hidden=(4096,), dropout=0.5),
    "cos30-d0.3": replace(BASE, **_cos(30), dropout=0.3),
    "cos30-d0.5": replace(BASE, **_cos(30), dropout=0.5),
    "cos10": replace(BASE, **_cos(10)),
    "cos10-shift1": replace(BASE, **_cos(10), augment_shift=1),
    "cos10-1024": replace(BASE, **_cos(10), hidden=(1024,), dropout=0.3),
    "cos10-adam": replace(BASE, **_cos(10), optimizer="adam", learning_rate=1e-3),
    "cos15": replace(BASE, **_cos(15)),
}


def _load_avg() -> float:
    return os.getloadavg()[0]


def run_one(name: str, mode: str, seed: int) -> dict:
    """Train one recipe with one BLAS thread; returns a row for the table."""
    config = replace(RECIPES[name], seed=seed)
    data = load_dataset("fashion-mnist", normalization="image")
    if mode == "val":
        X, y, X_eval, y_eval = data.X_train, data.y_train, data.X_val, data.y_val
    else:  # as best --retrain: train + validation, the test split as the (unused for selection) monitor
        X, y = np.concatenate([data.X_train, data.X_val]), np.concatenate([data.y_train, data.y_val])
        X_eval, y_eval = data.X_test, data.y_test
    load, cpu = _load_avg(), time.process_time()
    with threadpool_limits(1):
        result = train(config, X, y, X_eval, y_eval, n_classes=data.n_classes, image_shape=data.image_shape)
    accs = [s.val_accuracy for s in result.history]
    return {"recipe": name, "mode": mode, "seed": seed, "epochs": len(accs), "last": accs[-1],
            "best": max(accs), "best_epoch": int(np.argmax(accs)) + 1, "curve": [round(a, 4) for a in accs],
            "s_per_epoch": float(np.median([s.seconds for s in result.history])), "seconds": result.seconds,
            "cpu_per_epoch": (time.process_time() - cpu) / len(accs), "load": load,
            "config": {k: v for k, v in asdict(config).items()}}


def epoch_time(widths: list[tuple[int, ...]], batch_size: int, rows: int) -> None:
    """CPU seconds of one epoch per width, best of 2, one thread; plain, per-step LR, and + augmentation.

    Thread CPU time (not wall): the machine is shared, and the scheduler's gaps are not our cost.
    Scaled from ``rows`` training rows to a full 48,600-row epoch (cost is linear in rows).
    """
    data = load_dataset("fashion-mnist", normalization="image")
    X, y = np.ascontiguousarray(data.X_train[:rows]), data.y_train[:rows]
    scale = data.X_train.shape[0] / rows
    print(f"load {_load_avg():.2f}; batch {batch_size}, one BLAS thread; CPU seconds per 48,600-row epoch "
          f"(measured on {rows} rows)")
    print(f"{'hidden':<14} {'plain':>7} {'per-step lr':>12} {'+shift2+flip':>13}")
    with threadpool_limits(1):
        for hidden in widths:
            row = []
            for per_step, aug in ((False, False), (True, False), (True, True)):
                net = Network(784, hidden, 10, "relu", dropout=0.4, l2=1e-5, seed=np.random.default_rng(0))
                opt = make_optimizer("nesterov", [net.flat_parameters], 0.05, 0.9)
                lr_at = (lambda t: learning_rate_at(t, 0.05, "cosine", epochs=30, warmup=2)) if per_step else None
                augment = Augmenter((28, 28), 2, True, np.random.default_rng(3)) if aug else None
                rng, drop = np.random.default_rng(1), np.random.default_rng(2)
                times = []
                for epoch in (1, 2):
                    t = time.thread_time()
                    _run_epoch(net, opt, X, y, batch_size, rng, drop, epoch, lr_at, augment)
                    times.append(time.thread_time() - t)
                row.append(min(times) * scale)
            print(f"{'-'.join(map(str, hidden)):<14} {row[0]:>7.2f} {row[1]:>12.2f} {row[2]:>13.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("epoch-time", "val", "test"))
    parser.add_argument("recipes", nargs="*", help=f"names from: {', '.join(RECIPES)}")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds per recipe")
    parser.add_argument("--jobs", type=int, default=2, help="trainings at once, one BLAS thread each")
    parser.add_argument("--batch-size", type=int, default=128, help="epoch-time only")
    parser.add_argument("--rows", type=int, default=12_000, help="epoch-time only: rows timed per epoch")
    parser.add_argument("--log", default="fashion_recipes.jsonl", help="append one JSON line per run here")
    args = parser.parse_args()
    if args.mode == "epoch-time":
        epoch_time([(512,), (1024,), (2048,), (1024, 1024), (4096,)], args.batch_size, args.rows)
        return
    unknown = [r for r in args.recipes if r not in RECIPES]
    if unknown or not args.recipes:
        parser.error(f"recipes must be some of {', '.join(RECIPES)}, got {args.recipes}")
    jobs = [(r, args.mode, s) for r in args.recipes for s in args.seeds]
    print(f"{'recipe':<20} {'mode':<5} {'seed':>4} {'last':>7} {'best':>7} {'@ep':>4} {'s/ep':>6} "
          f"{'total s':>8} {'load':>5}")
    with ProcessPoolExecutor(max_workers=args.jobs) as pool, open(args.log, "a") as log:
        for row in pool.map(run_one, *zip(*jobs)):
            log.write(json.dumps(row) + "\n")
            log.flush()
            print(f"{row['recipe']:<20} {row['mode']:<5} {row['seed']:>4} {row['last']:>7.4f} {row['best']:>7.4f} "
                  f"{row['best_epoch']:>4} {row['s_per_epoch']:>6.2f} {row['seconds']:>8.1f} {row['load']:>5.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
