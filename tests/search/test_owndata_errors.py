"""Bad data files of one's own (issue 18, section 3): one line, exit code 2, no database written.

Each test writes the bad file itself, drives the CLI in process through
``main(argv)`` and checks, with ``refused`` from test_cli_errors, that stderr
is one ``error: `` line naming the file, column or key, and that nothing in
the test's folder changed: no study database, no cache entry.
"""

from __future__ import annotations

import pathlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from search.cli import main
from tests.search.test_cli_errors import refused

PIL = pytest.importorskip("PIL.Image")


def write_table(path: Path, n: int = 60, seed: int = 0) -> pd.DataFrame:
    """``n`` rows, 3 string classes, two numeric features and one text feature, the label last."""
    rng = np.random.default_rng(seed)
    label = np.array(["cat", "dog", "fox"])[np.arange(n) % 3]
    frame = pd.DataFrame({
        "height": rng.normal(size=n).round(3) + (np.arange(n) % 3),
        "weight": rng.normal(size=n).round(3),
        "colour": np.array(["red", "green", "blue"])[rng.integers(0, 3, n)],
        "label": label,
    })
    frame.to_csv(path, index=False)
    return frame


def write_images(root: Path, sizes: dict[str, tuple[int, int]], per_class: int = 6, seed: int = 0) -> Path:
    """``root/<class>/<i>.png``: grayscale images of each class's size, brighter by class."""
    rng = np.random.default_rng(seed)
    for k, (name, (h, w)) in enumerate(sizes.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = np.clip(rng.integers(0, 80, (h, w)) + 80 * k, 0, 255).astype(np.uint8)
            PIL.fromarray(pixels, mode="L").save(root / name / f"{i}.png")
    return root


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The study database's URL in the test's folder; the array cache there too, so nothing leaks."""
    monkeypatch.setenv("NUMPY_HPSEARCH_CACHE", str(tmp_path / "cache"))
    return f"sqlite:///{tmp_path}/x.db"


def run_refused(capsys, tmp_path: Path, url: str, data: Path | str, *flags_and_needles) -> str:
    """``run --data data *flags`` is refused naming every needle, and leaves no database behind."""
    flags = [f for f in flags_and_needles if isinstance(f, list)]
    needles = [n for n in flags_and_needles if isinstance(n, str)]
    argv = ["run", "--data", str(data), *(flags[0] if flags else []), "--trials", "1", "--epochs", "1",
            "--jobs", "1", "--no-progress", "--storage", url]
    err = refused(capsys, argv, tmp_path, *needles)
    assert not (tmp_path / "x.db").exists()
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
    return err


# --- tables ---------------------------------------------------------------------------------------


def test_a_missing_file_is_refused_by_its_name(capsys, tmp_path, url) -> None:
    run_refused(capsys, tmp_path, url, tmp_path / "nowhere.csv", "nowhere.csv", "no such file")


def test_a_ragged_csv_is_refused_naming_the_line_with_more_fields(capsys, tmp_path, url) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("a,b,label\n1,2,x\n3,4,y\n5,6,7,x\n7,8,y\n")
    run_refused(capsys, tmp_path, url, path, "ragged.csv", "line 4")


def test_a_csv_that_is_not_text_is_refused(capsys, tmp_path, url) -> None:
    path = tmp_path / "binary.csv"
    path.write_bytes(b"a,b,label\n" + bytes(range(128, 256)) * 4 + b"\n1,2,x\n")
    run_refused(capsys, tmp_path, url, path, "binary.csv")


def test_a_target_column_that_does_not_exist_is_refused_listing_the_columns(capsys, tmp_path, url) -> None:
    path = tmp_path / "t.csv"
    write_table(path)
    run_refused(capsys, tmp_path, url, path, ["--target", "species"],
                "t.csv", "'species'", "'height'", "'weight'", "'colour'", "'label'")


def test_a_table_with_a_single_class_is_refused(capsys, tmp_path, url) -> None:
    path = tmp_path / "one.csv"
    frame = write_table(path)
    frame.assign(label="cat").to_csv(path, index=False)
    run_refused(capsys, tmp_path, url, path, "one.csv", "the label 'cat';", "two classes")


def test_a_class_with_too_few_rows_to_stratify_is_refused_naming_it(capsys, tmp_path, url) -> None:
    path = tmp_path / "rare.csv"
    frame = write_table(path)
    frame.loc[[0, 1], "label"] = "owl"  # two rows: one for training, none left for validation or test
    frame.to_csv(path, index=False)
    run_refused(capsys, tmp_path, url, path, "rare.csv", "too few rows to stratify", "'owl' (2 rows)")


def test_missing_values_under_refuse_are_refused_naming_lines_and_columns(capsys, tmp_path, url) -> None:
    path = tmp_path / "holes.csv"
    frame = write_table(path)
    frame.loc[2, "weight"] = np.nan  # line 4 of the file (the header is line 1)
    frame.loc[[5, 9], "colour"] = np.nan  # lines 7 and 11
    frame.to_csv(path, index=False)
    err = run_refused(capsys, tmp_path, url, path, ["--missing", "refuse"], "holes.csv", "3 missing values",
                      "column 'weight': lines 4", "column 'colour': lines 7, 11")
    assert "'height'" not in err


def test_inf_in_a_csv_feature_is_refused_naming_the_column_and_line(capsys, tmp_path, url) -> None:
    path = tmp_path / "inf.csv"
    frame = write_table(path).astype({"height": object})
    frame.loc[3, "height"] = "inf"
    frame.to_csv(path, index=False)
    run_refused(capsys, tmp_path, url, path, "inf.csv", "infinite", "'height'", "lines 5")


# --- .npz -----------------------------------------------------------------------------------------


def npz_rows(n: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)), np.arange(n) % 3


def test_nan_in_an_npz_is_refused_with_counts(capsys, tmp_path, url) -> None:
    X, y = npz_rows()
    X[[1, 4], 2] = np.nan
    X[4, 0] = np.nan
    np.savez(tmp_path / "nan.npz", X=X, y=y)
    run_refused(capsys, tmp_path, url, tmp_path / "nan.npz", "nan.npz", "'X'", "3 NaN", "in 2 rows")


def test_features_and_labels_of_different_lengths_are_refused(capsys, tmp_path, url) -> None:
    X, y = npz_rows()
    np.savez(tmp_path / "short.npz", X=X, y=y[:-1])
    run_refused(capsys, tmp_path, url, tmp_path / "short.npz", "short.npz", "'X' has 30 rows", "'y' has 29")


def test_an_npz_whose_keys_match_no_convention_is_refused_listing_its_keys(capsys, tmp_path, url) -> None:
    X, y = npz_rows()
    np.savez(tmp_path / "odd.npz", features=X, classes=y)
    run_refused(capsys, tmp_path, url, tmp_path / "odd.npz", "odd.npz", "features, classes", "--x-key")


def test_x_and_y_keys_that_are_not_in_the_npz_are_refused_listing_its_keys(capsys, tmp_path, url) -> None:
    X, y = npz_rows()
    np.savez(tmp_path / "odd.npz", features=X, classes=y)
    run_refused(capsys, tmp_path, url, tmp_path / "odd.npz", ["--x-key", "features", "--y-key", "kind"],
                "odd.npz", "features, classes", "not found: kind")


class _Tripwire:
    """Unpickling it creates a file: proof that the loader unpickled the user's array."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def test_an_npz_holding_an_object_array_is_refused_without_unpickling_it(capsys, tmp_path, url) -> None:
    marker = tmp_path / "unpickled"
    X = np.empty((30, 2), dtype=object)
    X[:] = 1.0
    X[0, 0] = _Tripwire(marker)
    np.savez(tmp_path / "objects.npz", X=X, y=np.arange(30) % 3)  # savez pickles object arrays
    run_refused(capsys, tmp_path, url, tmp_path / "objects.npz", "objects.npz", "'X'", "Python objects")
    assert not marker.exists()


# --- image folders --------------------------------------------------------------------------------


def test_an_image_folder_with_no_images_is_refused(capsys, tmp_path, url) -> None:
    for name in ("a", "b"):
        (tmp_path / "pics" / name).mkdir(parents=True)
        (tmp_path / "pics" / name / "notes.txt").write_text("not an image")
    run_refused(capsys, tmp_path, url, tmp_path / "pics", "pics", "no images found")


def test_images_of_mixed_sizes_are_refused_naming_two_of_them(capsys, tmp_path, url) -> None:
    root = write_images(tmp_path / "pics", {"a": (8, 8), "b": (10, 12)})
    run_refused(capsys, tmp_path, url, root, "pics", "a/0.png is 8x8", "b/0.png is 10x12", "--image-size")


def test_images_of_mixed_sizes_are_searched_once_resized_with_image_size(capsys, tmp_path, url) -> None:
    root = write_images(tmp_path / "pics", {"a": (8, 8), "b": (10, 12), "c": (16, 16)})
    code = main(["run", "--data", str(root), "--image-size", "8x8", "--trials", "1", "--epochs", "1",
                 "--finalists", "0", "--jobs", "1", "--no-progress", "--storage", url])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "8x8 images, 64 features, 3 classes" in out
    assert (tmp_path / "x.db").exists()


def test_a_corrupt_image_is_refused_by_its_name(capsys, tmp_path, url) -> None:
    root = write_images(tmp_path / "pics", {"a": (8, 8), "b": (8, 8)})
    (root / "b" / "broken.png").write_bytes(b"\x89PNG not really" + bytes(range(256)))
    run_refused(capsys, tmp_path, url, root, "broken.png", "not a readable image")


# --- memory ---------------------------------------------------------------------------------------


def test_a_table_over_the_available_memory_is_refused_before_it_is_read(capsys, tmp_path, url,
                                                                         monkeypatch) -> None:
    import model.datasets.memory as memory

    monkeypatch.setattr(memory, "available_memory", lambda: 1000)
    write_table(tmp_path / "big.csv")
    monkeypatch.setattr(pd, "read_csv", lambda *a, **k: pytest.fail("read the table it had refused"))
    run_refused(capsys, tmp_path, url, tmp_path / "big.csv", "big.csv", "memory")


def test_an_npz_over_the_available_memory_is_refused_before_it_is_read(capsys, tmp_path, url, monkeypatch) -> None:
    import model.datasets.memory as memory

    monkeypatch.setattr(memory, "available_memory", lambda: 1000)
    np.savez(tmp_path / "big.npz", X=np.zeros((100, 10)), y=np.arange(100) % 2)
    run_refused(capsys, tmp_path, url, tmp_path / "big.npz", "big.npz", "memory")


def test_an_image_folder_over_the_available_memory_is_refused(capsys, tmp_path, url, monkeypatch) -> None:
    import model.datasets.memory as memory

    monkeypatch.setattr(memory, "available_memory", lambda: 10000)  # the files fit; their pixels do not
    root = write_images(tmp_path / "pics", {"a": (8, 8), "b": (8, 8)})
    run_refused(capsys, tmp_path, url, root, "pics", "memory", "--image-size")


# --- flags that do not go together ----------------------------------------------------------------


def test_a_built_in_dataset_and_a_data_file_together_are_refused(capsys, tmp_path, url) -> None:
    write_table(tmp_path / "x.csv")
    refused(capsys, ["run", "--dataset", "digits", "--data", str(tmp_path / "x.csv"), "--storage", url],
            tmp_path, "--data", "--dataset")
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize("flag, value", [("--target", "label"), ("--x-key", "X"), ("--image-size", "8x8")])
def test_file_reading_flags_with_a_built_in_dataset_are_refused(capsys, tmp_path, url, flag, value) -> None:
    refused(capsys, ["run", "--dataset", "digits", flag, value, "--storage", url], tmp_path,
            flag, "digits", "--data")
    assert not (tmp_path / "x.db").exists()


def test_an_image_size_that_is_not_h_by_w_is_refused(capsys, tmp_path, url) -> None:
    root = write_images(tmp_path / "pics", {"a": (8, 8), "b": (8, 8)})
    run_refused(capsys, tmp_path, url, root, ["--image-size", "eight"], "'eight'", "HxW")


# --- predict --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def table_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, pd.DataFrame]:
    """A finished, retrained study on a 60-row CSV (3 classes, a text column), and one never retrained."""
    home = tmp_path_factory.mktemp("table-study")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NUMPY_HPSEARCH_CACHE", str(home / "cache"))
        frame = write_table(home / "pets.csv")
        url = f"sqlite:///{home}/study.db"
        common = ["--data", str(home / "pets.csv"), "--finalists", "0", "--jobs", "1", "--no-progress",
                  "--storage", url]
        assert main(["run", "--study", "pets", "--trials", "3", "--epochs", "2", *common]) == 0
        assert main(["best", "--study", "pets", "--retrain", "--storage", url]) == 0
        assert main(["run", "--study", "fresh", "--trials", "1", "--epochs", "1", *common]) == 0
    return home, url, frame


@pytest.fixture(scope="module")
def image_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A finished, retrained study on a folder of 8x8 grayscale PNGs, 3 classes."""
    home = tmp_path_factory.mktemp("image-study")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NUMPY_HPSEARCH_CACHE", str(home / "cache"))
        root = write_images(home / "pics", {"a": (8, 8), "b": (8, 8), "c": (8, 8)})
        url = f"sqlite:///{home}/study.db"
        assert main(["run", "--study", "pics", "--data", str(root), "--trials", "2", "--epochs", "1",
                     "--finalists", "0", "--jobs", "1", "--no-progress", "--storage", url]) == 0
        assert main(["best", "--study", "pics", "--retrain", "--storage", url]) == 0
    return home, url


def test_predict_with_a_study_never_retrained_says_what_to_run(capsys, table_study, tmp_path) -> None:
    home, url, frame = table_study
    capsys.readouterr()
    frame.to_csv(tmp_path / "new.csv", index=False)
    refused(capsys, ["predict", "--study", "fresh", str(tmp_path / "new.csv"), "--out", str(tmp_path / "p.csv"),
                     "--storage", url], home, "'fresh'", "python -m search best --study fresh --retrain")
    assert not (tmp_path / "p.csv").exists()


def test_predict_on_a_csv_missing_a_column_names_the_column(capsys, table_study, tmp_path) -> None:
    home, url, frame = table_study
    capsys.readouterr()
    frame.drop(columns=["weight"]).to_csv(tmp_path / "new.csv", index=False)
    refused(capsys, ["predict", "--study", "pets", str(tmp_path / "new.csv"), "--out", str(tmp_path / "p.csv"),
                     "--storage", url], home, "'weight'")
    assert not (tmp_path / "p.csv").exists()


def test_predict_on_an_unseen_category_names_it_and_ignores_it_when_asked(capsys, table_study, tmp_path) -> None:
    home, url, frame = table_study
    capsys.readouterr()
    new = frame.head(7).drop(columns=["label"])
    new.loc[4, "colour"] = "purple"
    new.to_csv(tmp_path / "new.csv", index=False)
    argv = ["predict", "--study", "pets", str(tmp_path / "new.csv"), "--out", str(tmp_path / "p.csv"),
            "--storage", url]
    refused(capsys, argv, home, "'colour'", "'purple'", "--unseen ignore")
    assert not (tmp_path / "p.csv").exists()

    assert main([*argv, "--unseen", "ignore"]) == 0, capsys.readouterr().err
    out = pd.read_csv(tmp_path / "p.csv")
    assert len(out) == 7
    assert list(out.columns) == ["predicted", "p_cat", "p_dog", "p_fox"]
    assert set(out["predicted"]) <= {"cat", "dog", "fox"}
    np.testing.assert_allclose(out[["p_cat", "p_dog", "p_fox"]].sum(axis=1), 1.0, atol=1e-5)


def test_predict_on_images_of_another_size_names_both_sizes(capsys, image_study, tmp_path) -> None:
    home, url = image_study
    capsys.readouterr()
    root = write_images(tmp_path / "new", {"a": (10, 10), "b": (10, 10)}, per_class=2)
    argv = ["predict", "--study", "pics", str(root), "--out", str(tmp_path / "p.csv"), "--storage", url]
    err = refused(capsys, argv, home, "(10, 10)", "(8, 8)")
    assert "--image-size" not in err  # predict has no such flag: the study's size is fixed
    assert not (tmp_path / "p.csv").exists()
