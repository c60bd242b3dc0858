"""Optuna trials -> typed pandas frames: one row per trial, one row per (trial, epoch).

Why: the coordinator stores trials in Optuna's layout (conditional ``units_l*``
widths, an ``l2_on`` switch instead of ``l2 = 0``, metrics in user attributes).
People want a flat table they can sort, filter and plot, with dtypes that say
what a column holds. These functions read nothing themselves: ``search.results``
loads the trials (read-only) and the report reuses one read.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial

from search.study import keys
from search.study.metrics import METRICS
from search.study.space import WIDTH_PARAM

STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
OUTCOMES = ("complete", "pruned", "diverged", keys.NOT_STARTED)
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
    widths = [row.get(f"{WIDTH_PARAM}{i}") for i in range(64)]
    n_layers = row.get("n_layers")
    if n_layers is None or pd.isna(n_layers):
        n_layers = sum(1 for w in widths if w is not None and not pd.isna(w)) or None
    if n_layers is None:
        return None, None
    widths = [units_fixed if (w is None or pd.isna(w)) else w for w in widths[: int(n_layers)]]
    if any(w is None or pd.isna(w) for w in widths):
        return int(n_layers), None
    return int(n_layers), "-".join(str(int(w)) for w in widths)


def never_started(df: pd.DataFrame) -> pd.Series:
    """Rows of search trials the search's time could not fit: stored as FAIL, though nothing failed."""
    return df["outcome"].astype(object) == keys.NOT_STARTED


def is_layer_param(name: str) -> bool:
    """Whether a trial's parameter spells its layers ("n_layers", "units_l0"...), which ``hidden`` states."""
    return name == "n_layers" or name.startswith(WIDTH_PARAM)


def hidden_widths(hidden: Any) -> tuple[int, ...] | None:
    """A ``hidden`` cell ("256-128", "46": the widths, one per layer) as widths; None where unknown.

    A bare "46" is one layer's width, not a count of layers.
    """
    if hidden is None or pd.isna(hidden):
        return None
    return tuple(int(w) for w in str(hidden).split("-"))


def layers_text(hidden: Any) -> str:
    """A ``hidden`` cell for people: "2 layers of 256, 128 units"."""
    widths = hidden_widths(hidden)
    if widths is None:
        return "-"
    return f"{len(widths)} layer{'s' if len(widths) > 1 else ''} of {', '.join(map(str, widths))} units"


def trials_frame(trials: list[FrozenTrial], space: dict[str, Any] | None = None) -> pd.DataFrame:
    """Flatten Optuna trials into one typed row each.

    ``value`` is the objective (NaN when none: FAIL, RUNNING, a diverged prune);
    ``val_<metric>`` columns (``val_rmse``, ``val_balanced_accuracy``...) follow it where the
    trials hold scores beyond ``val_accuracy``;
    ``l2``/``l1`` are 0.0 where their ``*_on`` switch was False; ``hidden`` spells
    the layer widths ("256-128"); parameters a preset fixed get their fixed value.
    """
    space = space or {}
    trials = sorted(trials, key=lambda t: t.number)
    # the validation scores beyond accuracy that the trials hold (a metric's, or regression's RMSE, MAE, R²)
    scored = [keys.VAL_SCORE.format(m) for m in METRICS if m != "accuracy"]
    scores = [name for name in scored if any(name in t.user_attrs for t in trials)]
    rows: list[dict[str, Any]] = []
    dists: dict[str, list[Any]] = {}
    for t in trials:
        row: dict[str, Any] = {"number": t.number, "state": t.state.name, "value": t.value}
        row |= {k: t.user_attrs.get(k) for k in (*scores, *_ATTR_DTYPES)}
        row |= {"started": t.datetime_start, "completed": t.datetime_complete}
        row |= t.params
        for name, dist in t.distributions.items():
            dists.setdefault(name, []).append(dist)
        rows.append(row)
    df = pd.DataFrame(rows, columns=["number", "state", "value", *scores, *_ATTR_DTYPES, "started", "completed"])
    df = pd.concat(
        [df, pd.DataFrame([{k: r[k] for k in dists if k in r} for r in rows], columns=list(dists), dtype=object)],
        axis=1,
    )
    df["number"] = df["number"].astype("int64")
    df["state"] = pd.Categorical(df["state"], categories=STATES)
    for name in ("value", *scores):
        df[name] = pd.to_numeric(df[name], errors="coerce").astype("float64")
    for name, dtype in _ATTR_DTYPES.items():
        categories = {"outcome": OUTCOMES, keys.STAGE: keys.STAGES}
        df[name] = _typed(df[name], pd.CategoricalDtype(categories[name]) if dtype == "category" else dtype)
    df[keys.STAGE] = df[keys.STAGE].fillna(keys.SEARCH)  # studies from before the finalist stage
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

    fixed_cols = ["number", "state", "value", *scores, *_ATTR_DTYPES, "started", "completed", "duration_s"]
    units = [c for c in df.columns if c.startswith(WIDTH_PARAM)]
    units.sort(key=lambda c: int(c[len(WIDTH_PARAM) :]))
    params = [c for c in df.columns if c not in fixed_cols and not is_layer_param(c) and c != "hidden"]
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
