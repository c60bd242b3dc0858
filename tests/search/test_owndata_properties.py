"""The command line's promise for generated inputs: exit 0 and a study (or a prediction), or exit 2 and one line.

``run --data`` is given generated tables, ``.npz`` files and image folders
(``tests/model/generated_inputs.py``), valid and damaged; ``predict`` is given
inputs in the form of three retrained studies' data, most of them close to it
(rows of the same columns, images of the same size) and then changed. For every
input, through ``search.cli.main``:

- exit 0: ``run`` made the study and no trial failed; ``predict`` wrote one
  row per input row;
- exit 2: stderr is one ``error:`` line naming the input, and the folder
  (cache and database included) is byte for byte as it was;
- and the studies that ``predict`` reads are never changed.
"""

from __future__ import annotations

import collections
import io
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.datasets.intake import shown
from search.cli import main
from tests.model.generated_inputs import (
    Entry,
    Input,
    damage,
    image_bytes,
    image_folders,
    inputs,
    npz_files,
    tables,
    tree,
)

PROFILES = [pytest.param("default", id="default"), pytest.param("slow", id="slow", marks=pytest.mark.slow)]
FAST = ["--trials", "1", "--epochs", "1", "--finalists", "0", "--jobs", "1", "--no-progress"]


def examples(profile: str, default: int, slow: int) -> settings:
    return settings(max_examples=default if profile == "default" else slow, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


def refusal(err: str, path: Path) -> None:
    assert err.startswith("error: ") and "\n" not in err, err
    assert shown(path.name) in err, (err, path.name)
    assert "defect" not in err and "unexpected" not in err, err


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.slow
def test_run_on_any_input_makes_a_study_or_refuses_in_one_line_changing_nothing(profile, capsys,
                                                                               monkeypatch) -> None:
    seen: collections.Counter[str] = collections.Counter()

    @examples(profile, 16, 160)
    @given(inputs)
    def check(inp: Input) -> None:
        with tempfile.TemporaryDirectory() as d:
            home = Path(d)
            monkeypatch.setenv("NUMPY_HPSEARCH_CACHE", str(home / "cache"))
            path = inp.write(home)
            flags = ["--image-size", "x".join(map(str, inp.options["image_size"]))] if "image_size" in inp.options \
                else []
            before = tree(home)
            capsys.readouterr()
            code = main(["run", "--study", "p", "--data", str(path), *flags, *FAST, "--storage", f"sqlite:///{d}/x.db"])
            _, err = capsys.readouterr()
            if code == 0:
                assert (home / "x.db").exists() and "failed:" not in err, err
                seen["study"] += 1
            else:
                assert code == 2, err
                refusal(err.strip(), path)
                assert tree(home) == before
                seen["refused"] += 1

    check()
    print(f"run: {dict(seen)}")


# --- predict ---------------------------------------------------------------------------------------------


def _pets(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    weight = rng.normal(size=n).round(3).astype(object)
    weight[4 % n] = "?"  # the study's own token for unknown
    return pd.DataFrame({"height": rng.normal(size=n).round(3) + np.arange(n) % 3, "weight": weight,
                         "colour": rng.choice(["red", "green", "blue"], n), "label": np.array(["cat", "dog", "fox"])[
                             np.arange(n) % 3]})


def _pictures(root: Path, n: int = 6) -> Path:
    for k, c in enumerate(("a", "b", "c")):
        (root / c).mkdir(parents=True)
        for i in range(n):
            (root / c / f"{i}.png").write_bytes(image_bytes("L", (8, 8), "png", 10 * k + i))
    return root


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Three retrained studies (a table, an .npz of rows, a folder of 8x8 images) in one database."""
    home = tmp_path_factory.mktemp("studies")
    url = f"sqlite:///{home}/studies.db"
    _pets().to_csv(home / "pets.csv", index=False)
    rng = np.random.default_rng(1)
    np.savez(home / "rows.npz", X=rng.normal(size=(60, 4)), y=np.arange(60) % 3)
    _pictures(home / "pics")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NUMPY_HPSEARCH_CACHE", str(home / "cache"))
        for study, data in (("pets", "pets.csv"), ("rows", "rows.npz"), ("pics", "pics")):
            assert main(["run", "--study", study, "--data", str(home / data), *FAST, "--storage", url]) == 0
            assert main(["best", "--study", study, "--retrain", "--storage", url]) == 0
    return home, url


@st.composite
def table_inputs(draw: st.DrawFn) -> Input:
    """Rows in the pets study's columns, then changed as people change them; or any table at all."""
    if draw(st.integers(0, 3)) == 0:
        return draw(tables())
    frame = _pets(draw(st.integers(1, 30)), draw(st.integers(0, 1000))).astype(object)
    for _ in range(draw(st.just(0) | st.just(0) | st.integers(0, 3))):
        row = draw(st.integers(0, len(frame) - 1))
        column = draw(st.sampled_from(list(frame.columns)))
        frame.loc[row, column] = draw(st.sampled_from(["abc", "", "?", "1e308", "-1e300", "inf", "purple", "7",
                                                       "nan", "class_zzz", " 2.5 ", "True"]))
    for column in draw(st.just([]) | st.lists(st.sampled_from(["height", "weight", "colour", "label"]), max_size=2)):
        frame = frame.drop(columns=column) if column in frame.columns else frame
    if draw(st.booleans()):
        frame["extra"] = 1
    text = frame.to_csv(index=False, sep=draw(st.sampled_from([",", ";", "\t"])))
    data = text.encode(draw(st.sampled_from(["utf-8", "utf-16", "cp1252"])), errors="replace")
    if draw(st.integers(0, 4)) == 0:
        data = damage(draw, data)
    return Input(b"new.csv", data=data)


@st.composite
def npz_inputs(draw: st.DrawFn) -> Input:
    if draw(st.integers(0, 2)) == 0:
        return draw(npz_files())
    rng = np.random.default_rng(draw(st.integers(0, 1000)))
    n = draw(st.integers(1, 20) | st.integers(0, 2))
    width = draw(st.just(4) | st.sampled_from([4, 3, 5]))
    X = rng.normal(size=(n, width)) * draw(st.just(1.0) | st.sampled_from([1.0, 1e30, 1e300]))
    if n and draw(st.integers(0, 5)) == 0:
        X[draw(st.integers(0, n - 1)), 0] = draw(st.sampled_from([np.nan, np.inf, 1e308]))
    with np.errstate(all="ignore"):
        X = X.astype(draw(st.sampled_from(["f8", "f4", "i8"])))
    arrays = {draw(st.sampled_from(["X", "x", "data", "x_test"])): X}
    if draw(st.booleans()):
        arrays["y"] = rng.integers(0, draw(st.just(3) | st.just(4)), n)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return Input(b"new.npz", data=buffer.getvalue())


@st.composite
def image_inputs(draw: st.DrawFn) -> Input:
    if draw(st.integers(0, 3)) == 0:
        return draw(image_folders())
    size = draw(st.sampled_from([(8, 8), (8, 8), (8, 8), (7, 8), (1, 1)]))
    mode = draw(st.sampled_from(["L", "RGB", "I;16", "P", "RGBA"]))
    data = image_bytes(mode, size, draw(st.sampled_from(["png", "jpg", "bmp"])), draw(st.integers(0, 100)))
    if draw(st.integers(0, 4)) == 0:
        data = damage(draw, data)
    if draw(st.booleans()):
        return Input(b"one.png", data=data)
    flat = tuple(Entry((b"%d.png" % i,), "file", data) for i in range(draw(st.integers(0, 4))))  # to predict
    return Input(b"new", flat, folder=True)


@pytest.mark.parametrize("profile", PROFILES)
def test_predict_on_any_input_predicts_or_refuses_in_one_line_changing_nothing(profile, capsys, studies) -> None:
    home, url = studies
    seen: collections.Counter[str] = collections.Counter()
    study_files = tree(home)

    @examples(profile, 40, 450)
    @given(st.one_of(st.tuples(st.just("pets"), table_inputs()), st.tuples(st.just("rows"), npz_inputs()),
                     st.tuples(st.just("pics"), image_inputs())),
           st.lists(st.sampled_from([["--unseen", "ignore"], ["--non-numeric", "missing"]]), max_size=2))
    def check(case: tuple[str, Input], flags: list[list[str]]) -> None:
        study, inp = case
        with tempfile.TemporaryDirectory() as d:
            work = Path(d)
            path = inp.write(work)
            before = tree(work)
            capsys.readouterr()
            code = main(["predict", "--study", study, str(path), "--out", str(work / "p.csv"),
                         *[f for pair in flags for f in pair], "--storage", url])
            _, err = capsys.readouterr()
            if code == 0:
                assert len(pd.read_csv(work / "p.csv")) >= 1
                seen[f"{study} predicted"] += 1
            else:
                assert code == 2, err
                refusal(err.strip(), path)
                assert tree(work) == before
                seen[f"{study} refused"] += 1
        assert tree(home) == study_files

    check()
    print(f"predict: {dict(sorted(seen.items()))}")
