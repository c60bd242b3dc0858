"""The study on a real Dask cluster with a real PostgreSQL server, loopback only.

The server and the cluster are started here (see ``tests/search/pg.py``); when
either is not installed, the tests are skipped with the reason (a failure in CI:
see ``tests/equipment.py``); Dask installed but failing to start is a failure.
Counts are read from the database with SQL, not through the code under test.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from search.cli import main
from search.study.spec import build_spec
from tests.conftest import SEARCH_TRIALS, ctrl_c, run_cli, running_cli, start_cli, wait_until_finished
from tests.equipment import missing
from tests.search.pg import Postgres, PostgresUnavailable, start_postgres

FAST = ("--dataset", "digits", "--epochs", "5", "--no-progress")


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    try:
        server = start_postgres()
    except PostgresUnavailable as exc:
        missing(f"PostgreSQL for the cluster tests: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    """Two single-threaded Dask worker processes behind a scheduler on 127.0.0.1."""
    try:
        import distributed
    except ImportError:
        missing("dask.distributed (pip install -e '.[cluster]')")
    # Workers unpickle TrialTask: they must import this checkout (the scheduler is in this process).
    path = os.pathsep.join(p for p in (str(Path(__file__).resolve().parents[2]),
                                       os.environ.get("PYTHONPATH")) if p)
    try:
        local = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                         host="127.0.0.1", dashboard_address=None,
                                         scheduler_kwargs={"dashboard_address": ":0"},
                                         env={"PYTHONPATH": path})  # no BLAS limit here: the task sets it
    except Exception as exc:  # noqa: BLE001 -- Dask is installed: failing to start is a failure
        pytest.fail(f"cannot start a local Dask cluster: {type(exc).__name__}: {exc}")
    client = distributed.Client(local, set_as_default=False)
    try:
        yield client
    finally:
        client.close()
        local.close()


def _blas_threads_in_a_task() -> list[int]:
    """Run where a trial runs, after the task's own set-up: each BLAS pool's thread count."""
    from threadpoolctl import threadpool_info

    from search.workers.tasks import _init_worker

    _init_worker()
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def counts(pg: Postgres, database: str) -> dict[str, int]:
    """Search trials by state (the finalist stage's runs come on top of them)."""
    return dict(pg.query(database, f"SELECT state::text, count(*) FROM trials WHERE {SEARCH_TRIALS} "
                                   "GROUP BY state"))


def user_attr(pg: Postgres, database: str, key: str) -> dict[int, object]:
    import psycopg

    try:
        rows = pg.query(database, "SELECT t.number, a.value_json FROM trials t JOIN trial_user_attributes a "
                                  "USING (trial_id) WHERE a.key = %s", key)
    except psycopg.errors.UndefinedTable:  # the run has not created the schema yet
        return {}
    return {number: json.loads(value) for number, value in rows}


def trial_table(study: str, url: str) -> list[tuple]:
    import optuna

    trials = optuna.load_study(study_name=study, storage=url).get_trials(deepcopy=False)
    return [(t.number, t.state.name, t.value, sorted(t.params.items()), t.user_attrs.get("stage"))
            for t in trials]


@pytest.mark.cluster
@pytest.mark.slow
def test_dask_run_on_postgres_stores_exactly_n_finished_trials_from_two_workers(
        postgres: Postgres, cluster: object, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    url = postgres.createdb("run40")
    address = cluster.scheduler.address
    # BLAS threads as a task sees them: read by threadpoolctl inside the worker, during a trial
    blas = cluster.gather(cluster.submit(_blas_threads_in_a_task, pure=False))
    assert blas and all(n == 1 for n in blas), blas

    out = run_cli("run", "--trials", "40", "--study", "d40", "--storage", url, "--executor", "dask",
                  "--scheduler", address, *FAST)
    assert out.returncode == 0, out.stderr
    assert "40 finished" in out.stdout
    state = counts(postgres, "run40")
    assert state.get("COMPLETE", 0) + state.get("PRUNED", 0) == 40
    assert state.get("PRUNED", 0) > 0
    assert state.get("RUNNING", 0) == 0
    numbers = [n for (n,) in postgres.query("run40", "SELECT number FROM trials")]
    assert sorted(numbers) == list(range(len(numbers)))  # no duplicate, no gap
    pids = set(user_attr(postgres, "run40", "pid").values())
    worker_pids = set(cluster.run(os.getpid).values())
    assert len(pids) >= 2 and pids <= worker_pids  # trained by the Dask workers, not the coordinator

    # every reader goes through open_storage and works against the PostgreSQL URL
    from search.readers.results import load_results

    df = load_results("d40", url)
    spec = build_spec("d40", None, {})  # digits defaults: the finalists and their repeats
    assert (df.stage == "search").sum() == 40
    assert (df.stage == "finalist").sum() == spec.finalists * spec.finalist_repeats
    assert main(["show", "--study", "d40", "--storage", url, "--top", "3"]) == 0
    assert main(["best", "--study", "d40", "--storage", url]) == 0
    assert main(["plot", "--study", "d40", "--storage", url, "--out", str(tmp_path / "plots")]) == 0
    assert list((tmp_path / "plots").glob("*.png"))
    assert main(["resume", "--study", "d40", "--storage", url, "--executor", "dask", "--scheduler",
                 address, "--no-progress"]) == 0
    assert "40 finished" in capsys.readouterr().out
    assert sum(counts(postgres, "run40").values()) == 40  # nothing left to do: not one trial more


@pytest.mark.cluster
@pytest.mark.slow
def test_a_sqlite_study_copied_to_postgres_resumes_on_dask(
        postgres: Postgres, cluster: object, tmp_path: Path) -> None:
    import optuna

    db = tmp_path / "local.db"
    sqlite_url = f"sqlite:///{db}"
    # Ctrl-C once 5 trials are stored stops the local run early: the study wants 30 and holds fewer
    proc = start_cli("run", "--trials", "30", "--study", "moved", "--storage", sqlite_url, "--jobs", "2", *FAST)
    try:
        wait_until_finished(db, 5, proc)
    finally:
        err = ctrl_c(proc, timeout=120)
    assert proc.returncode == 130, err
    local = trial_table("moved", sqlite_url)
    assert 0 < len(local) < 30

    url = postgres.createdb("moved")
    optuna.copy_study(from_study_name="moved", from_storage=sqlite_url, to_storage=url)
    out = run_cli("resume", "--study", "moved", "--storage", url, "--executor", "dask",
                  "--scheduler", cluster.scheduler.address, "--no-progress")
    assert out.returncode == 0, out.stderr
    state = counts(postgres, "moved")
    assert state.get("COMPLETE", 0) + state.get("PRUNED", 0) == 30
    moved = trial_table("moved", url)
    assert moved[:len(local)] == local  # the copied trials, unchanged, under the same numbers
    assert sorted(n for n, *_ in moved) == list(range(len(moved)))


@pytest.mark.cluster
@pytest.mark.slow
def test_killing_a_dask_worker_mid_trial_loses_no_trial(postgres: Postgres, cluster: object) -> None:
    url = postgres.createdb("killed")
    # long, unpruned trials so that the kill lands inside one
    with running_cli("run", "--trials", "40", "--study", "k", "--storage", url, "--executor", "dask",
                     "--scheduler", cluster.scheduler.address, "--pruner", "none", "--dataset", "digits",
                     "--epochs", "40", "--no-progress") as proc:
        worker_pids = cluster.run(os.getpid)  # worker address -> pid, looked up before: the kill must be quick
        victim, running = None, []
        deadline = time.monotonic() + 120
        while victim is None and time.monotonic() < deadline and proc.poll() is None:
            # wait until some trials have finished, then kill a worker running one that is
            # still RUNNING in the database (unfinished: the kill cannot land after it)
            if len(user_attr(postgres, "killed", "pid")) >= 6:
                unfinished = {n for (n,) in postgres.query("killed", "SELECT number FROM trials "
                                                                     "WHERE state = 'RUNNING'")}
                for address, keys in cluster.processing().items():
                    if keys and {int(str(key).split("-")[-2]) for key in keys} <= unfinished:
                        victim, running = address, list(keys)
                        os.kill(worker_pids[victim], signal.SIGKILL)
                        break
            time.sleep(0.05)
        assert victim is not None, "never saw a worker running a trial"
        pid = worker_pids[victim]
        killed = {int(str(key).split("-")[-2]) for key in running}  # trial-<study>-<number>-<token>

        stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 0, stderr
    state = counts(postgres, "killed")
    assert state.get("COMPLETE", 0) + state.get("PRUNED", 0) == 40
    assert state.get("RUNNING", 0) == 0
    numbers = [n for (n,) in postgres.query("killed", "SELECT number FROM trials")]
    assert sorted(numbers) == list(range(len(numbers)))
    states = dict(postgres.query("killed", "SELECT number, state::text FROM trials"))
    pids, reasons = user_attr(postgres, "killed", "pid"), user_attr(postgres, "killed", "stop_reason")
    retry_of = set(user_attr(postgres, "killed", "retry_of").values())
    rerun = 0
    for number in killed:
        if states[number] == "FAIL":  # surfaced to the coordinator: recorded, then run again
            assert "worker" in reasons[number] and number in retry_of
            rerun += 1
        else:  # Dask ran it again on a live worker under the same number
            assert states[number] in ("COMPLETE", "PRUNED")
            rerun += pids[number] != pid  # == pid: it finished in the instant before the kill
    assert rerun >= 1
    cluster.wait_for_workers(2, timeout=60)  # the nanny restarts the killed worker


@pytest.mark.cluster
@pytest.mark.slow
def test_deterministic_study_is_the_same_on_the_local_pool_and_on_dask(
        postgres: Postgres, cluster: object, tmp_path: Path) -> None:
    args = ("--trials", "16", "--study", "det", "--deterministic", "--seed", "11", "--cv", "3",
            "--finalists", "2", *FAST)
    sqlite_url = f"sqlite:///{tmp_path / 'det.db'}"
    local = run_cli("run", *args, "--storage", sqlite_url, "--jobs", "2")
    assert local.returncode == 0, local.stderr
    url = postgres.createdb("det")
    dask = run_cli("run", *args, "--storage", url, "--executor", "dask", "--scheduler",
                   cluster.scheduler.address)
    assert dask.returncode == 0, dask.stderr
    one, two = trial_table("det", sqlite_url), trial_table("det", url)
    # 16 search trials, cross-validated on 3 folds, then 2 finalists' fresh runs
    repeats = build_spec("det", None, {}).finalist_repeats
    assert [stage for *_, stage in one] == ["search"] * 16 + ["finalist"] * 2 * repeats
    assert any(state == "PRUNED" for _, state, *_ in one)
    assert one == two
    pids = set(user_attr(postgres, "det", "pid").values())  # trained by the Dask workers
    assert pids and pids <= set(cluster.run(os.getpid).values())


@pytest.mark.cluster
def test_a_local_dask_cluster_is_started_when_no_scheduler_is_given(tmp_path: Path, capsys) -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        missing("dask.distributed (pip install -e '.[cluster]')")
    db = tmp_path / "lc.db"
    code = main(["run", "--trials", "6", "--study", "lc", "--storage", f"sqlite:///{db}", "--jobs", "2",
                 "--executor", "dask", *FAST])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "6 finished" in out.out and "with 2 workers" in out.out


def test_the_dask_executor_without_the_extra_names_the_extra(tmp_path: Path, capsys,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    code = main(["run", "--trials", "2", "--study", "x", "--storage", f"sqlite:///{tmp_path / 'x.db'}",
                 "--executor", "dask", *FAST])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == "error: the dask executor needs the cluster extra: pip install -e '.[cluster]'"


def test_a_scheduler_without_the_dask_executor_is_refused(tmp_path: Path, capsys) -> None:
    code = main(["run", "--trials", "2", "--study", "x", "--storage", f"sqlite:///{tmp_path / 'x.db'}",
                 "--scheduler", "tcp://127.0.0.1:8786", *FAST])
    assert code == 2
    assert "--scheduler needs --executor dask" in capsys.readouterr().err


@pytest.mark.cluster
@pytest.mark.slow
def test_a_table_study_runs_on_dask_whose_workers_build_their_own_cache_from_the_file(
        postgres: Postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers with an empty cache of their own, as on another machine: each builds the entry from the path."""
    import distributed
    from sklearn.datasets import load_wine

    csv = tmp_path / "wine.csv"
    load_wine(as_frame=True).frame.to_csv(csv, index=False)
    worker_cache = tmp_path / "worker-cache"
    monkeypatch.setenv("NUMPY_HPSEARCH_CACHE", str(tmp_path / "coordinator-cache"))
    path = os.pathsep.join(p for p in (str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")) if p)
    local = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                     dashboard_address=None, scheduler_kwargs={"dashboard_address": ":0"},
                                     env={"PYTHONPATH": path, "NUMPY_HPSEARCH_CACHE": str(worker_cache)})
    try:
        url = postgres.createdb("table")
        out = run_cli("run", "--data", str(csv), "--trials", "10", "--epochs", "3", "--study", "wine", "--storage",
                      url, "--executor", "dask", "--scheduler", local.scheduler.address, "--finalists", "0",
                      "--no-progress")
    finally:
        local.close()
    assert out.returncode == 0, out.stderr
    state = counts(postgres, "table")
    assert state.get("COMPLETE", 0) + state.get("PRUNED", 0) == 10
    assert len(list(worker_cache.glob("file-wine*"))) == 1  # built there once, from the file, for both workers
    assert run_cli("best", "--study", "wine", "--storage", url, "--retrain").returncode == 0
    predicted = run_cli("predict", "--study", "wine", "--storage", url, str(csv))
    assert predicted.returncode == 0, predicted.stderr
    assert "accuracy" in predicted.stderr
