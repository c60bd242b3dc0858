"""Faults injected into real processes and real SQLite files: nothing stored is lost."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import Future
from pathlib import Path

import optuna
import psutil
import pytest

import search.workers.tasks
from search.coordinator.coordinator import Coordinator
from search.coordinator.create import create_or_continue
from search.errors import StudyFailedError
from search.readers.results import load_results
from search.study.dataref import DataRef
from search.study.spec import StudySpec
from search.study.storage import open_storage
from search.workers.base import Executor, WorkerLostError
from search.workers.tasks import TrialResult, TrialTask, run_trial
from tests.conftest import Reader, finished, query, run_cli, running_cli, states, wait_until_finished
from tests.equipment import missing
from tests.search.sql import attr_by_number, curve_of, params_of, params_of_retries


@pytest.mark.slow
def test_a_worker_killed_mid_trial_costs_one_rerun_and_the_study_completes(db: Path) -> None:
    with running_cli("run", "--trials", "30", "--jobs", "2", "--study", "wk", "--storage",
                     f"sqlite:///{db}", "--dataset", "digits", "--epochs", "15", "--no-progress") as proc:
        wait_until_finished(db, 4, proc)
        # both workers busy: as many trials RUNNING in the file as there are workers
        deadline = time.monotonic() + 120
        while query(db, "SELECT count(*) FROM trials WHERE state='RUNNING'")[0][0] < 2:
            assert proc.poll() is None and time.monotonic() < deadline, "never saw both workers busy"
            time.sleep(0.02)
        workers = [p for p in psutil.Process(proc.pid).children(recursive=True)
                   if "LokyProcess" in " ".join(p.cmdline())]
        assert len(workers) == 2
        workers[0].send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    assert finished(db) == 30
    numbers = [n for (n,) in query(db, "SELECT number FROM trials")]
    assert len(numbers) == len(set(numbers))
    lost = [n for n, r in attr_by_number(db, "stop_reason", state="FAIL") if "worker lost" in json.loads(r)]
    assert lost, "the killed worker's trial should be recorded"
    retried = {json.loads(v) for (v,) in query(db, "SELECT value_json FROM trial_user_attributes "
                                                    "WHERE key='retry_of'")}
    assert set(lost) <= retried
    # a retry runs the same parameters
    for n in lost:
        original = params_of(db, n)
        again = params_of_retries(db, n)
        assert original == again


def _not_created_yet(text: str) -> bool:
    """What a reader may say before the run has made its study or finished a trial."""
    text = text.lower()
    return "no study" in text or "holds no" in text or "no finished" in text


@pytest.mark.slow
def test_readers_never_fail_while_a_run_writes(db: Path, tmp_path: Path) -> None:
    """Every reader error is kept, except "nothing there yet" seen before the first finished trial."""
    url = f"sqlite:///{db}"
    errors: list[str] = []
    rows_seen: list[int] = []
    commands_run = 0  # that succeeded during the run

    def failed(before: int, text: str) -> bool:
        """``before``: finished trials when the read began; after one exists, nothing is excused."""
        return before > 0 or not _not_created_yet(text)

    def cli_reader() -> None:  # show and plot, as a person would type them during the run
        nonlocal commands_run
        while proc.poll() is None:
            for args in (("show", "--study", "rd"), ("plot", "--study", "rd", "--out", str(tmp_path / "png"))):
                before = finished(db)
                out = run_cli(*args, "--storage", url)
                commands_run += out.returncode == 0
                if out.returncode != 0 and failed(before, out.stderr):
                    errors.append(f"{args[0]} (after {before} finished): {out.stderr.strip()}")

    thread = Reader(cli_reader)
    with running_cli("run", "--trials", "100", "--jobs", "2", "--study", "rd", "--storage",
                     url, "--dataset", "digits", "--epochs", "8", "--no-progress") as proc:
        thread.start()
        while proc.poll() is None:
            before = finished(db)
            try:
                rows_seen.append(len(load_results("rd", url)))
                _ = optuna.load_study(study_name="rd", storage=url).trials
            except Exception as exc:  # noqa: BLE001 -- any failure of a reader is the finding
                if failed(before, str(exc)):
                    errors.append(f"in process (after {before} finished): {exc!r}")
            time.sleep(0.2)
        out, err = proc.communicate()
    thread.join()  # a reader thread that raised (pytest.fail in run_cli) fails the test here
    assert proc.returncode == 0, err
    assert errors == []
    assert len(rows_seen) >= 3 and rows_seen == sorted(rows_seen)
    assert commands_run >= 1
    assert finished(db) == 100


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        return json.load(response)


def _done(study_detail: dict) -> int:
    return sum(t["state"] in ("Complete", "Pruned") for t in study_detail["trials"])


@pytest.mark.slow
def test_optuna_dashboard_serves_the_study_while_a_run_writes(db: Path) -> None:
    dashboard_cmd = shutil.which("optuna-dashboard")
    if dashboard_cmd is None:
        missing("optuna-dashboard (in the test extra: pip install -e '.[test]')")
    url = f"sqlite:///{db}"
    dashboard = None
    seen: list[int] = []
    with running_cli("run", "--trials", "150", "--jobs", "2", "--study", "dash", "--storage",
                     url, "--dataset", "digits", "--epochs", "20", "--finalists", "0", "--no-progress") as proc:
        try:
            wait_until_finished(db, 1, proc)  # the dashboard would make the file itself otherwise
            port = _free_port()
            dashboard = subprocess.Popen([dashboard_cmd, url, "--host", "127.0.0.1", "--port", str(port)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            api = f"http://127.0.0.1:{port}/api/studies"
            deadline = time.monotonic() + 30
            while True:
                try:
                    (study,) = _get_json(api)["study_summaries"]
                    break
                except (urllib.error.URLError, ConnectionError):
                    assert time.monotonic() < deadline, "optuna-dashboard did not start"
                    time.sleep(0.2)
            detail = f"{api}/{study['study_id']}?after=0"
            while proc.poll() is None:
                seen.append(_done(_get_json(detail)))
                time.sleep(0.2)
            _, err = proc.communicate()
            deadline = time.monotonic() + 30  # the dashboard caches trials for a few seconds
            while (final := _done(_get_json(detail))) < 150 and time.monotonic() < deadline:
                time.sleep(0.5)
        finally:
            if dashboard is not None:
                dashboard.kill()
                dashboard.wait()
    assert proc.returncode == 0, err
    assert len(seen) >= 3 and seen == sorted(seen)
    assert final == 150 == finished(db)
    assert query(db, "PRAGMA integrity_check") == [("ok",)]


class InlineExecutor(Executor):
    """Runs tasks in this process, so a test can break the network code with monkeypatch."""

    n_workers = 1

    def submit(self, task: TrialTask) -> Future:
        future: Future = Future()
        future.set_result(run_trial(task))
        return future

    def wait(self, handles, timeout):
        return set(handles)

    def result(self, handle: Future) -> TrialResult:
        return handle.result()

    def close(self, *, kill: bool = False) -> None:
        pass


def coordinator(tmp_path: Path, trials: int, **kw) -> tuple[Coordinator, Path]:
    db = tmp_path / "inline.db"
    storage = open_storage(f"sqlite:///{db}", create=True)
    spec, study_id, lease = create_or_continue(storage, StudySpec(name="inline", trials=trials, epochs=3), set())
    lease.release()  # these tests are about trials, not about coordinators sharing a study
    return Coordinator(spec, storage, study_id, InlineExecutor(), data=DataRef("digits"),
                       progress=False, **kw), db


def test_an_exception_in_the_network_code_fails_one_trial_and_the_run_goes_on(tmp_path, monkeypatch) -> None:
    real_train = search.workers.tasks.Training  # one per fold of a trial
    calls = {"n": 0}

    def flaky_train(config, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] % 3 == 0:
            raise ValueError("shapes (32,64) and (65,16) not aligned")
        if calls["n"] % 7 == 0:
            raise MemoryError
        return real_train(config, *args, **kwargs)

    monkeypatch.setattr(search.workers.tasks, "Training", flaky_train)
    coord, db = coordinator(tmp_path, trials=12)
    summary = coord.run()
    assert summary.finished == 12 and summary.failed >= 4
    reasons = [json.loads(v) for _, v in attr_by_number(db, "stop_reason", state="FAIL")]
    assert any("ValueError: shapes (32,64) and (65,16) not aligned" in r for r in reasons)
    assert any("out of memory" in r for r in reasons)


def test_a_study_where_every_trial_fails_stops_with_a_clear_error(tmp_path, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("broken build")

    monkeypatch.setattr(search.workers.tasks, "Training", broken)
    coord, db = coordinator(tmp_path, trials=50, max_failures=5)
    with pytest.raises(StudyFailedError, match="5 trials in a row failed.*broken build"):
        coord.run()
    assert set(states(db)) == {"FAIL"}  # nothing left RUNNING: in-flight ones are recorded too
    reasons = [json.loads(v) for (v,) in query(
        db, "SELECT value_json FROM trial_user_attributes WHERE key='stop_reason'")]
    assert sum("broken build" in r for r in reasons) == 5


def test_diverging_learning_rates_are_recorded_and_ranked_bad(tmp_path) -> None:
    preset = tmp_path / "hot.toml"
    preset.write_text("[space]\nlearning_rate = { low = 50.0, high = 1000.0, log = true }\n"
                      "activation = ['relu']\nmomentum = 0.99\n")
    db = tmp_path / "hot.db"
    out = run_cli("run", "--trials", "6", "--jobs", "2", "--study", "hot", "--preset", str(preset),
                  "--storage", f"sqlite:///{db}", "--epochs", "5", "--no-progress")
    assert out.returncode == 0, out.stderr
    df = load_results("hot", f"sqlite:///{db}")
    diverged = df[df.outcome == "diverged"]
    assert len(diverged) >= 1
    assert (diverged.state == "PRUNED").all()  # teaches TPE: ranked below every trial that got as far
    assert diverged.stop_reason.str.contains("non-finite").all()
    for number in diverged.number:  # the curve ends in NaN at the diverging epoch, the last one stored
        steps = curve_of(db, int(number))
        *before, (last_step, last_value, last_type) = steps
        assert last_step == len(steps) and last_value is None and last_type == "NAN", steps
        assert all(value is not None and math.isfinite(value) for _, value, _ in before), steps


class DeadlyConfigExecutor(InlineExecutor):
    """The third configuration kills its worker every time (as the OOM killer would)."""

    def __init__(self) -> None:
        self.deadly = None
        self.seen = 0

    def submit(self, task: TrialTask) -> Future:
        self.seen += 1
        if self.seen == 3:
            self.deadly = task.config
        if task.config == self.deadly:
            future: Future = Future()
            future.set_exception(WorkerLostError("worker pid 4242 killed by SIGKILL"))
            return future
        return super().submit(task)


def test_a_configuration_that_always_kills_its_worker_is_given_up_after_three_attempts(tmp_path) -> None:
    db = tmp_path / "deadly.db"
    storage = open_storage(f"sqlite:///{db}", create=True)
    spec, study_id, lease = create_or_continue(storage, StudySpec(name="deadly", trials=8, epochs=2), set())
    lease.release()
    summary = Coordinator(spec, storage, study_id, DeadlyConfigExecutor(), data=DataRef("digits"),
                          progress=False, prefetch=0).run()
    assert summary.finished == 8 and summary.retries == 2 and summary.failed == 1
    rows = attr_by_number(db, "stop_reason", state="FAIL")
    assert len(rows) == 3
    assert "every attempt" in json.loads(rows[-1][1])


@pytest.mark.slow
def test_a_storage_that_refuses_writes_mid_run_stops_it_with_one_line_and_resume_continues(db: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to make an open SQLite file refuse writes")
    if not shutil.which("chattr"):
        missing("chattr (e2fsprogs): makes an open SQLite file refuse writes")
    url = f"sqlite:///{db}"
    files = [db, db.with_name(db.name + "-wal")]
    with running_cli("run", "--trials", "80", "--jobs", "2", "--study", "ro", "--storage", url,
                     "--dataset", "digits", "--epochs", "20", "--no-progress") as proc:
        wait_until_finished(db, 5, proc)
        if subprocess.run(["chattr", "+i", *map(str, files)]).returncode != 0:
            missing("chattr +i: this file system has no immutable attribute")
        try:
            _, err = proc.communicate(timeout=60)
        finally:
            subprocess.run(["chattr", "-i", *map(str, files)], check=False)
    assert proc.returncode == 2
    assert err.strip().splitlines()[-1].startswith("error: the storage refused a write (OperationalError:")
    assert "Traceback" not in err
    stored = finished(db)
    assert stored >= 5 and query(db, "PRAGMA integrity_check") == [("ok",)]

    out = run_cli("resume", "--study", "ro", "--storage", url, "--no-progress")
    assert out.returncode == 0, out.stderr
    assert finished(db) == 80 and states(db).get("RUNNING", 0) == 0
