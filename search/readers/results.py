"""Storage -> pandas: the trials, the learning curves, a leaderboard and the finalists' standings.

Why a module of its own: people want flat tables they can sort, filter and
plot (``search.frames`` flattens Optuna's trials into them), and a leaderboard
printed the same way by ``show`` and the report. Everything here reads through
a read-only storage, so it is safe while a run is writing the same file.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
from collections.abc import Sequence
from typing import Any

import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from search.errors import SearchError
from search.readers.frames import curves_frame, trials_frame
from search.study import finalists as fin
from search.study import keys
from search.study.metrics import METRICS, question, rank_key, shown
from search.study.storage import default_url, open_storage
from search.study.stored import no_such_study

logger = logging.getLogger(__name__)

FINISHED = tuple(state.name for state in fin.FINISHED)  # as the state column spells them

# the columns of the finalist table around its scores' (val_<metric>_mean and _sd, the study's metric first)
_FINALIST_HEAD = {"finalist_of": "int64", "runs": "int64"}
_FINALIST_TAIL = {"value_mean": "float64", "value_sd": "float64", "diverged": "int64"}
# the parameters shown beside a finalist's figures
_FINALIST_PARAMS = (
    "hidden", "activation", "learning_rate", "batch_size", "l2", "dropout", "momentum", "periodic", "plr", "plr_sigma",
)  # fmt: skip
# the leaderboard's columns after the number and the scores (the study's metric first: ``metrics.shown``)
LEADERBOARD_COLUMNS = (
    "value",
    "epochs",
    "state",
    "activation",
    "hidden",
    "loss",
    "learning_rate",
    "batch_size",
    "l2",
    "dropout",
    "momentum",
    "periodic",
    "plr",
    "plr_sigma",
    "seconds",
)


def _question(df: pd.DataFrame) -> tuple[str, str | None]:
    """(task, metric) that ``load_results`` keeps in the frame's ``attrs``; classes, without a metric, if absent."""
    return question(df.attrs)


def open_study(study: str, storage: str | None = None) -> optuna.Study:
    """Load ``study`` read-only; an unknown name lists the studies that do exist."""
    url = storage if storage is not None else default_url(study)
    rdb = open_storage(url, read_only=True)
    try:
        return optuna.load_study(study_name=study, storage=rdb)
    except KeyError:
        raise no_such_study(rdb, study, repr(url)) from None


def study_space(study: optuna.Study) -> dict[str, Any]:
    """The search space as stored in the study's spec (``keys.SPEC``; ``{}`` if absent or unreadable).

    Plots need it to know which parameters are log-scaled and which values were fixed.
    """
    raw = study.user_attrs.get(keys.SPEC)
    try:
        spec = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        logger.warning("study %r: %s is not JSON; ignoring it", study.study_name, keys.SPEC)
        return {}
    space = spec.get("space") if isinstance(spec, dict) else None
    return space if isinstance(space, dict) else {}


def study_question(study: optuna.Study) -> tuple[str, str | None]:
    """(task, metric) of the study's stored spec (``metrics.question``)."""
    raw = study.user_attrs.get(keys.SPEC)
    try:
        spec = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        spec = None
    return question(spec if isinstance(spec, dict) else {})


