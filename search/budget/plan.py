"""``--budget``: the whole job in a wall-clock time, planned from measured costs.

A budget is the user's unit: "30 minutes for the best network you can find".
It is spent in three stages, each with its share (``shares.SHARES``): the
search, the finalists' fresh runs, and the final ensemble. ``plan_budget``
turns what this data costs on this machine (``cost.probe``) into the study's
settings, one stage after the other: the search (the space scaled to the
data: widths the budget can pay for, batch sizes the rows allow; the
fidelity, epochs per trial; cross-validation where the data is small enough
to afford it), then the finalist stage. The final ensemble is sized when its
stage begins, from what is left (``ensemble.py``).

Only the training and validation splits are read here; the test split is
read once, by the final networks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from model import TrainConfig
from model.datasets import Dataset
from model.periodic import periodic_width
from search.budget.cost import CostModel, n_parameters
from search.budget.shares import (
    EPOCH_OVERHEAD,
    FIDELITIES,
    FINALIST_SIZES,
    FULL_FIDELITY,
    MARGIN,
    SHARES,
    TARGET_TRIALS,
    TRIAL_OVERHEAD,
    WARP,
    WARP_COST,
    WARP_MAX_ROWS,
    WARP_MIN_EPOCHS,
    describe_plan,
)
from search.study.space import Choice, Dim, Fixed, Float, Int

__all__ = ["Plan", "TrialCost", "budget_space", "minimum_budget", "plan_budget"]

_EMBEDDED_MAX = 32  # a table with more numbers is searched without embeddings: 8 inputs each would cost its trials
_UNITS = (16, 2048)  # narrowest and widest hidden layers a budgeted space may hold
_BATCHES = (16, 32, 64, 128, 256, 512)
# The space's widest shape (units, layers), most generous first: two of the widest layers,
# one (deeper networks cost more and scored no better on digits and Fashion-MNIST), then
# narrower ones, down to 64 units that every plan affords.
_SHAPES: tuple[tuple[int, int], ...] = ((2048, 2), (2048, 1), (1024, 1), (512, 1), (256, 1), (128, 1), (64, 1))
_TYPICAL_BATCH = 64  # the batch a typical network's epoch is costed at
# Tiny data: a holdout split of a few dozen rows ranks trials by noise, so under
# _CV_MAX_ROWS rows (train + validation) the search is cross-validated (_CV folds)
# when its share affords _CV_TRIALS holdout trials of _CV_FIDELITY epochs.
_CV = 5
_CV_MAX_ROWS = 1000
_CV_FIDELITY = 40
_CV_TRIALS = 300
# Small data: the finalists are cross-validated even when the search was not (digits:
# one holdout search, 3-fold finalists, as measured).
_FINALIST_CV = 3
_FINALIST_CV_MAX_ROWS = 5000
# The finalist stage's options, the first that fits wins: (finalist epochs over the search
# fidelity, configurations, repeats). Longer runs first (the final networks train as long as
# the finalists: on large data the epochs are what the score rests on), then more
# configurations, then repeats; the last is taken when none fits.
_FINALIST_OPTIONS: tuple[tuple[int, int, int], ...] = (
    *((factor, k, r) for factor in (3, 2, 1) for k, r in FINALIST_SIZES[:-1]),
    (1, *FINALIST_SIZES[-1]),
)


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
    needed: float  # the budget a full plan needs (TARGET_TRIALS trials of FULL_FIDELITY epochs)
    cost: CostModel
    table: bool = False  # rows of a table (no image layout): the space for tables (absent from older stored plans)
    embeddings: bool = False  # a table with numbers: its space searches learned embeddings of them (absent: none)

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
            "space": budget_space(
                self.units_high, self.layers, self.batches, table=self.table, embeddings=self.embeddings
            ),  # fmt: skip
        }

    def describe(self) -> list[tuple[str, str]]:
        """(label, text) rows: what was measured and what it bought, for the run's summary."""
        return describe_plan(self.to_json())

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["batches"] = list(self.batches)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        """The plan as stored; what the job wrote on it when it ended (``ended``) is not the plan's."""
        data = {k: v for k, v in data.items() if k != "ended"}
        return cls(**(data | {"batches": tuple(data["batches"]), "cost": CostModel(**data["cost"])}))


