"""How much a better recipe or an ensemble could still gain on digits, measured without the test split.

    python tests/bench/bench_digits_cv.py            # every recipe and ensemble below
    python tests/bench/bench_digits_cv.py recipes    # single networks only
    python tests/bench/bench_digits_cv.py references # an SVM and 1-nearest-neighbour on the same folds

Everything here is 5-fold cross-validation of train + validation (``DataRef.folds``,
the folds the search's ``--cv`` uses), repeated over fold seeds: the test split is
never read, so these figures may steer the digits defaults without selecting on
test. Not collected by pytest.

``recipes``: hand-picked configurations and the winner of a default study (seed 0's
best finalist), each trained ``--epochs`` epochs and scored at its last epoch.
``ensembles``: that winner alone, the averaged probabilities of 3 or 5 of its seeds,
and of the study's top 3 or 5 finalist configurations (one seed each).
``winners DIR``: the winners of both arms of ``bench_quality.py --keep DIR``, each
trained for the epochs its arm retrains for, side by side per study seed: which
arm chose the better configuration, judged without the test split.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import optuna  # noqa: E402

from model.train import TrainConfig, train  # noqa: E402
from search.study.dataref import DataRef  # noqa: E402
from search.study.space import config_from_params  # noqa: E402
from search.study.spec import as_finalist, build_spec  # noqa: E402
from search.study.storage import open_storage  # noqa: E402
from search.study.stored import load_spec  # noqa: E402
from search.study.winner import final_epochs, find_winner  # noqa: E402

K = 5
# The five finalists of `python -m search run --seed 0` (defaults, 2026-11-29), best mean first.
FINALISTS = [
    {"hidden": (800,), "learning_rate": 0.21, "l2": 4.9e-6, "dropout": 0.45, "momentum": 0.07},
    {"hidden": (955,), "learning_rate": 0.191, "l2": 2.0e-6, "dropout": 0.49, "momentum": 0.19},
    {"hidden": (1184,), "learning_rate": 0.234, "l2": 1.3e-5, "dropout": 0.46, "momentum": 0.13},
    {"hidden": (1224,), "learning_rate": 0.284, "l2": 1.4e-5, "dropout": 0.44, "momentum": 0.07},
    {"hidden": (915,), "learning_rate": 0.182, "l2": 7.2e-6, "dropout": 0.40, "momentum": 0.03},
]
WINNER = {**FINALISTS[0], "activation": "relu", "optimizer": "momentum", "batch_size": 16}
HAND = {
    "hidden": (1024,),
    "activation": "relu",
    "dropout": 0.3,
    "optimizer": "nesterov",
    "learning_rate": 0.05,
    "momentum": 0.9,
    "batch_size": 32,
}
RECIPES = {
    "winner": WINNER,
    "winner, cosine": {**WINNER, "lr_schedule": "cosine"},
    "winner, cosine, 2x epochs": {**WINNER, "lr_schedule": "cosine", "epochs": -2},
    "winner, shift 1 px": {**WINNER, "augment_shift": 1},
    "winner, shift 1 px, cosine": {**WINNER, "augment_shift": 1, "lr_schedule": "cosine"},
    "hand-picked 1024 Nesterov": HAND,
    "hand-picked, cosine": {**HAND, "lr_schedule": "cosine"},
    "hand-picked 2048, dropout 0.5": {**HAND, "hidden": (2048,), "dropout": 0.5, "lr_schedule": "cosine"},
    "winner, warp 0.5": {**WINNER, "augment_warp": 0.5},
    "winner, warp 1": {**WINNER, "augment_warp": 1.0},
    "winner, warp 1.5": {**WINNER, "augment_warp": 1.5},
    "winner, warp 1, 1.5x epochs": {**WINNER, "augment_warp": 1.0, "epochs": -1.5},
    "winner, warp 1, 2x epochs": {**WINNER, "augment_warp": 1.0, "epochs": -2},
    "winner, warp 1, 3x epochs": {**WINNER, "augment_warp": 1.0, "epochs": -3},
    "winner, warp 1.5, 2x epochs": {**WINNER, "augment_warp": 1.5, "epochs": -2},
    "winner, warp 2, 2x epochs": {**WINNER, "augment_warp": 2.0, "epochs": -2},
    "winner, 2x epochs": {**WINNER, "epochs": -2},
    "hand-picked, warp 1": {**HAND, "augment_warp": 1.0},
}


def _probabilities(data: DataRef, recipe: dict, epochs: int, fold_seed: int, fold: int, seed: int) -> np.ndarray:
    """One network's validation probabilities on one fold (``epochs: -x`` means x times ``epochs``)."""
    factor = -recipe.get("epochs", -1)
    recipe = {**recipe, "epochs": round(factor * epochs)}
    f = data.folds(K, fold_seed)[fold]
    config = TrainConfig(**recipe, seed=seed)
    result = train(config, f.X_train, f.y_train, f.X_val, f.y_val, n_classes=10, image_shape=data.load().image_shape)
    return result.network.predict_proba(f.X_val)


