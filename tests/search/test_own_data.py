"""A file of one's own, end to end: searched by the CLI with real workers, retrained, used by predict.

Each form (a table with text, missing values and string labels; an .npz in
the notMNIST layout; folders of grayscale and of RGB PNGs) is searched, its
winner retrained, and its test rows, written out as a file of the same form,
given to ``predict``: the accuracy it prints must be the ensemble accuracy
that ``best --retrain`` printed, since both apply the same stored
preprocessing to the same rows.
"""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.datasets import load_digits, load_wine

from model.datasets import Preprocessing
from model.datasets.owndata import draw_splits
from search import load_final_networks
from tests.conftest import finished, query, run_cli, running_cli, wait_until_finished

SEARCH = ("--trials", "6", "--epochs", "5", "--jobs", "2", "--finalists", "1", "--no-progress")


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUMPY_HPSEARCH_CACHE", str(tmp_path / "cache"))  # the CLI processes inherit it


def wine_table(path: Path) -> Path:
    """Wine with a text column, missing numbers and text, and class names for labels."""
    df = load_wine(as_frame=True).frame
    df["target"] = df["target"].map({0: "barolo", 1: "grignolino", 2: "barbera"})
    df["cellar"] = np.where(df.index % 3 == 0, "north", np.where(df.index % 3 == 1, "south", None))
    df.loc[[3, 50, 120], "alcohol"] = np.nan
    df = df[[c for c in df.columns if c != "target"] + ["target"]]  # the label last: the default target
    df.to_csv(path, index=False)
    return path


