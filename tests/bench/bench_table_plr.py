"""Learned numeric embeddings (PLR, model/plr.py) against none and the frozen periodic features, by cross-validation.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tests/bench/bench_table_plr.py [TABLE ...] [--folds 3]
        [--variants none frozen1 plr8-0.1 ...] [--patience 10]

On the training rows of test draw 0 of each development table (the test rows are
never read; ``bench_table_inputs.folds_of``), z-scored numbers and one-hot text,
a table space's network (Adam 1x512, lr 0.001, dropout 0.2, 100 epochs, cosine:
``bench_table_inputs.CONFIGS["adam-512"]``; ``--patience``: stopped early on a
validation split of the fold, its best epoch kept) trains on each fold with its first map:

- ``none``: the rows as given;
- ``frozen<sigma>``: the frozen periodic features of model/periodic.py;
- ``plr<d>-<sigma>``: learned embeddings of ``d`` units per number, frequencies from
  N(0, sigma) (model/plr.py).

The embeddings read the table's numbers only (the z-scored columns, which the
transformer puts first), never the one-hot text. Printed: the mean CV score per
table and variant (accuracy; R² for numbers), each variant's mean gain over
``none`` and the seconds per fit.
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

from tests.bench import bench_table_inputs, bench_tables, bench_tasks  # noqa: E402


def variant_config(name: str) -> dict:
    """The TrainConfig fields a variant sets: none, frozen<sigma> or plr<d>-<sigma>."""
    if name == "none":
        return {}
    if name.startswith("frozen"):
        return {"periodic": float(name[len("frozen") :])}
    d, sigma = name[len("plr") :].split("-")
    return {"plr": int(d), "plr_sigma": float(sigma)}


def fit_score(name: str, variant: str, seed: int, Xf: np.ndarray, yf: np.ndarray, Xh: np.ndarray,
              yh: np.ndarray, regression: bool, numbers: list[int], patience: int | None) -> tuple[float, float]:
    """(score on the held-out rows, seconds) of one fit; NaN if training diverged.

    With ``patience``, a random 15% of the fold's rows is its validation split and the
    best epoch's weights are kept, as a search's trial chooses its epochs; else the last
    epoch's weights, the validation rows only reporting.
    """
    from sklearn.metrics import r2_score
    from threadpoolctl import threadpool_limits

    from model import TrainConfig, train

    params = {**bench_table_inputs.CONFIGS["adam-512"], **variant_config(variant), "seed": seed}
    if regression:
        mu, sd = yf.mean(), yf.std()
        params["loss"] = "squared_error"
        target = ((yf - mu) / sd).astype(np.float32)
    else:
        classes, target = np.unique(yf, return_inverse=True)
    if patience:
        params["patience"] = patience
        order = np.random.default_rng(seed).permutation(len(Xf))
        cut = len(Xf) * 15 // 100
        fit, val = order[cut:], order[:cut]
    else:
        fit, val = np.arange(len(Xf)), np.arange(64)
    start = time.perf_counter()
    # the validation rows only report: no patience, so the last epoch's weights are kept; one BLAS
    # thread, as a search's worker trains (search/workers/base.py)
    with threadpool_limits(1):
        result = train(TrainConfig(**params), Xf[fit], target[fit], Xf[val], target[val],
                       periodic_columns=numbers or None, n_classes=None if regression else len(classes))
    seconds = time.perf_counter() - start
    if result.outcome == "diverged":
        return np.nan, seconds
    pred = result.network.predict(Xh)
    if regression:
        return float(r2_score(yh, pred * sd + mu)), seconds
    return float((classes[pred] == yh).mean()), seconds


def cv_scores(name: str, folds: int, variants: list[str], patience: int | None = None) -> pd.DataFrame:
    X, y, regression, splits = bench_table_inputs.folds_of(name, folds)
    numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c])]
    rows = []
    for k, (fit, held) in enumerate(splits):
        prep = bench_table_inputs.treatment(X, "zscore")
        Xf, Xh = prep.fit_transform(X.iloc[fit]).astype(np.float32), prep.transform(X.iloc[held]).astype(np.float32)
        numbers = list(range(len(numeric)))  # the ColumnTransformer puts the numbers first
        for variant in variants:
            if variant != "none" and not numbers:
                continue
            score, seconds = fit_score(name, variant, k, Xf, y[fit], Xh, y[held], regression, numbers, patience)
            rows.append({"table": name, "fold": k, "variant": variant, "score": score, "seconds": seconds})
    return pd.DataFrame(rows)


def main() -> None:
    tables = [*bench_tables.TABLES, *[t for t, v in bench_tasks.TABLES.items() if v[4] == "regression"]]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tables", nargs="*", choices=[[], *tables], metavar="TABLE", help="default: all but MplsStops")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--variants", nargs="+", default=["none", "plr8-0.1", "plr8-1"])
    parser.add_argument("--patience", type=int, help="early stopping on a 15%% validation split of each fold")
    args = parser.parse_args()
    if "none" not in args.variants:
        parser.error("--variants: the gains are counted from none; name it too")
    frames = []
    for name in args.tables or [t for t in tables if t != "MplsStops"]:
        frames.append(cv_scores(name, args.folds, args.variants, args.patience))
        f = frames[-1]
        print(name, f.groupby("variant")["score"].mean().round(4).to_dict(),
              "s/fit", f.groupby("variant")["seconds"].mean().round(2).to_dict(), flush=True)
    table = pd.concat(frames)
    means = table.pivot_table(index="table", columns="variant", values="score", aggfunc="mean")
    print(means.round(4).to_string())
    for v in [v for v in args.variants if v != "none"]:
        gain = means[v] - means["none"]
        print(f"{v}: mean gain {gain.mean():+.4f}, better on {(gain > 0).sum()} of {gain.notna().sum()}")


if __name__ == "__main__":
    main()
