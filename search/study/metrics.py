"""The measures a study reports and chooses by: one table, each computed with ``sklearn.metrics``.

Why a module of its own: the question a study answers (which class, or how much)
and the user's measure of a good answer are part of the study (``StudySpec.task``,
``.metric``), and every process asks the same table: the workers score a trial's
validation rows at its selected epoch, the final networks score the test split,
and the finalists, the winner, the leaderboard and ``best`` rank by it. A measure
added here is one row.

A metric takes the true targets and the network's outputs: class probabilities
(n, n_classes) for classification, numbers (n,) in the target's units for
regression. ``sklearn.metrics`` is imported when a score is computed, never on
import: the study contract and the readers stay light (tests/test_layers.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

__all__ = [
    "BALANCED_BY_DEFAULT",
    "CLASSIFICATION",
    "DEFAULT_METRIC",
    "METRICS",
    "REGRESSION",
    "REGRESSION_SCORES",
    "TASKS",
    "Metric",
    "for_task",
    "question",
    "rank_key",
    "reported",
    "score",
    "shown",
]

CLASSIFICATION: Final = "classification"
REGRESSION: Final = "regression"
TASKS: Final = (CLASSIFICATION, REGRESSION)


def _sk() -> Any:
    import sklearn.metrics  # ~1 s and scipy.optimize: only where a score is computed

    return sklearn.metrics


def _labels(proba: np.ndarray) -> np.ndarray:
    return np.asarray(proba).argmax(axis=1)


def _accuracy(y: np.ndarray, proba: np.ndarray) -> float:
    # sklearn.metrics.accuracy_score's arithmetic, without its import: a default study never loads it
    return float(np.mean(_labels(proba) == np.asarray(y)))


def _balanced_accuracy(y: np.ndarray, proba: np.ndarray) -> float:
    return float(_sk().balanced_accuracy_score(y, _labels(proba)))


def _f1_macro(y: np.ndarray, proba: np.ndarray) -> float:
    # every class counts, also one this split's rows never predict (0 for it, as scikit-learn warns)
    return float(_sk().f1_score(y, _labels(proba), average="macro", labels=np.arange(proba.shape[1]), zero_division=0))


def _roc_auc(y: np.ndarray, proba: np.ndarray) -> float:
    """Binary: the positive class's probability; more classes: one-vs-rest, macro. NaN if a class is absent."""
    present = np.unique(y)
    if len(present) < 2:
        return math.nan
    if proba.shape[1] == 2:
        return float(_sk().roc_auc_score(y, proba[:, 1]))
    if len(present) < proba.shape[1]:  # one-vs-rest needs every class among the true labels
        return math.nan
    p = proba / proba.sum(axis=1, keepdims=True)  # float32 rows may miss 1 by an ulp; scikit-learn checks
    return float(_sk().roc_auc_score(y, p, multi_class="ovr", labels=np.arange(proba.shape[1])))


def _log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    p = np.asarray(proba, dtype=np.float64)
    return float(_sk().log_loss(y, p / p.sum(axis=1, keepdims=True), labels=np.arange(proba.shape[1])))


def _rmse(y: np.ndarray, predicted: np.ndarray) -> float:
    return float(_sk().root_mean_squared_error(y, predicted))


def _mae(y: np.ndarray, predicted: np.ndarray) -> float:
    return float(_sk().mean_absolute_error(y, predicted))


def _r2(y: np.ndarray, predicted: np.ndarray) -> float:
    return float(_sk().r2_score(y, predicted))


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    task: str  # CLASSIFICATION or REGRESSION
    greater_is_better: bool
    needs_proba: bool  # reads class probabilities, not only the most probable class
    compute: Callable[[np.ndarray, np.ndarray], float]  # (y_true, outputs) -> score
    text: str  # for people


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", CLASSIFICATION, True, False, _accuracy, "accuracy"),
        Metric("balanced_accuracy", CLASSIFICATION, True, False, _balanced_accuracy,
               "balanced accuracy (the mean of the recalls of the classes)"),
        Metric("f1_macro", CLASSIFICATION, True, False, _f1_macro, "F1, the unweighted mean over the classes"),
        Metric("roc_auc", CLASSIFICATION, True, True, _roc_auc,
               "area under the ROC curve (binary; one-vs-rest, macro, for more classes)"),
        Metric("log_loss", CLASSIFICATION, False, True, _log_loss, "log loss (cross-entropy of the probabilities)"),
        Metric("rmse", REGRESSION, False, False, _rmse, "root mean squared error, in the target's units"),
        Metric("mae", REGRESSION, False, False, _mae, "mean absolute error, in the target's units"),
        Metric("r2", REGRESSION, True, False, _r2, "R², the share of the target's variance explained"),
    )
}  # fmt: skip
# What a study reports when the user names no metric (it is then chosen by its objective, validation loss).
DEFAULT_METRIC: dict[str, str] = {CLASSIFICATION: "accuracy", REGRESSION: "rmse"}
# Measures that weigh every class alike: their studies weight the classes alike too, unless told "none".
BALANCED_BY_DEFAULT: Final = ("balanced_accuracy", "f1_macro", "roc_auc")
# What a regression trial and its final networks report, whatever the metric.
REGRESSION_SCORES: Final = ("rmse", "mae", "r2")


def for_task(task: str) -> tuple[str, ...]:
    """The metrics of ``task``, in the table's order."""
    return tuple(name for name, m in METRICS.items() if m.task == task)


def score(name: str, y_true: np.ndarray, outputs: np.ndarray) -> float:
    """Metric ``name`` of ``outputs`` (probabilities (n, k), or numbers (n,)) against ``y_true`` (n,)."""
    return METRICS[name].compute(np.asarray(y_true), np.asarray(outputs))


def reported(task: str, metric: str | None) -> tuple[str, ...]:
    """What a trial of a study of ``task`` scores on validation: its metric (or the task's default); a regression
    trial RMSE, MAE and R² whatever its metric. Accuracy is always kept besides (``val_accuracy``), without a score."""
    names = REGRESSION_SCORES if task == REGRESSION else (metric or DEFAULT_METRIC[task],)
    return tuple(n for n in names if n != "accuracy")


def shown(task: str, metric: str | None) -> tuple[str, ...]:
    """The metrics a study's tables show, first the one it is judged by: its metric, or the task's default."""
    first = metric or DEFAULT_METRIC[task]
    rest = REGRESSION_SCORES if task == REGRESSION else ("accuracy",)
    return (first, *(n for n in rest if n != first))


def question(spec: Mapping[str, Any]) -> tuple[str, str | None]:
    """(task, metric) of a stored spec's JSON; one stored before they existed asks for classes, without a metric."""
    return str(spec.get("task") or CLASSIFICATION), spec.get("metric")


def rank_key(name: str, value: float | None) -> float:
    """``value`` of metric ``name`` as a number to minimise: best first, a missing or NaN one last."""
    if value is None or not math.isfinite(value):
        return math.inf
    return -value if METRICS[name].greater_is_better else value
