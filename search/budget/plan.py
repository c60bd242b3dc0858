"""``--budget``: the whole job in a wall-clock time, planned from measured costs.

A budget is the user's unit: "30 minutes for the best network you can find".
It is spent in three stages, each with its share (``SHARES``): the search,
the finalists' fresh runs, and the final networks of ``best --retrain``. How
much each stage can afford comes from what this data costs on this machine,
measured before the study begins: ``probe`` trains one epoch of a few
networks of different sizes on a sample of the training rows, one BLAS
thread as in a worker, and fits ``CostModel`` (seconds per epoch against
rows, parameters and mini-batch steps). ``plan_budget`` turns it into the
study's settings: the space scaled to the data (widths the budget can pay
for, batch sizes the rows allow), the search fidelity (epochs per trial),
cross-validation where the data is small enough to afford it, and the
finalist stage; the final ensemble is sized when its stage begins, from what
is left (``final_networks``).

Only the training and validation splits are read here; the test split is
read once, by the final networks.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.optimize import nnls
from threadpoolctl import threadpool_limits

from model import TrainConfig, Training
from model.datasets import Dataset
from search.study.durations import format_duration
from search.study.space import Choice, Dim, Fixed, Float, Int

__all__ = [
    "SHARES",
    "TRIAL_CEILING",
    "CostModel",
    "TrialCost",
    "Plan",
    "budget_space",
    "final_networks",
    "plan_budget",
    "probe",
]

# What each stage may spend of the budget; the rest is the margin for start-up, the
# storage's last writes and the estimates' error.
# The final networks' share is what a large data set's score rests on (Fashion-MNIST: a
# 2048-wide network needs 30-40 epochs of the whole training set, ~4 s each, and the
# ensemble of a few of them gained 0.3 points over one); small data leaves it unused.
SHARES: dict[str, float] = {"search": 0.5, "finalists": 0.18, "final": 0.24}
MARGIN = 1.0 - sum(SHARES.values())
# Epochs a search trial may train: the plan picks the longest its share affords.
FIDELITIES: tuple[int, ...] = (3, 5, 8, 10, 15, 20, 30, 40, 60)
# Search trials the plan wants at its chosen fidelity: TPE's 10 random start-up trials,
# then enough guided ones to learn from.
TARGET_TRIALS = 40
ENSEMBLE_MAX = 5
# A budget without --trials: time decides the count; this ceiling only keeps it a number.
TRIAL_CEILING = 100_000
# Images get warped finalists and final networks when these train long enough: by 5-fold CV a
# warp of 1.5 over 80 epochs took digits from 0.985 to 0.995 (1: 0.992), while within 30 epochs it cost
# Fashion-MNIST 0.8-1.6 points (docs/search-quality.md). It costs a small network about as
# much as its training step: WARP_COST times the epoch.
WARP = 1.5
WARP_MIN_EPOCHS = 60
# ... and only small image sets: Fashion-MNIST's 54,000 (warped 1.5 over 120-epoch finalists and
# 59-epoch final networks under a 30-minute budget: test 0.872, against 0.904 for its preset unwarped).
WARP_MAX_ROWS = 10_000
WARP_COST = 2.0
# What a trial costs besides its training epochs, measured on wine and digits (2026-12-04):
# the pruner's report and decision after each epoch (the median over up to 200 stored
# curves), the mean over folds, and per trial the task's round trip and its storage rows.
EPOCH_OVERHEAD = 1e-3
TRIAL_OVERHEAD = 0.02
_UNITS = (16, 2048)  # widest and narrowest hidden layers a budgeted space may hold
_BATCHES = (16, 32, 64, 128, 256, 512)
# Rows the probe trains on. On Fashion-MNIST 2,048 and 8,192 rows gave 0.032 and 0.028 ns per row x
# weight; the model then predicted a 1024-wide epoch at batch 64 on all 54,000 rows as 1.3 s (measured 1.14 s).
_PROBE_ROWS = 2048


def n_parameters(n_in: int, hidden: tuple[int, ...], n_out: int) -> int:
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

    per_row_param: float
    per_step: float

    def epoch_seconds(self, n_train: int, n_val: int, params: int, batch: int) -> float:
        rows = n_train + n_val / 3
        return rows * params * self.per_row_param + math.ceil(n_train / batch) * self.per_step


def _probe_configs(n_in: int, n_out: int) -> list[tuple[tuple[int, ...], int]]:
    """(hidden, batch) pairs spanning the space: narrow and wide, small and large steps."""
    return [((64,), 16), ((64,), 256), ((1024,), 256), ((2048,), 128), ((512, 512), 64)]


def probe(data: Dataset, seed: int = 0) -> CostModel:
    """Time one epoch of a few networks on a sample of the training rows (one BLAS thread, as a worker)."""
    rng = np.random.default_rng(seed)
    n = min(_PROBE_ROWS, len(data.y_train))
    rows = rng.choice(len(data.y_train), n, replace=False)
    X, y = np.ascontiguousarray(data.X_train[rows]), data.y_train[rows]
    measured: list[tuple[float, float, float]] = []  # (rows x params, steps, seconds)
    with threadpool_limits(1):
        for hidden, batch in _probe_configs(data.n_features, data.n_classes):
            config = TrainConfig(hidden=hidden, batch_size=batch, epochs=2, seed=seed)
            run = Training(config, X, y, X[:1], y[:1], n_classes=data.n_classes)
            run.step()  # the first epoch allocates; the second is the one timed
            start = time.perf_counter()
            run.step()
            seconds = time.perf_counter() - start
            measured.append((n * n_parameters(data.n_features, hidden, data.n_classes), math.ceil(n / batch), seconds))
    # Least squares on relative error (each probe counts alike, the 64-unit ones too) with both
    # costs kept non-negative: plain least squares let the wide probes drive the step cost to 0.
    A = np.array([[a, b] for a, b, _ in measured])
    t = np.array([s for *_, s in measured])
    coef, _ = nnls(A / t[:, None], np.ones(len(t)))
    per_row_param, per_step = (max(float(c), 1e-15) for c in coef)
    return CostModel(per_row_param, per_step)


@dataclass(frozen=True)
class Plan:
    """How a budget is to be spent, as the study's settings and the figures behind them."""

    budget: float  # seconds, the whole job
    seconds: dict[str, float]  # each stage's share, in seconds
    epochs: int  # search fidelity
    cv: int
    finalist_cv: int
    expected_trials: int  # search trials the search share affords at a typical network's cost
    finalists: int
    finalist_repeats: int
    finalist_epochs: int
    warp: float | None  # augment_warp of the finalists and final networks (images that train long enough)
    units_high: int  # the widest layer the space holds
    layers: int  # the most hidden layers it holds
    batches: tuple[int, ...]
    typical_epoch_seconds: float  # a mid-sized network of the space, one worker
    needed: float  # the budget a full plan needs (TARGET_TRIALS at the most epochs)
    cost: CostModel

    def settings(self) -> dict[str, Any]:
        """The StudySpec settings this plan decides (a preset or flag still wins over them)."""
        return {
            "epochs": self.epochs,
            "cv": self.cv,
            "finalist_cv": self.finalist_cv,
            "finalists": self.finalists,
            "finalist_repeats": self.finalist_repeats,
            "finalist_epochs": self.finalist_epochs,
            "finalist_warp": self.warp,
            "selection": "smoothed_loss",
            "space": budget_space(self.units_high, self.layers, self.batches),
        }

    def describe(self) -> list[tuple[str, str]]:
        """(label, text) rows: what was measured and what it bought, for the run's summary."""
        c = self.cost
        folds = "one holdout split" if self.cv == 1 else f"{self.cv}-fold cross-validation"
        return [
            (
                "plan",
                f"measured: {c.per_row_param * 1e9:.3g} ns per row x weight, {c.per_step * 1e3:.3g} ms per "
                f"mini-batch step; a typical network's epoch {self.typical_epoch_seconds:.2g} s on one worker",
            ),
            (
                "",
                f"search: {self.epochs} epochs a trial, about {self.expected_trials} trials, {folds}; widths up to "
                f"{self.units_high} in {'one or two layers' if self.layers > 1 else 'one layer'}, batches "
                f"{', '.join(map(str, self.batches))}",
            ),
            (
                "",
                f"finalists: {self.finalists} x {self.finalist_repeats} fresh runs of {self.finalist_epochs} epochs"
                + (f", {self.finalist_cv}-fold" if self.finalist_cv > 1 else "")
                + (f", on images warped with strength {self.warp}" if self.warp else "")
                + "; then as many final networks as the time left trains",
            ),
            (
                "",
                f"this data needs about {format_duration(self.needed)} for a full search ({TARGET_TRIALS} trials "
                f"of {FIDELITIES[-3]} epochs)",
            ),
        ]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["batches"] = list(self.batches)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        return cls(**(data | {"batches": tuple(data["batches"]), "cost": CostModel(**data["cost"])}))


