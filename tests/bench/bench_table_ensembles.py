"""Does a bigger final ensemble pay on tables? Fixed networks, by cross-validation on training rows only.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tests/bench/bench_table_ensembles.py [TABLE ...]
        [--folds 3] [--sizes 1 5 10]

A table space's network (``bench_table_inputs.CONFIGS["adam-512"]``) trained with
different seeds on the same folds of draw 0's training rows (z-scored inputs; the
test rows are never read); each fold's held-out rows scored by the mean of the
first 1, 5 and 10 networks' outputs (accuracy; R² for numbers). The evidence for
what a budget's final stage may give up when it trains each network twice
(docs/budget.md, "Every row").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.bench_table_inputs import CONFIGS, folds_of, treatment  # noqa: E402

TABLES = ("spam7", "Wells", "HealthInsurance", "credit_data", "Computers", "Wage")


def outputs(seed: int, Xf: np.ndarray, yf: np.ndarray, Xh: np.ndarray, regression: bool) -> tuple:
    """One network's held-out outputs: numbers in the target's units, or (probabilities, classes)."""
    from threadpoolctl import threadpool_limits

    from model import MLPClassifier, MLPRegressor

    threadpool_limits(1)
    if regression:
        mu, sd = yf.mean(), yf.std()
        return MLPRegressor(**CONFIGS["adam-512"], seed=seed).fit(Xf, (yf - mu) / sd).predict(Xh) * sd + mu, None
    net = MLPClassifier(**CONFIGS["adam-512"], seed=seed).fit(Xf, yf)
    return net.predict_proba(Xh), net.classes_


def scores(name: str, folds: int, sizes: list[int]) -> dict[int, float]:
    from joblib import Parallel, delayed
    from sklearn.metrics import r2_score

    X, y, regression, splits = folds_of(name, folds)
    by_size: dict[int, list[float]] = {n: [] for n in sizes}
    for k, (fit, held) in enumerate(splits):
        prep = treatment(X, "zscore")
        Xf, Xh = prep.fit_transform(X.iloc[fit]).astype(np.float32), prep.transform(X.iloc[held]).astype(np.float32)
        nets = Parallel(n_jobs=2)(delayed(outputs)(100 * k + s, Xf, y[fit], Xh, regression) for s in range(max(sizes)))
        for n in sizes:
            mean = np.mean([o for o, _ in nets[:n]], axis=0)
            by_size[n].append(r2_score(y[held], mean) if regression else (nets[0][1][mean.argmax(1)] == y[held]).mean())
    return {n: float(np.mean(v)) for n, v in by_size.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tables", nargs="*", choices=[[], *TABLES], metavar="TABLE", help="default: all")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 5, 10])
    args = parser.parse_args()
    for name in args.tables or TABLES:
        print(name, {n: round(v, 4) for n, v in scores(name, args.folds, args.sizes).items()}, flush=True)


if __name__ == "__main__":
    main()
