"""Network: dense layers in order, a hidden activation, dropout, an L1/L2 penalty and a loss.

The network knows nothing of training loops or optimizers: it turns a batch
into a loss and gradients, and data into probabilities (or, for a regression
loss, numbers). Its forward and
backward are the reference maths, written to be read and checked against
finite differences. ``train()`` runs the same step through
:mod:`model.fused` instead, which fuses dropout, activation and the momentum
update for speed and is tested against this module (scikit-learn keeps
``_forward_pass`` and ``_forward_pass_fast`` apart in the same way).

All parameters (and gradients) are views into one flat array, weights first,
so that an optimizer step or a snapshot is a handful of whole-array
operations. ``batch_gradients(..., scale=)`` hands an optimizer its step
direction (e.g. -lr * gradient) for free, since backprop is linear in the
gradient of the logits.

Loss convention: ``loss = mean data loss + 0.5 * l2 * sum(W**2) + l1 * sum(|W|)``,
the penalty summed over the weight matrices only (biases are not penalised). The data
loss is ``LOSSES[loss]`` (model/losses.py): softmax cross-entropy over ``n_classes``
outputs (optionally label-smoothed), or for regression a linear output of one unit per
target with half the squared error or Huber. The mean is weighted when a
``sample_weight`` is given (model/weighting.py).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .activations import ACTIVATIONS
from .layers import BatchBuffers, Dense, Dropout, init_weights
from .losses import LOSSES, softmax
from .periodic import expand, periodic_width
from .plr import PLR, plr_size, plr_width
from .weighting import row_weights

__all__ = ["Network"]

logger = logging.getLogger(__name__)

_CHUNK = 1024  # rows per forward pass at inference: bounds memory (12 MB for 3 x 1024 units),
# still large enough for full-speed GEMMs


class Network:
    """A multilayer perceptron with a softmax output, or a linear one for a regression ``loss``.

    ``n_classes`` is the width of the output layer: the number of classes, or of
    targets for a regression loss (``n_outputs`` names it for both). ``loss`` is a key
    of ``LOSSES``; ``label_smoothing`` applies to cross_entropy, ``huber_delta`` to huber.
    Parameters are float32 by default (the hot path); pass ``dtype=np.float64``
    for gradient checks. ``periodic`` > 0 puts periodic features of ``periodic_columns``
    (None: every input) before the first layer (``model/periodic.py``): ``n_inputs``
    stays the rows' width, ``widths[0]`` is the first layer's. ``plr`` > 0 gives those
    columns learned embeddings of ``plr`` units instead (``model/plr.py``), their
    frequencies starting from N(0, ``plr_sigma``) and trained; one first map or the other.
    ``seed`` (int, Generator or None) draws the initial
    weights: He for relu/leaky_relu hidden layers, Glorot for tanh/sigmoid and
    for the output layer (it feeds a softmax, or is the prediction); biases start at zero.
    """

    def __init__(
        self,
        n_inputs: int,
        hidden: Sequence[int],
        n_classes: int,
        activation: str = "relu",
        *,
        leaky_slope: float = 0.01,
        dropout: float = 0.0,
        l1: float = 0.0,
        l2: float = 0.0,
        loss: str = "cross_entropy",
        label_smoothing: float = 0.0,
        huber_delta: float = 1.0,
        periodic: float = 0.0,
        periodic_columns: Sequence[int] | None = None,
        plr: int = 0,
        plr_sigma: float = 0.1,
        seed: int | np.random.Generator | None = 0,
        dtype: type | np.dtype = np.float32,
    ) -> None:
        hidden = tuple(int(h) for h in hidden)
        if int(n_inputs) < 1:
            raise ValueError(f"n_inputs must be a positive int, got {n_inputs=}")
        if any(h < 1 for h in hidden):
            raise ValueError(f"hidden must hold positive ints, got {hidden=}")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {loss=}")
        regression = LOSSES[loss].regression
        if int(n_classes) < (1 if regression else 2):
            what = "the number of targets, at least 1" if regression else "at least 2"
            raise ValueError(f"n_classes must be {what}, got {n_classes=}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing=}")
        if label_smoothing and regression:
            raise ValueError(f"label_smoothing applies to cross_entropy only, got {label_smoothing=} with {loss=}")
        if not (huber_delta > 0 and np.isfinite(huber_delta)):
            raise ValueError(f"huber_delta must be a finite number > 0, got {huber_delta=}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation=}")
        if not 0.0 <= leaky_slope < 1.0:
            raise ValueError(f"leaky_slope must be in [0, 1), got {leaky_slope=}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout=}")
        if not (l1 >= 0.0 and l2 >= 0.0 and np.isfinite(l1) and np.isfinite(l2)):
            raise ValueError(f"l1 and l2 must be finite and >= 0, got {l1=}, {l2=}")
        if not (periodic >= 0 and np.isfinite(periodic)):
            raise ValueError(f"periodic must be a finite number >= 0, got {periodic=}")
        columns = list(range(int(n_inputs))) if periodic_columns is None else [int(c) for c in periodic_columns]
        if isinstance(plr, bool) or int(plr) != plr or plr < 0:
            raise ValueError(f"plr must be an int >= 0, got {plr=}")
        if plr and periodic:
            raise ValueError(f"one first map: periodic features or learned embeddings, got {periodic=} and {plr=}")
        if not (plr_sigma > 0 and np.isfinite(plr_sigma)):
            raise ValueError(f"plr_sigma must be a finite number > 0, got {plr_sigma=}")
        if (periodic or plr) and not (columns and all(0 <= c < int(n_inputs) for c in columns)):
            raise ValueError(f"periodic_columns must be columns of the {n_inputs} inputs, got {periodic_columns}")
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {dtype=}")

        self.n_inputs, self.hidden, self.n_classes = int(n_inputs), hidden, int(n_classes)
        self.activation, self.leaky_slope = activation, float(leaky_slope)
        self.dropout, self.l1, self.l2 = float(dropout), float(l1), float(l2)
        self.dtype = dtype
        # the first map: frozen features (model/periodic.py; the sigma of their frequencies, 0 = none) or
        # learned embeddings (model/plr.py; units per column, 0 = none), and the columns it reads
        self.periodic, self.plr, self.plr_sigma = float(periodic), int(plr), float(plr_sigma)
        self.periodic_columns = columns if self.periodic or self.plr else []
        self.act = ACTIVATIONS[activation].with_slope(self.leaky_slope)  # its functions take arrays only
        self.loss, self.label_smoothing, self.huber_delta = loss, float(label_smoothing), float(huber_delta)
        # the training loss with its options bound; the validation rows are scored with the unbound one it names
        self.loss_fn = LOSSES[loss].bind(label_smoothing=self.label_smoothing, huber_delta=self.huber_delta)
        self.validation_loss = LOSSES[self.loss_fn.validation]

        rng = np.random.default_rng(seed)
        first = self.n_inputs
        if self.plr:
            first = plr_width(self.n_inputs, len(self.periodic_columns), self.plr)
        elif self.periodic:
            first = periodic_width(self.n_inputs, self.periodic_columns)
        widths = [first, *hidden, self.n_classes]
        shapes = list(zip(widths[:-1], widths[1:]))
        # All parameters live in one flat array, every weight matrix first, then
        # every bias; W and b are views into it, and likewise the gradients. An
        # optimizer then updates the whole network in 3 ufunc calls instead of 3
        # per array, the L2/L1 gradient is one slice, a snapshot one copy.
        self.n_weights = sum(a * b for a, b in shapes)  # the weights come first in the flat arrays
        # then the biases, then any embeddings' parameters (from n_dense on)
        self.n_dense = n_dense = self.n_weights + sum(widths[1:])
        n_plr = plr_size(len(self.periodic_columns), self.plr) if self.plr else 0
        self.flat_parameters = np.zeros(n_dense + n_plr, dtype)
        self.flat_gradients = np.zeros_like(self.flat_parameters)
        w_offset, b_offset = 0, self.n_weights
        self.layers: list[Dense] = []
        for i, (n_in, n_out) in enumerate(shapes):
            w_slice = slice(w_offset, w_offset + n_in * n_out)
            b_slice = slice(b_offset, b_offset + n_out)
            w_offset, b_offset = w_slice.stop, b_slice.stop
            W = self.flat_parameters[w_slice].reshape(n_in, n_out)
            scheme = self.act.init if i < len(hidden) else "glorot"
            W[...] = init_weights(n_in, n_out, scheme, rng, dtype)
            dW = self.flat_gradients[w_slice].reshape(n_in, n_out)
            self.layers.append(Dense(W, self.flat_parameters[b_slice], dW, self.flat_gradients[b_slice]))
        self.dropouts = [Dropout(self.dropout) for _ in hidden]
        self.embedding: PLR | None = None
        if self.plr:
            self.embedding = PLR(self.n_inputs, self.periodic_columns, self.plr,
                                 self.flat_parameters[n_dense:], self.flat_gradients[n_dense:])  # fmt: skip
            self.embedding.initialise(self.plr_sigma, rng)
        self.widths = widths  # [the first layer's inputs, *hidden, n_classes]

    # ----------------------------------------------------------------- parameters
    def parameters(self) -> list[np.ndarray]:
        """The live parameter arrays, in layer order: W0, b0, W1, b1, ..., then any embeddings' c, W, b.

        They are views into ``flat_parameters``: change them in place
        (``p[...] = ...``), never rebind ``layer.W``.
        """
        dense = [p for layer in self.layers for p in (layer.W, layer.b)]
        e = self.embedding
        return dense if e is None else [*dense, e.c, e.W, e.b]

    def gradients(self) -> list[np.ndarray]:
        """The live gradient buffers, same order as :meth:`parameters`; overwritten by each backward."""
        dense = [g for layer in self.layers for g in (layer.dW, layer.db)]
        e = self.embedding
        return dense if e is None else [*dense, e.dc, e.dW, e.db]

    @property
    def regression(self) -> bool:
        """Whether the output is a prediction of numbers (a regression loss) rather than of classes."""
        return self.loss_fn.regression

    @property
    def n_outputs(self) -> int:
        """The output width: classes, or targets of a regression network."""
        return self.n_classes

    @property
    def n_parameters(self) -> int:
        return sum(p.size for p in self.parameters())

    def penalty(self) -> float:
        """0.5 * l2 * sum(W**2) + l1 * sum(|W|) over the weight matrices."""
        W = self.flat_parameters[: self.n_weights]  # every weight, no bias
        total = 0.0
        if self.l2:
            total += 0.5 * self.l2 * float(np.dot(W, W))
        if self.l1:
            total += self.l1 * float(np.abs(W).sum())
        return total

    # ------------------------------------------------- forward/backward (reference)
    def _forward(
        self, X: np.ndarray, ws: BatchBuffers, masks: Sequence[np.ndarray] | None = None, training: bool = True
    ) -> np.ndarray:
        """Logits (n, n_classes) in ``ws``; dropout is on iff ``masks`` (one (n, h) per hidden layer) are given.

        ``training``: a backward pass follows, so an embedding keeps its arrays for it; at inference
        it keeps nothing, as ``ws`` is the call's own: predictions from several threads stay apart.
        """
        A = X if self.embedding is None else self.embedding.forward(X, keep=training)  # (n, widths[0])
        for i, layer in enumerate(self.layers[:-1]):
            H = layer.forward(A, out=ws.Z[i])  # (n, h): Z, then H = f(Z) in place
            self.act.forward(H)
            A = H if masks is None else self.dropouts[i].forward(H, mask=masks[i], out=ws.dropped[i])
        return self.layers[-1].forward(A, out=ws.Z[-1])  # (n, n_classes)

    def _backward(self, dlogits: np.ndarray, ws: BatchBuffers, dropout: bool) -> None:
        """Fill every layer's dW, db from ``dlogits`` = d(loss)/d(logits), the penalty not included."""
        delta = dlogits  # (n, n_out) of layer i
        for i in range(len(self.layers) - 1, -1, -1):
            # the first layer's input is the data, whose gradient is never needed; an embedding takes
            # its units' gradient from that layer's delta and weights
            if i == 0:
                self.layers[0].backward(delta, need_dX=False)
                if self.embedding is not None:
                    self.embedding.backward(delta, self.layers[0].W)
                break
            dA = self.layers[i].backward(delta, ws.dA[i - 1])
            assert dA is not None
            if dropout:
                self.dropouts[i - 1].backward(dA)  # through the same mask: d(H * m)/dH = m
            self.act.derivative(ws.Z[i - 1], dA)  # ws.Z[i-1] holds H; dA becomes dZ
            delta = dA

    def _add_penalty_gradient(self, scale: float) -> None:
        """Add scale * (l2 * W + l1 * sign(W)) to every weight gradient (biases are not penalised)."""
        W, dW = self.flat_parameters[: self.n_weights], self.flat_gradients[: self.n_weights]
        if self.l2:
            dW += (scale * self.l2) * W  # d(0.5 * l2 * W**2)/dW = l2 * W
        if self.l1:
            dW += (scale * self.l1) * np.sign(W)  # d(l1 * |W|)/dW = l1 * sign(W)

    def _loss_and_backprop(
        self,
        X: np.ndarray,
        y: np.ndarray,
        ws: BatchBuffers,
        masks: Sequence[np.ndarray] | None,
        scale: float,
        sample_weight: np.ndarray | None,
    ) -> float:
        """Mean loss of the batch; fills :meth:`gradients` with scale * d(loss + penalty)."""
        outputs = self._forward(X, ws, masks)
        # outputs -> scale * d(loss)/d(outputs): for cross-entropy scale * (p - onehot(y)) / n
        loss = self.loss_fn.backward(outputs, y, scale=scale, sample_weight=sample_weight)
        self._backward(outputs, ws, masks is not None)
        self._add_penalty_gradient(scale)
        return loss

    def batch_gradients(
        self,
        X: np.ndarray,
        y: np.ndarray,
        rng: np.random.Generator | None = None,
        *,
        scale: float = 1.0,
        sample_weight: np.ndarray | None = None,
    ) -> float:
        """Training step half: fill :meth:`gradients` for one batch, return its mean loss.

        The reference form: ``train()`` runs :class:`model.fused.FastPath` instead,
        which gives the same numbers up to float rounding. Dropout is on when
        ``rng`` is given; every layer's mask is drawn in one block, as the fast path
        draws it, so that both see the same masks for the same ``rng``. The
        gradients include the penalty and are multiplied by ``scale`` (an
        optimizer's ``gradient_scale``); the returned loss excludes the penalty
        (comparable with the validation loss). ``y`` is as the loss takes it: labels
        (n,), or float targets (n, n_outputs) in the network's dtype for regression
        (see :meth:`targets`). ``sample_weight`` (n,) weights the mean.
        """
        dropout = rng is not None and self.dropout > 0
        ws = BatchBuffers(X.shape[0], self.widths, dropout, self.dtype)
        if dropout:
            assert rng is not None
            self.dropouts[0].sample_mask(rng, ws.mask_flat)  # fills ws.masks, one per hidden layer
        return self._loss_and_backprop(X, y, ws, ws.masks if dropout else None, scale, sample_weight)

    def loss_and_gradients(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        masks: Sequence[np.ndarray] | None = None,
        sample_weight: np.ndarray | None = None,
    ) -> tuple[float, list[np.ndarray]]:
        """Mean loss plus penalty on (X, y), and its gradients (copies).

        Dropout is off unless ``masks`` (one (n, h) array of 0 or 1/(1-rate)
        per hidden layer) fixes it, which makes the loss deterministic for a
        gradient check. ``sample_weight`` (n,) weights the mean.
        """
        X = self._as_input(X)
        y = self.targets(y, X.shape[0])
        dropout = masks is not None and self.dropout > 0
        ws = BatchBuffers(X.shape[0], self.widths, dropout, self.dtype)
        loss = self._loss_and_backprop(X, y, ws, masks if dropout else None, 1.0, sample_weight)
        return loss + self.penalty(), [g.copy() for g in self.gradients()]

    def targets(self, y: np.ndarray, n: int, name: str = "y") -> np.ndarray:
        """``y`` checked for n rows, as the loss takes it; ValueError naming what is wrong.

        Classification: integer labels (n,) in [0, n_classes), returned as given.
        Regression: finite numbers (n,) or (n, n_outputs), returned as a C-contiguous
        (n, n_outputs) array of the network's dtype (float32 in the hot path).
        """
        y = np.asarray(y)
        if not self.regression:
            if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
                raise ValueError(f"{name} must hold {n} integer labels, got shape {y.shape} and dtype {y.dtype}")
            if n and (y.min() < 0 or y.max() >= self.n_classes):
                bad = y.min() if y.min() < 0 else y.max()
                raise ValueError(f"{name} labels must be in [0, {self.n_classes}), got {bad}")
            return y
        k = self.n_outputs
        if y.dtype == bool or not np.issubdtype(y.dtype, np.number) or np.iscomplexobj(y):
            raise ValueError(f"{name} must hold numbers for a regression network, got dtype {y.dtype}")
        if y.ndim == 1 and k == 1:
            y = y[:, None]
        if y.shape != (n, k):
            shapes = f"({n},) or ({n}, 1)" if k == 1 else f"({n}, {k})"
            raise ValueError(f"{name} must have shape {shapes} for {k} target(s), got {y.shape}")
        y = np.ascontiguousarray(y, dtype=self.dtype)
        bad = np.flatnonzero(~np.isfinite(y).all(axis=1))
        if bad.size:
            raise ValueError(f"{name} must be finite, got {y[bad[0]].tolist()} at row {bad[0]}")
        return y

    # ----------------------------------------------------------------- inference
    def _as_input(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=self.dtype)
        if X.ndim != 2 or X.shape[1] != self.n_inputs:
            raise ValueError(f"X must have shape (n, {self.n_inputs}), got {X.shape}")
        return self.first_inputs(X)

    def first_inputs(self, X: np.ndarray) -> np.ndarray:
        """What the first layer takes of rows (n, n_inputs): the rows, with their periodic features if any."""
        if not self.periodic:  # a learned embedding, if any, is the first thing forward computes
            return X
        return expand(X, self.periodic_columns, self.periodic, self.dtype)

    def _logits_chunks(self, X: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        X = self._as_input(X)
        ws = None
        for start in range(0, X.shape[0], _CHUNK):
            chunk = np.ascontiguousarray(X[start : start + _CHUNK])
            if ws is None or ws.n != len(chunk):  # one set of buffers for all full chunks
                ws = BatchBuffers(chunk.shape[0], self.widths, False, self.dtype)
            yield start, self._forward(chunk, ws, training=False)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities (n, n_classes), dropout off; rows sum to 1."""
        if self.regression:
            raise ValueError(f"a regression network (loss={self.loss!r}) has no class probabilities: use predict")
        out = np.empty((len(X), self.n_classes), self.dtype)
        for start, logits in self._logits_chunks(X):
            softmax(logits, out=out[start : start + len(logits)])
        return out

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Most probable class per row, (n,) int64; for a regression network the predicted numbers.

        Those are (n,) for one target, as scikit-learn's regressors give them (so that
        ``predict(X) - y`` cannot broadcast to (n, n) by accident), else (n, n_outputs),
        in the network's dtype and in the units the network was trained on.
        """
        if self.regression:
            values = np.empty((len(X), self.n_outputs), self.dtype)
            for start, outputs in self._logits_chunks(X):
                values[start : start + len(outputs)] = outputs
            return values[:, 0] if self.n_outputs == 1 else values
        out = np.empty(len(X), np.int64)
        for start, logits in self._logits_chunks(X):
            out[start : start + len(logits)] = logits.argmax(axis=1)
        return out

    def evaluate(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> tuple[float, float]:
        """(validation loss, accuracy) on (X, y), dropout off; the accuracy is NaN for regression.

        The validation loss is ``LOSSES[loss].validation`` without the penalty and without
        options: plain cross-entropy (no label smoothing) for classes, half the squared
        error (also for a network trained with Huber) for numbers, so that it measures
        the same thing whatever the training loss. ``sample_weight`` (n,) weights its
        mean; the accuracy is unweighted.
        """
        y = np.asarray(y)
        if len(y) == 0:
            raise ValueError("evaluate needs at least one sample, got len(y)=0")
        y = self.targets(y, len(y))
        w_all, total = row_weights(sample_weight, len(y), self.dtype)
        total_loss, correct = 0.0, 0
        for start, outputs in self._logits_chunks(X):
            rows = slice(start, start + len(outputs))
            if not self.regression:
                correct += int(np.count_nonzero(outputs.argmax(axis=1) == y[rows]))
            w = None if w_all is None else w_all[rows]
            chunk_total = len(outputs) if w is None else float(w.sum())
            loss = self.validation_loss.value(outputs, y[rows], sample_weight=w)
            total_loss += loss * chunk_total
        return total_loss / total, math.nan if self.regression else correct / len(y)

    # --------------------------------------------------------------- persistence
    def config(self) -> dict[str, Any]:
        """The constructor arguments that define the architecture (JSON-able)."""
        options = {name: getattr(self, name) for name in self.loss_fn.options}  # label_smoothing or huber_delta
        if self.periodic:  # a network without them keeps the config it always had
            options |= {"periodic": self.periodic, "periodic_columns": list(self.periodic_columns)}
        if self.plr:  # plr_sigma only drew the starting frequencies: kept to say how the network was made
            options |= {"plr": self.plr, "plr_sigma": self.plr_sigma, "periodic_columns": list(self.periodic_columns)}
        return {
            "n_inputs": self.n_inputs, "hidden": list(self.hidden), "n_classes": self.n_classes,
            "activation": self.activation, "leaky_slope": self.leaky_slope, "dropout": self.dropout,
            "l1": self.l1, "l2": self.l2, "loss": self.loss, **options, "dtype": self.dtype.name,
        }  # fmt: skip

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write architecture and weights to ``path`` as .npz (exactly that path; no suffix added)."""
        arrays = {f"p{i}": p for i, p in enumerate(self.parameters())}
        with open(path, "wb") as f:
            np.savez(f, config=np.array(json.dumps(self.config())), **arrays)  # type: ignore[arg-type]  # numpy's stub
        logger.debug("saved network %s to %s", self.config(), path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Network:
        """Rebuild a network written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as data:
            cfg = json.loads(str(data["config"]))
            net = cls(**cfg, seed=0)
            for i, p in enumerate(net.parameters()):
                stored = data[f"p{i}"]
                if stored.shape != p.shape:
                    raise ValueError(f"parameter p{i} in {path} has shape {stored.shape}, expected {p.shape}")
                p[...] = stored
        return net

    def copy_parameters_from(self, params: Sequence[np.ndarray] | np.ndarray) -> None:
        """Overwrite the live parameters in place from a list like :meth:`parameters`
        or a flat array like ``flat_parameters`` (e.g. to restore a snapshot)."""
        if isinstance(params, np.ndarray):
            np.copyto(self.flat_parameters, params)
            return
        for p, q in zip(self.parameters(), params, strict=True):
            np.copyto(p, q)

    def __repr__(self) -> str:
        dims = "-".join(str(w) for w in self.widths)
        loss = "" if self.loss == "cross_entropy" else f"loss={self.loss}, "
        periodic = f"periodic={self.periodic}, " if self.periodic else ""
        periodic += f"plr={self.plr}, " if self.plr else ""
        options = f"dropout={self.dropout}, l1={self.l1}, l2={self.l2}, {loss}{periodic}{self.dtype.name}"
        return f"Network({dims}, {self.activation}, {options})"
