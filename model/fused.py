"""The training step's fast path: forward, backward and the momentum update, fused.

``Network`` (network.py) holds the reference maths: one plain forward and
backward that a reader can follow and that the gradient checks test against
finite differences. ``train()`` runs every batch through :class:`FastPath`
instead, which computes the same step with fewer passes over memory, as
scikit-learn keeps ``_forward_pass`` apart from ``_forward_pass_fast``. The
two are tested against each other (tests/model/test_fused.py); this module
is the only place the fusions below live.

What is fused, and why (each measured on 784-256-128-10 in float32, see
tests/bench/bench_epoch.py):

- per-batch buffers are allocated once per batch size and reused: no
  allocation, and no fresh page faults, per batch;
- dropout with a rectifier: since f(z) = z * f'(z), a dropout mask multiplied
  by f'(Z) gives the layer output (Z * mask) and its whole backward (one
  multiplication by the mask); for relu the survivors and z > 0 are combined
  as bools before one conversion to float (float * bool measured 2x slower);
- every layer's dropout mask comes from one random draw per batch;
- bias gradients are ``ones @ dZ``, a BLAS matrix-vector product measured 3x
  faster than ``np.sum(axis=0)`` on (128, 256);
- the loss and its gradient are one pass (the network's ``loss_fn.fused``: for
  softmax cross-entropy ``softmax_cross_entropy_and_gradient``; the regression
  losses are one pass anyway), already multiplied by the
  optimizer's ``gradient_scale`` (-lr for the SGD family), so the optimizer
  needs no pass to apply the learning rate; nothing else here depends on the
  loss, so a regression network takes the same fast path;
- momentum (:meth:`FastPath.momentum_step`): the weight-gradient GEMMs
  accumulate v = mu * v + scale * g straight into the velocity (BLAS beta), and
  one BLAS ``srotm`` then does v += scale * l2 * W; W += v (and a decoupled
  weight decay, W -= lr * weight_decay * W, in the same pass): the whole step
  without ever forming the gradient, three passes over every weight saved
  (model/blas.py falls back to NumPy where that BLAS is missing).
"""

from __future__ import annotations

import numpy as np

from .blas import accumulate_gradients, axpy, decay_and_add
from .layers import BatchBuffers, per_batch_size
from .network import Network

__all__ = ["FastPath"]

_Pair = tuple[np.ndarray, np.ndarray]  # (W-shaped, b-shaped) views of one layer


class _Buffers(BatchBuffers):
    """The reference buffers plus what the fused step needs for the same batch size."""

    def __init__(self, n: int, widths: list[int], dropout: bool, dtype: np.dtype) -> None:
        super().__init__(n, widths, dropout, dtype)
        hidden = widths[1:-1]
        self.ones = np.ones(n, dtype)  # bias gradients as ones @ dZ
        # relu with dropout: the survivors and z > 0 as bools, combined before one conversion
        self.keep_flat = np.empty(self.mask_flat.size, bool)
        ends = np.cumsum([n * w for w in hidden])
        self.keeps = [self.keep_flat[e - n * w : e].reshape(n, w) for e, w in zip(ends, hidden)] if dropout else []
        self.positive = [np.empty((n, w), bool) for w in hidden] if dropout else []


