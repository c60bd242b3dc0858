"""The affine warp (``model.augment.Warp``) on handmade images, and its use in train() on training batches only."""

from __future__ import annotations

import math

import numpy as np
import pytest

from model import TrainConfig, load_dataset, train
from model.augment import WARP_AT_STRENGTH_1, Warp, shift_flip_table

SQUARE = np.arange(16, dtype=np.float32).reshape(4, 4)  # pixel values are their indices


def _warp(image: np.ndarray, angle_degrees: float = 0.0, shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """``image`` warped by one given rotation and translation (no randomness)."""
    a = math.radians(angle_degrees)
    A = np.array([[[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]])
    warp = Warp(image.shape, 1.0, np.random.default_rng(0))
    return warp.apply(image.reshape(1, -1), A, np.array([shift])).reshape(image.shape)


def test_the_identity_map_changes_nothing():
    np.testing.assert_allclose(_warp(SQUARE), SQUARE, atol=1e-5)


def test_a_whole_pixel_translation_is_the_shift_tables_with_edge_padding():
    # source column c + 1: content moves left by one, the right edge repeats (the table's dx = -1)
    expected = SQUARE.ravel()[shift_flip_table((4, 4), 1, False)[1 * 3 + 0]].reshape(4, 4)
    np.testing.assert_allclose(_warp(SQUARE, shift=(0.0, 1.0)), expected, atol=1e-5)


def test_half_a_pixel_reads_the_mean_of_two_neighbours():
    out = _warp(SQUARE, shift=(0.5, 0.0))  # source row r + 0.5
    np.testing.assert_allclose(out[:3], (SQUARE[:3] + SQUARE[1:]) / 2, atol=1e-5)
    np.testing.assert_allclose(out[3], SQUARE[3], atol=1e-5)  # clipped to the bottom edge


def test_a_quarter_turn_rotates_about_the_centre():
    np.testing.assert_allclose(_warp(SQUARE, angle_degrees=90), np.rot90(SQUARE, -1), atol=1e-4)


def test_colour_planes_share_their_images_map_and_never_mix():
    planes = np.stack([SQUARE, SQUARE + 100, SQUARE + 200])  # (C, H, W) as CIFAR's rows hold them
    out = _warp(planes, angle_degrees=90, shift=(0.5, 0.0))
    for c in range(3):
        np.testing.assert_allclose(out[c], _warp(SQUARE, angle_degrees=90, shift=(0.5, 0.0)) + 100 * c, atol=1e-4)


def test_random_maps_stay_within_their_ranges_and_grow_with_the_strength():
    for strength in (0.5, 2.0):
        warp = Warp((8, 8), strength, np.random.default_rng(1))
        A, t = warp.maps(4000)
        # |det A| = 1 / scale**2 (a rotation and a shear have determinant 1)
        scale = 1 / np.sqrt(np.linalg.det(A))
        limit = WARP_AT_STRENGTH_1["scale"] * strength
        assert scale.min() >= 1 - limit - 1e-9 and scale.max() <= 1 + limit + 1e-9
        assert scale.min() < 1 - 0.9 * limit and scale.max() > 1 + 0.9 * limit  # the whole range is drawn
        assert np.abs(t).max() <= WARP_AT_STRENGTH_1["translation"] * strength * 8 + 1e-9
    X = np.random.default_rng(2).random((500, 64), dtype=np.float32)
    change = [np.abs(Warp((8, 8), s, np.random.default_rng(3))(X) - X).mean() for s in (0.25, 1.0, 2.0)]
    assert change[0] < change[1] < change[2]


def test_a_warp_keeps_float32_leaves_its_input_alone_and_repeats_for_a_seed():
    X = np.random.default_rng(5).random((64, 64), dtype=np.float32)
    before = X.copy()
    first = Warp((8, 8), 1.0, np.random.default_rng(7))(X)
    assert first.dtype == np.float32 and first.shape == X.shape
    np.testing.assert_array_equal(X, before)
    np.testing.assert_array_equal(first, Warp((8, 8), 1.0, np.random.default_rng(7))(X))
    assert not np.array_equal(first, Warp((8, 8), 1.0, np.random.default_rng(8))(X))
    # bilinear sampling is a convex combination: no value leaves the image's range
    assert first.min() >= X.min() and first.max() <= X.max()


@pytest.mark.parametrize(
    "shape, strength, match",
    [((64,), 1.0, "image_shape"), ((1, 8), 1.0, "at least 2x2"), ((8, 8), 0.0, "strength"),
     ((8, 8), float("nan"), "strength")],
)
def test_a_warp_rejects_a_bad_shape_or_strength(shape, strength, match):
    with pytest.raises(ValueError, match=match):
        Warp(shape, strength, np.random.default_rng(0))


def test_train_config_refuses_a_negative_warp():
    with pytest.raises(ValueError, match="augment_warp must be"):
        TrainConfig(augment_warp=-0.5)


def test_train_warps_training_batches_only(monkeypatch):
    from model.fused import FastPath

    rng = np.random.default_rng(0)
    X, y = rng.random((60, 16), dtype=np.float32), rng.integers(0, 3, 60)
    seen: list[np.ndarray] = []
    real = FastPath.momentum_step

    def spy(self, Xb, yb, rng=None, **kw):
        seen.append(Xb.copy())
        return real(self, Xb, yb, rng, **kw)

    monkeypatch.setattr(FastPath, "momentum_step", spy)
    X_val = X.copy()
    config = TrainConfig(hidden=(8,), epochs=2, batch_size=60, augment_warp=1.0, seed=3)
    with pytest.raises(ValueError, match="augment_warp=1.0.*needs the layout of a row"):
        train(config, X, y, X_val, y)
    result = train(config, X, y, X_val, y, image_shape=(4, 4))
    assert len(seen) == 2 and not np.allclose(seen[0], seen[1])  # a fresh warp every epoch
    assert all(not np.allclose(Xb, X) for Xb in seen)  # the rows come sorted, so a warped batch differs
    np.testing.assert_array_equal(X_val, X)
    assert result.history[-1].val_loss == pytest.approx(result.network.evaluate(X_val, y)[0])


def test_train_with_a_warp_and_a_shift_is_deterministic_and_differs_from_each_alone():
    data = load_dataset("digits")
    X, y = data.X_train[:300], data.y_train[:300]

    def run(**augment) -> list[float]:
        config = TrainConfig(hidden=(16,), epochs=3, batch_size=32, seed=4, **augment)
        return [s.val_loss for s in train(config, X, y, data.X_val, data.y_val, image_shape=(8, 8)).history]

    both = run(augment_warp=1.0, augment_shift=1)
    assert both == run(augment_warp=1.0, augment_shift=1)
    assert both != run(augment_warp=1.0) and both != run(augment_shift=1) and run(augment_warp=1.0) != run()
