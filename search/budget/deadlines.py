"""When a run must stop: a budget's stages end, or ``--timeout``; what the coordinator reads before each trial.

Made by the job before the coordinator starts (``deadlines_for``), in seconds
from its start: the time the study's earlier runs and this run's start-up
spent is taken off first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from model import TrainConfig
from model.datasets import Dataset
from search.budget.leftover import Needs, finalists_end, stage_ends
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
    A budget's two start as the plan's shares; ``replanned`` moves them once
    trials have measured what the later stages need (``leftover.py``).
    """

    search: float
    stop: float
    budgeted: bool = False
    typical_trial: float = 0.0  # a search trial's expected seconds before any has finished
    # a search trial's expected seconds from its configuration (plan.TrialCost), asked before it starts
    trial_cost: Callable[[TrainConfig], float] | None = None
    end: float | None = None  # a budget: when all of it is used, final networks included
    budget: float = 0.0  # a budget: its seconds
    timeout: float | None = None  # --timeout: neither stage ends after it
    # the finalists were sized by the plan (no flag or preset set them): what the estimates leave
    # at the search's end may go to more fresh runs of them
    more_finalists: bool = False

    def replanned(self, later: Needs) -> Deadlines:
        """The stages' ends moved to leave the later stages ``later`` and no more (a budget; else unchanged)."""
        if self.end is None:
            return self
        search, stop = stage_ends(self.end, self.budget, later)
        if self.timeout is not None:
            search, stop = min(search, self.timeout), min(stop, self.timeout)
        return replace(self, search=max(search, 0.0), stop=max(stop, 0.0))

    def finalists_from(self, now: float, later: Needs, one_network: float, overhead: float) -> Deadlines:
        """The finalist stage's end, as it begins at ``now`` (``leftover.finalists_end``; a budget, else unchanged)."""
        if self.end is None:
            return self
        stop = finalists_end(now, self.end, self.budget, later, one_network, overhead)
        return replace(self, stop=max(min(stop, self.timeout if self.timeout is not None else stop), 0.0))


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
    typical, cost, planned = 0.0, None, False
    if plan is not None:
        typical, cost = plan.typical_epoch_seconds * spec.epochs * spec.cv, TrialCost.of(plan, data, spec.cv)
        planned = (spec.finalists, spec.finalist_repeats) == (plan.finalists, plan.finalist_repeats)
    return Deadlines(
        max(search_end, 0.0),
        max(stop, 0.0),
        budgeted=True,
        typical_trial=typical,
        trial_cost=cost,
        end=budget - spent,
        budget=budget,
        timeout=timeout,
        more_finalists=planned and spec.finalists > 0,
    )
