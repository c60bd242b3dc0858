"""Parallel Optuna hyperparameter search for the NumPy networks of ``model``.

From Python: ``search.run(...)`` is ``python -m search run``, ``search.load(study)``
opens a stored study, ``search.SearchCV`` (``SearchCVRegressor`` for numbers) is the
service as a scikit-learn estimator. These and ``load_results`` and friends import pandas, which worker
processes never need, so they are loaded on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "run",
    "load",
    "Study",
    "SearchCV",
    "SearchCVRegressor",
    "load_results",
    "load_curves",
    "load_finalists",
    "load_final_networks",
    "make_plots",
    "SearchError",
    "StudySpec",
]


def __getattr__(name: str) -> Any:
    if name in ("run", "load", "Study"):
        from search import api

        return getattr(api, name)
    if name in ("SearchCV", "SearchCVRegressor"):
        from search import sklearn

        return getattr(sklearn, name)
    if name in ("load_results", "load_curves", "load_finalists"):
        from search.readers import results

        return getattr(results, name)
    if name == "load_final_networks":
        from search.readers.ensemble import load_final_networks

        return load_final_networks
    if name == "make_plots":
        from search.readers.plots import make_plots

        return make_plots
    if name == "SearchError":
        from search.errors import SearchError

        return SearchError
    if name == "StudySpec":
        from search.study.spec import StudySpec

        return StudySpec
    raise AttributeError(f"module 'search' has no attribute {name!r}")
