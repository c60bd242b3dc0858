"""From-scratch NumPy multilayer perceptrons: build, train, evaluate, save.

Knows nothing of Optuna; usable from a notebook::

    from model import TrainConfig, train
    result = train(TrainConfig(hidden=(256, 128), dropout=0.2), X_train, y_train, X_val, y_val)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .activations import ACTIVATIONS
from .config import TrainConfig
from .datasets import DATASETS, Dataset, load_dataset
from .errors import DivergedError
from .losses import LOSSES
from .network import Network
from .train import EpochStats, Training, TrainResult, train

if TYPE_CHECKING:
    from .estimator import MLPClassifier
    from .regressor import MLPRegressor

__all__ = [
    "ACTIVATIONS",
    "DATASETS",
    "Dataset",
    "DivergedError",
    "EpochStats",
    "LOSSES",
    "MLPClassifier",
    "MLPRegressor",
    "Network",
    "TrainConfig",
    "TrainResult",
    "Training",
    "load_dataset",
    "train",
]


def __getattr__(name: str) -> object:
    """The estimators on first use: they import scikit-learn (~0.7 s), which the search's workers never need."""
    if name == "MLPClassifier":
        from .estimator import MLPClassifier

        return MLPClassifier
    if name == "MLPRegressor":
        from .regressor import MLPRegressor

        return MLPRegressor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
