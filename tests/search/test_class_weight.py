"""--class-weight balanced: scikit-learn's weights, in the trials' training and validation losses."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from sklearn.utils.class_weight import compute_sample_weight

from model import TrainConfig, train
from search.study.dataref import DataRef
from search.study.spec import StudySpec
from search.study.weights import sample_weights
from search.workers.tasks import TrialTask, run_trial


@pytest.fixture
def imbalanced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DataRef:
    """A table of 3 classes in 80 / 15 / 5 % of 400 rows, as a file of one's own."""
    monkeypatch.setenv("NUMPY_HPSEARCH_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    y = rng.choice(3, size=400, p=[0.8, 0.15, 0.05])
    X = rng.normal(size=(400, 6)) + y[:, None] * 0.7
    np.savez(tmp_path / "rare.npz", X=X.astype(np.float32), y=y)
    return DataRef.of(StudySpec(name="rare", dataset=None, data=str(tmp_path / "rare.npz")))


def test_balanced_weights_are_compute_sample_weights_and_the_validation_rows_get_their_class_weight() -> None:
    y_train = np.array([0, 0, 0, 0, 0, 0, 1, 1, 2])
    y_val = np.array([2, 0, 1])
    w_train, w_val = sample_weights("balanced", y_train, y_val)
    np.testing.assert_array_equal(w_train, compute_sample_weight("balanced", y_train))
    # n / (k * count): 9 / (3 * 6), 9 / (3 * 2), 9 / (3 * 1)
    np.testing.assert_allclose(w_val, [3.0, 0.5, 1.5])
    assert sample_weights("none", y_train, y_val) == (None, None)
    assert sample_weights(None, y_train) == (None, None)


def test_a_balanced_trial_trains_and_is_judged_with_those_weights(imbalanced: DataRef) -> None:
    data = imbalanced.load()
    config = TrainConfig(hidden=(16,), epochs=3, learning_rate=0.05, seed=7)
    task = TrialTask("rare", 0, config, imbalanced, "none", class_weight="balanced")
    weighted = run_trial(task)
    assert weighted.outcome == "complete", weighted.reason
    w_train, w_val = sample_weights("balanced", data.y_train, data.y_val)
    assert w_train is not None and len(np.unique(w_train)) == 3  # the rare class weighs most
    expected = train(config, data.X_train, data.y_train, data.X_val, data.y_val, n_classes=data.n_classes,
                     sample_weight=compute_sample_weight("balanced", data.y_train), val_sample_weight=w_val)
    assert weighted.values == pytest.approx([s.val_loss for s in expected.history], rel=1e-6)
    assert weighted.train_loss == pytest.approx(expected.history[-1].train_loss, rel=1e-6)
    plain = run_trial(dataclasses.replace(task, class_weight="none"))
    assert plain.values[0] != pytest.approx(weighted.values[0], rel=1e-3)  # the weights change the loss


def test_a_study_with_balanced_weights_keeps_its_splits_stratified(imbalanced: DataRef) -> None:
    data = imbalanced.load()
    share = [np.bincount(y, minlength=3) / len(y) for y in (data.y_train, data.y_val, data.y_test)]
    for part in share[1:]:
        np.testing.assert_allclose(part, share[0], atol=0.04)
    for fold in imbalanced.folds(3, seed=0):
        np.testing.assert_allclose(np.bincount(fold.y_val, minlength=3) / len(fold.y_val), share[0], atol=0.04)
