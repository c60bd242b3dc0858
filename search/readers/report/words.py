"""Numbers and phrases more than one section of the report writes: one wording each."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from search.readers.report.facts import StudyFacts


def num(v: Any, spec: str = ".4f") -> str:
    """A table cell: "-" where there is no number (None, NaN, pandas' NA), which ``format`` would refuse."""
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) or pd.isna(v) else format(v, spec)


def duration_text(seconds: float) -> str:
    """Seconds in the unit a person reads them in."""
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.2f} h"


def chooser(f: StudyFacts) -> str:
    """What chooses the finalists and the winner: the study's metric, or its objective."""
    return f"validation {f.metric}" if f.metric else metric_name(f)


def question_text(f: StudyFacts) -> str:
    from search.study.metrics import METRICS

    measure = METRICS[f.shown[0]].text
    chosen = "which chooses the finalists and the winner" if f.metric else f"chosen by {metric_name(f)}"
    weights = ", classes weighted alike (balanced)" if f.spec.get("class_weight") == "balanced" else ""
    return f"{f.task}: judged by {measure}, {chosen}{weights}"


def metric_name(f: StudyFacts) -> str:
    """The objective's name: the selection rule's metric (val_loss on studies made before rules)."""
    from search.study.selection import SELECTIONS

    rule = SELECTIONS.get(f.spec.get("selection", "min_loss"))
    return rule.metric if rule else "val_loss"
