"""Options the README promises, each run once for real: samplers, --data-dir, show --csv, worker attrs."""

from __future__ import annotations

import importlib.util
import json
import socket
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import finished, query, run_cli
from tests.model.test_datasets_cache import write_idx_set
from tests.search.sql import attr_by_number

FAST = ("--epochs", "3", "--no-progress")


@pytest.mark.parametrize("sampler", ["random", pytest.param("gp", marks=pytest.mark.slow)])
def test_a_small_study_runs_with_each_other_sampler(db: Path, sampler: str) -> None:
    out = run_cli("run", "--trials", "6", "--jobs", "2", "--study", sampler, "--sampler", sampler,
                  "--dataset", "digits", "--storage", f"sqlite:///{db}", *FAST)
    if sampler == "gp" and importlib.util.find_spec("torch") is None:
        # Optuna's GP sampler needs PyTorch, which only the bench extra installs: one clear line
        assert out.returncode == 2 and out.stderr.startswith("error: the gp sampler needs PyTorch")
        assert out.stderr.count("\n") == 1
        return
    assert out.returncode == 0, out.stderr
    assert finished(db) == 6
    stored = json.loads(query(db, "SELECT value_json FROM study_user_attributes")[0][0])
    assert f'"sampler": "{sampler}"' in stored  # the spec is stored as JSON text in one user attr
    assert len(set(query(db, "SELECT param_value FROM trial_params WHERE param_name='learning_rate'"))) == 6


@pytest.mark.slow
def test_data_dir_on_the_command_line_is_where_the_data_set_is_read(db: Path, tmp_path: Path) -> None:
    write_idx_set(tmp_path / "tiny-mnist", n_train=200, n_test=50)
    args = ("--trials", "2", "--jobs", "1", "--study", "dd", "--dataset", "mnist",
            "--storage", f"sqlite:///{db}", *FAST)
    out = run_cli("run", *args, "--data-dir", str(tmp_path / "tiny-mnist"))
    assert out.returncode == 0, out.stderr
    assert finished(db) == 2
    missing = run_cli("run", *args, "--data-dir", str(tmp_path / "nowhere"))
    assert missing.returncode != 0 and "Traceback" not in missing.stderr


@pytest.mark.slow
def test_show_csv_writes_every_trial_and_each_trial_records_its_host_and_peak_memory(
        db: Path, tmp_path: Path) -> None:
    out = run_cli("run", "--trials", "7", "--jobs", "2", "--study", "csv", "--dataset", "digits",
                  "--storage", f"sqlite:///{db}", *FAST)
    assert out.returncode == 0, out.stderr
    csv = tmp_path / "trials.csv"
    shown = run_cli("show", "--study", "csv", "--storage", f"sqlite:///{db}", "--top", "2", "--csv", str(csv))
    assert shown.returncode == 0, shown.stderr
    table = pd.read_csv(csv)
    numbers = [n for (n,) in query(db, "SELECT number FROM trials ORDER BY number")]
    assert table.number.tolist() == numbers  # every trial, not the --top 2 printed
    for key in ("host", "worker_peak_rss_mb"):
        values = dict(attr_by_number(db, key))
        assert set(values) >= set(numbers[:7]), key
        if key == "host":
            assert {json.loads(v) for v in values.values()} == {socket.gethostname()}
        else:
            assert all(10 < json.loads(v) < 100_000 for v in values.values())  # megabytes, not kB


@pytest.mark.slow
def test_a_study_made_from_a_preset_takes_more_trials_from_the_flag_on_a_later_run(db: Path, tmp_path: Path) -> None:
    preset = tmp_path / "small.toml"
    preset.write_text('dataset = "digits"\nepochs = 2\nfinalists = 0\ntrials = 3\n')
    common = ("--study", "p", "--preset", str(preset), "--storage", f"sqlite:///{db}", "--jobs", "2", "--no-progress")
    first = run_cli("run", *common)
    assert first.returncode == 0, first.stderr
    assert finished(db) == 3
    more = run_cli("run", *common, "--trials", "5")  # the flag, not the preset's 3, says how many
    assert more.returncode == 0, more.stderr
    assert finished(db) == 5
