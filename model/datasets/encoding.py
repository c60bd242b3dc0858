"""A table's columns as network inputs: fitted by scikit-learn, kept as plain numbers.

Fitting is scikit-learn's ``ColumnTransformer`` on the training split only:
numeric columns get the median for a missing cell plus a missing-indicator
column (``SimpleImputer(add_indicator=True)``), then a z-score
(``StandardScaler``); text columns get a category of their own for a missing
cell, then ``OneHotEncoder`` (a cell missing where training had none is
encoded as none of the categories). What the fit learnt (medians, means, scales,
categories) is then kept as JSON, so that a study's record, a worker on
another machine and ``predict`` reproduce the encoding without unpickling
anything. ``transform`` is that arithmetic; a test holds it equal to the
fitted ``ColumnTransformer``'s own output.

Numbers of any finite size: a column whose magnitude would overflow the
statistics (a variance of 1e163 squared) is fitted divided by a power of two,
and its statistics multiplied back; the transform divides by the same power
before it centres, so ``(x - mean) / scale`` is computed exactly as it would be
without overflow. Text in a column the study read as numbers is refused by
``transform`` with the column and lines, unless it is asked to read it as
missing (``predict --non-numeric missing``).

A date column is read as four numbers first (``dates.py``), and from then on
is numbers like the others.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .dates import date_columns, part_names, with_parts
from .errors import DatasetError
from .prepare import safe_powers
from .table import file_lines

__all__ = ["MAX_CATEGORIES", "MISSING_CATEGORY", "NUMBERS", "TableEncoding", "encoding_need", "fit_column_transformer"]

MISSING_CATEGORY = "(missing)"
# A text column with more distinct values than this in training is an identifier or
# free text, not a category: one-hot encoding it would add a column per row. Dropped, and said.
MAX_CATEGORIES = 100
# What predict does with text in a column the study read as numbers: refuse it, or read it as missing.
NUMBERS: tuple[str, ...] = ("error", "missing")
_FLOAT32_MAX = float(np.finfo(np.float32).max)
# Bytes held per cell while a frame is encoded, beside the frame and its training rows: a number's
# float64 copies for the fit and the transform (with the imputer's masks), a text cell's imputed
# copy and codes; and per output cell, the float32 rows and their splits.
_PER_NUMBER = 48
_PER_TEXT = 40
_PER_OUTPUT = 8


def _split_columns(frame: pd.DataFrame) -> tuple[list[str], list[str], list[str], list[str]]:
    """(numeric with holes, numeric whole, text, dropped-with-reason) column names of a training frame."""
    holes: list[str] = []
    whole: list[str] = []
    text: list[str] = []
    dropped: list[str] = []
    for name in frame.columns:
        col = frame[name]
        missing = int(col.isna().sum())
        if missing == len(col):
            dropped.append(f"{name!r} (empty in the training rows)")
        elif pd.api.types.is_numeric_dtype(col):
            (holes if missing else whole).append(name)
        elif col.nunique(dropna=True) > MAX_CATEGORIES:
            dropped.append(f"{name!r} (text with {col.nunique()} distinct values: an identifier, not a category)")
        else:
            text.append(name)
    return holes, whole, text, dropped


def encoding_need(frame: pd.DataFrame) -> float:
    """Bytes held while ``frame`` is encoded and split: an upper bound, from its cells and the encoding's width."""
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    text = [c for c in frame.columns if c not in set(numeric)]
    width = 2 * len(numeric) + sum(min(int(frame[c].nunique()), MAX_CATEGORIES) + 1 for c in text)
    n = len(frame)
    held = 2 * float(frame.memory_usage(deep=True).sum())  # the frame and its training rows
    return held + n * (_PER_NUMBER * len(numeric) + _PER_TEXT * len(text) + _PER_OUTPUT * width)


