"""TrainConfig, and RANGES: the one statement of the values each numeric setting may take.

``TrainConfig`` checks itself against ``RANGES`` and the name tables
(``ACTIVATIONS``, ``LOSSES``, ``OPTIMIZERS``, ``SCHEDULES``); the search space
(search/study/space.py) checks a preset's bounds against the same ``RANGES``, so a
range is written once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .activations import ACTIVATIONS
from .losses import LOSSES
from .optim import OPTIMIZERS, SCHEDULES

__all__ = ["RANGES", "Interval", "TrainConfig"]


@dataclass(frozen=True, slots=True)
class Interval:
    """The values a numeric setting may take: from ``low`` to ``high``, either end open or closed."""

    low: float
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    integer: bool = False  # whole numbers only

    def __contains__(self, value: float) -> bool:
        """Whether ``value`` lies in the interval (NaN never does)."""
        above = self.low < value if self.low_open else self.low <= value
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def __str__(self) -> str:
        """In interval notation, e.g. ``[0, 1)``."""
        close = ")" if self.high_open or self.high == math.inf else "]"
        return f"{'(' if self.low_open else '['}{self.low:g}, {self.high:g}{close}"

    def describe(self) -> str:
        """The rule in words, for an error message: ``in [0, 1)``, ``an int >= 1``, ``a finite number > 0``."""
        if self.high != math.inf:
            return f"in {self}"
        if self.integer:
            return f"an int >= {self.low:g}"
        return f"a finite number {'>' if self.low_open else '>='} {self.low:g}"


# name -> the values TrainConfig accepts for that field
RANGES: dict[str, Interval] = {
    "leaky_slope": Interval(0.0, 1.0, high_open=True),
    "dropout": Interval(0.0, 1.0, high_open=True),
    "momentum": Interval(0.0, 1.0, high_open=True),
    "l1": Interval(0.0),
    "l2": Interval(0.0),
    "weight_decay": Interval(0.0),
    "label_smoothing": Interval(0.0, 1.0, high_open=True),
    "huber_delta": Interval(0.0, low_open=True),
    "periodic": Interval(0.0),
    "plr": Interval(0, integer=True),
    "plr_sigma": Interval(0.0, low_open=True),
    "learning_rate": Interval(0.0, low_open=True),
    "lr_decay": Interval(0.0, low_open=True),
    "batch_size": Interval(1, integer=True),
    "epochs": Interval(1, integer=True),
    "lr_step": Interval(1, integer=True),
    "warmup": Interval(0, integer=True),
    "augment_shift": Interval(0, integer=True),
    "augment_warp": Interval(0.0),
    "seed": Interval(0, integer=True),
}


def _is_int(x: object) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _is_real(x: object) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) and math.isfinite(x)


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Everything that defines one training run; checks itself on construction.

    The numeric fields' valid values are in ``RANGES``.
    """

    hidden: tuple[int, ...] = (128,)  # hidden layer widths, input to output
    activation: str = "relu"  # key of ACTIVATIONS
    leaky_slope: float = 0.01  # negative-side slope of leaky_relu
    dropout: float = 0.0  # probability of dropping a hidden unit
    l1: float = 0.0  # penalty l1 * sum(|W|) over weights (not biases)
    l2: float = 0.0  # penalty 0.5 * l2 * sum(W**2) over weights (not biases)
    weight_decay: float = 0.0  # decoupled (AdamW): W <- W * (1 - lr * weight_decay) each step, weights only
    loss: str = "cross_entropy"  # key of LOSSES: cross_entropy (classes); squared_error or huber (numbers)
    label_smoothing: float = 0.0  # cross_entropy only: target (1 - s) * onehot + s / n_classes
    huber_delta: float = 1.0  # huber only: residuals beyond it (standardised target units) count linearly
    periodic: float = 0.0  # sigma of the frozen frequencies of periodic features of a table's numbers; 0 = off
    plr: int = 0  # learned embeddings of a table's numbers (model/plr.py), units per number; 0 = off
    plr_sigma: float = 0.1  # the starting frequencies of those embeddings: N(0, plr_sigma), then trained
    optimizer: str = "momentum"  # key of OPTIMIZERS
    learning_rate: float = 0.01  # base learning rate
    momentum: float = 0.9  # mu for momentum/nesterov; beta1 for adam
    batch_size: int = 128  # rows per step; larger than the data set means full batch
    epochs: int = 30  # maximum number of passes over the training set
    lr_schedule: str = "none"  # one of SCHEDULES (cosine: to ~0 at the last epoch)
    lr_decay: float = 0.5  # step: lr * decay**(e // lr_step); exponential: lr * decay**e (e 0-based)
    lr_step: int = 10  # epochs between decays for "step"
    warmup: int = 0  # epochs of linear learning-rate warm-up from ~0, on top of any schedule
    augment_shift: int = 0  # shift training images by up to this many pixels (train(..., image_shape=...))
    augment_flip: bool = False  # mirror training images left-right at random (train(..., image_shape=...))
    augment_warp: float = 0.0  # strength of a random small affine warp per training image (augment.Warp); 0 = off
    patience: int | None = None  # early stopping on validation loss; None = off
    seed: int = 0  # weights, shuffling, dropout masks, shifts/flips and warps (five independent streams)

    def __post_init__(self) -> None:
        hidden = self.hidden
        if isinstance(hidden, list):
            hidden = tuple(hidden)
        if not (isinstance(hidden, tuple) and hidden and all(_is_int(h) and h > 0 for h in hidden)):
            raise ValueError(f"hidden must be a non-empty tuple of positive ints, got hidden={self.hidden!r}")
        object.__setattr__(self, "hidden", tuple(int(h) for h in hidden))
        self._check_choice("activation", tuple(ACTIVATIONS))
        self._check_choice("loss", tuple(LOSSES))
        self._check_choice("optimizer", tuple(OPTIMIZERS))
        self._check_choice("lr_schedule", SCHEDULES)
        for name, interval in RANGES.items():
            value = getattr(self, name)
            if not ((_is_int(value) if interval.integer else _is_real(value)) and value in interval):
                raise ValueError(f"{name} must be {interval.describe()}, got {name}={value!r}")
        if not isinstance(self.augment_flip, (bool, np.bool_)):
            raise ValueError(f"augment_flip must be True or False, got augment_flip={self.augment_flip!r}")
        if self.patience is not None and not (_is_int(self.patience) and self.patience >= 1):
            raise ValueError(f"patience must be None or an int >= 1, got patience={self.patience!r}")
        if self.plr and self.periodic:
            raise ValueError(
                f"periodic and plr are two first maps, choose one: got periodic={self.periodic!r} and plr={self.plr!r}"
            )
        if self.label_smoothing and LOSSES[self.loss].regression:
            raise ValueError(
                f"label_smoothing applies to cross_entropy only, got label_smoothing={self.label_smoothing!r} "
                f"with loss={self.loss!r}"
            )

    def _check_choice(self, name: str, choices: tuple[str, ...]) -> None:
        value = getattr(self, name)
        if value not in choices:
            raise ValueError(f"{name} must be one of {', '.join(choices)}, got {name}={value!r}")
