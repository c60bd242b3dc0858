"""The .npy cache, concurrent builders, explicit download, and the real Fashion-MNIST."""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import http.server
import multiprocessing
import os
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

from model.datasets import DatasetError, DatasetNotFoundError, cache, load_dataset, locate, registry
from tests.equipment import missing

IDX_FILES = registry.IDX_FILES


def write_idx_set(directory: Path, n_train: int = 60, n_test: int = 20, seed: int = 0) -> None:
    """The four gzipped IDX files of a tiny 10-class MNIST (images magic 2051, labels 2049)."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for (images, labels), n in zip((IDX_FILES[:2], IDX_FILES[2:]), (n_train, n_test)):
        X = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        (directory / images).write_bytes(gzip.compress(struct.pack(">IIII", 2051, n, 28, 28) + X.tobytes()))
        y = (np.arange(n) % 10).astype(np.uint8)
        (directory / labels).write_bytes(gzip.compress(struct.pack(">II", 2049, n) + y.tobytes()))


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(locate.DATA_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "arrays"))
    monkeypatch.setattr(locate, "SYSTEM_DATA_DIRS", (str(tmp_path / "system"),))


def entries(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


# ---- cache -----------------------------------------------------------------------------------

def test_second_load_is_a_read_only_memmap_identical_to_the_first(tmp_path: Path) -> None:
    write_idx_set(tmp_path / "d")
    first = load_dataset("mnist", data_dir=tmp_path / "d", normalization="zscore")
    (entry,) = entries(tmp_path / "arrays")
    second = load_dataset("mnist", data_dir=tmp_path / "d", normalization="zscore")
    assert isinstance(second.X_train, np.memmap) and not second.X_train.flags.writeable
    for name in cache.ARRAY_NAMES:
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    in_memory = load_dataset("mnist", data_dir=tmp_path / "d", normalization="zscore", mmap=False)
    assert not isinstance(in_memory.X_train, np.memmap) and not in_memory.X_train.flags.writeable
    assert entries(tmp_path / "arrays") == [entry]


def test_cache_key_follows_options_and_raw_files(tmp_path: Path) -> None:
    write_idx_set(tmp_path / "d")
    load_dataset("mnist", data_dir=tmp_path / "d")
    load_dataset("mnist", data_dir=tmp_path / "d", split_seed=1)
    load_dataset("mnist", data_dir=tmp_path / "d", val_fraction=0.2)
    load_dataset("mnist", data_dir=tmp_path / "d", normalization="none")
    assert len(entries(tmp_path / "arrays")) == 4
    old = load_dataset("mnist", data_dir=tmp_path / "d", normalization="none")
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "d").iterdir()}
    write_idx_set(tmp_path / "d", seed=1)  # new raw files of the same size: only the mtime tells
    for p, ns in mtimes.items():  # a later mtime, whatever the clock's resolution
        os.utime(p, ns=(ns + 10**9, ns + 10**9))
    new = load_dataset("mnist", data_dir=tmp_path / "d", normalization="none")
    assert len(entries(tmp_path / "arrays")) == 5 and not np.array_equal(old.X_test, new.X_test)


def test_cache_dir_argument_beats_the_environment(tmp_path: Path) -> None:
    load_dataset("digits", cache_dir=tmp_path / "mine")
    assert len(entries(tmp_path / "mine")) == 1 and entries(tmp_path / "arrays") == []


def test_unwritable_cache_still_returns_the_data(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory should be")
    ds = load_dataset("digits", cache_dir=blocker / "sub")
    assert ds.X_train.shape[1] == 64


def test_losing_a_race_to_another_writer_keeps_the_winners_entry(tmp_path: Path) -> None:
    arrays = {n: np.arange(6, dtype=np.float32).reshape(3, 2) for n in cache.ARRAY_NAMES}
    entry = tmp_path / "c" / "x-1"
    assert cache.save_entry(entry, arrays, {"who": "winner"})
    other = {n: a + 1 for n, a in arrays.items()}
    assert cache.save_entry(entry, other, {"who": "loser"})
    assert entries(tmp_path / "c") == ["x-1"]  # no temporary directory left behind
    np.testing.assert_array_equal(cache.load_entry(entry, mmap=True)["X_train"], arrays["X_train"])


def _load_in_worker(data_dir: str, cache_dir: str, start=None) -> bytes:
    if start is not None:
        start.wait(timeout=240)  # both interpreters are up: start both builds at once
    ds = load_dataset("mnist", data_dir=data_dir, cache_dir=cache_dir, normalization="zscore")
    return hashlib.sha256(np.ascontiguousarray(ds.X_train).tobytes() + ds.y_val.tobytes()).digest()


def test_two_processes_building_the_cache_at_once_agree(tmp_path: Path) -> None:
    write_idx_set(tmp_path / "d", n_train=3000, n_test=500)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(2) as pool:
        start = manager.Barrier(2)
        digests = pool.starmap(_load_in_worker, [(str(tmp_path / "d"), str(tmp_path / "c"), start)] * 2)
    assert digests[0] == digests[1]
    (entry,) = entries(tmp_path / "c")  # one complete entry, no temporaries
    assert sorted(p.name for p in (tmp_path / "c" / entry).iterdir()) == sorted(
        [f"{n}.npy" for n in cache.ARRAY_NAMES] + ["meta.json"])
    assert _load_in_worker(str(tmp_path / "d"), str(tmp_path / "c")) == digests[0]


# ---- download --------------------------------------------------------------------------------

@pytest.fixture
def local_server(tmp_path: Path):
    """An HTTP server on 127.0.0.1 serving tmp_path/served; yields its base URL."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None  # keep test output quiet
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def test_download_fetches_verifies_and_loads(tmp_path: Path, local_server, monkeypatch) -> None:
    served, url = local_server
    write_idx_set(served)
    files = tuple(registry.RemoteFile(f, _md5(served / f)) for f in IDX_FILES)
    served_mnist = dataclasses.replace(registry.REGISTRY["mnist"], base_url=url, files=files)
    monkeypatch.setitem(registry.REGISTRY, "mnist", served_mnist)
    with pytest.raises(DatasetNotFoundError, match="download=True"):
        load_dataset("mnist")  # never downloads unless asked
    ds = load_dataset("mnist", download=True)
    target = tmp_path / "xdg" / "numpy-hpsearch" / "mnist"
    assert sorted(os.listdir(target)) == sorted(IDX_FILES)
    assert ds.X_test.shape == (20, 784)
    for f in IDX_FILES:
        (served / f).unlink()
    assert load_dataset("mnist", download=True).X_test.shape == (20, 784)  # found locally, no fetch


