"""Files of one's own (issue 18): .npz conventions, tables, image folders, the cache, the stored preprocessing.

Every file is written by the test itself and read through ``load_file``; no
CLI and no Optuna.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import model.datasets.owndata as owndata
from model.datasets import DatasetError, FileSource, Preprocessing, load_file
from model.datasets.encoding import TableEncoding, fit_column_transformer
from model.datasets.owndata import draw_splits

PIL = pytest.importorskip("PIL.Image")


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NUMPY_HPSEARCH_CACHE", str(tmp_path / "unused"))  # every load names its cache
    return tmp_path / "cache"


def load(path: Path, cache_dir: Path, **kw):
    options = {k: kw.pop(k) for k in ("target", "x_key", "y_key", "image_size", "missing") if k in kw}
    return load_file(FileSource(str(path), **options), cache_dir=cache_dir, **kw)


def rows(ds) -> dict[str, int]:
    return {p: len(getattr(ds, f"y_{p}")) for p in ("train", "val", "test")}


def stratified_test_size(y: np.ndarray) -> int:
    """What a held-out 20% of each class adds up to (largest remainder, as ``stratified_split``)."""
    return int(np.floor(0.2 * len(y) + 0.5))


# --- .npz -----------------------------------------------------------------------------------------


def features(n: int, d: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d))


@pytest.mark.parametrize("x_key, y_key", [("X", "y"), ("x", "y"), ("data", "target")])
def test_an_npz_of_rows_in_each_naming_loads_with_a_stratified_fifth_held_out(tmp_path, cache_dir,
                                                                               x_key, y_key) -> None:
    y = np.arange(50) % 3
    np.savez(tmp_path / "rows.npz", **{x_key: features(50), y_key: y})
    ds = load(tmp_path / "rows.npz", cache_dir)
    assert ds.n_classes == 3 and ds.n_features == 5 and ds.image_shape is None
    assert ds.record["classes"] == [0, 1, 2] and ds.record["layout"] == "features"
    assert sum(rows(ds).values()) == 50 and len(ds.y_test) == stratified_test_size(y)
    assert np.bincount(ds.y_test).tolist() == [4, 3, 3]  # 20% of 17, 17, 16 by largest remainder
    assert ds.record["given_splits"] == ["train"]


def test_an_npz_in_keras_layout_uses_its_test_split_as_given(tmp_path, cache_dir) -> None:
    X_test = features(12, seed=1)
    np.savez(tmp_path / "keras.npz", x_train=features(40), y_train=np.arange(40) % 4,
             x_test=X_test, y_test=np.arange(12) % 4)
    ds = load(tmp_path / "keras.npz", cache_dir, val_fraction=0.25, normalization="none")
    assert rows(ds) == {"train": 30, "val": 10, "test": 12}
    np.testing.assert_array_equal(ds.y_test, np.arange(12) % 4)  # as given, in order
    np.testing.assert_allclose(ds.X_test, X_test.astype(np.float32))
    assert ds.record["given_splits"] == ["test", "train"]


def test_an_npz_in_keras_layout_with_a_validation_split_uses_all_three_as_given(tmp_path, cache_dir) -> None:
    np.savez(tmp_path / "keras.npz", x_train=features(40), y_train=np.arange(40) % 4,
             x_val=features(8, seed=2), y_val=np.arange(8) % 4, x_test=features(12, seed=1), y_test=np.arange(12) % 4)
    ds = load(tmp_path / "keras.npz", cache_dir)
    assert rows(ds) == {"train": 40, "val": 8, "test": 12}
    np.testing.assert_array_equal(ds.y_val, np.arange(8) % 4)


def test_an_npz_with_only_train_and_validation_splits_draws_its_test_split_from_train(tmp_path,
                                                                                       cache_dir) -> None:
    np.savez(tmp_path / "tv.npz", x_train=features(40), y_train=np.arange(40) % 4,
             x_val=features(8, seed=2), y_val=np.arange(8) % 4)
    ds = load(tmp_path / "tv.npz", cache_dir)
    assert rows(ds) == {"train": 32, "val": 8, "test": 8}


def test_a_notmnist_style_npz_of_28_by_28_bytes_keeps_its_image_shape(tmp_path, cache_dir) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "notMNIST.npz", images=images, labels=np.arange(40) % 10)
    ds = load(tmp_path / "notMNIST.npz", cache_dir)
    assert ds.image_shape == (28, 28) and ds.n_features == 784 and ds.n_classes == 10
    assert ds.record["layout"] == "image" and ds.normalization == "image"
    assert abs(float(ds.X_train.mean())) < 1e-4  # image-wide statistics of the training split


def test_channels_last_colour_images_become_planes_per_row(tmp_path, cache_dir) -> None:
    rng = np.random.default_rng(0)
    x_test = rng.integers(0, 256, (6, 4, 5, 3), dtype=np.uint8)
    x_test[0, 0, 0, 0] = 255
    x_train = rng.integers(0, 256, (20, 4, 5, 3), dtype=np.uint8)
    x_train[0, 0, 0, 0] = 255  # the training split's brightest: the scale is 255
    np.savez(tmp_path / "rgb.npz", x_train=x_train, y_train=np.arange(20) % 2, x_test=x_test, y_test=np.arange(6) % 2)
    ds = load(tmp_path / "rgb.npz", cache_dir, normalization="none")
    assert ds.image_shape == (3, 4, 5) and ds.n_features == 60
    expected = x_test.transpose(0, 3, 1, 2).reshape(6, -1) / 255.0  # red plane, green plane, blue plane
    np.testing.assert_allclose(ds.X_test, expected, rtol=1e-6)


def test_one_hot_labels_become_class_indices(tmp_path, cache_dir) -> None:
    y = np.arange(30) % 3
    np.savez(tmp_path / "onehot.npz", X=features(30), y=np.eye(3)[y])
    ds = load(tmp_path / "onehot.npz", cache_dir)
    assert ds.record["classes"] == [0, 1, 2]
    assert ds.record["class_counts"] == [10, 10, 10]


def test_string_labels_keep_their_names_in_sorted_order(tmp_path, cache_dir) -> None:
    y = np.array(["zebra", "ant", "moth"])[np.arange(30) % 3]
    np.savez(tmp_path / "names.npz", X=features(30), y=y)
    ds = load(tmp_path / "names.npz", cache_dir)
    assert ds.record["classes"] == ["ant", "moth", "zebra"]
    assert ds.n_classes == 3


def test_the_x_and_y_keys_name_arrays_outside_the_conventions(tmp_path, cache_dir) -> None:
    np.savez(tmp_path / "odd.npz", inputs=features(30, d=7), answers=np.arange(30) % 2, extra=np.zeros(3))
    ds = load(tmp_path / "odd.npz", cache_dir, x_key="inputs", y_key="answers")
    assert ds.n_features == 7 and ds.n_classes == 2


# --- tables ---------------------------------------------------------------------------------------


def mixed_frame(n: int = 80, seed: int = 0) -> pd.DataFrame:
    """Numbers, a text category, holes in both, and a string label last."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "age": rng.integers(18, 80, n).astype(float),
        "income": rng.normal(50, 10, n).round(2),
        "city": np.array(["Oslo", "Lima", "Pune"])[rng.integers(0, 3, n)],
        "label": np.array(["no", "yes"])[np.arange(n) % 2],
    })
    frame.loc[[i for i in (3, 17, 40) if i < n], "age"] = np.nan
    frame.loc[[i for i in (5, 9) if i < n], "city"] = np.nan
    return frame


