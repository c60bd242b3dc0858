"""What the sampler sees of a long study: its best trials and an even sample of the rest, at a bounded cost.

Why: TPE re-reads every trial on every ask (the search space, then one split into
good and bad per parameter group, then a Parzen estimator over each), so its cost
grows linearly with the study: about 40 ms an ask at 1,000 trials on this
project's space, 250 ms at 10,000, when 64 workers on 1-s trials need one every
15 ms. Yet TPE needs little of a long history:

- its *good* set is at most 25 trials (``default_gamma``: the best 10 %, capped
  at 25), and those are always shown;
- its *bad* set is a density estimate, and an even sample of 250 trials spread
  over the whole study (numbers 0, n/250, 2n/250, ..., the newest) has the same
  shape as all of them, early random exploration included, and keeps their order
  (TPE weights trials by age).

Measured (docs/how-it-works.md, "Long studies"): over 5 study seeds of 1,000 trials, the
best value found is the same with this view as with every trial (and as with the
last 250 trials, tried first; the even sample is kept for the reason above).

Studies of up to ``SPREAD + BEST`` trials are shown whole, so they sample exactly
as with every trial (the default 200-trial study among them). Everything else
(the coordinator's finalist choice, the storage, readers) sees every trial:
``all_trials()``.
"""

from __future__ import annotations

import bisect
import copy
import functools
import math
from collections.abc import Container, Sequence

from optuna.storages import InMemoryStorage
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

# the sampler's view of a long study: its best complete trials ...
BEST = 25  # TPE's good set never holds more (optuna.samplers._tpe.sampler.default_gamma)
# ... and this many trials spread evenly over it: an ask costs about 10 ms (tests/bench/bench_scale.py)
SPREAD = 250


class SamplerHistory(InMemoryStorage):
    """An in-memory storage for one minimized study whose ``get_all_trials`` is the sampler's view."""

    def __init__(self, spread: int = SPREAD, best: int = BEST) -> None:
        super().__init__()
        self._spread, self._keep = spread, best
        self._best: list[tuple[float, int]] = []  # (value, number) of the best complete trials, best first

    def create_new_study(self, directions: Sequence[StudyDirection], study_name: str | None = None) -> int:
        if self.get_all_studies():
            raise RuntimeError("a SamplerHistory holds one study")  # its best trials are not kept per study
        return super().create_new_study(directions, study_name)

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        trial_id = super().create_new_trial(study_id, template_trial)
        self._note(trial_id)  # a trial added finished (``Study.add_trials`` on resume)
        return trial_id

    def set_trial_state_values(self, trial_id: int, state: TrialState, values: Sequence[float] | None = None) -> bool:
        changed = super().set_trial_state_values(trial_id, state, values)
        if changed:
            self._note(trial_id)
        return changed

    def _note(self, trial_id: int) -> None:
        trial = self.get_trial(trial_id)
        if trial.state != TrialState.COMPLETE or trial.value is None or math.isnan(trial.value):
            return
        bisect.insort(self._best, (trial.value, trial.number))
        del self._best[self._keep :]

    def get_all_trials(
        self, study_id: int, deepcopy: bool = True, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        if states == (TrialState.WAITING,):  # ``Study.ask`` looking for an enqueued trial
            return super().get_all_trials(study_id, deepcopy, states)
        trials = super().get_all_trials(study_id, deepcopy=False)
        if len(trials) > self._spread + self._keep:
            shown = _spread(len(trials), self._spread).union(number for _, number in self._best)
            trials = [trials[n] for n in sorted(shown)]
        if states is not None:
            trials = [t for t in trials if t.state in states]
        return copy.deepcopy(trials) if deepcopy else trials

    def all_trials(self, study_id: int) -> list[FrozenTrial]:
        """Every trial of the study, in number order (not copied: do not change them)."""
        return super().get_all_trials(study_id, deepcopy=False)


@functools.lru_cache(maxsize=8)
def _spread(n: int, k: int) -> frozenset[int]:
    """``k`` trial numbers spread evenly over ``0 .. n - 1``, both ends included.

    Cached: TPE reads the view several times an ask, while the study's length stays put.
    """
    return frozenset(round(i * (n - 1) / (k - 1)) for i in range(k))