def test_checksum_mismatch_raises_and_leaves_no_file(tmp_path: Path, local_server, monkeypatch) -> None:
    served, url = local_server
    write_idx_set(served)  # tiny files: the real published MD5s cannot match
    monkeypatch.setitem(registry.REGISTRY, "mnist", dataclasses.replace(registry.REGISTRY["mnist"], base_url=url))
    with pytest.raises(DatasetError, match="checksum mismatch.*f68b3c2dcbeaaa9fbdd348bbdeb94873"):
        load_dataset("mnist", download=True)
    assert entries(tmp_path / "xdg" / "numpy-hpsearch" / "mnist") == []


def test_missing_remote_file_is_a_dataset_error(local_server, monkeypatch) -> None:
    _, url = local_server  # serves nothing: 404
    monkeypatch.setitem(registry.REGISTRY, "cifar10", dataclasses.replace(registry.REGISTRY["cifar10"], base_url=url))
    with pytest.raises(DatasetError, match="cifar-10-python.tar.gz"):
        load_dataset("cifar10", download=True)


# ---- the real thing, when Debian's dataset-fashion-mnist is installed (about 2 s cold) ------------

REAL = Path("/usr/share/datasets/fashion-mnist")


def test_real_fashion_mnist_loads_with_official_sizes(monkeypatch) -> None:
    if not (REAL / "train-images-idx3-ubyte.gz").exists():
        missing("Fashion-MNIST (apt-get install dataset-fashion-mnist)")
    monkeypatch.setattr(locate, "SYSTEM_DATA_DIRS", (str(REAL.parent),))
    ds = load_dataset("fashion-mnist")
    assert ds.X_train.shape == (54000, 784) and ds.X_val.shape == (6000, 784) and ds.X_test.shape == (10000, 784)
    assert np.bincount(ds.y_test).tolist() == [1000] * 10
    assert np.bincount(ds.y_val).tolist() == [600] * 10
    assert abs(float(ds.X_train.mean())) < 1e-4 and abs(float(ds.X_train.std()) - 1) < 1e-3
