"""Issue 26: every input gets one answer, a study or one line naming the file, and never stale data.

One test per case the issue lists (each failed before the reading boundary,
the shared file walk and the staged memory checks), driven through the CLI in
process with ``main(argv)``: a refusal is one ``error:`` line naming the file,
exit code 2, and the test's folder byte for byte as before (``refused``).
"""

from __future__ import annotations

import gzip
import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model.datasets import DatasetError, FileSource, load_file
from search.cli import main
from tests.search.test_cli_errors import refused, snapshot
from tests.search.test_owndata_errors import run_refused, write_images, write_table

PIL = pytest.importorskip("PIL.Image")

FAST = ["--trials", "1", "--epochs", "1", "--finalists", "0", "--jobs", "1", "--no-progress"]


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("NUMPY_HPSEARCH_CACHE", str(tmp_path / "cache"))
    return f"sqlite:///{tmp_path}/x.db"


def lower_ceiling(monkeypatch: pytest.MonkeyPatch, available: int) -> None:
    """The memory the readers believe is available: ``available`` bytes (the modules that ask)."""
    import importlib

    for name in ("model.datasets.memory", "model.datasets.filesource", "model.datasets.imagefolder"):
        try:
            module = importlib.import_module(name)
        except ImportError:  # the module of another version of the readers
            continue
        if hasattr(module, "available_memory"):
            monkeypatch.setattr(module, "available_memory", lambda: available)


