"""The final networks: the winner trained again on train + validation, in worker processes, and scored once on test.

The test split is used here and nowhere else: selection happened on training
and validation data only (holdout or folds, then the finalists' fresh runs),
so the score printed here is an honest estimate of the chosen configuration.
It is stored on the study (``retrained``) so a report can show it, and never
feeds back into any choice. Run by the coordinator (a budget's last stage) and
by ``best --retrain``; the networks are read back by ``search/readers/ensemble.py``.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import statistics
import time
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits

from model import Network, TrainConfig, train
from model.datasets import Dataset
from search.errors import SearchError
from search.study import finalists as fin
from search.study import keys
from search.study.datafile import check_unchanged, peek_record
from search.study.dataref import DataRef
from search.study.space import config_from_params
from search.study.spec import as_finalist
from search.study.storage import open_storage, sqlite_path
from search.study.stored import load_spec
from search.study.winner import ensemble_proba, final_epochs, final_seed, load_winner
from search.workers import worker_count

__all__ = ["retrain_best"]


def _train_one(config: TrainConfig, data: DataRef) -> tuple[np.ndarray, Network, int]:
    """One final network on train + validation: (test probabilities, network, rows trained on)."""
    threadpool_limits(1)  # one process per core; BLAS threads would only fight over them
    d: Dataset = data.load()
    X = np.concatenate([d.X_train, d.X_val])
    y = np.concatenate([d.y_train, d.y_val])
    # The test split is passed as "validation" only so train() can report; with
    # early stopping off it selects nothing: training runs exactly `epochs` epochs.
    result = train(
        dataclasses.replace(config, patience=None),
        X,
        y,
        d.X_test,
        d.y_test,
        n_classes=d.n_classes,
        image_shape=d.image_shape,
    )
    if result.outcome == "diverged":
        raise SearchError(f"retraining diverged: {result.reason}")
    return result.network.predict_proba(d.X_test), result.network, len(y)


def retrain_best(
    study: str,
    storage_url: str | None = None,
    *,
    out: str | None = None,
    data_dir: str | None = None,
    seeds: int = 1,
    jobs: int | None = None,
    epochs: int | None = None,
) -> str:
    """Retrain the winner ``seeds`` times on train + validation; score each, and their ensemble, on test.

    ``epochs``: how long (a budget's final stage sizes it); None: ``final_epochs``.
    """
    started = time.perf_counter()
    spec, winner, url = load_winner(study, storage_url)
    epochs = epochs or final_epochs(spec, winner)
    data = DataRef.of(spec, data_dir)
    check_unchanged(peek_record(url, study), data, study)
    d = data.load()
    configs = [
        as_finalist(spec, config_from_params(winner.trial.params, spec.space, epochs, final_seed(spec.seed, k)))
        for k in range(seeds)
    ]
    workers = min(seeds, worker_count(jobs))
    outputs = Parallel(n_jobs=workers)(delayed(_train_one)(c, data) for c in configs)
    accuracies = [float(np.mean(p.argmax(axis=1) == d.y_test)) for p, _, _ in outputs]
    ensemble = float(np.mean(ensemble_proba([p for p, _, _ in outputs]).argmax(axis=1) == d.y_test))
    # absolute, so that the record still finds them from another working directory
    paths = _weights_paths((Path(out) if out else _default_weights_path(study, url)).resolve(), seeds)
    for path, (_, network, _) in zip(paths, outputs):
        path.parent.mkdir(parents=True, exist_ok=True)
        network.save(path)
    record = {
        "trial": winner.trial.number,
        "epochs": epochs,
        "samples": outputs[0][2],
        "seeds": seeds,
        "test_accuracy": accuracies,
        "test_accuracy_mean": statistics.fmean(accuracies),
        "test_accuracy_sd": fin.spread(accuracies) if seeds > 1 else None,
        "ensemble_accuracy": ensemble,
        "weights": [str(p) for p in paths],
        "when": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    _store(url, study, record)
    seconds = time.perf_counter() - started
    lines = [
        f"retrained trial {winner.trial.number} on {record['samples']} samples for {epochs} epochs "
        f"({seeds} seed{'s' if seeds > 1 else ''}, {workers} at a time, {seconds:.1f} s)"
    ]
    if seeds > 1:
        lines += [
            f"  test accuracy        {record['test_accuracy_mean']:.4f} ± {record['test_accuracy_sd']:.4f} "
            f"(mean ± sd over {seeds} seeds: {', '.join(f'{a:.4f}' for a in accuracies)})",
            f"  ensemble accuracy    {ensemble:.4f} (averaged probabilities of the {seeds} networks)",
        ]
    else:
        lines.append(f"  test accuracy        {accuracies[0]:.4f}")
    lines += [f"  weights              {paths[0]}" + (f" (+{seeds - 1} more)" if seeds > 1 else "")]
    return "\n".join(lines)


def _store(url: str, study: str, record: dict) -> None:
    """Keep the scores on the study, for `report`; the test split still chooses nothing."""
    storage = open_storage(url)
    try:
        storage.set_study_user_attr(load_spec(storage, study)[1], keys.RETRAINED, json.dumps(record))
    finally:
        storage.engine.dispose()


def _weights_paths(path: Path, seeds: int) -> list[Path]:
    if seeds == 1:
        return [path]
    return [path.with_name(f"{path.stem}-seed{k}{path.suffix}") for k in range(seeds)]


def _default_weights_path(study: str, url: str) -> Path:
    path = sqlite_path(url)
    return (path.parent if path else Path(".")) / f"{study}-best.npz"
