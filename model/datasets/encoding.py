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


def _split_columns(frame: pd.DataFrame) -> tuple[list[str], list[str], list[str]]:
    """(numeric, text, dropped-with-reason) column names of a training frame."""
    numeric, text, dropped = [], [], []
    for name in frame.columns:
        col = frame[name]
        if col.isna().all():
            dropped.append(f"{name!r} (empty in the training rows)")
        elif pd.api.types.is_numeric_dtype(col):
            numeric.append(name)
        elif col.nunique(dropna=True) > MAX_CATEGORIES:
            dropped.append(f"{name!r} (text with {col.nunique()} distinct values: an identifier, not a category)")
        else:
            text.append(name)
    return numeric, text, dropped


def fit_column_transformer(frame: pd.DataFrame, numeric: list[str], text: list[str]) -> Any:
    """The fitted scikit-learn encoder of a training frame (numeric block first, then one-hot)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    steps = []
    if numeric:
        steps.append(
            (
                "numeric",
                Pipeline(
                    [("impute", SimpleImputer(strategy="median", add_indicator=True)), ("scale", StandardScaler())]
                ),
                numeric,
            )
        )
    if text:
        steps.append(
            (
                "text",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)),
                        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                text,
            )
        )
    return ColumnTransformer(steps, sparse_threshold=0.0).fit(frame)


def _as_text(col: pd.Series, categories: list[Any]) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(col) and all(isinstance(c, str) for c in categories):
        # text categories ("1", "2", "XL") read back as numbers from an input whose cells are all numbers
        col = col.map(lambda v: v if pd.isna(v) else str(int(v)) if float(v).is_integer() else str(v))
    return np.asarray(col.astype(object).where(col.notna(), MISSING_CATEGORY), dtype=object)


@dataclass(frozen=True)
class TableEncoding:
    """What the fit learnt, enough to encode any frame with the same columns."""

    numeric: list[str]
    medians: list[float]  # per numeric column
    indicators: list[int]  # positions (in ``numeric``) that get a missing-indicator column
    means: list[float]  # per output of the numeric block: the columns, then the indicators
    scales: list[float]
    text: list[str]
    categories: list[list[Any]]  # per text column, in one-hot order
    dropped: list[str]  # columns left out, each with its reason

    @classmethod
    def fit(cls, frame: pd.DataFrame) -> TableEncoding:
        numeric, text, dropped = _split_columns(frame)
        if not numeric and not text:
            raise DatasetError(f"no usable feature column; dropped: {', '.join(dropped)}")
        fitted = fit_column_transformer(frame, numeric, text)
        kw: dict[str, Any] = {
            "numeric": numeric,
            "text": text,
            "dropped": dropped,
            "medians": [],
            "indicators": [],
            "means": [],
            "scales": [],
            "categories": [],
        }
        if numeric:
            imputer, scaler = fitted.named_transformers_["numeric"].named_steps.values()
            kw["medians"] = imputer.statistics_.tolist()
            kw["indicators"] = [] if imputer.indicator_ is None else imputer.indicator_.features_.tolist()
            kw["means"], kw["scales"] = scaler.mean_.tolist(), scaler.scale_.tolist()
        if text:
            onehot = fitted.named_transformers_["text"].named_steps["onehot"]
            kw["categories"] = [c.tolist() for c in onehot.categories_]
        return cls(**kw)

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
        blocks = []
        if self.numeric:
            num = frame[self.numeric].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            miss = np.isnan(num)
            filled = np.where(miss, np.asarray(self.medians), num)  # (n, n_numeric)
            block = np.hstack([filled, miss[:, self.indicators].astype(np.float64)])
            blocks.append((block - np.asarray(self.means)) / np.asarray(self.scales))
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
            onehot = np.zeros((len(values), len(cats)))
            onehot[np.flatnonzero(~new), codes[~new]] = 1.0
            blocks.append(onehot)
        return np.ascontiguousarray(np.hstack(blocks), dtype=np.float32)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TableEncoding:
        return cls(**data)
