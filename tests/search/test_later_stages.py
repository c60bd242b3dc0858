"""A budget's later stages as the coordinator asks them (search/coordinator/later.py), without a coordinator."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import IntDistribution
from optuna.trial import FrozenTrial

from search.budget.deadlines import Deadlines
from search.coordinator.later import LaterStages
from search.study import keys
from search.study.spec import StudySpec

SPEC = StudySpec(name="l", cv=1, val_fraction=0.2, finalists=3, finalist_repeats=1, finalist_cv=1, finalist_epochs=10)


def _trial(number: int, x: int, value: float, seconds: float, **attrs: object) -> FrozenTrial:
    t = optuna.trial.create_trial(
        params={"x": x}, distributions={"x": IntDistribution(0, 9)}, value=value,
        user_attrs={keys.SECONDS: seconds, keys.TRAIN_SECONDS: seconds, keys.EPOCHS_RUN: 10,
                    keys.STAGE: keys.SEARCH} | attrs,
    )  # fmt: skip
    t.number = number
    return t


def _finalist_run(number: int, of: int, value: float) -> FrozenTrial:
    return _trial(number, of, value, 1.0, **{keys.STAGE: keys.FINALIST, keys.FINALIST_OF: of, keys.REPEAT: 1})


def test_the_candidates_are_the_best_search_trials_and_move_the_search_end_to_what_they_need() -> None:
    later = LaterStages(SPEC, 2, lambda: 2.0)
    later.stored([_trial(0, 0, 0.3, 1.0), _trial(1, 1, 0.1, 1.0), _trial(2, 2, 0.2, 1.0), _trial(3, 3, 0.4, 1.0)])
    assert [n for _, n in later.candidates] == [1, 2, 0]
    later.note_candidate(0.05, 4)
    assert [n for _, n in later.candidates] == [4, 1, 2]
    deadlines = Deadlines(50.0, 80.0, budgeted=True, end=100.0, budget=100.0)
    moved = later.replanned(deadlines)
    assert moved is not None and 50.0 < moved.search < 100.0  # cheap later stages: the search gets more
    assert later.replanned(None) is None
    assert LaterStages(SPEC, 2, lambda: 2.0).replanned(deadlines) is deadlines  # no candidate yet: as planned


def test_one_more_finalist_run_brings_back_a_configuration_left_out_for_time_first() -> None:
    trials = [_trial(0, 0, 0.1, 1.0), _trial(1, 1, 0.2, 1.0), _trial(2, 2, 0.3, 1.0),
              _finalist_run(3, 0, 0.15), _finalist_run(4, 1, 0.25)]  # fmt: skip
    later = LaterStages(SPEC, 2, lambda: 2.0)
    later.stored(trials)
    later.pool, later.numbers = [0, 1, 2], [0, 1]  # the stage ran two of its three for time
    deadlines = Deadlines(10.0, 60.0, budgeted=True, end=100.0, budget=100.0, more_finalists=True)
    moved, run = later.another_run(trials, deadlines, now=12.0, wait=0.0, sent={})
    assert run is not None and run.attrs[keys.FINALIST_OF] == 2 and run.attrs[keys.REPEAT] == 1
    assert later.numbers == [0, 1, 2] and moved.stop >= deadlines.stop
    # all three have a run: the one with fewest (counting those in flight), then the best mean, gets the next
    _, run = later.another_run(trials, moved, now=12.0, wait=0.0, sent={2: 1})
    assert run is not None and run.attrs[keys.FINALIST_OF] == 0 and run.attrs[keys.REPEAT] == 2
    # none ends in time: nothing more, and the stage's end stays where it was
    late, none = later.another_run(trials, moved, now=99.0, wait=0.0, sent={})
    assert none is None and late == moved


@pytest.mark.parametrize("left", [100.0, 0.5])
def test_the_finalists_are_chosen_best_first_and_cut_to_what_the_time_left_runs(left: float) -> None:
    trials = [_trial(0, 0, 0.1, 2.0), _trial(1, 1, 0.2, 2.0), _trial(2, 2, 0.3, 2.0), _trial(3, 3, 0.4, 2.0)]
    later = LaterStages(SPEC, 2, lambda: 2.0)
    later.stored(trials)
    deadlines = Deadlines(10.0, 10.0 + left, budgeted=True)  # no end: the stage's end is not moved
    moved, planned = later.plan_finalists(trials, deadlines, now=10.0)
    assert moved is deadlines and later.pool == [0, 1, 2]
    if left > 50:
        assert later.numbers == [0, 1, 2] and [p.attrs[keys.FINALIST_OF] for p in planned] == [0, 1, 2]
    else:  # nothing fits: the best configuration's one run, as finalist_size falls back to
        assert later.numbers == [0] and [p.attrs[keys.FINALIST_OF] for p in planned] == [0]
