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
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.estimator_checks import parametrize_with_checks

from model import DivergedError, MLPClassifier, TrainConfig

# Small enough that all the checks take well under a second, large enough to pass their accuracy bars
_SMALL = {"hidden": (16,), "epochs": 20, "batch_size": 32}


def expected_failed_checks(estimator) -> dict[str, str]:
    """The checks an instance is known to fail, each with its reason (shared with test_regressor.py)."""
    if estimator.batch_size >= 32 and not estimator.dropout:
        return {}  # one batch holds the check's 15 rows and their ~30 repeats: it passes
    return {
        "check_sample_weight_equivalence_on_dense_data": (
            "weights equal repeated rows only in expectation under minibatches and dropout: the weighted "
            "fit and the fit on repeated rows draw different batches and masks (the full-batch instance passes)"
        )
    }


@parametrize_with_checks(
    [
        MLPClassifier(**_SMALL),
        # the other paths: two layers given as a list, dropout, adam, patience judging the training rows,
        # label smoothing, decoupled weight decay
        MLPClassifier(
            hidden=[16, 8], dropout=0.2, optimizer="adam", epochs=10, batch_size=16, patience=2,
            label_smoothing=0.1, weight_decay=1e-3,
        ),
    ],
    expected_failed_checks=expected_failed_checks,
)  # fmt: skip
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _blobs(n: int = 300, seed: int = 0):
    X, y = make_blobs(n, n_features=5, centers=3, random_state=seed)
    return StandardScaler().fit_transform(X), y


def test_every_train_config_field_is_a_parameter_with_its_default():
    # search/sklearn.py builds MLPClassifier(**asdict(config)): every field must be a parameter
    parameters = inspect.signature(MLPClassifier).parameters
    for field in dataclasses.fields(TrainConfig):
        expected = "auto" if field.name == "loss" else field.default  # "auto": the estimator's own loss
        assert parameters[field.name].default == expected, field.name
    assert MLPClassifier().get_params()["hidden"] == TrainConfig().hidden
    assert MLPClassifier(**dataclasses.asdict(TrainConfig())).get_params()["loss"] == "cross_entropy"


def test_a_regression_loss_is_refused_by_name():
    X, y = _blobs(40)
    message = r"^loss must be auto or one of cross_entropy for MLPClassifier, got loss='huber'$"
    with pytest.raises(ValueError, match=message):
        MLPClassifier(**_SMALL, loss="huber").fit(X, y)


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


def test_sample_weight_zero_rows_are_as_if_removed_in_a_full_batch():
    # one batch, no dropout: the weighted mean over all rows is the plain mean over the weighted ones
    X, y = _blobs(120)
    w = (np.arange(120) % 3 != 0).astype(float)
    params = {"hidden": (8,), "epochs": 5, "batch_size": 1000, "optimizer": "sgd", "learning_rate": 0.1}
    weighted = MLPClassifier(**params).fit(X, y, sample_weight=w)
    removed = MLPClassifier(**params).fit(X[w > 0], y[w > 0])
    np.testing.assert_allclose(weighted.predict_proba(X), removed.predict_proba(X), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(weighted.loss_curve_, removed.loss_curve_, rtol=1e-5)


def test_balanced_class_weights_raise_the_recall_of_a_rare_class():
    # 5% positives that overlap the majority: unweighted, the network mostly says "majority"
    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.05).astype(int)
    X = rng.standard_normal((2000, 4)) + y[:, None] * 1.0
    params = {"hidden": (16,), "epochs": 15, "batch_size": 64, "seed": 1}
    plain = MLPClassifier(**params).fit(X, y)
    balanced = MLPClassifier(**params).fit(X, y, sample_weight=compute_sample_weight("balanced", y))
    recall = [float((est.predict(X)[y == 1] == 1).mean()) for est in (plain, balanced)]
    assert recall[1] > recall[0] + 0.3, recall


def test_sample_weight_is_checked_and_named():
    X, y = _blobs(40)
    with pytest.raises(ValueError, match=r"sample_weight must be finite and >= 0, got -1.0 at row 3"):
        MLPClassifier(**_SMALL).fit(X, y, sample_weight=np.where(np.arange(40) == 3, -1.0, 1.0))
    with pytest.raises(ValueError, match=r"sample_weight leaves 1 class \(2\) with positive weight"):
        MLPClassifier(**_SMALL).fit(X, y, sample_weight=(y == 2).astype(float))


def test_early_stopping_splits_the_weights_with_the_rows_and_scores_weighted_accuracy():
    X, y = _blobs(300)
    w = np.where(y == 0, 3.0, 1.0)
    est = MLPClassifier(hidden=(8,), epochs=6, batch_size=32, early_stopping=True, patience=10)
    est.fit(X, y, sample_weight=w)
    assert len(est.validation_scores_) == est.n_iter_ == 6 and est.validation_scores_[-1] > 0.9


def test_partial_fit_takes_sample_weight():
    X, y = _blobs(200)
    est = MLPClassifier(**_SMALL).partial_fit(X, y, classes=[0, 1, 2], sample_weight=np.full(200, 2.0))
    plain = MLPClassifier(**_SMALL).partial_fit(X, y, classes=[0, 1, 2])
    # a constant weight changes nothing: the mean is normalised by the weights' sum
    np.testing.assert_allclose(est.predict_proba(X), plain.predict_proba(X), rtol=1e-5, atol=1e-6)
