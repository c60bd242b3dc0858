"""StudySpec and presets: validated, and round-tripped through the study's user attrs."""

from __future__ import annotations

from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from search.errors import SearchError
from search.study.space import Choice, Float, Int, parse_space
from search.study.spec import StudySpec, build_spec, check_compatible, load_preset

STUDIES = Path(__file__).resolve().parents[2] / "studies"


@pytest.mark.parametrize("preset", sorted(STUDIES.glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_preset_is_valid(preset: Path) -> None:
    spec = build_spec("p", str(preset), {})
    raw = tomllib.loads(preset.read_text())
    if "data" in raw:  # a file of one's own: relative to where the command runs
        assert spec.dataset is None and spec.data == str(Path(raw["data"]).resolve())
    else:
        assert spec.dataset == raw["dataset"] == preset.stem  # not a substring


def test_flags_override_the_preset() -> None:
    spec = build_spec("p", str(STUDIES / "digits.toml"), {"epochs": 7, "trials": None})
    assert spec.epochs == 7 and spec.trials == 200


floats = st.floats(min_value=1e-6, max_value=1.0, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(lo=floats, span=st.floats(min_value=1.0, max_value=100.0), log=st.booleans(),
       batches=st.lists(st.sampled_from([8, 16, 32, 64, 128, 256]), min_size=1, max_size=6, unique=True),
       layers=st.integers(1, 6), seed=st.integers(0, 2**31), det=st.booleans(),
       pruner=st.sampled_from(["median", "hyperband", "none"]))
def test_a_spec_survives_a_round_trip_through_user_attrs(lo, span, log, batches, layers, seed, det,
                                                          pruner) -> None:
    space = parse_space({"learning_rate": {"low": lo, "high": lo * span, "log": log},
                         "batch_size": batches, "n_layers": {"low": 1, "high": layers}})
    spec = StudySpec(name="s", space=space, seed=seed, deterministic=det, pruner=pruner)
    again = StudySpec.from_json(spec.to_json())
    assert again == spec
    assert again.space["learning_rate"] == Float(lo, lo * span, log)
    assert again.space["batch_size"] == Choice(tuple(batches))
    assert again.space["n_layers"] == Int(1, layers)


def test_only_the_trial_budget_may_change_on_an_existing_study() -> None:
    stored = StudySpec(name="s", epochs=10)
    assert check_compatible(stored, StudySpec(name="s", trials=500), {"trials"}).trials == 500
    with pytest.raises(SearchError, match="epochs"):
        check_compatible(stored, StudySpec(name="s", epochs=11), {"epochs"})
    # a setting the user did not give is taken from the stored study, not compared
    assert check_compatible(stored, StudySpec(name="s"), set()).epochs == 10


def test_only_digits_takes_a_test_seed() -> None:
    assert StudySpec(name="s", test_seed=2).test_seed == 2
    with pytest.raises(SearchError, match="fashion-mnist has an official test split"):
        StudySpec(name="s", dataset="fashion-mnist", test_seed=2)
    with pytest.raises(SearchError, match="test_seed must be a whole number"):
        StudySpec(name="s", test_seed=-1)


def test_zero_switch_is_only_for_penalties(tmp_path: Path) -> None:
    preset = tmp_path / "p.toml"
    preset.write_text("[space]\ndropout = { low = 0.1, high = 0.5, zero = true }\n")
    with pytest.raises(SearchError, match="zero"):
        load_preset(preset)
