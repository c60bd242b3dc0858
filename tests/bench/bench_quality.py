"""Search quality: the test accuracy of the network a study hands back, against the textbook recipe.

For each study seed, on the same data splits:

  (a) this project, as a user runs it: ``python -m search run --trials N --seed S``
      (defaults: cross-validation on small data sets, selection rule, finalist
      stage), then ``python -m search best --retrain --seeds K``;
  (b) a plain Optuna script on the same space with the same NumPy model: TPE +
      MedianPruner in 2 processes on one SQLite file, objective the minimum
      validation loss on the one holdout split, the best trial retrained on
      train + validation for its best epoch (K seeds, so its spread is shown too).
      It has no finalist stage, so it trains on the images as they are where
      this project warps its finalists and final networks (``finalist_warp``).
      To tell selection from training, run this project without the warp as a
      variant: ``--variant "unwarped=--preset tests/bench/digits-unwarped.toml"``.

Printed per run: wall time, the winner's validation accuracy, test accuracy
(mean ± sd over the K retraining seeds, and of their ensemble) and optimism
(validation minus mean test accuracy). The test split is read only to score
the retrained networks, in both arms.

digits has no official test split, and its usual one (359 images) resolves only
about 0.3 points per network, so two runs of this bench moved each arm's mean
by 0.4 points. ``--vary-test-split`` scores study seed S on the test split drawn
with seed S (``run --test-seed S``), in both arms: every study is still scored
once on images it never saw, and the mean over seeds no longer rests on one
draw of 359 images.

    python tests/bench/bench_quality.py                          # digits, seeds 0-4
    python tests/bench/bench_quality.py --vary-test-split --seeds 0 1 2 3 4 5 6 7 8 9
    python tests/bench/bench_quality.py --preset studies/fashion-mnist.toml --seeds 0
    python tests/bench/bench_quality.py --variant "holdout=--cv 1" --variant "no-finalists=--finalists 0"
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
from joblib import Parallel, delayed

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from model import train  # noqa: E402
from search.study.dataref import DataRef  # noqa: E402
from search.study.space import suggest  # noqa: E402
from search.study.spec import build_spec  # noqa: E402
from search.workers.tasks import training_seed  # noqa: E402


def _cpu() -> float:
    """CPU seconds of every finished child process (the CLI and its reaped workers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cli(*args: str) -> tuple[str, float, float]:
    """(stdout, wall seconds, CPU seconds) of ``python -m search ARGS``.

    The CPU time says what the wall time would be on an idle machine (about
    CPU / workers) when the machine is shared and the wall time is not.
    """
    start, cpu = time.perf_counter(), _cpu()
    out = subprocess.run([sys.executable, "-m", "search", *args], capture_output=True, text=True, cwd=ROOT,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    if out.returncode != 0:
        raise SystemExit(f"python -m search {' '.join(args)} failed:\n{out.stderr}")
    return out.stdout, time.perf_counter() - start, _cpu() - cpu


def ours(seed: int, trials: int | None, preset: str | None, extra: list[str], retrain_seeds: int,
         workdir: Path, test_seed: int) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{workdir / f'{seed}.db'}"
    args = ["run", "--study", "q", "--storage", url, "--seed", str(seed), "--no-progress", *extra]
    args += ["--test-seed", str(test_seed)] if test_seed else []
    args += ["--preset", preset] if preset else []
    args += ["--trials", str(trials)] if trials else []
    _, wall, cpu = _cli(*args)
    _, retrain_wall, _ = _cli("best", "--study", "q", "--storage", url, "--retrain", "--seeds", str(retrain_seeds),
                           "--out", str(workdir / f"{seed}.npz"))
    study = optuna.load_study(study_name="q", storage=url)
    record = json.loads(study.user_attrs["retrained"])
    winner = [t for t in study.trials if t.number == record["trial"]][0]
    runs = [t for t in study.trials if t.user_attrs.get("finalist_of") == winner.number and t.value is not None]
    val_acc = (statistics.fmean(t.user_attrs["val_accuracy"] for t in runs) if runs
               else winner.user_attrs["val_accuracy"])
    return {"wall": wall, "cpu": cpu, "retrain_wall": retrain_wall, "val_accuracy": val_acc, **record}


def _objective(trial: optuna.Trial, spec, data: DataRef) -> float:
    d = data.load()
    # the longer of this project's two budgets (its finalists'), for every trial
    config = suggest(trial, spec.space, spec.finalist_epochs, training_seed(spec.seed, trial.number))

    def report(stats) -> bool:
        trial.report(stats.val_loss, stats.epoch)
        return trial.should_prune()

    result = train(config, d.X_train, d.y_train, d.X_val, d.y_val, n_classes=d.n_classes, callback=report,
                   image_shape=d.image_shape)
    if result.outcome == "diverged":
        raise optuna.TrialPruned()  # the textbook answer to a NaN loss
    trial.set_user_attr("val_accuracy", result.best_val_accuracy)
    trial.set_user_attr("best_epoch", result.best_epoch)
    if result.outcome == "stopped":
        raise optuna.TrialPruned()
    return result.best_val_loss


def _baseline_worker(url: str, n_trials: int, seed: int, spec, data: DataRef) -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="baseline", storage=url,
                              sampler=optuna.samplers.TPESampler(seed=seed),
                              pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3))
    study.optimize(lambda t: _objective(t, spec, data), n_trials=n_trials, catch=(Exception,))


