"""The preprocessing of a user's data: fitted on the training split, stored as JSON, applied to raw rows.

One ``Preprocessing`` per study, by the file's layout:
- "table": ``encoding.TableEncoding`` (imputation, z-score, one-hot);
- "features" (an ``.npz`` of rows x features): a per-feature z-score
  (scikit-learn's ``StandardScaler``), or none;
- "image": intensities to [0, 1] by the training split's scale (255 for
  bytes), then image-wide statistics (or per plane, per pixel, none; see
  ``prepare.normalize``).
It also holds the class names, so the same record turns raw inputs into
network inputs and a network's class index back into a name; for a numeric
target (``task`` "regression"), its mean and standard deviation on the
training split instead, which turn numbers into the network's standardised
targets and its outputs back into the target's units.

Values of any finite size are safe: statistics are fitted on columns divided
by a power of two where their magnitude would overflow (see ``encoding``),
rows are centred in float64 before they become float32, and a value that
would still not fit a float32 network input is refused, its column named.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from .encoding import NUMBERS, TableEncoding
from .errors import DatasetError
from .npzfile import as_rows
from .prepare import fit_stats, safe_powers, to_unit_float32
from .rawdata import RawData

__all__ = ["LAYOUT_NORMALIZATIONS", "NUMBERS", "Preprocessing"]

# What each layout can be normalised with; the first is its default.
LAYOUT_NORMALIZATIONS: dict[str, tuple[str, ...]] = {
    "table": ("zscore",),
    "features": ("zscore", "none"),
    "image": ("image", "channel", "zscore", "none"),
}


_FLOAT32_MAX = float(np.finfo(np.float32).max)
_CHUNK_VALUES = 1 << 22  # rows are centred in float64 this many values at a time


def _image_scale(X: np.ndarray) -> float:
    """The value that maps the training split's intensities to [0, 1]: its brightest, unless already <= 1.

    Not the dtype's range: digits stored as bytes hold 0..16, and would sit in [0, 0.06].
    (Intensities below zero count by their magnitude, so that the scaled ones lie in [-1, 1].)
    """
    top = max(float(X.max()), -float(X.min())) if X.size else 1.0
    return 1.0 if top <= 1.0 else top


def _feature_stats(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature (mean, scale) as scikit-learn's ``StandardScaler`` gives them, safe from overflow."""
    from sklearn.preprocessing import StandardScaler

    X = rows.astype(np.float64)  # (n, d), ours to change
    power = safe_powers(np.abs(X).max(axis=0)) if len(X) else np.ones(X.shape[1])
    if (power != 1).any():
        X /= power  # exact: a power of two
    scaler = StandardScaler().fit(X)
    return scaler.mean_ * power, scaler.scale_ * power


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _refuse_far(out: np.ndarray, start: int, what: str) -> None:
    """Network inputs must be finite float32: name the first feature and rows that are not."""
    far = ~np.isfinite(out)
    if far.any():
        j = int(np.flatnonzero(far.any(axis=0))[0])
        rows = np.flatnonzero(far[:, j])[:5] + start
        raise DatasetError(
            f"{what} {j} holds values beyond float32's range once scaled (rows {', '.join(map(str, rows))}); "
            "rescale it, or use --normalization zscore"
        )


