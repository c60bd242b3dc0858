"""Dense and inverted dropout layers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.layers import Dense, Dropout, init_weights


def test_dense_forward_and_backward_are_the_affine_map_and_its_transposes():
    rng = np.random.default_rng(0)
    X, W, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 2)), rng.standard_normal(2)
    layer = Dense(W.copy(), b.copy())
    np.testing.assert_allclose(layer.forward(X), X @ W + b)
    dZ = rng.standard_normal((4, 2))
    dX = layer.backward(dZ)
    np.testing.assert_allclose(layer.dW, X.T @ dZ)
    np.testing.assert_allclose(layer.db, dZ.sum(axis=0))
    np.testing.assert_allclose(dX, dZ @ W.T)
    assert layer.backward(dZ, need_dX=False) is None


@pytest.mark.parametrize(
    "scheme, n_in, n_out, expected_std", [("he", 400, 300, np.sqrt(2 / 400)), ("glorot", 400, 300, np.sqrt(2 / 700))]
)
def test_init_weights_have_the_variance_of_the_scheme(scheme, n_in, n_out, expected_std):
    W = init_weights(n_in, n_out, scheme, np.random.default_rng(0), np.dtype(np.float32))
    assert W.dtype == np.float32 and W.flags.c_contiguous
    assert W.std() == pytest.approx(expected_std, rel=0.02)
    assert abs(W.mean()) < 0.1 * expected_std


def test_dropout_mask_values_are_zero_or_inverse_keep_probability():
    layer = Dropout(0.25)
    H = np.ones((200, 50), np.float32)
    out = layer.forward(H, np.random.default_rng(1))
    assert set(np.unique(out)) <= {0.0, np.float32(1 / 0.75)}
    assert out.dtype == np.float32


def test_dropout_backward_reuses_the_forward_mask():
    layer = Dropout(0.5)
    mask = np.array([[0.0, 2.0], [2.0, 0.0]])
    np.testing.assert_array_equal(layer.forward(np.full((2, 2), 3.0), mask=mask), [[0, 6], [6, 0]])
    np.testing.assert_array_equal(layer.backward(np.ones((2, 2))), mask)


@settings(max_examples=25, deadline=None)
@given(
    rate=st.floats(0.0, 0.9),
    seed=st.integers(0, 2**32 - 1),
    bit_generator=st.sampled_from([np.random.PCG64, np.random.MT19937, np.random.SFC64]),
)
def test_inverted_dropout_keeps_the_mean_activation(rate, seed, bit_generator):
    n = 400_000
    H = np.full((n // 400, 400), 1.5, np.float32)
    out = Dropout(rate).forward(H, np.random.Generator(bit_generator(seed)))
    # each unit is 1.5/(1-rate) w.p. 1-rate, else 0: mean 1.5, std 1.5*sqrt(rate/(1-rate))
    std_of_mean = 1.5 * np.sqrt(rate / (1 - rate) / n)
    # 6 sigma, plus a few whole units for tiny rates, where drops are Poisson not normal
    assert abs(out.mean(dtype=np.float64) - 1.5) <= 6 * std_of_mean + 10 * 1.5 / n
    assert abs(np.mean(out == 0) - rate) <= 6 * np.sqrt(rate * (1 - rate) / n) + 10 / n


def test_dropout_rejects_rate_one():
    with pytest.raises(ValueError, match="rate=1.0"):
        Dropout(1.0)


@pytest.mark.parametrize("rate", [0.2, 0.25, 0.5, 0.0])
def test_dropout_rate_is_exact_not_rounded_to_bytes(rate):
    # 0.2 * 256 = 51.2 is not a whole byte: units with u == 51 drop with probability 0.2;
    # without that, the rate would be 51/256 = 0.19922, 1.6 bounds below 0.2 at this n
    n = 2**24
    mask = Dropout(rate).sample_mask(np.random.default_rng(0), np.empty(n, np.float32))
    dropped = np.mean(mask == 0)
    assert abs(dropped - rate) <= 5 * np.sqrt(rate * (1 - rate) / n) + 1e-12
