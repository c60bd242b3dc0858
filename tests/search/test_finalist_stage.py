"""The finalist stage end to end: real runs, real kills, rows counted in the SQLite file."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import psutil
import pytest

from model import Network
from model.datasets import load_dataset
from search import SearchError, load_final_networks, load_finalists, load_results
from tests.conftest import finished, query, run_cli, running_cli
from tests.search.sql import best_search_trials, finalist_attr

FAST = ("--dataset", "digits", "--epochs", "4", "--no-progress")


def finalist_runs(db: Path) -> list[tuple[int, int, str]]:
    """(finalist_of, repeat, state) of every finalist run in the file."""
    rows = query(db, "SELECT t.trial_id, t.state, a.key, a.value_json FROM trials t "
                     "JOIN trial_user_attributes a USING (trial_id) "
                     "WHERE a.key IN ('stage', 'finalist_of', 'repeat')")
    by_trial: dict[int, dict] = {}
    for trial_id, state, key, value in rows:
        by_trial.setdefault(trial_id, {"state": state})[key] = json.loads(value)
    return sorted((r["finalist_of"], r["repeat"], r["state"]) for r in by_trial.values()
                  if r.get("stage") == "finalist")


def chosen(db: Path) -> list[int]:
    (raw,) = query(db, "SELECT value_json FROM study_user_attributes WHERE key='finalists'")[0]
    return json.loads(json.loads(raw))["numbers"]


def finished_pairs(db: Path) -> list[tuple[int, int]]:
    return sorted((f, r) for f, r, state in finalist_runs(db) if state in ("COMPLETE", "PRUNED"))


def preset(tmp_path: Path, **keys: object) -> str:
    path = tmp_path / "p.toml"
    path.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items()))
    return str(path)


def wait_for_a_running_finalist(db: Path, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else "the run ended"
        assert time.monotonic() < deadline, "no finalist run started"
        try:
            if any(state == "RUNNING" for _, _, state in finalist_runs(db)):
                return
        except sqlite3.OperationalError:  # the run has not created the file yet
            pass
        time.sleep(0.05)


@contextmanager
def in_finalist_stage(db: Path, tmp_path: Path, study: str, trials: int, repeats: int) -> Iterator[subprocess.Popen]:
    """A real run of 2 finalists x ``repeats`` long (60-epoch) runs, once one of them is RUNNING."""
    with running_cli("run", "--trials", str(trials), "--finalists", "2", "--jobs", "2", "--study", study,
                     "--storage", f"sqlite:///{db}", "--no-progress",
                     "--preset", preset(tmp_path, finalist_epochs=60, finalist_repeats=repeats, epochs=3,
                                        dataset="digits")) as proc:
        wait_for_a_running_finalist(db, proc)
        yield proc


@pytest.mark.slow
def test_the_best_distinct_configurations_run_again_unpruned_on_fresh_seeds(db: Path, tmp_path: Path) -> None:
    out = run_cli("run", "--trials", "12", "--finalists", "3", "--study", "f", "--storage", f"sqlite:///{db}",
                  "--preset", preset(tmp_path, finalist_repeats=2, finalist_epochs=6, epochs=4, dataset="digits"),
                  "--no-progress")
    assert out.returncode == 0, out.stderr
    numbers = chosen(db)
    assert len(numbers) == 3
    # the three best complete search trials by value, with distinct parameters
    best = best_search_trials(db, 3)
    assert numbers == [n for (n,) in best]
    assert finished_pairs(db) == sorted((n, r) for n in numbers for r in (1, 2))
    # never pruned, and trained for finalist_epochs, on seeds no search trial used
    epochs = finalist_attr(db, "epochs")
    assert {json.loads(v) for (v,) in epochs} <= {6} or "diverged" in out.stdout
    seeds = [json.loads(v) for (v,) in query(db, "SELECT value_json FROM trial_user_attributes WHERE key='seed'")]
    assert len(seeds) == len(set(seeds)) == 12 + 6
    assert "12 finished" in out.stdout and "6 in the study" in out.stdout

    best_out = run_cli("best", "--study", "f", "--storage", f"sqlite:///{db}")
    assert best_out.returncode == 0, best_out.stderr
    assert "finalists (fresh runs: mean ± sd)" in best_out.stdout
    assert best_out.stdout.count(" ± ") >= 6

    show = run_cli("show", "--study", "f", "--storage", f"sqlite:///{db}")
    assert show.returncode == 0 and "finalists: fresh runs" in show.stdout
    df = load_results("f", f"sqlite:///{db}")
    table = load_finalists("f", f"sqlite:///{db}")
    assert sorted(table.finalist_of) == sorted(numbers) and (table.runs == 2).all()
    for _, row in table.iterrows():  # the mean and sd of its runs' values, on the finalist's own row
        values = df[(df.stage == "finalist") & (df.finalist_of == row.finalist_of)].value
        own = df[df.number == row.finalist_of].iloc[0]
        if values.notna().all():
            assert row.value_mean == pytest.approx(values.mean()) == own.finalist_value_mean
            assert row.value_sd == pytest.approx(values.std()) == own.finalist_value_sd
    assert table.value_mean.is_monotonic_increasing
    assert (df[df.stage == "search"].shape[0], df[df.stage == "finalist"].shape[0]) == (12, 6)


@pytest.mark.slow  # .ci/run runs it; 25-35 s of kills and re-runs
def test_a_coordinator_killed_during_the_finalist_stage_loses_nothing_and_resume_completes_it(
        db: Path, tmp_path: Path) -> None:
    with in_finalist_stage(db, tmp_path, "fk", trials=10, repeats=3) as proc:
        done_before = finished_pairs(db)
        os.kill(proc.pid, signal.SIGKILL)  # the coordinator only, as a crash would
        proc.wait(10)
    assert len(done_before) < 6, "the kill was meant to land during the finalist stage"
    out = run_cli("resume", "--study", "fk", "--storage", f"sqlite:///{db}", "--no-progress")
    assert out.returncode == 0, out.stderr
    numbers = chosen(db)
    assert finished_pairs(db) == sorted((n, r) for n in numbers for r in (1, 2, 3))  # each exactly once
    assert set(done_before) <= set(finished_pairs(db))
    assert query(db, "SELECT count(*) FROM trials WHERE state='RUNNING'") == [(0,)]
    assert finished(db) == 10  # search trials


@pytest.mark.slow  # .ci/run runs it; 25-35 s of kills and re-runs
def test_a_worker_killed_during_the_finalist_stage_costs_one_rerun(db: Path, tmp_path: Path) -> None:
    with in_finalist_stage(db, tmp_path, "fw", trials=8, repeats=2) as proc:
        workers = [p for p in psutil.Process(proc.pid).children(recursive=True)
                   if "loky" in " ".join(p.cmdline()) and "resource_tracker" not in " ".join(p.cmdline())]
        assert workers
        for w in workers:
            w.kill()
        out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    numbers = chosen(db)
    assert finished_pairs(db) == sorted((n, r) for n in numbers for r in (1, 2))
    lost = [f for f in finalist_runs(db) if f[2] == "FAIL"]
    assert lost, "a finalist run was meant to be running when its worker died"
    retried = [(len(finalist_attr(db, "retry_of")),)]
    assert retried == [(len(lost),)]


@pytest.mark.slow
def test_retraining_k_seeds_reports_their_mean_spread_and_ensemble_and_stores_them(
        db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = run_cli("run", "--trials", "8", "--finalists", "2", "--study", "r", "--storage", f"sqlite:///{db}",
                  *FAST)
    assert out.returncode == 0, out.stderr
    weights = tmp_path / "w.npz"
    best = run_cli("best", "--study", "r", "--storage", f"sqlite:///{db}", "--retrain", "--seeds", "3",
                   "--out", str(weights))
    assert best.returncode == 0, best.stderr
    data = load_dataset("digits", val_fraction=0.2)
    nets = [Network.load(tmp_path / f"w-seed{k}.npz") for k in range(3)]
    accuracies = [float(np.mean(n.predict(data.X_test) == data.y_test)) for n in nets]
    ensemble = float(np.mean(np.mean([n.predict_proba(data.X_test) for n in nets], axis=0).argmax(1)
                             == data.y_test))
    (raw,) = query(db, "SELECT value_json FROM study_user_attributes WHERE key='retrained'")[0]
    record = json.loads(json.loads(raw))
    assert record["test_accuracy"] == pytest.approx(accuracies, abs=1e-6)
    assert record["ensemble_accuracy"] == pytest.approx(ensemble, abs=1e-6)
    assert record["samples"] == len(data.y_train) + len(data.y_val)
    assert len({n.parameters()[0].tobytes() for n in nets}) == 3  # three different seeds
    mean = np.mean(accuracies)
    assert f"test accuracy        {mean:.4f} ± " in best.stdout
    assert f"ensemble accuracy    {ensemble:.4f}" in best.stdout
    # the winner is the finalist with the best mean, and its epoch count comes from their curves
    assert f"retrained trial {record['trial']} on {record['samples']} samples for {record['epochs']} epochs" \
        in best.stdout
    assert record["trial"] in chosen(db)

    # the ensemble it scored can be loaded back and used, from any working directory
    monkeypatch.chdir(tmp_path.parent)
    final = load_final_networks("r", f"sqlite:///{db}")
    assert len(final.networks) == 3 and final.record == record
    assert float(np.mean(final.predict(data.X_test) == data.y_test)) == pytest.approx(ensemble, abs=1e-6)
    (tmp_path / "w-seed1.npz").unlink()
    with pytest.raises(SearchError, match=r"the retrained weights .*w-seed1.npz are gone"):
        load_final_networks("r", f"sqlite:///{db}")


@pytest.mark.slow
def test_a_study_never_retrained_has_no_final_networks_to_load(db: Path) -> None:
    out = run_cli("run", "--trials", "3", "--finalists", "0", "--study", "n", "--storage", f"sqlite:///{db}", *FAST)
    assert out.returncode == 0, out.stderr
    with pytest.raises(SearchError, match="study 'n' has no retrained networks yet: run `python -m search best"):
        load_final_networks("n", f"sqlite:///{db}")
