"""Optimizer steps worked by hand, with the arithmetic in comments, and LR schedules."""

from __future__ import annotations

import numpy as np
import pytest

from model.optim import SGD, Adam, Momentum, Nesterov, learning_rate_at, make_optimizer


def _w():
    return np.array([1.0, -2.0])


G = np.array([0.5, 0.25])


def test_sgd_step():
    w = _w()
    SGD([w], lr=0.1).step([G])
    # w - lr*g = [1 - 0.05, -2 - 0.025]
    np.testing.assert_allclose(w, [0.95, -2.025], rtol=1e-15)


def test_momentum_two_steps():
    w = _w()
    opt = Momentum([w], lr=0.1, momentum=0.9)
    opt.step([G])
    # v = 0.9*0 - 0.1*[0.5, 0.25] = [-0.05, -0.025];  w = [1, -2] + v = [0.95, -2.025]
    np.testing.assert_allclose(opt.velocity[0], [-0.05, -0.025], rtol=1e-15)
    np.testing.assert_allclose(w, [0.95, -2.025], rtol=1e-15)
    opt.step([G])
    # v = 0.9*[-0.05, -0.025] - [0.05, 0.025] = [-0.095, -0.0475];  w = [0.855, -2.0725]
    np.testing.assert_allclose(opt.velocity[0], [-0.095, -0.0475], rtol=1e-14)
    np.testing.assert_allclose(w, [0.855, -2.0725], rtol=1e-14)


def test_nesterov_two_steps():
    w = _w()
    opt = Nesterov([w], lr=0.1, momentum=0.9)
    opt.step([G])
    # v = -0.1*g = [-0.05, -0.025];  w += 0.9*v - 0.1*g = [-0.045-0.05, -0.0225-0.025] -> [0.905, -2.0475]
    np.testing.assert_allclose(w, [0.905, -2.0475], rtol=1e-14)
    opt.step([G])
    # v = 0.9*[-0.05, -0.025] - [0.05, 0.025] = [-0.095, -0.0475]
    # w += 0.9*v - 0.1*g = [-0.0855-0.05, -0.04275-0.025] = [-0.1355, -0.06775] -> [0.7695, -2.11525]
    np.testing.assert_allclose(opt.velocity[0], [-0.095, -0.0475], rtol=1e-14)
    np.testing.assert_allclose(w, [0.7695, -2.11525], rtol=1e-14)


def test_adam_two_steps():
    w = _w()
    g1 = np.array([0.5, -0.25])
    opt = Adam([w], lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8)
    opt.step([g1])
    # m = 0.1*g = [0.05, -0.025];  v = 0.001*g^2 = [2.5e-4, 6.25e-5]
    # m_hat = m/0.1 = g;  v_hat = v/0.001 = g^2;  step = 0.1 * g/(|g| + 1e-8) = 0.1*sign(g)*(1 - 1e-8/|g|)
    np.testing.assert_allclose(opt.m[0], [0.05, -0.025], rtol=1e-15)
    np.testing.assert_allclose(opt.v[0], [2.5e-4, 6.25e-5], rtol=1e-12)
    np.testing.assert_allclose(w, [1 - 0.1 * (1 - 2e-8), -2 + 0.1 * (1 - 4e-8)], rtol=1e-15)
    g2 = np.array([0.1, 0.1])
    opt.step([g2])
    # m = 0.9*[0.05, -0.025] + 0.1*[0.1, 0.1] = [0.055, -0.0125]
    # v = 0.999*[2.5e-4, 6.25e-5] + 0.001*[0.01, 0.01] = [2.5975e-4, 7.24375e-5]
    # bias corrections: 1 - 0.9^2 = 0.19, 1 - 0.999^2 = 0.001999
    # step = 0.1 * (m/0.19) / (sqrt(v/0.001999) + 1e-8)
    #      = 0.1 * [0.289474, -0.065789] / [0.360473, 0.190357] = [0.080304, -0.034561]
    np.testing.assert_allclose(opt.m[0], [0.055, -0.0125], rtol=1e-14)
    np.testing.assert_allclose(opt.v[0], [2.5975e-4, 7.24375e-5], rtol=1e-12)
    after_one = np.array([1 - 0.1 * (1 - 2e-8), -2 + 0.1 * (1 - 4e-8)])
    np.testing.assert_allclose(w, after_one - [0.080304, -0.034561], rtol=0, atol=2e-6)


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adam"])
def test_float32_parameters_stay_float32_and_update_in_place(name):
    w = np.ones((3, 4), np.float32)
    before = w.__array_interface__["data"][0]
    opt = make_optimizer(name, [w], lr=0.01)
    opt.step([np.full((3, 4), 0.5, np.float32)])
    assert w.dtype == np.float32 and w.__array_interface__["data"][0] == before
    assert np.all(w < 1)


def test_unknown_optimizer_names_the_value():
    with pytest.raises(ValueError, match="name='rmsprop'"):
        make_optimizer("rmsprop", [np.ones(2)], lr=0.1)


