"""Overhead of the Dask executor against the local process pool, same workload.

Run as ``python tests/bench/bench_dask.py`` (not collected by pytest). The same
study (digits, random sampler, no pruner, fixed epochs, fixed seed, --jobs 2) is
run through the command line, in fresh processes, three ways:

- ``local``: the default loky process pool, SQLite storage;
- ``dask``: a Dask cluster of 2 single-threaded worker processes (a scheduler and
  ``dask worker`` started here, on 127.0.0.1, before the timed run), SQLite storage;
- ``dask+pg``: the same cluster, storage on a throwaway PostgreSQL server (skipped
  if PostgreSQL cannot be started here);
- ``dask-lc``: ``--executor dask`` with no scheduler: the command starts (and times)
  its own ``LocalCluster``.

Reported per run: the coordinator's wall time (from the run summary: sampling,
dispatch, training and collection; the local pool's worker start-up is inside it,
the Dask workers were started before), the whole command's wall time, the mean
dispatch and collect milliseconds per trial, the steady-state milliseconds
between trial completions once all workers are up (the overhead a long study
pays) with its ratio to ``local``, and "workers busy" from the summary. Every
configuration runs ``--repeat`` times, interleaved: each repeat runs every
configuration back to back, so a ratio to ``local`` is taken within a repeat
(paired, on the same machine load) and the median over repeats is shown.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
           OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_dask(n_workers: int) -> tuple[str, list[subprocess.Popen]]:
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": ENV}
    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host",
                                  "127.0.0.1", "--port", str(port), "--no-dashboard"], **quiet)
    workers = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address,
                                "--nworkers", str(n_workers), "--nthreads", "1", "--host", "127.0.0.1",
                                "--no-dashboard"], **quiet)
    import distributed

    with distributed.Client(address, timeout=30) as client:
        client.wait_for_workers(n_workers, timeout=60)
        # load the data set in every worker once, as a long-lived cluster would have it
        client.run(lambda: __import__("search.study.dataref", fromlist=["DataRef"]).DataRef("digits").load())
    return address, [workers, scheduler]


def run(label: str, storage: str, args: list[str], extra: list[str]) -> dict[str, float]:
    cmd = [sys.executable, "-m", "search", "run", "--storage", storage, *args, *extra]
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=1800)
    total = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"{label} failed:\n{out.stderr}")
    wall = float(re.search(r"finished, .* ([0-9.]+) s with", out.stdout).group(1))
    dispatch, collect = re.search(r"dispatch ([0-9.]+), collect ([0-9.]+)", out.stdout).groups()
    busy = float(re.search(r"workers busy\s+([0-9]+)%", out.stdout).group(1))
    return {"wall": wall, "total": total, "dispatch": float(dispatch), "collect": float(collect),
            "busy": busy, "steady": steady_ms(storage)}


def steady_ms(storage: str) -> float:
    """Milliseconds between trial completions once every worker is up: (last - 3rd) / (n - 3).

    Start-up (the local pool spawns its workers at the first task) is left out, so this
    is what a long study pays per trial."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    summaries = optuna.get_all_study_summaries(storage)
    trials = optuna.load_study(study_name=summaries[0].study_name, storage=storage).trials
    done = sorted(t.datetime_complete for t in trials if t.datetime_complete is not None)
    return (done[-1] - done[2]).total_seconds() * 1e3 / (len(done) - 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-postgres", action="store_true", help="skip the dask+pg configuration")
    opts = parser.parse_args()

    study = ["--dataset", "digits", "--sampler", "random", "--pruner", "none", "--epochs", str(opts.epochs),
             "--seed", "0", "--jobs", str(opts.jobs), "--no-progress"]
    tmp = Path(tempfile.mkdtemp(prefix="bench-dask-"))
    address, procs = start_dask(opts.jobs)
    pg = None
    if not opts.no_postgres:
        from tests.search.pg import PostgresUnavailable, start_postgres

        try:
            pg = start_postgres()
        except PostgresUnavailable as exc:
            print(f"dask+pg skipped: {exc}")
    configs: dict[str, tuple[str, list[str]]] = {}
    runs: dict[str, list[dict[str, float]]] = {}  # label -> one result per repeat, in order
    try:
        for i in range(opts.repeat):
            configs = {
                "local": (f"sqlite:///{tmp / f'local{i}.db'}", []),
                "dask": (f"sqlite:///{tmp / f'dask{i}.db'}", ["--executor", "dask", "--scheduler", address]),
                "dask-lc": (f"sqlite:///{tmp / f'lc{i}.db'}", ["--executor", "dask"]),
            }
            if pg is not None:
                configs["dask+pg"] = (pg.createdb(f"bench{i}"), ["--executor", "dask", "--scheduler", address])
            for label, (storage, extra) in configs.items():
                trials = ["--trials", str(opts.trials), "--study", f"b{i}"]
                runs.setdefault(label, []).append(run(label, storage, trials + study, extra))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
        if pg is not None:
            pg.stop()

    print(f"{opts.trials} trials, digits, random sampler, no pruner, {opts.epochs} epochs, "
          f"--jobs {opts.jobs}, median of {opts.repeat} paired repeats, {os.cpu_count()} CPUs")
    print(f"{'executor':<9} {'run s':>6} {'command s':>9} {'ms/trial steady':>15} {'ratio':>6} "
          f"{'busy':>5} {'dispatch ms':>11} {'collect ms':>10}")
    local = runs["local"]
    for label, results in runs.items():
        r = {k: statistics.median(x[k] for x in results) for k in results[0]}
        # ratio within each repeat (the same load for both), then the median of those ratios
        ratio = statistics.median(x["steady"] / b["steady"] for x, b in zip(results, local))
        print(f"{label:<9} {r['wall']:>6.2f} {r['total']:>9.2f} {r['steady']:>15.1f} {ratio:>6.2f} "
              f"{r['busy']:>4.0f}% {r['dispatch']:>11.1f} {r['collect']:>10.1f}")


if __name__ == "__main__":
    main()
