"""What this run's trials measured of the stages still to come: a finalist run's and a final network's seconds.

The coordinator re-plans a budget's stage ends from these (``leftover.py``), and
sizes the finalist stage when it begins; the final stage (``ensemble.py``) and
``SearchCV``'s refit size their ensembles from the winner's epoch here. The cost model (``cost.py``) planned the
study before anything ran; here a configuration, named by its search trial's
number, is costed from its own trials: its finalist runs once one has finished,
else its search trial. A search trial's seconds also hold its task's fixed costs
(loading the data, building the networks), which a finalist run pays once however
long it trains: costed per epoch they made a small table's epochs up to 6 times a
finalist run's (spam7, 2026-12-06: 11 ms against 1.9 ms), and on tables of 6,000
to 22,000 rows no finalist run fitted where one would have (bench_tasks,
2026-12-07: "0 finalist runs" with 29-58 s left). So a search trial's epochs are
costed from the seconds in its epochs (``keys.TRAIN_SECONDS``) and its fixed cost
is added once (a final network, a task of its own, is costed from the whole
seconds here; the final stage sizes its ensemble from the epochs' seconds and the
fixed cost once a network, ``winner_epoch_seconds``); once finalist runs have
finished, their median ratio to that estimate scales the configurations not yet
run, as the search's trials scale the cost model. A trial stored before
``TRAIN_SECONDS`` counts its whole seconds as epochs.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from optuna.trial import FrozenTrial

from search.budget.cost import network_epoch_seconds
from search.budget.leftover import Needs, needs
from search.study import finalists as fin
from search.study import keys
from search.study.spec import StudySpec

__all__ = ["StageTimings", "TrialTiming", "train_share", "winner_epoch_seconds"]


class TrialTiming(NamedTuple):
    """A trial's seconds in its worker, of them in its epochs, and its epochs."""

    seconds: float
    train_seconds: float
    epochs: int

    @classmethod
    def measured(cls, seconds: float, epochs: int, train_seconds: float | None = None) -> TrialTiming:
        """A timing as a worker reported it; without ``train_seconds`` (a trial stored before
        ``keys.TRAIN_SECONDS``), all of it counts as epochs."""
        return cls(seconds, train_seconds or seconds, epochs)

    @classmethod
    def of(cls, trial: FrozenTrial) -> TrialTiming | None:
        """As stored on ``trial``; None if it never trained."""
        seconds, epochs = trial.user_attrs.get(keys.SECONDS), trial.user_attrs.get(keys.EPOCHS_RUN)
        if not (seconds and epochs):
            return None
        return cls.measured(seconds, epochs, trial.user_attrs.get(keys.TRAIN_SECONDS))

    @property
    def fixed(self) -> float:
        """What the task cost besides its epochs: paid once by any run of the configuration."""
        return max(self.seconds - self.train_seconds, 0.0)


