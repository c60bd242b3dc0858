"""How a trial's curve becomes the one number the study ranks it by.

Why a module of its own: the choice decides which network the search hands
back, and it was made by measurement (``tests/bench/bench_quality.py``; the
README gives the figures). The best epoch of one noisy validation curve is
optimistic twice, over epochs and then over trials; a value taken from a
smoothed curve, a mean over folds, and a winner chosen on fresh runs
(the finalist stage) each remove part of that optimism.

Every rule reads the curve a worker reports (validation loss per epoch, the
mean over folds under cross-validation) and returns ``(value, epoch)``: the
objective to minimise and the epoch it was taken at (which ``best --retrain``
uses to choose how long to train).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

Rule = Callable[[Sequence[float]], tuple[float, int]]


def _min_loss(losses: Sequence[float]) -> tuple[float, int]:
    """The lowest validation loss of any epoch (the textbook objective)."""
    epoch = int(np.argmin(losses)) + 1
    return float(losses[epoch - 1]), epoch


def _smoothed_loss(losses: Sequence[float], width: int = 3) -> tuple[float, int]:
    """The lowest mean of ``width`` consecutive epochs, and the middle one of them.

    One lucky epoch cannot win: a network must hold a low loss for a while.
    """
    if len(losses) < width:
        return _min_loss(losses)
    means = np.convolve(np.asarray(losses, dtype=np.float64), np.ones(width) / width, mode="valid")
    start = int(np.argmin(means))
    return float(means[start]), start + (width + 1) // 2


def _last_loss(losses: Sequence[float]) -> tuple[float, int]:
    """The loss after the last epoch: no choice over epochs at all."""
    return float(losses[-1]), len(losses)


SELECTIONS: dict[str, Rule] = {
    "min_loss": _min_loss,
    "smoothed_loss": _smoothed_loss,
    "last_loss": _last_loss,
}


def select(rule: str, losses: Sequence[float]) -> tuple[float, int]:
    """``(value, epoch)`` of a finished curve under ``rule`` (a key of ``SELECTIONS``)."""
    if not losses or not all(math.isfinite(v) for v in losses):
        raise ValueError(f"a selection needs a finite, non-empty curve, got {list(losses)!r}")
    return SELECTIONS[rule](losses)


def retrain_epochs(curves: Sequence[Sequence[float]], rule: str) -> int:
    """How long to train the final network: ``rule`` applied to the mean of ``curves``.

    The finalists' repeated runs of the winning configuration give several
    curves of the same configuration; their mean is a far steadier guide to
    the right number of epochs than the best epoch of one run.
    """
    length = min(len(c) for c in curves)
    mean = np.mean([np.asarray(c[:length], dtype=np.float64) for c in curves], axis=0)
    return select(rule, list(mean))[1]
