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

from search.errors import SearchError
from search.readers.bins import short_number
from search.readers.frames import is_layer_param, layers_text
from search.readers.report import figures, savings, tables, usage
from search.readers.report.command import reproduce_command, safe_url
from search.readers.report.facts import StudyFacts
from search.readers.report.final_epochs import final_epochs_fact
from search.readers.report.parallel import Plot
from search.readers.report.render import Fact, Facts, Section, Table, Text
from search.readers.results import FINISHED, FORMATS, leaderboard
from search.study import keys
from search.study.datafile import describe_data
from search.study.winner import Winner, find_winner

logger = logging.getLogger(__name__)

TOP = 20


def _num(v: Any, spec: str = ".4f") -> str:
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) or pd.isna(v) else format(v, spec)


def duration_text(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.2f} h"


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
        Fact("question", _question_text(f), "task", f.task),
        Fact("objective", f"{f.attrs.get('objective', 'validation loss')}; minimised, named {_metric(f)} on the study"),
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
            f"{_num(use.busy, '.0%')} of their lifetime training, {use.workers} worker processes",
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


class _Snapshot:
    """The storage reads ``find_winner`` makes, answered from the report's one read of the study."""

    def __init__(self, f: StudyFacts) -> None:
        self._f = f

    def get_all_trials(self, study_id: int, deepcopy: bool = False, states: Any = None) -> list[Any]:
        return [t for t in self._f.trials if states is None or t.state in states]

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        return self._f.attrs


def find_winner_in(f: StudyFacts) -> Winner | None:
    """The winner by the rule ``best`` uses (``study.winner.find_winner``), from the report's one read; None yet."""
    try:
        return find_winner(_Snapshot(f), 0, f.name, f.metric)  # type: ignore[arg-type]
    except SearchError:
        return None


def winner_number(f: StudyFacts) -> tuple[int | None, str]:
    """(the chosen search trial, how it was chosen); (None, "") before a search trial completes."""
    won = find_winner_in(f)
    return (None, "") if won is None else (won.trial.number, _how_chosen(f, won))


def _how_chosen(f: StudyFacts, won: Winner) -> str:
    if won.finalists:
        return f"best mean {_chooser(f)} over fresh runs, of {len(won.finalists)} finalists (the rule `best` uses)"
    return f"best {_chooser(f)} of a single search trial (no finalist stage ran)"


def _chooser(f: StudyFacts) -> str:
    """What chooses the finalists and the winner: the study's metric, or its objective."""
    return f"validation {f.metric}" if f.metric else _metric(f)


def _question_text(f: StudyFacts) -> str:
    from search.study.metrics import METRICS

    measure = METRICS[f.shown[0]].text
    chosen = "which chooses the finalists and the winner" if f.metric else f"chosen by {_metric(f)}"
    weights = ", classes weighted alike (balanced)" if f.spec.get("class_weight") == "balanced" else ""
    return f"{f.task}: judged by {measure}, {chosen}{weights}"


def _metric(f: StudyFacts) -> str:
    """The objective's name: the selection rule's metric (val_loss on studies made before rules)."""
    from search.study.selection import SELECTIONS

    rule = SELECTIONS.get(f.spec.get("selection", "min_loss"))
    return rule.metric if rule else "val_loss"


def _finalist_training(spec: dict[str, Any]) -> str:
    """How the finalist runs trained, from the stored settings (a study stored before a setting lacks it)."""
    how = [f"{spec.get('finalist_epochs') or spec.get('epochs')} epochs"]
    if (spec.get("finalist_cv") or 1) > 1:
        how.append(f"{spec['finalist_cv']}-fold cross-validation")
    if spec.get("finalist_warp"):
        how.append(f"images warped with strength {spec['finalist_warp']}")
    return ", ".join(how)


