"""--budget on data nobody tuned for, against baselines on the same splits, measured in one run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tests/bench/bench_budget.py digits   [--seeds 0 1 2 3 4]
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tests/bench/bench_budget.py tabular  [--draws 0 1 2 3 4]
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tests/bench/bench_budget.py fashion  [--budget 30m]
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tests/bench/bench_budget.py flaml    [--budget 30m]

Each study is one ``python -m search run ... --budget B`` in a fresh process
and a fresh directory, timed by wall clock from outside (so start-up counts):

- ``digits``: scikit-learn's 8x8 digits written as an ``.npz`` (``images``,
  ``labels``), so no per-data-set table applies; ``--budget 60s`` for each study
  seed. Acceptance: mean test accuracy >= 0.985, each command within 63 s.
- ``tabular``: scikit-learn's ``breast_cancer`` and ``wine`` written as CSV;
  ``--budget 2m`` on each test draw (``--test-seed``). Baselines fitted on the
  same training rows (train + validation) and scored on the same test rows:
  ``MLPClassifier()`` with its defaults, the same after ``StandardScaler``, and
  ``LogisticRegression`` after ``StandardScaler``.
- ``fashion``: the built-in Fashion-MNIST, no preset, ``--budget 30m``.
  Acceptance: the final ensemble >= 0.905 on the official test split, within
  31.5 min.
- ``flaml``: ``flaml.AutoML(time_budget=..., n_jobs=2)`` (``pip install
  "flaml[automl]"``, a bench extra only) on the same Fashion-MNIST split: the
  official 60,000 training images (FLAML holds out its own validation rows) and
  the official 10,000 test images, pixels as they are (trees need no scaling).
  Its wall time includes its final refit, as ours includes the final networks.

The score of a budgeted study is its final ensemble's test accuracy (and the
mean of its networks), as the command prints it.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from model.datasets import Preprocessing  # noqa: E402
from model.datasets.owndata import draw_splits  # noqa: E402
from search.study.durations import parse_duration  # noqa: E402


def run_study(work: Path, *argv: str) -> tuple[float, float, float, str]:
    """(wall seconds, ensemble test accuracy, mean test accuracy, stdout) of one budgeted run."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), NUMPY_HPSEARCH_CACHE=str(work / "cache"))
    start = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "search", "run", *argv, "--no-progress"], cwd=work, env=env,
                         capture_output=True, text=True)
    wall = time.monotonic() - start
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {out.stderr.strip()[-2000:]}")
    ensemble = re.search(r"ensemble accuracy\s+([0-9.]+)", out.stdout)
    mean = re.search(r"test accuracy\s+([0-9.]+)", out.stdout)
    if mean is None:
        raise SystemExit(f"no test accuracy in the output:\n{out.stdout}")
    m = float(mean.group(1))
    return wall, float(ensemble.group(1)) if ensemble else m, m, out.stdout


def plan_lines(stdout: str) -> str:
    keep = [line for line in stdout.splitlines() if line.startswith(("budget", "  ", "plan", " " * 18))]
    return "\n".join(keep)


def digits(args: argparse.Namespace, work: Path) -> None:
    from sklearn.datasets import load_digits

    d = load_digits()
    np.savez(work / "digits.npz", images=d.images.astype(np.uint8), labels=d.target)
    budget = parse_duration(args.budget or "60s")
    rows = []
    for seed in args.seeds:
        wall, ens, mean, out = run_study(work, "--data", "digits.npz", "--budget", args.budget or "60s",
                                         "--seed", str(seed), "--study", f"digits-{seed}")
        rows.append((seed, wall, ens, mean))
        print(f"seed {seed}: {wall:.1f} s (budget {budget:.0f} s, {wall / budget:.3f}), ensemble {ens:.4f}, "
              f"mean of networks {mean:.4f}", flush=True)
        if seed == args.seeds[0]:
            print(plan_lines(out), flush=True)
    table = pd.DataFrame(rows, columns=["seed", "wall s", "ensemble", "mean of networks"])
    print(table.to_string(index=False))
    print(f"mean ensemble {table['ensemble'].mean():.4f}, mean of networks {table['mean of networks'].mean():.4f}, "
          f"longest {table['wall s'].max():.1f} s of {budget:.0f} s (acceptance: mean >= 0.985, each <= 63 s)")


