"""NumPy ``.npz`` files, in the key conventions people ship them with.

Recognised without flags, first match wins:
- ``x_train``/``y_train`` with ``x_test``/``y_test`` and ``x_val``/``y_val``
  if present (Keras' ``mnist.npz``);
- ``X``/``y``, ``x``/``y``, ``data``/``target`` (scikit-learn's naming),
  ``images``/``labels`` (course notMNIST, images N x H x W).
Keys match whatever their case. ``x_key``/``y_key`` name any others.

Arrays are data, never code: ``allow_pickle=False``, so an object array is
refused, not unpickled. Arrays are taken as prepared data: NaN or inf in the
features is refused with counts rather than imputed.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .errors import DatasetError
from .rawdata import RawData, RawPart

__all__ = ["CONVENTIONS", "as_rows", "read_npz"]

# (features, labels) key pairs of a file holding one set of rows, in the order tried.
CONVENTIONS: tuple[tuple[str, str], ...] = (("X", "y"), ("x", "y"), ("data", "target"), ("images", "labels"))
# The split layout: the keys of each part, "train" required.
SPLIT_KEYS: dict[str, tuple[str, str]] = {
    "train": ("x_train", "y_train"),
    "val": ("x_val", "y_val"),
    "test": ("x_test", "y_test"),
}


def _array(npz: np.lib.npyio.NpzFile, key: str, path: Path) -> np.ndarray:
    try:
        a = npz[key]
    except ValueError:  # numpy's refusal of an object array under allow_pickle=False
        raise DatasetError(
            f"{path}: array {key!r} holds Python objects; only numeric or text arrays are read "
            "(files are never unpickled)"
        ) from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DatasetError(f"{path}: array {key!r} cannot be read ({exc})") from None
    if a.dtype.kind == "O":
        raise DatasetError(f"{path}: array {key!r} holds Python objects; only numeric or text arrays are read")
    return a


def _labels(y: np.ndarray, key: str, path: Path) -> np.ndarray:
    """(n,) labels; one-hot rows (n, k) become their column index."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    elif y.ndim == 2 and y.dtype.kind in "biuf" and np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all():
        y = y.argmax(axis=1)
    if y.ndim != 1:
        raise DatasetError(f"{path}: labels {key!r} must be one label per row, got shape {y.shape}")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise DatasetError(f"{path}: labels {key!r} hold {int((~np.isfinite(y)).sum())} NaN or inf values")
        if (y == np.round(y)).all():
            y = y.astype(np.int64)
    return y


def _features(X: np.ndarray, key: str, path: Path) -> np.ndarray:
    if X.dtype.kind not in "biuf":
        raise DatasetError(f"{path}: features {key!r} must be numbers, got dtype {X.dtype}")
    if X.ndim not in (2, 3, 4):
        raise DatasetError(
            f"{path}: features {key!r} must be rows x features (2-D) or images "
            f"(N x H x W, N x H x W x C), got shape {X.shape}"
        )
    if X.dtype.kind == "f":
        nan, inf = int(np.isnan(X).sum()), int(np.isinf(X).sum())
        if nan or inf:
            rows = int((~np.isfinite(X.reshape(len(X), -1))).any(axis=1).sum())
            raise DatasetError(
                f"{path}: features {key!r} hold {nan} NaN and {inf} inf values in {rows} rows; "
                "arrays are taken as prepared data: fill or drop them first"
            )
    return X


def as_rows(X: np.ndarray, key: str, path: str | Path) -> tuple[np.ndarray, tuple[int, ...] | None]:
    """(n, d) rows, or images as (n, H, W) / (n, C, H, W) with their shape per row."""
    if X.ndim == 2:
        return X, None
    if X.ndim == 3:
        return X, X.shape[1:]
    if X.shape[-1] in (1, 3):  # N x H x W x C, as images are usually stored
        X = np.ascontiguousarray(X.transpose(0, 3, 1, 2))
    elif X.shape[1] not in (1, 3):
        raise DatasetError(
            f"{path}: images {key!r} of shape {X.shape} have neither 1 nor 3 colour channels first or last"
        )
    if X.shape[1] == 1:
        X = X[:, 0]
    return X, X.shape[1:]


def _find(keys: list[str], wanted: str) -> str | None:
    return next((k for k in keys if k == wanted), None) or next((k for k in keys if k.lower() == wanted.lower()), None)


def _pairs(
    keys: list[str], x_key: str | None, y_key: str | None, path: Path, labelled: bool
) -> dict[str, tuple[str, str | None]]:
    """Which keys hold each part's features and labels."""
    if x_key or y_key:
        missing = [k for k in (x_key, y_key) if k is not None and k not in keys]
        if missing or x_key is None or (labelled and y_key is None):
            raise DatasetError(
                f"{path}: give both --x-key and --y-key among its keys {', '.join(keys)}"
                + (f" (not found: {', '.join(missing)})" if missing else "")
            )
        return {"train": (x_key, y_key)}
    found = {part: (_find(keys, x), _find(keys, y)) for part, (x, y) in SPLIT_KEYS.items()}
    if found["train"][0] and found["train"][1]:
        parts = {p: (x, y) for p, (x, y) in found.items() if x and y}
        if not labelled and found["test"][0]:  # an input to predict: its test rows
            return {"train": (found["test"][0], found["test"][1])}
        return parts  # type: ignore[return-value]
    for x, y in CONVENTIONS:
        xk, yk = _find(keys, x), _find(keys, y)
        if xk and (yk or not labelled):
            return {"train": (xk, yk)}
    conventions = ", ".join(f"{x}/{y}" for x, y in ((*SPLIT_KEYS["train"],), *CONVENTIONS))
    raise DatasetError(
        f"{path}: no known pair of keys among {', '.join(keys) or '(none)'}; expected one of "
        f"{conventions}, or name them with --x-key and --y-key"
    )


def read_npz(path: str | Path, x_key: str | None = None, y_key: str | None = None, labelled: bool = True) -> RawData:
    """The parts of an ``.npz``; ``labelled=False`` (an input to predict) makes labels optional."""
    p = Path(path)
    try:
        npz = np.load(p, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DatasetError(f"{p}: not a readable .npz ({exc})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DatasetError(f"{p}: holds a single array, not named arrays; save it with np.savez(file, X=..., y=...)")
    with npz:
        keys = list(npz.files)
        pairs = _pairs(keys, x_key, y_key, p, labelled)
        parts, shapes = {}, set()
        for part, (xk, yk) in pairs.items():
            X, image_shape = as_rows(_features(_array(npz, xk, p), xk, p), xk, p)
            y = _labels(_array(npz, yk, p), yk, p) if yk else None
            if y is not None and len(y) != len(X):
                raise DatasetError(f"{p}: {xk!r} has {len(X)} rows but {yk!r} has {len(y)} labels")
            parts[part] = RawPart(X, y)
            shapes.add(X.shape[1:])
    if len(shapes) > 1:
        raise DatasetError(f"{p}: the parts' rows differ in shape: {', '.join(map(str, sorted(shapes)))}")
    layout = "image" if image_shape is not None else "features"
    return RawData(parts, layout, image_shape)
