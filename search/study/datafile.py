"""A study's record of the file it searches on, and the refusal of a file that changed since.

A study made with ``--data`` stores, beside its spec, what the data was when
it began (``keys.DATA_FILE``): path, content digest, kind, shapes, class names,
the preprocessing fitted on the training split, what was imputed or dropped.
``run`` on an existing study, ``resume``, ``best --retrain`` and ``predict``
compare the file's digest with it before anything else: trials scored on one
file and retrained or applied on another would mix two data sets silently.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from optuna.storages import RDBStorage

from model.datasets import Preprocessing, with_digest
from model.datasets.dates import PARTS
from model.datasets.intake import shown
from search.errors import SearchError
from search.study import keys
from search.study.dataref import DataRef
from search.study.spec import StudySpec
from search.study.storage import peek_study_attrs

__all__ = [
    "check_source_unchanged",
    "check_unchanged",
    "every_row_ratio",
    "every_row_refusal",
    "peek_record",
    "preprocessing_of",
    "record_in",
    "record_of",
]


def record_of(storage: RDBStorage, study_id: int) -> dict[str, Any] | None:
    raw = storage.get_study_user_attrs(study_id).get(keys.DATA_FILE)
    return None if raw is None else json.loads(raw)


def record_in(attrs: dict[str, Any] | None) -> dict[str, Any] | None:
    """The record among a study's user attrs (None: no study, or a built-in data set)."""
    raw = (attrs or {}).get(keys.DATA_FILE)
    return None if raw is None else json.loads(raw)


def peek_record(url: str, study: str) -> dict[str, Any] | None:
    """The stored record of ``study`` if the storage and the study exist (read-only; creates nothing)."""
    return record_in(peek_study_attrs(url, study))


def every_row_ratio(record: dict[str, Any] | None) -> float:
    """Every row of the file over train + validation when a budget's final networks are trained again on
    every row for ``predict``, else 0 (``every_row_refusal`` says why).

    A table whose test rows the service drew (the file gave none): the score is taken on them
    first, by networks that never saw them; then the same networks learn from them too, as a
    refit on all rows does in scikit-learn. The boosted trees and FLAML a user compares with
    train on every row; measured, the gain was within noise and so was the cost of half the final
    networks (docs/budget.md, "Every row, measured").
    """
    if record is None or every_row_refusal(record):
        return 0.0
    seen = record["rows"]["train"] + record["rows"]["val"]
    return (seen + record["rows"].get("test", 0)) / seen


def every_row_refusal(record: dict[str, Any] | None) -> str:
    """Why a study's final networks are not trained again on every row, in words ("" where they are).

    ``best --retrain --every-row`` prints it, so that a flag that does nothing says so.
    """
    if record is None:
        return "a built-in data set (it applies to a table file whose test rows were drawn)"
    if "test" in record["given_splits"]:
        return "the file gave its own test rows (they are never trained on)"
    if record.get("layout") == "image":
        return "the file holds images (their final networks are a budget's dearest stage: one copy each)"
    if record.get("layout") != "table":
        return "the file holds arrays, not a table (it applies to a table, where it was measured)"
    return ""


def check_unchanged(record: dict[str, Any] | None, ref: DataRef, study: str) -> None:
    """Refuse a file whose content is not the one ``study`` was made with."""
    if record is None or ref.file is None:
        return
    if record["digest"] != ref.file.digest and record.get("path") != ref.file.path:  # other data, e.g. other arrays
        raise SearchError(
            f"study {study!r} was made from other data ({Path(record['path']).name}, content "
            f"{record['digest'][:12]}; this is {Path(ref.file.path).name}, content {ref.file.digest[:12]}): its "
            "trials belong to that data; search this one under a new study name"
        )
    if record["digest"] != ref.file.digest:
        raise SearchError(
            f"data file {ref.file.path} has changed since study {study!r} began (content {record['digest'][:12]} "
            f"then, {ref.file.digest[:12]} now); its trials belong to the old content: restore it, or search the "
            "new one under a new --study name"
        )


def check_source_unchanged(record: dict[str, Any] | None, spec: StudySpec, study: str) -> None:
    """A reader's check of the study's own file: gone is fine (the preprocessing is stored), changed is not."""
    source = spec.file_source()
    if record is not None and source is not None and os.path.exists(source.path):
        check_unchanged(record, DataRef(spec.data_name, file=with_digest(source)), study)


def preprocessing_of(record: dict[str, Any]) -> Preprocessing:
    return Preprocessing.from_json(record["preprocessing"])


def _target_row(record: dict[str, Any]) -> tuple[str, str]:
    """A regression study's target: its name, range and the training split's statistics it is standardised by."""
    t = record["target"]
    name = shown(str(record["preprocessing"].get("target") or "the target"))
    return (
        "target",
        f"{name}: numbers (regression), {t['distinct']} distinct from {t['min']:.6g} to {t['max']:.6g}; "
        f"standardised by the training split's mean {t['mean']:.6g} and sd {t['sd']:.6g}",
    )


def _classes_row(classes: list[str], counts: list[int]) -> tuple[str, str]:
    more = f" and {len(classes) - 12} more" if len(classes) > 12 else ""
    return "classes", ", ".join(f"{c} ({n})" for c, n in zip(classes[:12], counts)) + more


def describe_data(record: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, text) rows saying what the study's file is and what was done to it, for the summary and report.

    Names are shown as printable text: a file or class named with any bytes prints on one line.
    """
    rows, classes = record["rows"], [shown(str(c)) for c in record["classes"]]
    numbers = record.get("task") == "regression"  # a record stored before the task is one of classes
    how = "at random" if numbers else "stratified"
    drawn = "as the file gives them" if "test" in record["given_splits"] else f"test and validation drawn, {how}"
    shape = "x".join(map(str, record["image_shape"])) + " images, " if record.get("image_shape") else ""
    out = [
        (
            "data",
            f"{shown(record['label'])}: {record['kind']}, {sum(rows.values())} rows ({rows['train']} train / "
            f"{rows['val']} validation / {rows['test']} test, {drawn}), {shape}{record['n_features']} "
            f"features, " + ("a number to predict" if numbers else f"{len(classes)} classes"),
        ),
        _target_row(record) if numbers else _classes_row(classes, record["class_counts"]),
        ("content", f"sha256 {record['digest'][:16]} of {shown(record['path'])}"),
    ]
    if record["imputed"]:
        out.append(
            (
                "imputed",
                ", ".join(f"{shown(c)}: {n}" for c, n in record["imputed"].items())
                + " values (numbers: the training median plus a missing-indicator column; text: a category "
                "of its own)",
            )
        )
    if record.get("dates"):  # absent from the records of studies made before 2026-12-08
        out.append(("dates", shown(", ".join(map(repr, record["dates"]))) + f" read as {', '.join(PARTS)}"))
    if record["dropped"]:
        out.append(("dropped", shown("; ".join(record["dropped"]))))
    if record["notes"]:
        out.append(("read", shown("; ".join(record["notes"]))))
    return out
