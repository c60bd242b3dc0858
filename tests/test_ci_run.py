"""``.ci/run`` fails when any of its steps fails, so CI cannot go green by accident.

The script runs against fake ``apt-get``, ``pip`` and ``python`` commands put first
on ``PATH``: each one logs its arguments and exits with the status the test chose,
so nothing is installed and the suite is not run again from inside itself.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

FAKE = """#!/bin/sh
echo "$(basename "$0") $*" >> "{log}"
exit {status}
"""


def ci_run(tmp_path: Path, **status: int) -> tuple[int, list[str]]:
    """Run ``.ci/run`` as root with fake commands; ``status`` maps a command to its exit status."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    log.touch()
    for name in ("apt-get", "pip", "python", "ruff", "mypy"):  # lint runs for real in .ci/run itself
        fake = bin_dir / name
        fake.write_text(FAKE.format(log=log, status=status.get(name, 0)))
        fake.chmod(0o755)
    (bin_dir / "id").write_text("#!/bin/sh\necho 0\n")  # as root, so the apt-get step runs
    (bin_dir / "id").chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(["bash", str(ROOT / ".ci" / "run")], env=env, capture_output=True, text=True,
                          timeout=60)
    return proc.returncode, log.read_text().splitlines()


def test_ci_run_installs_then_runs_the_readme_test_command_then_the_slow_tests(tmp_path: Path) -> None:
    code, calls = ci_run(tmp_path)
    assert code == 0
    assert calls[0] == "apt-get update -qq"
    assert calls[1].startswith("apt-get install") and "chromium" in calls[1].split()
    assert "dataset-fashion-mnist" in calls[1].split() and "postgresql" in calls[1].split()
    assert calls[2:] == ['pip install -e .[test]', "python -m pytest", "python -m pytest -m slow",
                         "ruff check .", "ruff format --check .", "mypy "]  # the fake logs "$0 $*"


@pytest.mark.parametrize("failing", ["apt-get", "pip"])
def test_ci_run_exits_non_zero_and_runs_no_tests_when_an_install_fails(tmp_path: Path, failing: str) -> None:
    code, calls = ci_run(tmp_path, **{failing: 3})
    assert code != 0
    assert not any(call.startswith("python") for call in calls)


def test_ci_run_exits_non_zero_when_the_main_suite_fails(tmp_path: Path) -> None:
    code, calls = ci_run(tmp_path, python=1)
    assert code != 0
    assert calls[-1] == "python -m pytest"  # the slow tests do not get to paper over it


def test_ci_run_fails_when_the_main_suite_selects_no_test(tmp_path: Path) -> None:
    assert ci_run(tmp_path, python=5)[0] != 0  # 5 is accepted from the slow tests only


def test_ci_run_runs_the_test_command_the_readme_gives() -> None:
    command = 'pip install -e ".[test]" && python -m pytest'
    assert command in (ROOT / "README.md").read_text(encoding="utf-8")
    assert any(line.startswith(command) for line in (ROOT / ".ci" / "run").read_text().splitlines())
