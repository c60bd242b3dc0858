"""The final networks of a study, read back from their weights files to predict.

Reader-side: it opens the storage read-only and imports no worker or
coordinator code, so ``predict`` and a notebook load no process pool.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model import Network
from model.datasets import Preprocessing
from search.errors import SearchError
from search.study import keys
from search.study.datafile import preprocessing_of, record_of
from search.study.storage import default_url, open_storage
from search.study.stored import load_spec
from search.study.winner import ensemble_proba

__all__ = ["FinalNetworks", "load_final_networks"]


@dataclass(frozen=True)
class FinalNetworks:
    """The networks of the last ``best --retrain``, whose averaged outputs are the ensemble it scored.

    For a study made from a file, inputs are raw rows in the file's form (a
    DataFrame with its columns, images or feature rows as in its .npz): the
    preprocessing stored with the study is applied first, and ``predict``
    answers with class names (a regression study: numbers in the target's
    units). For a built-in data set, inputs are its prepared rows and the
    classes are their indices.
    """

    networks: list[Network]
    record: dict  # what that retrain stored on the study: trial, epochs, test scores, weights
    preprocessing: Preprocessing | None = None  # a file's, fitted on its training split

    @property
    def regression(self) -> bool:
        """A regression study's networks: they predict numbers, not classes."""
        return self.networks[0].regression

    @property
    def classes(self) -> np.ndarray:
        """Each output's class name (built-in data sets: its index); none for a regression study."""
        if self.regression:
            return np.asarray([])
        if self.preprocessing is not None:
            return np.asarray(self.preprocessing.classes)
        return np.arange(self.networks[0].n_classes)

    def prepare(self, X: Any, unseen: str = "error") -> np.ndarray:
        """Network inputs (n, n_features) float32 from raw inputs (see the class docstring)."""
        return X if self.preprocessing is None else self.preprocessing.transform(X, unseen)

    def outputs(self, rows: np.ndarray) -> np.ndarray:
        """The ensemble on network inputs: mean class probabilities (n, n_classes), or mean numbers (n,) in the
        target's units (the stored preprocessing turns the networks' standardised outputs back)."""
        if not self.regression:
            return ensemble_proba([n.predict_proba(rows) for n in self.networks])
        mean = ensemble_proba([n.predict(rows).reshape(len(rows)) for n in self.networks])
        return mean if self.preprocessing is None else self.preprocessing.decode_targets(mean)

    def predict_proba(self, X: Any, unseen: str = "error") -> np.ndarray:
        """(n, n_classes): the mean of the networks' class probabilities."""
        if self.regression:
            raise SearchError("a regression study predicts numbers, not class probabilities: use predict")
        return self.outputs(self.prepare(X, unseen))

    def predict(self, X: Any, unseen: str = "error") -> np.ndarray:
        """(n,): the ensemble's most probable class per row, or its number (the networks' mean)."""
        out = self.outputs(self.prepare(X, unseen))
        return out if self.regression else self.classes[out.argmax(axis=1)]


def load_final_networks(study: str, storage_url: str | None = None) -> FinalNetworks:
    """The study's retrained networks, read back from the weights files its record names."""
    url = storage_url or default_url(study)
    storage = open_storage(url, read_only=True)
    try:
        _, study_id = load_spec(storage, study)
        raw = storage.get_study_user_attrs(study_id).get(keys.RETRAINED)
        data = record_of(storage, study_id)
    finally:
        storage.engine.dispose()
    if raw is None:
        raise SearchError(
            f"study {study!r} has no retrained networks yet: run `python -m search best --study {study} --retrain`"
        )
    record = json.loads(raw)
    missing = [p for p in record["weights"] if not Path(p).is_file()]
    if missing:
        raise SearchError(
            f"study {study!r}: the retrained weights {', '.join(missing)} are gone; "
            f"run `python -m search best --study {study} --retrain` again"
        )
    return FinalNetworks(
        [Network.load(p) for p in record["weights"]], record, None if data is None else preprocessing_of(data)
    )
