"""Loaders tested on tiny files written here in the official byte layouts."""

from __future__ import annotations

import gzip
import io
import pickle
import shutil
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest

from model.datasets import DATASETS, Dataset, DatasetError, DatasetNotFoundError, load_dataset, locate
from model.datasets.idx import read_idx

IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


# ---- writers of the official formats ---------------------------------------------------------

def write_idx_images(path: Path, images: np.ndarray, gz: bool) -> None:
    """IDX3: magic 2051, n, rows, cols big-endian uint32, then uint8 pixels."""
    n, rows, cols = images.shape
    blob = struct.pack(">IIII", 2051, n, rows, cols) + images.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(blob) if gz else blob)


def write_idx_labels(path: Path, labels: np.ndarray, gz: bool) -> None:
    """IDX1: magic 2049, n, then uint8 labels."""
    blob = struct.pack(">II", 2049, labels.size) + labels.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(blob) if gz else blob)


def make_idx_dir(directory: Path, n_train: int = 60, n_test: int = 20, gz: bool = True, seed: int = 0,
                 names: tuple[str, ...] = IDX_NAMES) -> dict[str, np.ndarray]:
    """A tiny MNIST-like set: 10 balanced classes of 28x28 images."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "X_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": np.arange(n_train) % 10,
        "X_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": np.arange(n_test) % 10,
    }
    suffix = ".gz" if gz else ""
    write_idx_images(directory / (names[0] + suffix), arrays["X_train"], gz)
    write_idx_labels(directory / (names[1] + suffix), arrays["y_train"], gz)
    write_idx_images(directory / (names[2] + suffix), arrays["X_test"], gz)
    write_idx_labels(directory / (names[3] + suffix), arrays["y_test"], gz)
    return arrays


def cifar_batch(n: int, rng: np.random.Generator, label_keys: dict[str, int]) -> dict[bytes, object]:
    """A batch dict as in the originals: bytes keys, uint8 (n, 3072) data, labels as lists."""
    batch: dict[bytes, object] = {b"batch_label": b"tiny", b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                                  b"filenames": [b"img%d.png" % i for i in range(n)]}
    for key, n_classes in label_keys.items():
        batch[key.encode()] = [int(i % n_classes) for i in range(n)]
    return batch


def make_cifar(directory: Path, kind: str, as_tar: bool = True, n: int = 20, seed: int = 0) -> dict[str, dict]:
    """cifar-10-python.tar.gz / cifar-100-python.tar.gz with the official member paths (or extracted)."""
    rng = np.random.default_rng(seed)
    if kind == "cifar10":
        folder, archive = "cifar-10-batches-py", "cifar-10-python.tar.gz"
        members = {f"data_batch_{i}": cifar_batch(n, rng, {"labels": 10}) for i in range(1, 6)}
        members["test_batch"] = cifar_batch(n, rng, {"labels": 10})
        members["batches.meta"] = {b"label_names": [b"airplane"] * 10}
    else:
        folder, archive = "cifar-100-python", "cifar-100-python.tar.gz"
        keys = {"fine_labels": 100, "coarse_labels": 20}
        members = {"train": cifar_batch(5 * n, rng, keys), "test": cifar_batch(n, rng, keys), "meta": {}}
        # fine labels run 0..99 but only 5n of them exist: make coarse a function of fine, as in the original
        for b in (members["train"], members["test"]):
            b[b"fine_labels"] = [i % 100 for i in range(len(b[b"fine_labels"]))]
            b[b"coarse_labels"] = [f // 5 for f in b[b"fine_labels"]]
    directory.mkdir(parents=True, exist_ok=True)
    if as_tar:
        with tarfile.open(directory / archive, "w:gz") as tar:
            for name, obj in members.items():
                blob = pickle.dumps(obj, protocol=2)
                info = tarfile.TarInfo(f"{folder}/{name}")
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
    else:
        (directory / folder).mkdir()
        for name, obj in members.items():
            (directory / folder / name).write_bytes(pickle.dumps(obj, protocol=2))
    return members


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No lookup or cache outside tmp_path: env vars, user cache and /usr/share all redirected."""
    monkeypatch.delenv(locate.DATA_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("NUMPY_HPSEARCH_CACHE", str(tmp_path / "arrays"))
    monkeypatch.setattr(locate, "SYSTEM_DATA_DIRS", (str(tmp_path / "system"),))
    return tmp_path


# ---- formats ---------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [True, False])
def test_idx_files_load_with_shapes_dtypes_and_all_samples(tmp_path: Path, gz: bool) -> None:
    raw = make_idx_dir(tmp_path / "d", gz=gz)
    ds = load_dataset("mnist", data_dir=tmp_path / "d", normalization="none")
    assert (ds.n_features, ds.n_classes, ds.normalization) == (784, 10, "none")
    assert ds.X_train.shape == (54, 784) and ds.X_val.shape == (6, 784) and ds.X_test.shape == (20, 784)
    for X in (ds.X_train, ds.X_val, ds.X_test):
        assert X.dtype == np.float32 and X.flags.c_contiguous
    for y in (ds.y_train, ds.y_val, ds.y_test):
        assert y.dtype == np.int64
    # "none" is pixels / 255, test rows untouched in order
    np.testing.assert_allclose(ds.X_test, raw["X_test"].reshape(20, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.y_test, raw["y_test"])
    # train + val together are exactly the official training set
    all_rows = np.concatenate([ds.X_train, ds.X_val]) * 255
    assert sorted(map(bytes, np.rint(all_rows).astype(np.uint8))) == sorted(map(bytes, raw["X_train"].reshape(60, -1)))


def test_dotted_idx_names_are_accepted(tmp_path: Path) -> None:
    dotted = tuple(n.replace("-idx", ".idx") for n in IDX_NAMES)
    make_idx_dir(tmp_path / "d", gz=False, names=dotted)
    assert load_dataset("fashion-mnist", data_dir=tmp_path / "d").X_test.shape == (20, 784)


@pytest.mark.parametrize("as_tar", [True, False])
def test_cifar10_keeps_rgb_planes_in_order(tmp_path: Path, as_tar: bool) -> None:
    members = make_cifar(tmp_path / "c", "cifar10", as_tar=as_tar)
    ds = load_dataset("cifar10", data_dir=tmp_path / "c", normalization="none")
    assert ds.n_features == 3072 and ds.n_classes == 10
    assert ds.X_train.shape[0] + ds.X_val.shape[0] == 100 and ds.X_test.shape == (20, 3072)
    test = members["test_batch"]
    np.testing.assert_allclose(ds.X_test, test[b"data"] / 255.0, rtol=1e-6)  # R plane, G plane, B plane
    np.testing.assert_array_equal(ds.y_test, test[b"labels"])


def test_cifar100_fine_and_coarse_labels_come_from_the_same_archive(tmp_path: Path) -> None:
    members = make_cifar(tmp_path / "c", "cifar100", n=40)  # 200 train images: 2 per fine class
    fine = load_dataset("cifar100", data_dir=tmp_path / "c", normalization="none")
    coarse = load_dataset("cifar100-coarse", data_dir=tmp_path / "c", normalization="none")
    assert (fine.n_classes, coarse.n_classes) == (100, 20)
    np.testing.assert_array_equal(fine.y_test, members["test"][b"fine_labels"])
    np.testing.assert_array_equal(coarse.y_test, members["test"][b"coarse_labels"])
    np.testing.assert_array_equal(fine.X_test, coarse.X_test)


def test_channel_normalisation_gives_each_plane_zero_mean(tmp_path: Path) -> None:
    make_cifar(tmp_path / "c", "cifar10")
    ds = load_dataset("cifar10", data_dir=tmp_path / "c", normalization="channel")
    planes = ds.X_train.reshape(-1, 3, 1024)
    np.testing.assert_allclose(planes.mean(axis=(0, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(planes.std(axis=(0, 2)), 1, atol=1e-4)


def test_channel_normalisation_of_grayscale_is_refused(tmp_path: Path) -> None:
    make_idx_dir(tmp_path / "d")
    with pytest.raises(DatasetError, match="channel"):
        load_dataset("mnist", data_dir=tmp_path / "d", normalization="channel")


def test_digits_has_fixed_test_split_and_stratified_validation() -> None:
    a = load_dataset("digits", split_seed=0, normalization="none")
    b = load_dataset("digits", split_seed=1, normalization="none")
    assert a.n_features == 64 and a.n_classes == 10
    assert a.X_train.shape[0] + a.X_val.shape[0] + a.X_test.shape[0] == 1797
    np.testing.assert_array_equal(a.X_test, b.X_test)  # test split ignores split_seed
    assert float(a.X_train.max()) == 1.0 and float(a.X_train.min()) == 0.0  # "none" is pixels / 16
    assert not np.array_equal(a.y_val, b.y_val)
    # every class is ~10 % of the validation set, as in the training set
    val_share = np.bincount(a.y_val, minlength=10) / a.y_val.size
    train_share = np.bincount(a.y_train, minlength=10) / a.y_train.size
    np.testing.assert_allclose(val_share, train_share, atol=0.01)


def test_digits_test_seed_draws_another_stratified_test_split_cached_apart(tmp_path: Path) -> None:
    a = load_dataset("digits", normalization="none", cache_dir=tmp_path)
    b = load_dataset("digits", normalization="none", test_seed=3, cache_dir=tmp_path)
    assert a.X_test.shape == b.X_test.shape == (359, 64)
    assert not np.array_equal(a.y_test, b.y_test) and not np.array_equal(a.X_test, b.X_test)
    np.testing.assert_array_equal(np.bincount(a.y_test), np.bincount(b.y_test))  # stratified alike
    # the three parts of draw 3 are the whole data set, each image exactly once
    rows = np.concatenate([b.X_train, b.X_val, b.X_test])
    assert len(np.unique(rows, axis=0)) == len(np.unique(np.concatenate([a.X_train, a.X_val, a.X_test]), axis=0))
    assert not {r.tobytes() for r in b.X_test} & {r.tobytes() for r in np.concatenate([b.X_train, b.X_val])}
    # two cache entries, each read back as it was written
    assert len([p for p in tmp_path.iterdir() if p.name.startswith("digits-")]) == 2
    np.testing.assert_array_equal(load_dataset("digits", normalization="none", cache_dir=tmp_path).X_test, a.X_test)


def test_a_data_set_with_an_official_test_split_refuses_a_test_seed(tmp_path: Path) -> None:
    make_idx_dir(tmp_path / "d")
    with pytest.raises(DatasetError, match="'mnist' has an official test split: test_seed must be 0"):
        load_dataset("mnist", data_dir=tmp_path / "d", test_seed=1)


def test_zscore_statistics_come_from_the_training_split_only(tmp_path: Path) -> None:
    make_idx_dir(tmp_path / "a", seed=0)
    make_idx_dir(tmp_path / "b", seed=0)
    other = np.full((20, 28, 28), 255, dtype=np.uint8)  # a very different test set
    write_idx_images(tmp_path / "b" / "t10k-images-idx3-ubyte.gz", other, gz=True)
    a = load_dataset("mnist", data_dir=tmp_path / "a", normalization="zscore")
    b = load_dataset("mnist", data_dir=tmp_path / "b", normalization="zscore")
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.X_val, b.X_val)
    np.testing.assert_allclose(a.X_train.mean(axis=0), 0, atol=1e-5)
    assert not np.allclose(a.X_val.mean(axis=0), 0, atol=1e-5)  # val is not re-centred on itself


def test_image_normalisation_has_one_mean_and_std(tmp_path: Path) -> None:
    make_idx_dir(tmp_path / "d")
    ds = load_dataset("mnist", data_dir=tmp_path / "d", normalization="image")
    assert abs(float(ds.X_train.mean())) < 1e-5 and abs(float(ds.X_train.std()) - 1) < 1e-4


# ---- options and errors ----------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    ({"val_fraction": 0.0}, "val_fraction"), ({"val_fraction": 0.6}, "val_fraction"),
    ({"normalization": "minmax"}, "minmax"), ({"split_seed": -1}, "split_seed"), ({"test_seed": -2}, "test_seed"),
])
def test_bad_options_name_the_value(kwargs: dict, match: str) -> None:
    with pytest.raises(DatasetError, match=match):
        load_dataset("digits", **kwargs)


def test_unknown_name_lists_the_accepted_ones() -> None:
    with pytest.raises(DatasetError, match="emnist") as err:
        load_dataset("emnist")
    assert all(name in str(err.value) for name in DATASETS)


def test_not_found_lists_every_path_tried_and_how_to_get_the_files(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(locate.DATA_ENV, str(tmp_path / "env"))
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("fashion-mnist", data_dir=tmp_path / "given")
    msg = str(err.value)
    for path in (tmp_path / "given", tmp_path / "env" / "fashion-mnist",
                 tmp_path / "xdg" / "numpy-hpsearch" / "fashion-mnist", tmp_path / "system" / "fashion-mnist"):
        assert str(path) in msg
    assert "apt-get install dataset-fashion-mnist" in msg and "download=True" in msg and "http" in msg
    assert isinstance(err.value, FileNotFoundError)


def test_lookup_order_data_dir_then_env_then_user_cache_then_system(tmp_path: Path, monkeypatch) -> None:
    places = [tmp_path / "given", tmp_path / "env" / "mnist",
              tmp_path / "xdg" / "numpy-hpsearch" / "mnist", tmp_path / "system" / "mnist"]
    test_images = [make_idx_dir(p, seed=seed)["X_test"] for seed, p in enumerate(places)]
    monkeypatch.setenv(locate.DATA_ENV, str(tmp_path / "env"))
    for seed, place in enumerate(places):  # each load must come from the first place still present
        ds = load_dataset("mnist", data_dir=tmp_path / "given", normalization="none")
        np.testing.assert_allclose(ds.X_test * 255, test_images[seed].reshape(20, -1), atol=1e-3)
        shutil.rmtree(place)
    with pytest.raises(DatasetNotFoundError):
        load_dataset("mnist", data_dir=tmp_path / "given")


def test_bad_magic_is_reported_with_the_file_name(tmp_path: Path) -> None:
    make_idx_dir(tmp_path / "d", gz=False)
    bad = tmp_path / "d" / "train-labels-idx1-ubyte"
    bad.write_bytes(struct.pack(">II", 2051, 60) + bytes(60))  # images magic on a labels file
    with pytest.raises(DatasetError, match="train-labels-idx1-ubyte"):
        load_dataset("mnist", data_dir=tmp_path / "d")
    bad.write_bytes(b"\x12\x34\x08\x01" + bytes(64))
    with pytest.raises(DatasetError, match=r"bad IDX magic 0x12340801"):
        read_idx(bad)


@pytest.mark.parametrize("gz", [True, False])
def test_truncated_idx_is_reported_with_the_file_name(tmp_path: Path, gz: bool) -> None:
    make_idx_dir(tmp_path / "d", gz=gz)
    path = tmp_path / "d" / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte") as err:
        load_dataset("mnist", data_dir=tmp_path / "d")
    assert "truncated" in str(err.value)


def test_truncated_or_bad_cifar_archive_is_a_dataset_error(tmp_path: Path) -> None:
    make_cifar(tmp_path / "c", "cifar10")
    archive = tmp_path / "c" / "cifar-10-python.tar.gz"
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(DatasetError, match="cifar-10-python.tar.gz"):
        load_dataset("cifar10", data_dir=tmp_path / "c")


def test_cifar_member_that_is_not_a_pickle_is_named(tmp_path: Path) -> None:
    make_cifar(tmp_path / "c", "cifar10", as_tar=False)
    (tmp_path / "c" / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DatasetError, match="data_batch_3"):
        load_dataset("cifar10", data_dir=tmp_path / "c")


def test_cifar_pickle_that_would_run_code_is_refused(tmp_path: Path) -> None:
    make_cifar(tmp_path / "c", "cifar10", as_tar=False)
    evil = pickle.dumps({b"data": __import__("os").getcwd}, protocol=2)
    (tmp_path / "c" / "cifar-10-batches-py" / "test_batch").write_bytes(evil)
    with pytest.raises(DatasetError, match="refusing to load"):
        load_dataset("cifar10", data_dir=tmp_path / "c")


def test_dataset_checks_its_arrays() -> None:
    X, y = np.zeros((4, 3), np.float32), np.zeros(4, np.int64)
    with pytest.raises(DatasetError, match="X_val"):
        Dataset("x", X, y, X.astype(np.float64), y, X, y, n_classes=2, normalization="none")
    assert Dataset("x", X, y, X, y, X, y, n_classes=2, normalization="none").n_features == 3
