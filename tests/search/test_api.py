"""search.run and search.load: the CLI's job from Python, with arrays and frames as data.

Real worker processes and a real SQLite file throughout; rows are counted in
the file itself.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
from sklearn.datasets import load_wine

import search
from search.errors import SearchError
from tests.conftest import finished, query, run_cli, states

QUICK = {"epochs": 3, "finalists": 0, "progress": False}


@pytest.fixture(scope="module")
def wine() -> tuple[np.ndarray, np.ndarray]:
    return load_wine(return_X_y=True)


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Arrays written by a test go to its own cache, as its conversions do."""
    monkeypatch.setenv("NUMPY_HPSEARCH_CACHE", str(tmp_path / "cache"))


def test_arrays_are_searched_by_real_workers_and_the_same_arrays_continue_the_study(tmp_path: Path, wine) -> None:
    X, y = wine
    url = f"sqlite:///{tmp_path / 'a.db'}"
    study = search.run((X, y), trials=6, jobs=2, storage=url, **QUICK)
    assert study.name.startswith("arrays-") and finished(tmp_path / "a.db") == 6
    assert "6 finished" in study.summary and "13 features, 3 classes" in study.summary
    pids = set(query(tmp_path / "a.db", "SELECT value_json FROM trial_user_attributes WHERE key='pid'"))
    assert len(pids) == 2  # two worker processes shared the trials
    df = study.results()
    assert len(df) == 6 and df["value"].notna().all()

    again = search.run((X.copy(), y.copy()), trials=9, jobs=2, storage=url, **QUICK)  # equal content, new objects
    assert again.name == study.name and finished(tmp_path / "a.db") == 9

    with pytest.raises(SearchError, match=r"was made from other data .*search this one under a new study name"):
        search.run((X[:120], y[:120]), study=study.name, trials=12, storage=url, **QUICK)
    assert finished(tmp_path / "a.db") == 9  # nothing written by the refused run


def test_a_dataframe_with_text_and_missing_cells_predicts_its_own_labels(tmp_path: Path, wine) -> None:
    X, y = wine
    frame = pd.DataFrame(X[:, :5], columns=[f"c{i}" for i in range(5)])
    frame.loc[::7, "c1"] = np.nan
    frame["kind"] = np.where(X[:, 6] > 2, "high", "low")
    frame["grape"] = np.array(["barbera", "grignolino", "nebbiolo"])[y]
    study = search.run(frame, target="grape", trials=4, jobs=2, storage=f"sqlite:///{tmp_path / 'f.db'}",
                       study="grapes", **QUICK)
    nets = study.retrain(seeds=2, jobs=2)
    predicted = study.predict(frame.drop(columns="grape").head(20))
    assert set(predicted) <= {"barbera", "grignolino", "nebbiolo"}
    assert list(nets.classes) == ["barbera", "grignolino", "nebbiolo"]
    best = study.best
    assert best.trial in set(study.results()["number"]) and 0 < best.val_accuracy <= 1
    html = study._repr_html_()
    assert "Summary" in html and "grapes" in html and "<html" not in html


def test_scikit_learns_x_frame_and_y_series(tmp_path: Path, wine) -> None:
    X, y = load_wine(return_X_y=True, as_frame=True)
    study = search.run((X, y), trials=2, jobs=1, storage=f"sqlite:///{tmp_path / 's.db'}", **QUICK)
    assert study.name.startswith("frame-") and finished(tmp_path / "s.db") == 2


def test_a_bad_argument_gets_the_clis_message_as_a_search_error(tmp_path: Path, wine) -> None:
    cases = [({"trials": 0}, "--trials", "0"), ({"budget": "soon"}, "--budget", "soon"),
             ({"sampler": "grid"}, "--sampler", "grid"), ({"jobs": 1.5}, "--jobs", "1.5")]
    for kwargs, flag, text in cases:
        with pytest.raises(SearchError) as caught:
            search.run(wine, storage=f"sqlite:///{tmp_path / 'x.db'}", **kwargs)
        cli = run_cli("run", flag, text, "--storage", f"sqlite:///{tmp_path / 'x.db'}")
        assert cli.returncode == 2
        reason = str(caught.value).split(": ", 1)[1]
        assert f"argument {flag}: {reason}" in cli.stderr, (caught.value, cli.stderr)
    with pytest.raises(SearchError, match=r"unknown argument\(s\) trails; known: trials"):
        search.run(wine, trails=5)
    with pytest.raises(SearchError, match="give target="):
        search.run(pd.DataFrame(wine[0]))
    assert not (tmp_path / "x.db").exists()


