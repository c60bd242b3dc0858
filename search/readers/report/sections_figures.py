"""The report's figure-led sections: the ``plot`` figures, pruning, the worker timeline, trade-offs."""

from __future__ import annotations

from typing import Any

import pandas as pd

from search.readers import plots
from search.readers.report import figures, savings, tables, usage
from search.readers.report.facts import StudyFacts
from search.readers.report.parallel import Plot
from search.readers.report.render import Fact, Facts, Section, Table, Text
from search.readers.report.winner_section import winner_number
from search.readers.report.words import duration_text
from search.readers.results import FINISHED
from search.study import keys


def figures_section(f: StudyFacts) -> Section:
    search = f.search
    finished = search[search["state"].isin(FINISHED)].reset_index(drop=True)
    curves = f.curves[f.curves["number"].isin(search["number"])]
    if not finished["value"].notna().any():
        return Section("figures", "Where the good networks are", [Text("No finished search trial to plot yet.")])
    blocks: list[Any] = [Plot(f"heatmap_{x}_x_{y}.png", f"heatmap {x} x {y}",
                              lambda x=x, y=y: plots.heatmap_figure(finished, x, y, f.space, f.name, f.shown[0]))
                         for x, y in plots.HEATMAP_PAIRS]
    if len(curves):
        winner, _ = winner_number(f)
        blocks.append(Plot("curves.png", "learning curves",
                           lambda: plots.curves_figure(search, curves, f.name, winner)))
    blocks.append(Plot("history.png", "optimisation history", lambda: plots.history_figure(search, f.name)))
    return Section("figures", "Where the good networks are", blocks)


def pruning_section(f: StudyFacts) -> Section:
    if f.max_epochs is None:
        return Section("pruning", "Pruning", [Text(f"The study stores no epoch budget (no {keys.SPEC}).")])
    stats = savings.pruning_stats(f.search, f.curves, f.max_epochs)
    saved = float(stats.by_cause["seconds_saved"].sum()) if len(stats.by_cause) else 0.0
    share = saved / (saved + stats.seconds_spent) if saved + stats.seconds_spent > 0 else 0.0
    rows = [Fact("epochs run", f"{stats.epochs_run} of {stats.epochs_budget} budgeted "
                               f"({stats.finished} finished search trials x {f.max_epochs})", "pruning-epochs-run",
                 stats.epochs_run),
            Fact("training time", f"{duration_text(stats.seconds_spent)} spent; about {duration_text(saved)} saved "
                                  f"({share:.0%} of what full training would have cost)", "seconds-saved",
                 round(saved, 3))]
    blocks: list[Any] = [Facts(rows)]
    if len(stats.by_cause):
        shown = pd.DataFrame({"stopped by": stats.by_cause["cause"], "trials": stats.by_cause["trials"].astype(str),
                              "epochs not run": stats.by_cause["epochs_skipped"].astype(str),
                              "seconds saved (est.)": stats.by_cause["seconds_saved"].map("{:.1f}".format)})
        blocks.append(Table(shown, key="stopped"))
    blocks.append(Text("Seconds saved are estimated from each trial's own pace: the epochs it did not run, "
                       "times its training seconds per epoch run."))
    number, _ = winner_number(f)
    if number is not None:
        ahead = savings.pruned_while_ahead(f.search, f.curves, number)
        n_pruned = int((f.search["state"] == "PRUNED").sum())
        blocks.append(Text(
            f"The risk side: {len(ahead)} of {n_pruned} pruned trials were stopped while their validation "
            f"loss was at or below the eventual winner's (trial {number}) at the same epoch."))
        blocks.append(Facts([Fact("pruned while ahead", ", ".join(str(n) for n in ahead["number"]) or "none",
                                  "pruned-while-ahead", ",".join(str(n) for n in ahead["number"]))]))
        if len(ahead):
            blocks.append(Table(pd.DataFrame({
                "trial": ahead["number"].astype(str), "pruned at epoch": ahead["epoch"].astype(str),
                "its val loss": ahead["val_loss"].map("{:.4f}".format),
                "winner's val loss then": ahead["winner_loss"].map("{:.4f}".format)}), key="ahead"))
    return Section("pruning", "Pruning: what it saved, what it risked", blocks)


def timeline_section(f: StudyFacts) -> Section:
    spans = usage.worker_spans(f.df)
    use = usage.usage(f.df)
    text = (f"{use.workers} worker processes; each bar is one trial, as long as its training and ending when "
            f"the coordinator recorded it. Workers were training {use.busy:.0%} of their lifetime."
            if use.workers else "No trial records its worker yet.")
    blocks: list[Any] = [Text(text)]
    if use.workers:
        blocks.append(Plot("timeline.png", "worker timeline", lambda: figures.timeline_figure(spans, f.name)))
    return Section("timeline", "Worker timeline", blocks)


def tradeoff_section(f: StudyFacts, n_in: int | None) -> Section:
    points = tables.tradeoff_points(f, n_in)
    note = ("Parameter counts include the input layer." if n_in is not None else
            "The data set could not be loaded here, so parameter counts are unknown.")
    measure = f.shown[0]
    blocks: list[Any] = [Text(f"Validation {measure} of complete search trials against network size and "
                              "training time. Red points form the Pareto front: no other trial is both "
                              f"smaller (or faster) and better. {note}")]
    blocks.append(Plot("tradeoffs.png", f"{measure} against size and time",
                       lambda: figures.tradeoff_figure(points, f.name, measure)))
    return Section("tradeoffs", "Trade-offs", blocks)
