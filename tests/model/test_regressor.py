"""MLPRegressor: scikit-learn's own estimator checks, then what a scikit-learn user relies on."""

from __future__ import annotations

import dataclasses
import inspect
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_diabetes, make_friedman1
from sklearn.metrics import r2_score
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from model import DivergedError, MLPClassifier, MLPRegressor, TrainConfig
from model.estimator import BaseMLP
from tests.model.test_estimator import expected_failed_checks

_SMALL = {"hidden": (16,), "epochs": 20, "batch_size": 32}


@parametrize_with_checks(
    [
        MLPRegressor(**_SMALL),
        # two layers, dropout, AdamW, Huber, patience judging the training rows
        MLPRegressor(
            hidden=[16, 8], dropout=0.2, optimizer="adam", epochs=10, batch_size=16, patience=2, loss="huber",
            weight_decay=1e-3,
        ),
    ],
    expected_failed_checks=expected_failed_checks,
)  # fmt: skip
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _friedman(n: int = 600, seed: int = 0, scale: float = 1.0, shift: float = 0.0):
    X, y = make_friedman1(n, n_features=8, noise=0.3, random_state=seed)
    return X, y * scale + shift


def test_both_estimators_share_one_base_and_every_parameter():
    assert issubclass(MLPRegressor, BaseMLP) and issubclass(MLPClassifier, BaseMLP)
    assert inspect.signature(MLPRegressor) == inspect.signature(MLPClassifier)
    assert {f.name for f in dataclasses.fields(TrainConfig)} <= set(MLPRegressor().get_params())


def test_score_is_r2_and_friedman1_is_learnt():
    X, y = _friedman(1000)
    est = make_pipeline(StandardScaler(), MLPRegressor(hidden=(64,), epochs=40, batch_size=32, optimizer="adam",
                                                        learning_rate=3e-3))  # fmt: skip
    scores = cross_val_score(est, X, y, cv=3)
    assert scores.min() > 0.85, scores


def test_targets_are_standardised_inside_so_their_units_do_not_matter():
    # the same data in units a million times larger, shifted: the same R², predictions in those units
    X, y = _friedman()
    params = {"hidden": (32,), "epochs": 15, "seed": 2}
    small = MLPRegressor(**params).fit(X, y)
    large = MLPRegressor(**params).fit(X, y * 1e6 + 5e7)
    np.testing.assert_allclose(large.predict(X), small.predict(X) * 1e6 + 5e7, rtol=1e-5)
    assert large.score(X, y * 1e6 + 5e7) == pytest.approx(small.score(X, y), abs=1e-6)
    assert large.target_mean_[0] == pytest.approx(y.mean() * 1e6 + 5e7) and large.n_outputs_ == 1


def test_a_constant_target_is_predicted_as_itself():
    X, _ = _friedman(100)
    est = MLPRegressor(**{**_SMALL, "epochs": 60}).fit(X, np.full(100, 7.0))
    assert est.target_scale_[0] == 1.0  # not 0: standardising would divide by it
    np.testing.assert_allclose(est.predict(X), 7.0, atol=0.2)


def test_several_targets_in_and_out():
    X, y = _friedman()
    Y = np.stack([y, 100 * y - 3], axis=1)
    est = MLPRegressor(hidden=(32,), epochs=30, batch_size=32).fit(X, Y)
    predictions = est.predict(X)
    assert predictions.shape == (600, 2) and est.n_outputs_ == 2
    # each target in its own units, and learnt as well as the other
    r2 = r2_score(Y, predictions, multioutput="raw_values")
    assert r2.min() > 0.7 and abs(r2[0] - r2[1]) < 0.03, r2
    np.testing.assert_allclose(est.target_scale_, [y.std(), 100 * y.std()])
    assert MLPRegressor(**_SMALL).fit(X, y[:, None]).predict(X).shape == (600,)  # one target: (n,)


def test_huber_resists_wild_targets_better_than_squared_error():
    X, y = _friedman(800, seed=1)
    wild = y.copy()
    wild[::20] += np.random.default_rng(0).choice([-1, 1], 40) * 200  # 5% of the targets far off
    params = {"hidden": (32,), "epochs": 30, "optimizer": "adam", "learning_rate": 3e-3, "seed": 1}
    squared = MLPRegressor(**params).fit(X, wild)
    huber = MLPRegressor(**params, loss="huber", huber_delta=0.5).fit(X, wild)
    clean_X, clean_y = _friedman(400, seed=2)
    assert huber.score(clean_X, clean_y) > squared.score(clean_X, clean_y) + 0.1


