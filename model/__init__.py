"""From-scratch NumPy multilayer perceptrons: build, train, evaluate, save.

Knows nothing of Optuna; usable from a notebook::

    from model import TrainConfig, train
    result = train(TrainConfig(hidden=(256, 128), dropout=0.2), X_train, y_train, X_val, y_val)
"""

from __future__ import annotations

from .activations import ACTIVATIONS
from .config import TrainConfig
from .datasets import DATASETS, Dataset, load_dataset
from .errors import DivergedError
from .network import Network
from .train import EpochStats, Training, TrainResult, train

__all__ = [
    "ACTIVATIONS",
    "DATASETS",
    "Dataset",
    "DivergedError",
    "EpochStats",
    "Network",
    "TrainConfig",
    "TrainResult",
    "Training",
    "load_dataset",
    "train",
]
