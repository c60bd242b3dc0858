"""What the stages leave: the rest of a budget re-planned from measured costs, and why a job ended early.

The plan's shares (``shares.SHARES``) are set before anything has run, from the
probe's cost model. On small tables the later stages measure far cheaper than
their shares: with the shares alone a 2-minute job ended at 61-69% of its
budget (2026-12-06: search 50%, finalists 6%, final networks 5%). So once
trials have run, the coordinator re-plans from their own timings, in this order:

1. the final ensemble is reserved first, at its cap (``ENSEMBLE_MAX`` networks of
   the finalists' epochs, as dear as the dearest candidate's networks): it is
   what the score rests on, and it costs a few percent of a table's budget;
2. the finalist stage next, at the size it was planned (configurations x fresh
   runs, each as its search trial timed it): on all three development tables the
   finalists overturned the search's ranking, so their runs are not cut for the search;
3. the search gets everything else: it runs until only the later stages'
   needs and ``END_MARGIN`` are left (re-computed after every complete trial);
4. what the estimates leave when the search has ended goes to more fresh runs of
   the finalists (the coordinator's finalist stage), then the final networks
   take what they need.

The final networks' reservation is capped at their share, and the two later
stages' together at their two shares, so on data where the later stages are dear
(Fashion-MNIST) the rule is the plan's shares. The finalists may take what cheap
final networks leave of their share: digits at 60 s (2026-12-07) planned runs of
120 epochs on 3 warped folds that its 11 s finalist share held none of, and the
job ended at 59% with no finalist run, while its 5 final networks took 5 s of
their 14 s. The functions here are pure: plain seconds in, seconds or words out.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass

from search.budget.shares import (
    END_MARGIN,
    END_SECONDS,
    ENSEMBLE_MAX,
    FINAL_OVERHEAD,
    FINAL_STORE,
    FINALIST_ERROR,
    FINALIST_SIZES,
    SHARES,
    STUDY_READ,
    TRIAL_OVERHEAD,
)

__all__ = [
    "EARLY",
    "Needs",
    "end_margin",
    "final_overhead",
    "finalist_size",
    "finalists_end",
    "makespan",
    "needs",
    "stage_ends",
    "why_early",
]

EARLY = 0.90  # a job that ends before this part of its budget says why


@dataclass(frozen=True, slots=True)
class Needs:
    """Wall seconds the stages after the search are expected to take, capped at their shares (``needs``)."""

    finalists: float
    final: float

    @property
    def total(self) -> float:
        return self.finalists + self.final


def makespan(seconds: Sequence[float], workers: int) -> float:
    """Wall seconds of these runs on ``workers`` workers, each run started on the first free one, longest first."""
    free = [0.0] * max(1, min(workers, len(seconds)))
    for s in sorted(seconds, reverse=True):
        heapq.heappush(free, heapq.heappop(free) + s)
    return max(free) if seconds else 0.0


def end_margin(budget: float) -> float:
    """What a re-planned job keeps at its end: the storage's last writes, the process's exit, the estimates' error."""
    return END_MARGIN * budget + END_SECONDS


def needs(
    finalist_runs: Sequence[float], final_network: float, workers: int, budget: float, overhead: float = FINAL_OVERHEAD
) -> Needs:
    """The later stages' wall seconds: these finalist runs, then ``ENSEMBLE_MAX`` networks of ``final_network`` s.

    Each finalist run also pays its round trip (``TRIAL_OVERHEAD``), and the stage is reserved
    ``FINALIST_ERROR`` more than its runs' estimates: what they leave unused goes to more finalist runs.
    The final stage also pays ``overhead`` (its workers' start, saving, storing: ``final_overhead``).
    The final stage is capped at its share of ``budget``, the finalists at what the final stage
    leaves of the two stages' shares: a stage dearer than that is cut when it begins (fewer
    finalists, fewer or shorter final networks), as planned.
    """
    finalists = makespan([run + TRIAL_OVERHEAD for run in finalist_runs], workers) * (1 + FINALIST_ERROR)
    final = min(makespan([final_network] * ENSEMBLE_MAX, workers) + overhead, SHARES["final"] * budget)
    return Needs(min(finalists, SHARES["finalists"] * budget + (SHARES["final"] * budget - final)), final)


