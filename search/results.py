"""Storage -> pandas: one row per trial, one row per (trial, epoch), a leaderboard.

Why a module of its own: the coordinator stores trials in Optuna's layout
(conditional ``units_l*`` widths, an ``l2_on`` switch instead of ``l2 = 0``,
metrics in user attributes). People want a flat table they can sort, filter and
plot, with dtypes that say what a column holds. Everything here reads through a
read-only storage, so it is safe while a run is writing the same file.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from search import finalists as fin
from search.errors import SearchError
from search.spec import SPEC_ATTR
from search.storage import default_url, open_storage
from search.study import no_such_study

logger = logging.getLogger(__name__)

STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
OUTCOMES = ("complete", "pruned", "diverged")
FINISHED = tuple(state.name for state in fin.FINISHED)  # as the state column spells them

# user attr -> dtype; the order is the column order after "value"
_ATTR_DTYPES: dict[str, str] = {
    "val_accuracy": "float64",
    "train_loss": "float64",
    "epochs": "Int64",
    "best_epoch": "Int64",
    "seconds": "float64",
    "host": "string",
    "pid": "Int64",
    "outcome": "category",
    "stop_reason": "string",
    "seed": "Int64",
    "retry_of": "Int64",
    "stage": "category",
    "finalist_of": "Int64",
    "repeat": "Int64",
}
STAGES = ("search", "finalist")
# parameters shown first, in this order; any others follow alphabetically
_PARAM_ORDER = (
    "learning_rate",
    "batch_size",
    "optimizer",
    "momentum",
    "l2",
    "l2_on",
    "l1",
    "l1_on",
    "dropout",
    "activation",
)
# the columns of the finalist table, before the parameters
_FINALIST_DTYPES = {
    "finalist_of": "int64",
    "runs": "int64",
    "value_mean": "float64",
    "value_sd": "float64",
    "val_accuracy_mean": "float64",
    "val_accuracy_sd": "float64",
    "diverged": "int64",
}
# the parameters shown beside a finalist's figures
_FINALIST_PARAMS = ("hidden", "activation", "learning_rate", "batch_size", "l2", "dropout", "momentum")
LEADERBOARD_COLUMNS = (
    "number",
    "value",
    "val_accuracy",
    "epochs",
    "state",
    "activation",
    "hidden",
    "learning_rate",
    "batch_size",
    "l2",
    "dropout",
    "momentum",
    "seconds",
)


def open_study(study: str, storage: str | None = None) -> optuna.Study:
    """Load ``study`` read-only; an unknown name lists the studies that do exist."""
    url = storage if storage is not None else default_url(study)
    rdb = open_storage(url, read_only=True)
    try:
        return optuna.load_study(study_name=study, storage=rdb)
    except KeyError:
        raise no_such_study(rdb, study, repr(url)) from None


def study_space(study: optuna.Study) -> dict[str, Any]:
    """The search space as stored in the study's spec (``SPEC_ATTR``; ``{}`` if absent or unreadable).

    Plots need it to know which parameters are log-scaled and which values were fixed.
    """
    raw = study.user_attrs.get(SPEC_ATTR)
    try:
        spec = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        logger.warning("study %r: %s is not JSON; ignoring it", study.study_name, SPEC_ATTR)
        return {}
    space = spec.get("space") if isinstance(spec, dict) else None
    return space if isinstance(space, dict) else {}


def load_results_and_finalists(study: str, storage: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``load_results`` and ``load_finalists`` from one read of the study (so they agree)."""
    loaded = open_study(study, storage)
    trials = loaded.get_trials(deepcopy=False)
    df = trials_frame(trials, study_space(loaded))
    table = finalist_summary(trials, df)
    by_finalist = table.set_index("finalist_of")
    for column in ("value_mean", "value_sd", "val_accuracy_mean", "val_accuracy_sd"):
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


def _param_dtype(dists: list[Any]) -> str | pd.CategoricalDtype:
    """The pandas dtype for a parameter, from the Optuna distributions it was drawn from."""
    if all(isinstance(d, FloatDistribution) for d in dists):
        return "float64"
    if all(isinstance(d, IntDistribution) for d in dists):
        return "Int64"
    choices = [c for d in dists if isinstance(d, CategoricalDistribution) for c in d.choices]
    if len(choices) and all(isinstance(c, (bool, np.bool_)) for c in choices):
        return "boolean"
    if all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in choices):
        return "Int64"
    if all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in choices):
        return "float64"
    return pd.CategoricalDtype(list(dict.fromkeys(str(c) for c in choices)))


def _typed(column: pd.Series, dtype: str | pd.CategoricalDtype) -> pd.Series:
    """``column`` (objects, None where missing) as ``dtype``, missing kept as NA/NaN."""
    if isinstance(dtype, pd.CategoricalDtype):
        return column.map(lambda v: None if pd.isna(v) else str(v)).astype(dtype)
    if dtype in ("float64", "Int64"):
        return pd.to_numeric(column, errors="coerce").astype(dtype)
    if dtype == "string":
        return column.map(lambda v: None if pd.isna(v) else str(v)).astype("string")
    return column.astype(dtype)


