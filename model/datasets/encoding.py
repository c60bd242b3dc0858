"""A table's columns as network inputs: fitted by scikit-learn, kept as plain numbers.

Fitting is scikit-learn's ``ColumnTransformer`` on the training split only:
numeric columns get the median for a missing cell plus a missing-indicator
column (``SimpleImputer(add_indicator=True)``), then a z-score
(``StandardScaler``); text columns get a category of their own for a missing
cell, then ``OneHotEncoder``. What the fit learnt (medians, means, scales,
categories) is then kept as JSON, so that a study's record, a worker on
another machine and ``predict`` reproduce the encoding without unpickling
anything. ``transform`` is that arithmetic; a test holds it equal to the
fitted ``ColumnTransformer``'s own output.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from .errors import DatasetError

__all__ = ["MAX_CATEGORIES", "MISSING_CATEGORY", "TableEncoding", "fit_column_transformer"]

MISSING_CATEGORY = "(missing)"
# A text column with more distinct values than this in training is an identifier or
# free text, not a category: one-hot encoding it would add a column per row. Dropped, and said.
MAX_CATEGORIES = 100


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

    @classmethod
    def fit(cls, frame: pd.DataFrame) -> TableEncoding:
        holes, whole, text, dropped = _split_columns(frame)
        if not holes and not whole and not text:
            raise DatasetError(f"no usable feature column; dropped: {', '.join(dropped)}")
        fitted = fit_column_transformer(frame, holes, whole, text)
        parts = fitted.named_transformers_
        medians: list[float] = []
        indicators: list[int] = []
        means: list[float] = []
        scales: list[float] = []
        categories: list[list[Any]] = []
        if holes:
            imputer, scaler = parts["imputed"].named_steps.values()
            medians += imputer.statistics_.tolist()
            indicators = [] if imputer.indicator_ is None else imputer.indicator_.features_.tolist()
            means += scaler.mean_.tolist()
            scales += scaler.scale_.tolist()
        if whole:  # no hole in training: the median fills one that an input to predict may have
            medians += np.median(frame[whole].to_numpy(dtype=np.float64), axis=0).tolist()
            means += parts["numeric"].mean_.tolist()
            scales += parts["numeric"].scale_.tolist()
        if text:
            categories = [c.tolist() for c in parts["text"].named_steps["onehot"].categories_]
        return cls(holes + whole, len(holes), medians, indicators, means, scales, text, categories, dropped)

    @property
    def columns(self) -> list[str]:
        """The feature columns a frame must have."""
        return self.numeric + self.text

    @property
    def n_features(self) -> int:
        return len(self.means) + sum(len(c) for c in self.categories)

    def transform(self, frame: pd.DataFrame, unseen: str = "error") -> np.ndarray:
        """(n, n_features) float32. ``unseen``: "error" names a category the fit never saw; "ignore" zeroes it."""
        absent = [c for c in self.columns if c not in frame.columns]
        if absent:
            raise DatasetError(f"missing column(s) {', '.join(map(repr, absent))}")
        out = np.empty((len(frame), self.n_features), dtype=np.float32)  # written block by block
        width = len(self.means)
        if self.numeric:
            num = frame[self.numeric]
            if not all(pd.api.types.is_numeric_dtype(t) for t in num.dtypes):
                num = num.apply(pd.to_numeric, errors="coerce")
            values = num.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)  # (n, n_numeric), ours to change
            miss = np.isnan(values)
            if miss.any():
                np.copyto(values, np.asarray(self.medians), where=miss)
            k, ind = self.imputed, len(self.indicators)
            means, scales = np.asarray(self.means), np.asarray(self.scales)
            values -= np.concatenate([means[:k], means[k + ind :]])  # the columns' statistics, indicators' apart
            values /= np.concatenate([scales[:k], scales[k + ind :]])
            out[:, :k] = values[:, :k]
            out[:, k : k + ind] = (miss[:, self.indicators] - means[k : k + ind]) / scales[k : k + ind]
            out[:, k + ind : width] = values[:, k:]
        for name, cats in zip(self.text, self.categories):
            values = _as_text(frame[name], cats)
            codes = pd.Index(cats).get_indexer(values)  # -1: not a category of the fit
            new = codes < 0
            if new.any() and unseen == "error":
                shown = ", ".join(repr(v) for v in pd.unique(values[new])[:5])
                raise DatasetError(
                    f"column {name!r} holds categories never seen in training: {shown} "
                    f"({int(new.sum())} rows); pass --unseen ignore to encode them as none"
                )
            block = out[:, width : width + len(cats)]
            block[:] = 0.0
            block[np.flatnonzero(~new), codes[~new]] = 1.0
            width += len(cats)
        return out

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TableEncoding:
        return cls(**data)
