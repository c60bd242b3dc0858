"""``predict``: the study's final networks applied to new inputs in the form of its data file.

The inputs go through the preprocessing stored with the study (fitted on its
training split when the study began), then through the ensemble that the last
``best --retrain`` scored; each row gets its predicted class name and every
class's probability, in input order. Everything is computed before anything is
written, so a refused input leaves no partial output.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from model.datasets import DatasetError, read_input, with_digest
from search.errors import SearchError
from search.readers.ensemble import load_final_networks
from search.study.datafile import check_unchanged, preprocessing_of, record_of
from search.study.dataref import DataRef
from search.study.storage import default_url, open_storage
from search.study.stored import load_spec

__all__ = ["Prediction", "predict_file"]


@dataclass(frozen=True)
class Prediction:
    table: pd.DataFrame  # one row per input: [file,] predicted, then one probability column per class
    accuracy: float | None  # when the inputs carry labels
    text: str  # what a person is told


def predict_file(study: str, storage_url: str | None, path: str, *, unseen: str = "error") -> Prediction:
    url = storage_url or default_url(study)
    storage = open_storage(url, read_only=True)
    try:
        spec, study_id = load_spec(storage, study)
        record = record_of(storage, study_id)
    finally:
        storage.engine.dispose()
    source = spec.file_source()
    if record is None or source is None:
        raise SearchError(
            f"study {study!r} searched the built-in data set {spec.data_name}; predict takes a study "
            "made from a file of your own (run --data PATH); in Python, load_final_networks "
            "predicts on its prepared rows"
        )
    final = load_final_networks(study, storage_url)
    if os.path.exists(source.path):  # gone is fine (the preprocessing is stored); changed is not
        check_unchanged(record, DataRef(spec.data_name, file=with_digest(source)), study)
    raw = read_input(source, path, labelled=False, target=record["preprocessing"].get("target"))
    part = raw.parts.get("test") or raw.parts["train"]  # an input with splits: its test rows
    try:
        proba = final.predict_proba(part.X, unseen)
    except DatasetError as exc:  # the input does not match the study's data: say which input
        raise DatasetError(f"{path}: {exc}") from None
    classes = final.classes
    table = pd.DataFrame({"predicted": classes[proba.argmax(axis=1)]})
    if part.names is not None:
        table.insert(0, "file", list(part.names))
    for i, c in enumerate(classes):
        table[f"p_{c}"] = proba[:, i]
    lines = [
        f"predicted {len(table)} rows of {path} with the ensemble of {len(final.networks)} network"
        f"{'s' if len(final.networks) > 1 else ''} of study {study!r} (trial {final.record['trial']})"
    ]
    accuracy = None
    if part.labels is not None:
        y = preprocessing_of(record).encode_labels(part.labels)
        accuracy = float(np.mean(proba.argmax(axis=1) == y))
        lines.append(f"accuracy {accuracy:.4f} on its {len(y)} labelled rows")
    return Prediction(table, accuracy, "\n".join(lines))
