"""The report's winner: how it was chosen, its parameters, the finalists and its test scores."""

from __future__ import annotations

from typing import Any

import pandas as pd

from search.errors import SearchError
from search.readers.frames import is_layer_param, layers_text
from search.readers.report import figures, tables
from search.readers.report.facts import StudyFacts
from search.readers.report.final_epochs import final_epochs_fact
from search.readers.report.parallel import Plot
from search.readers.report.render import Fact, Facts, Section, Table, Text
from search.readers.report.words import chooser, metric_name, num
from search.study.winner import Winner, find_winner


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
        return f"best mean {chooser(f)} over fresh runs, of {len(won.finalists)} finalists (the rule `best` uses)"
    return f"best {chooser(f)} of a single search trial (no finalist stage ran)"


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
                num(score := best.get(f"val_{name}")),
                "winner-accuracy" if name == "accuracy" else f"winner-{name}",
                None if score is None or pd.isna(score) else float(score),
            )
            for name in f.shown
        ],
        Fact(metric_name(f), f"{best['value']:.4f} (its search run)"),
        Fact("best epoch", f"{num(best['best_epoch'], 'd')} of {f.max_epochs} (its search run)"),
        *([final] if final else []),
        Fact("hidden layers", layers_text(best["hidden"])),
    ]
    rows += [
        Fact(name, num(v, ".4g") if isinstance(v, float) else str(v))
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
                + f". The winner has the best mean {chooser(f)}, not the luckiest single run."
            )
        )
        columns = {
            "search trial": fin["finalist_of"].astype(str),
            "runs": fin["runs"].astype(str),
            **{
                f"val {name} mean ± sd": [
                    f"{num(m)} ± {num(s)}" for m, s in zip(fin[f"val_{name}_mean"], fin[f"val_{name}_sd"])
                ]
                for name in f.shown
            },
            f"{metric_name(f)} mean ± sd": [f"{m:.4f} ± {num(s)}" for m, s in zip(fin["value_mean"], fin["value_sd"])],
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
