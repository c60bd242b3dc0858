"""The winner of a study, as every process reads it from the stored trials.

The finalist with the best mean over its fresh runs wins; without a finalist
stage, the best search trial. How long its final networks train, with which
seeds, and that their ensemble is the mean of their probabilities, are stated
here once: the coordinator's budget, ``best --retrain``, ``SearchCV`` and the
readers all ask this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from search.errors import SearchError
from search.study import finalists as fin
from search.study import keys
from search.study.selection import retrain_epochs
from search.study.space import config_from_params
from search.study.spec import StudySpec
from search.study.storage import default_url, open_storage
from search.study.stored import load_spec


@dataclass(frozen=True)
class Winner:
    trial: FrozenTrial  # the search trial whose configuration won
    finalists: list[fin.Finalist]  # the finalist stage's standings, best first ([] if none ran)

    @property
    def runs(self) -> tuple[FrozenTrial, ...]:
        return self.finalists[0].runs if self.finalists else ()


def find_winner(storage: optuna.storages.BaseStorage, study_id: int, study: str, metric: str | None = None) -> Winner:
    """The finalist with the best mean over its fresh runs, else the best search trial.

    Best by the study's ``metric`` (``StudySpec.metric``); None: by the objective.
    """
    return winner_of(storage.get_all_trials(study_id, deepcopy=False), study, metric)


def winner_of(trials: list[FrozenTrial], study: str, metric: str | None = None) -> Winner:
    """``find_winner`` over the study's ``trials``, already read (``SearchCV`` reads them once for both
    its winner and its copy of the study)."""
    number = fin.winner(trials, metric)
    if number is not None:
        return Winner(next(t for t in trials if t.number == number), fin.ranked(trials, metric))
    best = fin.choose(trials, 1, metric)
    if not best:
        raise SearchError(f"study {study!r} has no complete trial yet")
    return Winner(best[0], [])


def load_winner(study: str, storage_url: str | None) -> tuple[StudySpec, Winner, str]:
    """The study's spec, its winner and its storage URL, read once."""
    url = storage_url or default_url(study)
    storage = open_storage(url, read_only=True)
    try:
        spec, study_id = load_spec(storage, study)
        return spec, find_winner(storage, study_id, study, spec.metric), url
    finally:
        storage.engine.dispose()


def final_epochs(spec: StudySpec, winner: Winner) -> int:
    """How long the final networks train: from the finalists' curves when there are some."""
    return final_epochs_why(spec, winner)[0]


def final_epochs_why(spec: StudySpec, winner: Winner) -> tuple[int, str]:
    """(``final_epochs``, where that number comes from in a few words): ``best`` and the report say it
    beside the winner's best epoch in its search run, from which it may differ.

    A schedule laid out over the whole run (cosine) is only the schedule the
    trials saw when the run is as long as theirs, so those keep their length.
    """
    complete = [t for t in winner.runs if t.state == TrialState.COMPLETE]
    if complete:
        runs = f"its {len(complete)} fresh run{'s' if len(complete) > 1 else ''}"
        config = config_from_params(winner.trial.params, spec.space, spec.finalist_epochs, 0)
        if config.lr_schedule == "cosine":
            return spec.finalist_epochs, f"the length of {runs}, which a cosine schedule keeps"
        curves = [list(t.intermediate_values.values()) for t in complete]
        epochs = retrain_epochs(
            # a regression run keeps no accuracy curve: its rules read the losses alone
            [(c, t.user_attrs.get(keys.VAL_ACCURACY_CURVE) or [math.nan] * len(c)) for c, t in zip(curves, complete)],
            spec.selection,
        )
        return epochs, f"the best epoch of the mean validation curve of {runs}, {min(map(len, curves))} epochs long"
    best = winner.trial.user_attrs.get(keys.BEST_EPOCH)
    if best:
        return int(best), "its search run's best epoch"
    return spec.epochs, "the search's epochs (its search run stored no best epoch)"


def final_seed(study_seed: int, k: int) -> int:
    """The k-th final network's seed: fresh, and never one a trial used."""
    return int(np.random.SeedSequence([study_seed, 2, k]).generate_state(1)[0])


def ensemble_proba(probabilities: list[np.ndarray]) -> np.ndarray:
    """The ensemble of K networks: their class probabilities averaged, (n, n_classes)."""
    return np.mean(probabilities, axis=0)
