"""A table's date columns as numbers: when, the time of day, the day of the week, the time of year.

Why: a column of dates or times (an order's date, a stop's timestamp) was read as
text, so it was dropped as an identifier (more than ``MAX_CATEGORIES`` distinct
values) or one-hot encoded as categories that a later date never matches. On
``MplsStops`` (a timestamp to the second) these four numbers raised the boosted
trees' 3-fold accuracy on the training rows from 0.809 to 0.818 (2026-12-08).

A column is a date column when its type is a date, or when every non-missing cell
of the training rows is an ISO 8601 date or date-time (``2017-01-31``,
``2017-01-31 06:03:07``, ``2017-01-31T06:03:07Z``, with or without an offset):
the one form that reads the same everywhere (``01/02/2017`` is January or
February depending on who wrote it, so it stays text). A time without an offset
is read as UTC. Each date column becomes the numbers of ``PARTS``, named
``"<column> (<part>)"``, and from then on is numbers like any other: a missing
or unreadable cell is missing, imputed with the training median.

The parts are plain arithmetic on the seconds since 1970-01-01 UTC (``parts``),
so that an exported graph computes them with the same operations from that one
number (``search/readers/export.py``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import DatasetError
from .table import file_lines

__all__ = ["PARTS", "date_columns", "part_names", "parts", "seconds", "with_parts"]

# what a date becomes: days since 1970-01-01 (the trend), the hour of its day (0-24), its day
# of the week (Monday 0), and the fraction of a mean Gregorian year since 1 January 1970
PARTS: tuple[str, ...] = ("days", "hour", "weekday", "time of year")
DAY = 86400.0
WEEK_OFFSET = 3.0  # 1970-01-01 was a Thursday
YEAR = 365.2425  # days in a mean Gregorian year
_FIRST = 100  # cells read first: text that is not dates is told from them, without reading the whole column


def part_names(column: str) -> list[str]:
    return [f"{column} ({part})" for part in PARTS]


def _read(col: pd.Series) -> pd.Series:
    """The column's cells as UTC times; NaT where a cell is missing or not an ISO 8601 date."""
    return pd.to_datetime(col, format="ISO8601", utc=True, errors="coerce")


def date_columns(frame: pd.DataFrame) -> list[str]:
    """The columns of a training frame read as dates: a date type, or text whose every present cell is ISO 8601.

    A column whose parts' names are already columns of the frame stays as it is.
    """
    names = set(frame.columns)
    out = []
    for name in frame.columns:
        col = frame[name]
        if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col) or names & set(part_names(name)):
            continue
        present = col[col.notna()]
        if pd.api.types.is_datetime64_any_dtype(col):
            out.append(name)
        elif len(present) and _read(present.iloc[:_FIRST]).notna().all() and _read(present).notna().all():
            out.append(name)
    return out


def seconds(col: pd.Series, numbers: str = "error") -> np.ndarray:
    """Seconds since 1970-01-01 UTC, NaN for a missing cell; a cell that is not a date refused, or missing.

    ``numbers``: as ``TableEncoding.transform``'s (``predict --non-numeric``).
    """
    times = _read(col)
    bad = (col.notna() & times.isna()).to_numpy()
    if bad.any() and numbers == "error":
        rows = np.flatnonzero(bad)
        shown = ", ".join(repr(str(v)) for v in pd.unique(col.to_numpy()[rows])[:3])
        raise DatasetError(
            f"column {col.name!r} holds text where the study has dates: {shown} on lines {file_lines(rows)}; "
            "correct it, or pass --non-numeric missing to read it as a missing value"
        )
    epoch = pd.Timestamp(0, tz="UTC")
    return (times - epoch).dt.total_seconds().to_numpy(dtype=np.float64, na_value=np.nan)


def _mod(x: np.ndarray, m: float) -> np.ndarray:
    """``x mod m`` in [0, m), as the exported graph computes it (``x - floor(x / m) * m``)."""
    return x - np.floor(x / m) * m


def parts(s: np.ndarray) -> np.ndarray:
    """(n, len(PARTS)) float64 of seconds ``s`` since 1970-01-01 UTC; NaN rows stay NaN."""
    days = s / DAY
    hour = _mod(s, DAY) / 3600.0
    weekday = _mod(np.floor(days) + WEEK_OFFSET, 7.0)
    year = _mod(days, YEAR) / YEAR
    return np.stack([days, hour, weekday, year], axis=1)


def with_parts(frame: pd.DataFrame, dates: list[str], numbers: str = "error") -> pd.DataFrame:
    """``frame`` with each of ``dates`` replaced by its parts' columns (at the end, in order)."""
    if not dates:
        return frame
    out = frame.drop(columns=dates)  # copy-on-write: the other columns' data is shared, not copied
    for name in dates:
        for part, values in zip(part_names(name), parts(seconds(frame[name], numbers)).T):
            out[part] = values
    return out