def test_learning_rate_schedules():
    assert [learning_rate_at(e, 0.1, "none") for e in (0, 5, 50)] == [0.1, 0.1, 0.1]
    # step: halve every 10 epochs (0-based epoch index)
    assert [learning_rate_at(e, 0.1, "step", 0.5, 10) for e in (0, 9, 10, 25)] == pytest.approx([0.1, 0.1, 0.05, 0.025])
    # exponential: 0.1 * 0.9**e
    assert [learning_rate_at(e, 0.1, "exponential", 0.9) for e in (0, 1, 2)] == pytest.approx([0.1, 0.09, 0.081])


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adam"])
def test_step_scaled_on_prescaled_gradients_equals_step(name):
    # the training loop's fast path: backprop hands over gradient_scale * g instead of g
    rng = np.random.default_rng(0)
    w1, w2 = rng.standard_normal((3, 4)), None
    w2 = w1.copy()
    plain, fast = make_optimizer(name, [w1], lr=0.05), make_optimizer(name, [w2], lr=0.05)
    for lr in (0.05, 0.02):  # a schedule changes lr between steps
        plain.lr = fast.lr = lr
        g = rng.standard_normal((3, 4))
        plain.step([g])
        fast.step_scaled([fast.gradient_scale * g])
    np.testing.assert_allclose(w2, w1, rtol=1e-13, atol=1e-15)


def test_decoupled_weight_decay_shrinks_the_decayed_weights_before_the_step():
    W, b = _w(), np.array([0.5])
    opt = SGD([W, b], lr=0.1, weight_decay=0.5, decayed=[W])
    opt.step([G, np.array([0.2])])
    # W * (1 - lr * wd) - lr * g = [1, -2] * 0.95 - [0.05, 0.025] = [0.9, -1.925]; b is not decayed: 0.5 - 0.02
    np.testing.assert_allclose(W, [0.9, -1.925], rtol=1e-15)
    np.testing.assert_allclose(b, [0.48], rtol=1e-15)


def test_momentum_with_weight_decay_two_steps():
    w = _w()
    opt = Momentum([w], lr=0.1, momentum=0.9, weight_decay=1.0)
    opt.step([G])
    # decay 1 - 0.1 = 0.9: w = [0.9, -1.8];  v = -0.1*g = [-0.05, -0.025];  w = [0.85, -1.825]
    np.testing.assert_allclose(w, [0.85, -1.825], rtol=1e-15)
    opt.step([G])
    # w = 0.9 * [0.85, -1.825] = [0.765, -1.6425];  v = 0.9*v - 0.1*g = [-0.095, -0.0475];  w = [0.67, -1.69]
    np.testing.assert_allclose(w, [0.67, -1.69], rtol=1e-14)


def test_adamw_step_by_hand():
    w = _w()
    opt = Adam([w], lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.2)
    opt.step([np.array([0.5, -0.25])])
    # decay: w * (1 - 0.1 * 0.2) = [0.98, -1.96]; then Adam's first step, 0.1 * sign(g) * (1 - eps/|g|):
    np.testing.assert_allclose(w, [0.98 - 0.1 * (1 - 2e-8), -1.96 + 0.1 * (1 - 4e-8)], rtol=1e-15)


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adam"])
def test_zero_weight_decay_changes_nothing_and_float32_stays_float32(name):
    rng = np.random.default_rng(0)
    w1 = rng.standard_normal(6).astype(np.float32)
    w2, w3 = w1.copy(), w1.copy()
    g = rng.standard_normal(6).astype(np.float32)
    make_optimizer(name, [w1], lr=0.05).step([g])
    make_optimizer(name, [w2], lr=0.05, weight_decay=0.0).step([g])
    make_optimizer(name, [w3], lr=0.05, weight_decay=0.1).step([g])
    np.testing.assert_array_equal(w1, w2)
    assert w3.dtype == np.float32 and not np.array_equal(w1, w3)


def test_negative_weight_decay_names_the_value():
    with pytest.raises(ValueError, match="weight_decay=-0.1"):
        make_optimizer("adam", [np.ones(2)], lr=0.1, weight_decay=-0.1)


@pytest.mark.parametrize("cls", [SGD, Momentum, Nesterov, Adam])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_subnormal_parameters_and_state_are_flushed_to_zero_and_nothing_else_changes(cls, dtype) -> None:
    tiny = np.finfo(dtype).tiny
    values = np.array([tiny / 4, -tiny / 1000, tiny, -tiny, 0.0, 1e-3, -2.0], dtype)
    w = values.copy()
    opt = cls([w], lr=0.1)
    for a in opt.state():
        a[:] = values
    opt.flush_subnormal()
    expected = np.array([0.0, 0.0, tiny, -tiny, 0.0, 1e-3, -2.0], dtype)
    for a in (w, *opt.state()):
        np.testing.assert_array_equal(a, expected)
    assert len(opt.state()) == {SGD: 0, Momentum: 1, Nesterov: 1, Adam: 2}[cls]


def test_training_flushes_a_dead_units_subnormal_weights_after_each_epoch() -> None:
    from model import TrainConfig
    from model.train import Training

    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    config = TrainConfig(hidden=(8,), optimizer="adam", learning_rate=0.01, epochs=3, batch_size=16, seed=0)
    run = Training(config, X, y, X, y, n_classes=2)
    dense = run.net.layers[0]
    # unit 0 never fires (ReLU of a bias of -1e6): no gradient reaches its weights, which keep
    # whatever they hold, here values in float32's subnormal range, as L2 and Adam's tail leave them
    dense.b[0], dense.W[:, 0] = -1e6, np.float32(1e-39)
    assert run.step() is not None
    assert (dense.W[:, 0] == 0).all() and np.isfinite(dense.W).all()
    tiny = np.finfo(np.float32).tiny
    assert not ((run.net.flat_parameters != 0) & (np.abs(run.net.flat_parameters) < tiny)).any()
