"""One coordinator per study: a second run or resume of a live study is refused untouched."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from search.coordinator import lease as lease_module
from search.coordinator.coordinator import Coordinator
from search.coordinator.create import create_or_continue
from search.coordinator.lease import LEASE_KEY, STALE_SECONDS, LeaseLostError, StudyBusyError, StudyLease
from search.study.dataref import DataRef
from search.study.spec import StudySpec
from search.study.storage import open_storage
from tests.conftest import ctrl_c, finished, query, run_cli, running_cli, states, wait_until_finished
from tests.search.test_faults import InlineExecutor


def lease_rows(db: Path) -> list[dict]:
    return [json.loads(v) for (v,) in query(db, "SELECT value_json FROM study_system_attributes "
                                                "WHERE key=?", LEASE_KEY)]


@pytest.mark.slow
def test_a_second_coordinator_is_refused_while_a_run_holds_the_study(db: Path) -> None:
    """The run is far from done when it is stopped (Ctrl-C): it outlasts the refused starts."""
    url = f"sqlite:///{db}"
    with running_cli("run", "--trials", "5000", "--jobs", "1", "--study", "busy", "--storage", url,
                     "--dataset", "digits", "--epochs", "20", "--no-progress") as proc:
        wait_until_finished(db, 3, proc)
        spec_before = query(db, "SELECT value_json FROM study_user_attributes")
        (holder,) = lease_rows(db)
        assert holder["pid"] == proc.pid
        for args in (("resume", "--study", "busy"), ("run", "--study", "busy", "--trials", "8000")):
            out = run_cli(*args, "--storage", url, "--no-progress")
            assert out.returncode == 2
            assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
            assert f"being run by another coordinator (pid {proc.pid}" in out.stderr
        assert query(db, "SELECT value_json FROM study_user_attributes") == spec_before  # --trials 8000 not stored
        # the heartbeat is renewed while the run goes on (every BEAT_SECONDS)
        deadline = time.monotonic() + 30 * lease_module.BEAT_SECONDS
        while lease_rows(db)[0]["beat"] == holder["beat"]:
            assert proc.poll() is None and time.monotonic() < deadline, "the lease was never renewed"
            time.sleep(0.1)
        (renewed,) = lease_rows(db)
        assert renewed["token"] == holder["token"] and renewed["beat"] > holder["beat"]
        err = ctrl_c(proc, timeout=180)
    assert proc.returncode == 130, err
    assert 3 <= finished(db) < 5000 and states(db).get("RUNNING", 0) == 0
    assert lease_rows(db) == []  # released at the end: the next run needs no waiting


@pytest.fixture
def study(tmp_path: Path):
    db = tmp_path / "lease.db"
    storage = open_storage(f"sqlite:///{db}", create=True)
    _, study_id, lease = create_or_continue(storage, StudySpec(name="s", trials=5, epochs=2), set())
    lease.release()
    yield db, storage, study_id
    storage.engine.dispose()


def plant(db: Path, value: str | None = None, **holder: object) -> None:
    """Write a lease as another coordinator would have (``value``: the raw row instead)."""
    if value is None:
        value = json.dumps({"token": "theirs", "host": "elsewhere", "pid": 1, "process_start": None,
                            "beat": time.time()} | holder)
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM study_system_attributes WHERE key=?", (LEASE_KEY,))
        conn.execute("INSERT INTO study_system_attributes (study_id, key, value_json) VALUES (1, ?, ?)",
                     (LEASE_KEY, value))


def assert_taken_over(db: Path, storage, study_id: int) -> None:
    """A new lease takes the planted one, holds it as this process and frees it on release."""
    lease = StudyLease(storage, study_id, "s")
    lease.acquire()
    try:
        assert lease_rows(db)[0]["pid"] == os.getpid()
    finally:
        lease.release()
    assert lease_rows(db) == []


def test_a_coordinator_on_another_host_is_waited_for_until_its_heartbeat_is_stale(study) -> None:
    db, storage, study_id = study
    plant(db, beat=time.time() - STALE_SECONDS / 2)
    with pytest.raises(StudyBusyError, match="pid 1 on elsewhere"):
        StudyLease(storage, study_id, "s").acquire()
    assert lease_rows(db)[0]["token"] == "theirs"

    plant(db, beat=time.time() - STALE_SECONDS - 1)
    assert_taken_over(db, storage, study_id)


def test_a_dead_or_reused_pid_on_this_host_frees_the_lease_at_once(study) -> None:
    db, storage, study_id = study
    host = lease_module.socket.gethostname()
    plant(db, host=host, pid=os.getpid(), process_start=lease_module._process_start(os.getpid()))
    with pytest.raises(StudyBusyError):  # this very process, alive: busy
        StudyLease(storage, study_id, "s").acquire()
    plant(db, host=host, pid=os.getpid(), process_start="1")  # same pid, another process: free
    assert_taken_over(db, storage, study_id)

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # reaped: the pid names no process now
    plant(db, host=host, pid=dead.pid, process_start=None)  # a heartbeat of just now, yet dead
    assert_taken_over(db, storage, study_id)


def test_a_coordinator_whose_lease_was_taken_stops_without_writing_over_the_new_holder(study) -> None:
    db, storage, study_id = study
    lease = StudyLease(storage, study_id, "s")
    lease.acquire()
    plant(db)  # taken over, as after this process missed its heartbeats
    lease.beat()
    assert lease.lost
    with pytest.raises(LeaseLostError, match="taken over by another coordinator"):
        lease.check()
    lease.release()
    assert lease_rows(db)[0]["token"] == "theirs"  # not deleted by the loser


def test_a_run_that_loses_its_lease_stops_and_leaves_its_trials_to_the_new_holder(study) -> None:
    db, storage, study_id = study
    lease = StudyLease(storage, study_id, "s")
    lease.acquire()

    class TakenOverOnFourthTrial(InlineExecutor):
        submitted = 0

        def submit(self, task):
            self.submitted += 1
            if self.submitted == 4:
                plant(db)
                lease.beat()
            return super().submit(task)

        def wait(self, handles, timeout):  # one at a time: the others stay in flight
            return set(handles[:1])

    spec = StudySpec(name="s", trials=20, epochs=2)
    run = Coordinator(spec, storage, study_id, TakenOverOnFourthTrial(), data=DataRef("digits"),
                      progress=False, lease=lease)
    with pytest.raises(LeaseLostError):
        run.run()
    lease.release()
    assert "FAIL" not in states(db)  # the in-flight trials are the new holder's to record
    assert states(db).get("RUNNING", 0) >= 1
    assert lease_rows(db)[0]["token"] == "theirs"


def test_an_unreadable_lease_row_is_taken_over_not_a_crash(study) -> None:
    db, storage, study_id = study
    plant(db, '"written by hand"')
    assert_taken_over(db, storage, study_id)
