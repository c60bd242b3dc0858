"""The coordinator at scale: where its time goes with 1,000-10,000 trials and up to 64 workers.

    python tests/bench/bench_scale.py [--workers 2 16 64] [--trials 10000] [--trial-seconds 1.0]
                                      [--storage sqlite|postgres|both] [--time-limit SECONDS]
    python tests/bench/bench_scale.py --record-from sqlite:////tmp/rec.db --study rec   # remake the curves

The real ``Coordinator`` (the study spec's TPE sampler, its pruner, the storage
writer, the lease, a fresh SQLite file or a throwaway PostgreSQL server) runs
against ``SimulatedExecutor``: K virtual workers that train nothing. Their work
runs in ONE separate process, never in the coordinator's, so it takes no GIL from
the coordinator. Each virtual worker replays the recorded digits curve nearest to
its task's configuration, decides pruning epoch by epoch and returns a real
``TrialResult`` after ``--trial-seconds`` x epochs run / max epochs of wall-clock
time (``--duration fixed``: every trial lasts ``--trial-seconds``, pruned or not;
the issue's floor assumes 1-s trials, and median pruning stops most trials after
3-4 of 20 epochs). Every ``--real-every``-th task is decided exactly as
``run_trial`` does, the others by the same median rule in NumPy; their agreement
is printed.

This file is the command line only; the parts are in ``tests/bench/scale/``, whose
``__init__`` lists them. A row is printed at each checkpoint (``--checkpoints``,
default 1000 5000 10000 finished trials in the study), over its window: the last 10%
of trials before it; ``scale/report.py`` says what each column measures.

First the floor of issue 12, for comparison (K=64, 1-s trials: >= 25 trials/s at
10,000 trials in the study, idle <= 10% at 1,000); after each run the stored rows
counted in SQL against RunSummary. ``--time-limit`` stops starting trials after that
many seconds (the coordinator's ``timeout``): checkpoints not reached are listed.

The study runs 2 x (K + 2) trials past ``--trials``, so that the last
checkpoint's window ends before the run's tail (when no new trial starts). The
bench reads private attributes (the coordinator's ``_writer``: write times and
queue length; the percentile pruner's settings) and changes nothing.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.scale.curves import CURVES, record_curves  # noqa: E402
from tests.bench.scale.report import print_report  # noqa: E402
from tests.bench.scale.run import run_bench, storage_url  # noqa: E402

FLOOR = "issue 12 floor: K=64, 1-s trials: >= 25 trials/s sustained at 10,000 trials, idle <= 10% at 1,000"
# options passed to run_bench under the same name
RUN_OPTIONS = ("trial_seconds", "checkpoints", "time_limit", "pruner", "real_every", "seed")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, nargs="+", default=[2, 16, 64], metavar="K")
    p.add_argument("--trials", type=int, default=10000)
    p.add_argument("--trial-seconds", type=float, default=1.0, help="a full-length trial (pruned: in proportion)")
    p.add_argument("--storage", choices=("sqlite", "postgres", "both"), default="sqlite")
    p.add_argument("--checkpoints", type=int, nargs="+", default=[1000, 5000, 10000])
    p.add_argument("--time-limit", type=float, help="stop starting trials after this many seconds (per run)")
    p.add_argument("--pruner", choices=("median", "hyperband", "none"), help="default: the study spec's (median)")
    every = "decide every N-th task exactly as run_trial does (0: never; default 100)"
    p.add_argument("--real-every", type=int, default=100, help=every)
    duration = (
        "epochs: a trial lasts --trial-seconds x epochs run / max epochs (default); fixed: every trial lasts "
        "--trial-seconds, pruned or not"
    )
    p.add_argument("--duration", choices=("epochs", "fixed"), default="epochs", help=duration)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--record-from", metavar="URL", help="remake scale_curves.json from this storage's --study")
    p.add_argument("--study", default="rec")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.record_from:
        print(f"{record_curves(args.record_from, args.study, CURVES)} curves written to {CURVES}")
        return
    print(FLOOR)
    options = {name: getattr(args, name) for name in RUN_OPTIONS}
    kinds = ("sqlite", "postgres") if args.storage == "both" else (args.storage,)
    for kind in kinds:
        for k in args.workers:
            with tempfile.TemporaryDirectory() as tmp, storage_url(kind, Path(tmp), k) as url:
                if url is None:
                    break
                started = time.monotonic()
                report = run_bench(k, args.trials, url, fixed_duration=args.duration == "fixed", **options)
                print_report(report, args.trial_seconds, args.duration, time.monotonic() - started)
                sys.stdout.flush()


if __name__ == "__main__":
    main()