def ran(capsys, argv: list[str]) -> tuple[str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    return out, err


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header says ``width`` x ``height`` and whose pixels were never written (a bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


# --- 1, 2, 4: shapes that cannot train ------------------------------------------------------------


def test_a_csv_with_only_its_header_line_is_refused(capsys, tmp_path, url) -> None:
    (tmp_path / "head.csv").write_text("a,b,label\n")
    run_refused(capsys, tmp_path, url, tmp_path / "head.csv", "head.csv", "no rows")


def test_an_npz_with_zero_rows_is_refused(capsys, tmp_path, url) -> None:
    np.savez(tmp_path / "empty.npz", X=np.zeros((0, 4)), y=np.zeros(0, dtype=np.int64))
    run_refused(capsys, tmp_path, url, tmp_path / "empty.npz", "empty.npz", "'X'", "no rows")


def test_an_npz_whose_features_have_zero_columns_is_refused(capsys, tmp_path, url) -> None:
    np.savez(tmp_path / "narrow.npz", X=np.zeros((30, 0)), y=np.arange(30) % 3)
    run_refused(capsys, tmp_path, url, tmp_path / "narrow.npz", "narrow.npz", "'X'", "(30, 0)", "no values")


def test_an_npz_of_images_with_no_pixels_is_refused_before_anything_is_written(capsys, tmp_path, url) -> None:
    np.savez(tmp_path / "flat.npz", images=np.zeros((178, 0, 8), dtype=np.uint8), labels=np.arange(178) % 3)
    err = run_refused(capsys, tmp_path, url, tmp_path / "flat.npz", "flat.npz", "(178, 0, 8)", "no values")
    assert "warning" not in err.lower()


# --- 3: decompression bombs -----------------------------------------------------------------------


def test_a_png_decompression_bomb_in_a_class_folder_is_refused_by_name(capsys, tmp_path, url) -> None:
    root = write_images(tmp_path / "pics", {"a": (8, 8), "b": (8, 8)})
    png_header_only(root / "b" / "bomb.png", 20000, 20000)
    run_refused(capsys, tmp_path, url, root, "bomb.png", "MAX_IMAGE_PIXELS")


def test_an_image_over_pillows_pixel_limit_is_refused_not_decoded(capsys, tmp_path, url, monkeypatch) -> None:
    monkeypatch.setattr(PIL, "MAX_IMAGE_PIXELS", 1000)  # over it Pillow only warns; twice over, it raises
    root = write_images(tmp_path / "pics", {"a": (8, 8), "b": (8, 8)})
    PIL.fromarray(np.zeros((40, 40), dtype=np.uint8)).save(root / "b" / "big.png")  # 1600 pixels
    run_refused(capsys, tmp_path, url, root, "big.png", "MAX_IMAGE_PIXELS")


# --- 5 and 10: what is hashed is what is read -----------------------------------------------------


def test_a_class_folder_that_is_a_link_is_hashed_through_the_link(capsys, tmp_path, url) -> None:
    elsewhere = write_images(tmp_path / "elsewhere", {"b": (8, 8)}, seed=1)
    root = write_images(tmp_path / "pics", {"a": (8, 8), "c": (8, 8)})
    (root / "b").symlink_to(elsewhere / "b", target_is_directory=True)
    argv = ["run", "--study", "linked", "--data", str(root), *FAST, "--storage", url]
    out, _ = ran(capsys, argv)
    assert "3 classes" in out
    PIL.fromarray(np.full((8, 8), 255, dtype=np.uint8)).save(elsewhere / "b" / "0.png")  # behind the link
    refused(capsys, [*argv[:-2], "--trials", "2", "--storage", url], tmp_path, "pics", "has changed")
    refused(capsys, ["best", "--study", "linked", "--retrain", "--storage", url], tmp_path, "pics", "has changed")


def test_a_file_the_reader_skips_changes_nothing_and_one_it_reads_changes_the_digest(capsys, tmp_path, url) -> None:
    root = write_images(tmp_path / "pics", {"a": (8, 8), "b": (8, 8)})
    argv = ["run", "--study", "pics", "--data", str(root), *FAST, "--storage", url]
    ran(capsys, argv)
    (root / "a" / "Thumbs.db").write_bytes(os.urandom(512))  # Windows' thumbnail cache: not an image
    (root / "b" / ".DS_Store").write_bytes(os.urandom(64))
    (root / "notes.txt").write_text("where the pictures came from")
    ran(capsys, [*argv[:-2], "--trials", "2", "--storage", url])  # the same data: the study goes on
    PIL.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(root / "a" / "new.png")
    refused(capsys, [*argv[:-2], "--trials", "3", "--storage", url], tmp_path, "pics", "has changed")


def test_a_folder_link_that_loops_back_is_refused_by_name(capsys, tmp_path, url) -> None:
    root = write_images(tmp_path / "pics", {"a": (8, 8), "b": (8, 8)})
    (root / "a" / "again").symlink_to(root, target_is_directory=True)
    run_refused(capsys, tmp_path, url, root, "again", "link back")


def test_a_fifo_among_the_images_is_refused_without_waiting_for_a_writer(capsys, tmp_path, url) -> None:
    root = write_images(tmp_path / "pics", {"a": (8, 8), "b": (8, 8)})
    os.mkfifo(root / "a" / "pipe.png")
    run_refused(capsys, tmp_path, url, root, "pipe.png", "FIFO")


# --- 6: the memory check, from what is read --------------------------------------------------------


def gzip_members(path: Path, *members: bytes) -> Path:
    path.write_bytes(b"".join(gzip.compress(m, compresslevel=1) for m in members))
    return path


def test_a_gzip_of_several_members_is_counted_whole(capsys, tmp_path, url, monkeypatch) -> None:
    lower_ceiling(monkeypatch, 8 << 20)
    rows = b"a,b,label\n" + b"1.25,2.5,x\n3.75,4.5,y\n" * 200_000  # 4.6 MB of text in the first member
    gzip_members(tmp_path / "rows.csv.gz", rows, b"5,6,x\n")  # the size field says 6 bytes
    run_refused(capsys, tmp_path, url, tmp_path / "rows.csv.gz", "rows.csv.gz", "decompressed", "memory",
                "are available")


def test_a_gzip_of_nul_bytes_is_refused_as_it_streams(capsys, tmp_path, url, monkeypatch) -> None:
    lower_ceiling(monkeypatch, 8 << 20)
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    (tmp_path / "nul.csv.gz").write_bytes(b"".join(packer.compress(zeros) for _ in range(64)) + packer.flush())
    run_refused(capsys, tmp_path, url, tmp_path / "nul.csv.gz", "nul.csv.gz", "memory", "are available")


def test_images_that_differ_in_size_are_refused_from_their_headers_before_decoding(capsys, tmp_path, url) -> None:
    root = write_images(tmp_path / "pics", {"a": (8, 8), "b": (8, 8)})
    for i in range(24):  # 9000 x 9000 each by their headers; their pixels were never written
        png_header_only(root / "b" / f"z{i:02d}.png", 9000, 9000)
    run_refused(capsys, tmp_path, url, root, "differ in size", "a/0.png is 8x8", "b/z00.png is 9000x9000")


def test_an_image_folder_whose_pixels_exceed_memory_says_how_much(capsys, tmp_path, url, monkeypatch) -> None:
    lower_ceiling(monkeypatch, 4 << 20)
    root = write_images(tmp_path / "pics", {"a": (8, 8), "b": (8, 8)}, per_class=3)
    run_refused(capsys, tmp_path, url, root, ["--image-size", "300x300"], "pics", "6 images of 300x300",
                "needs about", "are available", "--image-size")


# --- 8: values whose scale overflows ----------------------------------------------------------------


@pytest.mark.parametrize("scale", [1e163, 1e305])
def test_huge_finite_values_are_made_safe_and_train(capsys, tmp_path, url, scale) -> None:
    frame = write_table(tmp_path / "huge.csv")
    frame["height"] = frame["height"] * scale
    frame.to_csv(tmp_path / "huge.csv", index=False)
    data = load_file(FileSource(str(tmp_path / "huge.csv")), cache_dir=tmp_path / "cache")
    for X in (data.X_train, data.X_val, data.X_test):
        assert np.isfinite(X).all()
    assert abs(float(data.X_train[:, 0].mean())) < 1  # centred: the column kept its information
    out, err = ran(capsys, ["run", "--data", str(tmp_path / "huge.csv"), *FAST, "--storage", url])
    assert re.search(r"^best\s+trial 0: .*val loss [0-9.]+", out, re.M), out  # not "best -": a number
    assert "Warning" not in err


def test_huge_values_in_an_npz_become_finite_rows(tmp_path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3)) * np.array([1.0, 1e305, 1e163])
    np.savez(tmp_path / "huge.npz", X=X, y=np.arange(60) % 3)
    data = load_file(FileSource(str(tmp_path / "huge.npz")), cache_dir=tmp_path / "cache")
    assert np.isfinite(data.X_train).all() and np.isfinite(data.X_test).all()
    assert 0.3 < float(data.X_train[:, 1].std()) < 3


def test_values_beyond_float32_without_normalization_are_refused_naming_the_feature(tmp_path) -> None:
    X = np.random.default_rng(0).normal(size=(60, 3)) * np.array([1.0, 1e305, 1.0])
    np.savez(tmp_path / "raw.npz", X=X, y=np.arange(60) % 3)
    with pytest.raises(DatasetError, match=r"raw\.npz: feature 1 holds values beyond float32"):
        load_file(FileSource(str(tmp_path / "raw.npz")), normalization="none", cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


# --- 10: the smaller ones ---------------------------------------------------------------------------


def test_a_table_whose_only_feature_numbers_the_rows_says_so(capsys, tmp_path, url) -> None:
    pd.DataFrame({"label": list("xyz") * 10}).to_csv(tmp_path / "ids.csv")  # the index: 0..29, unnamed
    run_refused(capsys, tmp_path, url, tmp_path / "ids.csv", "ids.csv", "no feature column", "numbers the rows")


def test_more_than_a_thousand_classes_are_refused_as_such(capsys, tmp_path, url) -> None:
    n = 1001
    pd.DataFrame({"x": np.arange(3 * n) % 7, "label": [f"c{i % n}" for i in range(3 * n)]}).to_csv(
        tmp_path / "many.csv", index=False)
    err = run_refused(capsys, tmp_path, url, tmp_path / "many.csv", "many.csv", "1001 classes", "at most 1000")
    assert "regression" not in err


def test_repeated_column_names_are_refused_naming_the_name(capsys, tmp_path, url) -> None:
    (tmp_path / "dup.csv").write_text("alcohol,alcohol,label\n" + "".join(f"{i},{i % 5},{'xyz'[i % 3]}\n"
                                                                        for i in range(30)))
    run_refused(capsys, tmp_path, url, tmp_path / "dup.csv", "dup.csv", "must be unique", "'alcohol'")


@pytest.mark.parametrize("encoding", ["utf-16", "latin-1", "utf-8-sig"])
def test_a_csv_in_another_encoding_reads_as_its_utf8_twin(capsys, tmp_path, encoding) -> None:
    frame = write_table(tmp_path / "plain.csv")
    frame["colour"] = frame["colour"].map({"red": "rouge", "green": "vert clair", "blue": "bleu été"})
    frame.to_csv(tmp_path / "plain.csv", index=False)
    frame.to_csv(tmp_path / "other.csv", index=False, encoding=encoding)
    plain = load_file(FileSource(str(tmp_path / "plain.csv")), cache_dir=tmp_path / "cache")
    other = load_file(FileSource(str(tmp_path / "other.csv")), cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(plain.X_train, other.X_train)
    assert plain.record["preprocessing"] == other.record["preprocessing"]
    if encoding == "latin-1":
        assert "read as Windows-1252 text: it is not UTF-8" in other.record["notes"]


def test_bytes_that_are_no_known_text_are_refused_naming_line_and_byte(capsys, tmp_path, url) -> None:
    (tmp_path / "odd.csv").write_bytes(b"a,b,label\n1,2,x\n3,\x81\x8d,y\n")  # undefined in UTF-8 and Windows-1252
    run_refused(capsys, tmp_path, url, tmp_path / "odd.csv", "odd.csv", "line 3, byte 3", "0x81", "UTF-8")


# --- predict: 7, 9, unseen labels, outputs ----------------------------------------------------------


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, pd.DataFrame]:
    """A retrained study on a 60-row CSV whose 'weight' column had a '?' for unknown."""
    home = tmp_path_factory.mktemp("retrained")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NUMPY_HPSEARCH_CACHE", str(home / "cache"))
        frame = write_table(home / "pets.csv").astype({"weight": object})
        frame.loc[4, "weight"] = "?"
        frame.to_csv(home / "pets.csv", index=False)
        url = f"sqlite:///{home}/study.db"
        assert main(["run", "--study", "pets", "--data", str(home / "pets.csv"), "--trials", "2", "--epochs", "1",
                     "--finalists", "0", "--jobs", "1", "--no-progress", "--storage", url]) == 0
        assert main(["best", "--study", "pets", "--retrain", "--storage", url]) == 0
    return home, url, frame


def predict_argv(url: str, path: Path, *more: str) -> list[str]:
    return ["predict", "--study", "pets", str(path), *more, "--storage", url]


def test_predict_refuses_text_in_a_numeric_column_naming_column_and_lines(capsys, study, tmp_path) -> None:
    home, url, frame = study
    capsys.readouterr()
    new = frame.head(8).drop(columns=["label"]).astype({"height": object})
    new.loc[[2, 5], "height"] = ["abc", "n.a."]
    new.loc[3, "weight"] = "?"  # the study's own token for unknown: a missing number, as in training
    new.to_csv(tmp_path / "new.csv", index=False)
    refused(capsys, predict_argv(url, tmp_path / "new.csv", "--out", str(tmp_path / "p.csv")), tmp_path,
            "new.csv", "column 'height'", "'abc'", "lines 4, 7", "--non-numeric missing")
    ran(capsys, predict_argv(url, tmp_path / "new.csv", "--out", str(tmp_path / "p.csv"), "--non-numeric", "missing"))
    assert len(pd.read_csv(tmp_path / "p.csv")) == 8


def test_predict_names_an_unseen_label_as_text(capsys, study, tmp_path) -> None:
    home, url, frame = study
    capsys.readouterr()
    new = frame.head(6).copy()
    new.loc[2, "label"] = "class_zzz"
    new.to_csv(tmp_path / "new.csv", index=False)
    err = refused(capsys, predict_argv(url, tmp_path / "new.csv"), tmp_path, "new.csv", "'class_zzz'")
    assert "np.str_" not in err


def test_predict_works_after_the_studys_data_file_was_moved(capsys, study, tmp_path) -> None:
    home, url, frame = study
    capsys.readouterr()
    frame.head(5).drop(columns=["label"]).to_csv(tmp_path / "new.csv", index=False)
    (home / "pets.csv").rename(home / "moved.csv")
    try:
        out, _ = ran(capsys, predict_argv(url, tmp_path / "new.csv"))
    finally:
        (home / "moved.csv").rename(home / "pets.csv")
    assert out.count("\n") == 6  # the header and five rows


@pytest.mark.parametrize("which", ["input", "data", "database", "link to the data"])
def test_predict_never_replaces_a_file_it_reads(capsys, study, tmp_path, which) -> None:
    home, url, frame = study
    capsys.readouterr()
    frame.head(5).drop(columns=["label"]).to_csv(tmp_path / "new.csv", index=False)
    out = {"input": tmp_path / "new.csv", "data": home / "pets.csv", "database": home / "study.db",
           "link to the data": tmp_path / "link.csv"}[which]
    if which == "link to the data":
        out.symlink_to(home / "pets.csv")
    before = snapshot(home)
    refused(capsys, predict_argv(url, tmp_path / "new.csv", "--out", str(out)), tmp_path, "--out", "reads")
    assert snapshot(home) == before


# --- the test rows: the file and --test-seed alone ---------------------------------------------------


def test_which_rows_are_held_out_depends_on_the_file_and_test_seed_alone(capsys, tmp_path, url) -> None:
    from search.study.dataref import DataRef
    from search.study.spec import build_spec

    path = str(tmp_path / "pets.csv")
    write_table(tmp_path / "pets.csv")
    tests = {}
    for name, flags in {"a": {"seed": 1}, "b": {"seed": 2}, "c": {"seed": 1, "test_seed": 3}}.items():
        spec = build_spec(name, None, {"data": path, **flags})
        tests[name] = DataRef.of(spec).load().X_test
    np.testing.assert_array_equal(tests["a"], tests["b"])  # another --seed: the same rows scored
    assert tests["a"].shape == tests["c"].shape and not np.array_equal(tests["a"], tests["c"])


def test_two_studies_under_different_seeds_score_their_final_networks_on_the_same_rows(capsys, tmp_path,
                                                                                        url) -> None:
    path = tmp_path / "pets.csv"
    write_table(path)
    for study, more in (("s1", ["--seed", "1"]), ("s2", ["--seed", "2"]), ("t3", ["--test-seed", "3"])):
        ran(capsys, ["run", "--study", study, "--data", str(path), *FAST, *more, "--storage", url])
    entries = sorted((tmp_path / "cache").glob("file-pets.csv-*"))
    assert len(entries) == 2  # s1 and s2 share one conversion; t3 has its own
    tests = [np.load(e / "X_test.npy") for e in entries]
    assert tests[0].shape == tests[1].shape and not np.array_equal(*tests)


# --- docs/own-data.md, "Bad input": every refusal it lists, produced here ------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "own-data.md"


def documented_refusals() -> list[str]:
    """The quoted lines of the "Bad input" section's table of refusals."""
    section = DOCS.read_text().split("## Bad input", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| .+ \| `(.+)` \|$", section, re.M)


def _load(path: Path, normalization: str | None = None, **options: object) -> str:
    with pytest.raises(DatasetError) as refusal:
        load_file(FileSource(str(path), **options), normalization=normalization, cache_dir=path.parent / "cache")
    return str(refusal.value)


def _text(tmp: Path, name: str, content: str | bytes, **options: object) -> str:
    path = tmp / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return _load(path, **options)


def _rows(n: int = 30) -> str:
    return "".join(f"{i * 0.5},{i % 4},{'xyz'[i % 3]}\n" for i in range(n))


def _table(tmp: Path, change, **options: object) -> str:
    frame = write_table(tmp / "t.csv")
    change(frame)
    frame.to_csv(tmp / "t.csv", index=False)
    return _load(tmp / "t.csv", **options)


def _npz(tmp: Path, **arrays: np.ndarray) -> str:
    np.savez(tmp / "a.npz", **arrays)
    return _load(tmp / "a.npz")


def _damaged_npz(tmp: Path) -> str:
    import zipfile

    header = {"descr": "<f8", "fortran_order": False, "shape": (10**6, 4)}
    with zipfile.ZipFile(tmp / "a.npz", "w") as zf:
        for name in ("X.npy", "y.npy"):
            with zf.open(name, "w") as fh:
                np.lib.format.write_array_header_1_0(fh, header)
                fh.write(bytes(64))
    return _load(tmp / "a.npz")


def _pics(tmp: Path, then=None, **options: object) -> str:
    root = write_images(tmp / "pics", {"a": (8, 8), "b": (8, 8)})
    if then is not None:
        then(root)
    return _load(root, **options)


def _predict(capsys, study, tmp: Path, change, *flags: str) -> str:
    home, url, frame = study
    capsys.readouterr()
    path = change(frame.head(6).copy(), tmp)
    code = main(["predict", "--study", "pets", str(path), *flags, "--storage", url])
    assert code == 2
    return capsys.readouterr().err


def _csv(tmp: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(tmp / "new.csv", index=False)
    return tmp / "new.csv"


def _image_prep(tmp: Path):
    from model.datasets import Preprocessing

    data = load_file(FileSource(str(write_images(tmp / "study", {"a": (8, 8), "b": (8, 8)}))), cache_dir=tmp / "c")
    return Preprocessing.from_json(data.record["preprocessing"])


def _refused(call) -> str:
    with pytest.raises(DatasetError) as refusal:
        call()
    return str(refusal.value)


def produce(fragment: str, tmp: Path, capsys, monkeypatch, study) -> str:
    """The refusal the docs quote as ``fragment``, produced from an input written for it."""
    frames = {
        "a row without its label": lambda f: f.__setitem__("label", f["label"].where(f.index != 3)),
        "inf": lambda f: f.__setitem__("height", f["height"].where(f.index != 2, np.inf)),
        "one class": lambda f: f.__setitem__("label", "cat"),
        "rare": lambda f: f.__setitem__("label", f["label"].where(f.index > 1, "owl")),
        "hole": lambda f: f.__setitem__("weight", f["weight"].where(f.index != 2)),
    }
    makers = {
        "no such file or folder": lambda: _load(tmp / "nowhere.csv"),
        "not a data file this tool reads": lambda: _text(tmp, "notes.doc", "a,b\n"),
        "the file is empty": lambda: _text(tmp, "e.csv", ""),
        "a header line but no rows of data": lambda: _text(tmp, "h.csv", "a,b,label\n"),
        "a table needs a label column and at least one feature": lambda: _text(tmp, "o.csv", "label\nx\ny\n"),
        "not a regular table": lambda: _text(tmp, "r.csv", "a,b,label\n1,2,x\n3,4,5,y\n"),
        "column names must be unique": lambda: _text(tmp, "d.csv", "a,a,label\n" + _rows()),
        "no column 'species'; its columns are": lambda: _table(tmp, lambda f: None, target="species"),
        "is empty on lines": lambda: _table(tmp, frames["a row without its label"]),
        "no feature column beside the label": lambda: (
            pd.DataFrame({"label": list("xyz") * 10}).to_csv(tmp / "ids.csv"), _load(tmp / "ids.csv"))[1],
        "holds NUL bytes": lambda: _text(tmp, "n.csv", b"a,b,label\n1,\0,x\n"),
        "not text in UTF-8 or Windows-1252": lambda: _text(tmp, "b.csv", b"a,b,label\n1,2,x\n3,\x81\x8d,y\n"),
        "not a readable gzip file": lambda: _text(tmp, "g.csv.gz", b"\x1f\x8b\x08\0garbage"),
        "infinite values in column(s)": lambda: _table(tmp, frames["inf"]),
        "fill them in, or leave --missing at impute": lambda: _table(tmp, frames["hole"], missing="refuse"),
        "a classifier needs two classes or more": lambda: _table(tmp, frames["one class"]),
        "too few rows to stratify": lambda: _table(tmp, frames["rare"]),
        "a study classifies into at most 1000": lambda: _text(
            tmp, "m.csv", "x,label\n" + "".join(f"{i % 7},c{i % 1001}\n" for i in range(3003))),
        "not a readable .npz": lambda: _text(tmp, "z.npz", b"not a zip archive"),
        "holds a single array, not named arrays": lambda: (np.save(tmp / "one.npy", np.zeros(3)),
                                                           _text(tmp, "one.npz", (tmp / "one.npy").read_bytes()))[1],
        "no known pair of keys": lambda: _npz(tmp, features=np.zeros((30, 2)), classes=np.arange(30) % 3),
        "holds Python objects": lambda: _npz(tmp, X=np.array([[1.0, None]] * 30, dtype=object), y=np.arange(30) % 3),
        "the file is damaged": lambda: _damaged_npz(tmp),
        "must be numbers, got dtype": lambda: _npz(tmp, X=np.full((30, 2), "ab"), y=np.arange(30) % 3),
        "must be numbers or text": lambda: _npz(tmp, X=np.zeros((30, 2)), y=(np.arange(30) % 3).astype(complex)),
        "have no rows": lambda: _npz(tmp, X=np.zeros((0, 2)), y=np.zeros(0)),
        "hold no values in a row": lambda: _npz(tmp, X=np.zeros((30, 0)), y=np.arange(30) % 3),
        "rows but 'y' has": lambda: _npz(tmp, X=np.zeros((30, 2)), y=np.arange(29) % 3),
        "NaN and": lambda: _npz(tmp, X=np.full((30, 2), np.nan), y=np.arange(30) % 3),
        "no images found": lambda: _pics(tmp, lambda r: [p.unlink() for p in r.rglob("*.png")]),
        "images differ in size": lambda: _pics(tmp, lambda r: write_images(r, {"c": (9, 9)})),
        "not a readable image": lambda: _pics(tmp, lambda r: (r / "a" / "x.png").write_bytes(b"\x89PNG damaged")),
        "Image.MAX_IMAGE_PIXELS": lambda: _pics(tmp, lambda r: png_header_only(r / "a" / "x.png", 20000, 20000)),
        "a link back to a folder that holds it": lambda: _pics(tmp, lambda r: (r / "a" / "up").symlink_to(r)),
        "not a file of data": lambda: _pics(tmp, lambda r: os.mkfifo(r / "a" / "p.png")),
        "of memory and": lambda: (lower_ceiling(monkeypatch, 1000), _table(tmp, lambda f: None))[1],
        "holds values beyond float32's range": lambda: (
            np.savez(tmp / "f.npz", X=np.full((30, 2), 1e305) * np.arange(30)[:, None], y=np.arange(30) % 3),
            _load(tmp / "f.npz", normalization="none"))[1],
        "has changed since": lambda: (write_table(tmp / "c.csv"), _load(tmp / "c.csv", digest="0" * 64))[1],
        "holds text where the study has numbers": lambda: _predict(
            capsys, study, tmp, lambda f, t: _csv(t, f.astype({"height": object}).assign(height="abc"))),
        "never seen in training": lambda: _predict(capsys, study, tmp, lambda f, t: _csv(t, f.assign(colour="mauve"))),
        "missing column(s)": lambda: _predict(capsys, study, tmp, lambda f, t: _csv(t, f.drop(columns="weight"))),
        "but the study's are": lambda: _refused(lambda: _image_prep(tmp).transform(np.zeros((2, 10, 10)))),
        "are not classes of the study": lambda: _refused(lambda: _image_prep(tmp).encode_labels(np.array(["zz"]))),
        "input, but the study's data is a": lambda: _predict(
            capsys, study, tmp, lambda f, t: (np.savez(t / "x.npz", X=np.zeros((3, 2))), t / "x.npz")[1]),
        "which this command reads": lambda: _predict(
            capsys, study, tmp, lambda f, t: _csv(t, f), "--out", str(tmp / "new.csv")),
    }
    return makers[fragment]()


def test_every_refusal_the_docs_list_is_produced_by_a_test(tmp_path, capsys, monkeypatch, study) -> None:
    fragments = documented_refusals()
    assert len(fragments) >= 40
    for i, fragment in enumerate(fragments):
        tmp = tmp_path / str(i)
        tmp.mkdir()
        with monkeypatch.context() as mp:
            message = produce(fragment, tmp, capsys, mp, study)
        assert fragment in message, (fragment, message)
        assert "\n" not in message.strip(), message


@pytest.mark.parametrize("command", ["export", "report", "best", "show", "plot"])
@pytest.mark.parametrize("which", ["data", "database"])
def test_no_command_writes_over_the_studys_data_or_database(capsys, study, command, which) -> None:
    home, url, _ = study
    capsys.readouterr()
    out = {"data": home / "pets.csv", "database": home / "study.db"}[which]
    flag = "--csv" if command == "show" else "--out"
    argv = [command, "--study", "pets", flag, str(out), "--storage", url] + (["--retrain"] if command == "best" else [])
    refused(capsys, argv, home, flag, "reads")


def test_an_output_inside_a_folder_the_command_reads_is_refused_even_before_it_exists(tmp_path) -> None:
    from search.errors import SearchError
    from search.study.outputs import check_output

    (tmp_path / "images" / "cat").mkdir(parents=True)  # a plot written here would become a training image
    with pytest.raises(SearchError, match="would replace"):
        check_output(tmp_path / "images" / "cat" / "curves.png", [tmp_path / "images"])
    check_output(tmp_path / "plots" / "curves.png", [tmp_path / "images"])  # beside it is fine


def test_predict_to_a_path_that_is_not_utf8_says_what_it_wrote_in_one_escaped_line(study, tmp_path) -> None:
    home, url, frame = study
    frame.head(5).drop(columns=["label"]).to_csv(tmp_path / "new.csv", index=False)
    out = os.fsencode(tmp_path) + b"/pr\xffdicted.csv"
    run = subprocess.run([sys.executable, "-m", "search", *predict_argv(url, tmp_path / "new.csv"), "--out", out],
                         capture_output=True, env=dict(os.environ, PYTHONIOENCODING="utf-8"))
    assert run.returncode == 0, run.stderr
    assert run.stdout.decode().splitlines()[-1] == f"wrote {tmp_path}/pr\\udcffdicted.csv"
    assert len(pd.read_csv(os.fsdecode(out))) == 5
