"""Optimizers that update parameter arrays in place, and learning-rate schedules.

Each optimizer is built with the live parameter arrays (so its state matches
their shapes and dtypes) and ``step(grads)`` changes those arrays in place,
using preallocated scratch buffers: no array is allocated per step. The
gradients are only read. ``lr`` is a plain attribute that a schedule may set
between steps.

The training loop's fast path asks the network for gradients already
multiplied by ``gradient_scale`` (for the SGD family, -lr: backprop is linear
in the output gradient, so scaling the (n, n_classes) logit gradient scales
every parameter gradient for free) and calls ``step_scaled``, which then needs
no pass over the gradient to apply the learning rate: 3 instead of 4 passes
over each weight matrix for momentum, measured ~15% of a 784x256 update.

Decoupled weight decay (Loshchilov & Hutter 2019, "AdamW"): ``weight_decay`` > 0
shrinks the ``decayed`` arrays (the training loop passes the weights, not the
biases) by w <- w * (1 - lr * weight_decay) before every step, apart from the
gradient. For plain SGD that is the same as an L2 penalty; for Adam it is not:
an L2 gradient is divided by sqrt(v_hat) like the rest, so weights with large
gradients would be decayed less, which AdamW's decay avoids. It equals PyTorch's
``AdamW(weight_decay=)`` for Adam, and is SGDW for momentum and Nesterov.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "SGD",
    "Adam",
    "Momentum",
    "Nesterov",
    "Optimizer",
    "learning_rate_at",
    "make_optimizer",
]


class Optimizer:
    """Base class: holds the parameters, a learning rate and one scratch buffer per parameter.

    ``weight_decay`` (>= 0) and ``decayed`` (arrays that are views into the
    parameters; all of them by default): see the module's docstring. Subclasses
    write ``_step`` and ``_step_scaled``; ``step`` and ``step_scaled`` apply the
    decay first, as PyTorch's AdamW does.
    """

    def __init__(
        self,
        params: Sequence[np.ndarray],
        lr: float,
        *,
        weight_decay: float = 0.0,
        decayed: Sequence[np.ndarray] | None = None,
    ) -> None:
        if not (lr > 0 and np.isfinite(lr)):
            raise ValueError(f"lr must be a positive finite number, got {lr=}")
        if not (weight_decay >= 0 and np.isfinite(weight_decay)):
            raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay=}")
        self.params = list(params)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.decayed = self.params if decayed is None else list(decayed)
        self._scratch = [np.empty_like(p) for p in self.params]

    @property
    def gradient_scale(self) -> float:
        """The factor ``step_scaled`` expects the gradients to be multiplied by already."""
        return 1.0

    @property
    def decay(self) -> float:
        """The fraction of the decayed weights' value the next step takes away: lr * weight_decay."""
        return self.lr * self.weight_decay

    def _decay(self) -> None:
        """w <- w * (1 - lr * weight_decay) for every decayed array (nothing when weight_decay is 0)."""
        if self.weight_decay:
            for w in self.decayed:
                w *= w.dtype.type(1.0 - self.decay)

    def state(self) -> list[np.ndarray]:
        """The arrays the optimizer carries from step to step (none for plain SGD)."""
        return []

    def flush_subnormal(self) -> None:
        """Set every parameter and state value below the dtype's smallest normal number to zero.

        Why: the weights of units that stopped learning shrink under L2 and Adam's
        moments under their betas, geometrically, into the subnormal range, where x86
        arithmetic on them is tens of times slower and NumPy cannot set the CPU's
        flush-to-zero. On Wells a 950-unit network's last epochs were 4.4 times
        slower than its first, a sixth of its weights subnormal by the end, and its
        final networks overran what the budget had measured for them
        (docs/budget.md, "Subnormal numbers"; ``tests/bench/bench_subnormal.py``).
        Called once an epoch: a value crosses that range once, and what the
        zeroing changes is below anything float32 can add to a normal number.
        """
        for a in (*self.params, *self.state()):
            np.copyto(a, 0, where=np.abs(a) < np.finfo(a.dtype).tiny)

    def step(self, grads: Sequence[np.ndarray]) -> None:
        """Update the parameters in place from plain gradients (taken at the weights before this step)."""
        self._decay()
        self._step(grads)

    def step_scaled(self, scaled_grads: Sequence[np.ndarray]) -> None:
        """Update from ``gradient_scale * gradients``."""
        self._decay()
        self._step_scaled(scaled_grads)

    def _step(self, grads: Sequence[np.ndarray]) -> None:
        raise NotImplementedError

    def _step_scaled(self, scaled_grads: Sequence[np.ndarray]) -> None:
        self._step(scaled_grads)  # the default scale is 1

    def accumulator(self) -> tuple[np.ndarray, float] | None:
        """``(buffer, beta)`` if a whole step is buffer = beta * buffer + gradient_scale * gradient;
        params += buffer, which the caller may then do itself (``model.fused.FastPath.momentum_step``,
        with no call to this optimizer, which then also applies :attr:`decay` to the weights);
        None if the step needs the gradient itself. Only for a single parameter array."""
        return None