def digits_images(n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    d = load_digits()
    images = (d.images * 15.9).astype(np.uint8)  # 0..16 -> 0..254
    return images[:n], d.target[:n]


def write_folder(root: Path, images: np.ndarray, labels: np.ndarray, rgb: bool) -> Path:
    for i, (im, y) in enumerate(zip(images, labels)):
        (root / f"digit-{y}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.stack([im, 255 - im, im], axis=-1) if rgb else im).save(root / f"digit-{y}" / f"{i:04d}.png")
    return root


def record_of(db: Path, study: str) -> dict:
    (raw,) = query(db, "SELECT a.value_json FROM study_user_attributes a JOIN studies s USING (study_id) "
                       "WHERE s.study_name=? AND a.key='data_file'", study)[0]
    return json.loads(json.loads(raw))


def held_out_rows(record: dict, labels: np.ndarray) -> np.ndarray:
    """Which rows of the file the study held out for its test split (the stored seeds: 0)."""
    y = Preprocessing.from_json(record["preprocessing"]).encode_labels(labels)
    return draw_splits(y, 0.2, 0, 0, has_test=False)[2]


def search_and_retrain(tmp_path: Path, study: str, *data_flags: str) -> tuple[str, Path, float]:
    db = tmp_path / f"{study}.db"
    url = f"sqlite:///{db}"
    out = run_cli("run", *data_flags, "--study", study, "--storage", url, *SEARCH)
    assert out.returncode == 0, out.stderr
    assert "data " in out.stdout and "classes" in out.stdout
    best = run_cli("best", "--study", study, "--storage", url, "--retrain", "--seeds", "2",
                   "--out", str(tmp_path / f"{study}.npz"))
    assert best.returncode == 0, best.stderr
    ensemble = float(re.search(r"ensemble accuracy\s+([0-9.]+)", best.stdout).group(1))
    return url, db, ensemble


def predicted(study: str, url: str, path: Path, out: Path) -> tuple[float, pd.DataFrame]:
    result = run_cli("predict", "--study", study, "--storage", url, str(path), "--out", str(out))
    assert result.returncode == 0, result.stderr
    return float(re.search(r"accuracy ([0-9.]+)", result.stdout).group(1)), pd.read_csv(out)


@pytest.fixture(scope="module")
def wine_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path, float]:
    """One table study, searched and retrained, for the tests that only read it (or restore what they change)."""
    tmp_path = tmp_path_factory.mktemp("wine")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NUMPY_HPSEARCH_CACHE", str(tmp_path / "cache"))
        csv = wine_table(tmp_path / "wine.csv")
        return (csv, *search_and_retrain(tmp_path, "wine", "--data", str(csv)))


@pytest.mark.slow
def test_a_table_with_text_missing_values_and_string_labels_is_searched_retrained_and_predicted(
        tmp_path: Path, wine_study: tuple[Path, str, Path, float]) -> None:
    csv, url, db, ensemble = wine_study
    record = record_of(db, "wine")
    assert record["classes"] == ["barbera", "barolo", "grignolino"]
    assert record["imputed"] == {"alcohol": 3, "cellar": 59}
    frame = pd.read_csv(csv)
    rows = held_out_rows(record, frame["target"].to_numpy())
    assert len(rows) == record["rows"]["test"]
    frame.iloc[rows].to_csv(tmp_path / "test.csv", index=False)
    accuracy, table = predicted("wine", url, tmp_path / "test.csv", tmp_path / "pred.csv")
    assert accuracy == ensemble
    assert list(table.columns) == ["predicted", "p_barbera", "p_barolo", "p_grignolino"]
    assert len(table) == len(rows) and set(table.predicted) <= set(record["classes"])
    assert np.allclose(table.filter(like="p_").sum(axis=1), 1.0, atol=1e-5)
    # in Python, the final networks take the same raw rows and answer with class names
    final = load_final_networks("wine", url)
    assert final.predict(frame.iloc[rows].drop(columns="target")).tolist() == table.predicted.tolist()
    # unlabelled rows are predicted too, in input order
    frame.iloc[rows].drop(columns="target").to_csv(tmp_path / "unlabelled.csv", index=False)
    out = run_cli("predict", "--study", "wine", "--storage", url, str(tmp_path / "unlabelled.csv"))
    assert out.returncode == 0, out.stderr
    assert pd.read_csv(__import__("io").StringIO(out.stdout)).predicted.tolist() == table.predicted.tolist()
    assert "accuracy" not in out.stderr


@pytest.mark.slow  # 15-18 s; the default run keeps every row on a file with its own test rows
def test_every_row_trains_the_scored_networks_again_on_the_test_rows_too_for_predict(tmp_path: Path) -> None:
    csv = wine_table(tmp_path / "wine.csv")
    url, db, ensemble = search_and_retrain(tmp_path, "wine", "--data", str(csv))
    retrained = "SELECT value_json FROM study_user_attributes WHERE key='retrained'"
    once = json.loads(json.loads(query(db, retrained)[0][0]))
    before = [n.layers[0].W.copy() for n in load_final_networks("wine", url).networks]
    again = run_cli("best", "--study", "wine", "--storage", url, "--retrain", "--seeds", "2", "--every-row",
                    "--out", str(tmp_path / "wine.npz"))
    assert again.returncode == 0, again.stderr
    assert "predict uses         the same networks trained again on every row (178 samples)" in again.stdout
    twice = json.loads(json.loads(query(db, retrained)[0][0]))
    assert (once["samples"], once["every_row"], twice["samples"], twice["every_row"]) == (142, None, 142, 178)
    # the scores are the networks' that never saw the test rows: the same seeds give the same ones
    assert twice["ensemble_accuracy"] == once["ensemble_accuracy"] == pytest.approx(ensemble, abs=5e-5)
    assert twice["test_accuracy"] == once["test_accuracy"]
    # predict's networks are others, trained on the 36 test rows as well
    after = [n.layers[0].W for n in load_final_networks("wine", url).networks]
    assert len(after) == 2 and not any(np.allclose(b, a) for b, a in zip(before, after))
    assert run_cli("predict", "--study", "wine", "--storage", url, str(csv)).returncode == 0
    report = run_cli("report", "--study", "wine", "--storage", url, "--format", "md", "--out", str(tmp_path / "r.md"))
    assert report.returncode == 0, report.stderr
    assert "the same networks trained again on every row (178 samples)" in (tmp_path / "r.md").read_text()


def test_every_row_on_a_file_with_its_own_test_rows_retrains_once_saying_why(tmp_path: Path) -> None:
    X, y = load_wine(return_X_y=True)
    test = np.arange(len(y)) % 5 == 0
    np.savez(tmp_path / "split.npz", x_train=X[~test], y_train=y[~test], x_test=X[test], y_test=y[test])
    url = f"sqlite:///{tmp_path / 'split.db'}"
    out = run_cli("run", "--data", str(tmp_path / "split.npz"), "--study", "split", "--storage", url,
                  "--trials", "2", "--epochs", "2", "--jobs", "1", "--finalists", "0", "--no-progress")
    assert out.returncode == 0, out.stderr
    best = run_cli("best", "--study", "split", "--storage", url, "--retrain", "--every-row")
    assert best.returncode == 0, best.stderr
    refused = "the file gave its own test rows (they are never trained on)"
    assert f"  every row            not trained on again: {refused}\n" in best.stdout
    assert "test accuracy" in best.stdout and "predict uses" not in best.stdout
    retrained = json.loads(json.loads(query(tmp_path / "split.db", "SELECT value_json FROM study_user_attributes "
                                                                   "WHERE key='retrained'")[0][0]))
    assert retrained["every_row"] is None


@pytest.mark.slow
def test_a_notmnist_style_npz_runs_with_no_flag_beyond_data(tmp_path: Path) -> None:
    images, labels = digits_images(900)
    big = np.kron(images, np.ones((1, 3, 3), dtype=np.uint8))[:, :, :24]  # N x 24 x 24 uint8, as letters are stored
    big = np.pad(big, ((0, 0), (2, 2), (2, 2)))  # N x 28 x 28
    letters = np.array(list("ABCDEFGHIJ"))[labels]
    np.savez(tmp_path / "notMNIST.npz", images=big, labels=letters)
    url, db, ensemble = search_and_retrain(tmp_path, "notMNIST", "--data", str(tmp_path / "notMNIST.npz"))
    record = record_of(db, "notMNIST")
    assert record["image_shape"] == [28, 28] and record["classes"] == list("ABCDEFGHIJ")
    rows = held_out_rows(record, letters)
    np.savez(tmp_path / "test.npz", images=big[rows], labels=letters[rows])
    accuracy, table = predicted("notMNIST", url, tmp_path / "test.npz", tmp_path / "pred.csv")
    assert accuracy == ensemble and len(table) == len(rows)


@pytest.mark.parametrize("rgb", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["grayscale", "rgb"])
def test_a_folder_of_png_images_is_searched_retrained_and_predicted(tmp_path: Path, rgb: bool) -> None:
    images, labels = digits_images(500)
    root = write_folder(tmp_path / "digits", images, labels, rgb)
    url, db, ensemble = search_and_retrain(tmp_path, "pngs", "--data", str(root))
    record = record_of(db, "pngs")
    assert record["image_shape"] == ([3, 8, 8] if rgb else [8, 8])
    assert record["classes"] == [f"digit-{k}" for k in range(10)]
    # the folder is read class by class, file by file: the test rows in that order
    order = np.argsort([f"digit-{y}/{i:04d}" for i, y in enumerate(labels)], kind="stable")
    rows = order[held_out_rows(record, np.array([f"digit-{y}" for y in labels[order]]))]
    test = write_folder(tmp_path / "test", images[rows], labels[rows], rgb)
    accuracy, table = predicted("pngs", url, test, tmp_path / "pred.csv")
    assert accuracy == ensemble
    assert table.file.str.startswith("digit-").all()
    one = run_cli("predict", "--study", "pngs", "--storage", url, str(next((test / "digit-3").iterdir())))
    assert one.returncode == 0, one.stderr
    assert one.stdout.count("\n") == 2  # the header and one row


@pytest.mark.slow
def test_a_changed_file_is_refused_by_run_resume_retrain_and_predict(
        wine_study: tuple[Path, str, Path, float]) -> None:
    csv, url, db, _ = wine_study
    before, original = db.read_bytes(), csv.read_bytes()
    frame = pd.read_csv(csv)
    frame.loc[0, "alcohol"] = 99.0
    frame.to_csv(csv, index=False)
    try:
        for argv in (("run", "--data", str(csv), "--study", "wine", "--trials", "8"), ("resume", "--study", "wine"),
                     ("best", "--study", "wine", "--retrain"), ("predict", "--study", "wine", str(csv))):
            out = run_cli(*argv, "--storage", url)
            assert out.returncode == 2, (argv, out.stderr)
            err = out.stderr.strip()
            assert err.startswith("error: ") and "\n" not in err and "has changed since study 'wine' began" in err
    finally:
        csv.write_bytes(original)
    assert db.read_bytes() == before


def digits_table(path: Path) -> Path:
    d = load_digits(as_frame=True).frame
    d["target"] = d["target"].map(lambda k: f"n{k}")
    d.to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_a_table_study_killed_mid_run_resumes_with_every_trial_kept(tmp_path: Path) -> None:
    csv = digits_table(tmp_path / "digits.csv")
    db = tmp_path / "kill.db"
    with running_cli("run", "--data", str(csv), "--trials", "30", "--epochs", "12", "--jobs", "2", "--study",
                     "kill", "--storage", f"sqlite:///{db}", "--finalists", "0", "--no-progress") as proc:
        wait_until_finished(db, 6, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    before = set(query(db, "SELECT number, state FROM trials WHERE state IN ('COMPLETE','PRUNED')"))
    out = run_cli("resume", "--study", "kill", "--storage", f"sqlite:///{db}", "--no-progress")
    assert out.returncode == 0, out.stderr
    assert before <= set(query(db, "SELECT number, state FROM trials WHERE state IN ('COMPLETE','PRUNED')"))
    assert finished(db) == 30
    assert "digits.csv: table" in out.stdout


@pytest.mark.slow
def test_a_deterministic_table_study_gives_the_same_trials_whatever_the_number_of_workers(tmp_path: Path) -> None:
    csv = wine_table(tmp_path / "wine.csv")

    def trials(jobs: str) -> list[tuple]:
        db = tmp_path / f"det{jobs}.db"
        out = run_cli("run", "--data", str(csv), "--trials", "8", "--epochs", "4", "--jobs", jobs, "--study", "det",
                      "--deterministic", "--seed", "3", "--finalists", "1", "--storage", f"sqlite:///{db}",
                      "--no-progress")
        assert out.returncode == 0, out.stderr
        return query(db, "SELECT t.number, t.state, v.value, p.param_name, p.param_value FROM trials t "
                         "LEFT JOIN trial_values v USING (trial_id) JOIN trial_params p USING (trial_id) "
                         "ORDER BY t.number, p.param_name")

    one = trials("1")
    assert len({n for n, *_ in one}) > 8
    assert one == trials("2")


def test_a_worker_without_the_file_fails_its_trial_saying_where_the_file_is_missing(tmp_path: Path) -> None:
    from model import TrainConfig
    from model.datasets import FileSource
    from search.study.dataref import DataRef
    from search.workers.tasks import TrialTask, run_trial

    source = FileSource(str(tmp_path / "elsewhere.csv"), digest="0" * 64)
    task = TrialTask("t", 0, TrainConfig(hidden=(4,), epochs=1), DataRef("elsewhere.csv", 0.2, file=source), "none")
    result = run_trial(task)
    assert result.outcome == "failed"
    assert "elsewhere.csv is not on this machine" in result.reason and "copy it" in result.reason
