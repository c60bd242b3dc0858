"""train(): configs, outcomes (completed, early_stopped, stopped, diverged), dtypes, accuracy."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from model import EpochStats, Network, TrainConfig, Training, TrainResult, train


def _blobs(n: int, seed: int = 0, n_features: int = 10, n_classes: int = 3):
    """Well separated Gaussian blobs: any working MLP classifies them almost perfectly."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((n_classes, n_features)) * 4
    y = rng.integers(0, n_classes, n)
    X = (centers[y] + rng.standard_normal((n, n_features))).astype(np.float32)
    return X, y


@pytest.mark.parametrize(
    "field, value, shown",
    [
        ("activation", "gelu", "activation='gelu'"),
        ("optimizer", "rmsprop", "optimizer='rmsprop'"),
        ("lr_schedule", "linear", "lr_schedule='linear'"),
        ("hidden", (), "hidden=()"),
        ("hidden", (64, 0), "hidden=(64, 0)"),
        ("hidden", (64, 2.5), "hidden=(64, 2.5)"),
        ("dropout", 1.0, "dropout=1.0"),
        ("dropout", -0.1, "dropout=-0.1"),
        ("leaky_slope", 1.0, "leaky_slope=1.0"),
        ("momentum", 1.0, "momentum=1.0"),
        ("l1", -1e-3, "l1=-0.001"),
        ("l2", float("nan"), "l2=nan"),
        ("learning_rate", 0.0, "learning_rate=0.0"),
        ("learning_rate", float("inf"), "learning_rate=inf"),
        ("batch_size", 0, "batch_size=0"),
        ("epochs", 0, "epochs=0"),
        ("lr_decay", 0, "lr_decay=0"),
        ("lr_step", 0, "lr_step=0"),
        ("patience", 0, "patience=0"),
        ("seed", -1, "seed=-1"),
        ("batch_size", True, "batch_size=True"),
        ("loss", "hinge", "loss='hinge'"),
        ("label_smoothing", 1.0, "label_smoothing=1.0"),
        ("huber_delta", 0.0, "huber_delta=0.0"),
        ("weight_decay", -1e-4, "weight_decay=-0.0001"),
        ("plr", -1, "plr=-1"),
        ("plr", 2.5, "plr=2.5"),
        ("plr_sigma", 0.0, "plr_sigma=0.0"),
    ],
)
def test_bad_config_raises_value_error_naming_the_value(field, value, shown):
    with pytest.raises(ValueError, match=f"^{field} must .*got {shown.replace('(', '[(]').replace(')', '[)]')}$"):
        TrainConfig(**{field: value})


def test_one_first_map_frozen_features_or_learned_embeddings():
    with pytest.raises(ValueError, match="^periodic and plr are two first maps, choose one"):
        TrainConfig(plr=8, periodic=0.1)
    assert TrainConfig(plr=8).plr_sigma == 0.1


def test_activation_error_lists_the_accepted_values():
    with pytest.raises(ValueError) as info:
        TrainConfig(activation="gelu")
    assert str(info.value) == "activation must be one of relu, leaky_relu, tanh, sigmoid, got activation='gelu'"


def test_config_accepts_a_list_of_widths_and_stays_hashable():
    config = TrainConfig(hidden=[64, 32])
    assert config.hidden == (64, 32)
    assert hash(config) == hash(TrainConfig(hidden=(64, 32)))


def test_training_separates_blobs_and_reports_every_epoch():
    X, y = _blobs(1200)
    config = TrainConfig(hidden=(32,), epochs=8, batch_size=64, learning_rate=0.05, dropout=0.1, l2=1e-4)
    seen: list[EpochStats] = []
    result = train(config, X[:1000], y[:1000], X[1000:], y[1000:], callback=seen.append)
    assert isinstance(result, TrainResult)
    assert result.outcome == "completed" and len(result.history) == 8 and seen == result.history
    assert [s.epoch for s in result.history] == list(range(1, 9))
    assert result.history[-1].val_accuracy >= 0.98
    assert (result.network.predict(X[1000:]) == y[1000:]).mean() >= 0.98
    assert result.best_val_loss == min(s.val_loss for s in result.history)
    assert result.seconds >= sum(s.seconds for s in result.history)