def _fixed_values(space: dict[str, Any]) -> dict[str, Any]:
    """Parameters a preset fixed: stored as a bare value in the spec, never as Optuna params."""
    return {k: v for k, v in space.items() if not isinstance(v, (dict, list)) and k != "units"}


def _hidden(row: pd.Series, units_fixed: Any) -> tuple[Any, str | None]:
    """(depth, "256-128") from the depth and the per-layer widths ``units_l0..``."""
    widths = [row.get(f"units_l{i}") for i in range(64)]
    n_layers = row.get("n_layers")
    if n_layers is None or pd.isna(n_layers):
        n_layers = sum(1 for w in widths if w is not None and not pd.isna(w)) or None
    if n_layers is None:
        return None, None
    widths = [units_fixed if (w is None or pd.isna(w)) else w for w in widths[: int(n_layers)]]
    if any(w is None or pd.isna(w) for w in widths):
        return int(n_layers), None
    return int(n_layers), "-".join(str(int(w)) for w in widths)


def trials_frame(trials: list[FrozenTrial], space: dict[str, Any] | None = None) -> pd.DataFrame:
    """Flatten Optuna trials into one typed row each.

    ``value`` is the objective (NaN when none: FAIL, RUNNING, a diverged prune);
    ``l2``/``l1`` are 0.0 where their ``*_on`` switch was False; ``hidden`` spells
    the layer widths ("256-128"); parameters a preset fixed get their fixed value.
    """
    space = space or {}
    trials = sorted(trials, key=lambda t: t.number)
    rows: list[dict[str, Any]] = []
    dists: dict[str, list[Any]] = {}
    for t in trials:
        row: dict[str, Any] = {"number": t.number, "state": t.state.name, "value": t.value}
        row |= {k: t.user_attrs.get(k) for k in _ATTR_DTYPES}
        row |= {"started": t.datetime_start, "completed": t.datetime_complete}
        row |= t.params
        for name, dist in t.distributions.items():
            dists.setdefault(name, []).append(dist)
        rows.append(row)
    df = pd.DataFrame(rows, columns=["number", "state", "value", *_ATTR_DTYPES, "started", "completed"])
    df = pd.concat(
        [df, pd.DataFrame([{k: r[k] for k in dists if k in r} for r in rows], columns=list(dists), dtype=object)],
        axis=1,
    )
    df["number"] = df["number"].astype("int64")
    df["state"] = pd.Categorical(df["state"], categories=STATES)
    df["value"] = pd.to_numeric(df["value"], errors="coerce").astype("float64")
    for name, dtype in _ATTR_DTYPES.items():
        categories = {"outcome": OUTCOMES, "stage": STAGES}
        df[name] = _typed(df[name], pd.CategoricalDtype(categories[name]) if dtype == "category" else dtype)
    df["stage"] = df["stage"].fillna("search")  # studies from before the finalist stage
    for name in ("started", "completed"):
        df[name] = pd.to_datetime(df[name])
    df["duration_s"] = (df["completed"] - df["started"]).dt.total_seconds()

    for name, dist_list in dists.items():
        df[name] = _typed(df[name], _param_dtype(dist_list))
    for name, value in _fixed_values(space).items():
        if name not in df:
            df[name] = pd.Series([value] * len(df), dtype="category" if isinstance(value, str) else None)
    if isinstance(space.get("activation"), list) and "activation" in df:
        df["activation"] = pd.Categorical(df["activation"].astype(object), categories=space["activation"])
    for switch in [c for c in df.columns if c.endswith("_on")]:
        base = switch[: -len("_on")]
        off = df[switch].eq(False).fillna(False).to_numpy(dtype=bool)
        if base not in df:
            df[base] = np.nan
        df.loc[off, base] = 0.0

    units_fixed = space.get("units") if not isinstance(space.get("units"), (dict, list)) else None
    depth_hidden = [_hidden(row, units_fixed) for _, row in df.iterrows()]
    df["hidden"] = pd.Series([h for _, h in depth_hidden], index=df.index, dtype="string")
    df["n_layers"] = pd.Series([d for d, _ in depth_hidden], index=df.index, dtype="Int64")

    fixed_cols = ["number", "state", "value", *_ATTR_DTYPES, "started", "completed", "duration_s"]
    units = sorted((c for c in df.columns if c.startswith("units_l")), key=lambda c: int(c[len("units_l") :]))
    params = [c for c in df.columns if c not in fixed_cols and c not in units and c not in ("hidden", "n_layers")]
    params.sort(key=lambda c: (_PARAM_ORDER.index(c) if c in _PARAM_ORDER else len(_PARAM_ORDER), c))
    return df[fixed_cols + params + units + ["hidden", "n_layers"]].reset_index(drop=True)


