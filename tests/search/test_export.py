"""``export``: the final networks behind the stored preprocessing, as one ONNX graph that answers as predict.

One small study per form (a table with text and missing cells, an .npz of numeric
rows, folders of grayscale and of RGB images, a built-in data set), searched and
retrained in this process; its exported graph is run in onnxruntime and in
onnx's reference evaluator on the study's test rows, in their raw form: the
labels must be ``predict``'s (``load_final_networks``), the probabilities within
1e-5. Then what export refuses, and the example of docs/export.md run in a
Python that cannot import this project.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.datasets import load_digits

import search
from search.cli import main
from search.study.datafile import peek_record
from search.study.dataref import DataRef
from search.study.storage import open_storage
from search.study.stored import load_spec
from tests.conftest import ROOT
from tests.equipment import in_ci
from tests.search.test_own_data import digits_images, held_out_rows, wine_table, write_folder

try:
    import onnx
    import onnxruntime as ort
    from onnx.reference import ReferenceEvaluator
except ImportError as exc:  # the export extra
    if in_ci():
        raise
    pytest.skip(f"{exc.name} is not installed (pip install -e '.[export]')", allow_module_level=True)

DOC = ROOT / "docs" / "export.md"


@dataclass(frozen=True)
class Made:
    study: str
    url: str
    data: Path
    X: Any  # the study's test rows in their raw form (a DataFrame for a table)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private cache for the module's studies (the worker processes inherit it)."""
    tmp = tmp_path_factory.mktemp("export")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NUMPY_HPSEARCH_CACHE", str(tmp / "cache"))
        yield tmp


def make_study(tmp: Path, name: str, data: str) -> str:
    """A tiny search and two final networks: enough for export, in a few seconds."""
    url = f"sqlite:///{tmp / name}.db"
    study = search.run(data, study=name, storage=url, trials=2, epochs=2, finalists=0, jobs=1, progress=False)
    study.retrain(seeds=2, jobs=1, out=tmp / f"{name}.npz")
    return url


def folder_order(labels: np.ndarray) -> np.ndarray:
    """The folder is read class by class, file by file (as write_folder names them)."""
    return np.argsort([f"digit-{y}/{i:04d}" for i, y in enumerate(labels)], kind="stable")


def make_form(form: str, tmp: Path) -> Made:
    if form == "table":
        csv = wine_table(tmp / "wine.csv")
        url = make_study(tmp, "wine", str(csv))
        frame = pd.read_csv(csv)
        rows = held_out_rows(peek_record(url, "wine"), frame["target"].to_numpy())
        test = frame.iloc[rows].drop(columns="target").reset_index(drop=True)
        odd = test.iloc[:4].copy()  # missing numbers and text, and a category never seen in training
        odd.loc[0, ["alcohol", "ash", "hue"]] = np.nan
        odd.loc[1, "cellar"], odd.loc[2, "cellar"] = None, "east"
        odd.loc[3, :] = np.nan
        return Made("wine", url, csv, pd.concat([test, odd], ignore_index=True))
    if form == "dated":  # wine with a time of day per row: a date column, one cell missing
        frame = pd.read_csv(wine_table(tmp / "dated.csv"))
        rng = np.random.default_rng(0)
        when = pd.Timestamp("2016-12-30T22:00:00Z") + pd.to_timedelta(rng.integers(0, 400 * 86400, len(frame)), "s")
        frame.insert(0, "when", when.strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy(object))
        frame.loc[7, "when"] = None
        frame.to_csv(tmp / "dated.csv", index=False)
        url = make_study(tmp, "dated", str(tmp / "dated.csv"))
        assert peek_record(url, "dated")["dates"] == ["when"]
        rows = held_out_rows(peek_record(url, "dated"), frame["target"].to_numpy())
        test = frame.iloc[rows].drop(columns="target").reset_index(drop=True)
        test.loc[1, "when"] = None  # missing where training had it
        return Made("dated", url, tmp / "dated.csv", test)
    if form == "npz":
        d = load_digits()
        path = tmp / "rows.npz"
        np.savez(path, x_train=d.data[:1200], y_train=d.target[:1200], x_test=d.data[1200:], y_test=d.target[1200:])
        return Made("rows", make_study(tmp, "rows", str(path)), path, d.data[1200:])
    if form == "digits":
        url = make_study(tmp, "builtin", "digits")
        storage = open_storage(url, read_only=True)
        try:
            spec, _ = load_spec(storage, "builtin")
        finally:
            storage.engine.dispose()
        return Made("builtin", url, Path(), DataRef.of(spec).load().X_test)
    rgb = form == "rgb"
    images, labels = digits_images(300)
    root = write_folder(tmp / form, images, labels, rgb)
    url = make_study(tmp, form, str(root))
    order = folder_order(labels)
    rows = order[held_out_rows(peek_record(url, form), np.array([f"digit-{y}" for y in labels[order]]))]
    X = np.stack([images, 255 - images, images], axis=1) if rgb else images  # N x C x H x W, or N x H x W
    return Made(form, url, root, X[rows])


