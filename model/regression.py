"""Losses of a linear output fitted to numbers: squared error and Huber, with their gradients.

A regression network's last layer is linear: its outputs (n_samples, n_targets) are the
predictions themselves. The losses follow scikit-learn's ``MLPRegressor`` (half the squared
error) so that the gradient with respect to the outputs is the residual, as softmax
cross-entropy's is ``p - onehot(y)``, and so that Huber with a large ``huber_delta`` is the
same loss. Each is a (sample-weighted, model/weighting.py) mean over rows of the mean over
targets:

    squared_error = mean_i w_i * mean_j 0.5 * r_ij**2                    r = outputs - y
    huber         = mean_i w_i * mean_j rho(r_ij),  rho(r) = 0.5 * r**2           if |r| <= delta
                                                             delta * (|r| - delta / 2) otherwise

Huber is quadratic near 0 and linear in the tails, so a few wild targets pull the fit by
at most ``delta`` each instead of by their whole residual: the choice for heavy tails. The
targets are meant to be standardised (the service and ``MLPRegressor`` do it), so
``huber_delta`` is in standard deviations of the target.

As in model/losses.py, the ``*_and_gradient`` forms overwrite the outputs with
scale * d(loss)/d(outputs) and divide by the batch size (or the weights' sum) once, there.
"""

from __future__ import annotations

import numpy as np

from .weighting import row_weights, weighted_mean

__all__ = ["huber", "huber_and_gradient", "squared_error", "squared_error_and_gradient"]


def _residuals(outputs: np.ndarray, y: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """outputs - y, (n, n_targets); y must have the outputs' shape (callers make a (n,) target (n, 1))."""
    if y.shape != outputs.shape:
        raise ValueError(f"y must have the outputs' shape {outputs.shape}, got {y.shape}")
    return np.subtract(outputs, y, out=out)


def _row_sums(a: np.ndarray) -> np.ndarray:
    # a @ ones: a BLAS matrix-vector product, faster than sum(axis=1) over short rows
    return a @ np.ones(a.shape[1], a.dtype)


def _huber_rows(r: np.ndarray, delta: float) -> np.ndarray:
    """(n,) sum over targets of rho(r): 0.5 r^2 where |r| <= delta, else delta * (|r| - delta / 2)."""
    a = np.abs(r)
    rho = np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta)).astype(r.dtype, copy=False)
    return _row_sums(rho)


def squared_error(outputs: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    """Half the (weighted) mean squared error of ``outputs`` against ``y``, both (n, n_targets)."""
    r = _residuals(outputs, y, None)
    w, total = row_weights(sample_weight, r.shape[0], r.dtype)
    return 0.5 * weighted_mean(np.einsum("ij,ij->i", r, r), w, total) / r.shape[1]


def squared_error_and_gradient(
    outputs: np.ndarray, y: np.ndarray, scale: float = 1.0, sample_weight: np.ndarray | None = None
) -> float:
    """Return :func:`squared_error` and turn ``outputs``, in place, into scale * its gradient.

    d/d outputs_ij of sum_i w_i sum_j 0.5 r_ij**2 / (W * k) = w_i * r_ij / (W * k): the residual.
    """
    n, k = outputs.shape
    r = _residuals(outputs, y, outputs)  # (n, k), in place
    w, total = row_weights(sample_weight, n, r.dtype)
    loss = 0.5 * weighted_mean(np.einsum("ij,ij->i", r, r), w, total) / k
    if w is None:
        r *= r.dtype.type(scale / (n * k))  # the one and only division by the batch size
    else:
        r *= (w * r.dtype.type(scale / (total * k)))[:, None]
    return loss


def huber(
    outputs: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None, huber_delta: float = 1.0
) -> float:
    """The (weighted) mean Huber loss of ``outputs`` against ``y``, both (n, n_targets)."""
    r = _residuals(outputs, y, None)
    w, total = row_weights(sample_weight, r.shape[0], r.dtype)
    return weighted_mean(_huber_rows(r, huber_delta), w, total) / r.shape[1]


def huber_and_gradient(
    outputs: np.ndarray,
    y: np.ndarray,
    scale: float = 1.0,
    sample_weight: np.ndarray | None = None,
    huber_delta: float = 1.0,
) -> float:
    """Return :func:`huber` and turn ``outputs``, in place, into scale * its gradient.

    rho'(r) = clip(r, -delta, delta): the residual, capped at delta; continuous at |r| = delta.
    """
    n, k = outputs.shape
    r = _residuals(outputs, y, outputs)
    w, total = row_weights(sample_weight, n, r.dtype)
    loss = weighted_mean(_huber_rows(r, huber_delta), w, total) / k
    np.clip(r, -huber_delta, huber_delta, out=r)
    if w is None:
        r *= r.dtype.type(scale / (n * k))
    else:
        r *= (w * r.dtype.type(scale / (total * k)))[:, None]
    return loss