def curves_frame(trials: list[FrozenTrial]) -> pd.DataFrame:
    """Long format (number, epoch, val_loss, state); a diverged epoch keeps its NaN."""
    rows = [
        (t.number, int(step), float(v) if v is not None else math.nan, t.state.name)
        for t in sorted(trials, key=lambda t: t.number)
        for step, v in sorted(t.intermediate_values.items())
    ]
    df = pd.DataFrame(rows, columns=["number", "epoch", "val_loss", "state"])
    df = df.astype({"number": "int64", "epoch": "int64", "val_loss": "float64"})
    df["state"] = pd.Categorical(df["state"], categories=STATES)
    return df


def leaderboard(df: pd.DataFrame, top: int = 10) -> pd.DataFrame:
    """The ``top`` finished trials: COMPLETE by value, then PRUNED by value (no value last).

    Pruned trials fill the table only when fewer than ``top`` trials completed;
    their value is the loss when they were stopped, not a full-training result.
    """
    if top < 1:
        raise SearchError(f"top must be at least 1, got {top=}")
    finished = df[df["state"].isin(FINISHED) & (df["stage"] == "search")].copy()
    finished["_rank"] = (finished["state"] != "COMPLETE").astype(int)
    finished = finished.sort_values(["_rank", "value", "number"], na_position="last", kind="stable")
    columns = [c for c in LEADERBOARD_COLUMNS if c in finished.columns]
    return finished.head(top)[columns].reset_index(drop=True)


def finalist_summary(trials: Sequence[FrozenTrial], df: pd.DataFrame) -> pd.DataFrame:
    """One row per finalist configuration: mean and spread of its fresh runs, best mean first.

    The runs and the order are ``search.finalists.standings``, the rule that chooses
    the winner: ``finalist_of`` is the search trial whose parameters were re-run;
    ``value_mean`` is what the winner is chosen by (a run that diverged makes it
    infinite). The search trial's own score is left out: it was chosen for being
    lucky. ``df`` is ``trials_frame(trials)``: the runs' accuracies and the
    finalists' parameters are read from it.
    """
    # the search trials named by their finished fresh runs
    numbers = {t.user_attrs.get(fin.FINALIST_OF) for t in trials if fin.is_finalist_run(t) and t.state in fin.FINISHED}
    standings = fin.standings(trials, sorted(int(n) for n in numbers if n is not None))
    if not standings:
        return pd.DataFrame(columns=list(_FINALIST_DTYPES))
    accuracy = df.set_index("number")["val_accuracy"]
    rows = []
    for f in standings:
        run_accuracy = accuracy.loc[[t.number for t in f.runs]]
        rows.append(
            {
                "finalist_of": f.number,
                "runs": len(f.runs),
                "value_mean": f.mean,
                # pandas' sd of all runs: NaN for a single run or beside a diverged (infinite) one,
                # where ``Finalist.sd`` (for ``best``) gives 0.0 or the sd of the finite runs
                "value_sd": pd.Series(f.values, dtype="float64").std(),
                "val_accuracy_mean": run_accuracy.mean(),
                "val_accuracy_sd": run_accuracy.std(),
                "diverged": sum(t.state != TrialState.COMPLETE for t in f.runs),
            }
        )
    table = pd.DataFrame(rows, columns=list(_FINALIST_DTYPES)).astype(_FINALIST_DTYPES)
    shown = [c for c in _FINALIST_PARAMS if c in df.columns]
    return table.join(df.set_index("number")[shown], on="finalist_of").reset_index(drop=True)


def _fmt(spec: str):
    return lambda v: "-" if v is None or pd.isna(v) else format(v, spec)


# How leaderboard columns are printed (`show` and the report): column -> formatter.
FORMATS = {
    "value": _fmt(".4f"),
    "val_accuracy": _fmt(".4f"),
    "train_loss": _fmt(".4f"),
    "value_mean": _fmt(".4f"),
    "value_sd": _fmt(".4f"),
    "val_accuracy_mean": _fmt(".4f"),
    "val_accuracy_sd": _fmt(".4f"),
    "learning_rate": _fmt(".2e"),
    "l2": lambda v: "0" if v == 0 else _fmt(".1e")(v),
    "l1": lambda v: "0" if v == 0 else _fmt(".1e")(v),
    "dropout": _fmt(".2f"),
    "momentum": _fmt(".2f"),
    "seconds": _fmt(".2f"),
    "duration_s": _fmt(".2f"),
}


def format_table(df: pd.DataFrame) -> str:
    """A fixed-width text table for a terminal: fixed decimals per column, "-" for missing."""
    if df.empty:
        return "(no trials)"
    formatters = {c: f for c, f in FORMATS.items() if c in df.columns}
    return df.to_string(index=False, formatters=formatters, na_rep="-", float_format=_fmt(".4g"))