class SGD(Optimizer):
    """w <- w - lr * g"""

    @property
    def gradient_scale(self) -> float:
        return -self.lr

    def _step(self, grads: Sequence[np.ndarray]) -> None:
        for w, g, s in zip(self.params, grads, self._scratch):
            np.multiply(g, w.dtype.type(self.lr), out=s)
            w -= s

    def _step_scaled(self, scaled_grads: Sequence[np.ndarray]) -> None:
        for w, g in zip(self.params, scaled_grads):
            w += g  # g = -lr * gradient


class Momentum(SGD):
    """Classical momentum: v <- mu * v - lr * g;  w <- w + v  (v starts at 0)."""

    def __init__(
        self,
        params: Sequence[np.ndarray],
        lr: float,
        momentum: float = 0.9,
        *,
        weight_decay: float = 0.0,
        decayed: Sequence[np.ndarray] | None = None,
    ) -> None:
        super().__init__(params, lr, weight_decay=weight_decay, decayed=decayed)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum=}")
        self.momentum = float(momentum)
        self.velocity = [np.zeros_like(p) for p in self.params]

    def state(self) -> list[np.ndarray]:
        return self.velocity

    def _step(self, grads: Sequence[np.ndarray]) -> None:
        for w, g, v, s in zip(self.params, grads, self.velocity, self._scratch):
            v *= w.dtype.type(self.momentum)
            np.multiply(g, w.dtype.type(self.lr), out=s)
            v -= s
            w += v

    def _step_scaled(self, scaled_grads: Sequence[np.ndarray]) -> None:
        for w, g, v in zip(self.params, scaled_grads, self.velocity):
            v *= w.dtype.type(self.momentum)
            v += g  # g = -lr * gradient
            w += v

    def accumulator(self) -> tuple[np.ndarray, float] | None:
        # v <- mu * v - lr * g; w <- w + v (Nesterov's step has another form)
        if type(self) is not Momentum or len(self.params) != 1:
            return None
        return self.velocity[0], self.momentum