class FastPath:
    """The fused training step of one network; holds its per-batch buffers.

    ``gradients`` is :meth:`Network.batch_gradients` fused; ``momentum_step``
    is that plus a classical momentum step, done without forming the gradient.
    """

    def __init__(self, net: Network) -> None:
        self.net = net
        self._buffers: dict[int, _Buffers] = {}
        self._scratch = np.empty(net.n_weights, net.dtype)  # penalty gradients
        # per velocity array: its per-layer (W, b) views, and (weights, velocity of the
        # weights, velocity of the biases), cached so that BLAS sees the same array
        # objects every batch (their addresses are cached, see blas._addr)
        self._layout: tuple[np.ndarray, list[_Pair], tuple[np.ndarray, ...]] | None = None

    def _workspace(self, n: int) -> _Buffers:
        net = self.net
        return per_batch_size(self._buffers, n, lambda: _Buffers(n, net.widths, net.dropout > 0, net.dtype))

    def _velocity_layout(self, velocity: np.ndarray) -> tuple[list[_Pair], tuple[np.ndarray, ...]]:
        """Per-layer (VW, Vb) views of ``velocity``, and (weights, biases, V of the weights, V of the biases)."""
        cached = self._layout
        if cached is None or cached[0] is not velocity:
            net = self.net
            if velocity.shape != net.flat_parameters.shape or velocity.dtype != net.dtype:
                raise ValueError(f"velocity must be a {net.dtype} array of shape {net.flat_parameters.shape}")
            views, w, b = [], 0, net.n_weights
            for layer in net.layers:
                (n_in, n_out), size = layer.W.shape, layer.W.size
                views.append((velocity[w : w + size].reshape(n_in, n_out), velocity[b : b + n_out]))
                w, b = w + size, b + n_out
            n = net.n_weights
            split = (net.flat_parameters[:n], net.flat_parameters[n:], velocity[:n], velocity[n:])
            cached = self._layout = (velocity, views, split)
        return cached[1], cached[2]

    def _forward(self, X: np.ndarray, ws: _Buffers, rng: np.random.Generator | None) -> np.ndarray:
        """Logits (n, n_classes) in ``ws``; dropout is on iff ``rng`` is given.

        With dropout and a gated activation (relu, leaky relu) the layer's mask
        absorbs f'(Z) and the activation is never applied on its own: the
        output is Z * mask and backward multiplies by the same mask.
        """
        net, act = self.net, self.net.act
        dropout = rng is not None and net.dropout > 0
        bool_gate = dropout and net.activation == "relu"
        keep_scale = net.dtype.type(1.0 / (1.0 - net.dropout))
        if bool_gate:
            assert rng is not None
            net.dropouts[0].sample_keep(rng, ws.keep_flat)  # every layer's survivors, one draw
        elif dropout:
            assert rng is not None
            net.dropouts[0].sample_mask(rng, ws.mask_flat)  # every layer's mask, one draw
        A = X if net.embedding is None else net.embedding.forward(X)  # (n, widths[0])
        last = len(net.layers) - 1
        for i, layer in enumerate(net.layers):
            Z = layer.forward(A, out=ws.Z[i])  # (n, n_out)
            if i == last:
                return Z
            if not dropout:
                act.forward(Z)  # Z now holds H = f(Z)
                A = Z
            elif bool_gate:  # mask = (keep and z > 0) / (1 - rate): relu'(Z) folded in
                keep, M = ws.keeps[i], ws.masks[i]
                np.logical_and(keep, np.greater(Z, 0, out=ws.positive[i]), out=keep)
                np.copyto(M, keep)
                M *= keep_scale
                A = net.dropouts[i].forward(Z, mask=M, out=ws.dropped[i])  # f(Z) * mask
            elif act.gate is not None:
                act.gate(Z, ws.masks[i])  # mask *= f'(Z)
                A = net.dropouts[i].forward(Z, mask=ws.masks[i], out=ws.dropped[i])  # f(Z) * mask
            else:
                act.forward(Z)
                A = net.dropouts[i].forward(Z, mask=ws.masks[i], out=ws.dropped[i])
        raise AssertionError("unreachable")

    def _backward(
        self,
        dlogits: np.ndarray,
        ws: _Buffers,
        dropout: bool,
        velocity: list[_Pair] | None = None,
        beta: float = 0.0,
        embedding_velocity: np.ndarray | None = None,
    ) -> None:
        """Fill every layer's dW, db from ``dlogits`` (the penalty not included).

        With ``velocity`` (per-layer (VW, Vb) views): VW = beta * VW + dW and
        Vb = beta * Vb + db instead, by the GEMMs' beta where BLAS can (dW and db
        are then left untouched), else through dW and db; an embedding's share,
        ``embedding_velocity``, through its gradients.
        """
        net = self.net
        gated = dropout and net.act.gate is not None
        delta = dlogits
        for i in range(len(net.layers) - 1, -1, -1):
            layer = net.layers[i]
            X = layer.input
            if velocity is None or not accumulate_gradients(X, delta, ws.ones, *velocity[i], beta):
                np.matmul(X.T, delta, out=layer.dW)  # (n_in, n_out)
                np.matmul(ws.ones, delta, out=layer.db)  # (n_out,)
                if velocity is not None:
                    for V, g in zip(velocity[i], (layer.dW, layer.db)):
                        V *= V.dtype.type(beta)
                        V += g
            if i == 0:
                if net.embedding is not None:  # the first layer's input is the data, unless embedded
                    net.embedding.backward(delta, layer.W)
                    if embedding_velocity is not None:
                        embedding_velocity *= embedding_velocity.dtype.type(beta)
                        embedding_velocity += net.flat_gradients[net.n_dense :]
                break
            dA = np.matmul(delta, layer.W.T, out=ws.dA[i - 1])  # (n, n_in)
            if dropout:
                net.dropouts[i - 1].backward(dA)  # gated: this is the activation's derivative too
            if not gated:
                # may overwrite H = ws.Z[i-1], which layer i's dW no longer needs
                net.act.derivative(ws.Z[i - 1], dA)
            delta = dA

    def gradients(
        self,
        X: np.ndarray,
        y: np.ndarray,
        rng: np.random.Generator | None = None,
        *,
        scale: float = 1.0,
        sample_weight: np.ndarray | None = None,
    ) -> float:
        """:meth:`Network.batch_gradients`, fused: fill the network's gradients, return the mean loss."""
        net = self.net
        ws = self._workspace(X.shape[0])
        outputs = self._forward(X, ws, rng)
        loss = net.loss_fn.fused(outputs, y, scale=scale, sample_weight=sample_weight)  # -> scaled d(loss)/d(outputs)
        self._backward(outputs, ws, rng is not None and net.dropout > 0)
        W, dW, s = net.flat_parameters[: net.n_weights], net.flat_gradients[: net.n_weights], self._scratch
        if net.l2:
            axpy(scale * net.l2, W, dW, s)  # d(0.5*l2*W^2)/dW = l2*W; one saxpy pass
        if net.l1:
            np.sign(W, out=s)  # d(l1*|W|)/dW = l1*sign(W)
            axpy(scale * net.l1, s, dW, s)
        return loss

    def momentum_step(
        self,
        X: np.ndarray,
        y: np.ndarray,
        rng: np.random.Generator | None,
        *,
        scale: float,
        velocity: np.ndarray,
        mu: float,
        sample_weight: np.ndarray | None = None,
        decay: float = 0.0,
    ) -> float:
        """One whole momentum step on a batch; returns its mean loss.

        velocity = mu * velocity + scale * gradient (penalty included), then
        flat_parameters += velocity: ``Momentum.step_scaled`` with
        ``scale = -lr``. ``decay`` (lr * weight_decay) also shrinks the weights,
        not the biases, by that fraction of their value before the step, as
        ``Optimizer(weight_decay=)`` does. ``velocity`` is laid out like
        ``flat_parameters``. The network's gradients are left unspecified (BLAS
        never forms them).
        """
        net = self.net
        views, (W, biases, V, Vb) = self._velocity_layout(velocity)
        ws = self._workspace(X.shape[0])
        outputs = self._forward(X, ws, rng)
        loss = net.loss_fn.fused(outputs, y, scale=scale, sample_weight=sample_weight)
        Ve = Vb[net.n_dense - net.n_weights :] if net.embedding is not None else None  # after the biases'
        self._backward(outputs, ws, rng is not None and net.dropout > 0, views, mu, Ve)
        s = self._scratch
        if net.l1:
            np.sign(W, out=s)
            axpy(scale * net.l1, s, V, s)
        decay_and_add(scale * net.l2, W, V, s, decay)  # V += scale*l2*W; W = (1 - decay) W + V: one pass
        biases += Vb  # biases: not penalised
        return loss
