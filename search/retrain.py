"""The winner of a study, and the final networks scored once on the test split.

The test split is used here and nowhere else: selection happened on training
and validation data only (holdout or folds, then the finalists' fresh runs),
so the score printed here is an honest estimate of the chosen configuration.
It is stored on the study (``retrained``) so a report can show it, and never
feeds back into any choice.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import math
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from joblib import Parallel, delayed
from optuna.trial import FrozenTrial, TrialState
from threadpoolctl import threadpool_limits

from model import Network, TrainConfig, train
from model.datasets import Dataset, Preprocessing
from search import finalists as fin
from search.datafile import check_unchanged, peek_record, preprocessing_of, record_of
from search.errors import SearchError
from search.selection import SELECTIONS, retrain_epochs
from search.space import config_from_params
from search.spec import StudySpec, as_finalist
from search.storage import default_url, open_storage, sqlite_path
from search.study import load_spec
from search.tasks import DataRef

logger = logging.getLogger(__name__)

RETRAINED_ATTR = "retrained"  # study user attr: the last `best --retrain`'s test scores


@dataclass(frozen=True)
class Winner:
    trial: FrozenTrial                  # the search trial whose configuration won
    finalists: list[fin.Finalist]       # the finalist stage's standings, best first ([] if none ran)

    @property
    def runs(self) -> tuple[FrozenTrial, ...]:
        return self.finalists[0].runs if self.finalists else ()


def find_winner(storage: optuna.storages.BaseStorage, study_id: int, study: str) -> Winner:
    """The finalist with the best mean over its fresh runs, else the best search trial."""
    trials = storage.get_all_trials(study_id, deepcopy=False)
    number = fin.winner(trials)
    if number is not None:
        return Winner(next(t for t in trials if t.number == number), fin.ranked(trials))
    complete = [t for t in trials if t.state == TrialState.COMPLETE and not fin.is_finalist_run(t)]
    if not complete:
        raise SearchError(f"study {study!r} has no complete trial yet")
    return Winner(min(complete, key=lambda t: t.value), [])


def load_winner(study: str, storage_url: str | None) -> tuple[StudySpec, Winner, str]:
    """The study's spec, its winner and its storage URL, read once."""
    url = storage_url or default_url(study)
    storage = open_storage(url, read_only=True)
    try:
        spec, study_id = load_spec(storage, study)
        return spec, find_winner(storage, study_id, study), url
    finally:
        storage.engine.dispose()


def describe_best(study: str, storage_url: str | None = None) -> str:
    spec, winner, _ = load_winner(study, storage_url)
    best = winner.trial
    lines = [f"best trial {best.number} of study {study!r} ({spec.data_name})"]
    if winner.finalists:
        f = winner.finalists[0]
        lines.append(f"  chosen as the best of {len(winner.finalists)} finalists, on the mean of "
                     f"{len(f.runs)} fresh runs each")
    metric = SELECTIONS[spec.selection].metric
    lines += [f"  {metric:<20} {best.value:.4f} (search)",
              f"  validation accuracy  {best.user_attrs.get('val_accuracy', float('nan')):.4f} (search)",
              f"  best epoch           {best.user_attrs.get('best_epoch')} of {spec.epochs}"]
    lines += [f"  {name:<20} {value}" for name, value in sorted(best.params.items())]
    if winner.finalists:
        lines.append("finalists (fresh runs: mean ± sd)")
        for f in winner.finalists:
            acc = [t.user_attrs.get("val_accuracy") for t in f.runs if t.user_attrs.get("val_accuracy") is not None]
            acc_text = f"{statistics.fmean(acc):.4f}{_pm(fin.spread(acc))}" if acc else "-"
            lines.append(f"  trial {f.number:>5}  {metric} {f.mean:.4f}{_pm(f.sd)}  "
                         f"val accuracy {acc_text}  ({len(f.runs)} runs)")
    return "\n".join(lines)


def _pm(sd: float) -> str:
    """`` ± sd``, or nothing where one run gave no spread."""
    return "" if math.isnan(sd) else f" ± {sd:.4f}"


