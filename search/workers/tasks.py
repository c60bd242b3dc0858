"""TrialTask -> TrialResult: the pure function a worker process runs.

Nothing here touches the study's storage: a task carries everything it needs
(configuration, data set reference, a snapshot of finished curves for the
pruner) and returns everything the coordinator records. So the same function
runs unchanged in a local process pool or on a Dask cluster, and a task whose
worker died can simply be run again.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import resource
import socket
import time
import traceback
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from threadpoolctl import threadpool_limits

from model import TrainConfig, Training
from search.study.dataref import DataRef, Fold, in_target_units
from search.study.metrics import score
from search.study.pruning import Curve, local_trial, make_pruner, system_attrs_of
from search.study.selection import SMOOTHING, select
from search.study.weights import sample_weights

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TrialTask:
    study_name: str
    number: int
    config: TrainConfig
    data: DataRef
    pruner: str
    snapshot: tuple[Curve, ...] = ()
    folds: int = 1  # k-fold cross-validation on train + validation; 1 = holdout
    fold_seed: int = 0  # which random assignment of rows to folds
    selection: str = "min_loss"  # key of search.study.selection.SELECTIONS
    scores: tuple[str, ...] = ()  # metrics scored on validation at the selected epoch (search.study.metrics.reported)
    class_weight: str = "none"  # "balanced": sample weights by class (search.study.weights)


@dataclass(slots=True)
class TrialResult:
    number: int
    outcome: str  # complete | pruned | diverged | failed
    reason: str  # why it stopped, for people
    values: list[float] = field(default_factory=list)  # validation loss per epoch (mean over folds)
    accuracies: list[float] = field(default_factory=list)  # validation accuracy per epoch (mean over folds)
    value: float | None = None  # objective, by the study's selection rule (complete trials)
    val_accuracy: float | None = None  # at the selected epoch (mean over folds)
    scores: dict[str, float] = field(default_factory=dict)  # the task's metrics at the selected epoch (mean over folds)
    best_epoch: int = 0
    train_loss: float | None = None  # last epoch
    system_attrs: dict[str, Any] = field(default_factory=dict)
    host: str = ""
    pid: int = 0
    started: float = 0.0  # wall clock (time.time()) in the worker
    finished: float = 0.0
    train_seconds: float = 0.0  # of finished - started, in the epochs
    peak_rss_mb: float = 0.0  # the worker process's peak resident memory so far

    @property
    def seconds(self) -> float:
        return self.finished - self.started


@functools.cache
def _init_worker() -> None:
    # k workers x k BLAS threads on k cores is slower than k x 1.
    threadpool_limits(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def fold_training_seed(seed: int, fold: int) -> int:
    """Fold ``fold``'s training seed: fold 0 keeps the trial's, so a holdout trial is unchanged."""
    if fold == 0:
        return seed
    return int(np.random.SeedSequence([seed, fold]).generate_state(1)[0])


class _Outputs:
    """The folds' validation outputs of the epoch the selection rule chooses, kept as the curves grow.

    The rule chooses among the epochs so far, and its choice on a longer curve is
    either the same epoch or one of the last ``SMOOTHING`` (a smoothed window ends
    there): so the outputs of those few epochs are kept, and of the chosen one.
    """

    def __init__(self, rule: str) -> None:
        self.rule = rule
        self.recent: deque[tuple[int, list[np.ndarray]]] = deque(maxlen=SMOOTHING)
        self.chosen: tuple[int, list[np.ndarray]] = (0, [])

    def add(self, epoch: int, outputs: list[np.ndarray], losses: Sequence[float], accuracies: Sequence[float]) -> None:
        self.recent.append((epoch, outputs))
        _, selected = select(self.rule, losses, accuracies)
        if selected != self.chosen[0]:
            self.chosen = next((kept for kept in self.recent if kept[0] == selected), (0, []))

    def at(self, epoch: int) -> list[np.ndarray]:
        return self.chosen[1] if self.chosen[0] == epoch else []


def _outputs(run: Training, fold: Fold) -> np.ndarray:
    """A fold's validation outputs: class probabilities (n, k), or numbers (n,) as the network predicts them."""
    if run.net.regression:
        return run.net.predict(fold.X_val).reshape(len(fold.X_val))
    return run.net.predict_proba(fold.X_val)


