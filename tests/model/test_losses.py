"""The LOSSES table: every loss's gradient against central differences, and the laws weights and smoothing obey."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model import LOSSES
from model.losses import softmax_cross_entropy
from model.regression import huber, squared_error
from model.weighting import check_sample_weight

# (loss name, options, output width): every loss, with its option away from the default
CASES = [
    ("cross_entropy", {}, 4),
    ("cross_entropy", {"label_smoothing": 0.2}, 4),
    ("squared_error", {}, 3),
    ("huber", {"huber_delta": 0.5}, 3),  # residuals on both sides of delta
]
IDS = ["cross_entropy", "smoothed", "squared_error", "huber"]


def _batch(name: str, k: int, n: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    outputs = rng.standard_normal((n, k)) * 2
    y = rng.integers(0, k, n) if name == "cross_entropy" else rng.standard_normal((n, k)) * 2
    return outputs, y


def test_the_table_names_each_loss_its_task_and_its_validation_measure():
    assert {name: (loss.regression, loss.validation) for name, loss in LOSSES.items()} == {
        "cross_entropy": (False, "cross_entropy"),
        "squared_error": (True, "squared_error"),
        "huber": (True, "squared_error"),
    }
    assert LOSSES["squared_error"].bind(label_smoothing=0.1, huber_delta=2.0) is LOSSES["squared_error"]


@pytest.mark.parametrize("name, options, k", CASES, ids=IDS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("form", ["backward", "fused"])
def test_gradient_matches_central_differences(name, options, k, weighted, form):
    outputs, y = _batch(name, k)
    w = np.random.default_rng(1).uniform(0.0, 3.0, len(y)) if weighted else None
    loss = LOSSES[name].bind(**options)
    eps = np.finfo(np.float64).eps ** (1 / 3)
    numeric = np.empty_like(outputs)
    for i in np.ndindex(outputs.shape):
        up, down = outputs.copy(), outputs.copy()
        up[i] += eps
        down[i] -= eps
        numeric[i] = (loss.value(up, y, sample_weight=w) - loss.value(down, y, sample_weight=w)) / (2 * eps)
    analytic = outputs.copy()
    value = getattr(loss, form)(analytic, y, scale=1.0, sample_weight=w)
    assert value == pytest.approx(loss.value(outputs.copy(), y, sample_weight=w), rel=1e-12)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name, options, k", CASES, ids=IDS)
def test_fused_and_reference_forms_agree_with_scale_and_weights(name, options, k):
    outputs, y = _batch(name, k, n=9, seed=3)
    w = np.random.default_rng(4).uniform(0.0, 2.0, 9)
    loss = LOSSES[name].bind(**options)
    a, b = outputs.copy(), outputs.copy()
    assert loss.backward(a, y, scale=-0.3, sample_weight=w) == pytest.approx(
        loss.fused(b, y, scale=-0.3, sample_weight=w), rel=1e-12
    )
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(CASES), st.lists(st.integers(0, 3), min_size=5, max_size=5), st.integers(0, 99))
def test_an_integer_weight_counts_a_row_that_many_times(case, repeats, seed):
    name, options, k = case
    repeats = np.array(repeats)
    if not repeats.any():
        repeats[0] = 1
    outputs, y = _batch(name, k, n=5, seed=seed)
    loss = LOSSES[name].bind(**options)
    weighted = outputs.copy()
    value = loss.fused(weighted, y, scale=1.0, sample_weight=repeats.astype(float))
    repeated = np.repeat(outputs, repeats, axis=0)
    expected = loss.fused(repeated, np.repeat(y, repeats, axis=0), scale=1.0)
    assert value == pytest.approx(expected, rel=1e-12)
    # the gradient of a weighted row is that of its copies, summed
    starts = np.r_[0, np.cumsum(repeats)[:-1]]
    for row, (start, count) in enumerate(zip(starts, repeats)):
        np.testing.assert_allclose(weighted[row], repeated[start : start + count].sum(axis=0), atol=1e-14)


@pytest.mark.parametrize("name, options, k", CASES, ids=IDS)
def test_weights_of_one_are_no_weights_and_all_zero_weights_have_no_say(name, options, k):
    outputs, y = _batch(name, k)
    loss = LOSSES[name].bind(**options)
    plain, ones, zeros = outputs.copy(), outputs.copy(), outputs.copy()
    value = loss.fused(plain, y, scale=1.0)
    assert loss.fused(ones, y, scale=1.0, sample_weight=np.ones(len(y))) == pytest.approx(value, rel=1e-12)
    np.testing.assert_allclose(ones, plain, rtol=1e-12, atol=1e-16)
    # a batch whose rows all weigh 0: loss 0 and gradient 0, not 0 / 0
    assert loss.fused(zeros, y, scale=1.0, sample_weight=np.zeros(len(y))) == 0.0
    assert not zeros.any()


def test_huber_is_squared_error_near_zero_and_linear_beyond_delta():
    outputs = np.array([[0.1], [-0.2], [5.0], [-7.0]])
    y = np.zeros((4, 1))
    # rows: 0.5 * 0.01, 0.5 * 0.04, 1 * (5 - 0.5), 1 * (7 - 0.5): mean = (0.005 + 0.02 + 4.5 + 6.5) / 4
    assert huber(outputs, y, huber_delta=1.0) == pytest.approx((0.005 + 0.02 + 4.5 + 6.5) / 4, rel=1e-14)
    assert huber(outputs, y, huber_delta=100.0) == pytest.approx(squared_error(outputs, y), rel=1e-14)
    gradient = outputs.copy()
    LOSSES["huber"].fused(gradient, y, scale=4.0)  # scale = n: the per-row derivative
    np.testing.assert_allclose(gradient.ravel(), [0.1, -0.2, 1.0, -1.0], rtol=1e-14)  # capped at delta


def test_squared_error_is_half_the_mean_over_rows_and_targets():
    outputs, y = np.array([[1.0, 2.0], [3.0, 5.0]]), np.array([[0.0, 0.0], [3.0, 1.0]])
    # squares 1, 4, 0, 16: half their mean is 21 / 8
    assert squared_error(outputs, y) == pytest.approx(21 / 8, rel=1e-15)
    with pytest.raises(ValueError, match=r"y must have the outputs' shape \(2, 2\), got \(2,\)"):
        squared_error(outputs, np.zeros(2))


@settings(max_examples=40, deadline=None)
@given(smoothing=st.floats(0.0, 0.99), k=st.integers(2, 7), seed=st.integers(0, 99))
def test_a_smoothed_gradient_sums_to_zero_per_row_and_uniform_logits_cost_log_k(smoothing, k, seed):
    rng = np.random.default_rng(seed)
    logits, y = rng.standard_normal((5, k)) * 10, rng.integers(0, k, 5)
    loss = LOSSES["cross_entropy"].bind(label_smoothing=smoothing)
    loss.fused(logits, y, scale=1.0)
    np.testing.assert_allclose(logits.sum(axis=1), 0.0, atol=1e-12)  # p and t both sum to 1
    uniform, _ = softmax_cross_entropy(np.zeros((5, k)), y, label_smoothing=smoothing)
    assert uniform == pytest.approx(np.log(k), rel=1e-12)


@pytest.mark.parametrize(
    "weights, message",
    [
        (np.array([1.0, -2.0, 1.0]), r"finite and >= 0, got -2.0 at row 1"),
        (np.array([1.0, np.nan, 1.0]), r"finite and >= 0, got nan at row 1"),
        (np.zeros(3), r"zero for every row"),
        (np.ones(2), r"shape \(3,\), one weight per row, got shape \(2,\)"),
        (np.array(["a", "b", "c"]), r"real numbers, got dtype <U1"),
    ],
)
def test_bad_sample_weights_are_named(weights, message):
    with pytest.raises(ValueError, match=message):
        check_sample_weight(weights, 3)
