"""Shift/flip augmentation on tiny handmade images, and its use in train() on training batches only."""

from __future__ import annotations

import numpy as np
import pytest

from model import TrainConfig, load_dataset, train
from model.augment import Augmenter, shift_flip_table
from model.datasets.registry import REGISTRY

IMG = np.arange(12, dtype=np.float32).reshape(3, 4)  # a 3x4 image whose pixel values are their indices
#  0  1  2  3
#  4  5  6  7
#  8  9 10 11


def _variant(table: np.ndarray, flip: int, dy: int, dx: int, shift: int = 1) -> np.ndarray:
    """Apply the (flip, dy, dx) row of ``table`` to IMG; variants are flip-major, offsets -shift..shift."""
    n = 2 * shift + 1
    return IMG.ravel()[table[(flip * n + dy + shift) * n + dx + shift]].reshape(IMG.shape)


def test_identity_variant_changes_nothing():
    table = shift_flip_table((3, 4), 1, False)
    assert table.shape == (9, 12)
    np.testing.assert_array_equal(_variant(table, 0, 0, 0), IMG)


def test_shift_right_by_one_repeats_the_left_edge():
    # content moves right: output column c reads column c - 1; column 0 reads column 0 (edge padding)
    out = _variant(shift_flip_table((3, 4), 1, False), 0, 0, 1)
    np.testing.assert_array_equal(out, [[0, 0, 1, 2], [4, 4, 5, 6], [8, 8, 9, 10]])


def test_shift_up_by_one_repeats_the_bottom_edge():
    out = _variant(shift_flip_table((3, 4), 1, False), 0, -1, 0)
    np.testing.assert_array_equal(out, [[4, 5, 6, 7], [8, 9, 10, 11], [8, 9, 10, 11]])


def test_shift_by_two_diagonally():
    # down 2, left 2 on the 3x4 image: row r reads max(r - 2, 0), column c reads min(c + 2, 3)
    out = _variant(shift_flip_table((3, 4), 2, False), 0, 2, -2, shift=2)
    np.testing.assert_array_equal(out, [[2, 3, 3, 3], [2, 3, 3, 3], [2, 3, 3, 3]])


def test_flip_mirrors_each_row_exactly():
    out = _variant(shift_flip_table((3, 4), 0, True), 1, 0, 0, shift=0)
    np.testing.assert_array_equal(out, IMG[:, ::-1])


def test_colour_planes_are_shifted_alike_and_never_mixed():
    planes = np.stack([IMG, IMG + 100, IMG + 200])  # (C, H, W) as CIFAR's rows hold them
    table = shift_flip_table((3, 3, 4), 1, True)
    out = planes.ravel()[table[(1 * 3 + 1) * 3 + 2]].reshape(3, 3, 4)  # flip, dy = 0, dx = +1
    for c in range(3):
        np.testing.assert_array_equal(out[c], IMG[:, ::-1][:, [0, 0, 1, 2]] + 100 * c)  # mirror, then shift


def test_augmenter_keeps_float32_leaves_its_input_alone_and_draws_every_variant():
    X = np.tile(IMG.ravel(), (2000, 1))  # (2000, 12)
    before = X.copy()
    out = Augmenter((3, 4), 1, True, np.random.default_rng(0))(X)
    assert out.dtype == np.float32 and out.shape == X.shape
    np.testing.assert_array_equal(X, before)
    table = shift_flip_table((3, 4), 1, True)
    matches = (out[:, None, :] == IMG.ravel()[table][None]).all(axis=2)  # (2000, 18)
    assert matches.any(axis=1).all()  # every output row is one of the 18 variants
    assert matches.any(axis=0).all()  # and each variant occurs


def test_augmenter_is_deterministic_for_a_seed():
    X = np.random.default_rng(5).random((64, 12), dtype=np.float32)
    a = Augmenter((3, 4), 1, True, np.random.default_rng(7))
    b = Augmenter((3, 4), 1, True, np.random.default_rng(7))
    c = Augmenter((3, 4), 1, True, np.random.default_rng(8))
    first = a(X).copy()
    np.testing.assert_array_equal(first, b(X))
    assert not np.array_equal(first, c(X))


