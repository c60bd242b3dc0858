"""Wall time, CPU time and how busy the workers were, from the trials' own timestamps.

Why from the trials: a study may have been run in several sittings (``resume``)
by different worker processes, and nothing but the trials records them. A
trial's bar on a worker ends when the coordinator recorded it and is as long as
the worker's own training time (``seconds``), which excludes queueing and
start-up; a worker's busy share is its training time over its life (first
trial start to last trial end), so gaps between sittings do not count against it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True, slots=True)
class Usage:
    wall_seconds: float        # first trial start to last trial end
    active_seconds: float      # the same with the gaps when no trial was open taken out
    cpu_seconds: float         # training seconds summed over trials (one core per worker)
    workers: int               # distinct (host, pid) that trained a trial
    busy: float                # training seconds / summed worker lifetimes (NaN if unknown)


def worker_spans(df: pd.DataFrame) -> pd.DataFrame:
    """One row per trial that ran on a known worker: worker label, start, end (seconds from t0)."""
    ran = df[df["pid"].notna() & df["completed"].notna() & df["seconds"].notna()]
    if ran.empty:
        return pd.DataFrame(columns=["worker", "start", "end", "outcome", "number"])
    t0 = df["started"].min()
    end = (ran["completed"] - t0).dt.total_seconds().to_numpy()
    host = ran["host"].astype(object).fillna("?").astype(str).str.split(".").str[0]
    return pd.DataFrame({
        "worker": (host + ":" + ran["pid"].astype(str)).to_numpy(),
        "start": np.maximum(end - ran["seconds"].to_numpy(dtype=float), 0.0),
        "end": end,
        "outcome": ran["outcome"].astype(object).fillna(ran["state"].astype(str).str.lower()).to_numpy(),
        "number": ran["number"].to_numpy(),
    })


def _union_length(starts: np.ndarray, ends: np.ndarray) -> float:
    total, reach = 0.0, -np.inf
    for s, e in sorted(zip(starts, ends)):
        if e <= reach:
            continue
        total += e - max(s, reach)
        reach = e
    return total


def usage(df: pd.DataFrame) -> Usage:
    timed = df[df["started"].notna() & df["completed"].notna()]
    if timed.empty:
        return Usage(0.0, 0.0, 0.0, 0, float("nan"))
    t0 = timed["started"].min()
    starts = (timed["started"] - t0).dt.total_seconds().to_numpy()
    ends = (timed["completed"] - t0).dt.total_seconds().to_numpy()
    spans = worker_spans(df)
    lifetimes = spans.groupby("worker").agg(start=("start", "min"), end=("end", "max"))
    life = float((lifetimes["end"] - lifetimes["start"]).sum())
    cpu = float(np.nansum(df["seconds"].to_numpy(dtype=float, na_value=np.nan)))
    trained = float((spans["end"] - spans["start"]).sum())
    return Usage(wall_seconds=float(ends.max()), active_seconds=_union_length(starts, ends),
                 cpu_seconds=cpu, workers=len(lifetimes), busy=trained / life if life > 0 else float("nan"))