def fit_column_transformer(frame: pd.DataFrame, holes: list[str], whole: list[str], text: list[str]) -> Any:
    """The fitted scikit-learn encoder of a training frame: imputed numbers, whole numbers, then one-hot text.

    Only columns with holes in training go through the median imputer: its masked median
    costs seconds on a wide table (4 s of a 70,000 x 784 CSV's 12 s), and the others need none.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    impute = Pipeline([("impute", SimpleImputer(strategy="median", add_indicator=True)), ("scale", StandardScaler())])
    onehot = Pipeline([("impute", SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)),
                       ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False))])  # fmt: skip
    steps = [("imputed", impute, holes), ("numeric", StandardScaler(), whole), ("text", onehot, text)]
    return ColumnTransformer([s for s in steps if s[2]], sparse_threshold=0.0).fit(frame)


def _as_text(col: pd.Series, categories: list[Any]) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(col) and all(isinstance(c, str) for c in categories):
        # text categories ("1", "2", "XL") read back as numbers from an input whose cells are all numbers
        col = col.map(lambda v: v if pd.isna(v) else str(int(v)) if float(v).is_integer() else str(v))
    return np.asarray(col.astype(object).where(col.notna(), MISSING_CATEGORY), dtype=object)


@dataclass(frozen=True)
class TableEncoding:
    """What the fit learnt, enough to encode any frame with the same columns."""

    numeric: list[str]  # the columns with holes in training first (``imputed`` of them), then the others
    imputed: int
    medians: list[float]  # per numeric column: what fills a missing cell
    indicators: list[int]  # positions (among the first ``imputed``) that get a missing-indicator column
    means: list[float]  # per output of the numeric block: imputed columns, their indicators, the others
    scales: list[float]
    text: list[str]
    categories: list[list[Any]]  # per text column, in one-hot order
    dropped: list[str]  # columns left out, each with its reason
    tokens: dict[str, str] = field(default_factory=dict)  # a numeric column's text read as missing in training
    # date columns (``dates.py``): each read as the numbers of ``dates.PARTS``, among ``numeric`` by their parts' names
    dates: list[str] = field(default_factory=list)

    @classmethod
    def fit(cls, frame: pd.DataFrame, tokens: dict[str, str] | None = None) -> TableEncoding:
        """What the fit learns from a training frame; ``tokens``: a column's text read as a missing number."""
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        dates = date_columns(frame)
        frame = with_parts(frame, dates)
        holes, whole, text, dropped = _split_columns(frame)
        if not holes and not whole and not text:
            raise DatasetError(f"no usable feature column; dropped: {', '.join(dropped)}")
        numeric = holes + whole
        power = safe_powers(frame[numeric].abs().max().to_numpy(dtype=np.float64)) if numeric else np.ones(0)
        scaled = frame[numeric] / power if (power != 1).any() else frame[numeric]  # exact: powers of two
        medians: list[float] = []
        indicators: list[int] = []
        means: list[float] = []
        scales: list[float] = []
        categories: list[list[Any]] = []
        if holes:  # the pieces of fit_column_transformer, fitted without encoding the frame
            impute = Pipeline([("impute", SimpleImputer(strategy="median", add_indicator=True)),
                               ("scale", StandardScaler())]).fit(scaled[holes])  # fmt: skip
            imputer, scaler = impute.named_steps.values()
            p = power[: len(holes)]
            indicators = [] if imputer.indicator_ is None else imputer.indicator_.features_.tolist()
            medians += (imputer.statistics_ * p).tolist()
            back = np.concatenate([p, np.ones(len(indicators))])  # indicators are 0/1: never scaled
            means += (scaler.mean_ * back).tolist()
            scales += (scaler.scale_ * back).tolist()
        if whole:  # no hole in training: the median fills one that an input to predict may have
            p = power[len(holes) :]
            values = scaled[whole].to_numpy(dtype=np.float64)
            medians += (np.median(values, axis=0) * p).tolist()
            scaler = StandardScaler().fit(values)
            means += (scaler.mean_ * p).tolist()
            scales += (scaler.scale_ * p).tolist()
        if text:
            onehot = Pipeline([("impute", SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)),
                               ("onehot", OneHotEncoder(handle_unknown="ignore"))]).fit(frame[text])  # fmt: skip
            categories = [c.tolist() for c in onehot.named_steps["onehot"].categories_]
        kept = {c: t for c, t in (tokens or {}).items() if c in numeric}
        return cls(numeric, len(holes), medians, indicators, means, scales, text, categories, dropped, kept, dates)

    @property
    def columns(self) -> list[str]:
        """The feature columns a frame must have."""
        derived = {p for name in self.dates for p in part_names(name)}
        return [c for c in self.numeric if c not in derived] + self.dates + self.text

    @property
    def n_features(self) -> int:
        return len(self.means) + sum(len(c) for c in self.categories)

    @property
    def number_columns(self) -> list[int]:
        """Where the numeric columns' z-scores are in ``transform``'s output (not their missing-indicators)."""
        k, ind = self.imputed, len(self.indicators)
        return [*range(k), *range(k + ind, len(self.means))]

    def _numbers(self, frame: pd.DataFrame, numbers: str) -> np.ndarray:
        """(n, n_numeric) float64 of the numeric columns; text in them refused, or missing if ``numbers``."""
        num = frame[self.numeric]
        if all(pd.api.types.is_numeric_dtype(t) for t in num.dtypes):
            return num.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
        out = np.empty((len(frame), len(self.numeric)), dtype=np.float64)
        for j, name in enumerate(self.numeric):
            col = num[name]
            if pd.api.types.is_numeric_dtype(col):
                out[:, j] = col.to_numpy(dtype=np.float64, na_value=np.nan)
                continue
            values = pd.to_numeric(col, errors="coerce")
            text = (col.notna() & values.isna()).to_numpy(copy=True)
            if name in self.tokens:  # the token the study itself read as a missing number
                text &= (col.astype(str) != self.tokens[name]).to_numpy()
            if text.any() and numbers == "error":
                rows = np.flatnonzero(text)
                shown = ", ".join(repr(str(v)) for v in pd.unique(col.to_numpy()[rows])[:3])
                raise DatasetError(
                    f"column {name!r} holds text where the study has numbers: {shown} on lines "
                    f"{file_lines(rows)}; correct it, or pass --non-numeric missing to read it as a missing value"
                )
            out[:, j] = values.to_numpy(dtype=np.float64, na_value=np.nan)
        return out

    def transform(self, frame: pd.DataFrame, unseen: str = "error", numbers: str = "error") -> np.ndarray:
        """(n, n_features) float32. ``unseen``: "error" names a category the fit never saw; "ignore" zeroes it.

        ``numbers``: "error" names text in a numeric column (other than the study's own token for
        a missing number); "missing" reads it as a missing value, filled like one.
        """
        absent = [c for c in self.columns if c not in frame.columns]
        if absent:
            raise DatasetError(f"missing column(s) {', '.join(map(repr, absent))}")
        frame = with_parts(frame, self.dates, numbers)
        out = np.empty((len(frame), self.n_features), dtype=np.float32)  # written block by block
        width = len(self.means)
        if self.numeric:
            values = self._numbers(frame, numbers)  # (n, n_numeric), ours to change
            miss = np.isnan(values)
            if miss.any():
                np.copyto(values, np.asarray(self.medians), where=miss)
            k, ind = self.imputed, len(self.indicators)
            means, scales = np.asarray(self.means), np.asarray(self.scales)
            mean = np.concatenate([means[:k], means[k + ind :]])  # the columns' statistics, indicators' apart
            scale = np.concatenate([scales[:k], scales[k + ind :]])
            power = safe_powers(np.maximum(np.abs(mean), scale))
            if (power != 1).any():  # exact: (x / p - m / p) / (s / p) is (x - m) / s, without its overflow
                values /= power
                mean, scale = mean / power, scale / power
            values -= mean
            values /= scale
            _check_float32(values, self.numeric)
            out[:, :k] = values[:, :k]
            out[:, k : k + ind] = (miss[:, self.indicators] - means[k : k + ind]) / scales[k : k + ind]
            out[:, k + ind : width] = values[:, k:]
        for name, cats in zip(self.text, self.categories):
            values = _as_text(frame[name], cats)
            codes = pd.Index(cats).get_indexer(values)  # -1: not a category of the fit
            # a missing cell where training had none is no category, as a missing number is the median:
            # encoded as none of them (as the exported graph does), never refused as an unseen category
            new = (codes < 0) & (values != MISSING_CATEGORY)
            if new.any() and unseen == "error":
                shown = ", ".join(repr(str(v)) for v in pd.unique(values[new])[:5])
                raise DatasetError(
                    f"column {name!r} holds categories never seen in training: {shown} "
                    f"({int(new.sum())} rows); pass --unseen ignore to encode them as none"
                )
            block = out[:, width : width + len(cats)]
            block[:] = 0.0
            known = codes >= 0
            block[np.flatnonzero(known), codes[known]] = 1.0
            width += len(cats)
        return out

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TableEncoding:
        return cls(**data)


def _check_float32(z: np.ndarray, names: list[str]) -> None:
    """Centred values a network can take: within float32. Training rows always are (|z| <= sqrt(n))."""
    far = ~(np.abs(z) <= _FLOAT32_MAX)
    if far.any():
        j = int(np.flatnonzero(far.any(axis=0))[0])
        rows = np.flatnonzero(far[:, j])
        raise DatasetError(
            f"column {names[j]!r} holds values too far from the study's (beyond float32 once centred and "
            f"scaled) on lines {file_lines(rows)}"
        )
