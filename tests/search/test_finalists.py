"""The finalist stage's pure parts: who is chosen, what is missing, who wins; and the folds."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from search.study import finalists as fin
from search.study.dataref import DataRef, stratified_folds

DIST = {"x": FloatDistribution(0.0, 10.0)}


def trial(number: int, x: float, value: float | None, state: TrialState = TrialState.COMPLETE,
          **attrs: object) -> optuna.trial.FrozenTrial:
    t = optuna.trial.create_trial(state=state, value=value if state == TrialState.COMPLETE else None,
                                  params={"x": x}, distributions=DIST, user_attrs=dict(attrs))
    t.number = number
    return t


def test_finalists_are_the_best_distinct_configurations_of_the_search() -> None:
    trials = [trial(0, 1.0, 0.5), trial(1, 2.0, 0.2), trial(2, 2.0, 0.1),  # 2 repeats 1's parameters
              trial(3, 3.0, 0.3), trial(4, 4.0, None, TrialState.PRUNED),
              trial(5, 5.0, 0.01, stage="finalist", finalist_of=0, repeat=1)]  # a finalist run: not a candidate
    assert [t.number for t in fin.choose(trials, 2)] == [2, 3]
    assert [t.number for t in fin.choose(trials, 10)] == [2, 3, 0]


def test_missing_runs_are_the_repeats_not_yet_finished_matched_by_configuration() -> None:
    chosen = [trial(2, 2.0, 0.1), trial(3, 3.0, 0.3)]
    done = [trial(7, 2.0, 0.15, stage="finalist", finalist_of=1, repeat=1),  # same parameters as 2
            trial(8, 2.0, None, TrialState.FAIL, stage="finalist", finalist_of=2, repeat=2),  # interrupted
            trial(9, 3.0, None, TrialState.PRUNED, stage="finalist", finalist_of=3, repeat=3)]  # diverged
    missing = fin.missing_runs(chosen, chosen + done, repeats=3)
    assert [(r.finalist_of, r.repeat) for r in missing] == [(2, 2), (2, 3), (3, 1), (3, 2)]
    assert missing[0].params == {"x": 2.0}


def test_the_winner_is_the_best_mean_of_fresh_runs_and_a_diverged_run_disqualifies() -> None:
    search = [trial(0, 1.0, 0.05), trial(1, 2.0, 0.2), trial(2, 3.0, 0.3)]
    runs = [trial(3, 1.0, 0.10, stage="finalist", finalist_of=0, repeat=1),
            trial(4, 1.0, None, TrialState.PRUNED, stage="finalist", finalist_of=0, repeat=2),  # diverged
            trial(5, 2.0, 0.21, stage="finalist", finalist_of=1, repeat=1),
            trial(6, 2.0, 0.25, stage="finalist", finalist_of=1, repeat=2),
            trial(7, 3.0, 0.22, stage="finalist", finalist_of=2, repeat=1),
            trial(8, 3.0, 0.26, stage="finalist", finalist_of=2, repeat=2),
            trial(9, 3.0, None, TrialState.FAIL, stage="finalist", finalist_of=2, repeat=3)]  # not finished
    table = fin.standings(search + runs, [0, 1, 2])
    assert [f.number for f in table] == [1, 2, 0]  # 0.23 < 0.24 < inf; the search's own 0.05 does not count
    assert table[0].mean == pytest.approx(0.23) and table[0].sd == pytest.approx(math.sqrt(0.0008))
    assert len(table[1].runs) == 2 and math.isinf(table[2].mean)


def test_each_repeat_gets_its_own_folds_and_repeat_zero_keeps_the_searchs() -> None:
    assert fin.folds_seed(7, 0) == 7
    assert len({fin.folds_seed(7, r) for r in range(1, 6)}) == 5


def test_stratified_folds_partition_the_rows_and_spread_every_class() -> None:
    y = np.repeat(np.arange(3), [10, 7, 5])
    fold_of = stratified_folds(y, 3, np.random.default_rng(0))
    assert sorted(np.bincount(fold_of).tolist()) == [7, 7, 8]
    for c in range(3):
        counts = np.bincount(fold_of[y == c], minlength=3)
        assert counts.max() - counts.min() <= 1


def test_cross_validation_folds_come_from_train_and_validation_never_from_test() -> None:
    ref = DataRef("digits", 0.2)
    data = ref.load()
    folds = ref.folds(3, seed=0)
    pool = np.concatenate([data.X_train, data.X_val])
    assert sum(len(f.y_val) for f in folds) == len(pool)
    assert all(len(f.y_train) + len(f.y_val) == len(pool) for f in folds)
    # every fold's validation rows are pool rows, and together they are the pool, each row once
    together = np.concatenate([f.X_val for f in folds])
    order = np.lexsort(together.T), np.lexsort(pool.T)
    assert np.array_equal(together[order[0]], pool[order[1]])
    # one fold is the fixed holdout split
    (only,) = ref.folds(1, seed=0)
    assert only.X_val is data.X_val and only.X_train is data.X_train
