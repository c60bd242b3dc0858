"""Does a reader slow a run? The same fixed workload with and without one.

    python tests/bench/bench_readers.py [--trials 60] [--epochs 20]

Runs ``python -m search run`` (random sampler with a fixed seed, no pruning: the
same trials every time) alone; then while another process polls the same SQLite
file every 0.2 s with ``load_results`` and ``optuna.load_study(...).trials``; then
while optuna-dashboard serves the file and a client fetches the study's trials
from its API every second (a browser with live updates asks far less often).
Reports the wall times, their ratios, the coordinator's per-trial costs (a reader
holding the database would show as slower storage writes) and the readers'
errors (must be 0). On 2 cores the readers' own CPU (Optuna's ORM load and the
DataFrame: about 0.4 s a poll at 200 trials) is taken from the workers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

READER = """
import sys, time, optuna
from search.readers.results import load_results
optuna.logging.set_verbosity(optuna.logging.ERROR)
url, polls, errors = sys.argv[1], 0, 0
while True:
    try:
        load_results("r", url)
        optuna.load_study(study_name="r", storage=url).trials
        polls += 1
    except Exception as exc:
        # only before the first good read may the study not exist yet; after it, every error counts
        if polls or ("no study" not in str(exc) and "holds no" not in str(exc)):
            errors += 1
            print(repr(exc), file=sys.stderr)
    print(polls, errors, flush=True)
    time.sleep(0.2)
"""


def start_run(db: Path, trials: int, epochs: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "search", "run", "--study", "r", "--storage", f"sqlite:///{db}",
         "--trials", str(trials), "--epochs", str(epochs), "--sampler", "random", "--pruner",
         "none", "--seed", "1", "--jobs", "2", "--no-progress"],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.PIPE, text=True)


def finish_run(proc: subprocess.Popen, start: float) -> tuple[float, str]:
    out, _ = proc.communicate()
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"the run failed with exit code {proc.returncode}")
    costs = next(line for line in out.splitlines() if line.startswith("coordinator ms/trial"))
    return seconds, costs.split("  ", 1)[1].strip()


def run(db: Path, trials: int, epochs: int) -> tuple[float, str]:
    start = time.perf_counter()
    return finish_run(start_run(db, trials, epochs), start)


def with_dashboard(db: Path, trials: int, epochs: int, command: str) -> tuple[float, str, int, int]:
    """The run while optuna-dashboard serves the file and a client polls it every second."""
    start = time.perf_counter()
    proc = start_run(db, trials, epochs)
    while not db.exists() and proc.poll() is None:  # the dashboard would make the file itself
        time.sleep(0.05)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dashboard = subprocess.Popen([command, f"sqlite:///{db}", "--host", "127.0.0.1", "--port", str(port)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    polls, errors = 0, 0

    def client() -> None:
        nonlocal polls, errors
        while proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=30) as r:
                    for study in json.load(r)["study_summaries"]:
                        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/"
                                                    f"{study['study_id']}?after=0", timeout=30) as d:
                            json.load(d)
                polls += 1
            except Exception as exc:  # noqa: BLE001 -- every client exception is counted...
                refused = isinstance(getattr(exc, "reason", exc), ConnectionRefusedError)
                if polls or not refused:  # ...but a refused connection while the server starts
                    errors += 1
            time.sleep(1.0)

    thread = threading.Thread(target=client)
    thread.start()
    try:
        seconds, costs = finish_run(proc, start)
    finally:
        thread.join()
        dashboard.kill()
        dashboard.wait()
    return seconds, costs, polls, errors


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    dashboard_cmd = shutil.which("optuna-dashboard")
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
        if dashboard_cmd:
            served, served_costs, dash_polls, dash_errors = with_dashboard(
                Path(tmp) / "dash.db", args.trials, args.epochs, dashboard_cmd)
    polls, errors = (int(x) for x in out.split("\n")[-2].split())
    print(f"{args.trials} trials x {args.epochs} epochs, 2 workers: alone {alone:.2f} s, with a reader "
          f"polling every 0.2 s {watched:.2f} s (x{watched / alone:.2f}); reader polls {polls}, errors {errors}")
    if dashboard_cmd:
        print(f"  with optuna-dashboard serving the file, polled every 1 s: {served:.2f} s "
              f"(x{served / alone:.2f}); dashboard polls {dash_polls}, errors {dash_errors}")
    else:
        print("  optuna-dashboard is not installed: pip install -e '.[test]' to measure it too")
    print(f"  coordinator alone:          {alone_costs}")
    print(f"  coordinator with reader:    {watched_costs}")
    if dashboard_cmd:
        print(f"  coordinator with dashboard: {served_costs}")


if __name__ == "__main__":
    main()