class Nesterov(Momentum):
    """Nesterov momentum in the form that needs no look-ahead evaluation (Sutskever 2013):

    v <- mu * v - lr * g;  w <- w + mu * v - lr * g.
    The same update as PyTorch's ``SGD(nesterov=True)`` written with v = -lr * buf.
    """

    def _step(self, grads: Sequence[np.ndarray]) -> None:
        for w, g, v, s in zip(self.params, grads, self.velocity, self._scratch):
            mu = w.dtype.type(self.momentum)
            np.multiply(g, w.dtype.type(self.lr), out=s)  # s = lr * g
            v *= mu
            v -= s  # v = mu * v - lr * g
            w -= s
            np.multiply(v, mu, out=s)
            w += s  # w += mu * v - lr * g

    def _step_scaled(self, scaled_grads: Sequence[np.ndarray]) -> None:
        for w, g, v, s in zip(self.params, scaled_grads, self.velocity, self._scratch):
            mu = w.dtype.type(self.momentum)
            v *= mu
            v += g  # g = -lr * gradient
            w += g
            np.multiply(v, mu, out=s)
            w += s


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction, eps added to sqrt(v_hat):

    m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;
    w <- w - lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps).
    With ``weight_decay`` it is AdamW: w <- w * (1 - lr * weight_decay) first.
    """

    def __init__(
        self,
        params: Sequence[np.ndarray],
        lr: float,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        *,
        weight_decay: float = 0.0,
        decayed: Sequence[np.ndarray] | None = None,
    ) -> None:
        super().__init__(params, lr, weight_decay=weight_decay, decayed=decayed)
        if not 0.0 <= beta1 < 1.0:
            raise ValueError(f"beta1 must be in [0, 1), got {beta1=}")
        if not 0.0 <= beta2 < 1.0:
            raise ValueError(f"beta2 must be in [0, 1), got {beta2=}")
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.t = 0

    def state(self) -> list[np.ndarray]:
        return [*self.m, *self.v]

    def _step(self, grads: Sequence[np.ndarray]) -> None:
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        c1, c2 = 1.0 - b1**self.t, 1.0 - b2**self.t  # bias corrections
        for w, g, m, v, s in zip(self.params, grads, self.m, self.v, self._scratch):
            f = w.dtype.type
            m *= f(b1)
            np.multiply(g, f(1.0 - b1), out=s)
            m += s
            v *= f(b2)
            np.multiply(g, g, out=s)
            s *= f(1.0 - b2)
            v += s
            np.multiply(v, f(1.0 / c2), out=s)
            np.sqrt(s, out=s)
            s += f(self.eps)  # s = sqrt(v_hat) + eps
            np.divide(m, s, out=s)
            s *= f(self.lr / c1)  # s = lr * m_hat / (sqrt(v_hat) + eps)
            w -= s


OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "momentum": Momentum, "nesterov": Nesterov, "adam": Adam}


def make_optimizer(
    name: str,
    params: Sequence[np.ndarray],
    lr: float,
    momentum: float = 0.9,
    *,
    weight_decay: float = 0.0,
    decayed: Sequence[np.ndarray] | None = None,
) -> Optimizer:
    """Build an optimizer by name; ``momentum`` is mu for momentum/nesterov and beta1 for adam.

    ``weight_decay`` shrinks the ``decayed`` views (default: every parameter) each step.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {name=}")
    if name == "sgd":
        return SGD(params, lr, weight_decay=weight_decay, decayed=decayed)
    if name == "adam":
        return Adam(params, lr, beta1=momentum, weight_decay=weight_decay, decayed=decayed)
    cls = OPTIMIZERS[name]
    assert issubclass(cls, Momentum)  # momentum and nesterov: the ones that take mu
    return cls(params, lr, momentum, weight_decay=weight_decay, decayed=decayed)


SCHEDULES = ("none", "step", "exponential", "cosine")


def learning_rate_at(
    t: float, base: float, schedule: str, decay: float = 0.5, step: int = 10, *, epochs: int = 1, warmup: int = 0
) -> float:
    """Learning rate at ``t`` epochs into a run of ``epochs`` (t may be fractional: per-step schedules).

    With e = floor(t), the 0-based epoch (so the first epoch always uses ``base``):
    none: base;  step: base * decay ** (e // step);  exponential: base * decay ** e;
    cosine: base * (1 + cos(pi * t / epochs)) / 2, from base at t = 0 to 0 at t = epochs.
    A linear warm-up multiplies any of them by min(1, t / warmup) when ``warmup`` > 0:
    large steps on random weights are what it avoids, so it ramps from ~0 over the first
    ``warmup`` epochs. The training loop passes t at the middle of each step, so no step
    has a learning rate of exactly 0 (neither the first under warm-up nor the last under cosine).
    """
    if schedule == "none":
        lr = base
    elif schedule == "step":
        lr = base * decay ** (math.floor(t) // step)
    elif schedule == "exponential":
        lr = base * decay ** math.floor(t)
    elif schedule == "cosine":
        lr = base * 0.5 * (1.0 + math.cos(math.pi * min(t / epochs, 1.0)))
    else:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule=}")
    if warmup > 0 and t < warmup:
        lr *= t / warmup
    return lr
