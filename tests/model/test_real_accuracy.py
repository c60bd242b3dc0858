"""The accuracy the issue promises, on the real data sets (slow: CI runs it)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from threadpoolctl import threadpool_limits

from model.datasets import DatasetNotFoundError
from tests.bench.bench_accuracy import CONFIGS, score
from tests.equipment import missing


@pytest.mark.slow
def test_fashion_mnist_fixed_config_reaches_88_5_percent_on_the_test_split() -> None:
    try:
        with threadpool_limits(1):
            accuracy, _, _ = score("fashion-mnist", CONFIGS["fashion-mnist"])
    except DatasetNotFoundError:
        missing("Fashion-MNIST (apt-get install dataset-fashion-mnist)")
    assert accuracy >= 0.885


@pytest.mark.slow
def test_digits_fixed_config_reaches_97_percent_on_the_test_split_for_every_seed() -> None:
    with threadpool_limits(1):
        for seed in (0, 1, 2):
            accuracy, _, _ = score("digits", replace(CONFIGS["digits"], seed=seed))
            assert accuracy >= 0.97, (seed, accuracy)