def budget_space(
    units_high: int, layers: int, batches: tuple[int, ...], table: bool = False, embeddings: bool = False
) -> dict[str, Dim]:
    """The space a budgeted study searches, scaled to the data by the plan.

    One or two wide layers, Nesterov momentum and a cosine schedule laid over
    the trial's epochs: the recipe the hand-tuned digits and Fashion-MNIST
    studies converged to, here with widths the budget can pay for and batch
    sizes the rows allow. A table (``table``: data without an image layout)
    trains with Adam instead, at Adam's rates: by cross-validation on the
    development tables' training rows it scored as well or better on each, and
    never diverged where Nesterov at a high rate did (docs/search-quality.md,
    "Tables"). The cost probe times a momentum step for both (``cost.probe``);
    Adam's costs up to 1.2 times more on a table's narrow inputs, and a run
    scales the model by what its trials measured. Sigmoid is left out (it
    trained worse than the others in every measurement here). A table with
    numbers (``embeddings``) searches learned embeddings of them (``plr``, 8 units a
    number, or none; their starting frequencies' sigma 0.01-1 when on): by
    cross-validation with the best epoch kept, as a trial keeps it, they gained 1.5-3.7
    points of R² on Computers, a table boosted trees lead, and moved the others by
    -0.5 to +0.8 points, which sigma and the table decide (docs/search-quality.md,
    "Tables"); not for more than ``_EMBEDDED_MAX`` numbers, whose first layer they would
    widen past what a search's trials can pay for. The frozen periodic features (``periodic``) are not searched: a
    budget's search that could choose them ran a tenth of the trials and overran
    its share; a preset's ``[space]`` may add them.
    """
    first_map: dict[str, Dim] = {"plr": Choice((0, 8)), "plr_sigma": Float(0.01, 1.0, log=True)} if embeddings else {}
    return {
        "n_layers": Int(1, layers) if layers > 1 else Fixed(1),
        "units": Int(_UNITS[0], units_high, log=True),
        "batch_size": Choice(batches),
        "learning_rate": Float(1e-4, 1e-2, log=True) if table else Float(1e-3, 0.3, log=True),
        "optimizer": Fixed("adam" if table else "nesterov"),
        "momentum": Fixed(0.9),  # Adam's beta1
        "lr_schedule": Fixed("cosine"),
        "dropout": Float(0.0, 0.5),
        "l2": Float(1e-6, 1e-2, log=True, zero=True),
        "activation": Choice(("relu", "leaky_relu", "tanh")),
        **first_map,
    }


def _trial_seconds(epoch_seconds: float, epochs: int, folds: int) -> float:
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
    numbers: int = 0  # the table's numbers: periodic features and learned embeddings widen each

    @classmethod
    def of(cls, plan: Plan, data: Dataset, folds: int) -> TrialCost:
        return cls(plan.cost, len(data.y_train), len(data.y_val), data.n_features, data.n_classes, folds,
                   len(data.number_columns))  # fmt: skip

    @property
    def periodic_in(self) -> int:
        """The first layer's inputs periodic features (model/periodic.py) add, when a trial has them."""
        return periodic_width(0, range(self.numbers))

    def __call__(self, config: TrainConfig) -> float:
        extra = self.numbers * config.plr if config.plr else (self.periodic_in if config.periodic else 0)
        params = n_parameters(self.n_in + extra, config.hidden, self.n_out)
        epoch = self.cost.epoch_seconds(self.n_train, self.n_val, params, config.batch_size)
        return _trial_seconds(epoch, config.epochs, self.folds)


@dataclass(frozen=True)
class _Search:
    """The search stage of a plan: its space's widest shape, its folds and fidelity."""

    units_high: int
    layers: int
    typical: float  # seconds of a typical network's epoch (_typical_params), one worker
    cv: int
    epochs: int


def _typical_params(n_in: int, n_out: int, units_high: int) -> int:
    """The size of network the plan pays for: one layer of the widest the space holds.

    Not the space's median width: TPE moves to the wide single layers that won on digits
    (486-1938 units) and Fashion-MNIST (536-2048), and the plan must pay for those. Paying
    for a quarter of the widest, Fashion-MNIST's 30-minute search ran 60-epoch trials at
    1.7 s an epoch where the plan expected 0.58 s, 15% past its share.
    """
    return n_parameters(n_in, (units_high,), n_out)


def _search_cv(n_rows: int, worker_seconds: float, typical: float) -> int:
    """5 folds for tiny data whose search can afford them, else one holdout split."""
    if n_rows < _CV_MAX_ROWS and worker_seconds / _trial_seconds(typical, _CV_FIDELITY, 1) >= _CV_TRIALS:
        return _CV
    return 1


def _fidelity(worker_seconds: float, typical: float, cv: int) -> int:
    """The most epochs a trial may train with TARGET_TRIALS of them in the search's worker-seconds."""
    affordable = [e for e in FIDELITIES if worker_seconds / _trial_seconds(typical, e, cv) >= TARGET_TRIALS]
    return max(affordable) if affordable else FIDELITIES[0]