def test_a_csv_with_numbers_text_holes_and_string_labels_is_encoded(tmp_path, cache_dir) -> None:
    mixed_frame().to_csv(tmp_path / "people.csv", index=False)
    ds = load(tmp_path / "people.csv", cache_dir)
    rec = ds.record
    assert rec["layout"] == "table" and rec["classes"] == ["no", "yes"]
    # age, income, age's missing indicator, then one-hot city: three cities and "(missing)"
    assert ds.n_features == 3 + 4
    assert rec["imputed"] == {"age": 3, "city": 2}
    assert sum(rows(ds).values()) == 80 and len(ds.y_test) == 16
    assert np.isfinite(ds.X_train).all() and np.isfinite(ds.X_test).all()
    np.testing.assert_allclose(ds.X_train[:, :3].mean(axis=0), 0.0, atol=1e-5)  # z-scored on train
    np.testing.assert_allclose(ds.X_train[:, :3].std(axis=0), 1.0, atol=1e-4)


def test_a_gzipped_tsv_with_a_named_target_column_loads(tmp_path, cache_dir) -> None:
    frame = mixed_frame()[["label", "age", "income", "city"]]
    frame.to_csv(tmp_path / "people.tsv.gz", sep="\t", index=False)
    ds = load(tmp_path / "people.tsv.gz", cache_dir, target="label")
    assert ds.record["classes"] == ["no", "yes"] and ds.n_features == 7