def test_same_config_same_seed_reproduces_the_history_exactly():
    X, y = _blobs(500)
    config = TrainConfig(hidden=(16,), epochs=3, dropout=0.3, batch_size=50)
    a = train(config, X[:400], y[:400], X[400:], y[400:])
    b = train(config, X[:400], y[:400], X[400:], y[400:])
    assert [s.val_loss for s in a.history] == [s.val_loss for s in b.history]
    other_seed = TrainConfig(hidden=(16,), epochs=3, dropout=0.3, batch_size=50, seed=1)
    c = train(other_seed, X[:400], y[:400], X[400:], y[400:])
    assert [s.val_loss for s in a.history] != [s.val_loss for s in c.history]


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adam"])
def test_parameters_stay_float32_after_training(optimizer):
    X, y = _blobs(300)
    config = TrainConfig(hidden=(8, 8), epochs=1, optimizer=optimizer, l1=1e-4, l2=1e-4, dropout=0.2)
    result = train(config, X.astype(np.float64), y, X[:50], y[:50])  # float64 input is cast per batch
    assert all(p.dtype == np.float32 for p in result.network.parameters())


def test_batch_larger_than_data_is_one_full_batch_and_partial_batches_count():
    X, y = _blobs(130)
    for batch_size in (1000, 128):  # 1 batch; then 128 + a partial batch of 2
        result = train(TrainConfig(hidden=(8,), epochs=2, batch_size=batch_size), X, y, X, y)
        assert result.outcome == "completed" and all(math.isfinite(s.train_loss) for s in result.history)


def test_divergence_is_an_outcome_without_nan_or_warnings():
    X, y = _blobs(600)
    config = TrainConfig(hidden=(32,), epochs=5, learning_rate=1e6, momentum=0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = train(config, X[:500], y[:500], X[500:], y[500:])
    assert result.outcome == "diverged"
    assert "non-finite" in result.reason and "epoch 1, batch" in result.reason
    assert all(math.isfinite(s.val_loss) and math.isfinite(s.train_loss) for s in result.history)
    assert all(np.isfinite(p).all() for p in result.network.parameters())
    assert result.best_epoch == 0 and result.best_val_loss == math.inf and result.best_val_accuracy == 0.0


def test_callback_returning_true_stops_training():
    X, y = _blobs(300)
    result = train(TrainConfig(hidden=(8,), epochs=10), X, y, X, y, callback=lambda s: s.epoch == 2)
    assert result.outcome == "stopped"
    assert result.reason == "stopped by callback at epoch 2"
    assert len(result.history) == 2


def test_early_stopping_restores_the_best_weights():
    # labels are noise: a wide network memorises the training set and validation loss rises
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 20)).astype(np.float32)
    y = rng.integers(0, 3, 300)
    config = TrainConfig(hidden=(128,), epochs=60, learning_rate=0.1, batch_size=16, patience=3)
    result = train(config, X[:200], y[:200], X[200:], y[200:])
    assert result.outcome == "early_stopped"
    assert len(result.history) == result.best_epoch + 3 < 60
    assert result.history[-1].val_loss > result.best_val_loss
    val_loss, val_accuracy = result.network.evaluate(X[200:], y[200:])
    assert val_loss == pytest.approx(result.best_val_loss, rel=1e-5)
    assert val_accuracy == result.best_val_accuracy


def test_training_never_writes_into_a_read_only_memmap(tmp_path):
    X, y = _blobs(400)
    path = tmp_path / "X.f32"
    X.tofile(path)
    X_map = np.memmap(path, dtype=np.float32, mode="r", shape=X.shape)
    result = train(TrainConfig(hidden=(8,), epochs=2, dropout=0.5), X_map, y, X_map[:100], y[:100])
    assert result.outcome == "completed"
    np.testing.assert_array_equal(np.fromfile(path, np.float32).reshape(X.shape), X)


def test_n_classes_may_exceed_the_labels_seen_but_not_fall_short():
    X, y = _blobs(200, n_classes=3)
    result = train(TrainConfig(hidden=(8,), epochs=1), X, y, X, y, n_classes=5)
    assert result.network.n_classes == 5
    with pytest.raises(ValueError, match="n_classes=2"):
        train(TrainConfig(hidden=(8,), epochs=1), X, y, X, y, n_classes=2)