FORMS = ["table", "dated", "npz", "grayscale", "rgb", "digits"]


@pytest.fixture(scope="module")
def made(workdir: Path) -> dict[str, Made]:
    return {}


@pytest.fixture
def study_of(made: dict[str, Made], workdir: Path):
    def get(form: str) -> Made:
        if form not in made:
            made[form] = make_form(form, workdir)
        return made[form]

    return get


def export(m: Made, out: Path, capsys: pytest.CaptureFixture[str]) -> onnx.ModelProto:
    """``python -m search export`` in this process (``capsys`` or ``capfd``: what it printed)."""
    code = main(["export", "--study", m.study, "--storage", m.url, "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.startswith(f"wrote {out}: 2 networks of trial ")
    return onnx.load(out)


def feeds(session_inputs: list, X: Any) -> dict[str, np.ndarray]:
    """The raw rows as the graph's inputs: a table's columns (text as strings, "" when missing; a date as
    seconds since 1970, as docs/export.md says), else float."""
    if isinstance(X, pd.DataFrame):
        out = {}
        for i in session_inputs:
            col = X[i.name]
            if i.type == "tensor(string)":
                out[i.name] = col.fillna("").astype(str).to_numpy(object)
            elif pd.api.types.is_numeric_dtype(col):
                out[i.name] = col.to_numpy(np.float64 if i.type == "tensor(double)" else np.float32)
            else:
                when = pd.to_datetime(col, utc=True) - pd.Timestamp(0, tz="UTC")
                out[i.name] = when.dt.total_seconds().to_numpy(np.float64, na_value=np.nan)
        return out
    (only,) = session_inputs
    return {only.name: np.asarray(X, dtype=np.float32)}


@pytest.mark.parametrize("form", FORMS)
def test_the_exported_graph_answers_as_predict_in_both_runtimes(
    form: str, study_of, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    m = study_of(form)
    model = export(m, tmp_path / "model.onnx", capfd)
    onnx.checker.check_model(model, full_check=True)
    capfd.readouterr()
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    assert capfd.readouterr().err == ""  # opened with no warning
    final = search.load_final_networks(m.study, m.url)
    expected = final.predict_proba(m.X, unseen="ignore")
    labels = final.classes[expected.argmax(axis=1)]
    inputs = feeds(session.get_inputs(), m.X)
    for runtime in (session, ReferenceEvaluator(model)):
        label, proba = runtime.run(None, inputs)
        assert label.tolist() == labels.tolist()
        assert np.abs(proba - expected).max() < 1e-5
    assert [o.name for o in session.get_outputs()] == ["label", "probabilities"]
    props = {p.key: p.value for p in model.metadata_props}
    trial = int(props["trial"])
    assert trial == final.record["trial"] and props["study"] == m.study and props["networks"] == "2"
    assert json.loads(props["params"]) == optuna.load_study(study_name=m.study, storage=m.url).trials[trial].params
    assert float(props["test_accuracy"]) == final.record["ensemble_accuracy"]
    record = peek_record(m.url, m.study)
    assert props["data_digest"] == ("" if record is None else record["digest"])


def test_the_table_graph_takes_one_input_per_column_with_text_as_strings(
    study_of, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    m = study_of("table")
    model = export(m, tmp_path / "wine.onnx", capsys)
    types = {i.name: i.type.tensor_type.elem_type for i in model.graph.input}
    assert set(types) == set(m.X.columns)
    assert types.pop("cellar") == onnx.TensorProto.STRING
    assert set(types.values()) == {onnx.TensorProto.FLOAT}
    assert model.opset_import[0].version == 17 and model.ir_version == 8
    # a date column: one input of seconds, in double
    dated = export(study_of("dated"), tmp_path / "dated.onnx", capsys)
    types = {i.name: i.type.tensor_type.elem_type for i in dated.graph.input}
    assert set(types) == set(study_of("dated").X.columns) and types["when"] == onnx.TensorProto.DOUBLE


def test_study_export_writes_the_file_the_command_writes(
    study_of, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    m = study_of("npz")
    export(m, tmp_path / "cli.onnx", capsys)
    path = search.load(m.study, m.url).export(tmp_path / "api.onnx")
    assert path == tmp_path / "api.onnx"
    assert path.read_bytes() == (tmp_path / "cli.onnx").read_bytes()


def test_export_of_a_study_without_final_networks_says_which_command_to_run_first(
    study_of, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    m = study_of("npz")
    db = tmp_path / "bare.db"
    db.write_bytes(Path(m.url.removeprefix("sqlite:///")).read_bytes())
    with sqlite3.connect(db) as conn:  # the study as it was before best --retrain
        conn.execute("DELETE FROM study_user_attributes WHERE key = 'retrained'")
    conn.close()
    code = main(["export", "--study", m.study, "--storage", f"sqlite:///{db}", "--out", str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert f"run `python -m search best --study {m.study} --retrain`" in err
    assert not (tmp_path / "m.onnx").exists()


def test_export_refuses_a_study_whose_data_file_changed_as_predict_does(
    study_of, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    m = study_of("table")
    original = m.data.read_bytes()
    try:
        m.data.write_bytes(original.replace(b"barolo", b"Barolo", 1))
        code = main(["export", "--study", m.study, "--storage", m.url, "--out", str(tmp_path / "m.onnx")])
        err = capsys.readouterr().err
        predict = main(["predict", "--study", m.study, "--storage", m.url, str(m.data)])
        said = capsys.readouterr().err
    finally:
        m.data.write_bytes(original)
    assert code == predict == 2 and err.count("\n") == 1
    assert f"has changed since study {m.study!r} began" in err and err == said
    assert not (tmp_path / "m.onnx").exists()


def test_export_without_onnx_says_which_command_installs_it(
    study_of, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    m = study_of("npz")
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` raises ImportError, as when it is not installed
    code = main(["export", "--study", m.study, "--storage", m.url, "--out", str(tmp_path / "m.onnx")])
    assert code == 2
    assert capsys.readouterr().err == "error: export needs the onnx package: pip install -e '.[export]'\n"


RUNNER = """
import json, sys
root = sys.argv[1]
assert not any(p and (p == root or p.startswith(root + "/")) for p in sys.path), sys.path
namespace = {}
exec(compile(open("example.py").read(), "example.py", "exec"), namespace)
ours = sorted(name for name, module in sys.modules.items()
              if (getattr(module, "__file__", None) or "").startswith(root + "/"))
json.dump({"label": namespace["label"].tolist(), "probabilities": namespace["probabilities"].tolist(),
           "project_modules": ours}, open("result.json", "w"))
"""


def test_the_python_example_of_docs_export_md_runs_without_this_project(
    study_of, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    m = study_of("table")
    export(m, tmp_path / "model.onnx", capsys)
    m.X.to_csv(tmp_path / "new.csv", index=False)
    (example,) = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)[:1]
    (tmp_path / "example.py").write_text(example, encoding="utf-8")
    (tmp_path / "runner.py").write_text(RUNNER, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-I", "runner.py", str(ROOT)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["project_modules"] == []  # nothing of this project was imported
    final = search.load_final_networks(m.study, m.url)
    expected = final.predict_proba(m.X, unseen="ignore")
    assert result["label"] == final.classes[expected.argmax(axis=1)].tolist()
    assert np.abs(np.array(result["probabilities"]) - expected).max() < 1e-5
    assert "wine" in done.stdout  # it prints the study's name from the metadata