class StageTimings:
    """Seconds of the configurations' finalist runs and final networks, as this study's trials timed them."""

    def __init__(self, spec: StudySpec) -> None:
        self.spec = spec
        self._search: dict[int, TrialTiming] = {}
        self._finalist: dict[int, float] = {}  # search trial -> the dearest of its finished finalist runs
        self._ratios: list[float] = []  # a configuration's first finalist run: measured / from its search trial
        # the most a finished finalist run took over what it was expected to: a run beyond the
        # planned ones starts only if it would end in time at that pace
        self.slowdown = 1.0

    def stored(self, trials: Iterable[FrozenTrial]) -> None:
        """The timings of the trials earlier runs of the study finished."""
        for t in trials:
            timing = TrialTiming.of(t)
            if timing is None:
                continue
            if not fin.is_finalist_run(t):
                self._search[t.number] = timing
            elif timing.epochs == self.spec.finalist_epochs and keys.FINALIST_OF in t.user_attrs:
                number = t.user_attrs[keys.FINALIST_OF]
                self._finalist[number] = max(self._finalist.get(number, 0.0), timing.seconds)

    def search_trial(self, number: int, seconds: float, epochs: int, train_seconds: float) -> None:
        """A search trial trained ``epochs`` epochs in ``seconds``, ``train_seconds`` of them in its epochs."""
        self._search[number] = TrialTiming.measured(seconds, epochs, train_seconds)

    def finalist_run(self, number: int, seconds: float) -> None:
        """A finalist run of search trial ``number``'s configuration trained all its epochs in ``seconds``."""
        expected = self.finalist_run_seconds(number)
        if expected:
            self.slowdown = max(self.slowdown, seconds / expected)
        from_search = self._finalist_run_from_search(number)
        if number not in self._finalist and from_search:
            self._ratios.append(seconds / from_search)
        self._finalist[number] = max(self._finalist.get(number, 0.0), seconds)

    def finalist_run_seconds(self, number: int) -> float:
        """A finalist run of search trial ``number``: the dearest of its finished ones, else as its search trial
        timed it, scaled by the finished finalist runs' median ratio to that estimate; 0 if it never trained."""
        if number in self._finalist:
            return self._finalist[number]
        ratio = statistics.median(self._ratios) if self._ratios else 1.0
        return self._finalist_run_from_search(number) * ratio

    def _finalist_run_from_search(self, number: int) -> float:
        """The search trial's fixed cost, then one network's epoch as it trained it (warped where the
        finalists warp) times the finalist run's folds and epochs."""
        timing = self._search.get(number, TrialTiming(0.0, 0.0, 1))
        folds, finalist_epochs = self._finalist_folds_and_epochs()
        epoch = network_epoch_seconds(
            timing.train_seconds, timing.epochs, self.spec.cv, warp=bool(self.spec.finalist_warp)
        )
        return timing.fixed + epoch * finalist_epochs * folds

    def _finalist_folds_and_epochs(self) -> tuple[int, int]:
        folds, epochs = self.spec.finalist_cv, self.spec.finalist_epochs
        assert folds is not None and epochs is not None  # a stored spec has them (they follow cv and epochs)
        return folds, epochs

    def final_network_seconds(self, number: int) -> float:
        """A final network of search trial ``number``'s configuration on train + validation, as its finalist
        runs (else its search trial) timed their networks."""
        spec = self.spec
        _, finalist_epochs = self._finalist_folds_and_epochs()
        if number in self._finalist:
            timing, finalist = TrialTiming.measured(self._finalist[number], finalist_epochs), True
        else:
            timing, finalist = self._search.get(number, TrialTiming(0.0, 0.0, 1)), False
        epoch = all_rows_epoch_seconds(spec, timing, finalist=finalist)
        return epoch * (finalist_epochs if spec.finalists else spec.epochs)

    def later_needs(self, numbers: Sequence[int], repeats: int, workers: int, budget: float, overhead: float) -> Needs:
        """The later stages' seconds: ``repeats`` finalist runs of each of ``numbers``, then final networks of the
        dearest of them (which one wins is not known yet), on ``workers`` workers; ``overhead``: the final
        stage's own (``leftover.final_overhead``)."""
        runs = [self.finalist_run_seconds(n) for n in numbers] * repeats
        final = max(self.final_network_seconds(n) for n in numbers)
        return needs(runs, final, workers, budget, overhead)


def train_share(spec: StudySpec, folds: int) -> float:
    """The part of train + validation each network of a run of ``folds`` folds trains on.

    A run of k folds trains k networks on (k-1)/k of train + validation each; a holdout
    run one network on the training split (val_fraction short of the whole).
    """
    assert spec.val_fraction is not None
    return (folds - 1) / folds if folds > 1 else 1 - spec.val_fraction


def all_rows_epoch_seconds(spec: StudySpec, timing: TrialTiming, *, finalist: bool) -> float:
    """One epoch of a network on all of train + validation, one worker, as a search trial or finalist run timed it.

    From the task's whole seconds, not its epochs': each final network is a task of its own and pays
    its fixed costs too. A final network trains warped where the study warps its finalists, as a
    search trial did not.
    """
    folds = spec.finalist_cv if finalist else spec.cv
    assert folds is not None
    warp = bool(spec.finalist_warp) and not finalist
    return network_epoch_seconds(timing.seconds, timing.epochs, folds, share=train_share(spec, folds), warp=warp)


def winner_epoch_seconds(spec: StudySpec, runs: Iterable[FrozenTrial]) -> tuple[float, float]:
    """(one epoch of the winner on train + validation, one worker; what a network pays once besides its epochs):
    the dearest of its runs' own timings.

    The epoch from the seconds in the runs' epochs, the fixed cost apart: a run that
    stopped after an epoch or two (diverged, pruned) spread its whole task over those
    and made an epoch look dozens of times dearer (CI, 2026-12-07: ``SearchCV``'s
    refit of wine sized to one network of one epoch with seconds to spare).
    """
    timed = [(timing, fin.is_finalist_run(t)) for t in runs if (timing := TrialTiming.of(t)) is not None]
    epoch = max(
        (
            all_rows_epoch_seconds(spec, timing._replace(seconds=timing.train_seconds), finalist=finalist)
            for timing, finalist in timed
        ),
        default=0.0,
    )
    return epoch, max((timing.fixed for timing, _ in timed), default=0.0)
