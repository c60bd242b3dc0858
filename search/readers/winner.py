"""``best``: the winner of a study, described for a person: its measure first, then the objective."""

from __future__ import annotations

import math
import statistics

from search.study import finalists as fin
from search.study.metrics import shown
from search.study.selection import SELECTIONS
from search.study.winner import final_epochs_why, load_winner

__all__ = ["describe_best"]


def describe_best(study: str, storage_url: str | None = None) -> str:
    spec, winner, _ = load_winner(study, storage_url)
    best = winner.trial
    task = spec.task or "classification"
    names = shown(task, spec.metric)
    lines = [f"best trial {best.number} of study {study!r} ({spec.data_name}, {task})"]
    chooser = f"the mean validation {names[0]}" if spec.metric else "the mean objective"
    if winner.finalists:
        f = winner.finalists[0]
        lines.append(
            f"  chosen as the best of {len(winner.finalists)} finalists by {chooser}, on {len(f.runs)} fresh runs each"
        )
    objective = SELECTIONS[spec.selection].metric
    epochs, why = final_epochs_why(spec, winner)  # how long --retrain trains: often not the best epoch above
    lines += [f"  {'val ' + name:<20} {_num(fin.trial_score(best, name))} (search)" for name in names]
    lines += [
        f"  {objective:<20} {best.value:.4f} (search)",
        f"  best epoch           {best.user_attrs.get('best_epoch')} of {spec.epochs} (search)",
        f"  retrain epochs       {epochs} ({why})",
    ]
    lines += [f"  {name:<20} {value}" for name, value in sorted(best.params.items())]
    if winner.finalists:
        lines.append("finalists (fresh runs: mean ± sd)")
        for f in winner.finalists:
            scores = []
            for name in names:
                values = [v for v in f.scores(name) if math.isfinite(v)]
                scores.append(
                    f"val {name} {_num(statistics.fmean(values)) if values else '-'}"
                    f"{_pm(fin.spread(values)) if values else ''}"
                )
            lines.append(
                f"  trial {f.number:>5}  {'  '.join(scores)}  {objective} {f.mean:.4f}{_pm(f.sd)}  ({len(f.runs)} runs)"
            )
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.4f}"


def _pm(sd: float) -> str:
    """`` ± sd``, or nothing where one run gave no spread."""
    return "" if math.isnan(sd) else f" ± {sd:.4f}"
