"""The study's sampler by name: one table, read by ``StudySpec`` (valid names) and ``study.make_sampler``.

Why a module apart from ``search/study/stored.py``: ``search/study/spec.py`` validates the
sampler name against this table, and ``search/study/stored.py`` imports the spec, so
the table lives below both. There is one sampler per study, in the coordinator,
seeded from the study seed.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import optuna

from search.errors import SearchError
from search.study import optuna_internals


def _tpe(seed: int) -> optuna.samplers.BaseSampler:
    optuna_internals.patch_tpe_log_ndtr()  # SciPy's log_ndtr for TPE (see that module)
    # multivariate TPE models the joint space (learning rate and batch size interact);
    # group=True handles the conditional widths of a variable depth.
    with warnings.catch_warnings():  # multivariate/group are "experimental" since 2020
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, n_startup_trials=10)


def _random(seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)


def _gp(seed: int) -> optuna.samplers.BaseSampler:
    try:
        import torch  # noqa: F401  (GPSampler needs it)
    except ImportError:
        raise SearchError("the gp sampler needs PyTorch: pip install '.[bench]' (or torch)") from None
    return optuna.samplers.GPSampler(seed=seed)


# sampler name (``StudySpec.sampler``, ``--sampler``) -> factory taking the study seed
SAMPLERS: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {
    "tpe": _tpe,
    "random": _random,
    "gp": _gp,
}