def load_results_and_finalists(study: str, storage: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``load_results`` and ``load_finalists`` from one read of the study (so they agree).

    Both frames keep the study's task and metric in their ``attrs`` (``"task"``, ``"metric"``).
    """
    loaded = open_study(study, storage)
    trials = loaded.get_trials(deepcopy=False)
    df = trials_frame(trials, study_space(loaded))
    df.attrs["task"], df.attrs["metric"] = study_question(loaded)
    table = finalist_summary(trials, df)
    by_finalist = table.set_index("finalist_of")
    for column in table.columns[len(_FINALIST_HEAD) : table.columns.get_loc("diverged")]:
        df[f"finalist_{column}"] = df["number"].map(by_finalist[column]).astype("float64")
    return df, table


def load_results(study: str, storage: str | None = None) -> pd.DataFrame:
    """One row per trial of ``study``, ordered by trial number (see ``trials_frame``).

    A search trial that became a finalist also carries the mean and sd of its
    fresh runs (``finalist_value_mean`` ...); ``load_finalists`` has them alone.
    """
    return load_results_and_finalists(study, storage)[0]


def load_finalists(study: str, storage: str | None = None) -> pd.DataFrame:
    """The finalist stage's standings: mean ± sd of each finalist's fresh runs, best first."""
    return load_results_and_finalists(study, storage)[1]


def load_curves(study: str, storage: str | None = None) -> pd.DataFrame:
    """Validation loss per epoch, long format: number, epoch, val_loss, state."""
    return curves_frame(open_study(study, storage).get_trials(deepcopy=False))


def score_columns(task: str, metric: str | None) -> list[str]:
    """The frame's score columns a table shows, the study's metric first: ``val_accuracy``, ``val_rmse``..."""
    return [keys.VAL_SCORE.format(m) for m in shown(task, metric)]


def leaderboard(df: pd.DataFrame, top: int = 10) -> pd.DataFrame:
    """The ``top`` finished trials: COMPLETE ones best first, then PRUNED by value (no value last).

    Best by the study's metric (ties by the objective) where it names one, else by the
    objective, as the finalists are chosen; its scores come first (``df.attrs``: the
    study's task and metric, as ``load_results`` sets them). Pruned trials fill the
    table only when fewer than ``top`` trials completed; their value is the loss when
    they were stopped, not a full-training result.
    """
    if top < 1:
        raise SearchError(f"top must be at least 1, got {top=}")
    task, metric = _question(df)
    finished = df[df["state"].isin(FINISHED) & (df[keys.STAGE] == keys.SEARCH)].copy()
    finished["_rank"] = (finished["state"] != "COMPLETE").astype(int)
    order = ["_rank", "value", "number"]
    if metric is not None and keys.VAL_SCORE.format(metric) in finished:
        scores = finished[keys.VAL_SCORE.format(metric)]
        finished["_metric"] = [rank_key(metric, None if pd.isna(v) else float(v)) for v in scores]
        order.insert(1, "_metric")
    finished = finished.sort_values(order, na_position="last", kind="stable")
    shown_columns = ["number", *score_columns(task, metric), *LEADERBOARD_COLUMNS]
    columns = [c for c in shown_columns if c in finished.columns]
    return finished.head(top)[columns].reset_index(drop=True)


def finalist_summary(trials: Sequence[FrozenTrial], df: pd.DataFrame) -> pd.DataFrame:
    """One row per finalist configuration: mean and spread of its fresh runs, best first.

    The runs and the order are ``search.study.finalists.ranked``, the rule that chooses
    the winner: ``finalist_of`` is the search trial whose parameters were re-run; the
    scores' means and sds come first (``val_<metric>_mean``, the study's metric first:
    what the winner is chosen by where the study names a metric); ``value_mean`` is
    the objective's (what chooses otherwise; a run that diverged makes it infinite).
    The search trial's own score is left out: it was chosen for being lucky. ``df`` is
    ``trials_frame(trials)`` with the study's task and metric in ``df.attrs``: the
    finalists' parameters are read from it.
    """
    task, metric = _question(df)
    names = shown(task, metric)
    dtypes = _FINALIST_HEAD | {f"val_{m}_{s}": "float64" for m in names for s in ("mean", "sd")} | _FINALIST_TAIL
    standings = fin.ranked(trials, metric)
    if not standings:
        return pd.DataFrame(columns=list(dtypes))
    rows = []
    for f in standings:
        scores: dict[str, float] = {}
        for m in names:
            values = [v for t in f.runs if (v := fin.trial_score(t, m)) is not None and not math.isnan(v)]
            scores |= {
                f"val_{m}_mean": statistics.fmean(values) if values else math.nan,
                f"val_{m}_sd": fin.spread(values),
            }
        rows.append(
            {
                "finalist_of": f.number,
                "runs": len(f.runs),
                **scores,
                "value_mean": f.mean,
                "value_sd": f.sd,  # of the runs that did not diverge; NaN for fewer than two
                "diverged": sum(t.state != TrialState.COMPLETE for t in f.runs),
            }
        )
    table = pd.DataFrame(rows, columns=list(dtypes)).astype(dtypes)
    shown_params = [c for c in _FINALIST_PARAMS if c in df.columns]
    return table.join(df.set_index("number")[shown_params], on="finalist_of").reset_index(drop=True)


def _fmt(spec: str):
    return lambda v: "-" if v is None or pd.isna(v) else format(v, spec)


# The forms `report` writes: one HTML page with its images inline, or Markdown beside a folder of PNGs.
# Stated here, not in search/readers/report/, so that the CLI's parser lists them without importing matplotlib.
REPORT_FORMATS: tuple[str, ...] = ("html", "md")

# How leaderboard columns are printed (`show` and the report): column -> formatter.
FORMATS = {
    "value": _fmt(".4f"),
    "val_accuracy": _fmt(".4f"),
    "train_loss": _fmt(".4f"),
    "value_mean": _fmt(".4f"),
    "value_sd": _fmt(".4f"),
    **{f"val_{m}{part}": _fmt(".4f") for m in METRICS for part in ("", "_mean", "_sd")},
    "learning_rate": _fmt(".2e"),
    "l2": lambda v: "0" if v == 0 else _fmt(".1e")(v),
    "l1": lambda v: "0" if v == 0 else _fmt(".1e")(v),
    "dropout": _fmt(".2f"),
    "momentum": _fmt(".2f"),
    "plr_sigma": _fmt(".3g"),  # log-uniform over two decades: three figures at any scale
    "periodic": _fmt(".3g"),
    "seconds": _fmt(".2f"),
    "duration_s": _fmt(".2f"),
}


def format_table(df: pd.DataFrame) -> str:
    """A fixed-width text table for a terminal: fixed decimals per column, "-" for missing."""
    if df.empty:
        return "(no trials)"
    formatters = {c: f for c, f in FORMATS.items() if c in df.columns}
    return df.to_string(index=False, formatters=formatters, na_rep="-", float_format=_fmt(".4g"))