def test_sample_weight_of_zero_removes_rows_in_a_full_batch():
    X, y = _friedman(120)
    w = (np.arange(120) % 4 != 0).astype(float)
    params = {"hidden": (8,), "epochs": 5, "batch_size": 1000}
    weighted = MLPRegressor(**params).fit(X, y, sample_weight=w)
    removed = MLPRegressor(**params).fit(X[w > 0], y[w > 0])
    np.testing.assert_allclose(weighted.target_mean_, removed.target_mean_)  # the weights weight the standardisation
    np.testing.assert_allclose(weighted.predict(X), removed.predict(X), rtol=1e-4, atol=1e-4)


def test_early_stopping_scores_r2_on_the_held_out_rows():
    X, y = _friedman(400)
    est = MLPRegressor(
        hidden=(32,), epochs=60, batch_size=32, optimizer="adam", learning_rate=3e-3, early_stopping=True,
        patience=5, seed=1,
    ).fit(X, y)  # fmt: skip
    assert len(est.validation_scores_) == est.n_iter_ <= 60
    assert max(est.validation_scores_) > 0.7


def test_partial_fit_fixes_the_standardisation_on_the_first_chunk():
    X, y = _friedman(600)
    est = MLPRegressor(hidden=(32,), epochs=3, learning_rate=0.005)
    for rows in np.array_split(np.arange(600), 3):
        est.partial_fit(X[rows], y[rows])
    assert est.n_iter_ == 3 and est.loss_curve_[0] > est.loss_curve_[-1]
    assert est.target_mean_[0] == pytest.approx(y[:200].mean())
    with pytest.raises(ValueError, match="y has 2 target"):
        est.partial_fit(X, np.stack([y, y], axis=1))


def test_warm_start_keeps_the_standardisation_and_goes_on():
    X, y = _friedman()
    est = MLPRegressor(hidden=(16,), epochs=5, warm_start=True).fit(X, y)
    mean, first = est.target_mean_.copy(), list(est.loss_curve_)
    est.fit(X, y + 1000)  # the stored statistics stay: the weights were learnt for them
    np.testing.assert_array_equal(est.target_mean_, mean)
    assert est.n_iter_ == 10 and est.loss_curve_[:5] == first


@pytest.mark.parametrize(
    "params, message",
    [
        ({"loss": "cross_entropy"}, r"^loss must be auto or one of squared_error, huber for MLPRegressor, "),
        ({"label_smoothing": 0.1}, r"^label_smoothing applies to cross_entropy only"),
        ({"huber_delta": -1.0, "loss": "huber"}, r"^huber_delta must be a finite number > 0"),
    ],
)
def test_bad_parameters_are_named_in_fit(params, message):
    X, y = _friedman(50)
    with pytest.raises(ValueError, match=message):
        MLPRegressor(**params).fit(X, y)


def test_divergence_raises_and_leaves_the_estimator_as_it_was():
    X, y = _friedman(200)
    est = MLPRegressor(**_SMALL).fit(X, y)
    before = est.predict(X)
    with pytest.raises(DivergedError, match="lower learning_rate"):
        est.set_params(learning_rate=1e4, warm_start=True).fit(X * 1e3, y)
    np.testing.assert_array_equal(est.predict(X), before)


def test_pickle_and_clone():
    X, y = _friedman(200)
    est = pickle.loads(pickle.dumps(MLPRegressor(**_SMALL, loss="huber").fit(X, y)))
    assert est.network_.loss == "huber" and est.score(X, y) > 0.5
    assert all(np.shares_memory(est.network_.flat_parameters, p) for p in est.network_.parameters())
    assert not hasattr(clone(est), "network_") and clone(est).get_params()["loss"] == "huber"


def test_the_diabetes_table_beats_predicting_the_mean():
    X, y = load_diabetes(return_X_y=True)
    # 442 rows, 10 features, mostly linear: RidgeCV scores 0.489, this network 0.466
    est = make_pipeline(StandardScaler(), MLPRegressor(hidden=(16,), epochs=50))
    assert cross_val_score(est, X, y, cv=3).mean() > 0.4