def _scores(names: tuple[str, ...], folds: Sequence[Fold], outputs: list[np.ndarray], data: Any) -> dict[str, float]:
    """Each metric of ``names``, the mean over the folds; regression in the target's units."""
    if not outputs:
        return {}
    pairs = [
        (in_target_units(data, f.y_val), in_target_units(data, o) if o.ndim == 1 else o) for f, o in zip(folds, outputs)
    ]
    return {name: float(np.mean([score(name, y, o) for y, o in pairs])) for name in names}


def run_trial(task: TrialTask) -> TrialResult:
    """Train one configuration on each fold in lockstep, pruning on the mean validation loss.

    Never raises for training trouble: a diverged or failed run is a result.
    """
    started = time.time()
    _init_worker()
    result = TrialResult(task.number, "failed", "", host=socket.gethostname(), pid=os.getpid(), started=started)
    try:
        data = task.data.load()
        pruner = make_pruner(task.pruner, task.config.epochs)
        trial = local_trial(task.study_name, pruner, task.snapshot, task.number)
        folds = task.data.folds(task.folds, task.fold_seed)
        runs = []
        for i, f in enumerate(folds):
            w_train, w_val = sample_weights(task.class_weight, f.y_train, f.y_val)
            # Patience is judged on the mean curve below, not fold by fold, so the folds stay in step.
            config = dataclasses.replace(task.config, seed=fold_training_seed(task.config.seed, i), patience=None)
            runs.append(
                Training(
                    config,
                    f.X_train,
                    f.y_train,
                    f.X_val,
                    f.y_val,
                    n_classes=data.n_classes,
                    image_shape=data.image_shape,
                    sample_weight=w_train,
                    val_sample_weight=w_val,
                    periodic_columns=data.number_columns,
                )
            )
        kept = _Outputs(task.selection) if task.scores else None
        accuracies = result.accuracies
        result.outcome, result.reason = "complete", f"completed {task.config.epochs} epochs"
        for epoch in range(1, task.config.epochs + 1):
            epoch_start = time.perf_counter()
            steps = [run.step() for run in runs]
            result.train_seconds += time.perf_counter() - epoch_start
            stats = [s for s in steps if s is not None]
            if len(stats) < len(steps):
                reason = next(run.result.reason for run in runs if run.result.outcome == "diverged")
                result.outcome, result.reason = "diverged", reason
                break
            loss = float(np.mean([s.val_loss for s in stats]))
            result.values.append(loss)
            accuracies.append(float(np.mean([s.val_accuracy for s in stats])))
            if kept is not None:  # one more pass over the validation rows: only for metrics beyond accuracy
                kept.add(epoch, [_outputs(run, f) for run, f in zip(runs, folds)], result.values, accuracies)
            trial.report(loss, epoch)
            if trial.should_prune():
                result.outcome, result.reason = "pruned", f"pruned at epoch {epoch}"
                break
            patience = task.config.patience
            if patience is not None and epoch - (int(np.argmin(result.values)) + 1) >= patience:
                result.reason = f"no improvement in validation loss for {patience} epochs at epoch {epoch}"
                break
        result.train_loss = (
            float(np.mean([r.result.history[-1].train_loss for r in runs if r.result.history]))
            if result.values
            else None
        )
        result.system_attrs = system_attrs_of(trial)
        if result.values:
            result.value, result.best_epoch = select(task.selection, result.values, accuracies)
            result.val_accuracy = accuracies[result.best_epoch - 1]
            if kept is not None:
                result.scores = _scores(task.scores, folds, kept.at(result.best_epoch), data)
        if runs and runs[0].net.regression:  # numbers have no accuracy: RMSE, MAE and R² are its scores
            result.val_accuracy, result.accuracies = None, []
        if result.outcome != "complete":
            result.value = None
        if result.outcome == "diverged":
            result.values.append(math.nan)  # ranks it below every trial that got as far
    except MemoryError:
        result.outcome, result.reason = "failed", "out of memory: the configuration does not fit in this worker"
    except Exception as exc:  # a bug or bad data must cost one trial, not the study
        logger.debug("trial %d failed", task.number, exc_info=True)
        last = traceback.extract_tb(exc.__traceback__)[-1]
        result.reason = f"{type(exc).__name__}: {exc} ({os.path.basename(last.filename)}:{last.lineno})"
        result.outcome = "failed"
    result.finished = time.time()
    # Linux reports kilobytes. Pages of the memory-mapped data set count here too,
    # although every worker shares the same copy in the page cache.
    result.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def training_seed(study_seed: int, number: int) -> int:
    """A trial's training seed from (study seed, trial number): never the clock or the worker."""
    return int(np.random.SeedSequence([study_seed, number]).generate_state(1)[0])
