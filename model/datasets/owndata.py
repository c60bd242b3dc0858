"""``load_file``: a user's file -> split -> preprocessed float32 arrays, cached by content.

The same trip as ``load_dataset`` takes for the built-in sets, for a file of
one's own: read it (``npzfile``, ``table``, ``imagefolder``), turn labels into
class indices, hold out a stratified test split and a validation split where
the file gives none (``test_seed``, ``split_seed``), fit the preprocessing on
the training split alone, and keep the arrays as memory-mapped ``.npy`` files
under the file's content digest. A worker then opens the entry in
milliseconds and never parses the file; one on a machine without the entry
rebuilds it from the path, and the bytes it parses are the bytes it hashes
(``intake``): an entry is only ever built from the content its key names.

All of it runs behind the reading boundary (``reading``): whatever goes wrong
leaves as one ``DatasetError`` line naming the file, and the cache entry is
written only once the data has been read, checked and converted.

The returned ``Dataset`` carries ``record``: the file's identity (path,
digest, kind), its shapes, classes and preprocessing, and what was imputed or
dropped: what a study stores so that it can later refuse a changed file and
predict on raw inputs.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import cache
from .dataset import Dataset
from .encoding import encoding_need
from .errors import DatasetError
from .filesource import FileSource, content_digest, file_kind
from .imagefolder import IMAGE_SUFFIXES, read_image_folder
from .intake import Intake, shown
from .memory import MemoryBudget
from .npzfile import read_npz
from .prepare import TEST_FRACTION, stratified_split
from .preprocessing import Preprocessing
from .rawdata import RawData, RawPart
from .reading import reading
from .table import read_table

__all__ = ["MAX_CLASSES", "TASKS", "decide_task", "draw_splits", "load_file", "read_input", "with_digest"]

logger = logging.getLogger(__name__)

MAX_CLASSES = 1000
TASKS = ("classification", "regression")
# A numeric target with more distinct values than REGRESSION_DISTINCT, and at least one per
# 1 / REGRESSION_SHARE rows, is a number to predict (a price, a wage); fewer values are classes
# (class codes 0..99 in 50,000 rows stay classes). --task decides instead.
REGRESSION_DISTINCT = 20
REGRESSION_SHARE = 0.05


def with_digest(source: FileSource) -> FileSource:
    """The source with its content digest: the study's identity of the data."""
    path = os.path.abspath(source.path)
    with reading(path):
        file_kind(path)  # a missing or unknown file is refused before it is read
        return dataclasses.replace(source, path=path, digest=content_digest(path))


def _read(
    source: FileSource,
    path: Path,
    kind: str,
    labelled: bool,
    target: str | None,
    intake: Intake,
    gray: bool | None = None,
) -> RawData:
    """The rows of ``path`` by the reader of its ``kind``: the one dispatch from a kind to its reader."""
    if kind == "npz":
        return read_npz(path, source.x_key, source.y_key, labelled, intake)
    if kind == "table":
        return read_table(path, target, source.missing, labelled, intake)
    return read_image_folder(path, source.image_size, labelled, intake, gray)


def read_input(
    source: FileSource,
    path: str | os.PathLike[str],
    labelled: bool,
    target: str | None = None,
    image_shape: list[int] | None = None,
) -> RawData:
    """The rows of ``path`` read as ``source``'s kind says (a single image is an image input).

    ``image_shape``: the study's, (H, W) or (C, H, W): image files are read in its colours.
    """
    p = Path(path)
    with reading(p):
        kind = "images" if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES else file_kind(p)
        if kind != source.kind:
            raise DatasetError(
                f"{shown(p)}: a {kind} input, but the study's data is a {source.kind} file ({shown(source.label)})"
            )
        gray = None if not image_shape else len(image_shape) == 2
        return _read(source, p, kind, labelled, target if target is not None else source.target, Intake(p), gray)