def _search_stage(data: Dataset, cost: CostModel, worker_seconds: float, wall: float, smallest_batch: int) -> _Search:
    """The most generous shape of space whose biggest network the search can afford, with its folds and fidelity.

    The space's biggest network, trained at the chosen fidelity on the smallest batch, may
    cost at most a quarter of the search's wall time: a few such draws (TPE's random
    start-up draws some) cannot eat the search. The narrowest shape is taken if none fits.
    """
    n_train, n_val, n_in, n_out = len(data.y_train), len(data.y_val), data.n_features, data.n_classes
    for units_high, layers in _SHAPES:
        typical = cost.epoch_seconds(n_train, n_val, _typical_params(n_in, n_out, units_high), _TYPICAL_BATCH)
        cv = _search_cv(n_train + n_val, worker_seconds, typical)
        search = _Search(units_high, layers, typical, cv, _fidelity(worker_seconds, typical, cv))
        biggest = cost.epoch_seconds(n_train, n_val, n_parameters(n_in, (units_high,) * layers, n_out), smallest_batch)
        if _trial_seconds(biggest, search.epochs, cv) <= wall / 4:
            break
    return search


@dataclass(frozen=True)
class _Finalists:
    """The finalist stage of a plan."""

    cv: int
    count: int  # configurations
    repeats: int
    epochs: int
    warp: float | None


def _finalist_stage(data: Dataset, search: _Search, worker_seconds: float) -> _Finalists:
    """Fresh runs of the best configurations: longer than a search trial when it pays, cross-validated on small data.

    Images warp where the runs train long enough (``shares.WARP_MIN_EPOCHS``): fewer
    configurations then, so that the dearer warped runs still fit.
    """
    n_train, n_rows = len(data.y_train), len(data.y_train) + len(data.y_val)
    cv = search.cv if search.cv > 1 else (_FINALIST_CV if n_rows < _FINALIST_CV_MAX_ROWS else 1)

    def seconds(k: int, repeats: int, epochs: int, slower: float = 1.0) -> float:
        return k * repeats * _trial_seconds(search.typical * slower, epochs, cv)

    factor, count, repeats = next(
        (o for o in _FINALIST_OPTIONS if seconds(o[1], o[2], search.epochs * o[0]) <= worker_seconds),
        _FINALIST_OPTIONS[-1],
    )
    epochs = search.epochs * factor
    small_images = data.image_shape is not None and n_train < WARP_MAX_ROWS
    warp = WARP if small_images and epochs >= WARP_MIN_EPOCHS else None
    if warp is not None:  # the warped runs must still fit
        while count > 2 and seconds(count, repeats, epochs, WARP_COST) > worker_seconds:
            count -= 1
    return _Finalists(cv, count, repeats, epochs, warp)


def plan_budget(budget: float, data: Dataset, workers: int, cost: CostModel, elapsed: float = 0.0) -> Plan:
    """The study's settings for ``budget`` seconds on ``workers`` processes (``elapsed``: spent before)."""
    seconds = {stage: share * budget for stage, share in SHARES.items()}
    wall = max(seconds["search"] - elapsed, 0.0)  # the search's wall time
    batches = tuple(b for b in _BATCHES if b <= max(16, len(data.y_train) // 8)) or (16,)
    search = _search_stage(data, cost, wall * workers, wall, batches[0])
    finalists = _finalist_stage(data, search, seconds["finalists"] * workers)
    full_search = TARGET_TRIALS * _trial_seconds(search.typical, FULL_FIDELITY, search.cv) / workers
    return Plan(
        budget=budget,
        seconds=seconds,
        epochs=search.epochs,
        cv=search.cv,
        finalist_cv=finalists.cv,
        expected_trials=int(wall * workers / _trial_seconds(search.typical, search.epochs, search.cv)),
        finalists=finalists.count,
        finalist_repeats=finalists.repeats,
        finalist_epochs=finalists.epochs,
        warp=finalists.warp,
        units_high=search.units_high,
        layers=search.layers,
        batches=batches,
        typical_epoch_seconds=search.typical,
        needed=full_search / SHARES["search"],
        cost=cost,
        table=data.image_shape is None,
        embeddings=data.image_shape is None and 0 < len(data.number_columns) <= _EMBEDDED_MAX,
    )


def minimum_budget(data: Dataset, workers: int, cost: CostModel) -> float:
    """Below this, three epochs of the smallest network do not fit in each stage's share: refused up front."""
    smallest = cost.epoch_seconds(
        len(data.y_train), len(data.y_val), n_parameters(data.n_features, (_UNITS[0],), data.n_classes), 128
    )
    # a search trial and a finalist run of 3 epochs, and one final network, each within its share
    need = max(3 * smallest / SHARES["search"], 3 * smallest / SHARES["finalists"], 3 * smallest / SHARES["final"])
    return need / (1 - MARGIN) + 2.0