def final_overhead(worker_start: float, trials: int = 0) -> float:
    """The final stage's seconds besides training, from how long this run's workers took to start their first task
    and the ``trials`` the study holds.

    Its own workers start the same way (a new process, the same imports), then load the
    data, save the weights and store the scores (``FINAL_STORE``); never less than ``FINAL_OVERHEAD``.
    Before any of that, the stage reads the study back to find the winner (``STUDY_READ`` a trial).
    """
    return max(FINAL_OVERHEAD, worker_start + FINAL_STORE) + STUDY_READ * trials


def finalist_size(runs: Sequence[float], repeats: int, seconds: float, workers: int) -> tuple[int, int]:
    """(configurations, fresh runs of each) of a finalist stage that fit in ``seconds`` on ``workers`` workers.

    ``runs``: one run of each chosen configuration, best first, in seconds. The planned
    ``len(runs)`` x ``repeats`` first, then smaller sizes in the plan's order (``FINALIST_SIZES``:
    three or more configurations of two runs, then of one, then two of one), so that the stage
    still has a choice to make; the best configuration's single run when nothing else fits.
    """
    for k, r in ((len(runs), repeats), *FINALIST_SIZES):
        fits = makespan([run + TRIAL_OVERHEAD for run in runs[:k]] * r, workers) <= seconds
        if k <= len(runs) and r <= repeats and fits:
            return k, r
    return min(1, len(runs)), 1


def stage_ends(end: float, budget: float, later: Needs) -> tuple[float, float]:
    """(the search's end, the finalists' end): what the later stages need, counted back from the job's ``end``.

    Seconds on the coordinator's clock, as ``end`` is. The search absorbs whatever the
    later stages leave; the finalists end where the final networks' time begins.
    """
    finalists_end = end - end_margin(budget) - later.final
    return finalists_end - later.finalists, finalists_end


def finalists_end(
    now: float, end: float, budget: float, later: Needs, one_network: float, overhead: float = FINAL_OVERHEAD
) -> float:
    """When the finalist stage must end, decided when it begins (``now``): where the final networks' time begins.

    A search that ran past its end (its last trials took longer than expected) takes the
    overrun from the final networks, not from the finalists: they keep their ``later.finalists``
    seconds, as long as the final stage keeps the time of one network (``one_network``) and
    its own costs (``overhead``: ``final_overhead``).
    """
    regular = end - end_margin(budget) - later.final
    latest = end - end_margin(budget) - overhead - one_network
    return max(regular, min(now + later.finalists, latest))


def why_early(
    used: float,
    budget: float,
    *,
    search_ended: str,
    search_left: float,
    later_left: float | None,
    took: float,
    finalist_runs: int,
    networks: int,
    full_epochs: bool,
    fewer: str = "",
    finalist_stage: bool = False,
) -> str | None:
    """One line on why a job that used ``used`` of ``budget`` seconds ended before ``EARLY`` of it; None if it did not.

    ``search_ended``: why the search ended before its time, in words ("": it had its
    time); ``search_left``: the seconds of its time it left. ``later_left``: the seconds
    the search left to the finalists and final networks (None: not re-planned), and
    ``took``: the seconds they took. ``finalist_runs``, ``networks``, ``full_epochs``:
    what those stages ran (``networks`` final networks, of their full epochs or fewer);
    ``fewer``: why the final stage trained fewer than its cap, in words ("": not known);
    ``finalist_stage``: the study has one, so a job without a finalist run did not reach its cap.
    """
    if used >= EARLY * budget:
        return None
    head = f"ended early, at {used / budget:.0%} of the budget"
    runs = f"{_count(finalist_runs, 'finalist run')}, {_count(networks, 'final network')}"
    unused = budget - end_margin(budget) - used
    if search_ended and search_left >= unused / 2:  # the search's early end explains most of the time unused
        return f"{head}: {search_ended} ({format_seconds(search_left)} of its time left); then {runs}"
    capped = networks >= ENSEMBLE_MAX and full_epochs
    left = f" of the {format_seconds(later_left)} the search left them" if later_left is not None else ""
    if finalist_stage and not finalist_runs:
        what = "no finalist run fitted in the finalists' time"
    elif capped:
        what = "every stage reached its cap"
    else:
        what = fewer or "the later stages ran faster than measured"
    return f"{head}: {what}; the finalists and final networks ({runs}) took {format_seconds(took)}{left}"


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}{'s' if n != 1 else ''}"


def format_seconds(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
