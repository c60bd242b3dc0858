"""``best``: the winner of a study, described for a person."""

from __future__ import annotations

import math
import statistics

from search.study import finalists as fin
from search.study.selection import SELECTIONS
from search.study.winner import load_winner

__all__ = ["describe_best"]


def describe_best(study: str, storage_url: str | None = None) -> str:
    spec, winner, _ = load_winner(study, storage_url)
    best = winner.trial
    lines = [f"best trial {best.number} of study {study!r} ({spec.data_name})"]
    if winner.finalists:
        f = winner.finalists[0]
        lines.append(
            f"  chosen as the best of {len(winner.finalists)} finalists, on the mean of {len(f.runs)} fresh runs each"
        )
    metric = SELECTIONS[spec.selection].metric
    lines += [
        f"  {metric:<20} {best.value:.4f} (search)",
        f"  validation accuracy  {best.user_attrs.get('val_accuracy', float('nan')):.4f} (search)",
        f"  best epoch           {best.user_attrs.get('best_epoch')} of {spec.epochs}",
    ]
    lines += [f"  {name:<20} {value}" for name, value in sorted(best.params.items())]
    if winner.finalists:
        lines.append("finalists (fresh runs: mean ± sd)")
        for f in winner.finalists:
            acc = [t.user_attrs.get("val_accuracy") for t in f.runs if t.user_attrs.get("val_accuracy") is not None]
            acc_text = f"{statistics.fmean(acc):.4f}{_pm(fin.spread(acc))}" if acc else "-"
            lines.append(
                f"  trial {f.number:>5}  {metric} {f.mean:.4f}{_pm(f.sd)}  "
                f"val accuracy {acc_text}  ({len(f.runs)} runs)"
            )
    return "\n".join(lines)


def _pm(sd: float) -> str:
    """`` ± sd``, or nothing where one run gave no spread."""
    return "" if math.isnan(sd) else f" ± {sd:.4f}"