def final_epochs(spec: StudySpec, winner: Winner) -> int:
    """How long the final networks train: from the finalists' curves when there are some.

    A schedule laid out over the whole run (cosine) is only the schedule the
    trials saw when the run is as long as theirs, so those keep their length.
    """
    complete = [t for t in winner.runs if t.state == TrialState.COMPLETE]
    if complete:
        config = config_from_params(winner.trial.params, spec.space, spec.finalist_epochs, 0)
        if config.lr_schedule == "cosine":
            return spec.finalist_epochs
        return retrain_epochs([(list(t.intermediate_values.values()), t.user_attrs["val_accuracy_curve"])
                               for t in complete], spec.selection)
    return int(winner.trial.user_attrs.get("best_epoch") or spec.epochs)


def _train_one(config: TrainConfig, data: DataRef) -> tuple[np.ndarray, Network, int]:
    """One final network on train + validation: (test probabilities, network, rows trained on)."""
    threadpool_limits(1)  # one process per core; BLAS threads would only fight over them
    d: Dataset = data.load()
    X = np.concatenate([d.X_train, d.X_val])
    y = np.concatenate([d.y_train, d.y_val])
    # The test split is passed as "validation" only so train() can report; with
    # early stopping off it selects nothing: training runs exactly `epochs` epochs.
    result = train(dataclasses.replace(config, patience=None), X, y, d.X_test, d.y_test, n_classes=d.n_classes,
                   image_shape=d.image_shape)
    if result.outcome == "diverged":
        raise SearchError(f"retraining diverged: {result.reason}")
    return result.network.predict_proba(d.X_test), result.network, len(y)