def test_a_spreadsheet_export_with_semicolons_decimal_commas_and_a_row_index_reads_as_the_plain_csv(
        tmp_path, cache_dir) -> None:
    frame = mixed_frame()
    frame.to_csv(tmp_path / "plain.csv", index=False)
    frame.to_csv(tmp_path / "excel.csv", sep=";", decimal=",")  # pandas' default writes the index too
    plain, excel = load(tmp_path / "plain.csv", cache_dir), load(tmp_path / "excel.csv", cache_dir)
    np.testing.assert_array_equal(plain.X_train, excel.X_train)
    np.testing.assert_array_equal(plain.X_test, excel.X_test)
    assert excel.record["notes"] == ["column 'Unnamed: 0' dropped: it numbers the rows"]


def test_the_index_of_a_shuffled_split_is_dropped_and_a_named_column_of_distinct_integers_kept(
        tmp_path, cache_dir) -> None:
    frame = mixed_frame().sample(frac=0.75, random_state=0)  # as train_test_split leaves it: shuffled, gaps
    frame["account"] = np.random.default_rng(1).permutation(len(frame)) + 1000  # named: a feature
    frame.to_csv(tmp_path / "train.csv")  # the index, unnamed, out of order
    frame.to_csv(tmp_path / "plain.csv", index=False)
    indexed, plain = load(tmp_path / "train.csv", cache_dir), load(tmp_path / "plain.csv", cache_dir)
    np.testing.assert_array_equal(indexed.X_train, plain.X_train)
    assert indexed.record["notes"] == ["column 'Unnamed: 0' dropped: it numbers the rows"]
    assert plain.record["notes"] == [] and plain.n_features == indexed.n_features == 3 + 4 + 1  # + account


def test_the_stored_table_encoding_equals_scikit_learns_column_transformer(tmp_path) -> None:
    train = mixed_frame()
    features_only = train.drop(columns="label")
    encoding = TableEncoding.fit(features_only)
    holes = encoding.numeric[:encoding.imputed]
    fitted = fit_column_transformer(features_only, holes, encoding.numeric[encoding.imputed:], encoding.text)
    assert holes == ["age"]  # the one numeric column with holes in training goes through the imputer
    np.testing.assert_allclose(encoding.transform(features_only), fitted.transform(features_only),
                               rtol=1e-6, atol=1e-6)

    other = mixed_frame(n=25, seed=7).drop(columns="label")
    other.loc[[0, 4], "income"] = np.nan  # a column with no holes in training: no indicator, the median
    other.loc[[1, 2], "age"] = np.nan
    other.loc[6, "city"] = np.nan
    ours, theirs = encoding.transform(other), fitted.transform(other)
    # scikit-learn's scaler passes a hole in "income" through as NaN; ours fills the training median
    income = 2  # after age and its indicator
    assert np.isnan(theirs[[0, 4], income]).all()
    median = np.median(features_only["income"])
    expected = (median - encoding.means[income]) / encoding.scales[income]
    np.testing.assert_allclose(ours[[0, 4], income], expected, rtol=1e-6)
    theirs[[0, 4], income] = ours[[0, 4], income]
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)

    other.loc[8, "city"] = "Rome"  # unseen: scikit-learn's handle_unknown="ignore" is --unseen ignore
    with pytest.raises(DatasetError, match="'city'.*'Rome'"):
        encoding.transform(other)
    theirs = fitted.transform(other)
    theirs[[0, 4], income] = ours[[0, 4], income]
    np.testing.assert_allclose(encoding.transform(other, unseen="ignore"), theirs, rtol=1e-6, atol=1e-6)


def test_text_categories_read_back_as_numbers_are_still_recognised() -> None:
    train = pd.DataFrame({"size": ["1", "2", "XL", "S"] * 5, "weight": np.arange(20.0)})
    encoding = TableEncoding.fit(train)
    assert encoding.text == ["size"]
    as_text = pd.DataFrame({"size": ["2", "1", "1"], "weight": [1.0, 2.0, 3.0]})
    for numbers in ([2, 1, 1], [2.0, 1.0, 1.0]):  # how pandas reads a column of "1", "2" cells
        np.testing.assert_array_equal(encoding.transform(as_text.assign(size=numbers)), encoding.transform(as_text))