def _baselines(X: pd.DataFrame, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    models = {
        "MLPClassifier()": MLPClassifier(random_state=0),
        "scaled MLPClassifier()": make_pipeline(StandardScaler(), MLPClassifier(random_state=0)),
        "scaled LogisticRegression": make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
    }
    scores = {}
    import warnings

    for name, model in models.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MLPClassifier's ConvergenceWarning on raw features: the default's lot
            model.fit(X.iloc[train], y[train])
        scores[name] = float((model.predict(X.iloc[test]) == y[test]).mean())
    return scores


def tabular(args: argparse.Namespace, work: Path) -> None:
    from sklearn.datasets import load_breast_cancer, load_wine

    budget = args.budget or "2m"
    rows = []
    for name, loader in (("breast_cancer", load_breast_cancer), ("wine", load_wine)):
        frame = loader(as_frame=True).frame
        frame.to_csv(work / f"{name}.csv", index=False)
        X, y = frame.drop(columns="target"), frame["target"].to_numpy()
        for draw in args.draws:
            wall, ens, mean, out = run_study(work, "--data", f"{name}.csv", "--budget", budget, "--test-seed",
                                             str(draw), "--study", f"{name}-{draw}")
            classes = sorted(np.unique(y).tolist())
            codes = Preprocessing("table", classes, "zscore", 0).encode_labels(y)
            train_idx, val_idx, test_idx = draw_splits(codes, 0.2, 0, draw, has_test=False)
            base = _baselines(X, y, np.sort(np.concatenate([train_idx, val_idx])), test_idx)
            rows.append({"data": name, "draw": draw, "wall s": round(wall, 1), "ours (ensemble)": ens,
                         "ours (mean)": mean, **base})
            print(rows[-1], flush=True)
            if draw == args.draws[0]:
                print(plan_lines(out), flush=True)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    print(table.drop(columns="draw").groupby("data").mean().round(4).to_string())


def fashion(args: argparse.Namespace, work: Path) -> None:
    budget = args.budget or "30m"
    wall, ens, mean, out = run_study(work, "--dataset", "fashion-mnist", "--budget", budget, "--study", "fashion")
    print(out)
    print(f"fashion-mnist --budget {budget}: {wall / 60:.1f} min, ensemble {ens:.4f}, mean of networks {mean:.4f} "
          "(acceptance: ensemble >= 0.905 within 31.5 min)")


def flaml(args: argparse.Namespace, work: Path) -> None:
    from flaml import AutoML  # the bench extra; never a dependency of the service

    from model.datasets.idx import read_idx_split

    root = Path("/usr/share/datasets/fashion-mnist")
    X_train, y_train = read_idx_split(root / "train-images-idx3-ubyte.gz", root / "train-labels-idx1-ubyte.gz", 10)
    X_test, y_test = read_idx_split(root / "t10k-images-idx3-ubyte.gz", root / "t10k-labels-idx1-ubyte.gz", 10)
    X_train, X_test = X_train.reshape(len(X_train), -1), X_test.reshape(len(X_test), -1)
    budget = parse_duration(args.budget or "30m")
    automl = AutoML()
    start = time.monotonic()
    automl.fit(X_train, y_train, task="classification", metric="accuracy", time_budget=budget, n_jobs=2,
               log_file_name=str(work / "flaml.log"), seed=0, verbose=1)
    accuracy = float((automl.predict(X_test) == y_test).mean())
    wall = time.monotonic() - start
    print(f"flaml AutoML time_budget {budget:.0f} s, n_jobs 2: {wall / 60:.1f} min "
          f"({100 * (wall / budget - 1):+.1f}% of the budget), best {automl.best_estimator} "
          f"{automl.best_config}, test accuracy {accuracy:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", choices=("digits", "tabular", "fashion", "flaml"))
    parser.add_argument("--budget", help="the budget of each study (default: the acceptance criterion's)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--draws", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--keep", help="work in this directory and keep it")
    args = parser.parse_args()
    print(f"{datetime.datetime.now().isoformat(timespec='seconds')} nproc {os.cpu_count()} "
          f"command: {' '.join(sys.argv)}", flush=True)
    if args.keep:
        work = Path(args.keep)
        work.mkdir(parents=True, exist_ok=True)
        globals()[args.which](args, work)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            globals()[args.which](args, Path(tmp))


if __name__ == "__main__":
    main()
