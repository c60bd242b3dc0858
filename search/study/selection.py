"""How a trial's curves become the one number the study ranks it by.

Why a module of its own: the choice decides which network the search hands
back, and it was made by measurement (``tests/bench/bench_quality.py``;
docs/search-quality.md gives the figures). The best epoch of one noisy validation curve is
optimistic twice, over epochs and then over trials; a value taken from a
smoothed curve, a mean over folds, and a winner chosen on fresh runs
(the finalist stage) each remove part of that optimism.

Every rule reads the curves a worker reports (validation loss and accuracy per
epoch, means over folds under cross-validation) and returns ``(value, epoch)``:
the objective to minimise and the epoch it was taken at (which ``best
--retrain`` uses to choose how long to train).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

SMOOTHING = 3  # epochs averaged by the smoothed rules
# The error rule breaks ties by loss: 1e-3 of a loss near 0.1 is far below one sample
# of a validation split of 288 (1/288 = 3.5e-3) or of 6,000 images (1.7e-4).
TIE_BREAK = 1e-3


def _smoothed_min(curve: Sequence[float], width: int = SMOOTHING) -> tuple[float, int]:
    """The lowest mean of ``width`` consecutive epochs, and the middle one of them.

    One lucky epoch cannot win: a network must hold a low value for a while.
    """
    if len(curve) < width:
        epoch = int(np.argmin(curve)) + 1
        return float(curve[epoch - 1]), epoch
    means = np.convolve(np.asarray(curve, dtype=np.float64), np.ones(width) / width, mode="valid")
    start = int(np.argmin(means))
    return float(means[start]), start + (width + 1) // 2


def _min_loss(losses: Sequence[float], accuracies: Sequence[float]) -> tuple[float, int]:
    epoch = int(np.argmin(losses)) + 1
    return float(losses[epoch - 1]), epoch


def _smoothed_loss(losses: Sequence[float], accuracies: Sequence[float]) -> tuple[float, int]:
    return _smoothed_min(losses)


def _last_loss(losses: Sequence[float], accuracies: Sequence[float]) -> tuple[float, int]:
    return float(losses[-1]), len(losses)


def _smoothed_error(losses: Sequence[float], accuracies: Sequence[float]) -> tuple[float, int]:
    return _smoothed_min([1.0 - a + TIE_BREAK * loss for a, loss in zip(accuracies, losses)])


@dataclass(frozen=True, slots=True)
class Selection:
    rule: Callable[[Sequence[float], Sequence[float]], tuple[float, int]]
    metric: str  # the objective's name in the study (optuna-dashboard shows it)
    text: str  # for people


SELECTIONS: dict[str, Selection] = {
    "min_loss": Selection(_min_loss, "val_loss", "the lowest validation loss of any epoch"),
    "smoothed_loss": Selection(
        _smoothed_loss, "val_loss_smoothed", f"the lowest validation loss averaged over {SMOOTHING} consecutive epochs"
    ),
    "last_loss": Selection(_last_loss, "val_loss_last", "the validation loss after the last epoch"),
    "smoothed_error": Selection(
        _smoothed_error,
        "val_error_smoothed",
        f"the lowest validation error (1 - accuracy) averaged over {SMOOTHING} "
        f"consecutive epochs, ties broken by {TIE_BREAK:g} x the loss",
    ),
}


def select(rule: str, losses: Sequence[float], accuracies: Sequence[float]) -> tuple[float, int]:
    """``(value, epoch)`` of a finished run's curves under ``rule`` (a key of ``SELECTIONS``)."""
    if not losses or len(accuracies) != len(losses) or not all(math.isfinite(v) for v in losses):
        raise ValueError(
            f"a selection needs finite, non-empty curves of one length, got {list(losses)!r} and {list(accuracies)!r}"
        )
    return SELECTIONS[rule].rule(losses, accuracies)


def retrain_epochs(curves: Sequence[tuple[Sequence[float], Sequence[float]]], rule: str) -> int:
    """How long to train the final network: ``rule`` applied to the mean of ``curves``.

    ``curves`` are (losses, accuracies) of repeated runs of one configuration
    (the winning finalist's fresh runs): their mean is a far steadier guide to
    the right number of epochs than the best epoch of one run.
    """
    length = min(len(losses) for losses, _ in curves)
    mean_loss = np.mean([np.asarray(losses[:length], dtype=np.float64) for losses, _ in curves], axis=0)
    mean_acc = np.mean([np.asarray(acc[:length], dtype=np.float64) for _, acc in curves], axis=0)
    return select(rule, list(mean_loss), list(mean_acc))[1]
