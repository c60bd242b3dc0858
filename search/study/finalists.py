"""The finalist stage: the best configurations of the search, run again on fresh seeds.

Why: the search's best trial is the luckiest of many noisy draws, so its score
is optimistic and its rank unreliable (measured: 2-3 points of test accuracy
on digits). Re-running the top configurations with fresh training seeds (and,
under cross-validation, fresh folds) and choosing the best *mean* removes the
luck of the draw from the choice, and the spread says how far to trust it.

Finalist runs are ordinary Optuna trials, told apart by user attributes
(``stage``, ``finalist_of``, ``repeat``), so the study stays plain Optuna and
``resume`` finishes an interrupted stage by planning what is missing. Only
the fresh runs count towards a finalist's mean: the search trial that made it
a finalist was selected for being lucky.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from optuna.trial import FrozenTrial, TrialState

from search.study import keys
from search.study.metrics import rank_key

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def is_finalist_run(trial: FrozenTrial) -> bool:
    return trial.user_attrs.get(keys.STAGE) == keys.FINALIST


def params_key(params: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Two trials with equal keys trained the same configuration."""
    return tuple(sorted(params.items()))


def trial_score(trial: FrozenTrial, metric: str) -> float | None:
    """The trial's validation score of ``metric`` at its selected epoch (None: not scored, or not finished)."""
    value = trial.user_attrs.get(keys.VAL_SCORE.format(metric))
    return None if value is None else float(value)


def choose(trials: Iterable[FrozenTrial], k: int, metric: str | None = None) -> list[FrozenTrial]:
    """The ``k`` best complete search trials with distinct configurations, best first.

    Best by ``metric`` (ties by the objective), or by the objective where the study names no metric.
    """

    def best(t: FrozenTrial) -> tuple[float, ...]:
        by_metric = () if metric is None else (rank_key(metric, trial_score(t, metric)),)
        return (*by_metric, t.value, t.number)

    complete = sorted((t for t in trials if t.state == TrialState.COMPLETE and not is_finalist_run(t)), key=best)
    chosen: dict[tuple, FrozenTrial] = {}
    for t in complete:
        chosen.setdefault(params_key(t.params), t)
        if len(chosen) == k:
            break
    return list(chosen.values())


def folds_seed(study_seed: int, repeat: int) -> int:
    """Repeat ``repeat`` of a finalist is cross-validated on its own fresh folds; 0 = the search's."""
    if repeat == 0:
        return study_seed
    return int(np.random.SeedSequence([study_seed, 1, repeat]).generate_state(1)[0])


@dataclass(frozen=True, slots=True)
class PlannedRun:
    finalist_of: int
    repeat: int
    params: dict[str, Any]


def missing_runs(finalists: Sequence[FrozenTrial], trials: Iterable[FrozenTrial], repeats: int) -> list[PlannedRun]:
    """The finalist runs still to do: each finalist's repeats 1..``repeats`` not yet finished.

    Runs are matched by configuration, so a finalist chosen again after the
    search was extended keeps the runs it already has.
    """
    done: set[tuple[tuple, int]] = {
        (params_key(t.params), int(t.user_attrs.get(keys.REPEAT, 0)))
        for t in trials
        if is_finalist_run(t) and t.state in FINISHED
    }
    return [
        PlannedRun(f.number, r, dict(f.params))
        for f in finalists
        for r in range(1, repeats + 1)
        if (params_key(f.params), r) not in done
    ]


@dataclass(frozen=True, slots=True)
class Finalist:
    number: int  # the search trial that made it a finalist
    params: dict[str, Any]
    runs: tuple[FrozenTrial, ...]  # its finished fresh runs
    metric: str | None = None  # the study's metric, which ranks the finalists (None: the objective does)

    @property
    def values(self) -> list[float]:
        """Objective of each run; a run that diverged counts as infinitely bad."""
        return [t.value if t.state == TrialState.COMPLETE and t.value is not None else math.inf for t in self.runs]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values) if self.runs else math.inf

    @property
    def sd(self) -> float:
        return spread([v for v in self.values if math.isfinite(v)])

    def scores(self, metric: str) -> list[float]:
        """``metric`` of each run; NaN for a run without it (one that diverged)."""
        return [
            math.nan if (v := trial_score(t, metric)) is None or t.state != TrialState.COMPLETE else v
            for t in self.runs
        ]

    def score_mean(self, metric: str) -> float:
        """The mean of ``metric`` over the runs; NaN when a run has none: it ranks last."""
        scores = self.scores(metric)
        return statistics.fmean(scores) if scores and all(math.isfinite(v) for v in scores) else math.nan

    def score_sd(self, metric: str) -> float:
        return spread([v for v in self.scores(metric) if math.isfinite(v)])

    @property
    def rank(self) -> tuple[float, ...]:
        """What orders the finalists: the metric's mean (ties by the objective's), or the objective's mean."""
        by_metric = () if self.metric is None else (rank_key(self.metric, self.score_mean(self.metric)),)
        return (*by_metric, self.mean, self.number)


def spread(xs: Sequence[float]) -> float:
    """Sample standard deviation; NaN for fewer than two values: one run has no spread to show."""
    return statistics.stdev(xs) if len(xs) > 1 else math.nan


def ranked(trials: Sequence[FrozenTrial], metric: str | None = None) -> list[Finalist]:
    """The finalists with finished fresh runs, best mean first.

    The one ranking that chooses the winner (``best``, ``best --retrain``) and that
    ``show``, reports and ``load_finalists`` print; the finalists are named by
    their runs' ``finalist_of``. ``metric``: the study's (``StudySpec.metric``), which
    ranks them by its mean over the runs; None: the objective's mean does.
    """
    numbers = {t.user_attrs.get(keys.FINALIST_OF) for t in trials if is_finalist_run(t) and t.state in FINISHED}
    return standings(trials, sorted(int(n) for n in numbers if n is not None), metric)


def winner(trials: Sequence[FrozenTrial], metric: str | None = None) -> int | None:
    """The search trial whose configuration the finalist stage chose; None before any finalist finished a run."""
    best = ranked(trials, metric)
    return best[0].number if best and math.isfinite(best[0].mean) else None


def standings(trials: Sequence[FrozenTrial], numbers: Sequence[int], metric: str | None = None) -> list[Finalist]:
    """The finalists ``numbers`` with their finished runs, best first (by ``metric``'s mean, or the objective's)."""
    by_number = {t.number: t for t in trials}
    out = []
    for n in numbers:
        if n not in by_number:
            continue
        key = params_key(by_number[n].params)
        runs = tuple(t for t in trials if is_finalist_run(t) and t.state in FINISHED and params_key(t.params) == key)
        out.append(Finalist(n, dict(by_number[n].params), runs, metric))
    return sorted(out, key=lambda f: f.rank)
