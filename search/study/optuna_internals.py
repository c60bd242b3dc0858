"""Every private Optuna name this project uses, in one place, checked against the versions tested.

Optuna's public API costs a storage round trip per row and a Python call per
element in TPE; the project goes below it in four places, each measured (see the
callers' docstrings):

- ``optuna.storages._rdb.models`` and ``_create_scoped_session``: bulk writes of a
  whole trial in one transaction (``search/study/storage.py``) and the lease's row in the
  study's system attributes (``search/coordinator/lease.py``);
- ``FrozenTrial._trial_id``: a stored trial's row id, so the coordinator can write
  it without a lookup (``search/coordinator/coordinator.py``);
- ``optuna.samplers._tpe._truncnorm._log_ndtr``: replaced by SciPy's vectorised
  ``log_ndtr`` (``search/study/stored.py``).

Optuna may move any of them in a minor release. ``pyproject.toml`` bounds Optuna to
the versions in ``TESTED``, a warning is logged when another one is installed, and
``tests/search/test_optuna_internals.py`` fails, naming the missing name, as soon as
one has moved.
"""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

import optuna
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial

logger = logging.getLogger(__name__)

TESTED = ("5.0",)  # major.minor of the Optuna releases these names were checked against


def check_version() -> bool:
    """True when the installed Optuna is one the private names were tested with (else a warning)."""
    major_minor = ".".join(optuna.__version__.split(".")[:2])
    if major_minor not in TESTED:
        logger.warning(
            "optuna %s is not one of the tested versions (%s): search/study/optuna_internals.py uses private names",
            optuna.__version__,
            ", ".join(TESTED),
        )
        return False
    return True


def rdb_models() -> ModuleType:
    """``optuna.storages._rdb.models``: the SQLAlchemy models of Optuna's tables."""
    from optuna.storages._rdb import models

    return models


def scoped_session(storage: RDBStorage) -> Any:
    """A context manager: one SQLAlchemy session and transaction on ``storage``, committed on exit."""
    from optuna.storages._rdb.storage import _create_scoped_session

    return _create_scoped_session(storage.scoped_session)


def trial_id(trial: FrozenTrial) -> int:
    """The storage's row id of a trial read from it (``FrozenTrial._trial_id``)."""
    return trial._trial_id


def patch_tpe_log_ndtr() -> bool:
    """Give Optuna's TPE SciPy's log of the normal CDF; True when the patch is in place.

    Optuna 5 computes it with a Python function per element (``np.frompyfunc``):
    measured here, 2 million calls and 5 s of the coordinator's CPU in a
    200-trial digits study, time taken from the workers on a 2-core machine.
    ``scipy.special.log_ndtr`` is the vectorised reference for the same function,
    and more accurate (relative error 2e-13 against Optuna's 6e-8 on [-60, 60]):
    sampled floats move in their 15th digit, no choice changes (both checked in
    tests/search/test_sampler.py); TPE's ask drops from 17 to 9 ms at 200 trials.
    SciPy comes with scikit-learn; without it nothing changes.
    """
    try:
        from optuna.samplers._tpe import _truncnorm
        from scipy.special import log_ndtr
    except ImportError:
        return False
    if callable(getattr(_truncnorm, "_log_ndtr", None)):
        _truncnorm._log_ndtr = log_ndtr
        return True
    return False
