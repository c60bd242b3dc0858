"""Do a date column's numbers pay? The boosted trees' defaults with and without them, on training rows only.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tests/bench/bench_table_dates.py [TABLE ...] [--folds 3]

On the training rows of test draw 0 (the test rows are never read), shuffled
stratified folds: ``HistGradientBoostingClassifier()`` after ``bench_tables``'
preprocessing of the columns as they are (a timestamp is text: one-hot, its rare
values lumped), against the same after the date columns are read as the
service reads them (``model/datasets/dates.py``: days, hour, weekday, time of
year). The evidence for reading dates at all; what the network makes of them is
in ``bench_tables.py``'s figures.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.bench_tables import dated, draws, load_table, preprocessing  # noqa: E402


def score(X: pd.DataFrame, y: np.ndarray, folds: int) -> float:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline

    X = X.astype({c: str for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])})
    model = make_pipeline(preprocessing(X), HistGradientBoostingClassifier(random_state=0))
    return float(cross_val_score(model, X, y, cv=StratifiedKFold(folds, shuffle=True, random_state=0)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tables", nargs="*", default=["MplsStops"])
    parser.add_argument("--folds", type=int, default=3)
    args = parser.parse_args()
    for name in args.tables:
        frame, target = load_table(name)
        y = frame[target].astype(str).to_numpy()
        [(_, train, _)] = draws(y, [0])
        X = frame.drop(columns=target).iloc[train].reset_index(drop=True)
        with_dates = dated(X, np.arange(len(X)))
        added = [c for c in with_dates.columns if c not in X.columns]
        print(f"{name}: as is {score(X, y[train], args.folds):.4f}; dates read ({', '.join(added) or 'none'}) "
              f"{score(with_dates, y[train], args.folds):.4f}", flush=True)


if __name__ == "__main__":
    main()
