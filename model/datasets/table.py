"""Tables: CSV or TSV (gzipped too), read with pandas, one row per sample.

The label column is ``target`` (default: the last column). Every other column
is a feature: numbers as they are, text as categories (``encoding`` one-hot
encodes them). A column of numbers with one odd token standing for "unknown"
(``?``, ``-``, ``n/a``...) is read as numbers with that token missing, as a
person reading the file would (and ``predict`` reads that token, and only
that one, the same way). Cells that are empty are missing values; a missing
label, an infinite number, or (with ``missing="refuse"``) any missing value is
refused, naming the file's lines and columns. The bytes become text in
``textfile`` (gzip, encodings); parsing them is checked against the memory
ceiling first, from the lines, cells and text columns counted in the bytes.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DatasetError
from .intake import Intake, shown
from .rawdata import RawData, RawPart
from .textfile import PARSE_BYTES_PER_BYTE, Text, decode_text, text_columns

__all__ = ["file_lines", "read_table"]

_SHOWN = 5  # lines named in a message before "..."
SEPARATORS = (",", "\t", ";", "|")  # the first wins a tie
_COMMA_DECIMAL = re.compile(r"^[-+]?\d+,\d+([eE][-+]?\d+)?$")
# Bytes held while pandas parses, measured (tests/model/test_memory_ceiling.py) and rounded up:
# per token of the text (the tokenizer's pointers and offsets), per cell of the frame (a
# float64, built twice while the frame is assembled), and per cell of a column holding text
# (a pointer and, for distinct values, a Python string and its hash entry).
_PER_TOKEN = 24
_PER_CELL = 16
_PER_TEXT_CELL = 96
# Bytes of UTF-8 that pandas' parser holds per byte of text, by encoding (it re-encodes others).
_UTF8_BYTES = {"utf-8": 1.0, "utf-8-sig": 1.0, "cp1252": 3.0, "utf-16": 1.5, "utf-32": 1.0}


def file_lines(index: pd.Index | np.ndarray) -> str:
    """Row positions as the file's line numbers (the header is line 1)."""
    lines = [str(int(i) + 2) for i in index[:_SHOWN]]
    return ", ".join(lines) + (f" and {len(index) - _SHOWN} more" if len(index) > _SHOWN else "")


def _dialect(path: Path, text: Text) -> tuple[str, str]:
    """(separator, decimal mark) from the first lines: a spreadsheet in a comma-decimal locale writes ``1,5;2,25``."""
    head = text.head(6) or [""]
    name = path.name.lower().removesuffix(".gz")
    sep = "\t" if name.endswith((".tsv", ".tab")) else max(SEPARATORS, key=head[0].count)
    cells = [c.strip().strip('"') for line in head[1:] for c in line.split(sep)]
    comma_decimals = sep != "," and any(_COMMA_DECIMAL.match(c) for c in cells)
    return sep, "," if comma_decimals else "."


def _csv(text: Text, sep: str, decimal: str, **options: object) -> pd.DataFrame:
    return pd.read_csv(
        io.BytesIO(text.data), sep=sep, decimal=decimal, encoding=text.encoding, skipinitialspace=True, **options
    )


def _parse_error(path: Path, exc: Exception) -> DatasetError:
    if isinstance(exc, pd.errors.EmptyDataError):
        return DatasetError(f"{shown(path)}: the file is empty")
    if isinstance(exc, pd.errors.ParserError):
        return DatasetError(f"{shown(path)}: not a regular table: {str(exc).strip().splitlines()[-1]}")
    return DatasetError(f"{shown(path)}: cannot be read as a table: {exc}")


_PARSE_ERRORS = (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, csv.Error, ValueError)


