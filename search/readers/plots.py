"""Seaborn heatmaps and curves of a study -> PNG files beside its database.

Why these three views: heatmaps show *where* in the space the good networks
live (two parameters at a time, the best of the study's measure and the best/median loss per cell);
learning curves show *how* trials trained and which the pruner stopped; the
history shows whether the sampler was still improving when the run ended.
Figures are made as ``matplotlib.figure.Figure`` objects, never through pyplot's
global state, so plotting from a notebook or a server thread is safe.
"""

from __future__ import annotations

import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

if "matplotlib.pyplot" not in sys.modules:  # headless by default; never switch a live notebook
    matplotlib.use("Agg")

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.transforms import blended_transform_factory

from search.errors import SearchError
from search.readers.bins import Bins, bin_parameter, dim_for, plain_ticks, short_number
from search.readers.frames import curves_frame, never_started, trials_frame
from search.readers.results import FINISHED, open_study, study_question, study_space
from search.study import finalists as fin
from search.study.metrics import METRICS, shown
from search.study.storage import default_url, sqlite_path

logger = logging.getLogger(__name__)

# (x, y) parameter pairs; a pair is skipped when a parameter is missing or constant
HEATMAP_PAIRS = (
    ("learning_rate", "batch_size"),
    ("l2", "dropout"),
    ("activation", "n_layers"),
    ("learning_rate", "momentum"),
    ("units_l0", "n_layers"),
)
DPI = 120


def _cell_table(
    codes_x: np.ndarray, codes_y: np.ndarray, n_x: int, n_y: int, values: np.ndarray, how: str
) -> np.ndarray:
    """(n_y, n_x) table of ``how`` (min/max/median) of ``values`` per cell; NaN where empty."""
    frame = pd.DataFrame({"x": codes_x, "y": codes_y, "v": values})
    frame = frame[(frame["x"] >= 0) & (frame["y"] >= 0)]
    table = np.full((n_y, n_x), np.nan)
    for (cx, cy), v in frame.groupby(["x", "y"])["v"].agg(how).items():
        table[cy, cx] = v
    return table


@dataclass(frozen=True, slots=True)
class Panel:
    """One heatmap of a figure: a value per cell and how to draw it (bright = better in every panel)."""

    table: np.ndarray  # (n_y, n_x) value per cell; NaN where no trial fell
    fmt: str  # format spec of the value printed in a cell
    cmap: str
    label: str  # of the colour bar
    title: str
    log_norm: bool = False  # log colour scale when the values span more than 5x


def _heatmap(ax: Any, panel: Panel, *, x: Bins, y: Bins, counts: np.ndarray | None = None) -> None:
    """Draw ``panel`` on ``ax``; ``counts`` (n_y, n_x), if given, adds "n=<trials>" to each cell."""
    import seaborn as sns  # on drawing: importing a reader loads no scipy.optimize

    table, fmt = panel.table, panel.fmt
    finite = table[np.isfinite(table)]
    norm = None
    if panel.log_norm and finite.size and finite.min() > 0 and finite.max() / finite.min() > 5:
        norm = LogNorm(finite.min(), finite.max())
    shown = np.nan_to_num(table)
    text = (
        np.vectorize(lambda v, c: f"{v:{fmt}}\nn={c}")(shown, counts)
        if counts is not None
        else np.vectorize(lambda v: f"{v:{fmt}}")(shown)
    )
    annot = np.where(np.isfinite(table), text, "")
    sns.heatmap(
        table,
        ax=ax,
        mask=~np.isfinite(table),
        cmap=panel.cmap,
        norm=norm,
        annot=annot,
        fmt="",
        annot_kws={"fontsize": 7 if table.size <= 64 else 5},
        linewidths=0.5,
        linecolor="white",
        cbar_kws={"label": panel.label},
        square=False,
    )
    if norm is not None:
        plain_ticks(ax.collections[0].colorbar.ax.yaxis)
    ax.invert_yaxis()  # small values at the bottom, as on any other plot
    ax.set_xticks(x.ticks, x.labels, rotation=45 if x.log or len(x.labels) > 6 else 0)
    ax.set_yticks(y.ticks, y.labels, rotation=0)
    ax.set_title(panel.title, fontsize=10)


