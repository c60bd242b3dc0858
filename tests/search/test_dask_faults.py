"""Dask failures the README promises to survive, each on a scheduler and workers of its own.

The scheduler and workers are separate processes started here (``dask scheduler``
and ``dask worker`` as an operator would), so a test can kill the scheduler or
give a worker an environment in which the project does not import.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, finished, query, run_cli, running_cli, states, wait_until_finished
from tests.equipment import missing
from tests.search.sql import attr_by_number

pytestmark = pytest.mark.cluster


class Cluster:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path, self.procs = tmp_path, []
        self.file = tmp_path / "scheduler.json"
        self.scheduler = self._start("distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                                     "--dashboard-address", ":0", "--scheduler-file", str(self.file))
        deadline = time.monotonic() + 120
        while not (self.file.exists() and self.file.stat().st_size):
            assert self.scheduler.poll() is None and time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.1)
        self.address = json.loads(self.file.read_text())["address"]

    def _start(self, module: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        # not started in the checkout: `python -m` puts the working directory first on sys.path
        proc = subprocess.Popen([sys.executable, "-m", module, *args], env=env or dict(os.environ),
                                cwd=self.tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def worker(self, pythonpath: str, n: int = 1) -> None:
        env = dict(os.environ, PYTHONPATH=pythonpath)
        self._start("distributed.cli.dask_worker", self.address, "--nthreads", "1", "--nworkers", str(n),
                    "--no-dashboard", "--local-directory", str(self.tmp_path / "dask"), env=env)
        import distributed

        with distributed.Client(self.address, set_as_default=False, timeout=60) as client:
            client.wait_for_workers(n, timeout=120)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    try:
        import distributed  # noqa: F401
    except ImportError:
        missing("dask.distributed (pip install -e '.[cluster]')")
    started = Cluster(tmp_path)
    try:
        yield started
    finally:
        started.stop()


@pytest.mark.slow
def test_losing_the_scheduler_mid_run_is_one_line_and_resume_finishes_the_study(cluster: Cluster, db: Path) -> None:
    cluster.worker(str(ROOT), n=2)
    url = f"sqlite:///{db}"
    with running_cli("run", "--trials", "30", "--study", "lost", "--storage", url, "--executor", "dask",
                     "--scheduler", cluster.address, "--dataset", "digits", "--epochs", "20", "--no-progress") as proc:
        wait_until_finished(db, 3, proc)
        while not query(db, "SELECT count(*) FROM trials WHERE state='RUNNING'")[0][0]:
            assert proc.poll() is None, "the run ended before the scheduler was killed"
            time.sleep(0.02)
        os.killpg(cluster.scheduler.pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=240)
    assert proc.returncode == 2, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith(f"error: lost the Dask scheduler at {cluster.address}")
    assert "resume --study lost" in err
    assert states(db).get("RUNNING", 0) == 0
    interrupted = {n for n, _ in attr_by_number(db, "rerun")}
    assert interrupted  # in-flight trials recorded as interrupted...

    out = run_cli("resume", "--study", "lost", "--storage", url, "--jobs", "2", "--no-progress")
    assert out.returncode == 0, out.stderr  # ...and run again by resume, here on the local pool
    assert finished(db) == 30
    retried = {json.loads(v) for (v,) in query(db, "SELECT value_json FROM trial_user_attributes "
                                                    "WHERE key='retry_of'")}
    assert interrupted <= retried


def test_a_worker_that_cannot_import_the_project_stops_the_run_with_one_line(
        cluster: Cluster, db: Path, tmp_path: Path) -> None:
    shadow = tmp_path / "shadow" / "search"  # first on the worker's path: `import search` fails there
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named search (not installed here)')\n")
    cluster.worker(str(shadow.parent))
    out = run_cli("run", "--trials", "4", "--study", "noimport", "--storage", f"sqlite:///{db}",
                  "--executor", "dask", "--scheduler", cluster.address, "--dataset", "digits",
                  "--epochs", "2", "--no-progress")
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("error: a Dask worker could not run trial tasks:") and "same version" in last
    # the executor is made, and its workers checked, before the storage is opened: nothing was written
    assert not db.exists()


@pytest.mark.slow  # about 40 s: four worker deaths and restarts
def test_a_trial_that_kills_every_dask_worker_is_recorded_failed_for_good(
        cluster: Cluster, db: Path, tmp_path: Path) -> None:
    """Trial 2 kills the worker that runs it (as the OOM killer would); the scheduler gives
    up on it after its allowed failures (KilledWorker), and the coordinator does not re-run it."""
    deadly = tmp_path / "deadly"
    deadly.mkdir()
    (deadly / "sitecustomize.py").write_text(
        "import os, signal, sys\n"
        "def _patch():\n"
        "    import search.workers.tasks as tasks\n"
        "    real = tasks.run_trial\n"
        "    def run_trial(task):\n"
        "        if task.number == 2:\n"
        "            os.kill(os.getpid(), signal.SIGKILL)\n"
        "        return real(task)\n"
        "    tasks.run_trial = run_trial\n"
        "import builtins\n"
        "_import = builtins.__import__\n"
        "def _hook(name, *args, **kwargs):\n"
        "    module = _import(name, *args, **kwargs)\n"
        "    tasks = sys.modules.get('search.workers.tasks')\n"
        "    # patched once search.workers.tasks is fully imported (run_trial defined), not while it imports\n"
        "    if hasattr(tasks, 'run_trial') and not getattr(_hook, 'done', False):\n"
        "        _hook.done = True\n"
        "        _patch()\n"
        "    return module\n"
        "builtins.__import__ = _hook\n")
    cluster.worker(os.pathsep.join([str(deadly), str(ROOT)]), n=2)
    out = run_cli("run", "--trials", "8", "--study", "killer", "--storage", f"sqlite:///{db}",
                  "--executor", "dask", "--scheduler", cluster.address, "--dataset", "digits",
                  "--epochs", "3", "--no-progress", timeout=400)
    assert out.returncode == 0, out.stderr
    rows = dict(query(db, "SELECT t.number, t.state FROM trials t"))
    assert rows[2] == "FAIL"
    reason = json.loads(dict(attr_by_number(db, "stop_reason"))[2])
    assert "Dask workers died running it" in reason
    retried = {json.loads(v) for (v,) in query(db, "SELECT value_json FROM trial_user_attributes "
                                                    "WHERE key='retry_of'")}
    assert 2 not in retried  # failed for good: running it again would only kill more workers
    assert finished(db) == 8