def _retrain(config, data: DataRef) -> np.ndarray:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    d = data.load()
    X, y = np.concatenate([d.X_train, d.X_val]), np.concatenate([d.y_train, d.y_val])
    result = train(config, X, y, d.X_test, d.y_test, n_classes=d.n_classes, image_shape=d.image_shape)
    return result.network.predict_proba(d.X_test)


def baseline(seed: int, trials: int | None, preset: str | None, retrain_seeds: int, workdir: Path,
             test_seed: int) -> dict:
    spec = build_spec("baseline", preset, {"seed": seed, "test_seed": test_seed, "trials": trials})
    data = DataRef.of(spec)
    url = f"sqlite:///{workdir / f'baseline-{seed}.db'}"
    start, cpu = time.perf_counter(), _cpu()
    optuna.create_study(study_name="baseline", storage=url, direction="minimize")
    per_worker = [spec.trials // 2, spec.trials - spec.trials // 2]
    with Parallel(n_jobs=2) as parallel:
        parallel(delayed(_baseline_worker)(url, n, seed * 2 + i, spec, data) for i, n in enumerate(per_worker))
    wall = time.perf_counter() - start
    cpu = time.process_time() + _cpu() - cpu  # approximate: loky workers are reaped lazily
    study = optuna.load_study(study_name="baseline", storage=url)
    best = study.best_trial
    epochs = int(best.user_attrs["best_epoch"])
    configs = [suggest(optuna.trial.FixedTrial(best.params), spec.space, epochs,
                       int(np.random.SeedSequence([seed, 2, k]).generate_state(1)[0]))
               for k in range(retrain_seeds)]
    start = time.perf_counter()
    probs = Parallel(n_jobs=2)(delayed(_retrain)(c, data) for c in configs)
    retrain_wall = time.perf_counter() - start
    y_test = data.load().y_test
    accuracies = [float(np.mean(p.argmax(1) == y_test)) for p in probs]
    return {"wall": wall, "cpu": cpu, "retrain_wall": retrain_wall, "val_accuracy": best.user_attrs["val_accuracy"],
            "test_accuracy": accuracies, "test_accuracy_mean": statistics.fmean(accuracies),
            "test_accuracy_sd": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
            "ensemble_accuracy": float(np.mean(np.mean(probs, axis=0).argmax(1) == y_test)),
            "trial": best.number, "epochs": epochs}


def _row(name: str, seed: int, r: dict) -> str:
    optimism = r["val_accuracy"] - r["test_accuracy_mean"]
    return (f"{name:<14} {seed:>4} {r['wall']:>8.1f} {r['cpu']:>7.1f} {r['retrain_wall']:>9.1f} "
            f"{r['val_accuracy']:>8.4f} "
            f"{r['test_accuracy_mean']:>8.4f} ± {r['test_accuracy_sd']:.4f} {r['ensemble_accuracy']:>9.4f} "
            f"{optimism:>+9.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="study seeds")
    parser.add_argument("--trials", type=int, help="trials per study (default: the preset's, or 200)")
    parser.add_argument("--preset", help="a study preset, e.g. studies/fashion-mnist.toml (default: digits)")
    parser.add_argument("--retrain-seeds", type=int, default=3, help="final networks per winner (default 3)")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=FLAGS",
                        help="also run this project with extra `run` flags, e.g. 'holdout=--cv 1'")
    parser.add_argument("--no-baseline", action="store_true", help="skip the plain-Optuna arm")
    parser.add_argument("--no-defaults", action="store_true", help="skip this project's default arm")
    parser.add_argument("--vary-test-split", action="store_true",
                        help="digits: score study seed S on the test split drawn with seed S, in both arms")
    parser.add_argument("--keep", metavar="DIR", help="keep the study databases in DIR (default: a temporary one)")
    args = parser.parse_args()
    arms = [] if args.no_defaults else [("ours", [])]
    arms += [(v.split("=", 1)[0], shlex.split(v.split("=", 1)[1])) for v in args.variant]
    results: dict[str, list[dict]] = {}
    header = (f"{'arm':<14} {'seed':>4} {'run s':>8} {'cpu s':>7} {'retrain s':>9} {'val acc':>8} "
              f"{'test acc (mean ± sd)':>17} {'ensemble':>9} {'optimism':>9}")
    # Two runs of this bench a day apart moved every seed of each arm the same way;
    # the versions are printed so that the next such difference can be traced.
    versions = {name: importlib.metadata.version(name) for name in ("numpy", "optuna", "scipy", "scikit-learn")}
    print(f"python {sys.version.split()[0]}, " + ", ".join(f"{k} {v}" for k, v in versions.items()), flush=True)
    print(header, flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.keep or scratch
        for seed in args.seeds:
            test_seed = seed if args.vary_test_split else 0
            for name, extra in arms:
                r = ours(seed, args.trials, args.preset, extra, args.retrain_seeds, Path(tmp) / name, test_seed)
                results.setdefault(name, []).append(r)
                print(_row(name, seed, r), flush=True)
            if not args.no_baseline:
                r = baseline(seed, args.trials, args.preset, args.retrain_seeds, Path(tmp), test_seed)
                results.setdefault("plain optuna", []).append(r)
                print(_row("plain optuna", seed, r), flush=True)
    print()
    for name, rs in results.items():
        tests = [r["test_accuracy_mean"] for r in rs]
        print(f"{name:<14} mean over {len(rs)} seeds: test {statistics.fmean(tests):.4f} "
              f"(sd {statistics.stdev(tests) if len(tests) > 1 else 0:.4f}), ensemble "
              f"{statistics.fmean(r['ensemble_accuracy'] for r in rs):.4f}, optimism "
              f"{statistics.fmean(r['val_accuracy'] - r['test_accuracy_mean'] for r in rs):+.4f}, run "
              f"{statistics.fmean(r['wall'] for r in rs):.1f} s + retrain "
              f"{statistics.fmean(r['retrain_wall'] for r in rs):.1f} s", flush=True)
    _paired(results)


def _paired(results: dict[str, list[dict]]) -> None:
    """Each arm against the plain recipe, seed by seed: the difference and its standard error.

    The arms share the test images and the study seeds, so the paired difference
    is the figure to judge; a difference within about two standard errors is
    not one that another run of this bench would be expected to repeat.
    """
    plain = results.get("plain optuna")
    if not plain or len(plain) < 2:
        return
    for name, rs in results.items():
        if name == "plain optuna" or len(rs) != len(plain):
            continue
        diff = [a["test_accuracy_mean"] - b["test_accuracy_mean"] for a, b in zip(rs, plain)]
        se = statistics.stdev(diff) / len(diff) ** 0.5
        print(f"{name} - plain optuna, paired over {len(diff)} seeds: {statistics.fmean(diff):+.4f} "
              f"(standard error {se:.4f})", flush=True)


if __name__ == "__main__":
    main()
