"""Which input treatment a table's numbers should get, chosen by cross-validation on training rows only.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tests/bench/bench_table_inputs.py [TABLE ...] [--folds 5]
        [--treatments zscore robust_clip zscore_clip quantile] [--configs adam-512]

For each development table (``bench_tables.TABLES`` and the regression tables of
``bench_tasks.TABLES``), the training rows of test draw 0 (the test rows are never
read) are cut into stratified folds; on each fold our ``model.MLPClassifier`` /
``MLPRegressor`` of a few fixed configurations (none tuned to a table) trains on
the numbers treated each way, the text columns one-hot encoded alike:

- ``zscore``: median imputation, then the mean and standard deviation (what a
  table study does today);
- ``robust_clip``: median imputation, then the median and interquartile range
  (half the range where that is 0), then smooth clipping ``x / sqrt(1 + (x/3)^2)``
  (RealMLP, Holzmüller et al. 2024): a heavy tail or an outlier no longer stretches
  the rest of the column into a narrow band, nor reaches the network as a value of 50;
- ``zscore_clip``: the z-score, then the same smooth clipping (the clip alone, as a
  network's first operation on today's inputs would apply it);
- ``quantile``: median imputation, then scikit-learn's ``QuantileTransformer`` to a
  normal distribution (the default input treatment of the MLPs in Gorishniy et al.
  2021, "Revisiting deep learning models for tabular data");
- ``fourier0.1``, ``fourier1``: the z-score, then beside each number ``sin`` and ``cos`` of
  it times 8 fixed random frequencies drawn from N(0, 0.1) or N(0, 1): periodic
  embeddings (Gorishniy et al. 2022) with frozen frequencies and no per-feature
  layer, as a preprocessing step. A gain here would say a learnt embedding in
  ``model/`` is worth building.

Printed: the mean CV score per table, treatment and configuration (accuracy;
R² for numbers), and each treatment's mean gain over ``zscore``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench import bench_tables, bench_tasks  # noqa: E402

CONFIGS: dict[str, dict] = {  # a table-sized network of each family the budget's spaces hold
    "adam-512": {"hidden": (512,), "optimizer": "adam", "learning_rate": 1e-3, "batch_size": 128,
                 "epochs": 100, "dropout": 0.2, "lr_schedule": "cosine"},  # a table's space (2026-12-07)
    "adam-256x2": {"hidden": (256, 256), "optimizer": "adam", "learning_rate": 1e-3, "batch_size": 128,
                   "epochs": 40, "dropout": 0.1, "lr_schedule": "cosine"},
    "nesterov-512": {"hidden": (512,), "optimizer": "nesterov", "learning_rate": 0.03, "batch_size": 64,
                     "epochs": 40, "dropout": 0.2, "lr_schedule": "cosine"},
}


class RobustClip(TransformerMixin, BaseEstimator):
    """Median and interquartile range (half the range where that is 0), then smooth clipping at about 3."""

    def fit(self, X: np.ndarray, y: object = None) -> RobustClip:
        q25, self.median_, q75 = np.nanpercentile(X, [25, 50, 75], axis=0)
        half_range = (np.nanmax(X, axis=0) - np.nanmin(X, axis=0)) / 2
        scale = np.where(q75 > q25, q75 - q25, half_range)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        z = (X - self.median_) / self.scale_
        return smooth_clip(z)


def smooth_clip(z: np.ndarray) -> np.ndarray:
    return z / np.sqrt(1 + (z / 3) ** 2)


class Periodic(TransformerMixin, BaseEstimator):
    """Each column, then sin and cos of it times ``k`` fixed frequencies drawn from N(0, sigma)."""

    def __init__(self, sigma: float = 1.0, k: int = 8) -> None:
        self.sigma, self.k = sigma, k

    def fit(self, X: np.ndarray, y: object = None) -> Periodic:
        self.frequencies_ = np.random.default_rng(0).normal(0.0, self.sigma, (X.shape[1], self.k))
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        angles = 2 * np.pi * X[:, :, None] * self.frequencies_  # (n, columns, k)
        return np.hstack([X, np.sin(angles).reshape(len(X), -1), np.cos(angles).reshape(len(X), -1)])


TREATMENTS = ("zscore", "robust_clip", "zscore_clip", "quantile", "fourier0.1", "fourier1")


def treatment(X: pd.DataFrame, name: str):  # noqa: ANN201 -- a scikit-learn ColumnTransformer
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, QuantileTransformer, StandardScaler

    numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c])]
    text = [c for c in X.columns if c not in numeric]
    scale = {
        "zscore": [StandardScaler()],
        "robust_clip": [RobustClip()],
        "zscore_clip": [StandardScaler(), FunctionTransformer(smooth_clip)],
        "quantile": [QuantileTransformer(output_distribution="normal", n_quantiles=min(1000, len(X)), random_state=0)],
        "fourier0.1": [StandardScaler(), Periodic(0.1)],
        "fourier1": [StandardScaler(), Periodic(1.0)],
    }[name]
    return ColumnTransformer([
        ("numbers", make_pipeline(SimpleImputer(strategy="median"), *scale), numeric),
        ("text", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                               OneHotEncoder(handle_unknown="ignore", min_frequency=5, sparse_output=False)), text),
    ])


def load(name: str) -> tuple[pd.DataFrame, np.ndarray, bool]:
    """The table's features, target and whether it is a regression table."""
    if name in bench_tasks.TABLES:
        frame, target, question = bench_tasks.load_table(name)
        regression = question == "regression"
    else:
        frame, target = bench_tables.load_table(name)
        regression = False
    y = frame[target].to_numpy(dtype=float) if regression else frame[target].astype(str).to_numpy()
    return frame.drop(columns=target), y, regression


