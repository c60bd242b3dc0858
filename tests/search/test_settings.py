"""Each setting stated once: one rule for a flag, a keyword, a preset and a stored study; defaults read from code."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from model import TrainConfig
from search.cli import main
from search.coordinator.job import Execution
from search.errors import SearchError
from search.settings import EXECUTION, RUN_SETTINGS, STUDY_SETTINGS, check_settings
from search.study.spec import DATASET_DEFAULTS, FIXED_SETTINGS, StudySpec, build_spec

SPEC_FIELDS = [f.name for f in dataclasses.fields(StudySpec)]

# (setting, a bad value as typed after its flag, the rule's reason)
BAD = [
    ("trials", "0", "must be a whole number >= 1, got 0"),
    ("epochs", "-2", "must be a whole number >= 1, got -2"),
    ("seed", "-1", "must be a whole number >= 0, got -1"),
    ("cv", "51", "must be a whole number from 1 to 50, got 51"),
    ("finalists", "-1", "must be a whole number >= 0, got -1"),
    ("test_seed", "-3", "must be a whole number >= 0, got -3"),
    ("budget", "0", "budget must be more than 0 s and less than 30 days, got '0'"),
    ("budget", "soon", "budget must be a duration like 90s, 30m, 2h or 1h30m, got 'soon'"),
]


@pytest.mark.parametrize("name, text, reason", BAD)
def test_a_flag_a_keyword_a_preset_and_a_stored_study_meet_one_rule(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, text: str, reason: str
) -> None:
    flag = "--" + name.replace("_", "-")
    assert main(["run", flag, text, "--storage", f"sqlite:///{tmp_path / 's.db'}"]) == 2
    assert f"argument {flag}: {reason}" in capsys.readouterr().err
    with pytest.raises(SearchError) as keyword:
        check_settings({name: text})
    assert str(keyword.value) == f"argument {name}: {reason}"
    preset = tmp_path / "p.toml"
    value = text if name == "budget" else int(text)  # a preset's budget is "30m" or seconds
    preset.write_text(f"{name} = {json.dumps(value)}\n")
    named = reason if reason.startswith(name) else f"{name} {reason}"
    with pytest.raises(SearchError, match=re.escape(named)):
        build_spec("p", str(preset), {})
    stored = json.loads(StudySpec(name="s").to_json()) | {name: value}
    with pytest.raises(SearchError, match=re.escape(named)):
        StudySpec.from_json(json.dumps(stored))


def test_a_budget_in_seconds_meets_the_durations_range() -> None:
    assert StudySpec(name="s", budget=90).budget == 90
    assert StudySpec(name="s", budget=1e-5).budget == 1e-5  # tiny, but more than 0 s
    for seconds in (0, -5, 30 * 86400, float("inf"), float("nan")):
        with pytest.raises(SearchError, match="budget must be"):
            StudySpec(name="s", budget=seconds)


def test_every_study_setting_with_a_rule_takes_it_from_its_studyspec_field() -> None:
    for setting in RUN_SETTINGS:
        if setting.study:
            assert setting.name in SPEC_FIELDS, setting.name
            rule = dataclasses.fields(StudySpec)[SPEC_FIELDS.index(setting.name)].metadata.get("rule")
            assert setting.parse == (rule.parse if rule is not None else None), setting.name
    with pytest.raises(ValueError, match="its check is StudySpec's"):
        dataclasses.replace(RUN_SETTINGS[0], parse=int)


def test_fixed_settings_are_the_studyspec_fields_a_later_run_may_not_change() -> None:
    assert set(FIXED_SETTINGS) == set(SPEC_FIELDS) - {"name", "preset", "trials", "budget"}
    assert set(STUDY_SETTINGS) - {"trials", "budget"} <= set(FIXED_SETTINGS)


def test_the_finalists_follow_the_epochs_and_folds_left_unset() -> None:
    spec = StudySpec(name="s", epochs=7, cv=3)
    assert (spec.finalist_epochs, spec.finalist_cv) == (7, 3)
    assert build_spec("d", None, {"epochs": 4}).finalist_epochs == 4  # over the data set's 80
    digits = DATASET_DEFAULTS["digits"]
    assert build_spec("d", None, {"cv": 4}).finalist_cv == digits["finalist_cv"]  # the data set's still


def test_the_help_states_the_defaults_of_the_code() -> None:
    assert StudySpec.epochs == TrainConfig().epochs  # a network's default is model's
    stated = 0
    for setting in (*RUN_SETTINGS, *EXECUTION):
        found = re.search(r"\(default ([^;:,) ]+)", setting.help)
        if found is None:
            continue
        if setting.study:  # a run with no flags is a digits study
            expected = DATASET_DEFAULTS["digits"].get(setting.name, getattr(StudySpec, setting.name))
        else:
            expected = getattr(Execution, setting.name)
        assert found.group(1) == str(expected), setting.name
        stated += 1
    assert stated >= 8
    epochs = next(s for s in RUN_SETTINGS if s.name == "epochs")
    assert f"{StudySpec.epochs} otherwise" in epochs.help


@pytest.mark.parametrize("command", ["resume", "show", "plot", "best", "report", "predict"])
def test_every_command_checks_the_study_name_as_run_does(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str
) -> None:
    extra = ["input.csv"] if command == "predict" else []
    assert main([command, *extra, "--study", "../etc", "--storage", f"sqlite:///{tmp_path / 's.db'}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: argument --study: study name must be") and err.count("\n") == 1, err
    assert not (tmp_path / "s.db").exists()


def test_best_takes_jobs_and_data_dir_as_run_does(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["best", "--study", "s", "--jobs", "0"]) == 2
    assert "argument --jobs: must be a whole number >= 1, got 0" in capsys.readouterr().err