def test_statistics_come_from_the_training_split_alone(tmp_path, cache_dir) -> None:
    frame = mixed_frame()
    frame.to_csv(tmp_path / "a.csv", index=False)
    codes = np.unique(frame["label"], return_inverse=True)[1]
    train, _, test = draw_splits(codes, 0.2, 0, 0, has_test=False)
    before = load(tmp_path / "a.csv", cache_dir)

    frame.loc[test[0], "income"] = 1e6  # a test row: nothing learnt changes
    frame.to_csv(tmp_path / "a.csv", index=False)
    after = load(tmp_path / "a.csv", cache_dir)
    assert after.record["digest"] != before.record["digest"]
    np.testing.assert_array_equal(after.X_train, before.X_train)
    np.testing.assert_array_equal(after.X_val, before.X_val)
    assert after.record["preprocessing"] == before.record["preprocessing"]
    assert not np.array_equal(after.X_test, before.X_test)

    frame.loc[train[0], "income"] = 1e6  # a training row: the mean and scale move
    frame.to_csv(tmp_path / "a.csv", index=False)
    moved = load(tmp_path / "a.csv", cache_dir)
    assert moved.record["preprocessing"]["table"]["means"] != before.record["preprocessing"]["table"]["means"]


# --- image folders --------------------------------------------------------------------------------


