"""MLPClassifier, and BaseMLP: the network as a scikit-learn estimator, for pipelines, cross-validation and searches.

The rest of model/ takes float32 rows and labels 0..k-1 (or standardised float
targets) and knows nothing of scikit-learn; this module does the estimator's share
(input checks, label encoding, the early-stopping split, sample weights, warm starts,
streaming) and leaves the training to :class:`~model.train.Training`. The
hyperparameters are ``TrainConfig``'s fields under the same names, their defaults
read from it. :class:`BaseMLP` holds everything the classifier and the regressor
(model/regressor.py) share; each adds only what its task decides: how y becomes
the network's targets, and how predictions become labels or numbers. scikit-learn
is imported here only, and ``model`` imports this module on first use: the
search's workers import ``model`` and never need it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .config import TrainConfig
from .errors import DivergedError
from .losses import LOSSES
from .network import Network
from .train import EpochStats, Training
from .weighting import check_sample_weight

__all__ = ["BaseMLP", "MLPClassifier"]

_DEFAULT = TrainConfig()
_Estimator = TypeVar("_Estimator", bound="BaseMLP")
_Split = tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray, np.ndarray, np.ndarray | None]


def _encode(y: np.ndarray, classes: ArrayLike | None) -> tuple[np.ndarray, np.ndarray]:
    """(the sorted classes, y as indices into them); the classes are y's own unless given.

    Raises ValueError for a label outside the given classes, or for fewer than
    two classes, which leave a classifier nothing to learn.
    """
    check_classification_targets(y)  # refuses continuous or multi-output y, as every sklearn classifier does
    encoder = LabelEncoder().fit(y if classes is None else classes)
    if len(encoder.classes_) < 2:
        raise ValueError(f"y has 1 class ({encoder.classes_[0]!r}); a classifier needs at least 2")
    return encoder.classes_, encoder.transform(y)


def _diverged(reason: str) -> DivergedError:
    """The error for a run that diverged: fit and partial_fit raise rather than keep weights nobody asked for."""
    return DivergedError(f"training diverged ({reason}); a lower learning_rate may help")


def _network(config: dict[str, Any], parameters: np.ndarray) -> Network:
    """The network that ``Network.config()`` describes, holding ``parameters`` (a ``flat_parameters``)."""
    network = Network(**config, seed=0)  # its random weights are overwritten
    network.copy_parameters_from(parameters)
    return network


def _for_prediction(trained: Network) -> Network:
    """A float64 copy of the float32 network training made.

    A float32 GEMM rounds a row differently with its place in the batch (BLAS's
    edge kernels), by ~1e-7, so a row's probabilities would depend on the rows
    predicted with it; scikit-learn's checks ask that they do not, and in
    float64 the difference is ~1e-16.
    """
    return _network({**trained.config(), "dtype": "float64"}, trained.flat_parameters)


class BaseMLP(BaseEstimator):  # type: ignore[misc]  # sklearn ships no type hints
    """What MLPClassifier and MLPRegressor share: parameters, checks, fit, partial_fit, pickling.

    Every ``TrainConfig`` field is a parameter of the same name and default,
    checked when ``fit`` builds the config (``seed`` plays the part of
    ``random_state``), except ``loss``: its default ``"auto"`` is the estimator's own
    (cross_entropy for the classifier, squared_error for the regressor), and only a
    loss of the estimator's task is accepted. ``image_shape`` is what augmentation
    needs (see ``train``). The rest are scikit-learn's:

    - ``warm_start``: ``fit`` goes on from the current weights (with a fresh
      optimizer and schedule) instead of new ones.
    - ``early_stopping``: hold out a ``validation_fraction`` of the rows (stratified
      for a classifier) and stop once their loss has not improved for ``patience``
      epochs, keeping the best epoch's weights. It needs ``patience``; ``patience``
      alone, like scikit-learn's ``n_iter_no_change``, judges the training rows.

    ``fit(X, y, sample_weight=None)``: weights (n,), finite and >= 0, not all 0,
    weight each row in every batch's mean loss (and in the held-out rows' loss under
    early stopping), as scikit-learn's MLP does: an integer weight counts a row that
    many times, 0 leaves it out. ``partial_fit`` trains one epoch per call on the rows
    given, continuing one run of ``epochs`` epochs (its optimizer state, schedule and
    random streams); once that run is over, or a parameter has changed, the next call
    starts a new run from the current weights. It never stops early.

    Training that diverges raises :class:`~model.DivergedError` and leaves the
    estimator as it was: a grid search then scores the candidate as failed.

    Fitted attributes: ``n_features_in_`` (``feature_names_in_`` from a DataFrame),
    ``network_`` (the trained :class:`~model.Network` in float64, which prediction
    computes in; it can be saved), ``loss_curve_`` (mean training loss per epoch,
    penalty excluded) and ``n_iter_`` (epochs), both summed over warm-started fits and
    ``partial_fit`` calls as in scikit-learn, and ``validation_scores_`` (the last fit's
    ``score`` per epoch on the held-out rows; None without early stopping).
    """

    _default_loss: ClassVar[str]  # what loss="auto" means
    _regression: ClassVar[bool]  # which losses of LOSSES the estimator takes
    _y_checks: ClassVar[dict[str, bool]] = {}  # validate_data's options for y

    network_: Network
    loss_curve_: list[float]
    n_iter_: int
    validation_scores_: list[float] | None
    _training: Training | None  # partial_fit's run, carried from call to call

    def __init__(
        self,
        *,
        hidden: Sequence[int] = _DEFAULT.hidden,
        activation: str = _DEFAULT.activation,
        leaky_slope: float = _DEFAULT.leaky_slope,
        dropout: float = _DEFAULT.dropout,
        l1: float = _DEFAULT.l1,
        l2: float = _DEFAULT.l2,
        weight_decay: float = _DEFAULT.weight_decay,
        loss: str = "auto",
        label_smoothing: float = _DEFAULT.label_smoothing,
        huber_delta: float = _DEFAULT.huber_delta,
        periodic: float = _DEFAULT.periodic,
        plr: int = _DEFAULT.plr,
        plr_sigma: float = _DEFAULT.plr_sigma,
        optimizer: str = _DEFAULT.optimizer,
        learning_rate: float = _DEFAULT.learning_rate,
        momentum: float = _DEFAULT.momentum,
        batch_size: int = _DEFAULT.batch_size,
        epochs: int = _DEFAULT.epochs,
        lr_schedule: str = _DEFAULT.lr_schedule,
        lr_decay: float = _DEFAULT.lr_decay,
        lr_step: int = _DEFAULT.lr_step,
        warmup: int = _DEFAULT.warmup,
        augment_shift: int = _DEFAULT.augment_shift,
        augment_flip: bool = _DEFAULT.augment_flip,
        augment_warp: float = _DEFAULT.augment_warp,
        patience: int | None = _DEFAULT.patience,
        seed: int = _DEFAULT.seed,
        image_shape: tuple[int, ...] | None = None,
        warm_start: bool = False,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
    ) -> None:
        # scikit-learn's rule: store the parameters untouched; fit checks them
        self.hidden = hidden
        self.activation = activation
        self.leaky_slope = leaky_slope
        self.dropout = dropout
        self.l1 = l1
        self.l2 = l2
        self.weight_decay = weight_decay
        self.loss = loss
        self.label_smoothing = label_smoothing
        self.huber_delta = huber_delta
        self.periodic = periodic
        self.plr = plr
        self.plr_sigma = plr_sigma
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.batch_size = batch_size
        self.epochs = epochs
        self.lr_schedule = lr_schedule
        self.lr_decay = lr_decay
        self.lr_step = lr_step
        self.warmup = warmup
        self.augment_shift = augment_shift
        self.augment_flip = augment_flip
        self.augment_warp = augment_warp
        self.patience = patience
        self.seed = seed
        self.image_shape = image_shape
        self.warm_start = warm_start
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction

    # ---------------------------------------------------------- what each task decides
    def _targets(
        self, y: np.ndarray, sample_weight: np.ndarray | None, keep: bool
    ) -> tuple[np.ndarray, int, dict[str, Any]]:
        """(y as the network's targets, the output width, the fitted attributes to set once training succeeds).

        ``keep``: go on with the fitted encoding (warm start, a later partial_fit call).
        """
        raise NotImplementedError

    def _stratify(self, targets: np.ndarray) -> np.ndarray | None:
        """What the early-stopping split is stratified by (None: not stratified)."""
        return None

    def _validation_score(
        self, net: Network, X: np.ndarray, targets: np.ndarray, w: np.ndarray | None, stats: EpochStats
    ) -> float:
        """The epoch's ``score`` on the held-out rows, for ``validation_scores_``."""
        raise NotImplementedError

    # --------------------------------------------------------------------- shared
    def _config(self) -> TrainConfig:
        """The parameters as a TrainConfig, which checks them; ``loss`` must be one of this task's."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(TrainConfig)}
        values["loss"] = self._default_loss if self.loss == "auto" else self.loss
        allowed = [name for name, loss in LOSSES.items() if loss.regression == self._regression]
        if values["loss"] not in allowed:
            raise ValueError(
                f"loss must be auto or one of {', '.join(allowed)} for {type(self).__name__}, got loss={self.loss!r}"
            )
        return TrainConfig(**values)

    def _training_data(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None, first: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(X, y, sample_weight) checked; X as float32, what training computes in, in C order for cheap row gathers.

        ``first``: (X, y) starts a new fit, which sets ``n_features_in_`` rather than checking against it.
        """
        X_checked, y_checked = validate_data(self, X, y, reset=first, dtype=np.float32, order="C", **self._y_checks)
        w = None if sample_weight is None else check_sample_weight(sample_weight, len(X_checked))
        return X_checked, y_checked, w

    def _rows(self, X: ArrayLike) -> np.ndarray:
        """X checked against the fit, in the network's dtype."""
        check_is_fitted(self)
        X_checked: np.ndarray = validate_data(self, X, reset=False, dtype=self.network_.dtype)
        return X_checked

    def _split(self, X: np.ndarray, y: np.ndarray, w: np.ndarray | None, config: TrainConfig) -> _Split:
        """(X_train, y_train, w_train, X_val, y_val, w_val), the validation rows being those ``patience`` judges.

        Held out under early_stopping, else the training rows themselves; without
        patience just one of them: Training validates every epoch, but nothing reads it.
        """
        if self.early_stopping:
            if config.patience is None:
                raise ValueError("early_stopping=True needs patience, the epochs without improvement to stop after")
            parts = train_test_split(
                *([X, y] if w is None else [X, y, w]),
                test_size=self.validation_fraction, random_state=config.seed, stratify=self._stratify(y),
            )  # fmt: skip
            X_train, X_val, y_train, y_val = parts[:4]
            w_train, w_val = parts[4:] if w is not None else (None, None)
            return X_train, y_train, w_train, X_val, y_val, w_val
        if config.patience is not None:
            return X, y, w, X, y, w
        return X, y, w, X[:1], y[:1], None

    def _set_fitted(self, state: dict[str, Any], network: Network, run: Training | None) -> None:
        for name, value in state.items():
            setattr(self, name, value)
        self.network_, self._training = _for_prediction(network), run

    def fit(self: _Estimator, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> _Estimator:
        """Train on (X, y), rows weighted by ``sample_weight``; from the current weights under ``warm_start``."""
        warm = self.warm_start and hasattr(self, "network_")
        X, y, w = self._training_data(X, y, sample_weight, first=not warm)
        targets, n_outputs, state = self._targets(y, w, keep=warm)
        config = self._config()
        X_train, y_train, w_train, X_val, y_val, w_val = self._split(X, targets, w, config)
        run = Training(
            config, X_train, y_train, X_val, y_val, n_classes=n_outputs, image_shape=self.image_shape,
            initial=self.network_ if warm else None, sample_weight=w_train, val_sample_weight=w_val,
        )  # fmt: skip
        scores: list[float] = []
        while (stats := run.step()) is not None:
            if self.early_stopping:
                scores.append(self._validation_score(run.net, X_val, y_val, w_val, stats))
        result = run.finish()
        if result.outcome == "diverged":
            raise _diverged(result.reason)
        self._set_fitted(state, result.network, None)
        self.loss_curve_ = (self.loss_curve_ if warm else []) + [s.train_loss for s in result.history]
        self.n_iter_ = len(self.loss_curve_)
        self.validation_scores_ = scores if self.early_stopping else None
        return self

    def _partial_fit(
        self, X: np.ndarray, targets: np.ndarray, n_outputs: int, w: np.ndarray | None, state: dict[str, Any]
    ) -> None:
        """One epoch of the current run (or of a new one) on these rows; see the class docstring."""
        first = not hasattr(self, "network_")
        config = dataclasses.replace(self._config(), patience=None)
        run = getattr(self, "_training", None)
        if run is None or run.done or run.config != config:
            run = Training(
                config,
                X,
                targets,
                X[:1],  # the validation row: partial_fit never stops early, so nothing reads its loss
                targets[:1],
                n_classes=n_outputs,
                image_shape=self.image_shape,
                initial=None if first else self.network_,
                sample_weight=w,
            )
        else:
            run.use_data(X, targets, w)
        stats = run.step()
        if stats is None:  # diverged: the run's weights are not finite, network_ is still the last call's
            self._training = None
            raise _diverged(run.result.reason)
        self._set_fitted(state, run.net, run)
        self.loss_curve_ = getattr(self, "loss_curve_", []) + [stats.train_loss]
        self.n_iter_ = len(self.loss_curve_)
        self.validation_scores_ = None

    def __getstate__(self) -> dict[str, Any]:
        """The state with the network as (architecture, weights), and without a partial_fit run.

        Pickle copies a network's arrays one by one, so its layers' weights would
        no longer be views of ``flat_parameters``: they would be stored twice, and
        ``copy_parameters_from`` would then change arrays that prediction never
        reads. The run holds the last chunk's rows, buffers and unpicklable
        augmenters; the next ``partial_fit`` starts a new run instead.
        """
        state: dict[str, Any] = dict(super().__getstate__())
        state.pop("_training", None)
        if "network_" in state:
            state["network_"] = (self.network_.config(), self.network_.flat_parameters)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Rebuild the network that :meth:`__getstate__` took apart."""
        if "network_" in state:
            state = {**state, "network_": _network(*state["network_"])}
        super().__setstate__(state)


class MLPClassifier(ClassifierMixin, BaseMLP):  # type: ignore[misc]  # sklearn ships no type hints
    """A multilayer perceptron classifier trained by :func:`model.train`, with scikit-learn's API.

    The parameters, ``fit``, ``partial_fit`` and pickling are :class:`BaseMLP`'s;
    ``loss`` is cross_entropy (``"auto"``), which ``label_smoothing`` smooths. Class
    weights are sample weights: ``fit(X, y, sample_weight=compute_sample_weight("balanced", y))``.
    Under ``warm_start`` or ``partial_fit``, ``y`` may not bring a new class.

    Fitted attributes, besides BaseMLP's: ``classes_``; ``validation_scores_`` holds
    the accuracy (weighted by the held-out rows' weights, if any).
    """

    _default_loss = "cross_entropy"
    _regression = False

    classes_: np.ndarray

    def _targets(
        self, y: np.ndarray, sample_weight: np.ndarray | None, keep: bool
    ) -> tuple[np.ndarray, int, dict[str, Any]]:
        classes, codes = _encode(y, self.classes_ if keep else None)
        if sample_weight is not None:
            weighted = np.unique(codes[sample_weight > 0])
            if weighted.size < 2:
                raise ValueError(
                    f"sample_weight leaves 1 class ({classes[weighted].tolist()[0]!r}) with positive weight; "
                    "a classifier needs at least 2 classes"
                )
        return codes, len(classes), {"classes_": classes}

    def _stratify(self, targets: np.ndarray) -> np.ndarray | None:
        return targets

    def _validation_score(
        self, net: Network, X: np.ndarray, targets: np.ndarray, w: np.ndarray | None, stats: EpochStats
    ) -> float:
        if w is None:
            return stats.val_accuracy
        return float(np.average(net.predict(X) == targets, weights=w))

    def partial_fit(
        self, X: ArrayLike, y: ArrayLike, classes: ArrayLike | None = None, sample_weight: ArrayLike | None = None
    ) -> MLPClassifier:
        """One epoch on (X, y); ``classes``, every label the stream will bring, is needed on the first call."""
        first = not hasattr(self, "network_")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit")
        X, y, w = self._training_data(X, y, sample_weight, first)
        if not first and classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"classes={classes!r} differs from the classes of the first call, {self.classes_!r}")
        classes, codes = _encode(y, classes if first else self.classes_)
        self._partial_fit(X, codes, len(classes), w, {"classes_": classes})
        return self

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities (n, len(classes_)), columns in the order of ``classes_``."""
        rows = self._rows(X)  # before network_ is looked up: NotFittedError, not AttributeError
        return self.network_.predict_proba(rows)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The most probable class of each row, a label from ``classes_``."""
        rows = self._rows(X)
        return self.classes_[self.network_.predict(rows)]
