"""The report's sections, in reading order, built from one ``StudyFacts``.

Every number here is computed from the study at the time of the report: counts
from the trials' states, epochs from the stored curves, seconds from the
trials' own timings, the winner from the values. Nothing is cached elsewhere.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np
import pandas as pd

from search.readers.bins import short_number
from search.readers.report import figures, savings, tables, usage
from search.readers.report.command import reproduce_command, safe_url
from search.readers.report.facts import StudyFacts
from search.readers.report.parallel import Plot
from search.readers.report.render import Fact, Facts, Section, Table, Text
from search.readers.report.words import chooser, duration_text, metric_name, num, question_text
from search.readers.results import FINISHED, FORMATS, leaderboard
from search.study import keys
from search.study.datafile import describe_data

logger = logging.getLogger(__name__)

TOP = 20


def _describe(obj: Any) -> str:
    """``Name(key=value, ...)`` from an Optuna object's scalar settings."""
    scalars = {
        k.lstrip("_"): v
        for k, v in vars(obj).items()
        if isinstance(v, (bool, int, float, str)) and not k.startswith("__")
    }
    return f"{type(obj).__name__}(" + ", ".join(f"{k}={v!r}" for k, v in sorted(scalars.items())) + ")"


def _space_text(space: dict[str, Any]) -> str:
    parts = []
    for name, dim in space.items():
        if isinstance(dim, dict):
            scale = ", log" if dim.get("log") else ""
            zero = ", or 0" if dim.get("zero") else ""
            parts.append(f"{name} {short_number(dim['low'])}..{short_number(dim['high'])}{scale}{zero}")
        elif isinstance(dim, list):
            parts.append(f"{name} {{{', '.join(map(str, dim))}}}")
        else:
            parts.append(f"{name} = {dim}")
    return "; ".join(parts) or "(not stored)"


def _time_decides(spec: dict[str, Any]) -> bool:
    """A budget without a trial count: the count is only the ceiling no plan reaches."""
    from search.budget.shares import TRIAL_CEILING

    return bool(spec.get("budget")) and int(spec.get("trials") or 0) >= TRIAL_CEILING


def _budget_rows(f: StudyFacts) -> list[Fact]:
    """A budgeted study's budget, the time its runs used and the plan it was made with."""
    from search.budget.shares import describe_plan
    from search.study.durations import format_duration

    seconds = f.spec.get("budget")
    if not seconds:
        return []
    spent = f.attrs.get(keys.BUDGET_SPENT)
    used = float(json.loads(spent)) if isinstance(spent, str) else None
    rows = [
        Fact(
            "budget",
            f"{format_duration(seconds)} for the whole job"
            + ("" if used is None else f"; {format_duration(used)} used ({used / seconds:.0%})"),
            "budget-seconds",
            seconds,
        )
    ]
    plan = f.attrs.get(keys.BUDGET_PLAN)
    if isinstance(plan, str):
        rows += [Fact(label or "", text) for label, text in describe_plan(json.loads(plan))]
    return rows


