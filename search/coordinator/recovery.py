"""What a starting run must do about the trials stored by earlier runs: a pure function.

A run that stopped (Ctrl-C, SIGTERM, a lost worker, a killed coordinator) leaves
trials it did not finish: RUNNING when its coordinator died, FAIL with ``rerun``
when it recorded the interruption itself. Each such search trial is run again
once, as a new trial with the same parameters and seed (``retry_of`` its
number), unless an earlier resume already did. Interrupted finalist runs are
left to the finalist stage, which plans whatever repeats are missing.

Kept apart from the coordinator so that this rule is tested on plain
``FrozenTrial`` lists, without storage or processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.coordinator.attempts import Planned
from search.study import finalists as fin
from search.study import keys
from search.study.pruning import Curve

LEFT_RUNNING = (TrialState.RUNNING, TrialState.WAITING)


@dataclass(frozen=True, slots=True)
class Recovery:
    """The plan for stored trials, in trial order."""

    left_running: list[FrozenTrial]  # a dead run's: to be recorded FAIL with ``rerun``
    reruns: list[Planned]  # interrupted search trials not yet run again
    curves: list[Curve]  # finished search trials, for the pruner
    mirror: list[FrozenTrial]  # the trials as the sampler should see them


def plan_recovery(trials: Sequence[FrozenTrial]) -> Recovery:
    """Interrupted means: left RUNNING (or WAITING) by a coordinator that died, or
    recorded FAIL with ``rerun`` (Ctrl-C, a lost worker) by a run that stopped
    before re-running it."""
    rerun_already = {t.user_attrs[keys.RETRY_OF] for t in trials if keys.RETRY_OF in t.user_attrs}
    left_running = [t for t in trials if t.state in LEFT_RUNNING]
    reruns = [
        Planned(dict(t.params), int(t.user_attrs.get(keys.SEED, 0)), {}, int(t.user_attrs.get(keys.ATTEMPT, 1))).retry(
            t.number
        )
        for t in trials
        if _interrupted(t) and t.number not in rerun_already and not fin.is_finalist_run(t)
    ]
    curves = [
        curve(t.number, t.state == TrialState.COMPLETE, t.value, list(t.intermediate_values.values()), t.system_attrs)
        for t in trials
        if t.state in fin.FINISHED and not fin.is_finalist_run(t)
    ]
    return Recovery(left_running, reruns, curves, trials_for_mirror(trials))


def _interrupted(t: FrozenTrial) -> bool:
    return t.state in LEFT_RUNNING or (t.state == TrialState.FAIL and bool(t.user_attrs.get(keys.RERUN, False)))


def curve(number: int, complete: bool, value: float | None, values: list[float], system_attrs: dict[str, Any]) -> Curve:
    """What the pruner keeps of a finished search trial (Hyperband's rungs among its system attrs)."""
    rung = {k: v for k, v in system_attrs.items() if k.startswith("completed_rung")}
    return Curve(number, complete, value, tuple(values), rung)


def trials_for_mirror(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """Stored trials as the sampler should see them; running ones (a dead run's) as failed."""
    out = []
    for t in trials:
        if t.state in LEFT_RUNNING:
            t = optuna.trial.create_trial(state=TrialState.FAIL, params=t.params, distributions=t.distributions)
        out.append(t)
    return out