def draw_splits(
    y: np.ndarray, val_fraction: float, split_seed: int, test_seed: int, has_test: bool, stratify: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices (train, val, test) of labels ``y``: test drawn unless the file gives one (then empty).

    Stratified by class; ``stratify=False`` (numbers to predict): drawn at random, as one stratum.
    """
    if not stratify:
        y = np.zeros(len(y), dtype=np.int64)
    if has_test:
        keep, test = np.arange(len(y)), np.empty(0, dtype=np.int64)
    else:
        keep, test = stratified_split(y, TEST_FRACTION, np.random.default_rng(test_seed))
    train, val = stratified_split(y[keep], val_fraction, np.random.default_rng(split_seed))
    return keep[train], keep[val], test


def decide_task(labels: np.ndarray, task: str | None, label: str) -> str:
    """The question the target asks: ``task`` where given (checked), else by REGRESSION_DISTINCT and _SHARE."""
    numeric = labels.dtype.kind in "iuf"
    if task == "regression" and not numeric:
        text = list(dict.fromkeys(shown(str(v)) for v in labels.tolist() if not isinstance(v, (int, float))))[:3]
        raise DatasetError(
            f"{label}: --task regression needs numbers in the target, got text such as {', '.join(map(repr, text))}"
        )
    if task is not None:
        return task
    distinct = len(np.unique(labels)) if numeric and len(labels) else 0
    many = distinct > REGRESSION_DISTINCT and distinct >= REGRESSION_SHARE * len(labels)
    return "regression" if many else "classification"


def _classes(raw: RawData, label: str, stated: bool = False) -> list[Any]:
    labels = raw.all_labels()
    classes = [c.item() if hasattr(c, "item") else c for c in np.unique(labels)]
    if not classes:
        raise DatasetError(f"{label}: no labelled rows")
    if len(classes) < 2:
        raise DatasetError(f"{label}: every row has the label {classes[0]!r}; a classifier needs two classes or more")
    if len(classes) > 20 and len(classes) > len(labels) / 2 and not stated:  # numbers this varied are regression
        raise DatasetError(
            f"{label}: {len(classes)} distinct labels in {len(labels)} rows; these name rows rather than classes "
            "(--task classification learns them as classes all the same)"
        )
    if len(classes) > MAX_CLASSES:
        raise DatasetError(f"{label}: {len(classes)} classes; a study classifies into at most {MAX_CLASSES}")
    return classes


def _check_class_sizes(y: np.ndarray, classes: list[Any], label: str, splits_drawn: int) -> None:
    counts = np.bincount(y, minlength=len(classes))
    need = splits_drawn + 1  # one row in each split drawn, one left for training
    small = [(classes[i], int(n)) for i, n in enumerate(counts) if n < need]
    if small:
        shown = ", ".join(f"{c!r} ({n} row{'s' if n != 1 else ''})" for c, n in small[:5])
        raise DatasetError(
            f"{label}: too few rows to stratify: class {shown}; each class needs at least {need} "
            "(training, validation and test rows)"
        )


def _labels(part: RawPart, label: str) -> np.ndarray:
    if part.labels is None:  # readers give labels for training data or refuse it
        raise DatasetError(f"{label}: rows without labels")
    return part.labels


def _take(X: Any, rows: np.ndarray) -> Any:
    return X.iloc[rows] if isinstance(X, pd.DataFrame) else X[rows]


Rows = dict[str, np.ndarray]  # row indices of the file's training part, per split


def _split(
    raw: RawData,
    y_all: np.ndarray,
    classes: list[Any],
    label: str,
    val_fraction: float,
    split_seed: int,
    test_seed: int,
) -> Rows:
    """Which rows of the training part go to each split: the file's own splits, the rest drawn.

    ``y_all``: the strata (class indices; one stratum of zeros for numbers, ``classes`` then ``["rows"]``).
    """
    has_test = "test" in raw.parts
    if has_test and test_seed:
        raise DatasetError(f"{label} gives its own test split: test_seed must be 0, got {test_seed}")
    if "val" not in raw.parts:
        _check_class_sizes(y_all, classes, label, 1 if has_test else 2)
        train, val, test = draw_splits(y_all, val_fraction, split_seed, test_seed, has_test)
        return {"train": train, "val": val, "test": test}
    if has_test:
        return {"train": np.arange(len(y_all)), "test": np.empty(0, dtype=np.int64)}
    keep, test = stratified_split(y_all, TEST_FRACTION, np.random.default_rng(test_seed))
    return {"train": keep, "test": test}


def _encode(
    raw: RawData,
    idx: Rows,
    y_all: np.ndarray,
    classes: list[Any],
    normalization: str | None,
    budget: MemoryBudget,
    targets: Preprocessing | None = None,
) -> tuple[dict[str, np.ndarray], Preprocessing]:
    """The six arrays: preprocessing fitted on the training rows, applied to every split.

    ``targets``: a regression study's target statistics (``Preprocessing.with_target``), which ``y_all``
    is standardised by; None: ``y_all`` holds class indices.
    """
    label = budget.label
    if raw.layout == "table":  # arrays and images were sized from their headers when read
        need = sum(encoding_need(p.X) for p in raw.parts.values())
        budget.check(need, "encoding it", "use a sample of the rows, fewer text columns, or a machine with more memory")
    train_part = raw.parts["train"]
    labels = targets or Preprocessing(raw.layout, classes, "none", 0)  # labels only, until fitted
    encode_y = labels.encode_targets if targets is not None else labels.encode_labels
    prep = Preprocessing.fit(raw, _take(train_part.X, idx["train"]), classes, normalization, raw.target)
    if targets is not None:
        prep = dataclasses.replace(
            prep, task=targets.task, target_mean=targets.target_mean, target_scale=targets.target_scale
        )
    # The file's rows encoded once, then split. A category that only held-out rows have is
    # encoded as none ("ignore"), as it will be for predict's inputs: it is not a fault of the file.
    X_all = prep.transform(train_part.X, unseen="ignore")
    arrays = {}
    for part in ("train", "val", "test"):
        if part != "train" and part in raw.parts:  # a split the file gives
            arrays[f"X_{part}"] = prep.transform(raw.parts[part].X, unseen="ignore")
            arrays[f"y_{part}"] = encode_y(_labels(raw.parts[part], label))
        else:
            arrays[f"X_{part}"] = X_all[idx[part]]
            arrays[f"y_{part}"] = y_all[idx[part]]
    return arrays, prep


def _record(
    source: FileSource, raw: RawData, arrays: dict[str, np.ndarray], prep: Preprocessing, classes: list[Any]
) -> dict[str, Any]:
    """What the study stores about its data: identity, shapes, classes, preprocessing, what was imputed."""
    imputed = {}
    if prep.table is not None:
        missing = pd.concat([p.X[prep.table.columns].isna().sum() for p in raw.parts.values()], axis=1).sum(axis=1)
        imputed = {str(c): int(n) for c, n in missing.items() if n}
    parts = ("train", "val", "test")
    y = np.concatenate([arrays[f"y_{p}"] for p in parts])
    if prep.task == "regression":
        numbers = prep.decode_targets(y)
        counts: list[int] = []
        low, high = (float(f"{v:.6g}") for v in (numbers.min(), numbers.max()))  # float32's digits, no more
        target = {"mean": prep.target_mean, "sd": prep.target_scale, "min": low, "max": high,
                  "distinct": int(len(np.unique(numbers.astype(np.float32))))}  # fmt: skip
    else:
        counts, target = np.bincount(y, minlength=len(classes)).tolist(), {}
    return {
        "path": source.path,
        "label": source.label,
        "kind": source.kind,
        "digest": source.digest,
        "layout": raw.layout,
        "rows": {p: int(len(arrays[f"y_{p}"])) for p in parts},
        "given_splits": sorted(raw.parts),
        "n_features": prep.n_features,
        "image_shape": prep.image_shape,
        "task": prep.task,
        "classes": classes,  # [] for numbers
        "class_counts": counts,
        "target": target,  # numbers: the training split's mean and sd, the range and the distinct values
        "imputed": imputed,
        "dropped": prep.table.dropped if prep.table else [],
        "dates": prep.table.dates if prep.table else [],
        "notes": list(raw.notes),
        "preprocessing": prep.to_json(),
    }


def _prepare(
    source: FileSource, val_fraction: float, normalization: str | None, split_seed: int, test_seed: int
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read, split, encode and describe the file: the arrays to cache and the study's record.

    The bytes parsed are the bytes hashed: a file that is not the content ``source.digest``
    names (changed since it was hashed, or since the study began) is refused.
    """
    label = source.label
    intake = Intake(source.path, MemoryBudget(shown(source.path)))
    raw = _read(source, Path(source.path), source.kind, True, source.target, intake)
    if intake.digest != source.digest:
        raise DatasetError(
            f"data file {shown(source.path)} has changed since the study began (content "
            f"{source.digest[:12]}... then, {intake.digest[:12]}... now); start a new --study to use it"
        )
    task = decide_task(raw.all_labels(), source.task, label)
    if task == "regression":  # numbers: split at random, standardised on the training rows
        values = _labels(raw.parts["train"], label)
        idx = _split(raw, np.zeros(len(values), dtype=np.int64), ["rows"], label, val_fraction, split_seed, test_seed)
        targets = Preprocessing(raw.layout, [], "none", 0).with_target(values[idx["train"]])
        y_all = targets.encode_targets(values)
        arrays, prep = _encode(raw, idx, y_all, [], normalization, intake.budget, targets)
        return arrays, _record(source, raw, arrays, prep, [])
    classes = _classes(raw, label, stated=source.task is not None)
    y_all = Preprocessing(raw.layout, classes, "none", 0).encode_labels(_labels(raw.parts["train"], label))
    idx = _split(raw, y_all, classes, label, val_fraction, split_seed, test_seed)
    arrays, prep = _encode(raw, idx, y_all, classes, normalization, intake.budget)
    return arrays, _record(source, raw, arrays, prep, classes)


def _entry_name(label: str, key: str) -> str:
    return "file-" + re.sub(r"[^A-Za-z0-9_.-]", "_", label)[:40] + "-" + key


def load_file(
    source: FileSource,
    *,
    val_fraction: float = 0.2,
    normalization: str | None = None,
    split_seed: int = 0,
    test_seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    mmap: bool = True,
) -> Dataset:
    """A user's file as a ``Dataset`` (see the module docstring); ``source.digest`` "" = hash it now."""
    if not source.digest:
        source = with_digest(source)
    folder = Path(cache_dir) if cache_dir is not None else cache.default_cache_dir()

    def entry_of(source: FileSource) -> Path:
        options = {k: v for k, v in dataclasses.asdict(source).items() if k != "path"}
        key = cache.cache_key(
            kind="file",
            val_fraction=float(val_fraction),
            normalization=normalization,
            split_seed=int(split_seed),
            test_seed=int(test_seed),
            **options,
        )
        return folder / _entry_name(source.label, key)

    entry = entry_of(source)
    if source.task is not None:  # the entry made when the target decided the same task is this one's
        decided = entry_of(dataclasses.replace(source, task=None))
        meta = cache.load_meta(decided)
        if meta is not None and meta["record"].get("task", "classification") == source.task:
            entry = decided

    def build() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if not os.path.lexists(source.path):
            raise DatasetError(
                f"data file {shown(source.path)} is not on this machine ({socket.gethostname()}): copy it "
                "to the same path on every machine that runs trials"
            )
        start = time.perf_counter()
        with reading(source.path):
            arrays, record = _prepare(source, float(val_fraction), normalization, int(split_seed), int(test_seed))
        record["seconds_to_prepare"] = round(time.perf_counter() - start, 3)
        logger.info("prepared %s in %.2f s", source.path, record["seconds_to_prepare"])
        return arrays, {"record": record}

    arrays, meta = cache.load_or_build(entry, mmap, build)
    record = dict(meta["record"], path=source.path)  # the path this machine knows it by
    shape = record["image_shape"]
    regression = record.get("task") == "regression"
    prep = record["preprocessing"]
    return Dataset(
        name=record["label"],
        n_classes=1 if regression else len(record["classes"]),  # a regression network's one output
        task="regression" if regression else "classification",
        target_scale=(prep["target_mean"], prep["target_scale"]) if regression else None,
        normalization=record["preprocessing"]["normalization"] if record["layout"] == "image" else "zscore",
        image_shape=tuple(shape) if shape else None,
        record=record,
        **arrays,
    )
