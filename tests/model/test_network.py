"""Network: gradients against central differences, shapes, dtypes, save/load."""

from __future__ import annotations

import numpy as np
import pytest

from model import ACTIVATIONS, Network
from model.fused import FastPath


def _numeric_gradient(net: Network, X, y, masks, sample_weight=None) -> list[np.ndarray]:
    """Central differences of the full loss (data loss + penalty) for every parameter."""
    eps = np.finfo(np.float64).eps ** (1 / 3)  # ~6e-6: balances truncation and rounding error
    grads = []
    for p in net.parameters():
        g = np.empty_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + eps
            up = net.loss_and_gradients(X, y, masks=masks, sample_weight=sample_weight)[0]
            p[i] = old - eps
            down = net.loss_and_gradients(X, y, masks=masks, sample_weight=sample_weight)[0]
            p[i] = old
            g[i] = (up - down) / (2 * eps)
        grads.append(g)
    return grads


def _keep_weights_off_zero(net: Network) -> None:
    """|W| is not differentiable at 0: move weights at least 1e-3 away so L1 is smooth nearby."""
    for layer in net.layers:
        layer.W[...] = np.where(layer.W >= 0, 1, -1) * np.maximum(np.abs(layer.W), 1e-3)
        layer.b[...] = np.linspace(-0.1, 0.1, layer.b.size)  # non-zero biases exercise db


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_gradients_match_central_differences(activation, dropout):
    rng = np.random.default_rng(42)
    net = Network(
        6, (5, 4), 3, activation, leaky_slope=0.1, dropout=dropout, l1=0.01, l2=0.02, seed=1, dtype=np.float64
    )
    _keep_weights_off_zero(net)
    X, y = rng.standard_normal((5, 6)), np.array([0, 2, 1, 2, 0])
    masks = None
    if dropout:  # a fixed mask makes the dropped network a deterministic function
        masks = [(rng.random((5, h)) >= dropout) / (1 - dropout) for h in (5, 4)]
    loss, grads = net.loss_and_gradients(X, y, masks=masks)
    assert np.isfinite(loss)
    for analytic, numeric in zip(grads, _numeric_gradient(net, X, y, masks), strict=True):
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("columns", [None, [1, 4]])
def test_periodic_features_keep_the_gradients_equal_to_central_differences(columns):
    rng = np.random.default_rng(3)
    net = Network(6, (5,), 3, "tanh", l1=0.01, l2=0.02, periodic=0.5, periodic_columns=columns, seed=1,
                  dtype=np.float64)  # fmt: skip
    _keep_weights_off_zero(net)
    X, y = rng.standard_normal((5, 6)), np.array([0, 2, 1, 2, 0])
    _, grads = net.loss_and_gradients(X, y)
    for analytic, numeric in zip(grads, _numeric_gradient(net, X, y, None), strict=True):
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_a_saved_network_with_periodic_features_predicts_the_same_after_loading(tmp_path):
    rng = np.random.default_rng(4)
    net = Network(4, (8,), 2, periodic=1.0, periodic_columns=[0, 2], seed=3)
    X = rng.standard_normal((20, 4)).astype(np.float32)
    net.save(tmp_path / "n.npz")
    loaded = Network.load(tmp_path / "n.npz")
    assert loaded.periodic == 1.0 and loaded.periodic_columns == [0, 2] and loaded.widths == net.widths
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))
    # without them the config is as it always was: networks saved before periodic features load as they did
    assert "periodic" not in Network(4, (8,), 2).config()
    with pytest.raises(ValueError, match="periodic_columns"):
        Network(4, (8,), 2, periodic=1.0, periodic_columns=[4])


LOSS_CASES = {
    "smoothed cross_entropy": ({"loss": "cross_entropy", "label_smoothing": 0.1}, 3),
    "squared_error, 2 targets": ({"loss": "squared_error"}, 2),
    "huber, 1 target": ({"loss": "huber", "huber_delta": 0.4}, 1),
}


