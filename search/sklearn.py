"""``SearchCV`` and ``SearchCVRegressor``: the service as scikit-learn meta-estimators, for ``Pipeline`` and
``cross_val_score``.

Not a second search loop: ``fit`` is ``search.run`` on ``(X, y)`` (real
workers, storage, pruning, finalists), then the winner retrained on all of
``X`` as ``refit=True`` does in ``GridSearchCV``; with a ``budget``, as many
networks as the share the service gives its final networks trains, averaged. Without ``storage`` the study
lives in a temporary directory that ``fit`` removes; ``study_`` is then an
in-memory copy of it.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.ensemble import VotingClassifier, VotingRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from model import MLPClassifier, MLPRegressor
from model.datasets.prepare import TEST_FRACTION
from search.api import Best, Study, optuna_quiet, run_study
from search.budget.ensemble import winner_ensemble_size
from search.budget.shares import REFIT_OVERHEAD
from search.inputs import data_settings
from search.study.finalists import is_finalist_run, trial_score
from search.study.metrics import CLASSIFICATION, REGRESSION, rank_key
from search.study.space import config_from_params
from search.study.spec import StudySpec
from search.study.storage import open_storage
from search.study.stored import load_spec
from search.study.weights import sample_weights
from search.study.winner import Winner, final_epochs, final_seed, winner_of
from search.workers import worker_count

__all__ = ["SearchCV", "SearchCVRegressor"]

# Every parameter of SearchCV is a keyword of ``search.run`` of the same name, except these:
# scikit-learn's names for three of them, and refit, SearchCV's own (tests/search/test_searchcv.py
# holds the parameters to this).
RENAMED = {"n_trials": "trials", "n_jobs": "jobs", "study_name": "study"}
OWN = ("refit",)


class _Search(BaseEstimator):
    """What both estimators share: the search (``search.run`` on ``(X, y)``) and reading its winner.

    ``space``: a mapping in a preset's ``[space]`` form (docs/space.md), laid over
    the default space; ``n_trials``/``budget``/``epochs``/``cv``/``finalists``/
    ``seed``/``metric``/``class_weight``: the ``run`` settings of those names (``budget``:
    ``"2m"`` or seconds; ``metric``: what chooses the winner and ``best_score_`` holds);
    ``n_jobs``: worker processes. ``storage``/``study_name``: keep the study (it can
    then be opened with ``search.load``).
    """

    _task: str  # the run's --task

    def __init__(
        self,
        space: Mapping[str, Any] | None = None,
        n_trials: int | None = None,
        budget: str | float | None = None,
        cv: int | None = None,
        n_jobs: int | None = None,
        storage: str | None = None,
        study_name: str | None = None,
        epochs: int | None = None,
        finalists: int | None = None,
        seed: int | None = None,
        metric: str | None = None,
        class_weight: str | None = None,
        refit: bool = True,
        progress: bool = False,
    ) -> None:
        self.space = space
        self.n_trials = n_trials
        self.budget = budget
        self.cv = cv
        self.n_jobs = n_jobs
        self.storage = storage
        self.study_name = study_name
        self.epochs = epochs
        self.finalists = finalists
        self.seed = seed
        self.metric = metric
        self.class_weight = class_weight
        self.refit = refit
        self.progress = progress

    def _search(self, X: np.ndarray, y: np.ndarray) -> None:
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="searchcv-") as tmp:
            url = self.storage or f"sqlite:///{Path(tmp) / 'study.db'}"
            # the study holds out its own test split (20%, never seen by the search, scored by
            # `best --retrain` if asked); best_estimator_ is then retrained on all of X
            path = data_settings((X, y), None, Path(tmp) if self.storage is None else None)["data"]
            params = self.get_params(deep=False)
            settings = {RENAMED.get(k, k): v for k, v in params.items() if k not in OWN and v is not None}
            settings["storage"] = url
            settings["task"] = self._task
            if self.space is not None:
                settings["space"] = dict(self.space)
            # a budget's last share is the refit below, not the service's final networks
            study = run_study(path, None, settings, train_ensemble=False)
            self._read(study, X, y, started)

    def _read(self, study: Study, X: np.ndarray, y: np.ndarray, started: float) -> None:
        spec, trials, self.study_ = _read_back(study, keep=self.storage is not None)
        winner = winner_of(trials, study.name, spec.metric)
        config = config_from_params(winner.trial.params, spec.space, final_epochs(spec, winner), spec.seed)
        self.best_params_ = {k: v for k, v in dataclasses.asdict(config).items() if k != "seed"}
        self.best_score_ = Best.of(winner, spec.metric_name).score
        self.cv_results_ = _cv_results(trials, spec.metric_name)
        numbers = list(self.cv_results_["trial"])
        self.best_index_ = numbers.index(winner.trial.number)
        self.n_features_in_ = X.shape[1]
        if self.refit:
            self.best_estimator_ = self._refit(spec, winner, X, y, started)

    def _refit(self, spec: StudySpec, winner: Winner, X: np.ndarray, y: np.ndarray, started: float) -> Pipeline:
        """The study's preprocessing of feature rows, then the winner trained on all of ``X``.

        With a budget, as many networks as its last share trains, averaged (soft voting, or
        the mean of the predictions) as the service's final networks are (``budget.ensemble``);
        else one. Balanced class weights weigh the rows as the study's networks were weighed.
        """
        networks, epochs = 1, self.best_params_["epochs"]
        jobs = worker_count(self.n_jobs)
        if spec.budget is not None:  # all of X: train + validation were 1 - TEST_FRACTION of it
            left = spec.budget - (time.monotonic() - started)
            rows = 1 / (1 - TEST_FRACTION)
            # in this process one after another, or on fresh workers: whichever trains more networks
            # (then more epochs); small data fits more where no worker has to start
            serial = winner_ensemble_size(spec, winner, left, 1, rows=rows, overhead=REFIT_OVERHEAD)
            parallel = winner_ensemble_size(spec, winner, left, jobs, rows=rows)
            (networks, epochs), jobs = max(((serial, 1), (parallel, jobs)), key=lambda size: size[0])
        params = self.best_params_ | {"epochs": epochs}
        model = self._ensemble(
            [self._network(params, spec.seed if networks == 1 else final_seed(spec.seed, k)) for k in range(networks)],
            min(networks, jobs),
        )
        weights, _ = sample_weights(spec.class_weight, y)
        fit = {} if weights is None else {"mlp__sample_weight": weights}
        pipeline = Pipeline([("scale", StandardScaler()), ("mlp", model)])
        if spec.budget is None:
            return pipeline.fit(X, y, **fit)
        # one BLAS thread a network, as the workers' runs it was sized from trained: this process's
        # default (a thread a core) trained wine's networks 30-50 times slower on a loaded machine
        # (2026-12-07: 1.8 s against 0.04 s, (104, 777) units of 19 epochs), and a 30 s fit took 48 s
        with threadpool_limits(1):
            return pipeline.fit(X, y, **fit)

    def _network(self, params: dict[str, Any], seed: int) -> BaseEstimator:
        raise NotImplementedError

    def _ensemble(self, members: list[BaseEstimator], jobs: int) -> BaseEstimator:
        raise NotImplementedError

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict(X)


class SearchCV(ClassifierMixin, _Search):
    """Search the NumPy network's hyperparameters on ``(X, y)``; predict with the winner, retrained on all of ``X``.

    A classifier (``score`` is accuracy); ``SearchCVRegressor`` is the same search for
    numbers. The parameters are ``_Search``'s.
    """

    _task = CLASSIFICATION

    def fit(self, X: Any, y: Any) -> SearchCV:
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self._search(X, y)
        return self

    def _network(self, params: dict[str, Any], seed: int) -> BaseEstimator:
        return MLPClassifier(**params, seed=seed)

    def _ensemble(self, members: list[BaseEstimator], jobs: int) -> BaseEstimator:
        if len(members) == 1:
            return members[0]
        return VotingClassifier([(f"seed{k}", m) for k, m in enumerate(members)], voting="soft", n_jobs=jobs)

    @property
    def classes_(self) -> np.ndarray:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.classes_

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict_proba(X)


class SearchCVRegressor(RegressorMixin, _Search):
    """``SearchCV`` for a numeric target: a regression study (``metric`` rmse, mae or r2; ``score`` is R²).

    ``best_score_`` is the winner's validation score of the study's metric, in the
    target's units for RMSE and MAE (lower is better there, unlike scikit-learn's
    negated scorers).
    """

    _task = REGRESSION

    def fit(self, X: Any, y: Any) -> SearchCVRegressor:
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        self._search(X, y)
        return self

    def _network(self, params: dict[str, Any], seed: int) -> BaseEstimator:
        return MLPRegressor(**params, seed=seed)

    def _ensemble(self, members: list[BaseEstimator], jobs: int) -> BaseEstimator:
        if len(members) == 1:
            return members[0]
        return VotingRegressor([(f"seed{k}", m) for k, m in enumerate(members)], n_jobs=jobs)


def _read_back(study: Study, keep: bool) -> tuple[StudySpec, list[FrozenTrial], optuna.Study]:
    """(the study's spec, its trials, ``study_``): its storage read once, as a budget's last stage reserved
    (``shares.STUDY_READ``). ``keep``: the storage stays (``storage`` was given); else ``study_`` is
    ``optuna.copy_study``'s copy in memory, and the spec and trials are read from that copy."""
    storage = open_storage(study.storage, read_only=True)
    try:
        if keep:
            spec, study_id = load_spec(storage, study.name)
            trials = storage.get_all_trials(study_id, deepcopy=False)
            return spec, trials, optuna.load_study(study_name=study.name, storage=study.storage)
        memory = optuna.storages.InMemoryStorage()
        with optuna_quiet():
            optuna.copy_study(from_study_name=study.name, from_storage=storage, to_storage=memory)
            copy = optuna.load_study(study_name=study.name, storage=memory)
        spec, copy_id = load_spec(memory, study.name)
        return spec, memory.get_all_trials(copy_id, deepcopy=False), copy
    finally:
        storage.engine.dispose()


def _cv_results(trials: list[FrozenTrial], metric: str = "accuracy") -> dict[str, Any]:
    """scikit-learn's dict of arrays, one entry per finished search trial: ``pd.DataFrame(cv_results_)`` reads it.

    ``mean_test_score`` is the trial's validation score of ``metric`` (the mean over its
    folds with ``cv``), ranked best first by the metric's direction; the finalists' fresh
    runs are in ``search.load(...).finalists()``.
    """
    done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and not is_finalist_run(t)]
    scores = np.array([np.nan if (v := trial_score(t, metric)) is None else v for t in done], dtype=float)
    order = np.argsort([rank_key(metric, v) for v in scores], kind="stable")
    ranks = np.empty(len(done), dtype=np.int32)
    ranks[order] = np.arange(1, len(done) + 1)
    results: dict[str, Any] = {
        "trial": np.array([t.number for t in done]),
        "state": np.array([t.state.name for t in done]),
        "epochs_run": np.array([t.user_attrs.get("epochs", 0) for t in done]),
        "mean_fit_time": np.array([float(t.user_attrs.get("seconds", np.nan)) for t in done]),
        "params": [dict(t.params) for t in done],
        "mean_test_score": scores,
        "rank_test_score": ranks,
    }
    for name in sorted({n for t in done for n in t.params}):
        values = np.ma.MaskedArray(np.empty(len(done), dtype=object), mask=True)
        for i, t in enumerate(done):
            if name in t.params:
                values[i] = t.params[name]
        results[f"param_{name}"] = values
    return results