def winner(f: StudyFacts) -> Section:
    fin = tables.finalists(f)
    won = find_winner_in(f)
    if won is None:
        return Section("winner", "The winner", [Text("No search trial has completed yet.")])
    trial, final = won.trial, final_epochs_fact(f, won)
    best = f.df.set_index("number").loc[trial.number].copy()
    best["number"] = trial.number
    rows = [
        Fact("trial", str(trial.number), "winner", trial.number),
        Fact("chosen by", _how_chosen(f, won)),
        *[
            Fact(
                f"validation {name}",
                _num(score := best.get(f"val_{name}")),
                "winner-accuracy" if name == "accuracy" else f"winner-{name}",
                None if score is None or pd.isna(score) else float(score),
            )
            for name in f.shown
        ],
        Fact(_metric(f), f"{best['value']:.4f} (its search run)"),
        Fact("best epoch", f"{_num(best['best_epoch'], 'd')} of {f.max_epochs} (its search run)"),
        *([final] if final else []),
        Fact("hidden layers", layers_text(best["hidden"])),
    ]
    rows += [
        Fact(name, _num(v, ".4g") if isinstance(v, float) else str(v))
        for name, v in sorted(trial.params.items())
        if not is_layer_param(name)  # "hidden layers" says them
    ]
    blocks: list[Any] = [Facts(rows)]
    if not fin.empty:
        chosen = f.finalists
        blocks.append(
            Text(
                f"Finalists: the top configurations re-run on fresh seeds ({_finalist_training(f.spec)})"
                + (f", chosen after {chosen['after']} finished search trials" if "after" in chosen else "")
                + f". The winner has the best mean {_chooser(f)}, not the luckiest single run."
            )
        )
        columns = {
            "search trial": fin["finalist_of"].astype(str),
            "runs": fin["runs"].astype(str),
            **{
                f"val {name} mean ± sd": [
                    f"{_num(m)} ± {_num(s)}" for m, s in zip(fin[f"val_{name}_mean"], fin[f"val_{name}_sd"])
                ]
                for name in f.shown
            },
            f"{_metric(f)} mean ± sd": [f"{m:.4f} ± {_num(s)}" for m, s in zip(fin["value_mean"], fin["value_sd"])],
        }
        blocks.append(Table(pd.DataFrame(columns), key="finalists"))
    r = f.retrained
    if r:
        rows = [
            Fact(
                "retrained",
                f"trial {r.get('trial')} on {r.get('samples')} samples (train + validation) "
                f"for {r.get('epochs')} epochs, {r.get('seeds', 1)} seed(s)",
            ),
        ]
        if r.get("every_row"):
            again = f"the same networks trained again on every row ({r['every_row']} samples)"
            rows.append(Fact("predict uses", again))
        for name in f.shown:
            mean = r.get(f"test_{name}_mean", r.get(f"test_{name}"))
            if mean is None:
                continue
            sd = f" ± {r[f'test_{name}_sd']:.4f}" if r.get(f"test_{name}_sd") is not None else ""
            key = "test-accuracy" if name == "accuracy" else f"test-{name}"
            rows.append(Fact(f"test {name}", (f"{mean:.4f}{sd}" if isinstance(mean, float) else str(mean)), key, mean))
            if r.get(f"ensemble_{name}") is not None:
                rows.append(Fact(f"ensemble test {name}", f"{r[f'ensemble_{name}']:.4f}"))
        rows.append(Fact("when", str(r.get("when", "-"))))
        draw = f", drawn with --test-seed {f.spec['test_seed']}" if f.spec.get("test_seed") else ""
        blocks += [
            Text(f"Scored once on the test split{draw} (selection used only the validation split):"),
            Facts(rows),
        ]
        if r.get("test_points"):  # a regression study: where the numbers miss
            target = str(f.data_record.get("preprocessing", {}).get("target") or "target")
            blocks.append(
                Plot(
                    "predicted.png",
                    "predicted against true, and residuals, on the test rows",
                    lambda: figures.regression_figure(r["test_points"], f.name, target),
                )
            )
    else:
        blocks.append(Text("No retrained test score is stored yet: `python -m search best --retrain` saves one."))
    return Section("winner", "The winner", blocks)


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
                f"Search trials by {_chooser(f)}; pruned trials fill in only when fewer than "
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
