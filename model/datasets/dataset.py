"""``load_dataset``: raw files -> split -> normalised float32 arrays, cached.

Steps, each in its own module: find the raw files (``locate``; download only
when asked), parse the official format (``idx``, ``cifar``, or scikit-learn's
bundled digits), take a stratified validation split out of the training set,
scale to [0, 1] and normalise with training statistics (``prepare``), and keep
the result as memory-mapped ``.npy`` files (``cache``).

Defaults, measured or conventional:
- digits has no official test split, so 20 % is set aside, stratified, with
  ``test_seed`` (default 0, independent of ``split_seed``, so every study
  scores on the same 359 test images (20 % of 1797) unless it asks for another
  draw: 359 images resolve only about 0.3 points, so a benchmark that repeats
  varies them);
- normalization: "image" for digits, MNIST and Fashion-MNIST (on digits it
  tied with "zscore", see the registry), "channel" for CIFAR.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import cache, locate
from .cifar import read_cifar
from .download import download_dataset
from .encoding import TableEncoding
from .errors import DatasetError, DatasetNotFoundError
from .idx import read_idx_split
from .prepare import TEST_FRACTION, normalize, stratified_split, to_unit_float32
from .reading import reading
from .registry import NORMALIZATIONS, DatasetSpec, get_spec

__all__ = ["Dataset", "load_dataset"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dataset:
    """A data set split three ways, ready for an MLP.

    X_* are float32 (n, n_features), C-contiguous; y_* are int64 (n,) in
    [0, n_classes), or for a regression data set (``task``) float32 (n,) targets
    standardised on the training split (``target_scale``: their mean and
    standard deviation, to turn them back into the target's units) and
    ``n_classes`` 1, the network's one output. Arrays are read-only (memory maps of the shared cache when
    ``mmap=True``): copy before modifying, e.g. ``X_train[perm]`` is a copy.
    """

    name: str
    X_train: np.ndarray = field(repr=False)  # (n_train, n_features)
    y_train: np.ndarray = field(repr=False)  # (n_train,)
    X_val: np.ndarray = field(repr=False)
    y_val: np.ndarray = field(repr=False)
    X_test: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    n_classes: int
    normalization: str  # which of NORMALIZATIONS was applied
    image_shape: tuple[int, ...] | None = None  # a row's layout, (H, W) or (C, H, W): for augmentation
    record: dict[str, Any] | None = field(default=None, repr=False)  # a file's identity and preprocessing (owndata)
    task: str = "classification"  # or "regression": y holds numbers
    target_scale: tuple[float, float] | None = None  # regression: (mean, sd) of the training targets

    def __post_init__(self) -> None:
        if self.normalization not in NORMALIZATIONS:
            raise DatasetError(f"normalization must be one of {NORMALIZATIONS}, got {self.normalization=}")
        d = self.X_train.shape[1] if self.X_train.ndim == 2 else None
        for part in ("train", "val", "test"):
            X, y = getattr(self, f"X_{part}"), getattr(self, f"y_{part}")
            if X.dtype != np.float32 or X.ndim != 2 or X.shape[1] != d or not X.flags.c_contiguous:
                raise DatasetError(f"X_{part} must be C-contiguous float32 (n, {d}), got {X.dtype} {X.shape}")
            dtype = np.float32 if self.task == "regression" else np.int64
            if y.dtype != dtype or y.shape != (X.shape[0],):
                raise DatasetError(f"y_{part} must be {np.dtype(dtype)} ({X.shape[0]},), got {y.dtype} {y.shape}")
        if self.image_shape is not None and int(np.prod(self.image_shape)) != d:
            raise DatasetError(
                f"image_shape {self.image_shape} holds {int(np.prod(self.image_shape))} pixels, "
                f"but rows have {d} features"
            )

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def number_columns(self) -> list[int]:
        """The columns holding a table's numbers, the ones periodic features expand and learned embeddings
        embed: a file's table says
        which (not its one-hot text, nor its missing-indicators); rows without a layout (arrays) are all
        numbers; an image has none."""
        if self.image_shape is not None:
            return []
        table = ((self.record or {}).get("preprocessing") or {}).get("table")
        return TableEncoding.from_json(table).number_columns if table else list(range(self.n_features))


def _check_options(val_fraction: float, normalization: str | None, split_seed: int, test_seed: int) -> None:
    if not isinstance(val_fraction, (int, float)) or not 0.0 < val_fraction <= 0.5:
        raise DatasetError(f"val_fraction must be in (0, 0.5], got {val_fraction=}")
    if normalization is not None and normalization not in NORMALIZATIONS:
        raise DatasetError(f"normalization must be None or one of {NORMALIZATIONS}, got {normalization=}")
    for name, seed in (("split_seed", split_seed), ("test_seed", test_seed)):
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise DatasetError(f"{name} must be a non-negative int, got {name}={seed!r}")


def _find_source(spec: DatasetSpec, data_dir: str | os.PathLike[str] | None, download: bool) -> locate.RawSource:
    try:
        return locate.locate(spec, data_dir)
    except DatasetNotFoundError:
        if not download:
            raise
    target = locate.user_data_dir(spec)
    logger.info("downloading %s into %s", spec.name, target)
    download_dataset(spec, target)
    found = locate.find_in(spec, target)
    if found is None:
        raise DatasetError(f"downloaded {spec.name!r} into {target} but the files are incomplete")
    return found


def _read_raw(
    spec: DatasetSpec, source: locate.RawSource | None, test_seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """(X_train, y_train, X_test, y_test, max_value) with X as (n, d) raw intensities."""
    if spec.format == "sklearn":
        from sklearn.datasets import load_digits  # imported lazily: only digits needs scikit-learn

        digits = load_digits()
        X, y = digits.data.astype(np.uint8), digits.target.astype(np.int64)  # (1797, 64) in 0..16
        keep, test = stratified_split(y, TEST_FRACTION, np.random.default_rng(test_seed))
        return X[keep], y[keep], X[test], y[test], 16.0
    assert source is not None
    if spec.format == "idx":
        p = source.paths
        X_tr, y_tr = read_idx_split(p["train-images-idx3-ubyte"], p["train-labels-idx1-ubyte"], spec.n_classes)
        X_te, y_te = read_idx_split(p["t10k-images-idx3-ubyte"], p["t10k-labels-idx1-ubyte"], spec.n_classes)
    else:
        X_tr, y_tr, X_te, y_te = read_cifar(source, spec.label_key, spec.n_classes)
    if X_tr.shape[1] != X_te.shape[1]:
        raise DatasetError(f"{spec.name}: train images have {X_tr.shape[1]} pixels, test {X_te.shape[1]}")
    return X_tr, y_tr, X_te, y_te, 255.0


def _prepare(
    spec: DatasetSpec,
    source: locate.RawSource | None,
    val_fraction: float,
    normalization: str,
    split_seed: int,
    test_seed: int,
) -> dict[str, np.ndarray]:
    X_tr, y_tr, X_te, y_te, max_value = _read_raw(spec, source, test_seed)
    keep, val = stratified_split(y_tr, val_fraction, np.random.default_rng(split_seed))
    X_train = to_unit_float32(X_tr[keep], max_value)
    X_val = to_unit_float32(X_tr[val], max_value)
    X_test = to_unit_float32(X_te, max_value)
    X_train, X_val, X_test = normalize(X_train, X_val, X_test, normalization, spec.n_channels)
    return {
        "X_train": X_train,
        "y_train": y_tr[keep],
        "X_val": X_val,
        "y_val": y_tr[val],
        "X_test": X_test,
        "y_test": y_te,
    }


def load_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
    val_fraction: float = 0.1,
    normalization: str | None = None,
    split_seed: int = 0,
    test_seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    mmap: bool = True,
) -> Dataset:
    """Load one of ``DATASETS`` as train/validation/test float32 arrays.

    name: a key of DATASETS. data_dir: searched first for the raw files (see
    ``locate`` for the full order). download: fetch the official files into the
    user cache if they are found nowhere. val_fraction: share of each class of
    the training set held out for validation, in (0, 0.5], drawn with
    ``split_seed``; the official test set is never touched. test_seed: which
    20 % of digits is its test split (data sets with an official test split
    take only 0). normalization: one
    of NORMALIZATIONS, None for the data set's default. cache_dir: where the
    prepared arrays are kept (default ``$NUMPY_HPSEARCH_CACHE`` or the user
    cache). mmap: return read-only memory maps of the cache files, shared
    between processes, instead of private in-memory copies.
    """
    spec = get_spec(name)
    _check_options(val_fraction, normalization, split_seed, test_seed)
    if test_seed and spec.official_test_split:
        raise DatasetError(f"{name!r} has an official test split: test_seed must be 0, got {test_seed}")
    method = normalization if normalization is not None else spec.default_normalization
    if method == "channel" and spec.n_channels == 1:
        raise DatasetError(f"normalization='channel' needs colour data; {name!r} is grayscale: use 'image' or 'zscore'")
    source = None if spec.format == "sklearn" else _find_source(spec, data_dir, download)
    if source is None:
        # The version from package metadata: importing scikit-learn costs every worker 0.6 s and 60 MB.
        fingerprint: object = f"sklearn-{importlib.metadata.version('scikit-learn')}"
    else:
        fingerprint = source.fingerprint()
    key = cache.cache_key(
        name=name,
        val_fraction=float(val_fraction),
        normalization=method,
        split_seed=int(split_seed),
        test_seed=int(test_seed),
        source=fingerprint,
    )
    entry = (Path(cache_dir) if cache_dir is not None else cache.default_cache_dir()) / f"{name}-{key}"

    def build() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        start = time.perf_counter()
        where = name if source is None else os.path.commonpath([str(p) for p in source.paths.values()])
        with reading(where):
            arrays = _prepare(spec, source, float(val_fraction), method, int(split_seed), int(test_seed))
        logger.info("prepared %s in %.2f s", name, time.perf_counter() - start)
        meta = {
            "name": name,
            "val_fraction": val_fraction,
            "normalization": method,
            "split_seed": split_seed,
            "test_seed": test_seed,
            "source": fingerprint,
        }
        return arrays, meta

    arrays, _ = cache.load_or_build(entry, mmap, build)
    return Dataset(
        name,
        arrays["X_train"],
        arrays["y_train"],
        arrays["X_val"],
        arrays["y_val"],
        arrays["X_test"],
        arrays["y_test"],
        n_classes=spec.n_classes,
        normalization=method,
        image_shape=spec.image_shape,
    )