def test_data_as_a_keyword_takes_what_the_first_argument_takes(tmp_path: Path, wine) -> None:
    """``search.run(data=...)``, as a notebook user types it: arrays, a DataFrame with target=, a path."""
    X, y = wine
    frame = pd.DataFrame(X[:, :4], columns=["a", "b", "c", "d"]).assign(label=y)
    np.savez(tmp_path / "wine.npz", X=X, y=y)
    url = f"sqlite:///{tmp_path / 'k.db'}"
    quick = {"trials": 1, "jobs": 1, "epochs": 1, "finalists": 0, "progress": False, "storage": url}
    arrays = search.run(data=(X, y), **quick)
    assert arrays.name == search.run((X, y), **quick).name and arrays.name.startswith("arrays-")
    assert search.run(data=frame, target="label", study="frame", **quick).name == "frame"
    path = search.run(data=tmp_path / "wine.npz", **quick)
    assert path.name == "wine"
    assert finished(tmp_path / "k.db") == 3


def test_load_gives_the_same_handle_and_refuses_an_unknown_study(tmp_path: Path, wine) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    made = search.run(wine, trials=2, jobs=1, storage=url, study="w", **QUICK)
    loaded = search.load("w", storage=url)
    assert loaded.name == made.name and loaded.results().equals(made.results())
    with pytest.raises(SearchError, match="no study named 'nope' in this storage; studies here: w"):
        search.load("nope", storage=url)


def test_an_interrupt_records_running_trials_stops_the_workers_and_propagates(tmp_path: Path, wine) -> None:
    """Jupyter's stop button is a SIGINT to the kernel: the same as Ctrl-C in a terminal."""
    db = tmp_path / "i.db"
    url = f"sqlite:///{db}"
    before = {p.pid for p in psutil.Process().children(recursive=True)}

    def interrupt_once_running() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and finished(db) < 2:
            time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_once_running, daemon=True).start()
    with pytest.raises(KeyboardInterrupt, match="interrupted"):
        search.run(wine, trials=500, jobs=2, storage=url, study="i", epochs=400, pruner="none", finalists=0,
                   progress=False)
    assert states(db).get("RUNNING", 0) == 0
    reasons = [json.loads(v) for (v,) in query(db, "SELECT value_json FROM trial_user_attributes "
                                                   "WHERE key='stop_reason'")]
    assert any(r == "interrupted" for r in reasons), reasons
    time.sleep(1.0)
    left = {p.pid for p in psutil.Process().children(recursive=True) if p.is_running()} - before
    assert not [p for p in left if psutil.Process(p).status() != psutil.STATUS_ZOMBIE], left
    # calling run again continues the study: the interrupted trials are re-run first
    done = finished(db)
    search.run(wine, trials=done + 2, jobs=2, storage=url, study="i", finalists=0, progress=False)
    assert finished(db) == done + 2 and states(db).get("RUNNING", 0) == 0


@pytest.mark.slow
def test_a_killed_run_from_python_resumes_from_python(tmp_path: Path, wine) -> None:
    db = tmp_path / "k.db"
    np.savez(tmp_path / "wine.npz", X=wine[0], y=wine[1])
    script = textwrap.dedent(f"""
        import numpy as np, search
        d = np.load({str(tmp_path / 'wine.npz')!r})
        search.run((d["X"], d["y"]), trials=400, jobs=2, epochs=60, pruner="none", finalists=0,
                   storage="sqlite:///{db}", study="k", progress=False)
    """)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while finished(db) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert finished(db) >= 3
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole group: coordinator and workers, mid-trial
        proc.wait()
    assert states(db).get("RUNNING", 0) >= 1  # a real crash leaves its trials running
    done = finished(db)
    search.run(wine, trials=done + 2, jobs=2, storage=f"sqlite:///{db}", study="k", epochs=60, pruner="none",
               finalists=0, progress=False)
    assert states(db).get("RUNNING", 0) == 0 and finished(db) == done + 2
    retried = query(db, "SELECT count(*) FROM trial_user_attributes WHERE key='retry_of'")[0][0]
    assert retried >= 1


@pytest.mark.slow
def test_deterministic_from_python_gives_the_clis_trials_on_the_same_data(tmp_path: Path, wine) -> None:
    X, y = wine
    np.savez(tmp_path / "wine.npz", X=X, y=y)
    common = ["--trials", "6", "--epochs", "3", "--finalists", "0", "--deterministic", "--seed", "3"]
    out = run_cli("run", "--data", str(tmp_path / "wine.npz"), "--jobs", "2", "--study", "cli", "--storage",
                  f"sqlite:///{tmp_path / 'cli.db'}", "--no-progress", *common)
    assert out.returncode == 0, out.stderr
    search.run((X, y), trials=6, epochs=3, finalists=0, deterministic=True, seed=3, jobs=1, study="api",
               storage=f"sqlite:///{tmp_path / 'api.db'}", progress=False)
    cli = search.load("cli", f"sqlite:///{tmp_path / 'cli.db'}")
    api = search.load("api", f"sqlite:///{tmp_path / 'api.db'}")
    columns = ["number", "value", *[c for c in cli.results() if c.startswith("params_")]]
    pd.testing.assert_frame_equal(cli.results()[columns], api.results()[columns])
