"""Which data a study trains on, and the folds cut from it: the same in every process.

A ``DataRef`` is small and hashable, so a task ships it instead of arrays; each
process that trains (a worker, ``best --retrain``, the probe) loads the data
once and memory-maps the cached arrays. Folds are cut from train + validation
only: the test split is never part of them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np

from model.datasets import Dataset, FileSource, load_dataset, load_file, with_digest
from search.study.metrics import CLASSIFICATION, REGRESSION

if TYPE_CHECKING:
    from search.study.spec import StudySpec

__all__ = ["DataRef", "Fold", "in_target_units", "stratified_folds", "task_decided", "task_of"]


@dataclass(frozen=True, slots=True)
class DataRef:
    """Which prepared data a task trains on; workers memory-map its cache.

    A file of one's own travels as its path, reading options and content digest
    (``file``), so a worker finds the cache entry without parsing or hashing it.
    """

    name: str
    val_fraction: float = 0.1
    normalization: str | None = None
    data_dir: str | None = None
    test_seed: int = 0  # which draw of the test split where the data has none of its own
    file: FileSource | None = None  # its ``task``: the study's (None: the file's target decides it)

    @classmethod
    def of(cls, spec: StudySpec, data_dir: str | None = None) -> DataRef:
        """The data a study's trials, finalists and final networks train and score on (a file: hashed now)."""
        val_fraction = cast(float, spec.val_fraction)  # None only until StudySpec fills in the data set's
        source = spec.file_source()
        return cls(
            spec.data_name,
            val_fraction,
            spec.normalization,
            data_dir,
            spec.test_seed,
            None if source is None else with_digest(source),
        )

    def load(self) -> Dataset:
        return _load(self)

    def folds(self, k: int, seed: int) -> tuple[Fold, ...]:
        """``k`` folds of train + validation, stratified by class (1: the fixed validation split)."""
        return _folds(self, k, seed)


@dataclass(frozen=True, slots=True)
class Fold:
    X_train: np.ndarray  # (n_train, n_features)
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray


@functools.lru_cache(maxsize=2)
def _load(ref: DataRef) -> Dataset:
    # Once per worker process: the arrays are memory-mapped from the shared .npy cache.
    if ref.file is not None:
        return load_file(
            ref.file, val_fraction=ref.val_fraction, normalization=ref.normalization, test_seed=ref.test_seed
        )
    return load_dataset(
        ref.name,
        data_dir=ref.data_dir,
        val_fraction=ref.val_fraction,
        normalization=ref.normalization,
        test_seed=ref.test_seed,
    )


@functools.lru_cache(maxsize=4)
def _folds(ref: DataRef, k: int, seed: int) -> tuple[Fold, ...]:
    data = ref.load()
    if k == 1:
        return (Fold(data.X_train, data.y_train, data.X_val, data.y_val),)
    # Folds are cut from train + validation; the test split is never part of them.
    X = np.concatenate([data.X_train, data.X_val])
    y = np.concatenate([data.y_train, data.y_val])
    # classes spread evenly over the folds; numbers at random (one stratum)
    strata = y if data.task == CLASSIFICATION else np.zeros(len(y), dtype=np.int64)
    fold_of = stratified_folds(strata, k, np.random.default_rng([seed, k]))
    return tuple(Fold(X[fold_of != i], y[fold_of != i], X[fold_of == i], y[fold_of == i]) for i in range(k))


def stratified_folds(y: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Each row's fold in 0..k-1; every class spread over the folds as evenly as it divides."""
    fold_of = np.empty(len(y), dtype=np.int64)
    offset = 0
    for c in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == c))
        fold_of[rows] = (np.arange(len(rows)) + offset) % k
        offset += len(rows)  # the next class starts where this one ended: fold sizes stay level
    return fold_of


def in_target_units(data: Dataset, y: np.ndarray) -> np.ndarray:
    """Regression targets or predictions, standardised on the training split, back in the target's units."""
    if data.target_scale is None:
        return y
    mean, scale = data.target_scale
    return np.asarray(y, dtype=np.float64) * scale + mean


def task_of(data: Dataset) -> str:
    """The question the data asks: ``regression`` for a numeric target, else ``classification``."""
    return data.task


def task_decided(data: Dataset) -> str:
    """The one line a run says when the target decided the task."""
    task = task_of(data)
    other = REGRESSION if task == CLASSIFICATION else CLASSIFICATION
    why = "numbers with many distinct values" if task == REGRESSION else "labels"
    return f"task    {task}, decided from the target ({why}); --task {other} decides otherwise"
