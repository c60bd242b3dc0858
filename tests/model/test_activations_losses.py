"""Activations, softmax and cross-entropy: known values and laws that must hold for any input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from model import ACTIVATIONS
from model.losses import (
    log_softmax,
    softmax,
    softmax_cross_entropy,
    softmax_cross_entropy_and_gradient,
    softmax_cross_entropy_gradient,
)

Z = np.array([[-3.0, -0.5, 0.0, 0.5, 3.0]])
EXPECTED = {
    "relu": np.maximum(Z, 0),
    "leaky_relu": np.where(Z > 0, Z, 0.1 * Z),
    "tanh": np.tanh(Z),
    "sigmoid": 1 / (1 + np.exp(-Z)),
}


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_forward_matches_textbook_formula(name):
    out = Z.copy()
    ACTIVATIONS[name].with_slope(0.1).forward(out)
    np.testing.assert_allclose(out, EXPECTED[name], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_derivative_from_output_matches_finite_difference(name):
    z = np.linspace(-3, 3, 13) + 0.05  # keeps clear of the kink at 0
    eps = np.finfo(np.float64).eps ** (1 / 3)
    f = ACTIVATIONS[name].with_slope(0.1)

    def fwd(v):
        v = v.copy()
        f.forward(v)
        return v

    numeric = (fwd(z + eps) - fwd(z - eps)) / (2 * eps)
    delta = np.ones_like(z)
    f.derivative(fwd(z), delta)
    np.testing.assert_allclose(delta, numeric, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_saturates_without_overflow_warning(dtype):
    z = np.array([-1e4, -100.0, 0.0, 100.0, 1e4], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ACTIVATIONS["sigmoid"].forward(z)
    assert z.dtype == dtype
    np.testing.assert_array_equal(z, [0.0, 0.0, 0.5, 1.0, 1.0])


logit_rows = arrays(
    np.float64,
    st.tuples(st.integers(1, 8), st.integers(2, 6)),
    elements=st.floats(-1e4, 1e4, allow_nan=False),
)


@settings(max_examples=60, deadline=None)
@given(logits=logit_rows, dtype=st.sampled_from([np.float32, np.float64]))
def test_softmax_rows_are_probabilities_for_any_logits(logits, dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = softmax(logits.astype(dtype))
    assert p.dtype == dtype
    assert np.all(p >= 0) and np.all(p <= 1)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-5 if dtype == np.float32 else 1e-12)


@settings(max_examples=60, deadline=None)
@given(logits=logit_rows, data=st.data())
def test_cross_entropy_is_finite_and_matches_log_softmax_for_extreme_logits(logits, data):
    n, k = logits.shape
    y = np.array(data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, p = softmax_cross_entropy(logits, y, out=logits.copy())
        expected = -log_softmax(logits)[np.arange(n), y].mean()
    assert np.isfinite(loss) and loss >= 0
    np.testing.assert_allclose(loss, expected, rtol=1e-12, atol=1e-12)


def test_cross_entropy_of_uniform_logits_is_log_k():
    loss, _ = softmax_cross_entropy(np.zeros((4, 10)), np.array([0, 3, 9, 2]))
    assert loss == pytest.approx(np.log(10))


def test_cross_entropy_gradient_is_p_minus_onehot_divided_by_n_once():
    logits = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    y = np.array([1, 0])
    _, p = softmax_cross_entropy(logits, y)
    expected = p.copy()
    expected[0, 1] -= 1
    expected[1, 0] -= 1
    expected /= 2  # mean over the n = 2 rows: divided once
    np.testing.assert_allclose(softmax_cross_entropy_gradient(p, y), expected, rtol=1e-15)


@settings(max_examples=40, deadline=None)
@given(logits=logit_rows, data=st.data(), scale=st.sampled_from([1.0, -0.01, 3.0]))
def test_fused_loss_and_gradient_equals_the_two_step_form(logits, data, scale):
    n, k = logits.shape
    y = np.array(data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    loss, p = softmax_cross_entropy(logits, y, out=logits.copy())
    expected = softmax_cross_entropy_gradient(p, y, scale=scale)
    fused = logits.copy()
    assert softmax_cross_entropy_and_gradient(fused, y, scale=scale) == pytest.approx(loss, rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(fused, expected, rtol=1e-10, atol=1e-15)


def test_nan_logits_give_nan_loss_not_an_exception():
    logits = np.array([[0.0, np.nan, 1.0], [np.inf, 0.0, 0.0]], np.float32)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("error")
        loss = softmax_cross_entropy_and_gradient(logits, np.array([0, 1]))
    assert np.isnan(loss)