def _labels(data: DataRef, fold_seed: int, fold: int) -> np.ndarray:
    return data.folds(K, fold_seed)[fold].y_val


def _accuracy(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(p.argmax(axis=1) == y))


def _line(name: str, accuracies: list[float]) -> str:
    a = np.asarray(accuracies)
    return f"  {name:34s} {a.mean():.4f}  (sd over {len(a)} folds {a.std(ddof=1):.4f})"


def recipes(data: DataRef, epochs: int, fold_seeds: list[int], jobs: int, only: list[str] | None) -> None:
    print(f"recipes: {K}-fold CV of train + validation, fold seeds {fold_seeds}, {epochs} epochs, last epoch scored")
    cells = [(s, k) for s in fold_seeds for k in range(K)]
    for name, recipe in RECIPES.items():
        if only and name not in only:
            continue
        ps = Parallel(n_jobs=jobs)(delayed(_probabilities)(data, recipe, epochs, s, k, 100 * s + k) for s, k in cells)
        print(_line(name, [_accuracy(p, _labels(data, s, k)) for p, (s, k) in zip(ps, cells)]), flush=True)


def references(data: DataRef, fold_seeds: list[int]) -> None:
    """What other model families reach on the same folds: how much the data allow."""
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    print(f"references: scikit-learn models, the same {K}-fold CV, fold seeds {fold_seeds}")
    cells = [(s, k) for s in fold_seeds for k in range(K)]
    for name, make in (
        ("SVM, RBF kernel, C=10", lambda: SVC(C=10)),
        ("1-nearest neighbour", lambda: KNeighborsClassifier(1)),
    ):
        accuracies = []
        for s, k in cells:
            f = data.folds(K, s)[k]
            accuracies.append(float(make().fit(f.X_train, f.y_train).score(f.X_val, f.y_val)))
        print(_line(name, accuracies), flush=True)


def ensembles(data: DataRef, epochs: int, fold_seeds: list[int], jobs: int) -> None:
    print(f"ensembles: averaged probabilities, same CV, {epochs} epochs")
    configs = [{**WINNER, **f} for f in FINALISTS]
    cells = [(s, k) for s in fold_seeds for k in range(K)]
    # (config index, repeat): the winner 5 times with fresh seeds, the other finalists once.
    members = [(0, r) for r in range(5)] + [(c, 0) for c in range(1, len(configs))]
    jobs_list = [(c, r, s, k) for s, k in cells for c, r in members]
    ps = Parallel(n_jobs=jobs)(
        delayed(_probabilities)(data, configs[c], epochs, s, k, 1000 * s + 10 * k + r + 97 * c)
        for c, r, s, k in jobs_list
    )
    p = dict(zip(jobs_list, ps))
    picks = {
        "winner alone": [(0, 0)],
        "winner, 3 seeds": [(0, r) for r in range(3)],
        "winner, 5 seeds": [(0, r) for r in range(5)],
        "top 3 configurations": [(c, 0) for c in range(3)],
        "top 5 configurations": [(c, 0) for c in range(5)],
    }
    rows: dict[str, list[float]] = {n: [] for n in picks}
    for s, k in cells:
        for n, chosen in picks.items():
            rows[n].append(_accuracy(np.mean([p[(c, r, s, k)] for c, r in chosen], axis=0), _labels(data, s, k)))
    for n, accs in rows.items():
        print(_line(n, accs), flush=True)