@pytest.mark.parametrize("case", LOSS_CASES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_every_loss_with_sample_weights_matches_central_differences(case, activation, dropout):
    options, n_out = LOSS_CASES[case]
    rng = np.random.default_rng(7)
    net = Network(
        6, (5, 4), n_out, activation, leaky_slope=0.1, dropout=dropout, l1=0.01, l2=0.02, seed=1, dtype=np.float64,
        **options,
    )  # fmt: skip
    _keep_weights_off_zero(net)
    X = rng.standard_normal((5, 6))
    y = rng.integers(0, n_out, 5) if net.loss == "cross_entropy" else rng.standard_normal((5, n_out))
    w = np.array([0.5, 2.0, 0.0, 1.0, 3.0])  # a zero weight too: that row has no say
    masks = [(rng.random((5, h)) >= dropout) / (1 - dropout) for h in (5, 4)] if dropout else None
    loss, grads = net.loss_and_gradients(X, y, masks=masks, sample_weight=w)
    assert np.isfinite(loss)
    for analytic, numeric in zip(grads, _numeric_gradient(net, X, y, masks, w), strict=True):
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_gradient_of_a_duplicated_batch_equals_that_of_the_batch():
    # the mean loss is invariant to duplicating every sample; dividing by n twice would halve it
    rng = np.random.default_rng(0)
    net = Network(4, (8,), 3, dtype=np.float64)
    X, y = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
    loss1, g1 = net.loss_and_gradients(X, y)
    loss2, g2 = net.loss_and_gradients(np.vstack([X, X]), np.concatenate([y, y]))
    assert loss1 == pytest.approx(loss2, rel=1e-12)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_parameters_come_in_layer_order_w_then_b():
    net = Network(784, (256, 128), 10)
    shapes = [p.shape for p in net.parameters()]
    assert shapes == [(784, 256), (256,), (256, 128), (128,), (128, 10), (10,)]
    assert net.n_parameters == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10
    assert all(p.dtype == np.float32 for p in net.parameters())
    assert all(not b.any() for b in net.parameters()[1::2])  # biases start at zero


def test_same_seed_same_weights_other_seed_other_weights():
    a, b, c = Network(5, (7,), 3, seed=3), Network(5, (7,), 3, seed=3), Network(5, (7,), 3, seed=4)
    np.testing.assert_array_equal(a.parameters()[0], b.parameters()[0])
    assert not np.array_equal(a.parameters()[0], c.parameters()[0])


def test_predictions_are_probabilities_and_argmax():
    rng = np.random.default_rng(0)
    net = Network(10, (16, 8), 4, "tanh")
    X = rng.standard_normal((20_000, 10)).astype(np.float32)  # more than one inference chunk
    p = net.predict_proba(X)
    assert p.shape == (20_000, 4) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(net.predict(X), p.argmax(axis=1))


def test_save_load_roundtrip_gives_identical_predictions(tmp_path):
    rng = np.random.default_rng(0)
    net = Network(12, (9, 7), 5, "leaky_relu", leaky_slope=0.2, dropout=0.1, l1=1e-4, l2=1e-3, seed=5)
    for p in net.parameters():
        p += rng.standard_normal(p.shape).astype(p.dtype)  # biases non-zero too
    path = tmp_path / "net.npz"
    net.save(path)
    loaded = Network.load(path)
    assert loaded.config() == net.config()
    X = rng.standard_normal((50, 12)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))
    for a, b in zip(loaded.parameters(), net.parameters()):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype


@pytest.mark.parametrize(
    "kwargs, bad",
    [
        ({"activation": "gelu"}, "activation='gelu'"),
        ({"dropout": 1.0}, "dropout=1.0"),
        ({"l2": -1.0}, "l2=-1.0"),
        ({"leaky_slope": 1.5}, "leaky_slope=1.5"),
        ({"hidden": (3, 0)}, "hidden=(3, 0)"),
        ({"n_classes": 1}, "n_classes=1"),
        ({"dtype": np.int32}, "dtype"),
        ({"loss": "hinge"}, "loss='hinge'"),
        ({"label_smoothing": 1.0}, "label_smoothing=1.0"),
        ({"loss": "huber", "label_smoothing": 0.1}, "label_smoothing applies to cross_entropy only"),
        ({"loss": "huber", "huber_delta": 0.0}, "huber_delta=0.0"),
        ({"loss": "squared_error", "n_classes": 0}, "number of targets, at least 1, got n_classes=0"),
    ],
)
def test_bad_network_arguments_name_the_value(kwargs, bad):
    args = {"n_inputs": 4, "hidden": (3,), "n_classes": 2} | kwargs
    with pytest.raises(ValueError, match=bad.replace("(", r"\(").replace(")", r"\)")):
        Network(**args)


def test_batch_gradients_are_scaled_full_gradients_and_return_the_unpenalised_loss():
    rng = np.random.default_rng(0)
    net = Network(5, (6, 4), 3, "tanh", l1=0.01, l2=0.1, dtype=np.float64)
    X, y = rng.standard_normal((7, 5)), rng.integers(0, 3, 7)
    loss, grads = net.loss_and_gradients(X, y)
    ce = net.batch_gradients(X, y, scale=-0.3)
    assert ce == pytest.approx(loss - net.penalty(), rel=1e-12)
    for g, scaled in zip(grads, net.gradients()):
        np.testing.assert_allclose(scaled, -0.3 * g, rtol=1e-12, atol=1e-15)


