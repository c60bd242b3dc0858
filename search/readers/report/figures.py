"""The report's own figures: worker timeline, trade-offs with their Pareto fronts, importances.

The heatmaps, curves and history come from ``search.plots`` unchanged; this
module adds only what ``plot`` does not draw. Figures are ``Figure`` objects
(never pyplot state) turned into PNG bytes, so the report can inline them.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from search.readers.plots import DPI
from search.study.metrics import METRICS

OUTCOME_COLOURS = {"complete": "tab:blue", "pruned": "0.6", "diverged": "tab:orange", "fail": "black"}


def png(fig: Figure, dpi: int = DPI) -> bytes:
    """PNG bytes of ``fig``, drawn on an Agg canvas.

    A bare ``Figure`` has no renderer of its own: constrained layout then asks
    matplotlib for a throwaway one per text measurement (190 fake PNG prints in
    a 200-trial report, half its time). An Agg canvas keeps one renderer.
    """
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def timeline_figure(spans: pd.DataFrame, study: str) -> Figure | None:
    """One row per worker, one bar per trial it trained; blank stretches are idle time."""
    import seaborn as sns  # on drawing: importing a reader loads no scipy.optimize

    if spans.empty:
        return None
    workers = sorted(spans["worker"].unique(), key=lambda w: spans.loc[spans["worker"] == w, "start"].min())
    fig = Figure(figsize=(10, max(2.5, 0.35 * len(workers) + 1.5)), layout="constrained")
    with sns.axes_style("whitegrid"):
        ax = fig.subplots()
    for row, worker in enumerate(workers):
        mine = spans[spans["worker"] == worker]
        colours = [OUTCOME_COLOURS.get(o, "tab:purple") for o in mine["outcome"]]
        ax.broken_barh(list(zip(mine["start"], mine["end"] - mine["start"])), (row - 0.4, 0.8),
                       facecolors=colours, edgecolor="white", linewidth=0.3)
    ax.set_yticks(range(len(workers)), workers, fontsize=7 if len(workers) > 12 else 9)
    ax.set_ylim(-0.6, len(workers) - 0.4)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the first trial started")
    ax.set_ylabel("worker (host:pid)")
    present = [o for o in OUTCOME_COLOURS if o in set(spans["outcome"])]
    ax.legend(handles=[Line2D([], [], color=OUTCOME_COLOURS[o], linewidth=6, label=o) for o in present],
              loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.set_title(f"{study}: trials per worker over time ({len(spans)} trials)")
    return fig


def pareto_front(cost: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """Indices of points no other point beats (cost <=, gain >=, one strictly), by cost."""
    order = np.lexsort((-gain, cost))
    front, best = [], -np.inf
    for i in order:
        if gain[i] > best:
            front.append(i)
            best = gain[i]
    return np.array(front, dtype=int)


def tradeoff_figure(points: pd.DataFrame, study: str, measure: str = "accuracy") -> Figure | None:
    """The validation ``measure`` against parameter count and against training seconds, fronts marked.

    ``points``: number, params, seconds, score (COMPLETE search trials; ``tables.tradeoff_points``).
    """
    import seaborn as sns  # on drawing: importing a reader loads no scipy.optimize

    points = points.dropna(subset=["score"])
    if points.empty:
        return None
    higher = METRICS[measure].greater_is_better
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    with sns.axes_style("whitegrid"):
        axes = fig.subplots(1, 2, sharey=True)
    for ax, cost, label in ((axes[0], "params", "parameters (weights + biases)"),
                            (axes[1], "seconds", "training seconds")):
        shown = points.dropna(subset=[cost])
        x, y = shown[cost].to_numpy(dtype=float), shown["score"].to_numpy(dtype=float)
        ax.scatter(x, y, s=14, color="tab:blue", alpha=0.5, label=f"complete trials ({len(shown)})")
        if len(shown):
            front = pareto_front(x, y if higher else -y)
            ax.step(x[front], y[front], where="post", color="crimson", linewidth=1.5)
            ax.scatter(x[front], y[front], s=36, color="crimson", zorder=3,
                       label=f"Pareto front ({len(front)})")
            for i in front[-1:]:  # name the best point of the front
                ax.annotate(f"#{int(shown['number'].iloc[i])}", (x[i], y[i]), fontsize=7,
                            xytext=(3, -9), textcoords="offset points")
            if x.min() > 0 and x.max() / x.min() > 20:
                ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.legend(loc="lower right" if higher else "upper right", fontsize=8)
    scores = points["score"]
    if higher and scores.between(0, 1).all():  # a share: the worst 5% left out of view, the axis within [0, 1]
        low = scores.quantile(0.05)
        axes[0].set_ylim(max(0.0, low - 0.02), min(1.005, scores.max() + 0.015))
    elif not higher:  # an error: the worst 5% left out of view
        spread = max(scores.quantile(0.95) - scores.min(), 1e-9 * max(1.0, abs(scores.min())))
        axes[0].set_ylim(scores.min() - 0.1 * spread, scores.quantile(0.95) + 0.1 * spread)
    axes[0].set_ylabel(f"validation {measure}")
    better = "up and left" if higher else "down and left"
    fig.suptitle(f"{study}: {measure} against size and cost ({better} is better)", fontsize=11)
    return fig


def importance_figure(importances: dict[str, float], evaluator: str, study: str) -> Figure | None:
    import seaborn as sns  # on drawing: importing a reader loads no scipy.optimize

    if not importances:
        return None
    names = list(importances)[::-1]
    fig = Figure(figsize=(7, 0.35 * len(names) + 1.4), layout="constrained")
    with sns.axes_style("whitegrid"):
        ax = fig.subplots()
    ax.barh(names, [importances[n] for n in names], color="tab:blue")
    ax.set_xlabel(f"importance ({evaluator}; sums to 1)")
    ax.set_title(f"{study}: which settings mattered for the validation loss", fontsize=10)
    return fig


def regression_figure(points: dict[str, list[float]], study: str, target: str = "target") -> Figure | None:
    """The final networks on the test rows of a regression study: predicted against true, and the residuals.

    ``points``: ``{"true": [...], "predicted": [...]}`` in the target's units (``best --retrain``'s sample).
    """
    import seaborn as sns  # on drawing: importing a reader loads no scipy.optimize

    true = np.asarray(points.get("true", []), dtype=float)
    predicted = np.asarray(points.get("predicted", []), dtype=float)
    if not len(true):
        return None
    residual = predicted - true
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    with sns.axes_style("whitegrid"):
        axes = fig.subplots(1, 2)
    low, high = float(min(true.min(), predicted.min())), float(max(true.max(), predicted.max()))
    axes[0].scatter(true, predicted, s=10, alpha=0.5, color="tab:blue")
    axes[0].plot([low, high], [low, high], color="crimson", linewidth=1, label="predicted = true")
    axes[0].set_xlabel(f"true {target}")
    axes[0].set_ylabel(f"predicted {target}")
    axes[0].legend(loc="upper left", fontsize=8)
    axes[1].scatter(predicted, residual, s=10, alpha=0.5, color="tab:blue")
    axes[1].axhline(0.0, color="crimson", linewidth=1)
    axes[1].set_xlabel(f"predicted {target}")
    axes[1].set_ylabel("residual (predicted - true)")
    fig.suptitle(f"{study}: the final networks on {len(true)} test rows", fontsize=11)
    return fig
