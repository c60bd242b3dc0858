"""The search space offers the model's schedules, optimizers, warm-up and augmentation, from one list each."""

from __future__ import annotations

import optuna
import pytest

from model.optim import OPTIMIZERS, SCHEDULES
from search.errors import SearchError
from search.study.space import Choice, Fixed, Int, parse_space, suggest

BASE = {"learning_rate": 0.05, "batch_size": 128, "l2_on": False, "dropout": 0.3, "activation": "relu",
        "n_layers": 1, "units_l0": 64, "momentum": 0.9}


def test_every_model_schedule_and_optimizer_is_a_valid_choice():
    space = parse_space({"lr_schedule": list(SCHEDULES), "optimizer": list(OPTIMIZERS)})
    assert space["lr_schedule"] == Choice(SCHEDULES) and space["optimizer"] == Choice(tuple(OPTIMIZERS))


def test_warmup_and_augmentation_reach_the_train_config():
    space = parse_space({"lr_schedule": "cosine", "warmup": {"low": 0, "high": 3}, "augment_shift": [0, 1, 2],
                         "augment_flip": [True, False]})
    assert space["warmup"] == Int(0, 3) and space["lr_schedule"] == Fixed("cosine")
    trial = optuna.trial.FixedTrial({**BASE, "warmup": 2, "augment_shift": 1, "augment_flip": True})
    config = suggest(trial, space, epochs=10, seed=0)
    assert (config.lr_schedule, config.warmup, config.augment_shift, config.augment_flip) == ("cosine", 2, 1, True)


@pytest.mark.parametrize("raw, shown", [
    ({"augment_flip": 1}, "augment_flip must be one of false, true, got 1"),
    ({"lr_schedule": "linear"}, "lr_schedule must be one of none, step, exponential, cosine, got 'linear'"),
    ({"augment_shift": 9}, "augment_shift must be in [0, 8], got 9"),
    ({"warmup": 1.5}, "warmup must be a whole number, got 1.5"),
])
def test_bad_values_are_refused_naming_them(raw, shown):
    with pytest.raises(SearchError, match=shown.replace("[", r"\[").replace("(", r"\(")):
        parse_space(raw)


def test_the_embeddings_sigma_is_drawn_only_for_a_trial_that_has_them():
    space = parse_space({"plr": [0, 8], "plr_sigma": {"low": 0.01, "high": 1.0, "log": True}})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    drawn = []
    for _ in range(12):
        trial = study.ask()
        config = suggest(trial, space, epochs=10, seed=0)
        drawn.append((config.plr, "plr_sigma" in trial.params))
        study.tell(trial, 1.0)
    assert {(0, False), (8, True)} == set(drawn)  # no sigma recorded for a trial it changes nothing in
    config = suggest(optuna.trial.FixedTrial({**BASE, "plr": 8, "plr_sigma": 0.3}), space, epochs=10, seed=0)
    assert (config.plr, config.plr_sigma) == (8, 0.3)
