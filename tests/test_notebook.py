"""docs/quickstart.ipynb in a real Jupyter kernel, and Jupyter's stop button during search.run.

Marked slow (a kernel, a search, a retrain and a SearchCV: about a minute on 2 cores);
``.ci/run`` runs them after the default suite.

The notebook is executed cell by cell by nbclient in an ipykernel, as a user's
Jupyter would; any error fails the test. The interrupt is
``KernelManager.interrupt_kernel()``, what the stop button sends.
"""

from __future__ import annotations

import os
import queue
import sqlite3
import time
from pathlib import Path
from typing import Any

import nbformat
import psutil
import pytest
from jupyter_client.manager import start_new_kernel
from nbclient import NotebookClient

from tests.conftest import finished, states

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def kernel_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel imports this checkout and converts into a cache of its own."""
    monkeypatch.setenv("NUMPY_HPSEARCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))


@pytest.mark.slow
def test_the_quickstart_notebook_runs_in_a_real_kernel(tmp_path: Path, kernel_env: None) -> None:
    nb = nbformat.read(ROOT / "docs" / "quickstart.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the seaborn heatmap was drawn
    # tqdm.auto: in a notebook the progress is a widget, not text bars on stderr
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    assert any("The winner" in o.get("data", {}).get("text/html", "") for o in outputs)  # the study's own view
    assert finished(tmp_path / "quickstart.db") == 16 and states(tmp_path / "quickstart.db").get("RUNNING", 0) == 0


def _execute(client: Any, code: str, timeout: float) -> dict[str, Any]:
    """Run ``code`` in the kernel; its reply's content (status ok or error)."""
    msg_id = client.execute(code)
    deadline = time.monotonic() + timeout
    while True:
        try:
            reply = client.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"no reply within {timeout} s to {code!r}") from None
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"]


def _running_reply(client: Any, msg_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reply = client.get_shell_msg(timeout=1)
        except queue.Empty:
            continue
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"]
    raise AssertionError(f"the interrupted cell did not end within {timeout} s")


def _workers(kernel: psutil.Process) -> list[psutil.Process]:
    """The kernel's live child processes, less the resource trackers that multiprocessing and loky
    start once per process and keep idle for its lifetime (they run no trial)."""
    alive = [p for p in kernel.children(recursive=True) if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    return [p for p in alive if "resource_tracker" not in " ".join(p.cmdline())]


def _finished_now(db: Path) -> int:
    try:
        return finished(db)
    except sqlite3.DatabaseError:
        return 0


@pytest.mark.slow
def test_the_stop_button_records_the_trials_stops_the_workers_and_the_next_run_finishes(
    tmp_path: Path, kernel_env: None
) -> None:
    db = tmp_path / "i.db"
    km, client = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    try:
        setup = ("import search\nfrom sklearn.datasets import load_wine\nX, y = load_wine(return_X_y=True)\n"
                 f"url = 'sqlite:///{db}'")
        assert _execute(client, setup, 120)["status"] == "ok"
        # trials of 400 epochs, unpruned: several are running when the button is pressed
        long_run = client.execute("search.run((X, y), trials=500, epochs=400, pruner='none', finalists=0, jobs=2, "
                                  "study='i', storage=url, progress=False)")
        deadline = time.monotonic() + 120
        while _finished_now(db) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _finished_now(db) >= 2
        kernel = psutil.Process(km.provisioner.process.pid)
        assert len(_workers(kernel)) >= 2
        km.interrupt_kernel()
        reply = _running_reply(client, long_run, 60)
        assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt", reply
        assert states(db).get("RUNNING", 0) == 0
        time.sleep(1.0)
        alive = _workers(kernel)
        assert not alive, [(p.pid, p.cmdline()) for p in alive]  # nothing left running
        done = finished(db)
        again = _execute(client, f"search.run((X, y), trials={done + 2}, epochs=400, pruner='none', finalists=0, "
                                 "jobs=2, study='i', storage=url, progress=False).name", 300)
        assert again["status"] == "ok", again
        assert finished(db) == done + 2 and states(db).get("RUNNING", 0) == 0
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)
