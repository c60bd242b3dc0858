"""Learned numeric embeddings of a table's numbers: periodic, linear, ReLU (PLR).

Gorishniy et al. 2022 ("On embeddings for numerical features in tabular deep
learning"): each chosen number x becomes ``ReLU([cos(2 pi c x), sin(2 pi c x)] @ W_j + b_j)``,
``PLR_K`` frequencies c per column drawn from N(0, sigma) and then *trained*, with a
linear map of its own per column (``W_j`` (2k, d), ``b_j`` (d,)). The network's
first layer takes the rows as given followed by the d units of every column's
embedding. Unlike the frozen features of model/periodic.py, which only add
sines of fixed frequencies, the frequencies and the map are fitted to the data: a
column whose number acts smoothly can learn frequencies near zero and stay
nearly linear, one whose effect has steps or bands can learn sharper ones.

The parameters live in the network's flat array after the dense layers' biases
(never penalised by l1/l2, as PyTorch's reference embeddings are usually trained
without weight decay); the arrays here are views into it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .layers import per_batch_size

__all__ = ["PLR", "PLR_K", "plr_size", "plr_width"]

PLR_K = 16  # frequencies per column
_TWO_PI = 2 * np.pi


def plr_width(n_inputs: int, n_columns: int, d: int) -> int:
    """The first layer's inputs: the rows as given, then ``d`` units per embedded column."""
    return n_inputs + n_columns * d


def plr_size(n_columns: int, d: int) -> int:
    """Parameters: frequencies (m, k), then per-column weights (m, 2k, d), then biases (m, d)."""
    return n_columns * (PLR_K + 2 * PLR_K * d + d)


class _Work:
    """One batch size's arrays, reused batch after batch as the dense layers' buffers are."""

    def __init__(self, m: int, n: int, d: int, width: int, dtype: np.dtype) -> None:
        k = PLR_K
        self.x = np.empty((m, n), dtype)  # the columns' values, column-major
        self.angles = np.empty((m, n, k), dtype)  # 2 pi c x; in backward, d(loss)/d(angles)
        self.half = np.empty((m, n, k), dtype)  # backward's other product
        self.P = np.empty((m, n, 2 * k), dtype)  # cosines, then sines
        self.Z = np.empty((m, n, d), dtype)  # the units, ReLU'd in place
        self.on = np.empty((m, n, d), bool)  # where a unit is positive: ReLU's derivative
        self.dZ = np.empty((m, n, d), dtype)
        self.dP = np.empty((m, n, 2 * k), dtype)
        self.d_units = np.empty((n, m * d), dtype)
        self.out = np.empty((n, width), dtype)  # the first layer's input


