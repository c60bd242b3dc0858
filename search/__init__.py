"""Parallel Optuna hyperparameter search for the NumPy networks of ``model``.

``load_results`` and friends import pandas, which worker processes never need,
so they are loaded on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "load_results",
    "load_curves",
    "load_finalists",
    "load_final_networks",
    "make_plots",
    "SearchError",
    "StudySpec",
]


def __getattr__(name: str) -> Any:
    if name in ("load_results", "load_curves", "load_finalists"):
        from search import results

        return getattr(results, name)
    if name == "load_final_networks":
        from search.retrain import load_final_networks

        return load_final_networks
    if name == "make_plots":
        from search.plots import make_plots

        return make_plots
    if name == "SearchError":
        from search.errors import SearchError

        return SearchError
    if name == "StudySpec":
        from search.spec import StudySpec

        return StudySpec
    raise AttributeError(f"module 'search' has no attribute {name!r}")
