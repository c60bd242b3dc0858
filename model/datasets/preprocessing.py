"""The preprocessing of a user's data: fitted on the training split, stored as JSON, applied to raw rows.

One ``Preprocessing`` per study, by the file's layout:
- "table": ``encoding.TableEncoding`` (imputation, z-score, one-hot);
- "features" (an ``.npz`` of rows x features): a per-feature z-score
  (scikit-learn's ``StandardScaler``), or none;
- "image": intensities to [0, 1] by the training split's scale (255 for
  bytes), then image-wide statistics (or per plane, per pixel, none; see
  ``prepare.normalize``).
It also holds the class names, so the same record turns raw inputs into
network inputs and a network's class index back into a name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .encoding import TableEncoding
from .errors import DatasetError
from .npzfile import as_rows
from .prepare import fit_stats, to_unit_float32
from .rawdata import RawData

__all__ = ["LAYOUT_NORMALIZATIONS", "Preprocessing"]

# What each layout can be normalised with; the first is its default.
LAYOUT_NORMALIZATIONS: dict[str, tuple[str, ...]] = {
    "table": ("zscore",),
    "features": ("zscore", "none"),
    "image": ("image", "channel", "zscore", "none"),
}


def _image_scale(X: np.ndarray) -> float:
    """The value that maps the training split's intensities to [0, 1]: its brightest, unless already <= 1.

    Not the dtype's range: digits stored as bytes hold 0..16, and would sit in [0, 0.06].
    """
    top = float(X.max()) if X.size else 1.0
    return 1.0 if top <= 1.0 else top


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

    @classmethod
    def fit(
        cls, raw: RawData, X_train: Any, classes: list[Any], normalization: str | None, target: str | None = None
    ) -> Preprocessing:
        allowed = LAYOUT_NORMALIZATIONS[raw.layout]
        method = normalization or allowed[0]
        if method not in allowed:
            raise DatasetError(
                f"normalization {method!r} does not apply to {raw.layout} data; use one of {', '.join(allowed)}"
            )
        if raw.layout == "table":
            table = TableEncoding.fit(X_train)
            return cls("table", classes, method, table.n_features, target=target, table=table)
        rows = np.asarray(X_train).reshape(len(X_train), -1)
        if raw.layout == "features":
            if method == "none":
                return cls("features", classes, method, rows.shape[1])
            from sklearn.preprocessing import StandardScaler

            scaler = StandardScaler().fit(rows.astype(np.float64))
            return cls(
                "features", classes, method, rows.shape[1], mean=scaler.mean_.tolist(), std=scaler.scale_.tolist()
            )
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

    def transform(self, X: Any, unseen: str = "error") -> np.ndarray:
        """Raw rows (a DataFrame for tables, arrays otherwise) -> (n, n_features) float32 network inputs."""
        if self.table is not None:
            if not isinstance(X, pd.DataFrame):
                raise DatasetError(
                    f"a table study takes a DataFrame with columns {self.table.columns}, got {type(X).__name__}"
                )
            return self.table.transform(X, unseen)
        X = np.asarray(X)
        if self.layout == "image":
            X, _ = as_rows(X, "input", "images") if X.ndim == 4 else (X, None)
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
        else:
            out = np.ascontiguousarray(rows, dtype=np.float32)
        if self.mean:
            out -= np.asarray(self.mean, dtype=np.float32)
            out /= np.asarray(self.std, dtype=np.float32)
        return out

    def encode_labels(self, labels: np.ndarray) -> np.ndarray:
        """Class names -> (n,) int64 indices; a DatasetError names a label that is not a class."""
        index = {str(c): i for i, c in enumerate(self.classes)}
        codes = np.array([index.get(str(v), -1) for v in labels.tolist()], dtype=np.int64)
        if (codes < 0).any():
            unknown = pd.unique(np.asarray([str(v) for v in labels[codes < 0].tolist()]))[:5]
            raise DatasetError(
                f"label(s) {', '.join(map(repr, unknown))} are not classes of the study "
                f"({', '.join(map(str, self.classes[:20]))})"
            )
        return codes

    def to_json(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        data["table"] = self.table.to_json() if self.table else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Preprocessing:
        data = dict(data)
        data["table"] = TableEncoding.from_json(data["table"]) if data.get("table") else None
        return cls(**data)
