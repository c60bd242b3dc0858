"""The final networks: the winner trained again on train + validation, in worker processes, and scored once on test.

The test split is used here and nowhere else: selection happened on training
and validation data only (holdout or folds, then the finalists' fresh runs),
so the score printed here is an honest estimate of the chosen configuration.
Trained again on every row afterwards (``every_row``), the networks predict
uses have seen the test rows too; the score stays that of the first ones.
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
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits

from model import Network, TrainConfig, train
from model.datasets import Dataset
from search.errors import SearchError
from search.study import finalists as fin
from search.study import keys
from search.study.datafile import check_unchanged, every_row_refusal, peek_record
from search.study.dataref import DataRef, in_target_units
from search.study.metrics import CLASSIFICATION, REGRESSION, score, shown
from search.study.space import config_from_params
from search.study.spec import StudySpec, as_finalist
from search.study.storage import open_storage, sqlite_path
from search.study.stored import load_spec
from search.study.weights import sample_weights
from search.study.winner import Winner, ensemble_proba, final_epochs, final_seed, load_winner
from search.workers import worker_count

__all__ = ["retrain_best", "weights_paths"]

POINTS = 2000  # test rows kept for a regression report's figures (predicted against true, residuals)


def _train_one(
    config: TrainConfig, data: DataRef, class_weight: str | None = None, every_row: bool = False
) -> tuple[np.ndarray, Network, int]:
    """One final network on train + validation (``every_row``: and test): (test outputs, network, rows trained on).

    The outputs are class probabilities (n_test, n_classes), or numbers (n_test,) in the target's units.
    """
    threadpool_limits(1)  # one process per core; BLAS threads would only fight over them
    d: Dataset = data.load()
    parts = ("train", "val", "test") if every_row else ("train", "val")
    X = np.concatenate([getattr(d, f"X_{p}") for p in parts])
    y = np.concatenate([getattr(d, f"y_{p}") for p in parts])
    weights, _ = sample_weights(class_weight, y)
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
        sample_weight=weights,
        periodic_columns=d.number_columns,
    )
    if result.outcome == "diverged":
        raise SearchError(f"retraining diverged: {result.reason}")
    net = result.network
    outputs = in_target_units(d, net.predict(d.X_test).reshape(-1)) if net.regression else net.predict_proba(d.X_test)
    return outputs, net, len(y)


def _test_scores(names: tuple[str, ...], y: np.ndarray, outputs: list[np.ndarray]) -> dict[str, Any]:
    """Each network's and the ensemble's test score of each metric, under the names RETRAINED keeps them by."""
    record: dict[str, Any] = {}
    ensemble = ensemble_proba(outputs)
    for name in names:
        each = [score(name, y, o) for o in outputs]
        test = keys.TEST_SCORE.format(name)
        record |= {
            test: each,
            f"{test}_mean": statistics.fmean(each),
            f"{test}_sd": fin.spread(each) if len(each) > 1 else None,
            keys.ENSEMBLE_SCORE.format(name): score(name, y, ensemble),
        }
    return record


def _points(y: np.ndarray, predicted: np.ndarray, seed: int) -> dict[str, list[float]]:
    """Up to ``POINTS`` test rows' (true, predicted) numbers, for the report's figures of a regression study."""
    rows = np.sort(np.random.default_rng(seed).permutation(len(y))[:POINTS])
    return {"true": [float(v) for v in y[rows]], "predicted": [float(v) for v in predicted[rows]]}


def retrain_best(
    study: str,
    storage_url: str | None = None,
    *,
    out: str | None = None,
    data_dir: str | None = None,
    seeds: int = 1,
    jobs: int | None = None,
    epochs: int | None = None,
    every_row: bool = False,
    read: tuple[StudySpec, Winner, str] | None = None,
) -> str:
    """Retrain the winner ``seeds`` times on train + validation; score each, and their ensemble, on test.

    ``epochs``: how long (a budget's final stage sizes it); None: ``final_epochs``. ``every_row``:
    then train the same networks again on every row, for ``predict``, where the test rows were
    drawn from a table; the scores stay those of the first ones. Elsewhere one line of the
    output says why not (``datafile.every_row_refusal``). ``read``: ``load_winner``'s answer where
    the caller has it (a budget's final stage sized the networks by it), so the study is read once.
    """
    started = time.perf_counter()
    spec, winner, url = read or load_winner(study, storage_url)
    epochs = epochs or final_epochs(spec, winner)
    data = DataRef.of(spec, data_dir)
    file_record = peek_record(url, study)
    check_unchanged(file_record, data, study)
    d = data.load()
    configs = [
        as_finalist(spec, config_from_params(winner.trial.params, spec.space, epochs, final_seed(spec.seed, k)))
        for k in range(seeds)
    ]
    refused = every_row_refusal(file_record) if every_row else ""
    again = every_row and not refused
    runs = [(c, False) for c in configs] + [(c, True) for c in configs if again]
    workers = min(len(runs), worker_count(jobs))
    trained = Parallel(n_jobs=workers)(delayed(_train_one)(c, data, spec.class_weight, e) for c, e in runs)
    outputs, kept = trained[:seeds], trained[-seeds:]  # scored; what predict uses
    task = spec.task or CLASSIFICATION
    names = shown(task, spec.metric)
    y_test = in_target_units(d, d.y_test)
    scores = _test_scores(names, y_test, [o for o, _, _ in outputs])
    # absolute, so that the record still finds them from another working directory
    paths = weights_paths((Path(out) if out else _default_weights_path(study, url)).resolve(), seeds)
    for path, (_, network, _) in zip(paths, kept):
        path.parent.mkdir(parents=True, exist_ok=True)
        network.save(path)
    record = {
        "trial": winner.trial.number,
        "epochs": epochs,
        "samples": outputs[0][2],
        "every_row": kept[0][2] if again else None,  # rows the saved networks trained on, when not "samples"
        "seeds": seeds,
        "task": task,
        **scores,
        "weights": [str(p) for p in paths],
        "when": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    if task == REGRESSION:
        record["test_points"] = _points(y_test, ensemble_proba([o for o, _, _ in outputs]), spec.seed)
    _store(url, study, record)
    seconds = time.perf_counter() - started
    lines = [
        f"retrained trial {winner.trial.number} on {record['samples']} samples for {epochs} epochs "
        f"({seeds} seed{'s' if seeds > 1 else ''}, {workers} at a time, {seconds:.1f} s)"
    ]
    for name in names:
        test = keys.TEST_SCORE.format(name)
        label = f"test {name}"
        if seeds > 1:
            each = ", ".join(f"{v:.4f}" for v in record[test])
            lines += [
                f"  {label:<20} {record[f'{test}_mean']:.4f} ± {record[f'{test}_sd']:.4f} "
                f"(mean ± sd over {seeds} seeds: {each})",
                f"  {'ensemble ' + name:<20} {record[keys.ENSEMBLE_SCORE.format(name)]:.4f} "
                f"(averaged {'predictions' if task == REGRESSION else 'probabilities'} of the {seeds} networks)",
            ]
        else:
            lines.append(f"  {label:<20} {record[test][0]:.4f}")
    if again:
        lines.append(f"  predict uses         the same networks trained again on every row ({kept[0][2]} samples)")
    if refused:
        lines.append(f"  every row            not trained on again: {refused}")
    lines += [f"  weights              {paths[0]}" + (f" (+{seeds - 1} more)" if seeds > 1 else "")]
    return "\n".join(lines)


def _store(url: str, study: str, record: dict) -> None:
    """Keep the scores on the study, for `report`; the test split still chooses nothing."""
    storage = open_storage(url)
    try:
        storage.set_study_user_attr(load_spec(storage, study)[1], keys.RETRAINED, json.dumps(record))
    finally:
        storage.engine.dispose()


def weights_paths(path: Path, seeds: int) -> list[Path]:
    if seeds == 1:
        return [path]
    return [path.with_name(f"{path.stem}-seed{k}{path.suffix}") for k in range(seeds)]


def _default_weights_path(study: str, url: str) -> Path:
    path = sqlite_path(url)
    return (path.parent if path else Path(".")) / f"{study}-best.npz"