def budget_space(units_high: int, layers: int, batches: tuple[int, ...]) -> dict[str, Dim]:
    """The space a budgeted study searches, scaled to the data by the plan.

    One or two wide layers, Nesterov momentum and a cosine schedule laid over
    the trial's epochs: the recipe the hand-tuned digits and Fashion-MNIST
    studies converged to, here with widths the budget can pay for and batch
    sizes the rows allow. Sigmoid is left out (it trained worse than the
    others in every measurement here).
    """
    return {
        "n_layers": Int(1, layers) if layers > 1 else Fixed(1),
        "units": Int(_UNITS[0], units_high, log=True),
        "batch_size": Choice(batches),
        "learning_rate": Float(1e-3, 0.3, log=True),
        "optimizer": Fixed("nesterov"),
        "momentum": Fixed(0.9),
        "lr_schedule": Fixed("cosine"),
        "dropout": Float(0.0, 0.5),
        "l2": Float(1e-6, 1e-2, log=True, zero=True),
        "activation": Choice(("relu", "leaky_relu", "tanh")),
    }


def _typical_params(n_in: int, n_out: int, units_high: int) -> int:
    """The size of network the plan pays for: one layer of the widest the space holds.

    Not the space's median width: TPE moves to the wide single layers that won on digits
    (486-1938 units) and Fashion-MNIST (536-2048), and the plan must pay for those. Paying
    for a quarter of the widest, Fashion-MNIST's 30-minute search ran 60-epoch trials at
    1.7 s an epoch where the plan expected 0.58 s, 15% past its share.
    """
    return n_parameters(n_in, (units_high,), n_out)


