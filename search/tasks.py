"""TrialTask -> TrialResult: the pure function a worker process runs.

Nothing here touches the study's storage: a task carries everything it needs
(configuration, data set reference, a snapshot of finished curves for the
pruner) and returns everything the coordinator records. So the same function
runs unchanged in a local process pool or on a Dask cluster, and a task whose
worker died can simply be run again.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import resource
import socket
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from threadpoolctl import threadpool_limits

from model import EpochStats, TrainConfig, train
from model.datasets import Dataset, load_dataset
from search.pruning import Curve, local_trial, make_pruner, system_attrs_of

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DataRef:
    """Which prepared data set a task trains on; workers memory-map its cache."""

    name: str
    val_fraction: float = 0.1
    normalization: str | None = None
    data_dir: str | None = None

    def load(self) -> Dataset:
        return _load(self)


@dataclass(frozen=True, slots=True)
class TrialTask:
    study_name: str
    number: int
    config: TrainConfig
    data: DataRef
    pruner: str
    snapshot: tuple[Curve, ...] = ()


@dataclass(slots=True)
class TrialResult:
    number: int
    outcome: str                      # complete | pruned | diverged | failed
    reason: str                       # why it stopped, for people
    values: list[float] = field(default_factory=list)  # validation loss per epoch
    value: float | None = None        # objective: best validation loss (complete trials)
    val_accuracy: float | None = None  # at the best epoch
    best_epoch: int = 0
    train_loss: float | None = None   # last epoch
    system_attrs: dict[str, Any] = field(default_factory=dict)
    host: str = ""
    pid: int = 0
    started: float = 0.0              # wall clock (time.time()) in the worker
    finished: float = 0.0
    peak_rss_mb: float = 0.0          # the worker process's peak resident memory so far

    @property
    def seconds(self) -> float:
        return self.finished - self.started


@functools.lru_cache(maxsize=2)
def _load(ref: DataRef) -> Dataset:
    # Once per worker process: the arrays are memory-mapped from the shared .npy cache.
    return load_dataset(ref.name, data_dir=ref.data_dir, val_fraction=ref.val_fraction,
                        normalization=ref.normalization)


@functools.cache
def _init_worker() -> None:
    # k workers x k BLAS threads on k cores is slower than k x 1.
    threadpool_limits(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def run_trial(task: TrialTask) -> TrialResult:
    """Train one configuration, pruning on validation loss; never raises for training trouble."""
    started = time.time()
    _init_worker()
    result = TrialResult(task.number, "failed", "", host=socket.gethostname(), pid=os.getpid(),
                         started=started)
    try:
        data = task.data.load()
        pruner = make_pruner(task.pruner, task.config.epochs)
        trial = local_trial(task.study_name, pruner, task.snapshot, task.number)

        def after_epoch(stats: EpochStats) -> bool:
            result.values.append(stats.val_loss)
            trial.report(stats.val_loss, stats.epoch)
            return trial.should_prune()

        out = train(task.config, data.X_train, data.y_train, data.X_val, data.y_val,
                    n_classes=data.n_classes, callback=after_epoch)
        # the callback saw every finished epoch; trust the history if they differ
        result.values = [s.val_loss for s in out.history]
        result.best_epoch = out.best_epoch
        result.train_loss = out.history[-1].train_loss if out.history else None
        if out.history:
            result.val_accuracy = out.best_val_accuracy
        result.system_attrs = system_attrs_of(trial)
        result.reason = out.reason
        if out.outcome == "diverged":
            result.outcome = "diverged"
            result.values.append(math.nan)  # ranks it below every trial that got as far
        elif out.outcome == "stopped":
            result.outcome = "pruned"
            result.reason = f"pruned at epoch {len(out.history)}"
        else:
            result.outcome = "complete"
            result.value = out.best_val_loss
    except MemoryError:
        result.reason = "out of memory: the configuration does not fit in this worker"
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
