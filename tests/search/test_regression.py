"""Regression end to end: a numeric target searched, retrained, predicted and reported, by real workers."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, make_friedman1

import search
from model.datasets.owndata import draw_splits
from search.readers.results import load_results_and_finalists
from search.study.metrics import score
from tests.conftest import finished, query, run_cli, running_cli, wait_until_finished
from tests.search.test_export import feeds
from tests.search.test_run import wait_for_a_running_trial

FAST = ("--epochs", "8", "--finalists", "2", "--jobs", "2", "--no-progress")


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUMPY_HPSEARCH_CACHE", str(tmp_path / "cache"))  # the CLI processes inherit it


@pytest.fixture
def diabetes(tmp_path: Path) -> Path:
    """scikit-learn's diabetes table (442 rows, 10 features): the target, a disease measure, is a number."""
    frame = load_diabetes(as_frame=True, scaled=False).frame
    path = tmp_path / "diabetes.csv"
    frame.to_csv(path, index=False)
    return path


def _test_rows(path: Path, study_spec: dict) -> pd.DataFrame:
    """The rows the study held out for testing: the same draw (random, not by class) as it made."""
    frame = pd.read_csv(path)
    y = frame["target"].to_numpy()
    _, _, test = draw_splits(y, study_spec["val_fraction"], 0, study_spec["test_seed"], False, stratify=False)
    return frame.iloc[test]


@pytest.mark.slow
def test_a_numeric_csv_is_a_regression_study_from_search_to_predict(tmp_path: Path, diabetes: Path) -> None:
    url = f"sqlite:///{tmp_path / 'd.db'}"
    out = run_cli("run", "--data", str(diabetes), "--trials", "8", "--study", "diab", "--storage", url, *FAST)
    assert out.returncode == 0, out.stderr
    assert "task    regression, decided from the target" in out.stderr  # said in one line
    assert "best                  trial " in out.stdout and ": val rmse " in out.stdout
    assert re.search(r"^target\s+target: numbers \(regression\), 214 distinct", out.stdout, re.M), out.stdout
    df, finalists = load_results_and_finalists("diab", url)
    assert (df.attrs["task"], df.attrs["metric"]) == ("regression", None)
    assert {"val_rmse", "val_mae", "val_r2"} <= set(df.columns) and df["val_accuracy"].isna().all()
    assert set(df.loc[df["state"] == "COMPLETE", "loss"].astype(str)) <= {"squared_error", "huber"}
    assert list(finalists.columns[2:4]) == ["val_rmse_mean", "val_rmse_sd"]

    retrained = run_cli("best", "--study", "diab", "--storage", url, "--retrain", "--seeds", "2", "--jobs", "2")
    assert retrained.returncode == 0, retrained.stderr
    assert "test rmse" in retrained.stdout and "ensemble rmse" in retrained.stdout
    record = json.loads(query(tmp_path / "d.db", "SELECT value_json FROM study_user_attributes "
                                                  "WHERE key='retrained'")[0][0])
    record = json.loads(record)
    assert record["task"] == "regression" and "test_accuracy" not in record
    assert 20 < record["ensemble_rmse"] < 120 and record["test_r2_mean"] > -1  # in the target's units (sd 77)

    spec = json.loads(json.loads(query(tmp_path / "d.db", "SELECT value_json FROM study_user_attributes "
                                                           "WHERE key='search_spec'")[0][0]))
    rows = _test_rows(diabetes, spec)
    rows.to_csv(tmp_path / "test-rows.csv", index=False)
    predicted = run_cli("predict", "--study", "diab", "--storage", url, str(tmp_path / "test-rows.csv"),
                        "--out", str(tmp_path / "p.csv"))
    assert predicted.returncode == 0, predicted.stderr
    table = pd.read_csv(tmp_path / "p.csv")
    assert list(table.columns) == ["predicted"] and len(table) == len(rows)
    rmse = score("rmse", rows["target"].to_numpy(), table["predicted"].to_numpy())
    assert rmse == pytest.approx(record["ensemble_rmse"], rel=1e-5)  # predict is what best --retrain scored
    assert f"rmse {record['ensemble_rmse']:.4f}" in predicted.stdout + predicted.stderr

    report = run_cli("report", "--study", "diab", "--storage", url, "--format", "md",
                     "--out", str(tmp_path / "r.md"))
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "r.md").read_text()
    assert "regression: judged by root mean squared error" in text
    assert "predicted.png" in text and "| val_rmse |" in text.replace(" val_rmse ", " val_rmse |")


