"""The private Optuna names in search/study/optuna_internals.py still exist, with the shapes used.

When one of these fails after an Optuna upgrade, the upgrade moved a private name:
fix search/study/optuna_internals.py (and the bound in pyproject.toml) before anything else.
"""

from __future__ import annotations

import importlib

import optuna
import pytest

from search.study import optuna_internals

MODELS = ("StudyModel", "TrialModel", "TrialParamModel", "TrialValueModel", "TrialIntermediateValueModel",
          "TrialUserAttributeModel", "TrialSystemAttributeModel", "StudySystemAttributeModel")


def test_the_installed_optuna_is_one_the_private_names_were_tested_with() -> None:
    assert optuna_internals.check_version(), f"optuna {optuna.__version__} not in {optuna_internals.TESTED}"


@pytest.mark.parametrize("name", MODELS)
def test_every_rdb_model_the_storage_writes_is_still_there(name: str) -> None:
    assert hasattr(optuna_internals.rdb_models(), name), f"optuna.storages._rdb.models.{name} has moved"


def test_the_value_encoders_the_bulk_writes_use_are_still_there() -> None:
    models = optuna_internals.rdb_models()
    assert callable(getattr(models.TrialValueModel, "value_to_stored_repr", None))
    assert callable(getattr(models.TrialIntermediateValueModel, "intermediate_value_to_stored_repr", None))
    assert callable(getattr(models.TrialModel, "find_or_raise_by_id", None))


def test_a_scoped_session_opens_and_commits_on_an_rdb_storage(tmp_path) -> None:
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 's.db'}")
    study_id = storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], "s")
    with optuna_internals.scoped_session(storage) as session:
        optuna_internals.rdb_models().StudyModel.find_or_raise_by_id(study_id, session)


def test_a_stored_trial_carries_its_row_id() -> None:
    study = optuna.create_study()
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    trial = study.trials[0]
    assert optuna_internals.trial_id(trial) == study._storage.get_trial_id_from_study_id_trial_number(
        study._study_id, trial.number)


def test_tpes_log_ndtr_is_still_there_to_patch() -> None:
    truncnorm = importlib.import_module("optuna.samplers._tpe._truncnorm")
    assert callable(getattr(truncnorm, "_log_ndtr", None)), "optuna.samplers._tpe._truncnorm._log_ndtr has moved"
    original = truncnorm._log_ndtr
    try:
        assert optuna_internals.patch_tpe_log_ndtr()
    finally:
        truncnorm._log_ndtr = original
