"""The per-epoch record, the result, and ``train()``: epochs, callback, early stop (config: config.py).

``train`` never prints and never raises for numerical blow-up: a non-finite
loss ends the run with ``outcome="diverged"`` and a reason, so that a search
can record the trial and go on. It reports progress only through ``callback``.

The task follows ``config.loss``: integer labels (n,) for cross_entropy, float
targets (n,) or (n, n_targets) for a regression loss (model/regression.py; the
caller standardises them, and a regression network's output width is the number
of targets). ``sample_weight`` weights every batch's mean loss (model/weighting.py);
with ``TrainConfig()``'s defaults and no weights nothing of this is active and the
arithmetic is that of plain cross-entropy.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from .augment import Augmenter, Warp
from .config import TrainConfig
from .errors import DivergedError
from .fused import FastPath
from .losses import LOSSES
from .network import Network
from .optim import Optimizer, learning_rate_at, make_optimizer
from .weighting import check_sample_weight

__all__ = ["EpochStats", "TrainConfig", "TrainResult", "Training", "train"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EpochStats:
    """One finished epoch. Losses are (sample-weighted) means per sample, without the L1/L2 penalty."""

    epoch: int  # 1-based
    train_loss: float  # mean over the epoch's samples of the minibatch training loss, dropout on
    # mean validation loss, dropout off: cross-entropy without label smoothing for classes, half
    # the squared error for numbers (also under huber): Network.evaluate
    val_loss: float
    val_accuracy: float  # NaN for a regression network
    seconds: float  # wall time of this epoch including the validation pass


@dataclass
class TrainResult:
    """What a run produced and why it ended.

    ``network`` holds the weights of the best epoch (lowest validation loss)
    when ``patience`` is set or the run diverged (the initial weights if no
    epoch finished); otherwise the weights after the last epoch.
    """

    network: Network
    history: list[EpochStats] = field(default_factory=list)  # finite epochs only
    outcome: str = "completed"  # completed | early_stopped | stopped | diverged
    reason: str = ""
    best_epoch: int = 0  # 0 if no epoch finished
    best_val_loss: float = math.inf
    best_val_accuracy: float = 0.0
    seconds: float = 0.0


def _check_data(X: np.ndarray, y: np.ndarray, name: str, regression: bool = False) -> tuple[np.ndarray, np.ndarray]:
    X, y = np.asarray(X), np.asarray(y)  # np.asarray keeps a memmap's buffer: no copy
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"X_{name} must be a non-empty 2-D array, got shape {X.shape}")
    if regression:  # the values are checked and cast by Network.targets, once the width is known
        if y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
            n = X.shape[0]
            raise ValueError(f"y_{name} must have shape ({n},) or ({n}, n_targets) to match X_{name}, got {y.shape}")
        return X, y
    if y.shape != (X.shape[0],):
        raise ValueError(f"y_{name} must have shape ({X.shape[0]},) to match X_{name}, got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y_{name} must hold integer labels, got dtype {y.dtype}")
    if y.min() < 0:
        raise ValueError(f"y_{name} labels must be >= 0, got min {y.min()}")
    return X, y


def _run_epoch(
    net: Network,
    optimizer: Optimizer,
    X: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    shuffle_rng: np.random.Generator,
    dropout_rng: np.random.Generator | None,
    epoch: int,
    lr_at: Callable[[float], float] | None = None,
    augment: Callable[[np.ndarray], np.ndarray] | None = None,
    fast: FastPath | None = None,
    sample_weight: np.ndarray | None = None,
) -> float:
    """One shuffled pass; returns the mean minibatch loss, each batch counted by its rows
    (or by its weight, with ``sample_weight`` (n,) in the network's dtype). Raises DivergedError.

    ``lr_at(t)``, if given, sets the learning rate before every step from t, the
    epochs elapsed at the middle of the step (a per-step schedule). ``augment(Xb)``,
    if given, returns the augmented copy of each gathered training batch. Every
    batch runs through ``fast`` (the network's fused step, made here if not given),
    then the optimizer. ``y`` is as the network's loss takes it (``Network.targets``).
    """
    fast = FastPath(net) if fast is None else fast
    n = X.shape[0]
    n_batches = -(-n // batch_size)
    order = shuffle_rng.permutation(n)
    # A batch is a set: sorting each batch's indices changes nothing but the order
    # rows are read in, which makes the gather from a large (memmapped) X cheaper.
    full = n - n % batch_size
    order[:full].reshape(-1, batch_size).sort(axis=1)
    order[full:].sort()
    flat = len(optimizer.params) == 1 and optimizer.params[0] is net.flat_parameters
    grads = [net.flat_gradients] if flat else net.gradients()
    scale = optimizer.gradient_scale
    # Momentum: the fast path does the whole step, the optimizer only holds the velocity
    momentum = optimizer.accumulator() if flat else None
    # Gathering into a reused buffer measured twice as fast as X[idx], which
    # writes each batch to fresh, cold memory. Only possible without a dtype cast.
    same_dtype = X.dtype == net.dtype
    buffers: dict[int, np.ndarray] = {}  # batch size -> reused (batch size, d) buffer
    total = 0.0
    for batch, start in enumerate(range(0, n, batch_size), start=1):
        idx = order[start : start + batch_size]
        if same_dtype:
            Xb = buffers.get(len(idx))
            if Xb is None:
                Xb = buffers[len(idx)] = np.empty((len(idx), X.shape[1]), X.dtype)
            # (b, d); X itself is never written. mode="clip" because take's default
            # "raise" copies through a hidden buffer when out= is given (~40% slower);
            # the indices come from a permutation of range(n), so clipping never acts.
            X.take(idx, axis=0, out=Xb, mode="clip")
        else:
            Xb = X[idx].astype(net.dtype)
        if augment is not None:
            Xb = augment(Xb)  # (b, d) shifted/flipped/warped copy
        if lr_at is not None:  # 0.4 us per step; epochs within noise (bench_fashion_recipes epoch-time)
            optimizer.lr = lr_at(epoch - 1 + (batch - 0.5) / n_batches)
            scale = optimizer.gradient_scale
        wb = None if sample_weight is None else sample_weight[idx]  # (b,)
        if momentum is None:
            loss = fast.gradients(Xb, y[idx], dropout_rng, scale=scale, sample_weight=wb)
        else:
            velocity, mu = momentum
            loss = fast.momentum_step(
                Xb, y[idx], dropout_rng, scale=scale, velocity=velocity, mu=mu, sample_weight=wb, decay=optimizer.decay
            )
        if not math.isfinite(loss):  # one scalar check per batch is all divergence costs
            raise DivergedError(f"non-finite training loss ({loss}) at epoch {epoch}, batch {batch}")
        if momentum is None:
            optimizer.step_scaled(grads)
        total += loss * (len(idx) if wb is None else float(wb.sum()))
    return total / (n if sample_weight is None else float(sample_weight.sum()))


def _make_augmenter(
    c: TrainConfig, image_shape: tuple[int, ...] | None, n_features: int
) -> Callable[[np.ndarray], np.ndarray] | None:
    """The training batches' augmentation: shifts/flips (random stream [seed, 3]), then a warp ([seed, 4]).

    None if the config asks for neither.
    """
    shift_flip = c.augment_shift > 0 or c.augment_flip
    if not shift_flip and c.augment_warp == 0:
        return None
    if image_shape is None:
        raise ValueError(
            f"augmentation (augment_shift={c.augment_shift}, augment_flip={c.augment_flip}, "
            f"augment_warp={c.augment_warp}) needs the layout of a row: pass image_shape, "
            "e.g. (28, 28) or Dataset.image_shape"
        )
    if math.prod(image_shape) != n_features:
        raise ValueError(
            f"image_shape {tuple(image_shape)} holds {math.prod(image_shape)} pixels "
            f"but X_train has {n_features} features"
        )
    shape = tuple(image_shape)
    rng = np.random.default_rng
    shift = Augmenter(shape, c.augment_shift, c.augment_flip, rng([c.seed, 3])) if shift_flip else None
    warp = Warp(shape, c.augment_warp, rng([c.seed, 4])) if c.augment_warp > 0 else None
    if shift is not None and warp is not None:
        return lambda Xb: warp(shift(Xb))
    return shift or warp


class Training:
    """One network being trained an epoch at a time: ``train()`` without the loop.

    Why a class: k-fold cross-validation trains one network per fold in
    lockstep, so that after each epoch the mean validation loss over the folds
    can be judged by a pruner. ``train()`` is the one-network loop over it.
    Its arguments are ``train()``'s.
    """

    def __init__(
        self,
        config: TrainConfig,
        X_train: np.ndarray,
        y_train: np.ndarray,
        X_val: np.ndarray,
        y_val: np.ndarray,
        *,
        n_classes: int | None = None,
        image_shape: tuple[int, ...] | None = None,
        initial: Network | None = None,
        sample_weight: np.ndarray | None = None,
        val_sample_weight: np.ndarray | None = None,
        periodic_columns: Sequence[int] | None = None,
    ) -> None:
        self._t_start = time.perf_counter()
        c = self.config = config
        regression = LOSSES[c.loss].regression
        X_train, y_train = _check_data(X_train, y_train, "train", regression)
        self.X_val, y_val = _check_data(X_val, y_val, "val", regression)
        if self.X_val.shape[1] != X_train.shape[1]:
            raise ValueError(f"X_val has {self.X_val.shape[1]} features but X_train has {X_train.shape[1]}")
        if regression:
            n_targets = 1 if y_train.ndim == 1 else y_train.shape[1]
            if n_classes is not None and n_classes != n_targets:
                raise ValueError(f"n_classes must be the number of targets, {n_targets}, for {c.loss}: {n_classes=}")
            n_classes = n_targets
        else:
            needed = int(max(y_train.max(), y_val.max())) + 1
            if n_classes is None:
                n_classes = max(needed, 2)
            elif n_classes < needed:
                raise ValueError(f"n_classes must be at least max label + 1 = {needed}, got {n_classes=}")

        self.net = Network(
            X_train.shape[1], c.hidden, n_classes, c.activation, leaky_slope=c.leaky_slope,
            dropout=c.dropout, l1=c.l1, l2=c.l2, loss=c.loss, label_smoothing=c.label_smoothing,
            huber_delta=c.huber_delta, periodic=c.periodic, periodic_columns=periodic_columns,
            plr=c.plr, plr_sigma=c.plr_sigma,
            seed=np.random.default_rng([c.seed, 0]),
        )  # fmt: skip
        if (c.periodic or c.plr) and image_shape is not None:
            raise ValueError("periodic features and embeddings are for a table's numbers, not images (image_shape)")
        self.use_data(X_train, y_train, sample_weight)
        self.y_val = self.net.targets(y_val, len(y_val), "y_val")
        self.w_val = self._weights(val_sample_weight, len(y_val), "val_sample_weight")
        if initial is not None:  # a warm start: training goes on from these weights
            if initial.widths != self.net.widths:
                raise ValueError(f"initial has widths {initial.widths}, the config and data need {self.net.widths}")
            self.net.copy_parameters_from(initial.flat_parameters)
        self._shuffle_rng = np.random.default_rng([c.seed, 1])
        self._dropout_rng = np.random.default_rng([c.seed, 2]) if c.dropout > 0 else None
        self._augment = _make_augmenter(c, image_shape, self.X_train.shape[1])
        self._lr_at = partial(
            learning_rate_at,
            base=c.learning_rate,
            schedule=c.lr_schedule,
            decay=c.lr_decay,
            step=c.lr_step,
            epochs=c.epochs,
            warmup=c.warmup,
        )
        # one flat array for all parameters: the optimizer's 3-4 ufuncs per step cover the whole network
        self._params = self.net.flat_parameters
        self._optimizer = make_optimizer(
            c.optimizer, [self._params], c.learning_rate, c.momentum,
            weight_decay=c.weight_decay, decayed=[self._params[: self.net.n_weights]],  # weights, not biases
        )  # fmt: skip
        self._fast = FastPath(self.net)  # the per-batch step, with its buffers
        self.result = TrainResult(network=self.net, reason=f"completed {c.epochs} epochs")
        self._best_params = self._params.copy()  # the initial weights until an epoch finishes
        self.done = False

    @property
    def epoch(self) -> int:
        """Epochs finished so far."""
        return len(self.result.history)

    def step(self) -> EpochStats | None:
        """Train one epoch; None when the run has ended (all epochs, early stop or divergence)."""
        if self.done:
            return None
        c, result = self.config, self.result
        epoch = self.epoch + 1
        t_epoch = time.perf_counter()
        with np.errstate(all="ignore"):  # blow-up is reported as an outcome, not as warnings
            try:
                self._optimizer.lr = self._lr_at(epoch - 0.5)  # per epoch unless cosine or warm-up
                per_step = c.lr_schedule == "cosine" or c.warmup > 0
                train_loss = _run_epoch(
                    self.net,
                    self._optimizer,
                    self.X_train,
                    self.y_train,
                    c.batch_size,
                    self._shuffle_rng,
                    self._dropout_rng,
                    epoch,
                    self._lr_at if per_step else None,
                    self._augment,
                    self._fast,
                    self.w_train,
                )
                self._optimizer.flush_subnormal()
                val_loss, val_accuracy = self.net.evaluate(self.X_val, self.y_val, self.w_val)
                if not math.isfinite(val_loss):
                    raise DivergedError(f"non-finite validation loss ({val_loss}) at epoch {epoch}")
            except DivergedError as error:
                result.outcome, result.reason = "diverged", str(error)
                self.done = True
                return None
        stats = EpochStats(epoch, train_loss, val_loss, val_accuracy, time.perf_counter() - t_epoch)
        result.history.append(stats)
        logger.debug("%s", stats)
        if val_loss < result.best_val_loss:
            result.best_epoch, result.best_val_loss, result.best_val_accuracy = epoch, val_loss, val_accuracy
            np.copyto(self._best_params, self._params)
        if c.patience is not None and epoch - result.best_epoch >= c.patience:
            result.outcome = "early_stopped"
            result.reason = (
                f"no improvement in validation loss for {c.patience} epochs at epoch {epoch} "
                f"(best {result.best_val_loss:.6g} at epoch {result.best_epoch})"
            )
            self.done = True
        elif epoch >= c.epochs:
            self.done = True
        return stats

    def use_data(self, X_train: np.ndarray, y_train: np.ndarray, sample_weight: np.ndarray | None = None) -> None:
        """Train the next epochs on other rows, everything else carrying on: a stream's next chunk."""
        X_train, y_train = _check_data(X_train, y_train, "train", self.net.regression)
        if X_train.shape[1] != self.net.n_inputs:
            raise ValueError(f"X_train has {X_train.shape[1]} features but the network takes {self.net.n_inputs}")
        if not self.net.regression and y_train.max() >= self.net.n_classes:
            raise ValueError(f"y_train labels must be < n_classes = {self.net.n_classes}, got max {y_train.max()}")
        # the first layer's inputs, once: its periodic features are not recomputed every epoch
        self.X_train, self.y_train = self.net.first_inputs(X_train), self.net.targets(y_train, len(y_train), "y_train")
        self.w_train = self._weights(sample_weight, len(y_train), "sample_weight")

    def _weights(self, sample_weight: np.ndarray | None, n: int, name: str) -> np.ndarray | None:
        """Checked once here, in the network's dtype (float32 in the hot path), for every batch to trust."""
        if sample_weight is None:
            return None
        return check_sample_weight(sample_weight, n, name).astype(self.net.dtype)

    def stop(self, reason: str) -> None:
        """End the run early at the caller's request (a pruner); outcome "stopped"."""
        self.result.outcome, self.result.reason = "stopped", reason
        self.done = True

    def finish(self) -> TrainResult:
        """The result; the best epoch's weights when early stopping is on or the run diverged."""
        result = self.result
        if result.outcome == "diverged" or self.config.patience is not None:
            self.net.copy_parameters_from(self._best_params)
        result.seconds = time.perf_counter() - self._t_start
        logger.info("training %s: %s (%.2f s)", result.outcome, result.reason, result.seconds)
        return result


def train(
    config: TrainConfig,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    *,
    callback: Callable[[EpochStats], bool | None] | None = None,
    n_classes: int | None = None,
    image_shape: tuple[int, ...] | None = None,
    initial: Network | None = None,
    sample_weight: np.ndarray | None = None,
    val_sample_weight: np.ndarray | None = None,
    periodic_columns: Sequence[int] | None = None,
) -> TrainResult:
    """Train a fresh Network by minibatch gradient descent; never raises for divergence.

    X arrays are (n, d), float32 ideally (others are cast per batch), and may be
    read-only memmaps. y arrays are integer labels (n,) for cross_entropy, or
    numbers (n,) or (n, n_targets) for a regression ``config.loss``.
    ``sample_weight`` (n,), finite and >= 0, weights each training batch's mean
    loss (e.g. ``compute_sample_weight("balanced", y)`` for class weights);
    ``val_sample_weight`` the validation loss that early stopping and a pruner
    judge. ``callback(stats)`` runs after every epoch; returning True
    stops the run (outcome "stopped"), which is how a pruner ends a trial.
    ``image_shape`` ((H, W) or (C, H, W), e.g. ``Dataset.image_shape``) is needed
    only for augmentation, which touches training batches only. ``initial``, a network
    of the same widths, gives the starting weights instead of ``config.seed`` (a warm start).
    ``periodic_columns``: the columns ``config.periodic`` expands or ``config.plr`` embeds (a table's numbers;
    None: all).
    """
    run = Training(
        config, X_train, y_train, X_val, y_val, n_classes=n_classes, image_shape=image_shape, initial=initial,
        sample_weight=sample_weight, val_sample_weight=val_sample_weight, periodic_columns=periodic_columns,
    )  # fmt: skip
    while (stats := run.step()) is not None:
        if callback is not None and callback(stats):
            run.stop(f"stopped by callback at epoch {stats.epoch}")
            break
    return run.finish()
