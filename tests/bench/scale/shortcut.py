"""The median pruner's decision computed with NumPy on a task's snapshot: the simulator's shortcut.

The real decision (``replay.play_real``: ``local_trial`` on the unpickled snapshot) costs about
10 ms of CPU per task on a snapshot of 200 curves (0.25 s at 6,700 trials before snapshots
were bounded), and one simulator process could not keep up with 64 workers that way. A
percentile pruner judged at every step needs only the percentile of the complete curves per
step, which ``History`` keeps for the current snapshot (the last ``search.study.pruning.SNAPSHOT``
curves). The simulator checks this shortcut against the real decision on the sampled tasks,
and the bench prints their agreement. Hyperband has no such shortcut (``play_fast`` returns
None): every task is decided the real way.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import optuna

from search.study.pruning import make_pruner
from tests.bench.scale.curves import Recorded
from tests.bench.scale.replay import Curve, Header, Played, replay


class History:
    """The finished search curves in the coordinator's order: each task's snapshot is a slice."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs
        self.matrix = np.full((1024, epochs), np.nan)
        self.complete = np.zeros(1024, dtype=bool)
        self.n = 0
        self._medians: tuple[tuple[int, int], np.ndarray, int] | None = None

    def extend(self, curves: Sequence[Curve]) -> None:
        """Append curves, doubling the arrays when full (a study of 10,000 trials grows them 4 times)."""
        for _, complete, values in curves:
            if self.n == len(self.complete):
                self.matrix = np.vstack([self.matrix, np.full_like(self.matrix, np.nan)])
                self.complete = np.concatenate([self.complete, np.zeros_like(self.complete)])
            row = values[: self.epochs]
            self.matrix[self.n, : len(row)] = row
            self.complete[self.n] = complete
            self.n += 1

    def medians(self, start: int, end: int, percentile: float) -> tuple[np.ndarray, int]:
        """Per step, the percentile of the complete curves among ``[start, end)``; their count."""
        if self._medians is None or self._medians[0] != (start, end):
            done = self.matrix[start:end][self.complete[start:end]]
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)  # a step no complete curve reached: NaN
                p = np.nanpercentile(done, percentile, axis=0) if len(done) else np.full(self.epochs, np.nan)
            self._medians = ((start, end), p, len(done))
        return self._medians[1], self._medians[2]


def fast_rule(pruner: optuna.pruners.BasePruner) -> tuple[int, int, float] | None:
    """(startup trials, warm-up steps, percentile) of a percentile pruner judged every step, else None.

    Reads the pruner's private settings (read only): Optuna has no public accessor for them.
    """
    every_step = isinstance(pruner, optuna.pruners.PercentilePruner) and pruner._interval_steps == 1
    if every_step and pruner._n_min_trials == 1:
        return pruner._n_startup_trials, pruner._n_warmup_steps, pruner._percentile
    return None


def play_fast(curve: Recorded, header: Header, history: History) -> Played | None:
    """The pruning decision by the pruner's own rule on the snapshot, in NumPy; None: no such shortcut."""
    pruner = make_pruner(header.pruner, header.epochs)
    if isinstance(pruner, optuna.pruners.NopPruner):
        return replay(curve, header, lambda values, epoch: False)
    rule = fast_rule(pruner)
    if rule is None:
        return None
    startup, warmup, percentile = rule
    medians, n_complete = history.medians(header.snapshot_start, header.snapshot_end, percentile)

    def should_prune(values: list[float], epoch: int) -> bool:
        if n_complete == 0 or n_complete < startup or epoch < warmup:
            return False
        p = medians[epoch - 1]
        return not math.isnan(p) and min(values) > p

    return replay(curve, header, should_prune)
