"""Optuna's pruners, run inside a worker on a snapshot of the finished trials.

Why a snapshot: asking the coordinator (or the database) after every epoch
costs a round trip per epoch, more than a small network's epoch takes. Instead
a task carries the curves of the trials that had finished when it was sent, and
the worker asks Optuna's own pruner against an in-memory study rebuilt from
them.

The snapshot holds only what the study's pruner reads, and is bounded, so a
task's size and the worker's cost of rebuilding it stay flat in a study of
10,000 trials (both grew linearly: 700 KB and 0.3 s a task at 7,500 trials,
measured with ``tests/bench/bench_scale.py``):

- the median pruner (Optuna's percentile pruners) reads complete trials only,
  so it gets the last ``SNAPSHOT`` complete curves: a median is as well
  estimated from 200 recent curves as from all, and the recent ones are the
  trials a new one competes with (over 1,000-trial studies the best value found
  was the same: docs/how-it-works.md, "Long studies");
- Hyperband reads every finished trial: the last ``SNAPSHOT`` of them, with
  their trial numbers (gaps filled with placeholders), since it assigns
  brackets by trial number;
- no pruner reads nothing.

Studies of up to ``SNAPSHOT`` such trials are judged as against the whole
study. A non-Hyperband pruner judges a trial numbered after its snapshot, so a
worker builds ``SNAPSHOT`` trials at most: about 6 ms a task.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import TrialState

from search.errors import SearchError

_PLACEHOLDER = optuna.trial.create_trial(state=TrialState.FAIL)
SNAPSHOT = 200  # finished trials a task carries for its pruner (the most recent it reads)


@dataclass(frozen=True, slots=True)
class Curve:
    """What a pruner needs of one finished trial."""

    number: int
    complete: bool  # COMPLETE (else PRUNED)
    value: float | None
    values: tuple[float, ...]  # validation loss after epochs 1, 2, ...
    system_attrs: dict[str, Any] = field(default_factory=dict)  # Hyperband's rung records


def _median(max_epochs: int) -> optuna.pruners.BasePruner:
    # Five complete trials before judging; three epochs before a trial can be judged,
    # since the first epochs of a small learning rate look worse than they end.
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3)


def _hyperband(max_epochs: int) -> optuna.pruners.BasePruner:
    return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_epochs, reduction_factor=3)


def _none(max_epochs: int) -> optuna.pruners.BasePruner:
    return optuna.pruners.NopPruner()


# pruner name (``StudySpec.pruner``, ``--pruner``) -> factory taking the study's epoch budget
PRUNERS: dict[str, Callable[[int], optuna.pruners.BasePruner]] = {
    "median": _median,
    "hyperband": _hyperband,
    "none": _none,
}


def make_pruner(name: str, max_epochs: int) -> optuna.pruners.BasePruner:
    """The study's pruner; the same object is built in the coordinator and in workers."""
    if name not in PRUNERS:
        raise SearchError(f"pruner must be one of {', '.join(PRUNERS)}, got {name!r}")
    return PRUNERS[name](max_epochs)


def snapshot(curves: Sequence[Curve], pruner: optuna.pruners.BasePruner) -> tuple[Curve, ...]:
    """What a task carries of the finished ``curves`` (in the order they finished) for ``pruner``."""
    if isinstance(pruner, optuna.pruners.NopPruner):
        return ()
    if isinstance(pruner, optuna.pruners.PercentilePruner):  # reads COMPLETE trials only
        read = itertools.islice((c for c in reversed(curves) if c.complete), SNAPSHOT)
        return tuple(reversed(list(read)))
    return tuple(curves[-SNAPSHOT:])


def snapshot_trial(curve: Curve) -> optuna.trial.FrozenTrial:
    return optuna.trial.create_trial(
        state=TrialState.COMPLETE if curve.complete else TrialState.PRUNED,
        value=curve.value if curve.complete else None,
        intermediate_values={step: v for step, v in enumerate(curve.values, start=1)},
        system_attrs=dict(curve.system_attrs),
    )


def local_trial(
    study_name: str, pruner: optuna.pruners.BasePruner, snapshot: Sequence[Curve], number: int
) -> optuna.Trial:
    """An in-memory trial whose study holds ``snapshot``; numbered ``number`` for Hyperband.

    Read what the pruner recorded on it with ``system_attrs_of(trial)``.
    """
    study = optuna.create_study(
        study_name=study_name, pruner=pruner, direction="minimize", sampler=optuna.samplers.RandomSampler(seed=0)
    )
    if isinstance(pruner, optuna.pruners.HyperbandPruner):
        by_number = {c.number: c for c in snapshot}
        study.add_trials([snapshot_trial(by_number[n]) if n in by_number else _PLACEHOLDER for n in range(number)])
    else:
        study.add_trials([snapshot_trial(c) for c in snapshot])  # a percentile reads no order
    return study.ask()


def system_attrs_of(trial: optuna.Trial) -> dict[str, Any]:
    """What the pruner stored on ``trial`` (Hyperband's rungs), to be kept with the trial."""
    return dict(trial.study.get_trials(deepcopy=False)[trial.number].system_attrs)
