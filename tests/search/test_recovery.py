"""Recovery, the retry policy and the run's figures on plain FrozenTrial lists: no storage, no processes."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from search.coordinator.attempts import MAX_ATTEMPTS, Planned, after_lost_worker
from search.coordinator.recovery import plan_recovery
from search.coordinator.summary import RunSummary, busy_fraction

DIST = {"x": FloatDistribution(0.0, 10.0)}


def trial(number: int, state: TrialState, value: float | None = None, *, x: float = 1.0,
          losses: tuple[float, ...] = (), system_attrs: dict[str, object] | None = None,
          **attrs: object) -> FrozenTrial:
    t = optuna.trial.create_trial(state=state, value=value, params={"x": x}, distributions=DIST,
                                  user_attrs=dict(attrs), system_attrs=system_attrs or {},
                                  intermediate_values=dict(enumerate(losses, start=1)))
    t.number = number
    return t


def test_a_trial_left_running_is_rerun_with_its_parameters_its_seed_and_the_next_attempt() -> None:
    plan = plan_recovery([trial(0, TrialState.COMPLETE, 0.5), trial(1, TrialState.RUNNING, x=3.0, seed=11)])
    assert [t.number for t in plan.left_running] == [1]
    assert plan.reruns == [Planned({"x": 3.0}, 11, {}, attempt=2, retry_of=1)]


def test_a_failure_marked_rerun_is_rerun_once_and_an_ordinary_failure_never() -> None:
    trials = [trial(0, TrialState.FAIL, seed=5, rerun=True, attempt=2),  # an interrupted re-run
              trial(1, TrialState.FAIL, seed=6),  # the trial's own failure: not run again
              trial(2, TrialState.FAIL, seed=7, rerun=True),
              trial(3, TrialState.COMPLETE, 0.1, seed=7, retry_of=2, attempt=2)]  # 2 was already re-run
    plan = plan_recovery(trials)
    assert plan.left_running == []
    assert plan.reruns == [Planned({"x": 1.0}, 5, {}, attempt=3, retry_of=0)]


def test_interrupted_finalist_runs_are_left_to_the_finalist_stage() -> None:
    finalist = {"stage": "finalist", "finalist_of": 0, "repeat": 1}
    plan = plan_recovery([trial(0, TrialState.COMPLETE, 0.2), trial(1, TrialState.RUNNING, **finalist),
                          trial(2, TrialState.FAIL, rerun=True, **finalist)])
    assert [t.number for t in plan.left_running] == [1]  # still recorded as interrupted
    assert plan.reruns == []


def test_the_pruner_gets_the_curves_of_finished_search_trials_with_their_rungs_only() -> None:
    rungs = {"completed_rung_0": 0.4, "other": 1}
    plan = plan_recovery([trial(0, TrialState.COMPLETE, 0.3, losses=(0.9, 0.3), system_attrs=rungs),
                          trial(1, TrialState.PRUNED, losses=(2.0,)),
                          trial(2, TrialState.FAIL),
                          trial(3, TrialState.COMPLETE, 0.1, losses=(0.1,), stage="finalist")])
    assert [(c.number, c.complete, c.value, c.values) for c in plan.curves] == [
        (0, True, 0.3, (0.9, 0.3)), (1, False, None, (2.0,))]
    assert plan.curves[0].system_attrs == {"completed_rung_0": 0.4}


def test_the_sampler_sees_a_dead_runs_running_trials_as_failed() -> None:
    plan = plan_recovery([trial(0, TrialState.RUNNING, x=4.0), trial(1, TrialState.COMPLETE, 0.5)])
    assert [t.state for t in plan.mirror] == [TrialState.FAIL, TrialState.COMPLETE]
    assert plan.mirror[0].params == {"x": 4.0}


@pytest.mark.parametrize("attempt", range(1, MAX_ATTEMPTS + 1))
def test_a_lost_worker_costs_a_rerun_until_the_last_attempt(attempt: int) -> None:
    run = Planned({"x": 1.0}, 3, {"stage": "search"}, attempt)
    retry = after_lost_worker(run, 8, retryable=True)
    if attempt == MAX_ATTEMPTS:
        assert retry is None
    else:
        assert retry == Planned({"x": 1.0}, 3, {"stage": "search"}, attempt + 1, retry_of=8)
        assert retry.retry_markers() == {"retry_of": 8, "attempt": attempt + 1}


def test_a_task_the_executor_already_rerun_is_given_up_at_once() -> None:
    assert after_lost_worker(Planned({}, 1), 0, retryable=False) is None
    assert Planned({}, 1).retry_markers() == {}


def test_stored_counts_and_best_leave_finalist_runs_out() -> None:
    s = RunSummary("s")
    s.count_stored([trial(0, TrialState.COMPLETE, 0.3, val_accuracy=0.9), trial(1, TrialState.PRUNED),
                    trial(2, TrialState.COMPLETE, 0.01, stage="finalist"), trial(3, TrialState.FAIL),
                    trial(4, TrialState.COMPLETE, 0.2, val_accuracy=0.95)])
    assert (s.finished, s.complete, s.pruned, s.finalist_runs) == (3, 2, 1, 1)
    assert (s.best_number, s.best_value, s.best_accuracy) == (4, 0.2, 0.95)
    s.count_search_trial(5, True, 0.25, 0.93)  # not better
    s.count_search_trial(6, False, None, None)
    assert (s.finished, s.complete, s.pruned, s.best_number) == (5, 3, 2, 4)


def test_workers_are_busy_from_their_first_task_to_the_end_of_the_last() -> None:
    # worker 1 works 0-4 and 5-10; worker 2 starts late and works 3-8; the run ends at 10:
    # busy 4 + 5 + 5 = 14 of (10 - 0) + (10 - 3) = 17
    assert busy_fraction([(1, 0.0, 4.0), (1, 5.0, 10.0), (2, 3.0, 8.0)]) == pytest.approx(14 / 17)