def test_parameters_and_gradients_are_views_into_one_flat_array_weights_first():
    net = Network(5, (4,), 3)
    params, grads = net.parameters(), net.gradients()
    assert all(np.shares_memory(p, net.flat_parameters) for p in params)
    assert all(np.shares_memory(g, net.flat_gradients) for g in grads)
    assert net.flat_parameters.size == net.n_parameters
    net.flat_parameters[:] = np.arange(net.n_parameters)
    # weights W0 (5x4), W1 (4x3) first, then biases b0 (4), b1 (3)
    assert params[0].ravel()[0] == 0 and params[2].ravel()[0] == 20 and params[1][0] == 32 and params[3][0] == 36


@pytest.mark.parametrize("blas", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("l1", [0.0, 0.01])
def test_accumulating_into_a_velocity_and_stepping_equals_the_plain_momentum_step(monkeypatch, blas, dtype, l1):
    # the training loop's momentum path: v = mu*v + scale*g by the GEMMs' beta, then w += v
    # with the L2 term fused (BLAS srotm for float32); must equal the two-step form
    import model.blas

    if not blas:
        monkeypatch.setattr(model.blas, "_cblas", None)
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((9, 5)).astype(dtype), rng.integers(0, 3, 9)
    nets = [Network(5, (6, 4), 3, "relu", dropout=0.25, l1=l1, l2=0.1, seed=1, dtype=dtype) for _ in range(2)]
    v0 = rng.standard_normal(nets[0].n_parameters).astype(dtype) * 0.01
    velocities = [v0.copy(), v0.copy()]
    scale, mu = -0.05, 0.9
    for step in range(3):
        plain, fused = nets
        loss_plain = plain.batch_gradients(X, y, np.random.default_rng(step), scale=scale)
        velocities[0] *= mu
        velocities[0] += plain.flat_gradients
        plain.flat_parameters += velocities[0]
        before = fused.flat_gradients.copy()
        loss_fused = FastPath(fused).momentum_step(
            X, y, np.random.default_rng(step), scale=scale, velocity=velocities[1], mu=mu
        )
        assert loss_fused == pytest.approx(loss_plain, rel=1e-6)
        if blas and dtype == np.float32:  # BLAS path: the gradient is never formed on its own
            np.testing.assert_array_equal(fused.flat_gradients, before)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(velocities[1], velocities[0], rtol=rtol, atol=rtol * 1e-2)
    np.testing.assert_allclose(nets[1].flat_parameters, nets[0].flat_parameters, rtol=rtol, atol=rtol * 1e-2)
    assert nets[1].flat_parameters.dtype == dtype and velocities[1].dtype == dtype


def test_a_velocity_of_another_layout_is_refused():
    net = Network(5, (4,), 3)
    with pytest.raises(ValueError, match="velocity"):
        FastPath(net).momentum_step(
            np.zeros((2, 5), np.float32), np.zeros(2, int), None, scale=-0.1, velocity=np.zeros(3, np.float32), mu=0.9
        )


def test_a_regression_network_predicts_numbers_of_its_targets_shape():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 4)).astype(np.float32)  # more than one inference chunk
    one, two = Network(4, (8,), 1, loss="squared_error"), Network(4, (8,), 2, "tanh", loss="huber")
    assert one.regression and one.n_outputs == 1 and not Network(4, (8,), 2).regression
    assert one.predict(X).shape == (3000,) and one.predict(X).dtype == np.float32
    assert two.predict(X).shape == (3000, 2)
    with pytest.raises(ValueError, match="has no class probabilities: use predict"):
        one.predict_proba(X)


def test_evaluate_scores_regression_by_half_the_squared_error_whatever_the_training_loss():
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((50, 4)), rng.standard_normal(50) * 3
    w = rng.uniform(0, 2, 50)
    net = Network(4, (8,), 1, loss="huber", huber_delta=0.1, seed=2, dtype=np.float64)
    residuals = net.predict(X) - y
    loss, accuracy = net.evaluate(X, y)
    assert loss == pytest.approx(0.5 * np.mean(residuals**2), rel=1e-12) and np.isnan(accuracy)
    assert net.evaluate(X, y, w)[0] == pytest.approx(0.5 * np.average(residuals**2, weights=w), rel=1e-12)


def test_evaluate_scores_classes_by_plain_cross_entropy_even_when_smoothed():
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((40, 5)), rng.integers(0, 3, 40)
    smoothed = Network(5, (6,), 3, label_smoothing=0.3, seed=4, dtype=np.float64)
    plain = Network(5, (6,), 3, seed=4, dtype=np.float64)
    assert smoothed.evaluate(X, y) == plain.evaluate(X, y)
    assert smoothed.loss_and_gradients(X, y)[0] != pytest.approx(plain.loss_and_gradients(X, y)[0], rel=1e-6)


