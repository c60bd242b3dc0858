"""Bad input: one line on stderr, a non-zero exit, and nothing changed on disk."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from search.cli import main
from tests.equipment import missing


def snapshot(directory: Path) -> dict[str, str]:
    # "-shm" is SQLite's shared-memory index of the WAL, rewritten by any reader, and a
    # reader of a WAL database may create an empty "-wal": neither holds data.
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file() and not p.name.endswith("-shm")
            and not (p.name.endswith("-wal") and p.stat().st_size == 0)}


def refused(capsys: pytest.CaptureFixture, argv: list[str], directory: Path, *needles: str) -> str:
    before = snapshot(directory)
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error: ") and "\n" not in err, err
    for needle in needles:
        assert needle in err, err
    assert snapshot(directory) == before
    return err


@pytest.fixture
def storage(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'study.db'}"


def test_unknown_dataset_is_refused_naming_the_accepted_ones(capsys, tmp_path, storage) -> None:
    refused(capsys, ["run", "--dataset", "imagenet", "--storage", storage], tmp_path, "imagenet", "digits")


@pytest.mark.parametrize("value", ["-3", "0", "ten", "1.5"])
def test_bad_trial_counts_are_refused(capsys, tmp_path, storage, value) -> None:
    refused(capsys, ["run", "--trials", value, "--storage", storage], tmp_path, "--trials", value)


@pytest.mark.parametrize("name", ["../etc", "a/b", "x;rm -rf", "", "-x", ".hidden"])
def test_study_names_that_are_not_plain_file_names_are_refused(capsys, tmp_path, storage, name) -> None:
    refused(capsys, ["run", f"--study={name}", "--storage", storage], tmp_path, "study name")


def test_unknown_study_is_refused_naming_the_studies_there(capsys, tmp_path, storage) -> None:
    assert main(["run", "--trials", "1", "--epochs", "1", "--study", "real", "--storage", storage,
                 "--jobs", "1", "--no-progress"]) == 0
    capsys.readouterr()
    for command in ("show", "resume", "plot", "best"):
        refused(capsys, [command, "--study", "nope", "--storage", storage], tmp_path, "nope", "real")


def test_an_empty_database_holds_no_studies(capsys, tmp_path, storage) -> None:
    sqlite3.connect(tmp_path / "study.db").close()
    for command in ("show", "resume", "plot", "best"):
        refused(capsys, [command, "--study", "nope", "--storage", storage], tmp_path, "holds no")


def test_missing_database_is_refused_without_creating_it(capsys, tmp_path, storage) -> None:
    refused(capsys, ["show", "--study", "nope", "--storage", storage], tmp_path, "no study database")
    assert not (tmp_path / "study.db").exists()


def test_a_file_that_is_not_a_database_is_left_untouched(capsys, tmp_path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 20)
    for command in (["run", "--trials", "2"], ["show"], ["resume"]):
        refused(capsys, [*command, "--study", "s", "--storage", f"sqlite:///{path}"], tmp_path,
                "not an SQLite database")


def test_a_foreign_sqlite_database_is_left_untouched(capsys, tmp_path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.commit()
    conn.close()
    refused(capsys, ["run", "--trials", "2", "--storage", f"sqlite:///{path}"], tmp_path,
            "not an Optuna study database")


def test_a_truncated_database_is_refused(capsys, tmp_path, storage) -> None:
    assert main(["run", "--trials", "2", "--epochs", "1", "--study", "t", "--storage", storage,
                 "--jobs", "1", "--no-progress"]) == 0
    capsys.readouterr()
    path = tmp_path / "study.db"
    path.write_bytes(path.read_bytes()[: 3 * 4096 + 100])
    for wal in tmp_path.glob("study.db-*"):
        wal.unlink()
    refused(capsys, ["show", "--study", "t", "--storage", storage], tmp_path, "study.db")


def test_a_storage_url_that_is_not_a_database_url_is_refused(capsys, tmp_path) -> None:
    refused(capsys, ["run", "--storage", "not a url"], tmp_path, "not a database URL")


@pytest.mark.parametrize("body, needle", [
    ("[space]\nlearning_rate = { low = 1.0, high = 0.001, log = true }\n", "inverted"),
    ("[space]\nactivation = ['relu', 'gelu']\n", "gelu"),
    ("[space]\nbatch_size = [0, 32]\n", "batch_size"),
    ("[space]\nunits = { low = -4, high = 16 }\n", "units"),
    ("[space]\nwidth = 3\n", "unknown parameter 'width'"),
    ("trails = 3\n", "unknown key(s) trails"),
    ("dataset = 'imagenet'\n", "imagenet"),
    ("epochs = 'many'\n", "epochs"),
    ("this is not toml\n", "not valid TOML"),
])
def test_bad_presets_are_refused_with_the_bad_value_named(capsys, tmp_path, body, needle) -> None:
    preset = tmp_path / "bad.toml"
    preset.write_text(body)
    refused(capsys, ["run", "--preset", str(preset), "--storage", f"sqlite:///{tmp_path / 's.db'}"],
            tmp_path, needle)


def test_a_run_that_contradicts_the_stored_study_is_refused(capsys, tmp_path, storage) -> None:
    assert main(["run", "--trials", "2", "--epochs", "2", "--study", "c", "--storage", storage,
                 "--jobs", "1", "--no-progress"]) == 0
    capsys.readouterr()
    refused(capsys, ["run", "--trials", "4", "--epochs", "3", "--study", "c", "--storage", storage],
            tmp_path, "epochs", "resume")


def _read_only(path: Path) -> None:
    """Make ``path`` unwritable even for root (ext4's immutable flag), or skip."""
    if os.geteuid() != 0:
        path.chmod(0o555)
        return
    if not shutil.which("chattr") or subprocess.run(["chattr", "+i", str(path)]).returncode != 0:
        missing("chattr +i (running as root: nothing else makes a directory read-only)")


def _writable(path: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], check=False)
    path.chmod(0o755)


