"""The fused training step (model/fused.py) against the reference network (model/network.py)."""

from __future__ import annotations

import numpy as np
import pytest

from model import ACTIVATIONS, Network
from model.fused import FastPath
from model.optim import OPTIMIZERS, make_optimizer


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("embedded", [False, True], ids=["rows", "learned embeddings"])
def test_fast_path_and_reference_give_the_same_parameters_after_some_steps(optimizer, activation, dropout, embedded):
    # float64, so that what is compared is the maths, not the order of float32 roundings; learned
    # embeddings' parameters sit after the biases: the momentum step must carry their velocity too
    rng = np.random.default_rng(7)
    X, y = rng.standard_normal((12, 6)), rng.integers(0, 3, 12)
    kwargs = {"leaky_slope": 0.1, "dropout": dropout, "l1": 1e-3, "l2": 1e-2, "seed": 2, "dtype": np.float64}
    if embedded:
        kwargs |= {"plr": 3, "plr_sigma": 0.5, "periodic_columns": [0, 2, 3]}
    reference, fused = Network(6, (5, 4), 3, activation, **kwargs), Network(6, (5, 4), 3, activation, **kwargs)
    fast = FastPath(fused)
    opt_ref = make_optimizer(optimizer, [reference.flat_parameters], 0.1, 0.9)
    opt_fast = make_optimizer(optimizer, [fused.flat_parameters], 0.1, 0.9)
    momentum = opt_fast.accumulator()  # what train() uses: the whole step fused, for momentum
    for step in range(5):
        loss_ref = reference.batch_gradients(X, y, np.random.default_rng(step), scale=opt_ref.gradient_scale)
        opt_ref.step_scaled([reference.flat_gradients])
        scale = opt_fast.gradient_scale
        if momentum is None:
            loss_fast = fast.gradients(X, y, np.random.default_rng(step), scale=scale)
            opt_fast.step_scaled([fused.flat_gradients])
        else:
            velocity, mu = momentum
            loss_fast = fast.momentum_step(X, y, np.random.default_rng(step), scale=scale, velocity=velocity, mu=mu)
        assert loss_fast == pytest.approx(loss_ref, rel=1e-12)
    assert (momentum is not None) == (optimizer == "momentum")
    start = Network(6, (5, 4), 3, activation, **kwargs).flat_parameters
    assert not np.array_equal(fused.flat_parameters, start)
    assert not embedded or not np.allclose(fused.flat_parameters[fused.n_dense :], start[fused.n_dense :])
    np.testing.assert_allclose(fused.flat_parameters, reference.flat_parameters, rtol=1e-12, atol=1e-14)


def test_fast_gradients_equal_the_reference_gradients_in_float32():
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((64, 20)).astype(np.float32), rng.integers(0, 4, 64)
    nets = [Network(20, (32, 16), 4, "relu", dropout=0.2, l1=1e-4, l2=1e-3, seed=3) for _ in range(2)]
    loss_ref = nets[0].batch_gradients(X, y, np.random.default_rng(5), scale=-0.01)
    loss_fast = FastPath(nets[1]).gradients(X, y, np.random.default_rng(5), scale=-0.01)
    assert loss_fast == pytest.approx(loss_ref, rel=1e-5)
    np.testing.assert_allclose(nets[1].flat_gradients, nets[0].flat_gradients, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize(
    "options, n_out",
    [
        ({"loss": "cross_entropy", "label_smoothing": 0.1}, 3),
        ({"loss": "squared_error"}, 2),
        ({"loss": "huber", "huber_delta": 0.5}, 1),
    ],
    ids=["smoothed", "squared_error", "huber"],
)
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_fast_path_equals_reference_with_weights_every_loss_and_weight_decay(optimizer, options, n_out, activation):
    # what train() does per batch: the fused step (momentum: with the decay folded into the BLAS pass)
    # against the reference gradients followed by the optimizer's own decay and step
    rng = np.random.default_rng(3)
    X = rng.standard_normal((12, 6))
    y = rng.integers(0, n_out, 12) if options["loss"] == "cross_entropy" else rng.standard_normal((12, n_out))
    w = rng.uniform(0.0, 2.0, 12)
    kwargs = {"dropout": 0.3, "l1": 1e-3, "l2": 1e-2, "seed": 2, "dtype": np.float64, **options}
    reference, fused = Network(6, (5, 4), n_out, activation, **kwargs), Network(6, (5, 4), n_out, activation, **kwargs)
    fast = FastPath(fused)
    opts = [
        make_optimizer(optimizer, [net.flat_parameters], 0.1, 0.9, weight_decay=0.5,
                       decayed=[net.flat_parameters[: net.n_weights]])
        for net in (reference, fused)
    ]  # fmt: skip
    momentum = opts[1].accumulator()
    for step in range(4):
        loss_ref = reference.batch_gradients(
            X, y, np.random.default_rng(step), scale=opts[0].gradient_scale, sample_weight=w
        )
        opts[0].step_scaled([reference.flat_gradients])
        scale, step_rng = opts[1].gradient_scale, np.random.default_rng(step)
        if momentum is None:
            loss_fast = fast.gradients(X, y, step_rng, scale=scale, sample_weight=w)
            opts[1].step_scaled([fused.flat_gradients])
        else:
            velocity, mu = momentum
            loss_fast = fast.momentum_step(
                X, y, step_rng, scale=scale, velocity=velocity, mu=mu, sample_weight=w, decay=opts[1].decay
            )
        assert loss_fast == pytest.approx(loss_ref, rel=1e-12)
    np.testing.assert_allclose(fused.flat_parameters, reference.flat_parameters, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("blas", [True, False])
def test_decay_folded_into_the_float32_momentum_step_equals_decaying_first(monkeypatch, blas):
    # BLAS srotm: W <- (1 + c - decay) W + V with V <- c W + V, one pass; NumPy fallback: the same in three
    import model.blas

    if not blas:
        monkeypatch.setattr(model.blas, "_cblas", None)
    rng = np.random.default_rng(5)
    X, y = rng.standard_normal((16, 5)).astype(np.float32), rng.integers(0, 3, 16)
    nets = [Network(5, (6,), 3, l2=1e-2, seed=1) for _ in range(2)]
    opt = make_optimizer("momentum", [nets[0].flat_parameters], 0.05, 0.9, weight_decay=0.2,
                         decayed=[nets[0].flat_parameters[: nets[0].n_weights]])  # fmt: skip
    velocity = np.zeros_like(nets[1].flat_parameters)
    for _ in range(3):
        nets[0].batch_gradients(X, y, scale=opt.gradient_scale)
        opt.step_scaled([nets[0].flat_gradients])
        FastPath(nets[1]).momentum_step(X, y, None, scale=-0.05, velocity=velocity, mu=0.9, decay=0.05 * 0.2)
    np.testing.assert_allclose(nets[1].flat_parameters, nets[0].flat_parameters, rtol=1e-5, atol=1e-6)
    assert nets[1].flat_parameters.dtype == np.float32