def _run_seconds(epoch_seconds: float, epochs: int, folds: int) -> float:
    """One trial's seconds: its folds' epochs, the pruner's say after each, the round trip."""
    return epochs * (epoch_seconds * folds + EPOCH_OVERHEAD) + TRIAL_OVERHEAD


@dataclass(frozen=True)
class TrialCost:
    """A search trial's expected seconds on one worker, from its configuration and the cost model.

    The coordinator asks it before a trial starts (``search/coordinator/coordinator.py``), scaled
    by how the trials it has seen compared with it, so that no trial starts that could
    not end within the search's share.
    """

    cost: CostModel
    n_train: int
    n_val: int
    n_in: int
    n_out: int
    folds: int

    @classmethod
    def of(cls, plan: Plan, data: Dataset, folds: int) -> TrialCost:
        return cls(plan.cost, len(data.y_train), len(data.y_val), data.n_features, data.n_classes, folds)

    def __call__(self, config: TrainConfig) -> float:
        params = n_parameters(self.n_in, config.hidden, self.n_out)
        epoch = self.cost.epoch_seconds(self.n_train, self.n_val, params, config.batch_size)
        return _run_seconds(epoch, config.epochs, self.folds)


def plan_budget(budget: float, data: Dataset, workers: int, cost: CostModel, elapsed: float = 0.0) -> Plan:
    """The study's settings for ``budget`` seconds on ``workers`` processes (``elapsed``: spent before)."""
    n_train, n_val = len(data.y_train), len(data.y_val)
    n_in, n_out = data.n_features, data.n_classes
    seconds = {stage: share * budget for stage, share in SHARES.items()}
    search = max(seconds["search"] - elapsed, 0.0) * workers  # worker-seconds
    batches = tuple(b for b in _BATCHES if b <= max(16, n_train // 8)) or (16,)

    def epoch(params: int, batch: int, rows: int = n_train) -> float:
        return cost.epoch_seconds(rows, n_val, params, batch)

    # The space's biggest network, trained at the chosen fidelity on the smallest batch, may
    # cost at most a quarter of the search's wall time: a few such draws (TPE's random
    # start-up draws some) cannot eat the search. One wide layer first (deeper networks
    # cost more and scored no better on digits and Fashion-MNIST); a second one only where
    # two of the widest fit; else narrower.
    wall = max(seconds["search"] - elapsed, 0.0)
    run = _run_seconds
    units_high, layers = _UNITS[1], 2
    while True:
        typical = epoch(_typical_params(n_in, n_out, units_high), 64)
        cv = 1  # tiny data: a holdout split of a few dozen rows ranks trials by noise
        if n_train + n_val < 1000 and search / run(typical, FIDELITIES[-2], 1) >= 300:
            cv = 5
        affordable = [e for e in FIDELITIES if search / run(typical, e, cv) >= TARGET_TRIALS]
        epochs = max(affordable) if affordable else FIDELITIES[0]
        biggest = run(epoch(n_parameters(n_in, (units_high,) * layers, n_out), batches[0]), epochs, cv)
        if biggest <= wall / 4 or (units_high <= 64 and layers == 1):
            break
        if layers == 2:
            layers = 1
        else:
            units_high //= 2
    expected = int(search / run(typical, epochs, cv))
    # finalists: fresh runs of the best configurations, longer than a search trial when it pays,
    # cross-validated on small data (digits: one holdout search, 3-fold finalists, as measured)
    finalist_cv = cv if cv > 1 else (3 if n_train + n_val < 5000 else 1)
    finalist_share = seconds["finalists"] * workers

    def stage(k: int, r: int, e: int, slower: float = 1.0) -> float:
        return k * r * run(typical * slower, e, finalist_cv)

    # Longer runs first (the final networks train as long as the finalists: on large data the
    # epochs are what the score rests on), then more configurations, then repeats.
    options = [(f, k, r) for f in (3, 2, 1) for k, r in ((5, 2), (4, 2), (3, 2), (4, 1), (3, 1))] + [(1, 2, 1)]
    factor, finalists, repeats = next(
        (o for o in options if stage(o[1], o[2], epochs * o[0]) <= finalist_share), options[-1]
    )
    finalist_epochs = epochs * factor
    small_images = data.image_shape is not None and n_train < WARP_MAX_ROWS
    warp = WARP if small_images and finalist_epochs >= WARP_MIN_EPOCHS else None
    if warp is not None:  # the warped runs must still fit
        while finalists > 2 and stage(finalists, repeats, finalist_epochs, WARP_COST) > finalist_share:
            finalists -= 1
    full = FIDELITIES[-3]  # 30 epochs: what a generous plan gives a trial
    needed = (TARGET_TRIALS * run(typical, full, cv) / workers) / SHARES["search"]
    return Plan(
        budget,
        seconds,
        epochs,
        cv,
        finalist_cv,
        expected,
        finalists,
        repeats,
        finalist_epochs,
        warp,
        units_high,
        layers,
        batches,
        typical,
        needed,
        cost,
    )


def minimum_budget(data: Dataset, workers: int, cost: CostModel) -> float:
    """Below this, not one epoch of the smallest network fits in each stage: refused up front."""
    smallest = cost.epoch_seconds(
        len(data.y_train), len(data.y_val), n_parameters(data.n_features, (_UNITS[0],), data.n_classes), 128
    )
    # a search trial and a finalist run of 3 epochs, and one final network, each within its share
    need = max(3 * smallest / SHARES["search"], 3 * smallest / SHARES["finalists"], 3 * smallest / SHARES["final"])
    return need / (1 - MARGIN) + 2.0


def final_networks(seconds_left: float, epoch_seconds: float, epochs: int, workers: int) -> tuple[int, int]:
    """(networks, epochs) of the final ensemble that fit in ``seconds_left``: more networks first, then fewer epochs.

    ``epoch_seconds`` is one epoch of the winner on train + validation, one worker.
    """
    for k in range(ENSEMBLE_MAX, 0, -1):
        rounds = math.ceil(k / workers)
        if rounds * epochs * epoch_seconds <= seconds_left:
            return k, epochs
    fitting = int(seconds_left / max(epoch_seconds, 1e-9))
    return 1, max(1, min(epochs, fitting))