def test_a_read_only_directory_is_refused_and_the_study_in_it_untouched(capsys, tmp_path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    url = f"sqlite:///{ro / 's.db'}"
    assert main(["run", "--trials", "1", "--epochs", "1", "--study", "s", "--storage", url,
                 "--jobs", "1", "--no-progress"]) == 0
    capsys.readouterr()
    _read_only(ro)
    try:
        refused(capsys, ["run", "--trials", "3", "--study", "s", "--storage", url], tmp_path, "not writable")
        refused(capsys, ["run", "--study", "new", "--storage", f"sqlite:///{ro / 'new.db'}"], tmp_path,
                "not writable")
        assert main(["show", "--study", "s", "--storage", url]) == 0  # reading still works
    finally:
        _writable(ro)


def test_a_database_from_an_incompatible_optuna_is_refused_untouched(capsys, tmp_path, storage) -> None:
    assert main(["run", "--trials", "1", "--epochs", "1", "--study", "s", "--storage", storage,
                 "--jobs", "1", "--no-progress"]) == 0
    capsys.readouterr()
    conn = sqlite3.connect(tmp_path / "study.db")
    conn.execute("UPDATE alembic_version SET version_num = 'v0.9.0.a'")
    conn.commit()
    conn.close()
    for command in (["run", "--trials", "2"], ["show"], ["resume"]):
        refused(capsys, [*command, "--study", "s", "--storage", storage], tmp_path, "compatible")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flag=st.sampled_from(["--trials", "--epochs", "--jobs", "--seed", "--timeout"]),
       value=st.one_of(st.integers(max_value=-1).map(str), st.text(min_size=1).filter(
           lambda s: not s.strip().lstrip("+").replace(".", "", 1).isdigit())))
def test_any_malformed_number_is_refused_in_one_line(capsys, tmp_path, flag, value) -> None:
    refused(capsys, ["run", f"{flag}={value}", "--storage", f"sqlite:///{tmp_path / 's.db'}"], tmp_path,
            flag)


@pytest.mark.parametrize(("flag", "value"), [("--budget", "-5s"), ("--trials", "-3"), ("--epochs", "-1")])
def test_a_negative_value_is_named_by_its_setting_not_taken_for_a_flag(capsys, tmp_path, flag, value) -> None:
    err = refused(capsys, ["run", flag, value, "--storage", f"sqlite:///{tmp_path}/x.db"], tmp_path, flag, repr(value)
                  if flag == "--budget" else value)
    assert "expected one argument" not in err