def write_pngs(root: Path, classes: list[str], per_class: int, size: tuple[int, int], rgb: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            shape = (*size, 3) if rgb else size
            pixels = np.clip(rng.integers(0, 100, shape) + 60 * k, 0, 255).astype(np.uint8)
            PIL.fromarray(pixels, mode="RGB" if rgb else "L").save(root / name / f"{i:03d}.png")


@pytest.mark.parametrize("rgb, shape", [(False, (6, 7)), (True, (3, 6, 7))])
def test_a_folder_of_pngs_loads_in_its_colours_with_class_names_from_the_folders(tmp_path, cache_dir,
                                                                                  rgb, shape) -> None:
    write_pngs(tmp_path / "shapes", ["circle", "square", "star"], 10, (6, 7), rgb)
    ds = load(tmp_path / "shapes", cache_dir)
    assert ds.image_shape == shape and ds.n_features == int(np.prod(shape))
    assert ds.record["classes"] == ["circle", "square", "star"] and ds.record["kind"] == "images"
    assert sum(rows(ds).values()) == 30 and len(ds.y_test) == 6


def test_a_colour_folder_keeps_each_pixel_in_its_plane(tmp_path, cache_dir) -> None:
    root = tmp_path / "pics"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
    red = np.zeros((4, 4, 3), dtype=np.uint8)
    red[..., 0] = 255
    for i in range(5):
        PIL.fromarray(red).save(root / "a" / f"{i}.png")
        PIL.fromarray(red[..., ::-1].copy()).save(root / "b" / f"{i}.png")  # blue
    ds = load(root, cache_dir, normalization="none")
    X = np.concatenate([ds.X_train, ds.X_val, ds.X_test]).reshape(-1, 3, 16)
    y = np.concatenate([ds.y_train, ds.y_val, ds.y_test])
    np.testing.assert_array_equal(X[y == 0, 0], 1.0)  # red in the first plane
    np.testing.assert_array_equal(X[y == 1, 2], 1.0)  # blue in the last
    np.testing.assert_array_equal(X[:, 1], 0.0)


def test_a_folder_with_train_and_test_sub_folders_uses_them_as_given(tmp_path, cache_dir) -> None:
    write_pngs(tmp_path / "set" / "train", ["cat", "dog"], 10, (5, 5), rgb=False)
    write_pngs(tmp_path / "set" / "test", ["cat", "dog"], 3, (5, 5), rgb=False, seed=1)
    ds = load(tmp_path / "set", cache_dir)
    assert ds.record["given_splits"] == ["test", "train"]
    assert len(ds.y_test) == 6 and len(ds.y_train) + len(ds.y_val) == 20
    np.testing.assert_array_equal(ds.y_test, [0, 0, 0, 1, 1, 1])  # in file order
    assert ds.record["classes"] == ["cat", "dog"]


def test_images_of_mixed_sizes_are_resized_to_the_image_size_asked(tmp_path, cache_dir) -> None:
    write_pngs(tmp_path / "mixed", ["a"], 5, (6, 6), rgb=False)
    write_pngs(tmp_path / "mixed", ["b"], 5, (9, 4), rgb=False)
    with pytest.raises(DatasetError, match="differ in size"):
        load(tmp_path / "mixed", cache_dir)
    ds = load(tmp_path / "mixed", cache_dir, image_size=(5, 8))
    assert ds.image_shape == (5, 8)


# --- the cache ------------------------------------------------------------------------------------


def test_a_second_load_maps_the_cached_entry_without_reading_the_file(tmp_path, cache_dir, monkeypatch) -> None:
    mixed_frame().to_csv(tmp_path / "people.csv", index=False)
    first = load(tmp_path / "people.csv", cache_dir)
    entries = sorted(cache_dir.iterdir())
    assert len(entries) == 1

    monkeypatch.setattr(owndata, "read_table", lambda *a, **k: pytest.fail("parsed the file again"))
    second = load(tmp_path / "people.csv", cache_dir)
    assert sorted(cache_dir.iterdir()) == entries
    assert isinstance(second.X_train, np.memmap) and Path(second.X_train.filename).parent == entries[0]
    np.testing.assert_array_equal(second.X_train, first.X_train)
    assert second.record == first.record


def test_a_changed_file_gets_a_new_digest_and_a_new_entry(tmp_path, cache_dir) -> None:
    frame = mixed_frame()
    frame.to_csv(tmp_path / "people.csv", index=False)
    first = load(tmp_path / "people.csv", cache_dir)
    frame.loc[0, "income"] += 1.0
    frame.to_csv(tmp_path / "people.csv", index=False)
    second = load(tmp_path / "people.csv", cache_dir)
    assert second.record["digest"] != first.record["digest"]
    assert len(list(cache_dir.iterdir())) == 2


def test_a_file_changed_since_its_digest_was_taken_is_refused(tmp_path, cache_dir) -> None:
    mixed_frame().to_csv(tmp_path / "people.csv", index=False)
    source = owndata.with_digest(FileSource(str(tmp_path / "people.csv")))
    mixed_frame(seed=1).to_csv(tmp_path / "people.csv", index=False)
    with pytest.raises(DatasetError, match="has changed since"):
        load_file(source, cache_dir=cache_dir)


# --- the stored preprocessing ---------------------------------------------------------------------


def npz_with_given_test(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "f.npz", x_train=rng.normal(3, 2, (40, 6)), y_train=np.arange(40) % 2,
             x_test=rng.normal(3, 2, (10, 6)), y_test=np.arange(10) % 2)
    return tmp_path / "f.npz"


def test_the_preprocessing_survives_json_and_reproduces_the_cached_rows(tmp_path, cache_dir) -> None:
    frame = mixed_frame()
    frame.to_csv(tmp_path / "people.csv", index=False)
    table = load(tmp_path / "people.csv", cache_dir)
    codes = np.unique(frame["label"], return_inverse=True)[1]
    test_rows = draw_splits(codes, 0.2, 0, 0, has_test=False)[2]

    rgb = tmp_path / "rgb"
    write_pngs(rgb, ["a", "b"], 6, (4, 4), rgb=True)
    images = load(rgb, cache_dir)

    npz = load(npz_with_given_test(tmp_path), cache_dir)
    raw_test = {
        "table": pd.read_csv(tmp_path / "people.csv").drop(columns="label").iloc[test_rows],
        "features": np.load(tmp_path / "f.npz")["x_test"],
    }
    for ds in (table, npz, images):
        stored = ds.record["preprocessing"]
        prep = Preprocessing.from_json(json.loads(json.dumps(stored)))
        assert prep.to_json() == stored
        assert prep == Preprocessing.from_json(stored)
        if prep.layout in raw_test:
            np.testing.assert_allclose(prep.transform(raw_test[prep.layout]), ds.X_test, rtol=1e-6, atol=1e-6)
    assert images.record["preprocessing"]["image_shape"] == [3, 4, 4]


def test_preprocessing_names_the_image_size_it_expects(tmp_path, cache_dir) -> None:
    write_pngs(tmp_path / "g", ["a", "b"], 6, (4, 4), rgb=False)
    prep = Preprocessing.from_json(load(tmp_path / "g", cache_dir).record["preprocessing"])
    assert prep.transform(np.zeros((2, 4, 4), dtype=np.uint8)).shape == (2, 16)
    with pytest.raises(DatasetError, match=r"\(5, 5\).*\(4, 4\)"):
        prep.transform(np.zeros((2, 5, 5), dtype=np.uint8))


def test_a_text_cell_missing_where_training_had_none_is_no_category_not_an_unseen_one() -> None:
    train = mixed_frame().drop(columns="label").dropna(subset=["city"])  # no missing city in training
    encoding = TableEncoding.fit(train)
    assert encoding.categories == [["Lima", "Oslo", "Pune"]]
    new = train.head(4).copy()
    new.loc[new.index[[1, 3]], "city"] = np.nan  # as a missing number gets the median, not a refusal
    city = encoding.transform(new)[:, -3:]
    assert city[[1, 3]].tolist() == [[0.0, 0.0, 0.0]] * 2
    np.testing.assert_array_equal(city[[0, 2]], encoding.transform(train.head(4))[[0, 2], -3:])
    with pytest.raises(DatasetError, match="never seen in training: 'Rome'"):  # a real new category still is
        encoding.transform(new.assign(city="Rome"))