def retrain_best(study: str, storage_url: str | None = None, *, out: str | None = None,
                 data_dir: str | None = None, seeds: int = 1, jobs: int | None = None,
                 epochs: int | None = None) -> str:
    """Retrain the winner ``seeds`` times on train + validation; score each, and their ensemble, on test.

    ``epochs``: how long (a budget's final stage sizes it); None: ``final_epochs``.
    """
    started = time.perf_counter()
    spec, winner, url = load_winner(study, storage_url)
    epochs = epochs or final_epochs(spec, winner)
    data = DataRef.of(spec, data_dir)
    check_unchanged(peek_record(url, study), data, study)
    d = data.load()
    configs = [as_finalist(spec, config_from_params(winner.trial.params, spec.space, epochs, final_seed(spec.seed, k)))
               for k in range(seeds)]
    workers = min(seeds, jobs or os.cpu_count() or 1)
    outputs = Parallel(n_jobs=workers)(delayed(_train_one)(c, data) for c in configs)
    accuracies = [float(np.mean(p.argmax(axis=1) == d.y_test)) for p, _, _ in outputs]
    ensemble = float(np.mean(_ensemble([p for p, _, _ in outputs]).argmax(axis=1) == d.y_test))
    # absolute, so that the record still finds them from another working directory
    paths = _weights_paths((Path(out) if out else _default_weights_path(study, url)).resolve(), seeds)
    for path, (_, network, _) in zip(paths, outputs):
        path.parent.mkdir(parents=True, exist_ok=True)
        network.save(path)
    record = {
        "trial": winner.trial.number, "epochs": epochs, "samples": outputs[0][2],
        "seeds": seeds, "test_accuracy": accuracies, "test_accuracy_mean": statistics.fmean(accuracies),
        "test_accuracy_sd": fin.spread(accuracies) if seeds > 1 else None, "ensemble_accuracy": ensemble,
        "weights": [str(p) for p in paths], "when": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    _store(url, study, record)
    seconds = time.perf_counter() - started
    lines = [f"retrained trial {winner.trial.number} on {record['samples']} samples for {epochs} epochs "
             f"({seeds} seed{'s' if seeds > 1 else ''}, {workers} at a time, {seconds:.1f} s)"]
    if seeds > 1:
        lines += [f"  test accuracy        {record['test_accuracy_mean']:.4f} ± {record['test_accuracy_sd']:.4f} "
                  f"(mean ± sd over {seeds} seeds: {', '.join(f'{a:.4f}' for a in accuracies)})",
                  f"  ensemble accuracy    {ensemble:.4f} (averaged probabilities of the {seeds} networks)"]
    else:
        lines.append(f"  test accuracy        {accuracies[0]:.4f}")
    lines += [f"  weights              {paths[0]}" + (f" (+{seeds - 1} more)" if seeds > 1 else "")]
    return "\n".join(lines)


@dataclass(frozen=True)
class FinalNetworks:
    """The networks of the last ``best --retrain``, whose averaged probabilities are the ensemble it scored.

    For a study made from a file, inputs are raw rows in the file's form (a
    DataFrame with its columns, images or feature rows as in its .npz): the
    preprocessing stored with the study is applied first, and ``predict``
    answers with class names. For a built-in data set, inputs are its prepared
    rows and the classes are their indices.
    """

    networks: list[Network]
    record: dict  # what that retrain stored on the study: trial, epochs, test scores, weights
    preprocessing: Preprocessing | None = None  # a file's, fitted on its training split

    @property
    def classes(self) -> np.ndarray:
        """Each output's class name (built-in data sets: its index)."""
        if self.preprocessing is not None:
            return np.asarray(self.preprocessing.classes)
        return np.arange(self.networks[0].n_classes)

    def prepare(self, X: Any, unseen: str = "error") -> np.ndarray:
        """Network inputs (n, n_features) float32 from raw inputs (see the class docstring)."""
        return X if self.preprocessing is None else self.preprocessing.transform(X, unseen)

    def predict_proba(self, X: Any, unseen: str = "error") -> np.ndarray:
        """(n, n_classes): the mean of the networks' class probabilities."""
        rows = self.prepare(X, unseen)
        return _ensemble([n.predict_proba(rows) for n in self.networks])

    def predict(self, X: Any, unseen: str = "error") -> np.ndarray:
        """(n,): the ensemble's most probable class per row."""
        return self.classes[self.predict_proba(X, unseen).argmax(axis=1)]


def _ensemble(probabilities: list[np.ndarray]) -> np.ndarray:
    """The ensemble of K networks: their class probabilities averaged, (n, n_classes)."""
    return np.mean(probabilities, axis=0)


def load_final_networks(study: str, storage_url: str | None = None) -> FinalNetworks:
    """The study's retrained networks, read back from the weights files its record names."""
    url = storage_url or default_url(study)
    storage = open_storage(url, read_only=True)
    try:
        _, study_id = load_spec(storage, study)
        raw = storage.get_study_user_attrs(study_id).get(RETRAINED_ATTR)
        data = record_of(storage, study_id)
    finally:
        storage.engine.dispose()
    if raw is None:
        raise SearchError(f"study {study!r} has no retrained networks yet: "
                          f"run `python -m search best --study {study} --retrain`")
    record = json.loads(raw)
    missing = [p for p in record["weights"] if not Path(p).is_file()]
    if missing:
        raise SearchError(f"study {study!r}: the retrained weights {', '.join(missing)} are gone; "
                          f"run `python -m search best --study {study} --retrain` again")
    return FinalNetworks([Network.load(p) for p in record["weights"]], record,
                         None if data is None else preprocessing_of(data))


def final_seed(study_seed: int, k: int) -> int:
    """The k-th final network's seed: fresh, and never one a trial used."""
    return int(np.random.SeedSequence([study_seed, 2, k]).generate_state(1)[0])


def _store(url: str, study: str, record: dict) -> None:
    """Keep the scores on the study, for `report`; the test split still chooses nothing."""
    storage = open_storage(url)
    try:
        storage.set_study_user_attr(load_spec(storage, study)[1], RETRAINED_ATTR, json.dumps(record))
    finally:
        storage.engine.dispose()


def _weights_paths(path: Path, seeds: int) -> list[Path]:
    if seeds == 1:
        return [path]
    return [path.with_name(f"{path.stem}-seed{k}{path.suffix}") for k in range(seeds)]


def _default_weights_path(study: str, url: str) -> Path:
    path = sqlite_path(url)
    return (path.parent if path else Path(".")) / f"{study}-best.npz"
