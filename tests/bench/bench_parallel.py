"""Parallel speed-up and coordinator cost, measured in one run.

    python tests/bench/bench_parallel.py [--trials 60] [--epochs 20]

1. The same fixed workload (random sampler with a fixed seed, no pruning: every
   trial trains the same configuration for the same epochs whatever --jobs is)
   with 1 and 2 worker processes: wall time and speed-up.
2. The default search (TPE, median pruner) on digits with 2 workers: the
   coordinator's cost per trial, split into (a) the sampler's ask, (b) storage
   writes (in the writer thread, off the dispatch path) and (c) dispatch +
   collection; and how busy the workers were.
3. The plain pattern for comparison: Optuna's public API on the same kind of
   SQLite file, writing the same rows as this project's two writes (a trial with
   the same six parameters, then 30 intermediate values, 6 user attrs and its
   result). Both sides are timed write by write and given as medians; the plain
   side uses a random sampler so that no sampling time is counted in its ask.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from optuna.trial import TrialState  # noqa: E402

from search.coordinator.coordinator import Coordinator, RunSummary  # noqa: E402
from search.coordinator.create import create_or_continue  # noqa: E402
from search.study.dataref import DataRef  # noqa: E402
from search.study.spec import StudySpec  # noqa: E402
from search.study.storage import create_running_trial, finish_trial, open_storage  # noqa: E402
from search.workers.local import LocalExecutor  # noqa: E402


def run(spec: StudySpec, jobs: int, directory: Path) -> RunSummary:
    storage = open_storage(f"sqlite:///{directory / f'{spec.name}.db'}", create=True)
    spec, study_id, lease = create_or_continue(storage, spec, set())
    executor = LocalExecutor(jobs)
    data = DataRef(spec.dataset, spec.val_fraction, spec.normalization)
    data.load()
    try:
        return Coordinator(spec, storage, study_id, executor, data=data, progress=False, lease=lease).run()
    finally:
        executor.close()
        lease.release()
        storage.engine.dispose()


def plain_optuna(directory: Path, trials: int, epochs: int) -> tuple[float, float]:
    """Median ms of Optuna's own calls on a default SQLite file: (create with params, finish).

    The same rows as ``our_writes_alone``; a random sampler, so the ask is storage work."""
    study = optuna.create_study(storage=f"sqlite:///{directory / 'plain.db'}", direction="minimize",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    create, finish = [], []
    for _ in range(trials):
        start = time.perf_counter()
        trial = study.ask(DISTRIBUTIONS)
        trial.set_user_attr("seed", trial.number)
        create.append(time.perf_counter() - start)
        start = time.perf_counter()
        for step in range(1, epochs + 1):
            trial.report(0.5, step)
        for key in ("val_accuracy", "best_epoch", "epochs", "seconds", "host", "pid"):
            trial.set_user_attr(key, 1.0)
        study.tell(trial, 0.5)
        finish.append(time.perf_counter() - start)
    return statistics.median(create) * 1e3, statistics.median(finish) * 1e3


DISTRIBUTIONS = {"learning_rate": optuna.distributions.FloatDistribution(1e-4, 1, log=True),
                 "batch_size": optuna.distributions.CategoricalDistribution([16, 32]),
                 **{f"units_l{i}": optuna.distributions.IntDistribution(16, 1024, log=True) for i in range(4)}}


def our_writes_alone(directory: Path, trials: int, epochs: int) -> tuple[float, float]:
    """ms per trial of this project's two writes with nothing else running (no GIL contention)."""
    storage = open_storage(f"sqlite:///{directory / 'writes.db'}", create=True)
    study_id = storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], "writes")
    dists = DISTRIBUTIONS
    params = {"learning_rate": 0.01, "batch_size": 32, **{f"units_l{i}": 64 for i in range(4)}}
    create, finish = [], []
    for number in range(trials):
        start = time.perf_counter()
        trial_id = create_running_trial(storage, study_id, number, params, dists, {"seed": number})
        create.append(time.perf_counter() - start)
        start = time.perf_counter()
        finish_trial(storage, trial_id, TrialState.COMPLETE, 0.5, [0.5] * epochs,
                     {k: 1.0 for k in ("val_accuracy", "best_epoch", "epochs", "seconds", "host", "pid")}, {})
        finish.append(time.perf_counter() - start)
    storage.engine.dispose()
    return statistics.median(create) * 1e3, statistics.median(finish) * 1e3


def ms(values: list[float]) -> str:
    return f"{statistics.mean(values):6.1f} ms" if values else "     -"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        fixed = dict(trials=args.trials, epochs=args.epochs, sampler="random", pruner="none", seed=1)
        warm = run(StudySpec(name="warm", **{**fixed, "trials": 4}), 2, directory)  # spawn, imports, cache
        del warm
        one = run(StudySpec(name="jobs1", **fixed), 1, directory)
        two = run(StudySpec(name="jobs2", **fixed), 2, directory)
        print(f"fixed workload: {args.trials} trials x {args.epochs} epochs on digits, random sampler, no pruning")
        print(f"  --jobs 1: {one.wall_seconds:6.2f} s   (workers busy {one.worker_busy:.0%})")
        print(f"  --jobs 2: {two.wall_seconds:6.2f} s   (workers busy {two.worker_busy:.0%})")
        print(f"  speed-up: {one.wall_seconds / two.wall_seconds:.2f}x")

        tpe = run(StudySpec(name="tpe", trials=200, epochs=30), 2, directory)
        per_trial_writes = sum(sum(v) for v in tpe.write_ms.values()) / max(1, tpe.ran)
        print(f"default search: 200 trials on digits, TPE + median pruner, 2 workers: {tpe.wall_seconds:.1f} s,"
              f" best val acc {tpe.best_accuracy:.4f}, workers busy {tpe.worker_busy:.0%}")
        print(f"  (a) sampler ask         {ms(tpe.ask_ms)} per trial (first 20: {ms(tpe.ask_ms[:20])},"
              f" last 20: {ms(tpe.ask_ms[-20:])})")
        print(f"  (b) storage writes      {per_trial_writes:6.1f} ms per trial, off the dispatch path "
              + ", ".join(f"{k} {ms(v)}" for k, v in tpe.write_ms.items()))
        dispatch_collect = statistics.mean(tpe.dispatch_ms) + statistics.mean(tpe.collect_ms)
        print(f"  (c) dispatch + collect  {dispatch_collect:6.1f} ms per trial")
        plain_create, plain_finish = plain_optuna(directory, 200, 30)
        create, finish = our_writes_alone(directory, 200, 30)
        print("storage writes alone, the same rows per trial (6 params, 30 reports, 7 user attrs, result),"
              " median of 200:")
        print(f"  plain Optuna API   create {plain_create:5.1f} ms + finish {plain_finish:5.1f} ms per trial")
        print(f"  this project       create {create:5.1f} ms + finish {finish:5.1f} ms per trial"
              " (in a run they also wait for the GIL while the sampler asks)")


if __name__ == "__main__":
    main()