def _header(path: Path, text: Text, sep: str, decimal: str) -> list[str]:
    """The column names as the file writes them: pandas would rename a repeated one (``alcohol.1``)."""
    try:
        names = _csv(text, sep, decimal, header=None, nrows=1, dtype=str, keep_default_na=False)
    except _PARSE_ERRORS as exc:
        raise _parse_error(path, exc) from None
    header = [str(n) for n in names.iloc[0].tolist()] if len(names) else []
    if len(header) < 2:
        raise DatasetError(
            f"{shown(path)}: found {len(header)} column; a table needs a label column and at least "
            "one feature (separators tried: comma, tab, semicolon, bar)"
        )
    seen: set[str] = set()
    dupes = []
    for n in header:
        if n and n in seen:
            dupes.append(n)
        seen.add(n)
    if dupes:
        raise DatasetError(f"{shown(path)}: column names must be unique; repeated: {', '.join(map(repr, dupes))}")
    return header


def _parse_need(text: Text, n_columns: int, sep: str, decimal: str) -> float:
    """Bytes held while pandas parses ``text``: an upper bound from its lines, tokens and text columns."""
    lines = text.data.count(b"\n") + 1
    tokens = text.data.count(sep.encode()) + lines
    cells = lines * n_columns
    text_cells = lines * text_columns(text, sep, decimal, n_columns)
    held = len(text.data) * (2 + _UTF8_BYTES.get(text.encoding, 3.0))  # the file's bytes, the text, the parser's
    return held + _PER_TOKEN * tokens + _PER_CELL * cells + _PER_TEXT_CELL * text_cells


def _read_frame(path: Path, intake: Intake) -> tuple[pd.DataFrame, list[str]]:
    """The table as pandas parses it, and what a person should know about how it was read."""
    text = decode_text(intake.read(path, share=1 / PARSE_BYTES_PER_BYTE), path, intake.budget)
    sep, decimal = _dialect(path, text)
    header = _header(path, text, sep, decimal)
    need = _parse_need(text, len(header), sep, decimal)
    intake.budget.check(need, "parsing it", "use a sample of the rows, or a machine with more memory")
    try:
        frame = _csv(text, sep, decimal, low_memory=False)
    except _PARSE_ERRORS as exc:
        raise _parse_error(path, exc) from None
    if frame.empty:
        raise DatasetError(f"{shown(path)}: a header line but no rows of data")
    frame.columns = [str(c) for c in frame.columns]
    return frame, [text.note] if text.note else []


def _numbers_with_one_unknown_token(col: pd.Series) -> tuple[pd.Series, str] | None:
    """A text column of numbers save one token (``?``): as numbers, the token missing."""
    values = col.dropna()
    numeric = pd.to_numeric(values, errors="coerce")
    odd = values[numeric.isna()].astype(str).unique()
    if len(odd) == 1 and numeric.notna().any():
        return pd.to_numeric(col.where(col.astype(str) != odd[0]), errors="coerce"), str(odd[0])
    return None


def _is_row_index(col: pd.Series) -> bool:
    """A column of integers that numbers the rows: the index ``DataFrame.to_csv`` (and R's ``write.csv``)
    writes unless told not to.

    Either 0..n-1 (or 1..n) in order, whatever its name, or distinct under an empty header
    (pandas reads it as "Unnamed: 0"): the index of a table that was shuffled or split first, as
    a user's training file usually is.
    """
    if not pd.api.types.is_integer_dtype(col) or col.empty:
        return False
    if str(col.name).startswith("Unnamed: ") and col.is_unique:
        return True
    first = int(col.iloc[0])
    return first in (0, 1) and bool((col.to_numpy() == np.arange(first, first + len(col))).all())


def _refuse_infinite(frame: pd.DataFrame, path: Path) -> None:
    counts, rows = {}, np.zeros(len(frame), dtype=bool)
    for name in frame.select_dtypes("floating").columns:  # only floats can hold an infinity
        inf = np.isinf(frame[name].to_numpy(dtype=np.float64, na_value=np.nan))
        if inf.any():
            counts[name], rows = int(inf.sum()), rows | inf
    if counts:
        raise DatasetError(
            f"{shown(path)}: {sum(counts.values())} infinite values in column(s) {', '.join(map(repr, counts))} "
            f"(lines {file_lines(np.flatnonzero(rows))}); a feature must be finite"
        )


