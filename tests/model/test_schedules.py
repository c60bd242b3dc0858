"""Cosine and warm-up learning rates worked by hand, and their per-step use in training."""

from __future__ import annotations

import math

import numpy as np
import pytest

from model import TrainConfig, train
from model.fused import FastPath
from model.optim import SCHEDULES, learning_rate_at


def test_cosine_runs_from_base_through_half_to_zero():
    # base * (1 + cos(pi * t / epochs)) / 2 with epochs = 10
    assert learning_rate_at(0, 0.1, "cosine", epochs=10) == pytest.approx(0.1)  # cos 0 = 1
    assert learning_rate_at(5, 0.1, "cosine", epochs=10) == pytest.approx(0.05)  # cos(pi/2) = 0
    # t = 2.5: (1 + cos(pi/4)) / 2 = (1 + 0.70711) / 2 = 0.85355
    assert learning_rate_at(2.5, 0.1, "cosine", epochs=10) == pytest.approx(0.085355, abs=1e-6)
    assert learning_rate_at(10, 0.1, "cosine", epochs=10) == pytest.approx(0.0, abs=1e-15)  # cos pi = -1
    assert learning_rate_at(12, 0.1, "cosine", epochs=10) == pytest.approx(0.0, abs=1e-15)  # stays at 0


def test_cosine_is_fractional_in_t_but_step_and_exponential_are_per_epoch():
    # the middle of the last of 100 steps per epoch in a 1-epoch run: t = 0.995
    # (1 + cos(0.995 pi)) / 2 = (1 - 0.99988) / 2 = 6.17e-5: small but not 0
    assert learning_rate_at(0.995, 1.0, "cosine", epochs=1) == pytest.approx(6.1685e-5, rel=1e-4)
    # step and exponential use floor(t): the whole first epoch has base, as before
    assert learning_rate_at(0.5, 0.1, "exponential", 0.9) == 0.1
    assert learning_rate_at(1.5, 0.1, "exponential", 0.9) == pytest.approx(0.09)
    assert learning_rate_at(10.5, 0.1, "step", 0.5, 10) == pytest.approx(0.05)


def test_warmup_ramps_linearly_then_leaves_the_schedule_alone():
    # warm-up 2 epochs over "none": factor t / 2 until t = 2
    assert [learning_rate_at(t, 0.1, "none", warmup=2) for t in (0.0, 0.5, 1.0, 2.0, 7.0)] == pytest.approx(
        [0.0, 0.025, 0.05, 0.1, 0.1]
    )
    # combined with cosine over 10 epochs, t = 1: cosine (1 + cos(pi/10)) / 2 = (1 + 0.95106) / 2 = 0.97553,
    # times warm-up 1/2 -> 0.048776 for base 0.1
    assert learning_rate_at(1.0, 0.1, "cosine", epochs=10, warmup=2) == pytest.approx(0.0487764, rel=1e-5)
    # and with exponential (decay 0.5): t = 1.5 -> floor 1 -> 0.05, times 1.5/2 -> 0.0375
    assert learning_rate_at(1.5, 0.1, "exponential", 0.5, warmup=2) == pytest.approx(0.0375)


def test_unknown_schedule_names_the_value_and_the_choices():
    with pytest.raises(ValueError, match=r"cosine.*schedule='linear'"):
        learning_rate_at(0, 0.1, "linear")
    assert "cosine" in SCHEDULES


@pytest.mark.parametrize("field, value", [("warmup", -1), ("warmup", 1.5), ("augment_shift", -2), ("augment_flip", 1)])
def test_bad_warmup_or_augmentation_settings_name_the_value(field, value):
    with pytest.raises(ValueError, match=f"{field}={value!r}"):
        TrainConfig(**{field: value})


def _lrs_seen(monkeypatch, config: TrainConfig, n: int) -> list[float]:
    """The learning rate in force at every step of a run on n random rows (the real step, observed)."""
    seen: list[float] = []
    real = FastPath.gradients

    def spy(self, Xb, yb, rng, *, scale=1.0, **kw):
        seen.append(-scale)  # the SGD family's gradient scale is -lr
        return real(self, Xb, yb, rng, scale=scale, **kw)

    monkeypatch.setattr(FastPath, "gradients", spy)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((n, 3)).astype(np.float32), rng.integers(0, 2, n)
    train(config, X, y, X, y)
    return seen


def test_cosine_with_warmup_sets_the_rate_at_the_middle_of_every_step(monkeypatch):
    # 2 epochs of 4 steps (8 rows, batch 2): the middles are t = 0.125, 0.375, ..., 1.875
    config = TrainConfig(hidden=(4,), optimizer="sgd", learning_rate=0.1, batch_size=2, epochs=2,
                         lr_schedule="cosine", warmup=1)
    t = np.arange(8) / 4 + 0.125
    expected = 0.1 * (1 + np.cos(np.pi * t / 2)) / 2 * np.minimum(1.0, t / 1)
    assert _lrs_seen(monkeypatch, config, 8) == pytest.approx(list(expected), rel=1e-6)


def test_exponential_without_warmup_keeps_one_rate_per_epoch(monkeypatch):
    config = TrainConfig(hidden=(4,), optimizer="sgd", learning_rate=0.1, batch_size=4, epochs=2,
                         lr_schedule="exponential", lr_decay=0.5)
    assert _lrs_seen(monkeypatch, config, 8) == pytest.approx([0.1, 0.1, 0.05, 0.05])


def test_a_short_cosine_run_with_warmup_learns():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((400, 2)).astype(np.float32)
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)  # XOR of signs
    config = TrainConfig(hidden=(32,), optimizer="nesterov", learning_rate=0.2, batch_size=20, epochs=40,
                         lr_schedule="cosine", warmup=3, seed=0)
    result = train(config, X, y, X, y)
    assert result.outcome == "completed" and math.isfinite(result.history[-1].val_loss)
    assert result.history[-1].val_accuracy > 0.9
