"""The sampler speed-up patches a private Optuna function: prove it changes nothing but speed."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from tests.conftest import ROOT, cli_env

SAMPLES = """
import json, sys, optuna
from optuna.samplers._tpe import _truncnorm
from search.study.space import DEFAULT_SPACE, suggest
from search.study.spec import StudySpec
from search.study.stored import make_sampler

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
    import mpmath  # in the test extra
    mpmath.mp.dps = 50
    # log Phi(x), with 1 - Phi(x) taken from the far tail for x > 0 (no cancellation)
    exact = np.array([float(mpmath.log(mpmath.ncdf(v)) if v <= 0 else mpmath.log1p(-mpmath.ncdf(-v)))
                      for v in map(mpmath.mpf, x)])
    nonzero = np.abs(exact) > 1e-300  # log Phi(x) underflows to 0 (through subnormals) for x > 37
    assert np.all(np.abs(scipys[~nonzero]) <= 1e-300) and np.all(np.abs(optunas[~nonzero]) <= 1e-300)

    def error(values: np.ndarray) -> float:
        return float(np.max(np.abs(values[nonzero] - exact[nonzero]) / np.abs(exact[nonzero])))

    assert error(scipys) <= max(error(optunas), 1e-15)


CALLS = """
import json, optuna
from optuna.samplers._tpe import _truncnorm
from scipy.special import log_ndtr
from search.study.spec import StudySpec
from search.study.stored import make_sampler

before = _truncnorm._log_ndtr
sampler = make_sampler(StudySpec(name="s", seed=3))
patched = _truncnorm._log_ndtr
calls = []

def counting(*args, **kwargs):
    calls.append(1)
    return patched(*args, **kwargs)

_truncnorm._log_ndtr = counting  # the attribute TPE looks up at each call
optuna.logging.set_verbosity(optuna.logging.ERROR)
study = optuna.create_study(sampler=sampler)
for i in range(14):  # past TPE's 10 start-up trials
    trial = study.ask()
    study.tell(trial, (trial.suggest_float("x", 1e-4, 1.0, log=True) - 0.01) ** 2)
print(json.dumps({"was_scipy_before": before is log_ndtr, "is_scipy": patched is log_ndtr,
                  "calls": len(calls)}))
"""


def test_tpe_calls_scipys_log_ndtr_once_the_sampler_is_made() -> None:
    """In a fresh process: the patch is applied by make_sampler, and TPE goes through it."""
    out = subprocess.run([sys.executable, "-c", CALLS], capture_output=True, text=True, env=cli_env(),
                         cwd=ROOT, timeout=240, check=True)
    seen = json.loads(out.stdout)
    assert not seen["was_scipy_before"]  # Optuna's own until make_sampler patches it
    assert seen["is_scipy"], "make_sampler did not give TPE scipy.special.log_ndtr"
    assert seen["calls"] > 0, "TPE no longer calls _truncnorm._log_ndtr: the patch speeds up nothing"


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
