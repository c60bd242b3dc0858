"""End to end: real worker processes, real SQLite files, counted row by row."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import numpy as np
import optuna
import pytest

from model import Network, load_dataset
from search.readers.results import load_results
from search.study.spec import build_spec
from tests.conftest import finished, query, run_cli, running_cli, states, wait_until_finished
from tests.search.sql import attr_by_number

FAST = ("--dataset", "digits", "--epochs", "4", "--no-progress")


def wait_for_a_running_trial(db: Path, proc, timeout: float = 120) -> None:
    """Block until the run has a trial RUNNING in the file, so a kill lands inside one."""
    deadline = time.monotonic() + timeout
    while not query(db, "SELECT count(*) FROM trials WHERE state='RUNNING'")[0][0]:
        if proc.poll() is not None:
            pytest.fail(f"the run ended early: {proc.stderr.read() if proc.stderr else ''}")
        if time.monotonic() > deadline:
            pytest.fail(f"no trial running after {timeout} s")
        time.sleep(0.02)


def test_parallel_run_stores_exactly_n_finished_trials_from_distinct_workers(db: Path) -> None:
    # no finalist stage: this is about the search's trial count
    out = run_cli("run", "--trials", "24", "--jobs", "2", "--study", "par", "--storage",
                  f"sqlite:///{db}", "--finalists", "0", *FAST)
    assert out.returncode == 0, out.stderr
    assert finished(db) == 24
    assert states(db).get("RUNNING", 0) == 0
    numbers = [n for (n,) in query(db, "SELECT number FROM trials")]
    assert sorted(numbers) == list(range(len(numbers)))
    pids = query(db, "SELECT DISTINCT value_json FROM trial_user_attributes WHERE key='pid'")
    assert len(pids) >= 2
    assert "24 finished" in out.stdout

    again = run_cli("run", "--trials", "30", "--jobs", "2", "--study", "par", "--storage",
                    f"sqlite:///{db}", "--finalists", "0", *FAST)
    assert again.returncode == 0, again.stderr
    assert finished(db) == 30  # continued, not restarted; not one trial more

    # plain Optuna reads it (so optuna-dashboard can), and pandas gets typed columns
    study = optuna.load_study(study_name="par", storage=f"sqlite:///{db}")
    done = [t for t in study.trials if t.state.is_finished()]
    assert len(done) == 30 and all(len(t.intermediate_values) >= 1 for t in done)
    assert study.best_trial.user_attrs["val_accuracy"] > 0.5
    df = load_results("par", f"sqlite:///{db}")
    assert len(df) == 30 and df.number.is_monotonic_increasing
    assert str(df.epochs.dtype) == "Int64" and df.learning_rate.dtype == "float64"
    assert df.pid.nunique() >= 2 and (df.hidden.str.count("-") + 1 == df.n_layers).all()


@pytest.mark.slow
def test_deterministic_runs_give_the_same_trials_whatever_the_number_of_workers(tmp_path: Path) -> None:
    def trials(jobs: str) -> list[tuple]:
        db = tmp_path / f"det{jobs}.db"
        out = run_cli("run", "--trials", "10", "--jobs", jobs, "--study", "det", "--deterministic",
                      "--seed", "7", "--cv", "3", "--finalists", "2", "--storage", f"sqlite:///{db}", *FAST)
        assert out.returncode == 0, out.stderr
        return query(db, "SELECT t.number, t.state, v.value, p.param_name, p.param_value FROM trials t "
                         "LEFT JOIN trial_values v USING (trial_id) JOIN trial_params p USING (trial_id) "
                         "ORDER BY t.number, p.param_name")

    one, two = trials("1"), trials("2")
    repeats = build_spec("det", None, {}).finalist_repeats  # the digits default
    assert len({n for n, *_ in one}) == 10 + 2 * repeats  # the search, then 2 finalists' fresh runs
    assert one == two


def test_resume_after_the_coordinator_is_killed_keeps_every_trial(db: Path) -> None:
    with running_cli("run", "--trials", "40", "--jobs", "2", "--study", "kill", "--storage",
                     f"sqlite:///{db}", "--dataset", "digits", "--epochs", "12", "--no-progress") as proc:
        wait_until_finished(db, 8, proc)
        wait_for_a_running_trial(db, proc)
        os.kill(proc.pid, signal.SIGKILL)  # the coordinator only, as a crash would; the block's end kills its workers
        proc.wait(10)
    before = set(query(db, "SELECT number, state FROM trials WHERE state IN ('COMPLETE','PRUNED')"))
    running = [n for (n,) in query(db, "SELECT number FROM trials WHERE state='RUNNING'")]
    assert running, "the kill was meant to land while a trial ran"
    # the dead coordinator's lease is still there; its pid is gone, so resume takes it at once
    assert query(db, "SELECT count(*) FROM study_system_attributes WHERE key='search:coordinator'") == [(1,)]

    out = run_cli("resume", "--study", "kill", "--storage", f"sqlite:///{db}", "--no-progress")
    assert out.returncode == 0, out.stderr
    after = set(query(db, "SELECT number, state FROM trials WHERE state IN ('COMPLETE','PRUNED')"))
    assert before <= after
    assert finished(db) == 40
    assert query(db, "SELECT count(*) FROM study_system_attributes WHERE key='search:coordinator'") == [(0,)]
    numbers = [n for (n,) in query(db, "SELECT number FROM trials")]
    assert len(numbers) == len(set(numbers))
    reasons = dict(attr_by_number(db, "stop_reason"))
    retried = {json.loads(v) for (v,) in query(db, "SELECT value_json FROM trial_user_attributes "
                                                    "WHERE key='retry_of'")}
    for n in running:  # recorded as interrupted, and run again
        assert "interrupted" in json.loads(reasons[n])
        assert n in retried


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
@pytest.mark.slow
def test_ctrl_c_or_sigterm_stops_promptly_records_the_running_trials_and_resume_reruns_them(
        db: Path, how: str) -> None:
    with running_cli("run", "--trials", "40", "--jobs", "2", "--study", "sigint", "--storage",
                     f"sqlite:///{db}", "--dataset", "digits", "--epochs", "30", "--no-progress") as proc:
        wait_until_finished(db, 3, proc)
        wait_for_a_running_trial(db, proc)
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
        else:
            os.kill(proc.pid, signal.SIGTERM)  # what a scheduler or `timeout` does: the coordinator
        start = time.monotonic()
        _, err = proc.communicate(timeout=120)
    # promptness is the feature: generous for a loaded machine, far below 37 trials still to run
    assert time.monotonic() - start < 60
    assert proc.returncode == 130, err
    assert "resume --study sigint" in err
    assert "Traceback" not in err
    assert states(db).get("RUNNING", 0) == 0
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
    assert query(db, "SELECT count(*) FROM study_system_attributes WHERE key='search:coordinator'") == [(0,)]
    interrupted = {n for n, _ in attr_by_number(db, "rerun")}
    assert interrupted

    out = run_cli("resume", "--study", "sigint", "--storage", f"sqlite:///{db}", "--no-progress")
    assert out.returncode == 0, out.stderr
    assert finished(db) == 40
    retried = {json.loads(v) for (v,) in query(db, "SELECT value_json FROM trial_user_attributes "
                                                    "WHERE key='retry_of'")}
    assert interrupted <= retried


@pytest.mark.slow
def test_a_study_drawn_on_another_digits_test_split_is_scored_on_it_and_keeps_it(db: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{db}"
    out = run_cli("run", "--trials", "4", "--jobs", "2", "--study", "ts", "--test-seed", "3", "--finalists", "0",
                  "--storage", url, *FAST)
    assert out.returncode == 0, out.stderr
    weights = tmp_path / "best.npz"
    best = run_cli("best", "--study", "ts", "--storage", url, "--retrain", "--out", str(weights))
    assert best.returncode == 0, best.stderr
    reported = float(best.stdout.split("test accuracy")[1].split()[0])
    drawn, usual = (load_dataset("digits", val_fraction=0.2, test_seed=s) for s in (3, 0))
    predicted = Network.load(weights).predict(drawn.X_test)
    assert float(np.mean(predicted == drawn.y_test)) == pytest.approx(reported, abs=1e-4)
    assert not np.array_equal(drawn.y_test, usual.y_test)  # so the line above could fail
    # the draw is part of what the trials mean: a later run may not change it
    again = run_cli("run", "--trials", "5", "--study", "ts", "--test-seed", "4", "--storage", url, *FAST)
    assert again.returncode == 2 and "test_seed: stored 3, asked 4" in again.stderr, again.stderr
    assert finished(db) == 4


def test_timeout_stops_starting_trials_and_leaves_nothing_running(db: Path) -> None:
    start = time.monotonic()
    out = run_cli("run", "--trials", "5000", "--jobs", "2", "--study", "t", "--timeout", "3",
                  "--storage", f"sqlite:///{db}", *FAST)
    assert out.returncode == 0, out.stderr
    assert time.monotonic() - start < 120  # generous: start-up and the last trials on a loaded machine
    assert 0 < finished(db) < 5000
    assert states(db).get("RUNNING", 0) == 0


def test_best_retrains_the_best_configuration_and_scores_it_once_on_the_test_split(db: Path, tmp_path: Path) -> None:
    out = run_cli("run", "--trials", "8", "--jobs", "2", "--study", "b", "--storage", f"sqlite:///{db}", *FAST)
    assert out.returncode == 0, out.stderr
    weights = tmp_path / "best.npz"
    best = run_cli("best", "--study", "b", "--storage", f"sqlite:///{db}", "--retrain", "--out", str(weights))
    assert best.returncode == 0, best.stderr
    assert "best trial" in best.stdout and "test accuracy" in best.stdout
    reported = float(best.stdout.split("test accuracy")[1].split()[0])
    data = load_dataset("digits", val_fraction=0.2)
    network = Network.load(weights)
    assert float(np.mean(network.predict(data.X_test) == data.y_test)) == pytest.approx(reported, abs=1e-4)
    assert reported > 0.8
    # trained on train + validation (not the training split alone), for an epoch count the
    # study chose: the best trial's best epoch, unless a finalist stage chose it from its curves
    match = re.search(r"retrained trial (\d+) on (\d+) samples for (\d+) epochs", best.stdout)
    assert match, best.stdout
    number, samples, epochs = map(int, match.groups())
    assert samples == len(data.y_train) + len(data.y_val) != len(data.y_train)
    assert 1 <= epochs <= 4
    finalists = query(db, "SELECT count(*) FROM trial_user_attributes WHERE key='stage' "
                          "AND value_json='\"finalist\"'")[0][0]
    if not finalists:
        best_epoch = dict(attr_by_number(db, "best_epoch"))[number]
        assert epochs == json.loads(best_epoch)