def test_sklearn_digits_reach_97_percent_test_accuracy():
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    X, y = digits.data.astype(np.float32), digits.target
    order = np.random.default_rng(0).permutation(len(y))
    train_idx, val_idx, test_idx = order[:1200], order[1200:1450], order[1450:]
    # z-score per pixel; the std floor (1 grey level of 16) keeps near-constant border pixels from exploding
    mean, std = X[train_idx].mean(axis=0), np.maximum(X[train_idx].std(axis=0), 1.0)
    X = (X - mean) / std
    # over 8 splits this config scores 96.3-98.8% (mean 97.8%); split 0 gives 98.3%
    config = TrainConfig(
        hidden=(256,), optimizer="nesterov", epochs=50, batch_size=16, learning_rate=0.005, l2=1e-3, dropout=0.25
    )
    result = train(config, X[train_idx], y[train_idx], X[val_idx], y[val_idx])
    assert result.outcome in ("completed", "early_stopped")
    accuracy = (result.network.predict(X[test_idx]) == y[test_idx]).mean()
    assert accuracy >= 0.97, f"test accuracy {accuracy:.4f}"


def test_network_returned_is_a_network():
    X, y = _blobs(100)
    assert isinstance(train(TrainConfig(hidden=(4,), epochs=1), X, y, X, y).network, Network)


def test_momentum_fast_path_matches_the_plain_optimizer_step(monkeypatch):
    # train() hands momentum's velocity to the network (BLAS beta + fused L2 step);
    # the result must be the plain Momentum.step_scaled path's up to float32 rounding
    from model.optim import Momentum

    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 8)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    config = TrainConfig(hidden=(16, 8), dropout=0.2, l2=1e-3, learning_rate=0.05, batch_size=32, epochs=3)
    fast = train(config, X, y, X[:50], y[:50])
    monkeypatch.setattr(Momentum, "accumulator", lambda self: None)
    plain = train(config, X, y, X[:50], y[:50])
    np.testing.assert_allclose(fast.network.flat_parameters, plain.network.flat_parameters, rtol=1e-4, atol=1e-5)
    assert [s.val_loss for s in fast.history] == pytest.approx([s.val_loss for s in plain.history], rel=1e-4)


def test_defaults_leave_every_new_option_off():
    # the service's deterministic studies rely on TrainConfig() training exactly as before
    c = TrainConfig()
    assert (c.loss, c.label_smoothing, c.weight_decay) == ("cross_entropy", 0.0, 0.0)


def test_label_smoothing_with_a_regression_loss_is_refused():
    with pytest.raises(ValueError, match="^label_smoothing applies to cross_entropy only, got label_smoothing=0.1 "):
        TrainConfig(loss="huber", label_smoothing=0.1)


