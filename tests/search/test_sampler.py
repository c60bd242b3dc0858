"""The sampler speed-up patches a private Optuna function: prove it changes nothing but speed."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT, cli_env

SAMPLES = """
import json, sys, optuna
from optuna.samplers._tpe import _truncnorm
from search.space import DEFAULT_SPACE, suggest
from search.spec import StudySpec
from search.study import make_sampler

if sys.argv[1] == "original":
    original = _truncnorm._log_ndtr
    sampler = make_sampler(StudySpec(name="s", seed=3))
    _truncnorm._log_ndtr = original  # undo the patch make_sampler applied
else:
    sampler = make_sampler(StudySpec(name="s", seed=3))
optuna.logging.set_verbosity(optuna.logging.ERROR)
study = optuna.create_study(sampler=sampler)
for _ in range(40):
    trial = study.ask()
    config = suggest(trial, DEFAULT_SPACE, 30, 0)
    # a smooth objective of the sampled values, so TPE has something to model
    study.tell(trial, abs(__import__("math").log10(config.learning_rate) + 2) + config.dropout)
print(json.dumps([t.params for t in study.trials]))
"""


def test_the_vectorised_log_ndtr_agrees_with_optunas_and_is_at_least_as_accurate() -> None:
    from optuna.samplers._tpe import _truncnorm
    from scipy.special import log_ndtr

    assert callable(getattr(_truncnorm, "_log_ndtr_single", None)), "Optuna renamed the function we patch"
    x = np.concatenate([np.linspace(-60, 60, 2001), [-1e3, -38.5, 0.0, 5.0, 1e3]])
    optunas = np.array([_truncnorm._log_ndtr_single(v) for v in x])
    scipys = log_ndtr(x)
    np.testing.assert_allclose(scipys, optunas, rtol=1e-7, atol=1e-300)
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    # log Phi(x), with 1 - Phi(x) taken from the far tail for x > 0 (no cancellation)
    exact = np.array([float(mpmath.log(mpmath.ncdf(v)) if v <= 0 else mpmath.log1p(-mpmath.ncdf(-v)))
                      for v in map(mpmath.mpf, x)])
    nonzero = np.abs(exact) > 1e-300  # log Phi(x) underflows to 0 (through subnormals) for x > 37
    assert np.all(np.abs(scipys[~nonzero]) <= 1e-300) and np.all(np.abs(optunas[~nonzero]) <= 1e-300)

    def error(values: np.ndarray) -> float:
        return float(np.max(np.abs(values[nonzero] - exact[nonzero]) / np.abs(exact[nonzero])))

    assert error(scipys) <= max(error(optunas), 1e-15)


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[k] == b[k] if not isinstance(a[k], float) else abs(a[k] - b[k]) <= 1e-9 * abs(b[k]) for k in a)


def test_tpe_samples_the_same_trials_with_and_without_the_patch() -> None:
    """Equal to 1e-9: SciPy's last digits differ from Optuna's own (they are more accurate),
    which moves a float parameter in its 15th digit and never changes a choice."""
    def samples(mode: str) -> list[dict]:
        out = subprocess.run([sys.executable, "-c", SAMPLES, mode], capture_output=True, text=True,
                             env=cli_env(), cwd=ROOT, timeout=240, check=True)
        return json.loads(out.stdout)

    patched, original = samples("patched"), samples("original")
    assert len(patched) == len(original) == 40
    assert all(_same(a, b) for a, b in zip(patched, original))
