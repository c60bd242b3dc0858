"""Periodic features of a table's numbers: the network's first map, fixed, before its first layer.

Beside each chosen column x, ``sin(2 pi f x)`` and ``cos(2 pi f x)`` for ``PERIODIC_K``
frequencies f drawn once from N(0, sigma). A numeric embedding in the sense of
Gorishniy et al. 2022 ("On embeddings for numerical features in tabular deep
learning") with its frequencies frozen: by cross-validation on the development
tables' training rows (docs/search-quality.md, "Tables") it gained 3.3 points of R²
on Computers, a table boosted trees led, and lost up to 7.6 on others: a choice
per table, which a space's ``periodic`` dimension makes (a budget's space leaves
it out for what it costs its search).

The frequencies follow from sigma and the number of columns alone (a fixed seed),
so a saved network, ``predict`` in another process and the ONNX graph rebuild them
from the network's config; every network of an ensemble shares them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["PERIODIC_K", "expand", "frequencies", "periodic_width"]

PERIODIC_K = 8  # frequencies per column
_SEED = 20221103  # the frequencies' own stream: not the network's seed, which differs within an ensemble


def frequencies(n_columns: int, sigma: float) -> np.ndarray:
    """(n_columns, PERIODIC_K) angular frequencies, 2 pi f, in float64."""
    return np.random.default_rng(_SEED).standard_normal((n_columns, PERIODIC_K)) * (2 * np.pi * sigma)


def periodic_width(n_inputs: int, columns: Sequence[int]) -> int:
    """The first layer's inputs: the columns as given, then a sine and a cosine per column and frequency."""
    return n_inputs + 2 * PERIODIC_K * len(columns)


def expand(X: np.ndarray, columns: Sequence[int], sigma: float, dtype: np.dtype | type = np.float32) -> np.ndarray:
    """(n, periodic_width) of ``dtype``: ``X``, then the sines, then the cosines, column-major by column."""
    n, d = X.shape
    # in ``dtype``, as the exported graph computes them: a float32 product rounds alike in both
    angles = X[:, list(columns), None].astype(dtype) * frequencies(len(columns), sigma).astype(dtype)  # (n, m, k)
    out = np.empty((n, periodic_width(d, columns)), dtype)
    mk = angles.shape[1] * PERIODIC_K
    out[:, :d] = X
    out[:, d : d + mk] = np.sin(angles).reshape(n, mk)
    out[:, d + mk :] = np.cos(angles).reshape(n, mk)
    return out
