"""Selection rules: how a curve becomes the objective, and how long the final network trains."""

from __future__ import annotations

import math

import pytest

from search.study.selection import SELECTIONS, retrain_epochs, select


def test_min_loss_takes_the_lowest_epoch() -> None:
    assert select("min_loss", [0.9, 0.5, 0.7, 0.6], [0.5] * 4) == (0.5, 2)


def test_smoothed_loss_prefers_a_steady_valley_to_one_lucky_epoch() -> None:
    # epoch 2 is a lucky dip (0.30) between 0.90 and 0.80; epochs 4-6 hold 0.45-0.50
    curve = [0.9, 0.3, 0.8, 0.5, 0.45, 0.5, 0.9]
    accuracies = [0.5] * len(curve)
    assert select("min_loss", curve, accuracies) == (0.3, 2)
    value, epoch = select("smoothed_loss", curve, accuracies)
    # windows of 3: (0.9+0.3+0.8)/3 = 0.667, (0.3+0.8+0.5)/3 = 0.533, (0.8+0.5+0.45)/3 = 0.583,
    # (0.5+0.45+0.5)/3 = 0.4833 (epochs 4-6, middle 5), (0.45+0.5+0.9)/3 = 0.617
    assert value == pytest.approx(0.48333333) and epoch == 5


def test_smoothed_loss_of_a_short_curve_is_its_minimum() -> None:
    assert select("smoothed_loss", [0.4, 0.3], [0.5, 0.5]) == (0.3, 2)


def test_last_loss_ignores_earlier_epochs() -> None:
    assert select("last_loss", [0.2, 0.9, 0.6], [0.5] * 3) == (0.6, 3)


def test_smoothed_error_reads_the_accuracy_curve() -> None:
    # errors 0.5, 0.1, 0.4, 0.15, 0.15, 0.2: windows 0.333, 0.217, 0.233, 0.167 (epochs 4-6, middle 5)
    value, epoch = select("smoothed_error", [0.0] * 6, [0.5, 0.9, 0.6, 0.85, 0.85, 0.8])
    assert value == pytest.approx(0.5 / 3) and epoch == 5


def test_smoothed_error_breaks_ties_by_loss_without_outweighing_one_sample() -> None:
    # the same accuracies; the lower loss wins, and 1e-3 x loss moves the value by far less
    # than one sample of a 288-image split (1 / 288)
    a = select("smoothed_error", [0.30] * 3, [0.98] * 3)
    b = select("smoothed_error", [0.10] * 3, [0.98] * 3)
    assert b[0] < a[0] and a[0] - b[0] < 1 / 288 / 10


@pytest.mark.parametrize("rule", list(SELECTIONS))
def test_every_rule_refuses_an_empty_or_non_finite_curve(rule: str) -> None:
    for curve in ([], [0.5, math.nan], [math.inf]):
        with pytest.raises(ValueError, match="finite, non-empty"):
            select(rule, curve, [0.5] * len(curve))
    with pytest.raises(ValueError, match="one length"):
        select(rule, [0.5, 0.4], [0.5])


def test_retrain_epochs_read_the_mean_curve_of_the_repeated_runs() -> None:
    # each run alone has its minimum elsewhere (epochs 2 and 4); the mean's is epoch 3
    runs = [([1.0, 0.40, 0.45, 0.70], [0.5] * 4), ([1.0, 0.70, 0.45, 0.40], [0.5] * 4)]
    assert retrain_epochs(runs, "min_loss") == 3
    # runs of different lengths are compared over the epochs they share
    assert retrain_epochs([([1.0, 0.5, 0.4], [0.5] * 3), ([1.0, 0.5], [0.5] * 2)], "min_loss") == 2
    # an accuracy rule reads the mean accuracy curve: (0.8+0.9)/2, (0.9+0.9)/2, (0.95+0.97)/2, (0.97+0.95)/2
    acc = [([1.0] * 5, [0.5, 0.8, 0.9, 0.95, 0.97]), ([1.0] * 5, [0.5, 0.9, 0.9, 0.97, 0.95])]
    assert retrain_epochs(acc, "smoothed_error") == 4