@pytest.mark.parametrize("y, message", [
    (np.array([1.0, np.nan, 2.0]), r"y must be finite, got \[nan\] at row 1"),
    (np.zeros((3, 2)), r"y must have shape \(3,\) or \(3, 1\) for 1 target\(s\), got \(3, 2\)"),
    (np.array(["a", "b", "c"]), "y must hold numbers for a regression network, got dtype <U1"),
])  # fmt: skip
def test_bad_regression_targets_are_named(y, message):
    with pytest.raises(ValueError, match=message):
        Network(2, (3,), 1, loss="squared_error").targets(y, 3)


def test_a_regression_network_survives_save_and_load(tmp_path):
    net = Network(5, (4,), 2, loss="huber", huber_delta=0.7, seed=3)
    net.save(tmp_path / "net.npz")
    loaded = Network.load(tmp_path / "net.npz")
    assert loaded.config() == net.config() and loaded.config()["huber_delta"] == 0.7
    X = np.random.default_rng(0).standard_normal((10, 5)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))


def test_a_network_saved_before_losses_existed_loads_as_cross_entropy(tmp_path):
    import json

    net = Network(3, (4,), 2, seed=1)
    old = {k: v for k, v in net.config().items() if k not in ("loss", "label_smoothing")}
    arrays = {f"p{i}": p for i, p in enumerate(net.parameters())}
    np.savez(tmp_path / "old.npz", config=np.array(json.dumps(old)), **arrays)
    loaded = Network.load(tmp_path / "old.npz")
    assert loaded.loss == "cross_entropy" and loaded.label_smoothing == 0.0
    np.testing.assert_array_equal(loaded.flat_parameters, net.flat_parameters)


@pytest.mark.parametrize("columns", [None, [1, 4]])
def test_learned_embeddings_keep_the_gradients_equal_to_central_differences(columns):
    rng = np.random.default_rng(5)
    net = Network(6, (5,), 3, "tanh", l1=0.01, l2=0.02, plr_sigma=0.5, periodic_columns=columns, plr=3, seed=1,
                  dtype=np.float64)  # fmt: skip
    _keep_weights_off_zero(net)
    assert net.widths[0] == 6 + 3 * (6 if columns is None else 2)
    X, y = rng.standard_normal((5, 6)), np.array([0, 2, 1, 2, 0])
    _, grads = net.loss_and_gradients(X, y)
    assert len(grads) == 2 * 2 + 3  # W0, b0, W1, b1, then the frequencies, the maps' weights and biases
    assert all(np.abs(g).max() > 0 for g in grads[-3:])
    for analytic, numeric in zip(grads, _numeric_gradient(net, X, y, None), strict=True):
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_a_network_with_learned_embeddings_keeps_its_arrays_per_batch_size_and_sends_none_of_them():
    """Training reuses the embedding's per-batch arrays (it runs on every batch); a prediction uses
    its own, so it cannot change what a backward pass will read; a network pickled to another
    process (joblib's workers send their final networks back) carries its parameters only."""
    import pickle

    net = Network(4, (8,), 2, plr_sigma=0.2, periodic_columns=[0, 2], plr=5, seed=3)
    X = np.random.default_rng(5).standard_normal((5000, 4)).astype(np.float32)
    first = net.embedding.forward(X[:64])
    assert net.embedding.forward(X[64:128]) is first  # the same batch size: the same arrays
    kept = first.copy()
    before = net.predict_proba(X[:64])
    np.testing.assert_array_equal(first, kept)  # the prediction of 64 rows left the batch's arrays alone
    net.embedding.forward(X)  # a full-batch step's arrays: megabytes
    sent = pickle.dumps(net)
    # the last input the first layer keeps (64 x 14 floats), not the embedding's arrays
    assert len(sent) < 200_000, len(sent)
    np.testing.assert_array_equal(pickle.loads(sent).predict_proba(X[:64]), before)


def test_a_saved_network_with_learned_embeddings_predicts_the_same_after_loading(tmp_path):
    rng = np.random.default_rng(4)
    net = Network(4, (8,), 2, plr_sigma=0.2, periodic_columns=[0, 2], plr=5, seed=3)
    net.embedding.c[...] += 0.3  # trained frequencies: not what the seed draws
    X = rng.standard_normal((20, 4)).astype(np.float32)
    net.save(tmp_path / "n.npz")
    loaded = Network.load(tmp_path / "n.npz")
    assert (loaded.plr, loaded.plr_sigma, loaded.periodic, loaded.periodic_columns) == (5, 0.2, 0.0, [0, 2])
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))
    assert "plr" not in Network(4, (8,), 2, periodic=0.1).config()  # frozen features keep the config they had
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="plr"):
            Network(4, (8,), 2, plr=bad)
    with pytest.raises(ValueError, match="one first map"):
        Network(4, (8,), 2, periodic=0.1, plr=4)
