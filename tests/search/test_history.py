"""The sampler's bounded view of a long study (``search/coordinator/history.py``) and the bounded pruning snapshot."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from search.coordinator.history import BEST, SPREAD, SamplerHistory
from search.study.pruning import SNAPSHOT, Curve, make_pruner, snapshot
from search.study.samplers import SAMPLERS

SPREAD_SMALL, BEST_SMALL = 30, 5


def fill(study: optuna.Study, n: int, seed: int = 0) -> dict[int, float]:
    """``n`` trials: complete (value), pruned, failed, in a fixed pattern; the complete values by number."""
    rng = np.random.default_rng(seed)
    values: dict[int, float] = {}
    for _ in range(n):
        trial = study.ask()
        trial.suggest_float("x", -1, 1)
        if trial.number % 5 == 3:
            study.tell(trial, state=TrialState.FAIL)
        elif trial.number % 5 == 4:
            trial.report(float(rng.random()), 1)
            study.tell(trial, state=TrialState.PRUNED)
        else:
            values[trial.number] = float(rng.random())
            study.tell(trial, values[trial.number])
    return values


def test_the_sampler_sees_the_best_complete_trials_and_an_even_sample_of_all_in_number_order() -> None:
    storage = SamplerHistory(spread=SPREAD_SMALL, best=BEST_SMALL)
    study = optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))
    values = fill(study, 290)
    study.ask()  # a trial in flight: the newest, always shown

    best = sorted(values, key=values.__getitem__)[:BEST_SMALL]
    spread = {round(i * 290 / (SPREAD_SMALL - 1)) for i in range(SPREAD_SMALL)}  # 0, 10, 20, ..., 290
    expected = sorted(spread | set(best))
    shown = [t.number for t in study.get_trials(deepcopy=False)]
    assert shown == expected
    assert shown[0] == 0 and shown[-1] == 290 and len(spread) == SPREAD_SMALL
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    assert [t.number for t in complete] == [n for n in expected if n in values]
    assert [t.number for t in storage.all_trials(study._study_id)] == list(range(291))


def test_a_study_no_longer_than_the_view_is_seen_whole() -> None:
    storage = SamplerHistory(spread=SPREAD_SMALL, best=BEST_SMALL)
    study = optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))
    fill(study, SPREAD_SMALL + BEST_SMALL)
    assert [t.number for t in study.get_trials(deepcopy=False)] == list(range(SPREAD_SMALL + BEST_SMALL))


def test_trials_added_finished_count_among_the_best_as_on_resume() -> None:
    plain = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    values = fill(plain, 120, seed=3)
    storage = SamplerHistory(spread=SPREAD_SMALL, best=BEST_SMALL)
    study = optuna.create_study(storage=storage)
    study.add_trials(plain.get_trials())
    best = sorted(values, key=values.__getitem__)[:BEST_SMALL]
    spread = {round(i * 119 / (SPREAD_SMALL - 1)) for i in range(SPREAD_SMALL)}
    assert [t.number for t in study.get_trials(deepcopy=False)] == sorted(spread | set(best))


def test_tpe_samples_the_same_trials_as_with_every_trial_until_the_study_outgrows_the_view() -> None:
    """The default 200-trial study is sampled exactly as before; a longer one differs only after the view fills."""

    def objective(trial: optuna.Trial) -> float:
        x, y = trial.suggest_float("x", -3, 3), trial.suggest_float("y", 1e-3, 1, log=True)
        return (x - 1) ** 2 + math.log10(y) ** 2

    n = SPREAD + BEST + 15
    whole = optuna.create_study(sampler=SAMPLERS["tpe"](7))
    whole.optimize(objective, n_trials=n)
    storage = SamplerHistory()
    viewed = optuna.create_study(storage=storage, sampler=SAMPLERS["tpe"](7))
    viewed.optimize(objective, n_trials=n)
    assert len(viewed.get_trials()) < n  # the sampler's view is in force ...
    whole, viewed = [t.params for t in whole.trials], [t.params for t in storage.all_trials(viewed._study_id)]
    assert viewed[: SPREAD + BEST] == whole[: SPREAD + BEST]  # the first 275 trials
    assert viewed != whole  # ... and changes what is sampled after it fills (else this test proves nothing)


def test_a_storage_for_the_sampler_holds_one_study() -> None:
    storage = SamplerHistory()
    optuna.create_study(storage=storage)
    with pytest.raises(RuntimeError, match="one study"):
        optuna.create_study(storage=storage)


def test_a_task_carries_what_its_pruner_reads_of_the_last_finished_curves() -> None:
    curves = [Curve(n, n % 3 == 0, float(n), (float(n),)) for n in range(3 * SNAPSHOT + 40)]
    median, hyperband = make_pruner("median", 20), make_pruner("hyperband", 20)
    assert snapshot(curves, median) == tuple(c for c in curves if c.complete)[-SNAPSHOT:]
    assert len(snapshot(curves, median)) == SNAPSHOT
    assert snapshot(curves, hyperband) == tuple(curves[-SNAPSHOT:])
    assert snapshot(curves, make_pruner("none", 20)) == ()
    assert snapshot(curves[:10], median) == tuple(c for c in curves[:10] if c.complete)