def plot_heatmap(
    df: pd.DataFrame, x: str, y: str, space: dict[str, Any], study: str, path: Path, measure: str = "accuracy"
) -> Path | None:
    """Write ``heatmap_figure`` to ``path``; None (logged) if not plottable."""
    return _save(heatmap_figure(df, x, y, space, study, measure), path)


def _save(fig: Figure | None, path: Path) -> Path | None:
    if fig is None:
        return None
    fig.savefig(path, dpi=DPI)
    return path


def heatmap_figure(
    df: pd.DataFrame, x: str, y: str, space: dict[str, Any], study: str, measure: str = "accuracy"
) -> Figure | None:
    """The best ``measure``, best loss and median loss per (x, y) cell; None (logged) if not plottable.

    ``measure``: the metric the study is judged by first (``metrics.shown``), so that a regression
    study's first panel is its RMSE and an imbalanced one's its balanced accuracy, not accuracy.
    """
    import seaborn as sns  # on drawing: importing a reader loads no scipy.optimize

    for name in (x, y):
        if name not in df or df[name].nunique() < 2:
            logger.info(
                "heatmap %s x %s skipped: %s is %s",
                x,
                y,
                name,
                "not a parameter of this study" if name not in df else "fixed",
            )
            return None
    bx, by = bin_parameter(df[x], dim_for(space, x)), bin_parameter(df[y], dim_for(space, y))
    value = df["value"].to_numpy(dtype=float, na_value=np.nan)
    column = f"val_{measure}"
    scores = df[column].to_numpy(dtype=float, na_value=np.nan) if column in df else np.full(len(df), np.nan)
    higher = METRICS[measure].greater_is_better
    direction = "higher = better" if higher else "lower = better"

    def per_cell(values: np.ndarray, how: str) -> np.ndarray:
        return _cell_table(bx.codes, by.codes, bx.n, by.n, values, how)

    panels = [
        Panel(
            per_cell(scores, "max" if higher else "min"),
            fmt=".3g",
            cmap="viridis" if higher else "viridis_r",
            label=f"best val {measure}",
            title=f"best val {measure} ({direction}, bright)",
        ),
        *(
            Panel(
                per_cell(value, how),
                fmt=".3g",
                cmap="viridis_r",
                label=f"{name} val loss",
                title=f"{name} val loss (lower = better, bright)",
                log_norm=True,
            )  # fmt: skip
            for how, name in (("min", "best"), ("median", "median"))
        ),
    ]
    panels = [p for p in panels if np.isfinite(p.table).any()]  # e.g. no score of the measure recorded
    counts = np.nan_to_num(per_cell(np.ones(len(df)), "sum")).astype(int)
    width = max(4.5, 0.55 * bx.n + 2.2)
    fig = Figure(figsize=(len(panels) * width, max(3.8, 0.5 * by.n + 2.0)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    with sns.axes_style("white"):
        for i, (ax, panel) in enumerate(zip(axes, panels)):
            _heatmap(ax, panel, x=bx, y=by, counts=counts if i == 0 else None)
            ax.set_xlabel(x + (" (log bins)" if bx.log else ""))
            ax.set_ylabel(y + (" (log bins)" if by.log else ""))
    fig.suptitle(
        f"{study}: {x} x {y}   ({len(df)} finished trials, pruned included; n = trials per cell; blank = no trial)",
        fontsize=11,
    )
    return fig


def plot_curves(
    df: pd.DataFrame, curves: pd.DataFrame, study: str, path: Path, winner: int | None = None
) -> Path | None:
    """Write ``curves_figure`` to ``path``; None (logged) if no trial reported a curve."""
    return _save(curves_figure(df, curves, study, winner), path)


def curves_figure(df: pd.DataFrame, curves: pd.DataFrame, study: str, winner: int | None = None) -> Figure | None:
    """Validation loss per epoch: complete trials coloured by their result, pruned grey, the winner red.

    ``winner``: the finalist stage's choice (``finalists.winner``); without one, the best search trial.
    """
    import seaborn as sns  # on drawing: importing a reader loads no scipy.optimize

    if not np.isfinite(curves["val_loss"]).any():
        logger.info("learning curves skipped: no trial reported a validation loss per epoch")
        return None
    info = df.set_index("number")
    complete = info.index[info["state"] == "COMPLETE"]
    best = info.loc[complete, "value"].idxmin() if complete.size and info.loc[complete, "value"].notna().any() else None
    best = winner if winner is not None and winner in info.index else best
    fig = Figure(figsize=(9, 5.5), layout="constrained")
    with sns.axes_style("whitegrid"):
        ax = fig.subplots()
    groups: dict[str, list[np.ndarray]] = {"complete": [], "pruned": [], "diverged": []}
    values: list[float] = []
    for number, curve in curves.groupby("number"):
        xy = curve[["epoch", "val_loss"]].to_numpy(dtype=float)
        diverged = info.at[number, "outcome"] == "diverged" or np.isnan(xy[:, 1]).any()
        kind = "diverged" if diverged else ("complete" if number in complete else "pruned")
        groups[kind].append(xy)
        if kind == "complete":
            values.append(float(info.at[number, "value"]))
        if kind == "diverged" and np.isfinite(xy[:, 1]).any():
            last = xy[np.isfinite(xy[:, 1])][-1]
            ax.plot(*last, marker="x", color="tab:orange", markersize=6, zorder=3)
    ax.add_collection(LineCollection(groups["pruned"], colors="0.6", linewidths=0.7, alpha=0.5, zorder=1))
    ax.add_collection(
        LineCollection(groups["diverged"], colors="tab:orange", linewidths=0.8, linestyles="--", alpha=0.8, zorder=2)
    )
    if groups["complete"]:
        norm = LogNorm(min(values), max(values)) if min(values) > 0 and max(values) > min(values) else Normalize()
        lines = LineCollection(
            groups["complete"], array=np.array(values), cmap="viridis_r", norm=norm, linewidths=1.0, alpha=0.8, zorder=2
        )
        ax.add_collection(lines)
        bar = fig.colorbar(lines, ax=ax, label="best val loss of the trial (complete trials)")
        if isinstance(norm, LogNorm):
            plain_ticks(bar.ax.yaxis)
    if best is not None:
        b = curves[curves["number"] == best]
        ax.plot(b["epoch"], b["val_loss"], color="crimson", linewidth=2.5, zorder=4)
    finite = curves["val_loss"][np.isfinite(curves["val_loss"])]
    if len(finite):
        low, high = finite.min(), min(finite.max(), finite.quantile(0.98) * 1.5)
        ax.set_ylim(low * 0.9 if low > 0 else low, high * 1.1)
        if low > 0 and high / low > 3:
            ax.set_yscale("log")
            plain_ticks(ax.yaxis)
    ax.set_xlim(0.8, max(curves["epoch"].max(), 1) + 0.2)
    ax.xaxis.get_major_locator().set_params(integer=True)  # type: ignore[call-arg]  # MaxNLocator's
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation loss (cross-entropy)")
    ax.legend(
        handles=[
            Line2D(
                [],
                [],
                color="crimson",
                linewidth=2.5,
                label=f"the winner: trial {best}" if best == winner else f"best: trial {best}",
            ),
            Line2D([], [], color=sns.color_palette("viridis", 3)[1], label=f"complete ({len(groups['complete'])})"),
            Line2D([], [], color="0.6", label=f"pruned ({len(groups['pruned'])})"),
            Line2D(
                [], [], color="tab:orange", linestyle="--", marker="x", label=f"diverged ({len(groups['diverged'])})"
            ),
        ],
        loc="upper right",
        fontsize=8,
    )
    ax.set_title(f"{study}: learning curves")
    return fig


def plot_history(df: pd.DataFrame, study: str, path: Path) -> Path:
    """Write ``history_figure`` to ``path``."""
    fig = history_figure(df, study)
    fig.savefig(path, dpi=DPI)
    return path


def history_figure(df: pd.DataFrame, study: str) -> Figure:
    """Objective per trial number with the best-so-far line (COMPLETE trials only define it)."""
    import seaborn as sns  # on drawing: importing a reader loads no scipy.optimize

    fig = Figure(figsize=(10, 5), layout="constrained")
    with sns.axes_style("whitegrid"):
        ax = fig.subplots()
    state, value = df["state"].astype(str), df["value"]
    done = df[(state == "COMPLETE") & value.notna()]
    pruned = df[(state == "PRUNED") & value.notna()]
    no_value = df[(state == "PRUNED") & value.isna()]
    failed = df[(state == "FAIL") & ~never_started(df)]
    ax.scatter(pruned["number"], pruned["value"], marker="x", color="0.55", s=18, label=f"pruned ({len(pruned)})")
    ax.scatter(done["number"], done["value"], color="tab:blue", s=16, label=f"complete ({len(done)})", zorder=3)
    if len(done):
        best = done["value"].cummin()
        xs = np.append(done["number"].to_numpy(), df["number"].max())
        ax.step(
            xs,
            np.append(best.to_numpy(), best.iloc[-1]),
            where="post",
            color="crimson",
            linewidth=1.8,
            label=f"best so far ({best.iloc[-1]:.4g})",
            zorder=4,
        )
    edge = blended_transform_factory(ax.transData, ax.transAxes)

    def at_edge(rows: pd.DataFrame, height: float, label: str, **style: Any) -> None:
        """Trials without a value to plot, marked at a fixed height of the axes (0: bottom, 1: top)."""
        if len(rows):
            ax.scatter(rows["number"], np.full(len(rows), height), transform=edge, clip_on=False,
                       label=f"{label} ({len(rows)})", **style)  # fmt: skip

    at_edge(no_value, 0.97, "diverged, no value", marker="v", color="tab:orange", s=22)
    at_edge(failed, 0.03, "failed", marker="|", color="black", s=60)
    shown = pd.concat([done["value"], pruned["value"]])
    # a pruned trial stopped at a huge loss (1e12 before it diverged) would squash every other
    # point into the bottom decade: such values are drawn at the top edge instead
    top = shown.quantile(0.98) * 20 if len(shown) else math.inf
    off = pruned[pruned["value"] > top]
    at_edge(off, 0.90, f"pruned, loss off the scale > {short_number(top)}", marker="^", color="0.4", s=22)
    if len(off):
        shown = shown[shown <= top]
    if len(shown) and shown.min() > 0 and shown.max() / shown.min() > 10:
        ax.set_yscale("log")
        plain_ticks(ax.yaxis)
    if len(off):
        ax.set_ylim(top=top)
    ax.margins(y=0.08)  # room for the diverged/failed marks at the edges
    ax.set_xlabel("trial number")
    ax.set_ylabel("objective: best validation loss")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.set_title(f"{study}: optimisation history")
    return fig


def default_out_dir(study: str, storage: str | None) -> Path:
    """``<database dir>/<study>-plots`` for SQLite; ``./plots/<study>`` for a server database."""
    path = sqlite_path(storage if storage is not None else default_url(study))
    return path.parent / f"{study}-plots" if path is not None else Path("plots") / study


def make_plots(study: str, storage: str | None = None, out_dir: str | Path | None = None) -> list[Path]:
    """Write the heatmaps, learning curves and history of ``study`` as PNGs; return their paths."""
    loaded = open_study(study, storage)
    trials = loaded.get_trials(deepcopy=False)
    space = study_space(loaded)
    df = trials_frame(trials, space)
    finished = df[df["state"].isin(FINISHED)].reset_index(drop=True)
    if not finished["value"].notna().any():
        raise SearchError(f"study {study!r} has no finished trials to plot ({len(df)} trials in all)")
    out = Path(out_dir) if out_dir is not None else default_out_dir(study, storage)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SearchError(f"cannot create plot directory {str(out)!r}: {exc.strerror}") from None
    measure = shown(*study_question(loaded))[0]
    written = [
        plot_heatmap(finished, x, y, space, study, out / f"heatmap_{x}_x_{y}.png", measure) for x, y in HEATMAP_PAIRS
    ]
    written.append(plot_curves(df, curves_frame(trials), study, out / "curves.png", fin.winner(trials)))
    written.append(plot_history(df, study, out / "history.png"))
    paths = [p for p in written if p is not None]
    logger.info("wrote %d plots to %s", len(paths), out)
    return paths
