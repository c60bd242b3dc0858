"""When a run must stop: a budget's stages end, or ``--timeout``; what the coordinator reads before each trial.

Made by the job before the coordinator starts (``deadlines_for``), in seconds
from its start: the time the study's earlier runs and this run's start-up
spent is taken off first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from model import TrainConfig
from model.datasets import Dataset
from search.budget.plan import Plan, TrialCost
from search.budget.shares import SHARES
from search.study.spec import StudySpec

__all__ = ["Deadlines", "deadlines_for"]


@dataclass(frozen=True, slots=True)
class Deadlines:
    """When a run must stop, in seconds from its start.

    ``search``: no search trial starts that a typical one could not finish by then;
    with ``budgeted``, the search is over then and the finalist stage follows.
    ``stop``: no trial starts that could not finish by then, and what still runs
    then is stopped and recorded for a re-run, as Ctrl-C does (``--timeout``,
    and the end of a budget's finalist stage).
    """

    search: float
    stop: float
    budgeted: bool = False
    typical_trial: float = 0.0  # a search trial's expected seconds before any has finished
    # a search trial's expected seconds from its configuration (plan.TrialCost), asked before it starts
    trial_cost: Callable[[TrainConfig], float] | None = None


def deadlines_for(
    spec: StudySpec,
    budget: float | None,
    spent: float,
    timeout: float | None,
    plan: Plan | None,
    data: Dataset,
) -> Deadlines | None:
    """The coordinator's deadlines: a budget's stage ends (``spent`` of it already), or ``--timeout``; None: neither.

    ``plan``: the one the study was made with, to cost its trials (None: a budget without one).
    """
    if budget is None:
        return None if timeout is None else Deadlines(timeout, timeout)
    search_end = SHARES["search"] * budget - spent
    stop = (SHARES["search"] + SHARES["finalists"]) * budget - spent
    if timeout is not None:
        search_end, stop = min(search_end, timeout), min(stop, timeout)
    if plan is None:
        return Deadlines(max(search_end, 0.0), max(stop, 0.0), budgeted=True)
    typical = plan.typical_epoch_seconds * spec.epochs * spec.cv
    cost = TrialCost.of(plan, data, spec.cv)
    return Deadlines(max(search_end, 0.0), max(stop, 0.0), budgeted=True, typical_trial=typical, trial_cost=cost)
