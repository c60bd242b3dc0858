"""Splitting and normalising raw arrays: the maths between parsing and caching.

Everything here is a pure function of its inputs; randomness arrives as an
``np.random.Generator``. Statistics are computed on the training split only
(after the validation split is taken out) and then applied to validation and
test, so nothing about held-out data leaks into the features.
"""

from __future__ import annotations

import logging

import numpy as np

from .errors import DatasetError
from .registry import NORMALIZATIONS

__all__ = [
    "STD_FLOOR",
    "TEST_FRACTION",
    "fit_stats",
    "normalize",
    "safe_powers",
    "stratified_split",
    "to_unit_float32",
]

logger = logging.getLogger(__name__)

# Floor for standard deviations, on features already scaled to [0, 1].
# A pixel that is (almost) always 0 in training, e.g. an MNIST corner, would
# otherwise be divided by ~0 and a single test-set stroke there would become a
# huge input; with the floor it stays within 1/STD_FLOOR of the mean.
STD_FLOOR = 0.1
# Share of each class held out for testing where the data come without a test split
# (digits, a user's file), drawn with a stored seed.
TEST_FRACTION = 0.2
# Magnitudes outside this range are divided by a power of two before statistics are taken of them:
# a variance of values near 1e163 overflows float64 (and of values near 1e-163 underflows to 0).
SAFE_RANGE = (2.0**-64, 2.0**64)


def safe_powers(magnitude: np.ndarray) -> np.ndarray:
    """Per column, the power of two that brings a magnitude outside ``SAFE_RANGE`` into [1, 2); else 1.

    Dividing by a power of two is exact, so statistics taken of ``x / p`` and multiplied
    back by ``p`` are the ones of ``x``, computed without overflow.
    """
    m = np.asarray(magnitude, dtype=np.float64)
    unsafe = (m > SAFE_RANGE[1]) | ((m > 0) & (m < SAFE_RANGE[0]))
    return np.where(unsafe, np.ldexp(1.0, np.frexp(np.where(unsafe, m, 1.0))[1] - 1), 1.0)  # into [1, 2)


def to_unit_float32(X: np.ndarray, max_value: float) -> np.ndarray:
    """(n, d) raw intensities in [0, max_value] -> float32 in [0, 1], C-contiguous.

    In float32 arithmetic, unless ``1 / max_value`` is too small for a float32 (intensities
    beyond 1e38, in an ``.npz`` of float64): then in float64, rounded once at the end.
    """
    out = np.empty(X.shape, dtype=np.float32)
    if max_value < 1e37:
        np.multiply(X, np.float32(1.0 / max_value), out=out, dtype=np.float32)
    else:
        np.multiply(X, 1.0 / max_value, out=out, dtype=np.float64, casting="same_kind")
    return out


def stratified_split(y: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, taken): about ``fraction`` of each class taken at random.

    The total taken is ``round(fraction * n)``, shared among classes by largest
    remainder of ``fraction * n_c``, so class proportions match to within one
    sample per class even for tiny sets. Every class keeps at least one sample.
    Both index arrays are sorted, so rows stay in their original order.
    """
    if not 0.0 < fraction < 1.0:
        raise DatasetError(f"split fraction must be in (0, 1), got {fraction=}")
    classes, counts = np.unique(y, return_counts=True)
    quotas = fraction * counts
    n_take = np.floor(quotas).astype(np.int64)
    short = int(np.floor(fraction * y.size + 0.5)) - int(n_take.sum())
    n_take[np.argsort(-(quotas - n_take), kind="stable")[: max(short, 0)]] += 1
    n_take = np.minimum(n_take, counts - 1)  # keep >= 1 per class
    taken = [rng.permutation(np.flatnonzero(y == c))[:k] for c, k in zip(classes, n_take)]
    taken_idx = np.sort(np.concatenate(taken)) if taken else np.empty(0, dtype=np.int64)
    if taken_idx.size == 0:
        raise DatasetError(f"a split of {fraction=} of {y.size} samples takes none; use more data or a larger fraction")
    mask = np.ones(y.size, dtype=bool)
    mask[taken_idx] = False
    return np.flatnonzero(mask), taken_idx


def fit_stats(X_train: np.ndarray, method: str, n_channels: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) of ``method`` broadcastable against (n, d), accumulated in float64, std floored."""
    n, d = X_train.shape
    if method == "zscore":  # per feature
        mean = X_train.mean(axis=0, dtype=np.float64)  # (d,)
        std = X_train.std(axis=0, dtype=np.float64)
    elif method == "image":  # one scalar over every training pixel
        mean = np.array(X_train.mean(dtype=np.float64))
        std = np.array(X_train.std(dtype=np.float64))
    elif method == "channel":  # one scalar per colour plane
        planes = X_train.reshape(n, n_channels, d // n_channels)  # (n, C, H*W)
        mean = planes.mean(axis=(0, 2), dtype=np.float64).repeat(d // n_channels)  # (d,)
        std = planes.std(axis=(0, 2), dtype=np.float64).repeat(d // n_channels)
    else:
        raise AssertionError(method)
    return mean, np.maximum(std, STD_FLOOR)


def normalize(
    X_train: np.ndarray, X_val: np.ndarray, X_test: np.ndarray, method: str, n_channels: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply ``method`` to all three float32 [0, 1] arrays, with statistics from X_train only.

    "zscore": (x - mean_j) / max(std_j, STD_FLOOR) per feature j;
    "image":  one mean/std over all training pixels;
    "channel": one mean/std per colour plane (3-channel data only);
    "none":   left in [0, 1].
    Arrays are modified in place (they are fresh float32 copies) and returned.
    """
    if method not in NORMALIZATIONS:
        raise DatasetError(f"normalization must be one of {NORMALIZATIONS}, got {method!r}")
    if method == "channel" and n_channels == 1:
        raise DatasetError(
            f"normalization='channel' needs colour data, but this data set has {n_channels=}; use 'image' or 'zscore'"
        )
    if method == "none":
        return X_train, X_val, X_test
    mean, std = fit_stats(X_train, method, n_channels)
    logger.debug("%s normalisation: mean range %.4g..%.4g", method, mean.min(), mean.max())
    mean32, inv32 = mean.astype(np.float32), (1.0 / std).astype(np.float32)
    for X in (X_train, X_val, X_test):
        X -= mean32
        X *= inv32
    return X_train, X_val, X_test
