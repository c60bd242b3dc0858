"""``predict``: the study's final networks applied to new inputs in the form of its data file.

The inputs go through the preprocessing stored with the study (fitted on its
training split when the study began), then through the ensemble that the last
``best --retrain`` scored; each row gets its predicted class name and every
class's probability, in input order. Everything is computed before anything is
written, so a refused input leaves no partial output; and the output may not
replace a file the command reads (its input, the study's data file, the study's
database), which is refused before the input is read.

Reading and converting the input run behind the reading boundary
(``model.datasets.reading``): whatever is wrong with it is one line naming it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from model.datasets import read_input, reading
from model.datasets.intake import shown
from search.errors import SearchError
from search.readers.ensemble import load_final_networks
from search.study.datafile import check_source_unchanged, preprocessing_of, record_of
from search.study.metrics import REGRESSION_SCORES, score
from search.study.outputs import check_output
from search.study.storage import default_url, open_storage, sqlite_path
from search.study.stored import load_spec

__all__ = ["Prediction", "predict_file"]


@dataclass(frozen=True)
class Prediction:
    table: pd.DataFrame  # one row per input: [file,] predicted, then one probability column per class
    accuracy: float | None  # when the inputs carry labels
    text: str  # what a person is told
    scores: dict[str, float] = field(default_factory=dict)  # a regression study's, when the inputs carry targets


def predict_file(
    study: str,
    storage_url: str | None,
    path: str,
    *,
    unseen: str = "error",
    numbers: str = "error",
    out: str | None = None,
) -> Prediction:
    """The final networks' predictions on the input at ``path`` (``out``: where the caller will write them).

    ``unseen``: a category never seen in training, an error or encoded as none; ``numbers``:
    text in a column the study read as numbers, an error naming it or read as missing.
    """
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
    database = sqlite_path(url)
    check_output(out, [path, source.path, record["path"], *([database] if database else [])])
    final = load_final_networks(study, storage_url)
    check_source_unchanged(record, spec, study)
    raw = read_input(
        source,
        path,
        labelled=False,
        target=record["preprocessing"].get("target"),
        image_shape=record.get("image_shape"),
    )
    part = raw.parts["test"] if "test" in raw.parts else raw.parts["train"]  # an input with splits: its test rows
    prep = preprocessing_of(record)
    with reading(path):  # the input does not match the study's data: say which input
        rows = prep.transform(part.X, unseen, numbers)
        if part.labels is None:
            y = None
        elif final.regression:  # the inputs' targets, as the numbers they are
            prep.encode_targets(part.labels)  # text among the numbers is named
            y = np.asarray(part.labels, dtype=np.float64)
        else:
            y = prep.encode_labels(part.labels)
    outputs = final.outputs(rows)  # probabilities (n, n_classes), or numbers (n,) in the target's units
    if final.regression:
        table = pd.DataFrame({"predicted": outputs})
    else:
        table = pd.DataFrame({"predicted": final.classes[outputs.argmax(axis=1)]})
        for i, c in enumerate(final.classes):
            table[f"p_{c}"] = outputs[:, i]
    if part.names is not None:
        table.insert(0, "file", list(part.names))
    lines = [
        f"predicted {len(table)} rows of {shown(path)} with the ensemble of {len(final.networks)} network"
        f"{'s' if len(final.networks) > 1 else ''} of study {study!r} (trial {final.record['trial']})"
    ]
    accuracy, scores = None, {}
    if y is not None and final.regression:  # scored as best --retrain scores the test rows
        scores = {name: score(name, y, outputs) for name in REGRESSION_SCORES}
        lines.append(", ".join(f"{k} {v:.4f}" for k, v in scores.items()) + f" on its {len(y)} rows with a target")
    elif y is not None:
        accuracy = float(np.mean(outputs.argmax(axis=1) == y))
        lines.append(f"accuracy {accuracy:.4f} on its {len(y)} labelled rows")
    return Prediction(table, accuracy, "\n".join(lines), scores)