class PLR:
    """The embeddings of ``columns``, ``d`` units each, on views of a network's flat arrays.

    ``forward`` remembers what ``backward`` needs, as :class:`model.layers.Dense` does, in
    arrays kept per batch size (a training call allocates nothing once its size has been seen:
    the embedding runs on every batch of a trial); its output is valid until the next training
    ``forward`` of the same number of rows. ``backward`` takes the first layer's delta and
    weights and fills the gradients.
    """

    def __init__(self, n_inputs: int, columns: Sequence[int], d: int, params: np.ndarray, grads: np.ndarray) -> None:
        self.n_inputs, self.columns, self.d = int(n_inputs), list(columns), int(d)
        m, k = len(self.columns), PLR_K
        if params.shape != (plr_size(m, d),) or grads.shape != params.shape:
            raise ValueError(f"params and grads must be ({plr_size(m, d)},), got {params.shape} and {grads.shape}")
        ends = np.cumsum([m * k, m * 2 * k * d, m * d])
        self.c, self.W, self.b = (params[: ends[0]].reshape(m, k), params[ends[0] : ends[1]].reshape(m, 2 * k, d),
                                  params[ends[1] :].reshape(m, d))  # fmt: skip
        self.dc, self.dW, self.db = (grads[: ends[0]].reshape(m, k), grads[ends[0] : ends[1]].reshape(m, 2 * k, d),
                                     grads[ends[1] :].reshape(m, d))  # fmt: skip
        self._work: dict[tuple[int, np.dtype], _Work] = {}
        self._last: _Work | None = None  # the arrays of the last forward, which backward reads

    def __getstate__(self) -> dict[str, object]:
        """Without the per-batch arrays: a network sent to another process carries its parameters, not scratch."""
        return {**self.__dict__, "_work": {}, "_last": None}

    @property
    def width(self) -> int:
        return plr_width(self.n_inputs, len(self.columns), self.d)

    def initialise(self, sigma: float, rng: np.random.Generator) -> None:
        """Frequencies from N(0, sigma); the linear maps as PyTorch's ``nn.Linear`` draws them, U(+-1/sqrt(2k))."""
        m, k = self.c.shape
        self.c[...] = rng.standard_normal((m, k)) * sigma
        bound = 1.0 / np.sqrt(2 * k)
        self.W[...] = rng.uniform(-bound, bound, self.W.shape)
        self.b[...] = rng.uniform(-bound, bound, self.b.shape)

    def _arrays(self, n: int, dtype: np.dtype) -> _Work:
        dt = np.dtype(dtype)
        return per_batch_size(self._work, (n, dt), lambda: _Work(len(self.columns), n, self.d, self.width, dt))

    def forward(self, X: np.ndarray, keep: bool = True) -> np.ndarray:
        """(n, width): ``X``, then each column's d units; remembers what ``backward`` needs.

        ``keep=False`` (inference): in arrays of the call's own, kept by nothing here, so that
        predictions from several threads stay apart and a large input's arrays are freed.
        """
        n, k, d = X.shape[0], PLR_K, self.d
        if keep:
            w = self._last = self._arrays(n, X.dtype)
        else:
            w = _Work(len(self.columns), n, d, self.width, np.dtype(X.dtype))
        np.copyto(w.x, X[:, self.columns].T)
        np.multiply(w.x[:, :, None], (self.c * X.dtype.type(_TWO_PI))[:, None, :], out=w.angles)
        np.cos(w.angles, out=w.P[:, :, :k])
        np.sin(w.angles, out=w.P[:, :, k:])
        np.matmul(w.P, self.W, out=w.Z)
        w.Z += self.b[:, None, :]
        np.maximum(w.Z, 0, out=w.Z)  # Z now holds the units, ReLU(Z): their derivative is (units > 0)
        w.out[:, : self.n_inputs] = X
        w.out[:, self.n_inputs :].reshape(n, -1, d)[...] = w.Z.transpose(1, 0, 2)
        return w.out

    def backward(self, delta: np.ndarray, W: np.ndarray) -> None:
        """Fill dc, dW, db from the first layer's delta (n, n_out) and weights ``W`` (width, n_out).

        Only the rows of ``W`` the units feed are multiplied: the gradient of the rows as given is
        never needed (they are the data).
        """
        w = self._last
        if w is None or w.out.shape[0] != delta.shape[0]:
            raise RuntimeError("PLR.backward called before a forward of the same rows")
        n, k = delta.shape[0], PLR_K
        np.matmul(delta, W[self.n_inputs :].T, out=w.d_units)  # d(loss)/d(units) (n, m d)
        np.greater(w.Z, 0, out=w.on)
        np.multiply(w.d_units.reshape(n, -1, self.d).transpose(1, 0, 2), w.on, out=w.dZ)  # (m, n, d)
        np.matmul(w.P.transpose(0, 2, 1), w.dZ, out=self.dW)  # (m, 2k, d)
        np.sum(w.dZ, axis=1, out=self.db)
        np.matmul(w.dZ, self.W.transpose(0, 2, 1), out=w.dP)  # (m, n, 2k)
        # d cos(a)/da = -sin(a), d sin(a)/da = cos(a): P holds both halves
        d_angles = np.multiply(w.P[:, :, :k], w.dP[:, :, k:], out=w.angles)  # (m, n, k)
        d_angles -= np.multiply(w.P[:, :, k:], w.dP[:, :, :k], out=w.half)
        self.dc[...] = np.matmul(w.x[:, None, :], d_angles)[:, 0, :] * w.x.dtype.type(_TWO_PI)  # sum over n of x * d_a
