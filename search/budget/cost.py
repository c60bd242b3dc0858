"""What training costs on this machine: the probe, its cost model, and a network's epoch as trials measured it.

A budget is planned from measured costs, not from guesses: ``probe`` trains
one epoch of a few networks of different sizes on a sample of the training
rows, one BLAS thread as in a worker, and fits ``CostModel`` (seconds per
epoch against rows, parameters and mini-batch steps). Once trials have run,
their own timings say more than the model: ``network_epoch_seconds`` turns
a trial's measured seconds into one network's epoch, for the finalist runs'
time (the coordinator) and the final ensemble's size (``ensemble.py``).

The only module of ``search`` that imports ``scipy.optimize`` (for the
probe's non-negative least squares); the readers never import it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls
from threadpoolctl import threadpool_limits

from model import TrainConfig, Training
from model.datasets import Dataset
from search.budget.shares import WARP_COST

__all__ = ["CostModel", "n_parameters", "network_epoch_seconds", "probe"]

# Rows the probe trains on. On Fashion-MNIST 2,048 and 8,192 rows gave 0.032 and 0.028 ns per row x
# weight; the model then predicted a 1024-wide epoch at batch 64 on all 54,000 rows as 1.3 s (measured 1.14 s).
_PROBE_ROWS = 2048
# (hidden, batch) of the probed networks, spanning a budgeted space: narrow and wide, small and large steps.
_PROBES: tuple[tuple[tuple[int, ...], int], ...] = (
    ((64,), 16),
    ((64,), 256),
    ((1024,), 256),
    ((2048,), 128),
    ((512, 512), 64),
)


def n_parameters(n_in: int, hidden: tuple[int, ...], n_out: int) -> int:
    """Weights and biases of a network of these layer widths."""
    widths = [n_in, *hidden, n_out]
    return sum(a * b + b for a, b in zip(widths, widths[1:]))


@dataclass(frozen=True)
class CostModel:
    """Seconds of one training epoch: ``rows x params x per_row_param + steps x per_step``.

    The first term is the matrix products (forward, backward, update: all
    proportional to rows times weights); the second the fixed cost of a
    mini-batch step in Python, which dominates small networks at small batches.
    Validation costs a forward pass, a third of a training row.
    """

    per_row_param: float  # seconds per training row and weight
    per_step: float  # seconds per mini-batch step, besides its products

    def epoch_seconds(self, n_train: int, n_val: int, params: int, batch: int) -> float:
        rows = n_train + n_val / 3
        return rows * params * self.per_row_param + math.ceil(n_train / batch) * self.per_step


def probe(data: Dataset, seed: int = 0) -> CostModel:
    """Time an epoch of a few networks on a sample of the training rows (one BLAS thread, as a worker)."""
    rng = np.random.default_rng(seed)
    n = min(_PROBE_ROWS, len(data.y_train))
    rows = rng.choice(len(data.y_train), n, replace=False)
    X, y = np.ascontiguousarray(data.X_train[rows]), data.y_train[rows]
    measured: list[tuple[float, float, float]] = []  # (rows x params, steps, seconds)
    loss = "squared_error" if data.task == "regression" else "cross_entropy"  # a regression network's output
    with threadpool_limits(1):
        for hidden, batch in _PROBES:
            # a rate too small to diverge: the default's squared error diverged on the 2048-wide probe in its
            # first epoch, whose "epoch" then took no time and made every regression network look free
            config = TrainConfig(hidden=hidden, batch_size=batch, epochs=3, seed=seed, loss=loss, learning_rate=1e-6)
            run = Training(config, X, y, X[:1], y[:1], n_classes=data.n_classes)
            run.step()  # the first epoch allocates; the faster of the next two is the one kept
            seconds = math.inf
            for _ in range(2):  # the faster: a pause of a loaded machine in one epoch is not the network's cost
                start = time.perf_counter()
                trained = run.step()
                seconds = min(seconds, time.perf_counter() - start)
                if trained is None:  # diverged all the same: not an epoch's time
                    break
            if trained is None:
                continue
            measured.append((n * n_parameters(data.n_features, hidden, data.n_classes), math.ceil(n / batch), seconds))
    # Least squares on relative error (each probe counts alike, the 64-unit ones too) with both
    # costs kept non-negative: plain least squares let the wide probes drive the step cost to 0.
    A = np.array([[a, b] for a, b, _ in measured])
    t = np.array([s for *_, s in measured])
    coef, _ = nnls(A / t[:, None], np.ones(len(t)))
    per_row_param, per_step = (max(float(c), 1e-15) for c in coef)
    return CostModel(per_row_param, per_step)


def network_epoch_seconds(seconds: float, epochs: int, folds: int, *, share: float = 1.0, warp: bool = False) -> float:
    """One epoch of one network, from a trial that trained ``folds`` networks ``epochs`` epochs in ``seconds``.

    ``share``: the part of train + validation each of the trial's networks trained on,
    to scale the epoch to all of it (1: the epoch as the trial's networks trained it).
    ``warp``: the network trains on warped images where the trial's did not (a search
    trial's, for a warped finalist or final network): its epoch costs WARP_COST times more.
    """
    return seconds / epochs / folds / share * (WARP_COST if warp else 1.0)
