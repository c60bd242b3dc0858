"""The tree is the map of the processes: the layers hold, and the light packages stay light.

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``); these tests
run them on the real tree and on a copy with one deliberate violation, so a
contract that could not fail would be noticed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; lint_imports_command()"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)},
    )


def test_every_layer_contract_is_kept() -> None:
    run = lint_imports(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # a worker reaching up into the coordinator
        ("search/workers/tasks.py", "import search.coordinator.job", "processes in layers"),
        # the study contract importing a process package
        ("search/study/spec.py", "import search.readers.results", "processes in layers"),
        # a reader importing the coordinator (siblings in one layer are independent)
        ("search/readers/results.py", "import search.coordinator.lease", "processes in layers"),
        # the network knowing of the service
        ("model/train.py", "import search.errors", "the network knows nothing of the service"),
        # a circle between two modules of one package
        ("search/study/durations.py", "import search.study.settings", "no import circles"),
    ],
)
def test_a_deliberate_violation_breaks_its_contract(tmp_path: Path, module: str, line: str, broken: str) -> None:
    for name in ("search", "model"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    with open(tmp_path / module, "a", encoding="utf-8") as f:
        f.write(f"\n{line}  # noqa\n")
    run = lint_imports(tmp_path)
    assert run.returncode != 0, run.stdout
    assert f"{broken}" in run.stdout and "BROKEN" in run.stdout, run.stdout


HEAVY = ("joblib.externals.loky", "distributed", "dask", "scipy.optimize")


@pytest.mark.parametrize(
    "module",
    [
        "search.study",
        "search.study.spec",
        "search.study.settings",
        "search.study.winner",
        "search.study.dataref",
        "search.readers.results",
        "search.readers.predict",
        "search.readers.ensemble",
        "search.readers.winner",
        "search.readers.report",
        "search.readers.export",
        "search.settings",
        "search.workers",
    ],
)
def test_the_study_contract_and_the_readers_load_no_process_pool_dask_or_scipy_optimize(module: str) -> None:
    code = f"import json, sys, {module}; print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == [], f"importing {module} loaded {run.stdout.strip()}"