def _winners(keep: Path, seed: int) -> dict[str, dict]:
    """Each arm's winning configuration for one study seed, as its arm retrains it."""
    storage = open_storage(f"sqlite:///{keep / 'ours' / f'{seed}.db'}", read_only=True)
    spec, study_id = load_spec(storage, "q")
    winner = find_winner(storage, study_id, "q")
    ours = as_finalist(spec, config_from_params(winner.trial.params, spec.space, final_epochs(spec, winner), 0))
    best = optuna.load_study(study_name="baseline", storage=f"sqlite:///{keep / f'baseline-{seed}.db'}").best_trial
    base_spec = build_spec("baseline", None, {"seed": seed})
    plain = config_from_params(best.params, base_spec.space, int(best.user_attrs["best_epoch"]), 0)
    return {arm: {k: v for k, v in asdict(c).items() if k != "seed"} for arm, c in (("ours", ours), ("plain", plain))}


def winners(data: DataRef, keep: Path, study_seeds: list[int], fold_seeds: list[int], jobs: int) -> None:
    print(f"winners of bench_quality --keep {keep}: {K}-fold CV of train + validation, fold seeds {fold_seeds}")
    cells = [(s, k) for s in fold_seeds for k in range(K)]
    means: dict[str, list[float]] = {"ours": [], "plain": []}
    for seed in study_seeds:
        line = f"  study seed {seed}:"
        for arm, recipe in _winners(keep, seed).items():
            epochs = recipe.pop("epochs")
            ps = Parallel(n_jobs=jobs)(
                delayed(_probabilities)(data, recipe, epochs, s, k, 100 * s + k) for s, k in cells
            )
            acc = float(np.mean([_accuracy(p, _labels(data, s, k)) for p, (s, k) in zip(ps, cells)]))
            means[arm].append(acc)
            line += f"  {arm} {acc:.4f} ({epochs} epochs, {recipe['hidden']}, lr {recipe['learning_rate']:.3g})"
        print(line, flush=True)
    diff = np.subtract(means["ours"], means["plain"])
    print(
        f"  mean: ours {np.mean(means['ours']):.4f}, plain {np.mean(means['plain']):.4f}, "
        f"ours - plain {diff.mean():+.4f} (sd of the paired difference {diff.std(ddof=1):.4f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "what", nargs="?", choices=("all", "references", "recipes", "ensembles", "winners"), default="all"
    )
    parser.add_argument("--only", nargs="+", metavar="RECIPE", help="recipes: just these (names as listed)")
    parser.add_argument("keep", nargs="?", type=Path, help="winners: the --keep directory of bench_quality.py")
    parser.add_argument("--study-seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=40, help="the digits finalists' epochs")
    parser.add_argument("--fold-seeds", type=int, nargs="+", default=[11, 12, 13, 14])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--test-seed", type=int, default=0, help="the draw of digits' test split left out (default 0)")
    args = parser.parse_args()
    data = DataRef("digits", val_fraction=0.2, test_seed=args.test_seed)
    if args.what in ("all", "references"):
        references(data, args.fold_seeds)
    if args.what in ("all", "recipes"):
        recipes(data, args.epochs, args.fold_seeds, args.jobs, args.only)
    if args.what in ("all", "ensembles"):
        ensembles(data, args.epochs, args.fold_seeds, args.jobs)
    if args.what == "winners":
        if args.keep is None:
            parser.error("winners needs the --keep directory of bench_quality.py")
        winners(data, args.keep, args.study_seeds, args.fold_seeds, args.jobs)


if __name__ == "__main__":
    main()
