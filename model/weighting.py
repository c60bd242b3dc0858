"""Per-row sample weights: the weighted mean every loss takes, normalised by the weights' sum.

Why a module of its own: the losses of both tasks (model/losses.py, model/regression.py)
and the network's evaluation share one convention, and a convention written twice drifts.
It is scikit-learn's and PyTorch's (``CrossEntropyLoss(weight=...)``, ``MLPClassifier.fit(...,
sample_weight=)``): the loss of a batch is sum_i w_i * l_i / sum_i w_i, so that weights of 1
give the plain mean, an integer weight counts a row that many times, and class weights
"balanced" (``compute_sample_weight("balanced", y)``) change which rows matter, not the
scale of the loss. A batch whose weights are all 0 has no say: its loss and gradient are 0
(rather than 0 / 0).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["check_sample_weight", "row_weights", "weighted_mean"]


def row_weights(sample_weight: np.ndarray | None, n: int, dtype: np.dtype) -> tuple[np.ndarray | None, float]:
    """``(w, total)`` for the mean sum(w * l) / total of n rows; ``(None, n)`` without weights.

    ``w`` is in ``dtype`` (no copy when it already is). ``total`` is inf when every
    weight is 0, which makes that mean and every gradient factor w / total exactly 0.
    """
    if sample_weight is None:
        return None, float(n)
    w = np.asarray(sample_weight, dtype)
    if w.shape != (n,):
        raise ValueError(f"sample_weight must have shape ({n},), one weight per row, got shape {w.shape}")
    total = float(w.sum())
    return w, total if total > 0 else math.inf


def weighted_mean(row_values: np.ndarray, w: np.ndarray | None, total: float) -> float:
    """sum(w * row_values) / total, or the plain mean when ``w`` is None (see :func:`row_weights`)."""
    if w is None:
        return float(row_values.sum()) / total
    return float(w @ row_values) / total


def check_sample_weight(sample_weight: object, n: int, name: str = "sample_weight") -> np.ndarray:
    """``sample_weight`` as a float64 (n,) array of finite weights >= 0, not all 0; else ValueError naming the fault.

    For the training loop and the estimators, which check once per fit what the
    losses then trust on every batch.
    """
    w = np.asarray(sample_weight)
    if w.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), one weight per row, got shape {w.shape}")
    if w.dtype == bool or not np.issubdtype(w.dtype, np.number) or np.iscomplexobj(w):
        raise ValueError(f"{name} must hold real numbers, got dtype {w.dtype}")
    w = w.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
    if bad.size:
        raise ValueError(f"{name} must be finite and >= 0, got {w[bad[0]]} at row {bad[0]}")
    if not w.any():
        raise ValueError(f"{name} is zero for every row; at least one weight must be positive")
    return w
