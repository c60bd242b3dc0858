"""The final ensemble's size: how many networks of the winner, of how many epochs, the time left trains.

Sized when its stage begins, from what is left of the budget and from what the
winner's own runs took (their stored timings say more than the cost model):
by the coordinator's job for the service's final networks, and by
``SearchCV`` for its refit on all its rows.
"""

from __future__ import annotations

import math

from search.budget.leftover import end_margin
from search.budget.shares import ENSEMBLE_MAX, FINAL_OVERHEAD
from search.budget.timings import winner_epoch_seconds
from search.study.spec import StudySpec
from search.study.winner import Winner, final_epochs

__all__ = ["ensemble_size", "why_fewer", "winner_ensemble_size"]


def ensemble_size(
    seconds_left: float, epoch_seconds: float, epochs: int, workers: float, fixed: float = 0.0
) -> tuple[int, int]:
    """(networks, epochs) of the final ensemble that fit in ``seconds_left``: more networks first, then fewer epochs.

    ``epoch_seconds`` is one epoch of the winner on train + validation, one worker;
    ``fixed`` what each network pays once besides its epochs; ``workers`` the networks a
    round trains (half the workers for networks trained twice).
    """
    for k in range(ENSEMBLE_MAX, 0, -1):
        rounds = math.ceil(k / workers)
        if rounds * (fixed + epochs * epoch_seconds) <= seconds_left:
            return k, epochs
    fitting = int((seconds_left - fixed) / max(epoch_seconds, 1e-9))
    return 1, max(1, min(epochs, fitting))


def winner_ensemble_size(
    spec: StudySpec,
    winner: Winner,
    seconds_left: float,
    jobs: int,
    rows: float = 1.0,
    overhead: float = FINAL_OVERHEAD,
    every_row: float = 0.0,
) -> tuple[int, int]:
    """(networks, epochs) of a budget's final ensemble of ``winner`` in ``seconds_left``.

    Less the job's end margin and what the stage costs besides training (``overhead``:
    ``leftover.final_overhead`` of the run's measured worker start, else ``FINAL_OVERHEAD``).

    ``rows``: how many times train + validation the networks train on (``SearchCV`` refits on all its rows).
    ``every_row``: each network is trained twice, scored then again on every row, which is this many
    times train + validation (``datafile.every_row_ratio``; 0: once).
    """
    left, epoch_seconds, fixed, epochs, slots = _stage(spec, winner, seconds_left, jobs, overhead, rows, every_row)
    return ensemble_size(left, epoch_seconds, epochs, slots, fixed)


def _stage(
    spec: StudySpec, winner: Winner, seconds_left: float, jobs: int, overhead: float, rows: float, every_row: float
) -> tuple[float, float, float, int, float]:
    """(seconds the final networks have after the end margin and ``overhead``, a network's epoch and fixed
    seconds as the winner's runs timed them, its final epochs, networks a round trains): what the stage is
    sized from, and explained by. Trained twice, both copies share the rounds, each costed as the dearer."""
    assert spec.budget is not None
    epoch_seconds, fixed = winner_epoch_seconds(spec, winner.runs or (winner.trial,))
    scale, slots = (every_row, jobs / 2) if every_row else (rows, float(jobs))
    left = seconds_left - end_margin(spec.budget) - overhead
    return left, epoch_seconds * scale, fixed, final_epochs(spec, winner), slots


def why_fewer(
    spec: StudySpec,
    winner: Winner,
    seconds_left: float,
    jobs: int,
    networks: int,
    overhead: float = FINAL_OVERHEAD,
    every_row: float = 0.0,
) -> str:
    """Why ``winner_ensemble_size`` gave ``networks`` of full epochs, fewer than ``ENSEMBLE_MAX``, in words.

    They train in rounds of ``jobs``, one a worker: the next round, as the winner's runs
    timed it, did not fit in what the stage had after its margin and its own costs.
    """
    left, epoch_seconds, fixed, epochs, slots = _stage(spec, winner, seconds_left, jobs, overhead, 1.0, every_row)
    needed = math.ceil((networks + 1) / slots) * (fixed + epoch_seconds * epochs)
    twice = " twice (scored, then again on every row)" if every_row else ""
    return (
        f"the final networks train{twice} in rounds of {jobs}, and {networks + 1} of them (about "
        f"{needed:.1f} s, as the winner's runs timed it) did not fit in the stage's {max(left, 0.0):.1f} s"
    )