@dataclass(frozen=True)
class Preprocessing:
    layout: str  # "table", "features" or "image"
    classes: list[Any]  # class names by index
    normalization: str  # one of LAYOUT_NORMALIZATIONS[layout]
    n_features: int
    image_shape: list[int] | None = None  # (H, W) or (C, H, W)
    scale: float = 1.0  # image intensities are divided by this first
    mean: list[float] = field(default_factory=list)  # per feature, or one value for the whole image
    std: list[float] = field(default_factory=list)
    target: str | None = None  # a table's label column
    table: TableEncoding | None = None
    task: str = "classification"  # or "regression": the target is a number (no classes)
    target_mean: float = 0.0  # regression: the training targets' mean and standard deviation
    target_scale: float = 1.0

    @classmethod
    def fit(
        cls, raw: RawData, X_train: Any, classes: list[Any], normalization: str | None, target: str | None = None
    ) -> Preprocessing:
        """The preprocessing of ``raw``'s layout, fitted on its training rows ``X_train``."""
        allowed = LAYOUT_NORMALIZATIONS[raw.layout]
        method = normalization or allowed[0]
        if method not in allowed:
            raise DatasetError(
                f"normalization {method!r} does not apply to {raw.layout} data; use one of {', '.join(allowed)}"
            )
        if raw.layout == "table":
            table = TableEncoding.fit(X_train, raw.tokens)
            return cls("table", classes, method, table.n_features, target=target, table=table)
        rows = np.asarray(X_train).reshape(len(X_train), -1)
        if raw.layout == "features":
            if method == "none":
                return cls("features", classes, method, rows.shape[1])
            mean, std = _feature_stats(rows)
            return cls("features", classes, method, rows.shape[1], mean=mean.tolist(), std=std.tolist())
        shape = list(raw.image_shape or ())
        n_channels = shape[0] if len(shape) == 3 else 1
        if method == "channel" and n_channels == 1:
            raise DatasetError("normalization 'channel' needs colour images; these are grayscale")
        scale = _image_scale(rows)
        if method == "none":
            return cls("image", classes, method, rows.shape[1], shape, scale)
        mean, std = fit_stats(to_unit_float32(rows, scale), method, n_channels)
        return cls(
            "image",
            classes,
            method,
            rows.shape[1],
            shape,
            scale,
            np.atleast_1d(mean).tolist(),
            np.atleast_1d(std).tolist(),
        )

    def transform(self, X: Any, unseen: str = "error", numbers: str = "error") -> np.ndarray:
        """Raw rows (a DataFrame for tables, arrays otherwise) -> (n, n_features) float32 network inputs.

        ``unseen`` and ``numbers``: what a table's unseen category and text among numbers become
        (see ``TableEncoding.transform``).
        """
        if self.table is not None:
            if not isinstance(X, pd.DataFrame):
                raise DatasetError(
                    f"a table study takes a DataFrame with columns {self.table.columns}, got {type(X).__name__}"
                )
            return self.table.transform(X, unseen, numbers)
        X = np.asarray(X)
        if self.layout == "image":
            if X.ndim == 4 and list(X.shape[1:]) != self.image_shape:  # channels last, as images are often stored
                X, _ = as_rows(X, "input", "images")
            if list(X.shape[1:]) != self.image_shape:
                raise DatasetError(
                    f"images of shape {tuple(X.shape[1:])}, but the study's are "
                    f"{tuple(self.image_shape or ())}: resize them to the study's size first"
                )
        rows = X.reshape(len(X), -1)
        if rows.shape[1] != self.n_features:
            raise DatasetError(f"rows of {rows.shape[1]} features, but the study's have {self.n_features}")
        if rows.dtype.kind not in "biuf":
            raise DatasetError(f"features must be numbers, got dtype {rows.dtype}")
        if self.layout == "image":
            out = to_unit_float32(rows, self.scale)
            if self.mean:
                out -= np.asarray(self.mean, dtype=np.float32)
                out /= np.asarray(self.std, dtype=np.float32)
            _refuse_far(out, 0, "pixel")
            return out
        return self._centred(rows)

    def _centred(self, rows: np.ndarray) -> np.ndarray:
        """Feature rows as float32, centred and scaled in float64 (a value's offset is not lost to float32 first)."""
        out = np.empty(rows.shape, dtype=np.float32)
        mean, std = np.asarray(self.mean or [0.0], dtype=np.float64), np.asarray(self.std or [1.0], dtype=np.float64)
        power = safe_powers(np.maximum(np.abs(mean), std))
        mean, std = mean / power, std / power  # exact: (x / p - m / p) / (s / p) is (x - m) / s, without overflow
        step = max(1, _CHUNK_VALUES // max(1, rows.shape[1]))
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step].astype(np.float64)
            chunk /= power
            chunk -= mean
            chunk /= std
            chunk[np.abs(chunk) > _FLOAT32_MAX] = np.inf  # beyond float32: refused below, not rounded to it
            out[start : start + step] = chunk
            _refuse_far(out[start : start + step], start, "feature")
        return out

    def encode_labels(self, labels: np.ndarray) -> np.ndarray:
        """Class names -> (n,) int64 indices; a DatasetError names a label that is not a class."""
        index = {str(c): i for i, c in enumerate(self.classes)}
        codes = np.array([index.get(str(v), -1) for v in labels.tolist()], dtype=np.int64)
        if (codes < 0).any():
            unknown = list(dict.fromkeys(str(v) for v in labels[codes < 0].tolist()))[:5]
            raise DatasetError(
                f"label(s) {', '.join(map(repr, unknown))} are not classes of the study "
                f"({', '.join(map(str, self.classes[:20]))})"
            )
        return codes

    def with_target(self, y_train: np.ndarray) -> Preprocessing:
        """A regression study's preprocessing: the numbers standardised by the training rows' mean and sd.

        A constant target keeps a scale of 1: its standardised values are then 0, and predictions its mean.
        """
        y = np.asarray(y_train, dtype=np.float64)
        mean, sd = float(y.mean()), float(y.std())
        scale = sd if sd > 1e-12 * max(abs(mean), 1.0) else 1.0
        return replace(self, task="regression", target_mean=mean, target_scale=scale)

    def encode_targets(self, values: np.ndarray) -> np.ndarray:
        """Numbers in the target's units -> (n,) float32 standardised targets; a DatasetError names text."""
        v = np.asarray(values)
        if v.dtype.kind not in "biuf":
            bad = [str(x) for x in v.tolist() if not _is_number(x)][:3]
            raise DatasetError(f"the target holds text ({', '.join(map(repr, bad))}); a regression study needs numbers")
        return ((v.astype(np.float64) - self.target_mean) / self.target_scale).astype(np.float32)

    def decode_targets(self, y: np.ndarray) -> np.ndarray:
        """Standardised targets or network outputs -> numbers in the target's units, float64."""
        return np.asarray(y, dtype=np.float64) * self.target_scale + self.target_mean

    def to_json(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        data["table"] = self.table.to_json() if self.table else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Preprocessing:
        data = dict(data)
        data["table"] = TableEncoding.from_json(data["table"]) if data.get("table") else None
        return cls(**data)
