"""The coordinator's bulk writes store exactly the rows Optuna's own public calls store."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from search.study import storage as db
from tests.conftest import query

DISTRIBUTIONS = {
    "learning_rate": FloatDistribution(1e-4, 1.0, log=True),
    "batch_size": CategoricalDistribution([16, 32, 64]),
    "units_l0": IntDistribution(16, 1024, log=True),
    "l2_on": CategoricalDistribution([True, False]),
}
PARAMS = {"learning_rate": 0.03, "batch_size": 32, "units_l0": 300, "l2_on": False}
ATTRS = {"stage": "search", "seed": 12345, "curve": [0.5, 0.25]}
SYSTEM = {"completed_rung_0": 0.4}


def by_public_api(study: optuna.Study, state: TrialState, values: list[float], value: float | None) -> None:
    trial = study.ask()
    for name, dist in DISTRIBUTIONS.items():  # as a suggest call stores it
        study._storage.set_trial_param(trial._trial_id, name, dist.to_internal_repr(PARAMS[name]), dist)
    for key, v in ATTRS.items():
        trial.set_user_attr(key, v)
    for step, v in enumerate(values, start=1):
        trial.report(v, step)
    for key, v in SYSTEM.items():
        study._storage.set_trial_system_attr(trial._trial_id, key, v)
    study.tell(trial, value, state=state)


def by_bulk_writes(
    storage: optuna.storages.RDBStorage,
    study_id: int,
    number: int,
    state: TrialState,
    values: list[float],
    value: float | None,
) -> None:
    trial_id = db.create_running_trial(storage, study_id, number, PARAMS, DISTRIBUTIONS, {})
    db.finish_trial(storage, trial_id, state, value, values, ATTRS, SYSTEM)


def rows(path: Path, study_name: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the study's trials, table by table, without row ids and times."""
    tables = {
        "trials": "SELECT t.number, t.state FROM trials t",
        "trial_params": "SELECT t.number, r.param_name, r.param_value, r.distribution_json FROM trial_params r",
        "trial_values": "SELECT t.number, r.objective, r.value, r.value_type FROM trial_values r",
        "trial_intermediate_values": "SELECT t.number, r.step, r.intermediate_value, r.intermediate_value_type "
        "FROM trial_intermediate_values r",
        "trial_user_attributes": "SELECT t.number, r.key, r.value_json FROM trial_user_attributes r",
        "trial_system_attributes": "SELECT t.number, r.key, r.value_json FROM trial_system_attributes r",
    }
    out = {}
    for table, select in tables.items():
        join = "" if table == "trials" else " JOIN trials t ON t.trial_id = r.trial_id"
        sql = f"{select}{join} JOIN studies s ON s.study_id = t.study_id WHERE s.study_name = ?"
        out[table] = sorted(query(path, sql, study_name), key=repr)
    return out


@pytest.mark.parametrize(
    ("state", "values", "value"),
    [
        (TrialState.COMPLETE, [0.9, 0.5, 0.4], 0.4),
        (TrialState.PRUNED, [0.9, math.nan], None),  # diverged: NaN at its last epoch
        (TrialState.FAIL, [], None),
    ],
)
def test_bulk_writes_store_the_rows_optunas_calls_store(
    tmp_path: Path, state: TrialState, values: list[float], value: float | None
) -> None:
    path = tmp_path / "rows.db"
    storage = db.open_storage(f"sqlite:///{path}", create=True)
    public = optuna.create_study(storage=storage, study_name="public")
    ours = optuna.create_study(storage=storage, study_name="ours")
    for number in range(2):
        by_public_api(public, state, values, value)
        by_bulk_writes(storage, ours._study_id, number, state, values, value)
    assert rows(path, "ours") == rows(path, "public")
    assert rows(path, "ours")["trials"]  # the query found the trials (else the comparison proves nothing)
