"""A task's epoch loop over a recorded curve, and run_trial's own pruning decision on it.

``replay`` walks a recorded curve as ``run_trial`` walks real epochs (divergence, pruning,
patience, in that order) and leaves the decision to a callback. ``play_real`` supplies the
exact decision: the task's own pruner on its own snapshot, as a real worker makes it. The
cheaper NumPy decision for the other tasks is in ``shortcut``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from search.study.pruning import local_trial, make_pruner, system_attrs_of
from search.workers.tasks import TrialTask
from tests.bench.scale.curves import Recorded

Curve = tuple[int, bool, tuple[float, ...]]  # a finished search curve: (trial number, complete, values)


@dataclass(frozen=True)
class Header:
    """What the simulator needs of a task without unpickling it."""

    handle: int
    number: int
    snapshot_start: int  # the task's snapshot: curves [start, end) of all sent, in the order sent
    snapshot_end: int
    new_curves: tuple[Curve, ...]  # added to the pruning snapshot since the previous task
    features: list[float]
    epochs: int
    patience: int | None
    pruner: str
    selection: str


@dataclass
class Played:
    """A task's replay: what run_trial would have returned."""

    values: list[float]
    accuracies: list[float]
    outcome: str
    reason: str
    system_attrs: dict[str, Any]


def replay(curve: Recorded, header: Header, should_prune: Callable[[list[float], int], bool]) -> Played:
    """run_trial's epoch loop over a recorded curve; ``should_prune(values, epoch)`` decides."""
    values: list[float] = []
    accuracies: list[float] = []
    outcome, reason = "complete", f"completed {header.epochs} epochs"
    for epoch in range(1, min(header.epochs, len(curve.values)) + 1):
        loss = curve.values[epoch - 1]
        if math.isnan(loss):
            outcome, reason = "diverged", f"diverged at epoch {epoch} (recorded)"
            break
        values.append(loss)
        accuracies.append(curve.accuracies[epoch - 1])
        if should_prune(values, epoch):
            outcome, reason = "pruned", f"pruned at epoch {epoch}"
            break
        if header.patience is not None and epoch - (int(np.argmin(values)) + 1) >= header.patience:
            reason = f"no improvement in validation loss for {header.patience} epochs at epoch {epoch}"
            break
    return Played(values, accuracies, outcome, reason, {})


def play_real(curve: Recorded, header: Header, task: TrialTask) -> Played:
    """The decision exactly as run_trial makes it, on the task's own (unpickled) snapshot."""
    pruner = make_pruner(task.pruner, task.config.epochs)
    trial = local_trial(task.study_name, pruner, task.snapshot, task.number)

    def should_prune(values: list[float], epoch: int) -> bool:
        trial.report(values[-1], epoch)
        return trial.should_prune()

    played = replay(curve, header, should_prune)
    played.system_attrs = system_attrs_of(trial)
    return played
