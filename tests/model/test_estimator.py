"""MLPClassifier: scikit-learn's own estimator checks, then what a scikit-learn user relies on."""

from __future__ import annotations

import dataclasses
import inspect
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits, make_blobs
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from model import DivergedError, MLPClassifier, TrainConfig

# Small enough that all the checks take well under a second, large enough to pass their accuracy bars
_SMALL = {"hidden": (16,), "epochs": 20, "batch_size": 32}


@parametrize_with_checks(
    [
        MLPClassifier(**_SMALL),
        # the other paths: two layers given as a list, dropout, adam, patience judging the training rows
        MLPClassifier(hidden=[16, 8], dropout=0.2, optimizer="adam", epochs=10, batch_size=16, patience=2),
    ]
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _blobs(n: int = 300, seed: int = 0):
    X, y = make_blobs(n, n_features=5, centers=3, random_state=seed)
    return StandardScaler().fit_transform(X), y


def test_every_train_config_field_is_a_parameter_with_its_default():
    parameters = inspect.signature(MLPClassifier).parameters
    for field in dataclasses.fields(TrainConfig):
        assert parameters[field.name].default == field.default, field.name
    assert MLPClassifier().get_params()["hidden"] == TrainConfig().hidden


def test_get_params_set_params_round_trip():
    est = MLPClassifier(hidden=[32, 16], seed=3, early_stopping=True)
    params = est.get_params()
    assert params["hidden"] == [32, 16] and params["seed"] == 3 and params["early_stopping"]
    other = MLPClassifier().set_params(**params)
    assert other.get_params() == params


def test_parameters_are_checked_in_fit_by_train_config():
    X, y = _blobs(40)
    est = MLPClassifier(dropout=1.5)  # no error here: scikit-learn's rule
    with pytest.raises(ValueError, match=r"^dropout must be in \[0, 1\), got dropout=1.5$"):
        est.fit(X, y)


@pytest.mark.parametrize(
    "labels",
    [["cat", "dog", "emu"], [3, 7, 11], [0.0, 1.0, 2.0], [-1, 0, 1]],
    ids=["str", "int", "float", "negative"],
)
def test_labels_of_any_type_round_trip(labels):
    X, codes = _blobs()
    y = np.asarray(labels)[codes]
    est = MLPClassifier(**_SMALL).fit(X, y)
    assert list(est.classes_) == sorted(labels)
    assert est.predict(X).dtype == y.dtype
    assert est.score(X, y) > 0.95


def test_bool_labels():
    X, codes = _blobs()
    y = codes == 0
    est = MLPClassifier(**_SMALL).fit(X, y)
    assert est.classes_.tolist() == [False, True]
    assert est.predict(X).dtype == bool and est.score(X, y) > 0.95


def test_pipeline_cross_val_score_and_clone():
    X, y = load_digits(return_X_y=True)
    pipe = Pipeline([("scale", StandardScaler()), ("mlp", MLPClassifier(hidden=(32,), epochs=10, batch_size=32))])
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.min() > 0.85
    fitted = pipe.fit(X, y)
    copy = clone(fitted)
    assert copy.get_params()["mlp__hidden"] == (32,)
    assert not hasattr(copy.named_steps["mlp"], "classes_")


def test_digits_accuracy():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    pipe = Pipeline([("scale", StandardScaler()), ("mlp", MLPClassifier(hidden=(64,), epochs=20, batch_size=32))])
    assert pipe.fit(X_train, y_train).score(X_test, y_test) >= 0.95


def test_predictions_are_deterministic_given_the_seed():
    X, y = _blobs()
    a = MLPClassifier(**_SMALL, seed=5).fit(X, y).predict_proba(X)
    b = MLPClassifier(**_SMALL, seed=5).fit(X, y).predict_proba(X)
    c = MLPClassifier(**_SMALL, seed=6).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_warm_start_goes_on_from_the_weights():
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    est = MLPClassifier(hidden=(32,), epochs=5, batch_size=64, learning_rate=0.002, warm_start=True).fit(X, y)
    first = list(est.loss_curve_)
    est.fit(X, y)
    assert est.n_iter_ == len(est.loss_curve_) == 10 and est.loss_curve_[:5] == first
    # the second fit's first epoch starts near where the first fit ended, not back at the start
    assert abs(est.loss_curve_[5] - first[-1]) < 0.25 * (first[0] - first[-1])
    assert est.loss_curve_[-1] < first[-1]


def test_warm_start_refuses_a_new_class():
    X, y = _blobs()
    est = MLPClassifier(**_SMALL, warm_start=True).fit(X[y < 2], y[y < 2])
    with pytest.raises(ValueError, match="previously unseen labels"):
        est.fit(X, y)


def test_partial_fit_lowers_the_training_loss():
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    # epochs=2: the third call runs past the first run's end, into a new run from the same weights
    est = MLPClassifier(hidden=(32,), epochs=2, batch_size=64, learning_rate=0.002)
    chunks = np.array_split(np.arange(len(X)), 3)
    est.partial_fit(X[chunks[0]], y[chunks[0]], classes=np.unique(y))
    for rows in chunks[1:]:
        est.partial_fit(X[rows], y[rows])
    assert est.n_iter_ == 3
    assert est.loss_curve_[0] > est.loss_curve_[1] > est.loss_curve_[2]


def test_partial_fit_needs_classes_on_the_first_call():
    X, y = _blobs(40)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        MLPClassifier(**_SMALL).partial_fit(X, y)
    est = MLPClassifier(**_SMALL).partial_fit(X, y, classes=[0, 1, 2, 3])  # a class the stream brings later
    assert est.predict_proba(X).shape == (40, 4)
    with pytest.raises(ValueError, match="differs from the classes of the first call"):
        est.partial_fit(X, y, classes=[0, 1, 2])


def test_early_stopping_stops_when_the_validation_loss_rises():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((400, 20)), rng.integers(0, 2, 400)  # noise: the network can only overfit
    est = MLPClassifier(hidden=(64,), epochs=100, batch_size=32, learning_rate=0.05, early_stopping=True, patience=3)
    est.fit(X, y)
    assert est.n_iter_ < 20
    assert len(est.validation_scores_) == est.n_iter_


def test_early_stopping_needs_patience():
    X, y = _blobs(40)
    with pytest.raises(ValueError, match="early_stopping=True needs patience"):
        MLPClassifier(early_stopping=True).fit(X, y)


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_divergence_raises_and_leaves_the_estimator_as_it_was(method):
    X, y = _blobs()
    est = MLPClassifier(**_SMALL).partial_fit(X, y, classes=[0, 1, 2])
    before = est.predict_proba(X), est.n_iter_
    with pytest.raises(DivergedError, match="lower learning_rate"):
        getattr(est.set_params(learning_rate=1e3), method)(X * 100, y)
    np.testing.assert_array_equal(est.predict_proba(X), before[0])
    assert est.n_iter_ == before[1]


def test_dataframe_column_names_are_kept():
    pd = pytest.importorskip("pandas")
    X, y = _blobs(60)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    est = MLPClassifier(**_SMALL).fit(frame, y)
    assert est.feature_names_in_.tolist() == list(frame.columns) and est.n_features_in_ == 5


def test_augmentation_needs_image_shape():
    X, y = load_digits(return_X_y=True)
    with pytest.raises(ValueError, match="pass image_shape"):
        MLPClassifier(**_SMALL, augment_shift=1).fit(X, y)
    assert MLPClassifier(**_SMALL, augment_shift=1, image_shape=(8, 8)).fit(X / 16, y).score(X / 16, y) > 0.8


def test_pickled_network_keeps_its_weights_as_views_of_one_array():
    X, y = _blobs()
    est = pickle.loads(pickle.dumps(MLPClassifier(**_SMALL).fit(X, y)))
    net = est.network_
    assert all(np.shares_memory(net.flat_parameters, p) for p in net.parameters())
    assert est.set_params(warm_start=True).fit(X, y).n_iter_ == 2 * _SMALL["epochs"]
