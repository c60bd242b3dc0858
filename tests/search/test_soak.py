"""The soak benchmark, shortened, as a slow test (CI runs it; the default run skips it)."""

from __future__ import annotations

import pytest

from tests.bench.bench_soak import soak


@pytest.mark.slow
def test_a_study_survives_workers_killed_every_few_seconds_while_a_reader_polls(tmp_path) -> None:
    report = soak(trials=150, kill_every=2.0, jobs=2, epochs=30, directory=tmp_path)
    assert report.kills >= 3
    assert report.reader_errors == []
    assert report.lost == []  # given-up trials are allowed: the bench checks their chains of attempts
    assert report.finished == 150
    assert report.retries >= 1
