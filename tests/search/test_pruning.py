"""Pruning on validation loss, the product's headline: the worker decides as Optuna would.

The oracle: a real Optuna study, with the study's own pruner, is told the same
curves in the same order; a trial run by ``run_trial`` in "a worker" must stop at
exactly the epoch where Optuna's pruner stops it on the real study, and leave the
same rung records (Hyperband) for the trials after it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from model import TrainConfig
from search.study.dataref import DataRef
from search.study.pruning import Curve, local_trial, make_pruner, snapshot
from search.workers.tasks import TrialTask, run_trial
from tests.conftest import query, run_cli
from tests.search.sql import attr_by_number, attrs_of, epochs_reported

EPOCHS = 9  # Hyperband with min 1, max 9, factor 3: three brackets, rungs at epochs 1, 3, 9
FAILED = {5, 13}  # trials that fail in both studies: gaps in the worker's snapshot


def configs(n: int) -> list[TrainConfig]:
    """Curves that differ a lot (learning rates over three decades), none diverging."""
    rng = np.random.default_rng(2)
    # every third one decays its learning rate fast: it keeps up early and stalls later,
    # so the median pruner has trials to stop after its first judged epoch too
    return [TrainConfig(hidden=(16,), learning_rate=float(10 ** rng.uniform(-3.5, -0.5)), momentum=0.5,
                        batch_size=64, epochs=EPOCHS, seed=i,
                        lr_schedule="exponential" if i % 3 == 2 else "none", lr_decay=0.4)
            for i in range(n)]


def oracle(pruner_name: str, n: int) -> tuple[optuna.Study, list[tuple[int | None, int | None]]]:
    """Run ``n`` trials in workers and replay each curve into a real study; the stop epochs of both."""
    study = optuna.create_study(study_name="oracle", direction="minimize",
                                pruner=make_pruner(pruner_name, EPOCHS),
                                sampler=optuna.samplers.RandomSampler(seed=0))
    curves: list[Curve] = []
    stops: list[tuple[int | None, int | None]] = []
    for number, config in enumerate(configs(n)):
        real = study.ask()
        assert real.number == number
        if number in FAILED:
            study.tell(real, state=TrialState.FAIL)
            continue
        # what the coordinator sends: only what this pruner reads (median: the complete trials)
        result = run_trial(TrialTask("oracle", number, config, DataRef("digits"), pruner_name,
                                     snapshot(curves, study.pruner)))
        assert result.outcome in ("complete", "pruned"), result.reason
        real_stop = None
        for epoch, loss in enumerate(result.values, start=1):
            real.report(loss, epoch)
            if real.should_prune():
                real_stop = epoch
                break
        worker_stop = len(result.values) if result.outcome == "pruned" else None
        stops.append((worker_stop, real_stop))
        if real_stop is None:
            study.tell(real, result.value)
        else:
            study.tell(real, state=TrialState.PRUNED)
        frozen = study.trials[number]
        rungs = {k: v for k, v in frozen.system_attrs.items() if k.startswith("completed_rung")}
        assert {k: v for k, v in result.system_attrs.items() if k.startswith("completed_rung")} == rungs
        curves.append(Curve(number, result.outcome == "complete", result.value, tuple(result.values), rungs))
    return study, stops


@pytest.mark.parametrize("pruner_name", ["median", "hyperband"])
def test_the_worker_prunes_at_the_same_epoch_as_optunas_pruner_on_a_real_study(pruner_name: str) -> None:
    study, stops = oracle(pruner_name, 30)
    assert [w for w, _ in stops] == [r for _, r in stops]
    epochs = {r for _, r in stops if r is not None}
    assert len(epochs) >= 1 and sum(r is None for _, r in stops) >= 3  # some pruned, some not
    if pruner_name == "median":
        assert min(epochs) >= 3  # n_warmup_steps=3: nothing judged before epoch 3
        assert len(epochs) >= 2, epochs  # judged at several epochs
    else:
        pruner = study.pruner
        brackets = {pruner._get_bracket_id(study, t) for t in study.trials}
        assert len(brackets) >= 2  # trials assigned to brackets by number, as in the worker
        assert epochs <= {1, 3, 9}, epochs  # Hyperband judges at its rungs only


def test_hyperband_in_a_worker_uses_the_bracket_of_its_trial_number() -> None:
    """Placeholders keep the trial number: the bracket is a hash of the study name and the number."""
    pruner, worker_pruner = make_pruner("hyperband", EPOCHS), make_pruner("hyperband", EPOCHS)
    study = optuna.create_study(study_name="oracle", pruner=pruner, direction="minimize")
    brackets = set()
    for number in range(40):
        real = study.ask()
        local = local_trial("oracle", worker_pruner, (), number)
        assert local.number == real.number == number
        for trial in (real, local):  # Hyperband sets its brackets up on its first decision
            trial.report(1.0, 1)
            trial.should_prune()
        bracket = pruner._get_bracket_id(study, study.trials[number])
        assert worker_pruner._get_bracket_id(local.study, local.study.trials[number]) == bracket
        brackets.add(bracket)
        study.tell(real, state=TrialState.FAIL)
    assert brackets == {0, 1, 2}


def pruned_by_the_pruner(db: Path) -> int:
    """PRUNED trials that the pruner stopped (a diverged trial is PRUNED too, for TPE)."""
    return sum(json.loads(v) == "pruned" for _, v in attr_by_number(db, "outcome", state="PRUNED"))


@pytest.mark.parametrize("pruner_name", ["median", pytest.param("hyperband", marks=pytest.mark.slow)])
def test_a_run_with_a_pruner_prunes_trials_and_records_the_epoch(db: Path, pruner_name: str) -> None:
    out = run_cli("run", "--trials", "30", "--jobs", "2", "--study", "p", "--pruner", pruner_name,
                  "--storage", f"sqlite:///{db}", "--dataset", "digits", "--epochs", str(EPOCHS),
                  "--seed", "1", "--no-progress")
    assert out.returncode == 0, out.stderr
    assert pruned_by_the_pruner(db) >= 1
    # a pruned trial stopped before the last epoch and says where
    for number, n_values in epochs_reported(db, "PRUNED"):
        reason = attrs_of(db, number)
        if json.loads(reason["outcome"]) == "pruned":
            assert n_values <= EPOCHS  # Hyperband may stop a trial at its top rung, the last epoch
            assert json.loads(reason["stop_reason"]) == f"pruned at epoch {n_values}"


def test_a_run_without_a_pruner_prunes_nothing(db: Path) -> None:
    out = run_cli("run", "--trials", "16", "--jobs", "2", "--study", "n", "--pruner", "none",
                  "--storage", f"sqlite:///{db}", "--dataset", "digits", "--epochs", "6",
                  "--seed", "1", "--no-progress")
    assert out.returncode == 0, out.stderr
    assert pruned_by_the_pruner(db) == 0
    assert query(db, "SELECT count(*) FROM trials WHERE state='COMPLETE'")[0][0] >= 12
    assert not math.isnan(query(db, "SELECT min(value) FROM trial_values")[0][0])
