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
def test_fast_path_and_reference_give_the_same_parameters_after_some_steps(optimizer, activation, dropout):
    # float64, so that what is compared is the maths, not the order of float32 roundings
    rng = np.random.default_rng(7)
    X, y = rng.standard_normal((12, 6)), rng.integers(0, 3, 12)
    kwargs = {"leaky_slope": 0.1, "dropout": dropout, "l1": 1e-3, "l2": 1e-2, "seed": 2, "dtype": np.float64}
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
    assert not np.array_equal(fused.flat_parameters, Network(6, (5, 4), 3, activation, **kwargs).flat_parameters)
    np.testing.assert_allclose(fused.flat_parameters, reference.flat_parameters, rtol=1e-12, atol=1e-14)


def test_fast_gradients_equal_the_reference_gradients_in_float32():
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((64, 20)).astype(np.float32), rng.integers(0, 4, 64)
    nets = [Network(20, (32, 16), 4, "relu", dropout=0.2, l1=1e-4, l2=1e-3, seed=3) for _ in range(2)]
    loss_ref = nets[0].batch_gradients(X, y, np.random.default_rng(5), scale=-0.01)
    loss_fast = FastPath(nets[1]).gradients(X, y, np.random.default_rng(5), scale=-0.01)
    assert loss_fast == pytest.approx(loss_ref, rel=1e-5)
    np.testing.assert_allclose(nets[1].flat_gradients, nets[0].flat_gradients, rtol=1e-4, atol=1e-7)