def _tidy_columns(frame: pd.DataFrame, path: Path, labelled: bool) -> tuple[pd.DataFrame, list[str], dict[str, str]]:
    """(features, notes, tokens read as a missing number by column) of a training file.

    An input to predict (``labelled=False``) is left as it is written: the study's encoding
    knows which columns are numbers and which token it read as missing.
    """
    notes, tokens = [], {}
    for name in [c for c in frame.columns if labelled and _is_row_index(frame[c])]:
        frame = frame.drop(columns=name)  # a row number predicts nothing, and would leak the row order
        notes.append(f"column {name!r} dropped: it numbers the rows")
    for name in frame.columns:
        col = frame[name]
        if pd.api.types.is_bool_dtype(col):
            frame[name] = col.astype(np.float64)
        elif not pd.api.types.is_numeric_dtype(col):
            found = _numbers_with_one_unknown_token(col) if labelled else None
            if found is not None:
                frame[name], tokens[name] = found
                notes.append(f"column {name!r}: {tokens[name]!r} read as a missing number")
            else:  # text: categories, with missing cells kept as NaN
                frame[name] = col.astype(object).where(col.notna(), np.nan)
    _refuse_infinite(frame, path)
    return frame, notes, tokens


def _refuse_missing(frame: pd.DataFrame, path: Path) -> None:
    missing = frame.isna()
    if missing.to_numpy().any():
        cols = missing.sum()
        detail = "; ".join(
            f"column {c!r}: lines {file_lines(np.flatnonzero(missing[c].to_numpy()))}" for c in cols[cols > 0].index
        )
        raise DatasetError(
            f"{shown(path)}: {int(cols.sum())} missing values ({detail}); fill them in, or leave --missing at impute"
        )


def _labels(y: pd.Series, name: str, path: Path) -> np.ndarray:
    """(n,) labels: whole numbers as int64, other numbers as they are, anything else as text."""
    if y.isna().any():
        empty = file_lines(np.flatnonzero(y.isna().to_numpy()))
        raise DatasetError(f"{shown(path)}: the label column {name!r} is empty on lines {empty}")
    labels = y.to_numpy()
    if labels.dtype.kind == "f" and (np.abs(labels) < 2**53).all() and (labels == np.round(labels)).all():
        return labels.astype(np.int64)
    if labels.dtype.kind in "biuf":
        return labels
    return np.asarray(y.astype(str).tolist(), dtype=object)  # Python strings: a long one costs its length only


def read_table(
    path: str | Path,
    target: str | None = None,
    missing: str = "impute",
    labelled: bool = True,
    intake: Intake | None = None,
) -> RawData:
    """A table's rows as a DataFrame of features and an array of labels.

    ``labelled=False`` (an input to predict): the label column may be absent.
    """
    p = Path(path)
    frame, notes = _read_frame(p, intake if intake is not None else Intake(p))
    name = target if target is not None else str(frame.columns[-1])
    labels = None
    if name in frame.columns:
        labels = _labels(frame.pop(name), name, p)
    elif labelled:
        raise DatasetError(
            f"{shown(p)}: no column {name!r}; its columns are {', '.join(map(repr, frame.columns))}"
            + ("" if target else " (pass the label column with --target)")
        )
    frame, more, tokens = _tidy_columns(frame, p, labelled)
    if labelled and frame.shape[1] == 0:
        raise DatasetError(
            f"{shown(p)}: no feature column beside the label {name!r}" + (f" ({'; '.join(more)})" if more else "")
        )
    if missing == "refuse":
        _refuse_missing(frame, p)
    return RawData({"train": RawPart(frame, labels)}, "table", notes=tuple(notes + more), target=name, tokens=tokens)