def folds_of(name: str, folds: int) -> tuple[pd.DataFrame, np.ndarray, bool, list]:
    """Draw 0's training rows of ``name`` (the test rows never read), text as text, and their CV folds."""
    from sklearn.model_selection import KFold, StratifiedKFold

    X, y, regression = load(name)
    train = bench_tables.draws(y, [0], stratified=not regression)[0][1]
    X, y = X.iloc[train].reset_index(drop=True), y[train]
    X = X.astype({c: str for c in X.columns if X[c].dtype == object})
    splitter = (KFold(folds, shuffle=True, random_state=0) if regression
                else StratifiedKFold(folds, shuffle=True, random_state=0))
    return X, y, regression, list(splitter.split(X, None if regression else y))


def fit_score(params: dict, seed: int, Xf: np.ndarray, yf: np.ndarray, Xh: np.ndarray, yh: np.ndarray,
              regression: bool) -> float:
    """Our network of ``params`` fitted on one fold, its R² (numbers) or accuracy on the held-out rows.

    NaN when training diverges: counted apart, a setting that lets training diverge scores nothing.
    """
    from sklearn.metrics import r2_score

    from model import MLPClassifier, MLPRegressor
    from model.errors import DivergedError

    try:
        if regression:
            mu, sd = yf.mean(), yf.std()
            net = MLPRegressor(**params, seed=seed).fit(Xf, (yf - mu) / sd)
            return float(r2_score(yh, net.predict(Xh) * sd + mu))
        return float((MLPClassifier(**params, seed=seed).fit(Xf, yf).predict(Xh) == yh).mean())
    except DivergedError:
        return np.nan


def cv_scores(name: str, folds: int, treatments: list[str], configs: list[str]) -> pd.DataFrame:
    X, y, regression, splits = folds_of(name, folds)
    rows = []
    for k, (fit, held) in enumerate(splits):
        for how in treatments:
            prep = treatment(X, how)
            Xf, Xh = prep.fit_transform(X.iloc[fit]).astype(np.float32), prep.transform(X.iloc[held]).astype(np.float32)
            for config in configs:
                params = CONFIGS[config]
                score = fit_score(params, k, Xf, y[fit], Xh, y[held], regression)
                rows.append({"table": name, "fold": k, "treatment": how, "config": config, "score": score})
    return pd.DataFrame(rows)


def main() -> None:
    tables = [*bench_tables.TABLES, *[t for t, v in bench_tasks.TABLES.items() if v[4] == "regression"]]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tables", nargs="*", choices=[[], *tables], metavar="TABLE",
                        help="default: all but MplsStops")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--treatments", nargs="+", choices=TREATMENTS, default=["zscore", "robust_clip"])
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=["adam-256x2", "nesterov-512"])
    args = parser.parse_args()
    if "zscore" not in args.treatments:
        parser.error("--treatments: the gains are counted from zscore; name it too")
    start = time.monotonic()
    frames = []
    for name in args.tables or [t for t in tables if t != "MplsStops"]:
        frames.append(cv_scores(name, args.folds, args.treatments, args.configs))
        print(name, frames[-1].groupby(["treatment", "config"])["score"].mean().round(4).to_dict(), flush=True)
    table = pd.concat(frames)
    print("diverged fits:", table[table.score.isna()].groupby(["table", "treatment"]).size().to_dict())
    means = table.pivot_table(index=["table", "config"], columns="treatment", values="score", aggfunc="mean")
    print(means.round(4).to_string())
    for how in [t for t in args.treatments if t != "zscore"]:
        gain = means[how] - means["zscore"]
        print(f"{how}: mean gain over zscore {gain.mean():+.4f}; tables x configs with a gain "
              f"{int((gain > 0).sum())} of {len(gain)}")
    print(f"{time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    main()
