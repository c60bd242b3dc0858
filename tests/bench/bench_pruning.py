"""What pruning saves on Fashion-MNIST: epochs run vs. budgeted, and what it costs in accuracy.

    python tests/bench/bench_pruning.py [--trials 30] [--epochs 12] [--pruner hyperband]

The same trials (random sampler, fixed seed: trial n has the same configuration
in both studies) run once with the pruner and once without, in one run, with
the Fashion-MNIST preset's space and 2 workers. Needs the real data set
(apt-get install dataset-fashion-mnist).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from search.study.spec import build_spec  # noqa: E402
from tests.bench.bench_parallel import run  # noqa: E402

PRESET = Path(__file__).resolve().parents[2] / "studies" / "fashion-mnist.toml"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--pruner", default="hyperband", choices=["hyperband", "median"])
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    base = build_spec("fm", str(PRESET), {"trials": args.trials, "epochs": args.epochs,
                                          "sampler": "random", "seed": 3})
    with tempfile.TemporaryDirectory() as tmp:
        pruned = run(replace(base, name="pruned", pruner=args.pruner), args.jobs, Path(tmp))
        full = run(replace(base, name="full", pruner="none"), args.jobs, Path(tmp))
    print(f"Fashion-MNIST, {args.trials} random-sampled trials x up to {args.epochs} epochs, "
          f"{args.jobs} workers")
    for label, s in ((f"{args.pruner} pruner", pruned), ("no pruning", full)):
        print(f"  {label:<17} epochs {s.epochs_run:4d} of {s.epochs_budget:4d} budgeted "
              f"({s.epochs_run / s.epochs_budget:.0%}), best val accuracy {s.best_accuracy:.4f}, "
              f"{s.wall_seconds:6.1f} s, peak worker RSS {s.worker_peak_rss_mb:.0f} MB")
    print(f"  pruning saved {1 - pruned.epochs_run / full.epochs_run:.0%} of the epochs and "
          f"{1 - pruned.wall_seconds / full.wall_seconds:.0%} of the time")


if __name__ == "__main__":
    main()
