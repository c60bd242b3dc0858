"""Soak: a long study with worker processes killed every few seconds and a reader polling.

    python tests/bench/bench_soak.py [--trials 500] [--kill-every 3] [--jobs 2]

Runs ``python -m search run`` as a real process on a fresh SQLite file. While it
runs, a reader calls ``load_results`` every 0.2 s and a killer sends SIGKILL to
one of its worker processes every few seconds. Reports finished trials, retries,
errors seen by the reader (must be 0), trials given up and lost trials.

A trial is *lost* if it is left RUNNING, or failed without being run again and
without the coordinator having given up on it: that must never happen. A trial is
*given up* when its parameters lost a worker on every one of ``MAX_ATTEMPTS``
attempts: the coordinator records it FAIL with that reason, on purpose (the usual
cause is the kernel's OOM killer). Random kills hit that limit by chance when
they are frequent against long trials, so the report counts those apart, and
checks each one's chain of attempts back to the first.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from search.coordinator.coordinator import MAX_ATTEMPTS  # noqa: E402
from search.readers.results import load_results  # noqa: E402


@dataclass
class SoakReport:
    trials: int
    finished: int
    retries: int
    kills: int
    reader_polls: int
    reader_errors: list[str]
    lost: list[int]
    given_up: list[int]
    seconds: float
    returncode: int

    def __str__(self) -> str:
        return (f"soak: {self.finished}/{self.trials} finished trials in {self.seconds:.0f} s, "
                f"{self.kills} workers killed, {self.retries} retries, reader polls {self.reader_polls}, "
                f"reader errors {len(self.reader_errors)}, lost trials {len(self.lost)}, "
                f"given up after {MAX_ATTEMPTS} worker deaths {len(self.given_up)}, "
                f"exit code {self.returncode}")


def _rows(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def soak(trials: int, kill_every: float, jobs: int, epochs: int, directory: Path) -> SoakReport:
    db = directory / "soak.db"
    url = f"sqlite:///{db}"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "search", "run", "--study", "soak", "--trials", str(trials),
         "--jobs", str(jobs), "--epochs", str(epochs), "--storage", url, "--no-progress"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    errors: list[str] = []
    polls = 0
    stop = threading.Event()

    def reader() -> None:
        nonlocal polls
        while not stop.is_set():
            try:
                load_results("soak", url)
                polls += 1
            except Exception as exc:  # noqa: BLE001 -- the reader's failures are the measurement
                # "not created yet" is excused only before the first good read; then every error counts
                if polls or ("no study" not in str(exc) and "holds no" not in str(exc)):
                    errors.append(repr(exc))
            stop.wait(0.2)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    kills = 0
    start = time.monotonic()
    rng = random.Random(0)
    try:
        while proc.poll() is None:
            time.sleep(kill_every)
            try:
                children = psutil.Process(proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                break
            # worker processes only (loky's resource trackers are children too)
            workers = [c for c in children if "LokyProcess" in " ".join(c.cmdline())]
            if workers and proc.poll() is None:
                try:
                    rng.choice(workers).send_signal(signal.SIGKILL)
                    kills += 1
                except psutil.NoSuchProcess:
                    pass
        _, err = proc.communicate(timeout=600)
    finally:
        stop.set()
        thread.join()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    seconds = time.monotonic() - start
    # search trials: the finalist stage's runs come on top of the --trials asked for
    state = dict(_rows(db, "SELECT state, count(*) FROM trials WHERE trial_id NOT IN (SELECT trial_id FROM "
                           "trial_user_attributes WHERE key='stage' AND value_json='\"finalist\"') GROUP BY state"))
    lost, given_up = _lost_and_given_up(db)
    if proc.returncode:
        errors.append(f"run exited {proc.returncode}: {err.strip().splitlines()[-1:]}")
    retries = _rows(db, "SELECT count(*) FROM trial_user_attributes WHERE key='retry_of'")[0][0]
    return SoakReport(trials, state.get("COMPLETE", 0) + state.get("PRUNED", 0), retries, kills,
                      polls, errors, lost, given_up, seconds, proc.returncode)


def _lost_and_given_up(db: Path) -> tuple[list[int], list[int]]:
    """Split the unfinished trials into lost ones and ones given up on purpose.

    Given up means: FAIL, attempt ``MAX_ATTEMPTS``, no retry, and every earlier
    attempt in its ``retry_of`` chain also FAIL because its worker was lost.
    """
    state = dict(_rows(db, "SELECT number, state FROM trials"))
    attrs: dict[int, dict[str, object]] = {}
    for number, key, value in _rows(db, "SELECT t.number, a.key, a.value_json FROM trial_user_attributes a "
                                        "JOIN trials t USING (trial_id)"):
        attrs.setdefault(number, {})[key] = json.loads(value)
    retried = {a["retry_of"] for a in attrs.values() if "retry_of" in a}
    lost, given_up = [], []
    for number, st in sorted(state.items()):
        if st == "RUNNING":
            lost.append(number)
        elif st == "FAIL" and number not in retried:
            chain, n = [], number
            while n is not None:
                chain.append(n)
                n = attrs.get(n, {}).get("retry_of")
            whole = (len(chain) == MAX_ATTEMPTS and attrs[number].get("attempt") == MAX_ATTEMPTS
                     and all(state[c] == "FAIL" and "worker lost" in str(attrs[c].get("stop_reason", ""))
                             for c in chain))
            (given_up if whole else lost).append(number)
    return lost, given_up


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--kill-every", type=float, default=3.0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = soak(args.trials, args.kill_every, args.jobs, args.epochs, Path(tmp))
    print(report)
    for error in report.reader_errors[:5]:
        print("  reader error:", error)
    raise SystemExit(0 if not report.reader_errors and not report.lost and report.finished == args.trials else 1)


if __name__ == "__main__":
    main()
