"""Which network family fits a table, by cross-validation on training rows only: the evidence for a table space.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tests/bench/bench_table_networks.py [TABLE ...]
        [--folds 5] [--configs NAME ...]

The budget's space was learnt from digits and Fashion-MNIST (one or two wide
layers, Nesterov momentum, a cosine schedule). This bench trains fixed networks
of that family and of the families the tabular literature uses (deeper, Adam,
decoupled weight decay, longer) on the same folds of draw 0's training rows
(``bench_table_inputs.load`` and its z-scored inputs; the test rows are never
read), and prints each one's mean CV score (accuracy; R² for numbers) and
seconds. A family that wins on most tables is a candidate for the table space;
its place in the space is then earned by the budget benches
(``bench_tables.py``, ``bench_tasks.py``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench import bench_tables, bench_tasks  # noqa: E402
from tests.bench.bench_table_inputs import fit_score, folds_of, treatment  # noqa: E402

CONFIGS: dict[str, dict] = {
    "space-like nesterov 1x512 60ep": {"hidden": (512,), "optimizer": "nesterov", "learning_rate": 0.03,
                                       "batch_size": 64, "epochs": 60, "dropout": 0.2, "lr_schedule": "cosine"},
    "space-like nesterov 2x512 60ep": {"hidden": (512, 512), "optimizer": "nesterov", "learning_rate": 0.02,
                                       "batch_size": 64, "epochs": 60, "dropout": 0.2, "lr_schedule": "cosine"},
    "nesterov 3x256 60ep": {"hidden": (256, 256, 256), "optimizer": "nesterov", "learning_rate": 0.02,
                            "batch_size": 64, "epochs": 60, "dropout": 0.2, "lr_schedule": "cosine"},
    "adam 1x512 100ep": {"hidden": (512,), "optimizer": "adam", "learning_rate": 1e-3, "batch_size": 128,
                         "epochs": 100, "dropout": 0.2, "lr_schedule": "cosine"},
    "adam 3x256 100ep": {"hidden": (256, 256, 256), "optimizer": "adam", "learning_rate": 1e-3, "batch_size": 128,
                         "epochs": 100, "dropout": 0.1, "lr_schedule": "cosine"},
    "adamw 3x256 100ep wd1e-2": {"hidden": (256, 256, 256), "optimizer": "adam", "learning_rate": 1e-3,
                                 "batch_size": 128, "epochs": 100, "dropout": 0.1, "lr_schedule": "cosine",
                                 "weight_decay": 1e-2},
}


def cv_scores(name: str, folds: int, configs: list[str]) -> pd.DataFrame:
    X, y, regression, splits = folds_of(name, folds)
    rows = []
    for k, (fit, held) in enumerate(splits):
        prep = treatment(X, "zscore")
        Xf, Xh = prep.fit_transform(X.iloc[fit]).astype(np.float32), prep.transform(X.iloc[held]).astype(np.float32)
        for config in configs:
            start = time.monotonic()
            score = fit_score(CONFIGS[config], k, Xf, y[fit], Xh, y[held], regression)
            rows.append({"table": name, "fold": k, "config": config, "score": score,
                         "seconds": time.monotonic() - start})
    return pd.DataFrame(rows)


def main() -> None:
    tables = [*bench_tables.TABLES, *[t for t, v in bench_tasks.TABLES.items() if v[4] == "regression"]]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tables", nargs="*", choices=[[], *tables], metavar="TABLE",
                        help="default: all but MplsStops and CPS1988")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    args = parser.parse_args()
    frames = []
    for name in args.tables or [t for t in tables if t not in ("MplsStops", "CPS1988")]:
        frames.append(cv_scores(name, args.folds, args.configs))
        print(frames[-1].groupby("config")[["score", "seconds"]].mean().round(4).to_string(), flush=True)
    table = pd.concat(frames)
    print(table.pivot_table(index="config", columns="table", values="score", aggfunc="mean").round(4).to_string())


if __name__ == "__main__":
    main()