def test_search_run_and_the_final_networks_answer_in_the_targets_units(tmp_path: Path) -> None:
    X, y = make_friedman1(n_samples=300, noise=0.5, random_state=0)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(10)]).assign(y=y * 100.0)
    study = search.run(frame, target="y", trials=6, epochs=8, finalists=0, jobs=2, progress=False,
                       storage=f"sqlite:///{tmp_path / 'f.db'}", study="fried")
    assert study.best.metric == "rmse" and study.best.score > 0
    final = study.retrain(seeds=1, jobs=1)
    numbers = final.predict(frame.drop(columns="y").iloc[:5])
    assert numbers.dtype == np.float64 and numbers.shape == (5,)
    assert 0 < numbers.mean() < 2 * y.max() * 100  # the target's units, not standardised ones
    with pytest.raises(search.SearchError, match="predicts numbers"):
        final.predict_proba(frame.drop(columns="y"))


def test_searchcv_regressor_is_scikit_learns_regressor(tmp_path: Path) -> None:
    from sklearn.base import is_regressor

    X, y = make_friedman1(n_samples=200, noise=0.5, random_state=1)
    cv = search.SearchCVRegressor(n_trials=5, epochs=10, finalists=0, n_jobs=2).fit(X[:150], y[:150])
    assert is_regressor(cv) and cv.best_score_ > 0  # the winner's validation RMSE
    r2 = cv.score(X[150:], y[150:])
    assert -1 < r2 <= 1 and cv.predict(X[150:]).shape == (50,)


