"""Everything the report shows, read once from the study: frames, spec, stages, stored results.

Why one gathering step: the study may be written by a live run while the report
is made. Reading the trials once (read-only, as ``search.readers.results.open_study``
does) gives every section the same snapshot, so the counts in the summary, the
leaderboard and the figures agree with each other.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import optuna
import pandas as pd

from search.readers.frames import curves_frame, trials_frame
from search.readers.results import open_study, study_space
from search.study import keys
from search.study.metrics import question, shown
from search.study.storage import default_url

logger = logging.getLogger(__name__)

SEARCH, FINALIST = keys.SEARCH, keys.FINALIST


@dataclass(frozen=True)
class StudyFacts:
    """One read of a study. ``df`` holds every trial; ``search`` only the search stage."""

    name: str
    url: str
    spec: dict[str, Any]              # the stored StudySpec as JSON (``{}`` if absent)
    space: dict[str, Any]
    df: pd.DataFrame                  # frames.trials_frame + stage, finalist_of, repeat
    curves: pd.DataFrame              # frames.curves_frame of every trial
    trials: list[optuna.trial.FrozenTrial]
    attrs: dict[str, Any] = field(default_factory=dict)       # every study user attr, as stored
    finalists: dict[str, Any] = field(default_factory=dict)   # study attr "finalists"
    retrained: dict[str, Any] = field(default_factory=dict)   # study attr "retrained"

    @property
    def search(self) -> pd.DataFrame:
        return self.df[self.df["stage"] == SEARCH]

    @property
    def finalist_runs(self) -> pd.DataFrame:
        return self.df[self.df["stage"] == FINALIST]

    @property
    def task(self) -> str:
        return question(self.spec)[0]

    @property
    def metric(self) -> str | None:
        """The study's metric, which chooses the finalists and the winner (None: the objective chooses)."""
        return question(self.spec)[1]

    @property
    def shown(self) -> tuple[str, ...]:
        """The metrics its tables show, the one it is judged by first (``metrics.shown``)."""
        return shown(*question(self.spec))

    @property
    def max_epochs(self) -> int | None:
        epochs = self.spec.get("epochs")
        return int(epochs) if isinstance(epochs, int) else None

    @property
    def data_record(self) -> dict[str, Any]:
        """A file's record (path, digest, shapes, classes, preprocessing); ``{}`` for a built-in data set."""
        return _json_attr(self.attrs, keys.DATA_FILE)

    def best(self) -> pd.Series | None:
        """The best COMPLETE search trial (lowest validation loss), or None."""
        done = self.search[(self.search["state"] == "COMPLETE") & self.search["value"].notna()]
        if done.empty:
            return None
        return done.loc[done["value"].idxmin()]


def _json_attr(attrs: dict[str, Any], key: str) -> dict[str, Any]:
    """A study attr holding JSON text (or an already decoded dict); ``{}`` if absent or unreadable."""
    raw = attrs.get(key)
    if raw is None:
        return {}
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        logger.warning("study attribute %r is not JSON; ignoring it", key)
        return {}
    return value if isinstance(value, dict) else {}


def gather(study: str, storage: str | None = None) -> StudyFacts:
    """Read ``study`` once, read-only; safe while a run writes it."""
    loaded = open_study(study, storage)
    trials = loaded.get_trials(deepcopy=False)
    space = study_space(loaded)
    df = trials_frame(trials, space)
    by_number = {t.number: t.user_attrs for t in trials}
    # the stage attrs (trials_frame reads them too); a study from before stages is all search
    if "stage" not in df:
        df["stage"] = [str(by_number[n].get("stage", SEARCH)) for n in df["number"]]
    for name in ("finalist_of", "repeat"):
        if name not in df:
            df[name] = pd.array([by_number[n].get(name) for n in df["number"]], dtype="Int64")
    attrs = dict(loaded.user_attrs)
    spec = _json_attr(attrs, keys.SPEC)
    df.attrs["task"], df.attrs["metric"] = question(spec)  # what leaderboard and finalist_summary read
    return StudyFacts(
        name=study,
        url=storage if storage is not None else default_url(study),
        spec=spec,
        space=space,
        df=df,
        curves=curves_frame(trials),
        trials=list(trials),
        attrs=attrs,
        finalists=_json_attr(attrs, "finalists"),
        retrained=_json_attr(attrs, "retrained"),
    )