@pytest.mark.parametrize("shape, shift, match", [((12,), 1, "image_shape"), ((3, 4), 3, "shift")])
def test_augmenter_rejects_a_bad_shape_or_shift(shape, shift, match):
    with pytest.raises(ValueError, match=match):
        Augmenter(shape, shift, False, np.random.default_rng(0))


def _data(n: int = 60):
    rng = np.random.default_rng(0)
    X = rng.random((n, 12), dtype=np.float32)
    return X, rng.integers(0, 3, n)


def test_train_without_image_shape_refuses_augmentation():
    X, y = _data()
    with pytest.raises(ValueError, match="needs the layout of a row: pass image_shape"):
        train(TrainConfig(hidden=(8,), epochs=1, augment_shift=1), X, y, X, y)
    with pytest.raises(ValueError, match=r"image_shape \(3, 3\) holds 9 pixels"):
        train(TrainConfig(hidden=(8,), epochs=1, augment_flip=True), X, y, X, y, image_shape=(3, 3))


def test_train_augments_training_batches_only(monkeypatch):
    from model.fused import FastPath

    X, y = _data()
    seen: list[np.ndarray] = []
    real = FastPath.momentum_step  # the default optimizer is momentum

    def spy(self, Xb, yb, rng=None, **kw):
        seen.append(Xb.copy())
        return real(self, Xb, yb, rng, **kw)

    monkeypatch.setattr(FastPath, "momentum_step", spy)
    X_val = X.copy()
    result = train(TrainConfig(hidden=(8,), epochs=2, batch_size=60, augment_flip=True, seed=3), X, y, X_val, y,
                   image_shape=(3, 4))
    # each training batch is the whole (sorted) set with some rows mirrored, and some not
    flipped = X.reshape(-1, 3, 4)[:, :, ::-1].reshape(-1, 12)
    for Xb in seen:
        is_same, is_flipped = (Xb == X).all(axis=1), (Xb == flipped).all(axis=1)
        assert (is_same | is_flipped).all() and is_same.any() and is_flipped.any()
    # validation is scored on the untouched arrays: the same loss as evaluating them directly
    np.testing.assert_array_equal(X_val, X)
    assert result.history[-1].val_loss == pytest.approx(result.network.evaluate(X_val, y)[0])


def test_train_with_augmentation_is_deterministic_and_differs_from_plain():
    X, y = _data()
    config = TrainConfig(hidden=(8,), epochs=3, batch_size=16, augment_shift=1, augment_flip=True, seed=4)
    a = train(config, X, y, X, y, image_shape=(3, 4))
    b = train(config, X, y, X, y, image_shape=(3, 4))
    plain = train(TrainConfig(hidden=(8,), epochs=3, batch_size=16, seed=4), X, y, X, y)
    assert [s.val_loss for s in a.history] == [s.val_loss for s in b.history]
    assert [s.val_loss for s in a.history] != [s.val_loss for s in plain.history]
    assert a.network.layers[0].W.dtype == np.float32


def test_every_registered_image_shape_matches_its_feature_count():
    sizes = {"digits": 64, "mnist": 784, "fashion-mnist": 784, "cifar10": 3072, "cifar100": 3072,
             "cifar100-coarse": 3072}
    for name, spec in REGISTRY.items():
        assert int(np.prod(spec.image_shape)) == sizes[name]
    assert REGISTRY["cifar10"].image_shape == (3, 32, 32)  # planes first, as cifar.py keeps the rows


def test_loaded_digits_carry_their_image_shape_and_train_end_to_end_with_augmentation(tmp_path):
    data = load_dataset("digits", cache_dir=tmp_path)
    assert data.image_shape == (8, 8)
    config = TrainConfig(hidden=(32,), epochs=3, optimizer="nesterov", learning_rate=0.05, lr_schedule="cosine",
                         warmup=1, augment_shift=1, augment_flip=True, seed=0)
    result = train(config, data.X_train, data.y_train, data.X_val, data.y_val, image_shape=data.image_shape)
    assert result.outcome == "completed" and result.history[-1].val_accuracy > 0.5