def test_the_task_can_decide_against_the_target(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    codes = np.repeat(np.arange(30), 20)  # 30 numbered classes of 20 rows: by the rule, numbers to predict
    table = tmp_path / "codes.csv"
    pd.DataFrame({"a": codes + rng.normal(size=600), "code": codes}).to_csv(table, index=False)
    out = run_cli("run", "--data", str(table), "--task", "classification", "--trials", "2", "--epochs", "2",
                  "--finalists", "0", "--storage", f"sqlite:///{tmp_path / 'c.db'}", "--no-progress", "--jobs", "1")
    assert out.returncode == 0, out.stderr  # the user decided: 30 classes
    assert "task    " not in out.stderr and re.search(r"^data .* 30 classes$", out.stdout, re.M), out.stdout
    words = tmp_path / "words.csv"
    pd.DataFrame({"a": [1.0, 2.0, 3.0] * 10, "label": ["x", "y", "z"] * 10}).to_csv(words, index=False)
    refused = run_cli("run", "--data", str(words), "--task", "regression", "--storage",
                      f"sqlite:///{tmp_path / 'w.db'}", "--no-progress")
    assert refused.returncode == 2 and "--task regression needs numbers in the target" in refused.stderr


@pytest.mark.slow
def test_a_killed_regression_study_resumes_with_every_trial(tmp_path: Path, diabetes: Path) -> None:
    db = tmp_path / "k.db"
    with running_cli("run", "--data", str(diabetes), "--trials", "24", "--study", "kill", "--storage",
                     f"sqlite:///{db}", "--epochs", "30", "--finalists", "0", "--jobs", "2", "--no-progress") as proc:
        wait_until_finished(db, 4, proc)
        wait_for_a_running_trial(db, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    before = set(query(db, "SELECT number, state FROM trials WHERE state IN ('COMPLETE','PRUNED')"))
    out = run_cli("resume", "--study", "kill", "--storage", f"sqlite:///{db}", "--no-progress")
    assert out.returncode == 0, out.stderr
    assert before <= set(query(db, "SELECT number, state FROM trials WHERE state IN ('COMPLETE','PRUNED')"))
    assert finished(db) == 24
    complete = {n for n, state in query(db, "SELECT number, state FROM trials") if state == "COMPLETE"}
    scored = {n for (n,) in query(db, "SELECT t.number FROM trials t JOIN trial_user_attributes a "
                                      "USING (trial_id) WHERE a.key = 'val_rmse'")}
    assert complete <= scored  # every complete trial, of either run, scored in the target's units


@pytest.mark.slow
def test_a_deterministic_regression_study_is_the_same_whatever_the_number_of_workers(
    tmp_path: Path, diabetes: Path
) -> None:
    def trials(jobs: str) -> list[tuple]:
        db = tmp_path / f"det{jobs}.db"
        out = run_cli("run", "--data", str(diabetes), "--trials", "8", "--jobs", jobs, "--study", "det",
                      "--deterministic", "--seed", "3", "--cv", "3", "--finalists", "2", "--epochs", "6",
                      "--storage", f"sqlite:///{db}", "--no-progress")
        assert out.returncode == 0, out.stderr
        return query(db, "SELECT t.number, t.state, v.value, p.param_name, p.param_value, a.value_json FROM trials t "
                         "LEFT JOIN trial_values v USING (trial_id) JOIN trial_params p USING (trial_id) "
                         "LEFT JOIN trial_user_attributes a ON a.trial_id = t.trial_id AND a.key = 'val_rmse' "
                         "ORDER BY t.number, p.param_name")

    one, two = trials("1"), trials("2")
    assert one == two and len({n for n, *_ in one}) >= 8


def test_the_exported_graph_of_a_regression_study_answers_as_predict(tmp_path: Path, diabetes: Path) -> None:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx.reference import ReferenceEvaluator

    study = search.run(str(diabetes), trials=4, epochs=6, finalists=0, jobs=2, progress=False,
                       storage=f"sqlite:///{tmp_path / 'e.db'}", study="exp")
    final = study.retrain(seeds=2, jobs=2)
    path = study.export(tmp_path / "diabetes.onnx")
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    rows = pd.read_csv(diabetes).drop(columns="target")
    expected = final.predict(rows)
    feeds = {name: rows[name].to_numpy(np.float32) for name in rows.columns}
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["number"]
    for runtime in (session, ReferenceEvaluator(model)):
        (number,) = runtime.run(None, feeds)
        assert number.dtype == np.float64 and number.shape == expected.shape
        np.testing.assert_allclose(number, expected, rtol=1e-5, atol=1e-4)
    props = {p.key: p.value for p in model.metadata_props}
    assert float(props["test_rmse"]) == final.record["ensemble_rmse"]


@pytest.mark.parametrize(
    "first_map",
    [pytest.param({"periodic": 1.0}, marks=pytest.mark.slow), {"plr": 8, "plr_sigma": 0.3}],
    ids=["frozen", "learned"],
)
def test_periodic_features_are_searched_retrained_predicted_and_exported_as_they_trained(
    tmp_path: Path, first_map: dict
) -> None:
    """A table's numbers expanded by the network (frozen, model/periodic.py, or learned, model/plr.py): the
    workers, the final networks, ``predict`` in a fresh process and the ONNX graph all expand the same
    columns at the same frequencies."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(0)
    n = 600
    frame = pd.DataFrame({"b": rng.normal(size=n), "colour": rng.choice(["red", "blue"], n), "a": rng.normal(size=n)})
    frame.loc[::17, "b"] = np.nan  # b's holes get an indicator column, which is not a number to expand
    frame["target"] = np.sin(4 * frame["a"]) * 10 + frame["b"].fillna(0)
    csv = tmp_path / "periodic.csv"
    frame.to_csv(csv, index=False)
    space = {**first_map, "optimizer": "adam", "learning_rate": 0.01, "units": 32, "n_layers": 1}
    study = search.run(str(csv), target="target", trials=2, epochs=20, finalists=0, jobs=2, progress=False,
                       storage=f"sqlite:///{tmp_path / 'p.db'}", study="per", space=space)  # fmt: skip
    final = study.retrain(seeds=2, jobs=2)
    # imputed b, its holes' indicator, then a; the one-hot colour after them
    maps = [(net.periodic, net.periodic_columns, net.plr) for net in final.networks]
    assert maps == [(first_map.get("periodic", 0.0), [0, 2], first_map.get("plr", 0))] * 2
    # sin(4a) is learnt: frozen 0.92, learned 0.98; the same networks without the features, -0.05
    assert final.record["test_r2_mean"] > 0.8

    rows = frame.drop(columns="target")
    rows.to_csv(tmp_path / "rows.csv", index=False)
    predicted = run_cli("predict", "--study", "per", "--storage", f"sqlite:///{tmp_path / 'p.db'}",
                        str(tmp_path / "rows.csv"), "--out", str(tmp_path / "out.csv"))  # fmt: skip
    assert predicted.returncode == 0, predicted.stderr
    expected = final.predict(rows)
    np.testing.assert_allclose(pd.read_csv(tmp_path / "out.csv")["predicted"], expected, rtol=1e-5, atol=1e-4)

    path = study.export(tmp_path / "periodic.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx.checker.check_model(onnx.load(path), full_check=True)
    (number,) = session.run(None, feeds(session.get_inputs(), rows))
    np.testing.assert_allclose(number, expected, rtol=1e-4, atol=1e-3)
