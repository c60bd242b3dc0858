"""How long does `python -m search report` take, and how big is the page?

    python tests/bench/bench_report.py [--trials 200 1000] [--epochs 10] [--keep DIR]

Runs a real digits study of each size (TPE, median pruner; about 45 s for 200
trials and 6 min for 1,000 on 2 cores), then times the report command three
times as a fresh process, as a user runs it. Reports the best and median wall
time, the CPU time of the command and its figure-drawing children (the figures
are drawn on every core), and the file size. Targets (issue 10): <= 5 s at
200 trials, <= 15 s at 1,000, <= 5 MB. On a shared machine the wall time
follows the load: compare the CPU time with the cores the command had.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and its children) of one ``python -m search`` run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "search", *args], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", help="directory for the studies and reports (default: a temp dir)")
    args = parser.parse_args()
    base = Path(args.keep or tempfile.mkdtemp(prefix="bench-report-"))
    base.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; studies in {base}")
    for n in args.trials:
        name, url = f"r{n}", f"sqlite:///{base / f'r{n}.db'}"
        if not (base / f"r{n}.db").exists():
            wall, _ = _cli("run", "--trials", str(n), "--study", name, "--storage", url,
                           "--epochs", str(args.epochs), "--no-progress")
            print(f"{n} trials: study run in {wall:.0f} s")
        out = base / f"r{n}.html"
        runs = [_cli("report", "--study", name, "--storage", url, "--out", str(out)) for _ in range(args.repeats)]
        walls, cpus = [w for w, _ in runs], [c for _, c in runs]
        print(f"{n} trials: report wall {min(walls):.1f} s best, {statistics.median(walls):.1f} s median; "
              f"CPU {statistics.median(cpus):.1f} s; {out.stat().st_size / 1e6:.2f} MB "
              f"(load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
