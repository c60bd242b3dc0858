"""The losses by name (``LOSSES``), and softmax cross-entropy from logits in the fused, stable form.

Computing ``softmax`` and then ``-log p[y]`` separately overflows in ``exp`` and
hits ``0 * log 0``; subtracting the row maximum first (log-sum-exp) keeps every
exponent <= 0, so the loss is finite for any finite logits. The gradient of the
mean loss with respect to the logits is ``(p - onehot(y)) / n_samples``: formed
in place by subtracting 1 at ``p[i, y_i]`` (no one-hot matrix), and divided by
the batch size exactly once, here and nowhere else.

Two options, both off by default (and then the arithmetic is exactly the plain one):

- ``sample_weight`` (n,): the weighted mean sum_i w_i l_i / sum_i w_i (model/weighting.py),
  whose gradient is w_i (p_i - onehot(y_i)) / sum(w);
- ``label_smoothing`` s in [0, 1): the target is (1 - s) * onehot(y) + s / n_classes instead of
  onehot(y), as PyTorch's ``CrossEntropyLoss(label_smoothing=s)``; the loss is
  -sum_k t_k log p_k and the gradient p - t. It keeps the network from driving logits
  apart without bound to fit the training rows exactly (RealMLP uses 0.1 on tables).

``LOSSES`` maps a name (``TrainConfig.loss``) to a :class:`Loss`: the functions of one
loss (model/regression.py holds the regression ones), which task it serves, and the loss
the validation rows are scored with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

import numpy as np

from .regression import huber, huber_and_gradient, squared_error, squared_error_and_gradient
from .weighting import row_weights, weighted_mean

__all__ = [
    "LOSSES",
    "Loss",
    "log_softmax",
    "softmax",
    "softmax_cross_entropy",
    "softmax_cross_entropy_and_gradient",
    "softmax_cross_entropy_gradient",
]


def _shift_by_row_max(logits: np.ndarray, rows: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """logits - max per row, so that every exponent is <= 0.

    The max is read at ``argmax``: for (128, 10) that measured 3x faster than
    ``max(axis=1)``, whose NaN-aware short-row reduction dominates. A NaN or
    inf logit still makes its row NaN, which is how divergence shows up.
    """
    row_max = logits[rows, logits.argmax(axis=1)]  # (n,)
    return np.subtract(logits, row_max[:, None], out=out)


def _row_sums(p: np.ndarray) -> np.ndarray:
    # p @ ones: a BLAS matrix-vector product, faster than sum(axis=1) over short rows
    return p @ np.ones(p.shape[1], p.dtype)


def softmax(logits: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Row-wise softmax of ``logits`` (n_samples, n_classes); rows sum to 1."""
    out = _shift_by_row_max(logits, np.arange(logits.shape[0]), out)
    np.exp(out, out=out)  # every exponent <= 0: no overflow
    out /= _row_sums(out)[:, None]
    return out


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax, log p = z - max - log(sum(exp(z - max)))."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _smoothed_row_loss(
    log_sums: np.ndarray, true_shifted: np.ndarray, shifted_sums: np.ndarray, n_classes: int, smoothing: float
) -> np.ndarray:
    """(n,) -sum_k t_k log p_k with t = (1 - s) onehot + s / K, from the shifted logits z - max:

    log p_k = (z_k - max) - log(sum exp(z - max)), and sum_k t_k = 1, so the loss is
    log_sums - (1 - s) * (z_y - max) - (s / K) * sum_k (z_k - max).
    """
    dtype = log_sums.dtype.type
    return log_sums - dtype(1.0 - smoothing) * true_shifted - dtype(smoothing / n_classes) * shifted_sums


