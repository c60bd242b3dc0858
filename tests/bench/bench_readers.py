"""Does a reader slow a run? The same fixed workload with and without one.

    python tests/bench/bench_readers.py [--trials 60] [--epochs 20]

Runs ``python -m search run`` (random sampler with a fixed seed, no pruning: the
same trials both times) alone, then while another process polls the same SQLite
file every 0.2 s with ``load_results`` and ``optuna.load_study(...).trials``.
Reports both wall times, their ratio, the coordinator's per-trial costs (a reader
holding the database would show as slower storage writes) and the reader's
errors (must be 0). On 2 cores the reader's own CPU (Optuna's ORM load and the
DataFrame: about 0.4 s a poll at 200 trials) is taken from the workers.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

READER = """
import sys, time, optuna
from search.results import load_results
optuna.logging.set_verbosity(optuna.logging.ERROR)
url, polls, errors = sys.argv[1], 0, 0
while True:
    try:
        load_results("r", url)
        optuna.load_study(study_name="r", storage=url).trials
        polls += 1
    except Exception as exc:
        if "no study" not in str(exc) and "holds no" not in str(exc):
            errors += 1
            print(repr(exc), file=sys.stderr)
    print(polls, errors, flush=True)
    time.sleep(0.2)
"""


def run(db: Path, trials: int, epochs: int) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "search", "run", "--study", "r", "--storage", f"sqlite:///{db}",
                    "--trials", str(trials), "--epochs", str(epochs), "--sampler", "random", "--pruner",
                    "none", "--seed", "1", "--jobs", "2", "--no-progress"],
                   check=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
                   text=True).stdout
    costs = next(line for line in out.splitlines() if line.startswith("coordinator ms/trial"))
    return time.perf_counter() - start, costs.split("  ", 1)[1].strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        alone, alone_costs = run(Path(tmp) / "alone.db", args.trials, args.epochs)
        db = Path(tmp) / "read.db"
        reader = subprocess.Popen([sys.executable, "-c", READER, f"sqlite:///{db}"], cwd=ROOT,
                                  env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.PIPE, text=True)
        try:
            watched, watched_costs = run(db, args.trials, args.epochs)
        finally:
            reader.terminate()
            out, _ = reader.communicate()
    polls, errors = (int(x) for x in out.split("\n")[-2].split())
    print(f"{args.trials} trials x {args.epochs} epochs, 2 workers: alone {alone:.2f} s, with a reader "
          f"polling every 0.2 s {watched:.2f} s (x{watched / alone:.2f}); reader polls {polls}, errors {errors}")
    print(f"  coordinator alone:       {alone_costs}")
    print(f"  coordinator with reader: {watched_costs}")


if __name__ == "__main__":
    main()
