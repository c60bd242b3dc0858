"""Per-data-set defaults: flags > preset > the data set's defaults > StudySpec's."""

from __future__ import annotations

import json
from pathlib import Path

from search.study.space import DEFAULT_SPACE, Fixed, Float, Int
from search.study.spec import DATASET_DEFAULTS, StudySpec, build_spec


def test_a_digits_study_without_a_preset_gets_the_digits_defaults() -> None:
    spec = build_spec("d", None, {})
    digits = DATASET_DEFAULTS["digits"]
    names = ("epochs", "cv", "finalist_cv", "finalist_epochs", "finalist_repeats", "finalist_warp")
    assert [getattr(spec, name) for name in names] == [digits[name] for name in names]
    assert spec.space["n_layers"] == Fixed(1)
    assert spec.space["units"] == Int(64, 2048, True)
    assert spec.space["batch_size"] == DEFAULT_SPACE["batch_size"]  # the rest of the space is the default


def test_flags_and_presets_win_and_a_preset_space_lies_over_the_data_sets(tmp_path: Path) -> None:
    preset = tmp_path / "p.toml"
    preset.write_text('dataset = "digits"\ncv = 5\n[space]\ndropout = { low = 0.2, high = 0.3 }\n')
    spec = build_spec("d", str(preset), {"finalists": 2})
    assert (spec.cv, spec.finalists) == (5, 2)
    assert spec.space["dropout"] == Float(0.2, 0.3)
    assert spec.space["n_layers"] == Fixed(1)  # still the data set's


def test_an_explicit_epoch_budget_is_the_finalists_too() -> None:
    assert build_spec("d", None, {"epochs": 4}).finalist_epochs == 4
    assert build_spec("d", None, {"epochs": 4, "finalist_epochs": 9}).finalist_epochs == 9


def test_a_data_set_without_defaults_gets_studyspecs() -> None:
    spec = build_spec("f", None, {"dataset": "fashion-mnist"})
    assert (spec.epochs, spec.cv, spec.finalist_cv, spec.finalist_epochs) == (30, 1, 1, 30)
    assert spec.space == DEFAULT_SPACE


def test_a_study_stored_before_the_finalist_stage_keeps_its_meaning() -> None:
    old = json.loads(StudySpec(name="o").to_json())
    for key in ("cv", "selection", "finalists", "finalist_repeats", "finalist_epochs", "finalist_cv"):
        del old[key]
    spec = StudySpec.from_json(json.dumps(old))
    assert (spec.cv, spec.finalists, spec.selection) == (1, 0, "min_loss")


def test_a_digits_study_stored_before_the_warp_and_the_test_seed_keeps_its_meaning() -> None:
    old = json.loads(build_spec("d", None, {}).to_json())
    del old["finalist_warp"], old["test_seed"]
    spec = StudySpec.from_json(json.dumps(old))
    assert (spec.finalist_warp, spec.test_seed) == (None, 0)  # unwarped finalists, the usual test split