def softmax_cross_entropy(
    logits: np.ndarray,
    y: np.ndarray,
    out: np.ndarray | None = None,
    *,
    sample_weight: np.ndarray | None = None,
    label_smoothing: float = 0.0,
) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of integer labels ``y`` (n,) under softmax(``logits``).

    Returns ``(loss, p)`` with the probabilities ``p`` (n, n_classes) written to
    ``out`` if given, so the gradient can be formed from them in place. The mean
    is weighted by ``sample_weight`` and the target smoothed by ``label_smoothing``
    when given (see the module's docstring).
    """
    n, n_classes = logits.shape
    rows = np.arange(n)
    p = _shift_by_row_max(logits, rows, out)  # shifted logits, all <= 0
    true_shifted = p[rows, y]  # (n,) shifted logit of the true class
    shifted_sums = _row_sums(p) if label_smoothing else None  # (n,) sum_k (z_k - max)
    np.exp(p, out=p)
    sums = _row_sums(p)  # (n,) in [1, n_classes]
    if sample_weight is None and not label_smoothing:
        # -log softmax(z)[y] = log(sum exp(z - max)) - (z_y - max)
        loss = float(np.log(sums).sum() - true_shifted.sum()) / n
    else:
        w, total = row_weights(sample_weight, n, p.dtype)
        row_loss = np.log(sums) - true_shifted
        if shifted_sums is not None:
            row_loss = _smoothed_row_loss(np.log(sums), true_shifted, shifted_sums, n_classes, label_smoothing)
        loss = weighted_mean(row_loss, w, total)
    p /= sums[:, None]
    return loss, p


def softmax_cross_entropy_gradient(
    p: np.ndarray,
    y: np.ndarray,
    scale: float = 1.0,
    *,
    sample_weight: np.ndarray | None = None,
    label_smoothing: float = 0.0,
) -> np.ndarray:
    """Turn probabilities ``p`` into scale * d(mean loss)/d(logits) = scale * (p - t) / n, in place.

    t is onehot(y), or (1 - s) * onehot(y) + s / n_classes under label smoothing s; with
    ``sample_weight`` row i is multiplied by w_i / sum(w) instead of 1 / n.
    ``scale`` lets an optimizer receive its step direction (e.g. -lr * gradient)
    from backprop at the cost of this one small multiplication.
    """
    n, n_classes = p.shape
    if label_smoothing:
        p -= p.dtype.type(label_smoothing / n_classes)  # - s / K everywhere ...
        p[np.arange(n), y] -= p.dtype.type(1.0 - label_smoothing)  # ... and - (1 - s) at the true class
    else:
        p[np.arange(n), y] -= 1
    w, total = row_weights(sample_weight, n, p.dtype)
    if w is None:
        p *= p.dtype.type(scale / n)  # the one and only division by the batch size
    else:
        p *= (w * p.dtype.type(scale / total))[:, None]  # ... or by the weights' sum
    return p


_AUX: dict[tuple[int, int, np.dtype], tuple[np.ndarray, ...]] = {}


def softmax_cross_entropy_and_gradient(
    logits: np.ndarray,
    y: np.ndarray,
    scale: float = 1.0,
    *,
    sample_weight: np.ndarray | None = None,
    label_smoothing: float = 0.0,
) -> float:
    """The training step's fused form: return the mean loss and turn ``logits``, in place,
    into scale * d(mean loss)/d(logits) = scale * (softmax - onehot(y)) / n.

    Normalising and scaling are one multiplication by scale / (n * row sum),
    and the batch size is divided by exactly once, there. ``sample_weight`` and
    ``label_smoothing`` as in :func:`softmax_cross_entropy_gradient`; without them
    the arithmetic is the plain form's, operation for operation.

    ``logits`` must be C-contiguous and every label in [0, n_classes): for speed the
    row maximum and the true class are read by flat index (``row * n_classes + column``,
    the offsets cached per shape), a dozen calls on (128, 10) measured 14 -> 11 us,
    and a label out of range is not detected here (callers validate).
    """
    n, c = logits.shape
    if not logits.flags.c_contiguous:
        raise ValueError("logits must be C-contiguous (they are overwritten in place)")
    aux = _AUX.get((n, c, logits.dtype))
    if aux is None:
        if len(_AUX) >= 16:
            _AUX.clear()
        aux = _AUX[n, c, logits.dtype] = (
            np.arange(0, n * c, c), np.ones(c, logits.dtype), np.empty(n, np.intp), np.empty(n, np.intp)
        )  # fmt: skip
    offsets, ones, at_max, at_y = aux
    flat = logits.reshape(-1)  # a view: logits is C-contiguous
    np.add(logits.argmax(axis=1), offsets, out=at_max)
    np.add(y, offsets, out=at_y, casting="unsafe")
    # logits - row max (read at argmax, see _shift_by_row_max): every exponent <= 0
    np.subtract(logits, flat.take(at_max)[:, None], out=logits)
    true_shifted = flat.take(at_y)
    shifted_sums = logits @ ones if label_smoothing else None  # (n,) sum_k (z_k - max), before exp
    np.exp(logits, out=logits)
    sums = logits @ ones  # row sums: BLAS, faster than sum(axis=1) over short rows
    if sample_weight is None and not label_smoothing:
        loss = float(np.log(sums).sum() - true_shifted.sum()) / n
        np.divide(scale / n, sums, out=sums)
        logits *= sums[:, None]  # scale * softmax / n
        flat[at_y] -= scale / n  # ... - scale * onehot / n
        return loss
    w, total = row_weights(sample_weight, n, logits.dtype)
    log_sums = np.log(sums)
    row_loss = log_sums - true_shifted
    if shifted_sums is not None:
        row_loss = _smoothed_row_loss(log_sums, true_shifted, shifted_sums, c, label_smoothing)
    loss = weighted_mean(row_loss, w, total)
    # f_i = scale * w_i / sum(w) (or scale / n): row i of the gradient is f_i * (p_i - t_i)
    f = np.full(n, scale / n, logits.dtype) if w is None else w * logits.dtype.type(scale / total)
    np.divide(f, sums, out=sums)
    logits *= sums[:, None]  # f * softmax
    flat[at_y] -= f * logits.dtype.type(1.0 - label_smoothing)  # ... - f * (1 - s) * onehot
    if label_smoothing:
        logits -= (f * logits.dtype.type(label_smoothing / c))[:, None]  # ... - f * s / K
    return loss


def _cross_entropy_value(
    logits: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None, label_smoothing: float = 0.0
) -> float:
    """The loss alone (``logits`` are overwritten with the probabilities)."""
    loss, _ = softmax_cross_entropy(logits, y, logits, sample_weight=sample_weight, label_smoothing=label_smoothing)
    return loss


def _cross_entropy_backward(
    logits: np.ndarray,
    y: np.ndarray,
    scale: float = 1.0,
    sample_weight: np.ndarray | None = None,
    label_smoothing: float = 0.0,
) -> float:
    """The reference two-step form: probabilities and loss, then the gradient from them, in place."""
    loss, p = softmax_cross_entropy(logits, y, logits, sample_weight=sample_weight, label_smoothing=label_smoothing)
    softmax_cross_entropy_gradient(p, y, scale, sample_weight=sample_weight, label_smoothing=label_smoothing)
    return loss


@dataclass(frozen=True, slots=True)
class Loss:
    """The functions of one loss over a network's outputs (n, n_outputs), and what it is for.

    Every function takes ``(outputs, y)``, then by keyword ``scale`` (the gradients'),
    ``sample_weight`` (n,) or None, and the loss's ``options``; :meth:`bind` fixes those, as ``Activation.with_slope``
    does. ``backward`` and ``fused`` return the batch's loss and overwrite ``outputs`` with
    scale * d(loss)/d(outputs); ``value`` returns the loss (and may overwrite ``outputs``).
    """

    name: str
    # True: a linear output fitted to float targets (n, n_outputs); False: a softmax over
    # n_outputs classes fitted to integer labels (n,)
    regression: bool
    value: Callable[..., float]  # value(outputs, y, sample_weight)
    backward: Callable[..., float]  # backward(outputs, y, scale, sample_weight): the reference, readable form
    fused: Callable[..., float]  # the same numbers in fewer passes: the training step's form
    # The LOSSES key the validation rows are scored with, unbound: one measure for every
    # trial of a task, so a pruner compares like with like whatever loss or smoothing each trained with
    validation: str
    options: tuple[str, ...] = ()  # TrainConfig fields its functions take (label_smoothing, huber_delta)

    def bind(self, **options: float) -> Loss:
        """The same loss with the values of its ``options`` fixed; values of other losses' options are ignored."""
        own = {name: options[name] for name in self.options if name in options}
        if not own:
            return self
        return replace(
            self, value=partial(self.value, **own), backward=partial(self.backward, **own),
            fused=partial(self.fused, **own),
        )  # fmt: skip


LOSSES: dict[str, Loss] = {
    "cross_entropy": Loss(
        "cross_entropy", False, _cross_entropy_value, _cross_entropy_backward, softmax_cross_entropy_and_gradient,
        "cross_entropy", ("label_smoothing",),
    ),
    "squared_error": Loss(
        "squared_error", True, squared_error, squared_error_and_gradient, squared_error_and_gradient, "squared_error"
    ),
    # judged by the squared error: Huber is a training choice, the validation measure stays one per task
    "huber": Loss("huber", True, huber, huber_and_gradient, huber_and_gradient, "squared_error", ("huber_delta",)),
}  # fmt: skip
