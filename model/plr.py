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

__all__ = ["PLR", "PLR_K", "plr_size", "plr_width"]

PLR_K = 16  # frequencies per column
_TWO_PI = 2 * np.pi


def plr_width(n_inputs: int, n_columns: int, d: int) -> int:
    """The first layer's inputs: the rows as given, then ``d`` units per embedded column."""
    return n_inputs + n_columns * d


def plr_size(n_columns: int, d: int) -> int:
    """Parameters: frequencies (m, k), then per-column weights (m, 2k, d), then biases (m, d)."""
    return n_columns * (PLR_K + 2 * PLR_K * d + d)


class PLR:
    """The embeddings of ``columns``, ``d`` units each, on views of a network's flat arrays.

    ``forward`` remembers what ``backward`` needs, as :class:`model.layers.Dense` does;
    ``backward`` takes the gradient of the first layer's inputs and fills the gradients.
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
        self._cache: tuple[np.ndarray, ...] | None = None

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

    def forward(self, X: np.ndarray) -> np.ndarray:
        """(n, width): ``X``, then each column's d units; remembers what ``backward`` needs."""
        n, k = X.shape[0], PLR_K
        x = np.ascontiguousarray(X[:, self.columns].T)  # (m, n)
        angles = x[:, :, None] * (self.c * X.dtype.type(_TWO_PI))[:, None, :]  # (m, n, k)
        P = np.empty((*angles.shape[:2], 2 * k), X.dtype)  # (m, n, 2k): cosines, then sines
        np.cos(angles, out=P[:, :, :k])
        np.sin(angles, out=P[:, :, k:])
        Z = np.matmul(P, self.W)  # (m, n, d)
        Z += self.b[:, None, :]
        np.maximum(Z, 0, out=Z)  # Z now holds the units, ReLU(Z): their derivative is (units > 0)
        out = np.empty((n, self.width), X.dtype)
        out[:, : self.n_inputs] = X
        out[:, self.n_inputs :].reshape(n, -1, self.d)[...] = Z.transpose(1, 0, 2)
        self._cache = (x, P, Z)
        return out

    def backward(self, d_inputs: np.ndarray) -> None:
        """Fill dc, dW, db from d(loss)/d(first layer's inputs) (n, width)."""
        if self._cache is None:
            raise RuntimeError("PLR.backward called before forward")
        x, P, units = self._cache
        n, k = x.shape[1], PLR_K
        dZ = d_inputs[:, self.n_inputs :].reshape(n, -1, self.d).transpose(1, 0, 2) * (units > 0)  # (m, n, d)
        np.matmul(P.transpose(0, 2, 1), dZ, out=self.dW)  # (m, 2k, d)
        np.sum(dZ, axis=1, out=self.db)
        dP = np.matmul(dZ, self.W.transpose(0, 2, 1))  # (m, n, 2k)
        # d cos(a)/da = -sin(a), d sin(a)/da = cos(a): P holds both halves
        d_angles = P[:, :, :k] * dP[:, :, k:] - P[:, :, k:] * dP[:, :, :k]  # (m, n, k)
        self.dc[...] = np.matmul(x[:, None, :], d_angles)[:, 0, :] * x.dtype.type(_TWO_PI)  # sum over n of x * d_a
