"""The settings of ``run``: those that define the study (``search/study/settings.py``) and those of this execution.

The command line's flags (``search/cli.py``) and the keywords of ``search.run``
(``search/api.py``) are made from these tables, so a value from Python goes
through the same check as the flag's text and gets the same message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from search.errors import SearchError
from search.study.checks import int_at_least
from search.study.settings import RUN_SETTINGS, STORAGE, STUDY, STUDY_SETTINGS, Setting
from search.workers import EXECUTORS

__all__ = [
    "DATA_DIR",
    "EXECUTION",
    "JOBS",
    "RUN_SETTINGS",
    "STORAGE",
    "STUDY",
    "STUDY_SETTINGS",
    "Setting",
    "check_settings",
    "int_at_least",
]


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SearchError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise SearchError(f"must be a positive number of seconds, got {text}")
    return value


# Also flags of other commands (``best --jobs``, ``report --data-dir``).
JOBS = Setting("jobs", "worker processes (default: number of CPU cores)", int_at_least(1), "K", study=False)
DATA_DIR = Setting("data_dir", "directory holding the data set files", metavar="DIR", study=False)
EXECUTION: tuple[Setting, ...] = (
    JOBS,
    Setting(
        "timeout",
        "stop after this many seconds: no trial starts that could not finish by then, and what "
        "still runs then is stopped and recorded for a re-run",
        _seconds,
        "SECONDS",
        study=False,
    ),
    DATA_DIR,
    Setting("progress", "no progress bar", switch=True, negated=True, study=False),
    Setting(
        "executor",
        # Execution.executor's default; not read from it, since the coordinator loads the process pool
        # (tests/search/test_settings.py holds the two together)
        "where trials run: local worker processes, or a Dask cluster (default local)",
        choices=EXECUTORS,
        study=False,
    ),
    Setting(
        "scheduler",
        "Dask scheduler, e.g. tcp://host:8786 (with --executor dask; default: a local Dask "
        "cluster of --jobs processes)",
        metavar="ADDRESS",
        study=False,
    ),
)
_BY_NAME = {s.name: s for s in (*RUN_SETTINGS, *EXECUTION)}


def check_settings(given: Mapping[str, Any]) -> dict[str, Any]:
    """Keywords of ``search.run`` checked as their flags are; None means not given. Unknown ones are refused."""
    unknown = sorted(set(given) - set(_BY_NAME))
    if unknown:
        raise SearchError(f"unknown argument(s) {', '.join(unknown)}; known: {', '.join(_BY_NAME)}")
    return {k: _BY_NAME[k].check(v) for k, v in given.items() if v is not None}
