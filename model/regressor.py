"""MLPRegressor: the network fitted to numbers, as a scikit-learn regressor (``score`` is R²).

Everything but the targets is :class:`~model.estimator.BaseMLP`'s. The targets are
standardised here, on the training rows (weighted by ``sample_weight``), because a
network's learning rate, initialisation and ``huber_delta`` all assume outputs of
order 1: a price in the hundreds of thousands would otherwise need a learning rate
no search range holds. Predictions are turned back into y's units. (The service
standardises for its own studies and stores the statistics with the study; this
estimator is for pipelines and notebooks, so it keeps them itself.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score

from .estimator import BaseMLP
from .network import Network
from .train import EpochStats

__all__ = ["MLPRegressor"]


def standardisation(Y: np.ndarray, sample_weight: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(mean, scale) per target column of ``Y`` (n, n_targets), weighted by ``sample_weight``.

    The scale is the standard deviation, or 1 for a (nearly) constant target, which
    standardising would otherwise blow up (its predictions are then its mean).
    """
    mean = np.average(Y, axis=0, weights=sample_weight)
    std = np.sqrt(np.average((Y - mean) ** 2, axis=0, weights=sample_weight))
    constant = std <= 1e-12 * np.maximum(np.abs(mean), 1.0)
    return mean, np.where(constant, 1.0, std)


class MLPRegressor(RegressorMixin, BaseMLP):  # type: ignore[misc]  # sklearn ships no type hints
    """A multilayer perceptron regressor trained by :func:`model.train`, with scikit-learn's API.

    The parameters, ``fit``, ``partial_fit`` and pickling are :class:`BaseMLP`'s;
    ``loss`` is squared_error (``"auto"``) or huber (then ``huber_delta`` is in standard
    deviations of the target). ``y`` is (n,) or (n, n_targets); each target is
    standardised on the training rows (on the first ``partial_fit`` call's rows for
    a stream) and ``predict`` returns numbers in y's units: (n,) for one target, as
    scikit-learn's regressors do, else (n, n_targets).

    Fitted attributes, besides BaseMLP's: ``n_outputs_``, ``target_mean_`` and
    ``target_scale_`` (per target, what the network's outputs are scaled back by);
    ``loss_curve_`` is in standardised units; ``validation_scores_`` holds R².
    """

    _default_loss = "squared_error"
    _regression = True
    _y_checks = {"y_numeric": True, "multi_output": True}

    n_outputs_: int
    target_mean_: np.ndarray
    target_scale_: np.ndarray

    def _targets(
        self, y: np.ndarray, sample_weight: np.ndarray | None, keep: bool
    ) -> tuple[np.ndarray, int, dict[str, Any]]:
        Y = np.asarray(y, np.float64).reshape(len(y), -1)  # (n, n_targets)
        if keep:
            if Y.shape[1] != self.n_outputs_:
                raise ValueError(f"y has {Y.shape[1]} target(s) but the fitted network predicts {self.n_outputs_}")
            mean, scale = self.target_mean_, self.target_scale_
        else:
            mean, scale = standardisation(Y, sample_weight)
        targets = ((Y - mean) / scale).astype(np.float32)
        return targets, Y.shape[1], {"n_outputs_": Y.shape[1], "target_mean_": mean, "target_scale_": scale}

    def _validation_score(
        self, net: Network, X: np.ndarray, targets: np.ndarray, w: np.ndarray | None, stats: EpochStats
    ) -> float:
        # R² is the same in standardised units and in y's: it is invariant to a per-target affine map
        return float(r2_score(targets, net.predict(X), sample_weight=w))

    def partial_fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> MLPRegressor:
        """One epoch on (X, y); the first call's rows fix the targets' standardisation."""
        first = not hasattr(self, "network_")
        X, y, w = self._training_data(X, y, sample_weight, first)
        targets, n_outputs, state = self._targets(y, w, keep=not first)
        self._partial_fit(X, targets, n_outputs, w, state)
        return self

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The predicted numbers in y's units: (n,) for one target, else (n, n_targets)."""
        rows = self._rows(X)  # before network_ is looked up: NotFittedError, not AttributeError
        outputs = self.network_.predict(rows)  # (n,) or (n, n_targets), standardised
        if outputs.ndim == 1:
            return outputs * self.target_scale_[0] + self.target_mean_[0]
        return outputs * self.target_scale_ + self.target_mean_

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # y may be (n, n_targets): one output unit per target
        return tags
