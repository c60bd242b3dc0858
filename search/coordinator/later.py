"""A budget's later stages as the coordinator plans them: what they are costed on, and the finalists' runs.

The coordinator's loop sends trials and records them; what the finalists and
final networks will need, which configurations the finalist stage runs and
when one more fresh run fits are decided here, from the trials and the clock it
is handed. It answers with moved deadlines and runs to queue, and keeps no
handle on the storage or the workers, so that its rules read apart from the
loop's bookkeeping.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Callable, Mapping, Sequence

from optuna.trial import FrozenTrial

from search.budget.deadlines import Deadlines
from search.budget.leftover import Needs, finalist_size
from search.budget.timings import StageTimings
from search.coordinator.attempts import Planned
from search.study import finalists as fin
from search.study import keys
from search.study.spec import StudySpec

__all__ = ["LaterStages"]


class LaterStages:
    """The candidates the later stages are costed on, and the finalist stage's configurations and runs."""

    def __init__(self, spec: StudySpec, workers: int, overhead: Callable[[], float]) -> None:
        """``overhead``: the final stage's own seconds as this run has measured them so far."""
        self.spec, self.workers, self._overhead = spec, workers, overhead
        self.timings = StageTimings(spec)  # what finalist runs and final networks will take, as trials timed them
        # the best complete search trials, (value, number), best first: the finalists to be, or the one winner
        self.candidates: list[tuple[float, int]] = []
        self.numbers: list[int] = []  # the finalist stage's configurations (search trial numbers)
        self.pool: list[int] = []  # ... and those it was chosen from, best first (some left out for time)

    @property
    def n_candidates(self) -> int:
        return max(1, self.spec.finalists)

    @property
    def repeats(self) -> int:
        """Fresh runs of each finalist: none without a finalist stage."""
        return self.spec.finalist_repeats if self.spec.finalists else 0

    def stored(self, trials: Sequence[FrozenTrial]) -> None:
        """What earlier runs of the study finished: their timings and best trials."""
        self.timings.stored(trials)
        chosen = fin.choose(trials, self.n_candidates)  # complete trials: each has a value
        self.candidates = [(t.value, t.number) for t in chosen if t.value is not None]

    def note_candidate(self, value: float, number: int) -> None:
        """A complete search trial: kept if it is among the best."""
        self.candidates = heapq.nsmallest(self.n_candidates, [*self.candidates, (value, number)])

    def finalist_run_seconds(self, run: Planned) -> float:
        return self.timings.finalist_run_seconds(run.attrs[keys.FINALIST_OF])

    def needs(self, deadlines: Deadlines, numbers: Sequence[int], repeats: int) -> Needs:
        """The later stages' seconds: finalists ``numbers`` (``repeats`` runs each), then final networks."""
        return self.timings.later_needs(numbers, repeats, self.workers, deadlines.budget, self._overhead())

    def replanned(self, deadlines: Deadlines | None) -> Deadlines | None:
        """A budget's stage ends moved to leave the later stages what the candidates need, and no more."""
        numbers = [n for _, n in self.candidates]
        if deadlines is None or deadlines.end is None or not numbers:
            return deadlines
        return deadlines.replanned(self.needs(deadlines, numbers, self.repeats))

    def plan_finalists(
        self, trials: Sequence[FrozenTrial], deadlines: Deadlines | None, now: float
    ) -> tuple[Deadlines | None, list[Planned]]:
        """The finished search's finalists: the stage's end, and the runs they miss, best configuration first."""
        chosen = fin.choose(trials, self.spec.finalists, self.spec.metric)
        numbers = [t.number for t in chosen]
        if numbers and deadlines is not None and deadlines.end is not None:  # until the final networks
            one = max(self.timings.final_network_seconds(n) for n in numbers)
            later = self.needs(deadlines, numbers, self.spec.finalist_repeats)
            deadlines = deadlines.finalists_from(now, later, one, self._overhead())
        repeats, self.pool = self.spec.finalist_repeats, numbers
        if deadlines is not None and deadlines.budgeted:  # the most the time left runs, best first
            runs = [self.timings.finalist_run_seconds(t.number) for t in chosen]
            count, repeats = finalist_size(runs, repeats, max(deadlines.stop - now, 0.0), self.workers)
            chosen = chosen[:count]
        self.numbers = [t.number for t in chosen]
        planned = [
            Planned(
                run.params,
                None,
                {keys.STAGE: keys.FINALIST, keys.FINALIST_OF: run.finalist_of, keys.REPEAT: run.repeat},
            )  # fmt: skip
            for run in fin.missing_runs(chosen, trials, repeats)
        ]
        return deadlines, planned

    def another_run(
        self, trials: Sequence[FrozenTrial], deadlines: Deadlines, now: float, wait: float, sent: Mapping[int, int]
    ) -> tuple[Deadlines, Planned | None]:
        """The planned finalist runs are all sent (``sent``: those in flight, per configuration): one more fresh
        run of a finalist, if one fits, and the stage's end moved to make room for it.

        What the estimates left goes to the finalists' choice: a configuration the stage left
        out for time comes back first (best first, and it joins ``numbers``), then the finalist
        with the fewest runs (then the best mean) gets the next run; each only if it ends in
        time for the final networks of any finalist it could make the winner (itself, the
        leader, the runner-up), so that their ensemble still has its full size.
        """
        left_out = self.pool[len(self.numbers) :][:1]
        standings = fin.standings(trials, [*self.numbers, *left_out])
        contenders = [f.number for f in standings[:2] if f.runs]
        for f in sorted(standings, key=lambda f: (len(f.runs) + sent.get(f.number, 0), f.mean, f.number)):
            stop = deadlines.replanned(self.needs(deadlines, [*contenders, f.number], 0)).stop
            if now + wait + self.timings.finalist_run_seconds(f.number) * self.timings.slowdown > stop:
                continue
            repeats = [
                int(t.user_attrs.get(keys.REPEAT, 0))
                for t in trials
                if fin.is_finalist_run(t) and t.user_attrs.get(keys.FINALIST_OF) == f.number
            ]
            attrs = {keys.STAGE: keys.FINALIST, keys.FINALIST_OF: f.number, keys.REPEAT: max(repeats, default=0) + 1}
            if f.number in left_out:
                self.numbers.append(f.number)
            return dataclasses.replace(deadlines, stop=max(stop, deadlines.stop)), Planned(dict(f.params), None, attrs)
        return deadlines, None
