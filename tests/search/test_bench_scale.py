"""tests/bench/bench_scale.py in miniature: the simulated executor drives the real coordinator,
and what the bench reports is what the storage holds."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.bench.scale.run import run_bench


def test_a_tiny_scale_bench_reports_the_trials_the_storage_holds(tmp_path: Path) -> None:
    db = tmp_path / "scale.db"
    report = run_bench(4, 50, f"sqlite:///{db}", trial_seconds=0.05, checkpoints=[50], real_every=5)

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = dict(conn.execute("SELECT state, count(*) FROM trials GROUP BY state").fetchall())
    finally:
        conn.close()
    finished = rows.get("COMPLETE", 0) + rows.get("PRUNED", 0)
    assert finished == report.summary.finished == report.stored_finished >= 50
    assert set(rows) <= {"COMPLETE", "PRUNED"}  # nothing failed or left running
    assert [w.checkpoint for w in report.windows] == [50] and report.missed == []
    agree, sampled = report.agree
    assert sampled >= 5 and agree == sampled  # the NumPy pruning rule is run_trial's