def _friedman(n: int, seed: int = 0):
    from sklearn.datasets import make_friedman1

    X, y = make_friedman1(n, n_features=8, noise=0.5, random_state=seed)
    y = (y - y[: n * 4 // 5].mean()) / y[: n * 4 // 5].std()  # standardised on the training rows, as the service will
    return X.astype(np.float32), y.astype(np.float32)


@pytest.mark.parametrize("loss", ["squared_error", "huber"])
def test_regression_fits_friedman1_and_reports_the_validation_loss(loss):
    X, y = _friedman(1500)
    config = TrainConfig(hidden=(64,), loss=loss, epochs=25, batch_size=32, learning_rate=0.01, optimizer="adam")
    seen: list[EpochStats] = []
    result = train(config, X[:1200], y[:1200], X[1200:], y[1200:], callback=seen.append)
    assert result.outcome == "completed" and seen == result.history
    assert all(math.isnan(s.val_accuracy) for s in result.history)
    residuals = result.network.predict(X[1200:]) - y[1200:]
    assert result.history[-1].val_loss == pytest.approx(0.5 * float(np.mean(residuals**2)), rel=1e-4)
    r2 = 1 - np.mean(residuals**2) / np.var(y[1200:])
    assert r2 > 0.85, r2
    assert result.history[-1].val_loss < 0.5 * result.history[0].val_loss


def test_regression_takes_several_targets_and_checks_them():
    X, y = _friedman(300)
    Y = np.stack([y, -2 * y], axis=1)
    result = train(TrainConfig(hidden=(8,), loss="squared_error", epochs=2), X, Y, X[:50], Y[:50])
    assert result.network.n_outputs == 2 and result.network.predict(X[:5]).shape == (5, 2)
    with pytest.raises(ValueError, match="y_train must have shape"):
        train(TrainConfig(loss="squared_error"), X, Y[:-1], X, Y)
    with pytest.raises(ValueError, match=r"y_train must be finite, got \[nan\] at row 4"):
        train(TrainConfig(loss="squared_error"), X, np.where(np.arange(300) == 4, np.nan, y), X, y)
    with pytest.raises(ValueError, match=r"n_classes must be the number of targets, 2, for squared_error: n_classes=3"):
        train(TrainConfig(loss="squared_error"), X, Y, X, Y, n_classes=3)


@pytest.mark.parametrize(
    "options",
    [
        {"loss": "squared_error", "weight_decay": 1e-2},
        {"loss": "huber", "optimizer": "adam", "weight_decay": 1e-2},
        {"label_smoothing": 0.1, "weight_decay": 1e-3, "optimizer": "nesterov"},
    ],
    ids=["squared_error momentum", "huber adamw", "smoothed nesterov"],
)
def test_parameters_stay_float32_with_weights_smoothing_regression_and_decay(options):
    X, labels = _blobs(300)
    y = labels if "loss" not in options else labels.astype(np.float64) - 1.0  # float64 targets are cast
    w = np.random.default_rng(0).uniform(0, 2, 300)  # float64 weights are cast once
    config = TrainConfig(hidden=(8, 8), epochs=1, l1=1e-4, l2=1e-4, dropout=0.2, **options)
    run = Training(config, X.astype(np.float64), y, X[:50], y[:50], sample_weight=w, val_sample_weight=w[:50])
    run.step()
    assert run.y_train.dtype == (np.float32 if "loss" in options else labels.dtype)
    assert run.w_train.dtype == np.float32 and run.w_val.dtype == np.float32
    assert all(p.dtype == np.float32 for p in run.net.parameters())
    assert run.net.flat_parameters.dtype == np.float32 and run.finish().outcome == "completed"


def test_constant_sample_weights_train_as_no_weights():
    X, y = _blobs(400)
    config = TrainConfig(hidden=(16,), epochs=3, dropout=0.2, batch_size=64)
    plain = train(config, X, y, X[:80], y[:80])
    weighted = train(config, X, y, X[:80], y[:80], sample_weight=np.full(400, 2.5), val_sample_weight=np.ones(80))
    np.testing.assert_allclose(weighted.network.flat_parameters, plain.network.flat_parameters, rtol=1e-5, atol=1e-6)
    assert [s.val_loss for s in weighted.history] == pytest.approx([s.val_loss for s in plain.history], rel=1e-5)


def test_integer_sample_weights_train_as_repeated_rows_in_a_full_batch():
    X, y = _blobs(60)
    counts = np.arange(60) % 3  # 0, 1 or 2 copies of each row
    config = TrainConfig(hidden=(8,), epochs=5, batch_size=1000, learning_rate=0.1)
    weighted = train(config, X, y, X, y, sample_weight=counts)
    repeated = train(config, np.repeat(X, counts, axis=0), np.repeat(y, counts), X, y)
    np.testing.assert_allclose(weighted.network.flat_parameters, repeated.network.flat_parameters, rtol=1e-4, atol=1e-6)
    assert weighted.history[-1].train_loss == pytest.approx(repeated.history[-1].train_loss, rel=1e-5)


def test_the_validation_weights_weight_the_validation_loss():
    X, y = _blobs(200)
    w = np.where(y[:100] == 0, 5.0, 1.0)
    config = TrainConfig(hidden=(8,), epochs=1)
    result = train(config, X[100:], y[100:], X[:100], y[:100], val_sample_weight=w)
    rows = [result.network.evaluate(X[i : i + 1], y[i : i + 1])[0] for i in range(100)]
    assert result.history[0].val_loss == pytest.approx(np.average(rows, weights=w), rel=1e-5)


def test_weight_decay_shrinks_the_weights_but_not_the_biases():
    X, y = _blobs(300)
    base = {"hidden": (32,), "epochs": 5, "optimizer": "adam", "learning_rate": 0.01}
    plain = train(TrainConfig(**base), X, y, X, y).network
    decayed = train(TrainConfig(**base, weight_decay=5.0), X, y, X, y).network
    n = plain.n_weights
    assert np.linalg.norm(decayed.flat_parameters[:n]) < 0.7 * np.linalg.norm(plain.flat_parameters[:n])
    assert np.linalg.norm(decayed.flat_parameters[n:]) > 0.3 * np.linalg.norm(plain.flat_parameters[n:])


def test_sample_weights_are_checked_with_their_name():
    X, y = _blobs(50)
    with pytest.raises(ValueError, match="^sample_weight must be finite and >= 0, got -1.0 at row 0$"):
        train(TrainConfig(), X, y, X, y, sample_weight=-np.ones(50))
    with pytest.raises(ValueError, match=r"^val_sample_weight must have shape \(50,\)"):
        train(TrainConfig(), X, y, X, y, val_sample_weight=np.ones(3))
