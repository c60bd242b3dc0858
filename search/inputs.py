"""Data held in Python (arrays, a DataFrame) made into a file of one's own, named by its content.

Why a file: the workers then get arrays from a notebook exactly as they get a
user's CSV or ``.npz``, through the content-hashed, memory-mapped cache
(``model/datasets/owndata.py``), never pickled per task; and the study records
the file's digest, so ``run`` with the same arrays later continues the study,
and other arrays under its name are refused as a changed file is. The name
holds the digest: the same arrays always make the same file.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model.datasets import DATASETS
from model.datasets.cache import default_cache_dir
from model.datasets.npzfile import SPLIT_KEYS
from search.errors import SearchError

__all__ = ["data_settings", "inputs_dir"]

_DIGEST = 12  # hex digits of the sha256 in the file's name (and so in the study's default name)


def inputs_dir() -> Path:
    """Where arrays and frames given from Python are written: beside the conversions made of them."""
    return default_cache_dir() / "inputs"


def data_settings(data: Any, target: str | None, folder: Path | None = None) -> dict[str, Any]:
    """The ``dataset``/``data``/``target`` settings for ``data`` as ``search.run`` accepts it."""
    if data is None:
        return {} if target is None else {"target": target}
    if isinstance(data, str) and data in DATASETS:
        return {"dataset": data}
    if isinstance(data, (str, os.PathLike)):
        return {"data": os.fspath(data)} | ({"target": target} if target is not None else {})
    folder = folder or inputs_dir()
    if isinstance(data, pd.DataFrame):
        if target is None:
            raise SearchError("data is a DataFrame: give target=, the name of its label column")
        if target not in data.columns:
            raise SearchError(
                f"target {target!r} is not a column of the DataFrame; its columns: "
                f"{', '.join(map(str, data.columns[:20]))}"
            )
        return {"data": _write_frame(data, folder), "target": target}
    if isinstance(data, tuple) and len(data) in (2, 4):
        if isinstance(data[0], pd.DataFrame) and len(data) == 2:  # scikit-learn's (X frame, y series)
            frame, label = _with_labels(data[0], data[1])
            return {"data": _write_frame(frame, folder), "target": label}
        if target is not None:
            raise SearchError("target= names a DataFrame's label column; arrays give their labels as y")
        return {"data": _write_arrays(data, folder)}
    raise SearchError(
        f"data must be a built-in data set ({', '.join(DATASETS)}), a path, (X, y), (X_train, y_train, X_test, "
        f"y_test) or a DataFrame with target=, got {type(data).__name__}"
    )


def _with_labels(X: pd.DataFrame, y: Any) -> tuple[pd.DataFrame, str]:
    name = str(getattr(y, "name", None) or "target")
    while name in X.columns:
        name = f"_{name}"
    labels = np.asarray(y)
    if labels.ndim != 1 or len(labels) != len(X):
        raise SearchError(f"y must be one label per row of X: X has {len(X)} rows, y has shape {labels.shape}")
    return X.assign(**{name: labels}), name


def _array(name: str, value: Any) -> np.ndarray:
    a = np.asarray(value)
    if a.dtype == object:
        if name.startswith("y"):  # labels as Python objects (strings, mostly): stored as text
            return a.astype(str)
        raise SearchError(f"{name} holds Python objects, not numbers; give a DataFrame with target= for mixed columns")
    if a.dtype.kind not in "biufU":
        raise SearchError(f"{name} must hold numbers (labels: numbers or text), got dtype {a.dtype}")
    return np.ascontiguousarray(a)


def _write_arrays(data: tuple[Any, ...], folder: Path) -> str:
    keys = ("X", "y") if len(data) == 2 else (*SPLIT_KEYS["train"], *SPLIT_KEYS["test"])
    arrays = {k: _array(k, v) for k, v in zip(keys, data)}
    h = hashlib.sha256()
    for key, a in arrays.items():
        h.update(f"{key}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]  # numpy's stub types the keywords as allow_pickle
    return _write(folder, f"arrays-{h.hexdigest()[:_DIGEST]}.npz", buffer.getvalue())


def _write_frame(frame: pd.DataFrame, folder: Path) -> str:
    """A frame as CSV: every column as text that reads back to the same values (floats round-trip)."""
    text = frame.to_csv(index=False).encode()
    return _write(folder, f"frame-{hashlib.sha256(text).hexdigest()[:_DIGEST]}.csv", text)


def _write(folder: Path, name: str, content: bytes) -> str:
    path = folder / name
    if path.is_file():  # the same content made it before
        return str(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".part-")
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.replace(tmp, path)  # whole or not at all: another run may be reading the same name
    except OSError as exc:
        raise SearchError(f"cannot write the data to {path}: {exc.strerror or exc}") from None
    return str(path)