def summary(f: StudyFacts) -> Section:
    from search.study.pruning import make_pruner
    from search.study.spec import StudySpec
    from search.study.stored import make_sampler

    spec = f.spec
    try:
        stored = StudySpec.from_json(json.dumps(spec))
        sampler, pruner = _describe(make_sampler(stored)), _describe(make_pruner(stored.pruner, stored.epochs))
    except Exception as exc:  # noqa: BLE001 -- an older or foreign spec: show the names it holds
        logger.info("spec not rebuilt (%s)", exc)
        sampler, pruner = str(spec.get("sampler", "?")), str(spec.get("pruner", "?"))
    use = usage.usage(f.df)
    best = f.best()
    run = savings.epochs_run(f.curves, f.search[f.search["state"].isin(FINISHED)]["number"])
    budget = (f.max_epochs or 0) * len(run)
    command, unflagged = reproduce_command(f.name, spec, f.url)
    record = f.data_record
    data_rows = (
        [Fact(label, text, f"data-{label}") for label, text in describe_data(record)]
        if record
        else [
            Fact(
                "data set",
                f"{spec.get('dataset', '?')} (validation fraction {spec.get('val_fraction', '?')}, "
                f"normalisation {spec.get('normalization') or 'the data set default'})",
                "dataset",
                spec.get("dataset"),
            )
        ]
    )
    rows = [
        *data_rows,
        *_budget_rows(f),
        Fact("question", question_text(f), "task", f.task),
        Fact(
            "objective",
            f"{f.attrs.get('objective', 'validation loss')}; minimised, named {metric_name(f)} on the study",
        ),
        Fact("search space", _space_text(f.space)),
        Fact("sampler", sampler, "sampler", spec.get("sampler")),
        Fact("pruner", pruner, "pruner", spec.get("pruner")),
        Fact(
            "trials",
            f"{len(f.df)} in the study, {len(run)} finished search trials "
            + (
                "(as many as the budget's time allowed)"
                if _time_decides(spec)
                else f"(target {spec.get('trials', '?')})"
            ),
            "trials-total",
            len(f.df),
        ),
        Fact(
            "best objective value",
            "-" if best is None else f"{best['value']:.4f} (trial {int(best['number'])}, best single search trial)",
            "best-value",
            None if best is None else repr(float(best["value"])),
        ),
        Fact(
            "epochs run",
            f"{int(run.sum())} of {budget} budgeted ({run.sum() / max(budget, 1):.0%})",
            "epochs-run",
            int(run.sum()),
        ),
        Fact(
            "wall time",
            f"{duration_text(use.wall_seconds)} from first trial to last "
            f"({duration_text(use.active_seconds)} with trials running)",
            "wall-seconds",
            round(use.wall_seconds, 3),
        ),
        Fact(
            "CPU time",
            f"{duration_text(use.cpu_seconds)} of training, summed over trials (one BLAS thread per worker)",
            "cpu-seconds",
            round(use.cpu_seconds, 3),
        ),
        Fact(
            "workers busy",
            f"{num(use.busy, '.0%')} of their lifetime training, {use.workers} worker processes",
            "workers-busy",
            None if np.isnan(use.busy) else round(use.busy, 4),
        ),
        Fact("storage", safe_url(f.url)),
    ]
    counts = tables.stage_counts(f)
    counts.index.name = "state"
    blocks: list[Any] = [
        Facts(rows),
        Table(counts, key="trials", index=True),
        Text(
            "Reproduce this study (same settings and seed; the same trials too when it was "
            "run with --deterministic, whatever the number of workers):"
        ),
        Text(command, code=True),
    ]
    if unflagged:
        blocks.append(Text(f"Settings with no flag (need a preset): {', '.join(unflagged)}."))
    return Section("summary", "Summary", blocks)


def leaderboard_section(f: StudyFacts) -> Section:
    top = leaderboard(f.search, TOP)

    def plain(v: Any) -> str:
        return "-" if pd.isna(v) else str(v)

    shown = top.astype(object).apply(lambda col: col.map(FORMATS.get(col.name, plain)))
    return Section(
        "leaderboard",
        f"Leaderboard (top {TOP})",
        [
            Text(
                f"Search trials by {chooser(f)}; pruned trials fill in only when fewer than "
                f"{TOP} completed (their value is from when they stopped)."
            ),
            Table(shown, key="leaderboard"),
        ],
    )


def importance_section(f: StudyFacts) -> Section:
    values, note = tables.importances(f)
    blocks: list[Any] = [
        Text(
            "Evaluator: Optuna's PED-ANOVA (PedAnovaImportanceEvaluator). It compares where the top 10 % of "
            "trials put each parameter with where all trials put it, using one-dimensional Parzen estimates; "
            "its cost grows linearly with the trials (well under a second at 1,000), where fANOVA, the classic, "
            "fits a random forest and can take minutes. Conditional parameters (the widths of deeper "
            f"layers, l2 when switched on) are scored from the trials that have them. Based on {note}."
        )
    ]
    if values:
        blocks.append(
            Table(
                pd.DataFrame({"parameter": list(values), "importance": [f"{v:.3f}" for v in values.values()]}),
                key="importances",
            )
        )
        blocks.append(
            Plot(
                "importances.png",
                "parameter importances",
                lambda: figures.importance_figure(values, "PED-ANOVA", f.name),
            )
        )
    return Section("importances", "Parameter importances", blocks)
