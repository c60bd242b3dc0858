"""Tables: CSV or TSV (gzipped too), read with pandas, one row per sample.

The label column is ``target`` (default: the last column). Every other column
is a feature: numbers as they are, text as categories (``encoding`` one-hot
encodes them). A column of numbers with one odd token standing for "unknown"
(``?``, ``-``, ``n/a``...) is read as numbers with that token missing, as a
person reading the file would. Cells that are empty are missing values; a
missing label, an infinite number, or (with ``missing="refuse"``) any missing
value is refused, naming the file's lines and columns.
"""

from __future__ import annotations

import csv
import gzip
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DatasetError
from .rawdata import RawData, RawPart

__all__ = ["read_table"]

_SHOWN = 5  # lines named in a message before "..."
SEPARATORS = (",", "\t", ";", "|")  # the first wins a tie
_COMMA_DECIMAL = re.compile(r"^[-+]?\d+,\d+([eE][-+]?\d+)?$")


def _lines(index: pd.Index | np.ndarray) -> str:
    """Row positions as the file's line numbers (the header is line 1)."""
    lines = [str(int(i) + 2) for i in index[:_SHOWN]]
    return ", ".join(lines) + (f" and {len(index) - _SHOWN} more" if len(index) > _SHOWN else "")


def _dialect(path: Path) -> tuple[str, str]:
    """(separator, decimal mark) from the first lines: a spreadsheet in a comma-decimal locale writes ``1,5;2,25``."""
    name = path.name.lower().removesuffix(".gz")
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            head = [fh.readline() for _ in range(6)]
    except (OSError, EOFError):
        return ",", "."  # pandas says what is wrong with it
    sep = "\t" if name.endswith((".tsv", ".tab")) else max(SEPARATORS, key=head[0].count)
    cells = [c.strip().strip('"') for line in head[1:] for c in line.split(sep)]
    comma_decimals = sep != "," and any(_COMMA_DECIMAL.match(c) for c in cells)
    return sep, "," if comma_decimals else "."


def _read_frame(path: Path) -> pd.DataFrame:
    try:
        sep, decimal = _dialect(path)
        frame = pd.read_csv(path, sep=sep, decimal=decimal, skipinitialspace=True, low_memory=False)
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except pd.errors.EmptyDataError:
        raise DatasetError(f"{path}: the file is empty") from None
    except pd.errors.ParserError as exc:
        raise DatasetError(f"{path}: not a regular table: {str(exc).strip().splitlines()[-1]}") from None
    except (UnicodeDecodeError, csv.Error, OSError, EOFError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot be read as a table: {exc}") from None
    if frame.shape[1] < 2:
        raise DatasetError(
            f"{path}: found {frame.shape[1]} column; a table needs a label column and at least "
            "one feature (separators tried: comma, tab, semicolon, bar)"
        )
    dupes = frame.columns[frame.columns.duplicated()].tolist()
    if dupes:
        raise DatasetError(f"{path}: column names must be unique; repeated: {', '.join(map(str, dupes))}")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _numbers_with_one_unknown_token(col: pd.Series) -> tuple[pd.Series, str] | None:
    """A text column of numbers save one token (``?``): as numbers, the token missing."""
    values = col.dropna()
    numeric = pd.to_numeric(values, errors="coerce")
    odd = values[numeric.isna()].astype(str).unique()
    if len(odd) == 1 and numeric.notna().any():
        return pd.to_numeric(col.where(col.astype(str) != odd[0]), errors="coerce"), str(odd[0])
    return None


def _is_row_index(col: pd.Series) -> bool:
    """A column holding 0..n-1 (or 1..n) in order: the index ``DataFrame.to_csv`` writes unless told not to."""
    if not pd.api.types.is_integer_dtype(col) or col.empty:
        return False
    first = int(col.iloc[0])
    return first in (0, 1) and bool((col.to_numpy() == np.arange(first, first + len(col))).all())


def _tidy_columns(frame: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, list[str]]:
    notes = []
    for name in [c for c in frame.columns if _is_row_index(frame[c])]:
        frame = frame.drop(columns=name)  # a row number predicts nothing, and would leak the row order
        notes.append(f"column {name!r} dropped: it numbers the rows")
    for name in frame.columns:
        col = frame[name]
        if pd.api.types.is_bool_dtype(col):
            frame[name] = col.astype(np.float64)
        elif not pd.api.types.is_numeric_dtype(col):
            found = _numbers_with_one_unknown_token(col)
            if found is not None:
                frame[name], token = found
                notes.append(f"column {name!r}: {token!r} read as a missing number")
            else:  # text: categories, with missing cells kept as NaN
                frame[name] = col.astype(object).where(col.notna(), np.nan)
    numeric = frame.select_dtypes("floating")  # only floats can hold an infinity
    inf = np.isinf(numeric.to_numpy(dtype=np.float64, na_value=np.nan))
    if inf.any():
        cols = [str(c) for c, n in zip(numeric.columns, inf.sum(axis=0)) if n]
        raise DatasetError(
            f"{path}: {int(inf.sum())} infinite values in column(s) {', '.join(map(repr, cols))} "
            f"(lines {_lines(np.flatnonzero(inf.any(axis=1)))}); a feature must be finite"
        )
    return frame, notes


def _refuse_missing(frame: pd.DataFrame, path: Path) -> None:
    missing = frame.isna()
    if missing.to_numpy().any():
        cols = missing.sum()
        detail = "; ".join(
            f"column {c!r}: lines {_lines(np.flatnonzero(missing[c].to_numpy()))}" for c in cols[cols > 0].index
        )
        raise DatasetError(
            f"{path}: {int(cols.sum())} missing values ({detail}); fill them in, or leave --missing at impute"
        )


def read_table(path: str | Path, target: str | None = None, missing: str = "impute", labelled: bool = True) -> RawData:
    """A table's rows as a DataFrame of features and an array of labels.

    ``labelled=False`` (an input to predict): the label column may be absent.
    """
    p = Path(path)
    frame = _read_frame(p)
    name = target if target is not None else str(frame.columns[-1])
    labels = None
    if name in frame.columns:
        y = frame.pop(name)
        if y.isna().any():
            raise DatasetError(
                f"{p}: the label column {name!r} is empty on lines {_lines(np.flatnonzero(y.isna().to_numpy()))}"
            )
        labels = y.to_numpy()
        if labels.dtype.kind == "f" and (labels == np.round(labels)).all():
            labels = labels.astype(np.int64)
        elif labels.dtype.kind not in "biuf":
            labels = labels.astype(str)
    elif labelled:
        raise DatasetError(
            f"{p}: no column {name!r}; its columns are {', '.join(map(repr, frame.columns))}"
            + ("" if target else " (pass the label column with --target)")
        )
    frame, notes = _tidy_columns(frame, p)
    if missing == "refuse":
        _refuse_missing(frame, p)
    return RawData({"train": RawPart(frame, labels)}, "table", notes=tuple(notes), target=name)
