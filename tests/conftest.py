"""Shared test helpers: run the CLI as a real process, read a study database directly."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    # An exception in a helper thread (a reader, a killer) would otherwise be a warning
    # at the end of a passing test: make it the test's failure.
    config.addinivalue_line("filterwarnings", "error::pytest.PytestUnhandledThreadExceptionWarning")


class Reader(threading.Thread):
    """A helper thread whose exception (``pytest.fail`` included) fails the test at ``join()``."""

    def __init__(self, target: Callable[[], None]) -> None:
        super().__init__(daemon=True)
        self._body = target
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._body()
        except BaseException as exc:  # noqa: BLE001 -- pytest.fail raises a BaseException
            self.error = exc

    def join(self, timeout: float | None = None) -> None:
        super().join(timeout)
        if self.error is not None:
            raise AssertionError(f"the reader thread failed: {self.error!r}") from self.error


def _ctrl_c_as_in_a_terminal() -> None:
    """In the child: SIGINT acts as in a terminal, even when the tests run as a background job.

    A shell starts `nohup cmd &` with SIGINT ignored, children inherit that, and a
    Python that starts with SIGINT ignored never raises KeyboardInterrupt: the Ctrl-C
    tests would then see a run that does not stop (seen: exit 0 instead of 130)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONFAULTHANDLER"] = "1"  # SIGABRT on a hang prints every thread's stack
    return env


def run_cli(*args: str, timeout: float = 240, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m search ARGS`` in a fresh process, as a user would type it.

    A command still running after ``timeout`` fails the test with the stacks of
    all its threads (faulthandler on SIGABRT), so a hang says where it hangs."""
    argv = [sys.executable, "-m", "search", *args]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=cli_env(), cwd=cwd or ROOT, start_new_session=True,
                          preexec_fn=_ctrl_c_as_in_a_terminal) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            try:
                proc.wait(30)
            finally:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # its workers too: they hold the pipes
                except ProcessLookupError:
                    pass
            out, err = proc.communicate(timeout=30)
            pytest.fail(f"{' '.join(args)} still running after {timeout} s; its threads:\n{err[-6000:]}")
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def start_cli(*args: str, cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "search", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=cli_env(), cwd=cwd or ROOT,
                            start_new_session=True, preexec_fn=_ctrl_c_as_in_a_terminal)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL what is left of the run's process group: a coordinator killed alone leaves its workers."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:  # the whole group has exited
        pass


@contextmanager
def running_cli(*args: str, cwd: Path | None = None) -> Iterator[subprocess.Popen]:
    """``start_cli(*args)`` for the ``with`` block; leaving it kills whatever is left of the run's group.

    The group, not only the coordinator: workers a test orphaned (by killing the
    coordinator alone) or left busy (by failing) would outlive the test."""
    proc = start_cli(*args, cwd=cwd)
    try:
        yield proc
    finally:
        kill_group(proc)


def ctrl_c(proc: subprocess.Popen, timeout: float) -> str:
    """Ctrl-C the run's whole process group as a terminal would; its stderr once it has exited."""
    try:
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            kill_group(proc)
    return err


def query(db: Path, sql: str, *params: object) -> list[tuple]:
    """Read the SQLite file directly, not through Optuna: what is really stored."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


# The finalist stage's re-runs of the best configurations: `run --trials N` stops
# the search at N finished trials, and these come on top of them.
SEARCH_TRIALS = ("trial_id NOT IN (SELECT trial_id FROM trial_user_attributes "
                 "WHERE key='stage' AND value_json='\"finalist\"')")


def states(db: Path) -> dict[str, int]:
    """Search trials by state (finalist runs left out; see ``finalist_states``)."""
    return dict(query(db, f"SELECT state, count(*) FROM trials WHERE {SEARCH_TRIALS} GROUP BY state"))


def finalist_states(db: Path) -> dict[str, int]:
    return dict(query(db, f"SELECT state, count(*) FROM trials WHERE NOT {SEARCH_TRIALS} GROUP BY state"))


def finished(db: Path) -> int:
    """COMPLETE + PRUNED search trials in the file; 0 while the run has not created it yet."""
    try:
        s = states(db)
    except sqlite3.OperationalError:
        return 0
    return s.get("COMPLETE", 0) + s.get("PRUNED", 0)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "study.db"


def wait_until_finished(db: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Block until the running study holds ``n`` finished trials (or fail the test)."""
    deadline = time.monotonic() + timeout
    while finished(db) < n:
        if proc.poll() is not None:
            pytest.fail(f"the run ended early: {proc.stderr.read() if proc.stderr else ''}")
        if time.monotonic() > deadline:
            pytest.fail(f"fewer than {n} finished trials after {timeout} s")
        time.sleep(0.1)
