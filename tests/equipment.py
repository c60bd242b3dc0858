"""Missing test equipment: a skip on a developer's machine, a failure in CI.

CI (``CI=true``, set by the runner of ``.ci/run``) installs everything the tests
need: the real data set, PostgreSQL, Dask, optuna-dashboard, chattr, Chromium.
If one of them is missing there, the tests that need it must not turn into
skips and let CI go green without them; on a developer's machine a skip with
the reason is the friendlier answer.
"""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(what: str) -> None:
    """Skip (outside CI) or fail (in CI) because ``what`` is not available here."""
    if in_ci():
        pytest.fail(f"CI must provide this, but it is missing: {what}", pytrace=False)
    pytest.skip(what)
