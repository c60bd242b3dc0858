"""SearchCV against scikit-learn's and Optuna's searches over sklearn's MLPClassifier; the estimators' epochs.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tests/bench/bench_sklearn.py search [--data digits fashion10k]
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tests/bench/bench_sklearn.py epochs

``search``: on digits (scikit-learn's 1,797 8x8 images, a stratified 80/20
split, seed 0) and on a 10,000-image Fashion-MNIST subset (the first 10,000
official training images) with its official 10,000-image test split, each
search gets 2 cores and the same wall time: ``SearchCV(budget=B, n_jobs=2)``;
``OptunaSearchCV(MLPClassifier(), timeout=B, n_jobs=2)`` (optuna-integration);
``HalvingRandomSearchCV(MLPClassifier(), n_jobs=2)``, which has no time limit:
its candidates are as many as its successive halving fits in about B on this
machine (``--halving-candidates``). All three see the same training rows after
the same ``StandardScaler``, choose on those rows alone (their own
cross-validation or validation split), refit their winner on all of them, and
are scored once on the test rows. The sklearn searches' space: one or two
hidden layers of 32-512 units, ReLU or tanh, alpha (L2) 1e-6-1e-2, learning
rate 1e-4-1e-1, batch size 32-256, Adam, up to 60 epochs with sklearn's early
stopping. Acceptance (issue 20): ours at least 1 point more accurate, or as
accurate in at most half the time.

``epochs``: ``model.MLPClassifier().fit`` against
``sklearn.neural_network.MLPClassifier().fit`` with the same architecture
(784-256-10 ReLU and 784-1024-10), plain SGD with momentum 0.9, batch 128, on
the same 10,000 Fashion-MNIST rows, 10 epochs each, one BLAS thread each, run
alternately 3 times: seconds per epoch, fastest of the 3.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from model.datasets.idx import read_idx_split  # noqa: E402

FASHION = Path("/usr/share/datasets/fashion-mnist")
BUDGETS = {"digits": 60.0, "fashion10k": 180.0}  # seconds each search gets
# HalvingRandomSearchCV's candidates: about the budget here (with 60 and 20 it took 4.6 s and 12.9 s)
HALVING = {"digits": 600, "fashion10k": 200}


def load(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_train, y_train, X_test, y_test), scaled by a StandardScaler fitted on the training rows."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    if name == "digits":
        X, y = load_digits(return_X_y=True)
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    else:
        X_train, y_train = read_idx_split(FASHION / "train-images-idx3-ubyte.gz",
                                          FASHION / "train-labels-idx1-ubyte.gz", 10)
        X_test, y_test = read_idx_split(FASHION / "t10k-images-idx3-ubyte.gz",
                                        FASHION / "t10k-labels-idx1-ubyte.gz", 10)
        X_train, y_train = X_train[:10_000], y_train[:10_000]
    scaler = StandardScaler().fit(X_train.astype(np.float64))
    return scaler.transform(X_train.astype(np.float64)), y_train, scaler.transform(X_test.astype(np.float64)), y_test


def _sklearn_space():
    from scipy.stats import loguniform

    hidden = [(32,), (64,), (128,), (256,), (512,), (64, 64), (128, 128), (256, 256), (512, 512)]
    return {
        "hidden_layer_sizes": hidden,
        "activation": ["relu", "tanh"],
        "alpha": loguniform(1e-6, 1e-2),
        "learning_rate_init": loguniform(1e-4, 1e-1),
        "batch_size": [32, 64, 128, 256],
    }


def _baseline():
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(max_iter=60, early_stopping=True, n_iter_no_change=8, random_state=0)


def ours(data, budget: float, candidates: int) -> tuple[float, float, str]:
    from search import SearchCV

    X_train, y_train, X_test, y_test = data
    start = time.monotonic()
    cv = SearchCV(budget=budget, n_jobs=2, seed=0).fit(X_train, y_train)
    wall = time.monotonic() - start
    return wall, cv.score(X_test, y_test), f"{len(cv.cv_results_['trial'])} trials; {cv.best_params_['hidden']}"


def optuna_cv(data, budget: float, candidates: int) -> tuple[float, float, str]:
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna_integration import OptunaSearchCV

    X_train, y_train, X_test, y_test = data
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    hidden = ["32", "64", "128", "256", "512", "64-64", "128-128", "256-256", "512-512"]
    space = {
        "hidden_layer_sizes": CategoricalDistribution([tuple(map(int, h.split("-"))) for h in hidden]),
        "activation": CategoricalDistribution(["relu", "tanh"]),
        "alpha": FloatDistribution(1e-6, 1e-2, log=True),
        "learning_rate_init": FloatDistribution(1e-4, 1e-1, log=True),
        "batch_size": CategoricalDistribution([32, 64, 128, 256]),
    }
    start = time.monotonic()
    search = OptunaSearchCV(_baseline(), space, cv=3, n_jobs=2, n_trials=None, timeout=budget, random_state=0,
                            refit=True)
    search.fit(X_train, y_train)
    wall = time.monotonic() - start
    best = search.best_params_["hidden_layer_sizes"]
    return wall, search.score(X_test, y_test), f"{len(search.trials_)} trials; {best}"


def halving(data, budget: float, candidates: int) -> tuple[float, float, str]:
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingRandomSearchCV

    X_train, y_train, X_test, y_test = data
    start = time.monotonic()
    search = HalvingRandomSearchCV(_baseline(), _sklearn_space(), n_candidates=candidates, cv=3, factor=3,
                                   n_jobs=2, random_state=0).fit(X_train, y_train)
    wall = time.monotonic() - start
    return wall, search.score(X_test, y_test), f"{candidates} candidates; {search.best_params_['hidden_layer_sizes']}"


def search_bench(args: argparse.Namespace) -> None:
    rows = []
    for name in args.data:
        data = load(name)
        budget = BUDGETS[name]
        candidates = args.halving or HALVING[name]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sklearn's ConvergenceWarning at max_iter, once per candidate
            for label, run in (("SearchCV (ours)", ours), ("OptunaSearchCV(sklearn MLP)", optuna_cv),
                               ("HalvingRandomSearchCV(sklearn MLP)", halving)):
                wall, accuracy, what = run(data, budget, candidates)
                rows.append((name, label, budget, wall, accuracy, what))
                print(f"{name:<11} {label:<36} budget {budget:>5.0f} s  wall {wall:>6.1f} s  test {accuracy:.4f}  "
                      f"({what})", flush=True)
    print("\n| data | search | budget s | wall s | test accuracy | |\n|---|---|---|---|---|---|")
    for name, label, budget, wall, accuracy, what in rows:
        print(f"| {name} | {label} | {budget:.0f} | {wall:.1f} | {accuracy:.4f} | {what} |")


def epochs_bench(args: argparse.Namespace) -> None:
    from sklearn.neural_network import MLPClassifier as SkMLP

    from model import MLPClassifier

    X_train, y_train, _, _ = load("fashion10k")
    X = X_train.astype(np.float32)
    epochs = 10
    print("| architecture | ours s/epoch | sklearn s/epoch | sklearn / ours |\n|---|---|---|---|")
    for hidden in ((256,), (1024,)):
        best = {"ours": np.inf, "sklearn": np.inf}
        for _ in range(3):
            with threadpool_limits(1), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                start = time.perf_counter()
                MLPClassifier(hidden=hidden, epochs=epochs, batch_size=128, optimizer="momentum", momentum=0.9,
                              learning_rate=0.01).fit(X, y_train)
                best["ours"] = min(best["ours"], (time.perf_counter() - start) / epochs)
                start = time.perf_counter()
                SkMLP(hidden_layer_sizes=hidden, max_iter=epochs, batch_size=128, solver="sgd", momentum=0.9,
                      nesterovs_momentum=False, learning_rate_init=0.01, n_iter_no_change=epochs + 1,
                      tol=0.0, random_state=0).fit(X, y_train)
                best["sklearn"] = min(best["sklearn"], (time.perf_counter() - start) / epochs)
        arch = "-".join(map(str, (784, *hidden, 10)))
        print(f"| {arch} | {best['ours']:.3f} | {best['sklearn']:.3f} | {best['sklearn'] / best['ours']:.2f} |",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", choices=("search", "epochs"))
    parser.add_argument("--data", nargs="+", choices=tuple(BUDGETS), default=list(BUDGETS))
    parser.add_argument("--halving", type=int, help="HalvingRandomSearchCV's candidates (default: per data set)")
    args = parser.parse_args()
    print(f"{datetime.datetime.now().isoformat(timespec='seconds')} nproc {os.cpu_count()} "
          f"command: {' '.join(sys.argv)}", flush=True)
    (search_bench if args.which == "search" else epochs_bench)(args)


if __name__ == "__main__":
    main()
