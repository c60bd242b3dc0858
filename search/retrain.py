"""The best trial: its settings, and a final network scored once on the test split.

The test split is used here and nowhere else: selection happened on the
validation split, so this score is an honest estimate of the chosen network.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState

from model import train
from search.errors import SearchError
from search.space import config_from_params
from search.spec import StudySpec
from search.storage import default_url, open_storage, sqlite_path
from search.study import load_spec
from search.tasks import DataRef

logger = logging.getLogger(__name__)


def _best(study: str, storage_url: str | None) -> tuple[StudySpec, optuna.trial.FrozenTrial, str]:
    url = storage_url or default_url(study)
    storage = open_storage(url, read_only=True)
    spec, study_id = load_spec(storage, study)
    complete = storage.get_all_trials(study_id, states=(TrialState.COMPLETE,))
    if not complete:
        raise SearchError(f"study {study!r} has no complete trial yet")
    return spec, min(complete, key=lambda t: t.value), url


def describe_best(study: str, storage_url: str | None = None) -> str:
    spec, best, _ = _best(study, storage_url)
    lines = [f"best trial {best.number} of study {study!r} ({spec.dataset})",
             f"  validation loss      {best.value:.4f}",
             f"  validation accuracy  {best.user_attrs.get('val_accuracy', float('nan')):.4f}",
             f"  best epoch           {best.user_attrs.get('best_epoch')} of {spec.epochs}"]
    lines += [f"  {name:<20} {value}" for name, value in sorted(best.params.items())]
    return "\n".join(lines)


def retrain_best(study: str, storage_url: str | None = None, *, out: str | None = None,
                 data_dir: str | None = None) -> str:
    """Retrain on train + validation for the best trial's best epoch count, score on test."""
    spec, best, url = _best(study, storage_url)
    epochs = int(best.user_attrs.get("best_epoch") or spec.epochs)
    config = config_from_params(best.params, spec.space, epochs, int(best.user_attrs.get("seed", 0)))
    data = DataRef(spec.dataset, spec.val_fraction, spec.normalization, data_dir).load()
    X = np.concatenate([data.X_train, data.X_val])
    y = np.concatenate([data.y_train, data.y_val])
    # The test split is passed as "validation" only so train() can report; with
    # early stopping off it selects nothing: training runs exactly `epochs` epochs.
    result = train(dataclasses.replace(config, patience=None), X, y,
                   data.X_test, data.y_test, n_classes=data.n_classes)
    if result.outcome == "diverged":
        raise SearchError(f"retraining trial {best.number} diverged: {result.reason}")
    accuracy = float(np.mean(result.network.predict(data.X_test) == data.y_test))
    path = Path(out) if out else _default_weights_path(study, url)
    path.parent.mkdir(parents=True, exist_ok=True)
    result.network.save(path)
    return (f"retrained trial {best.number} on {len(y)} samples for {epochs} epochs "
            f"({result.seconds:.1f} s)\n  test accuracy        {accuracy:.4f}\n"
            f"  test loss            {result.history[-1].val_loss:.4f}\n  weights              {path}")


def _default_weights_path(study: str, url: str) -> Path:
    path = sqlite_path(url)
    return (path.parent if path else Path(".")) / f"{study}-best.npz"
