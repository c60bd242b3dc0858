"""NumPy ``.npz`` files, in the key conventions people ship them with.

Recognised without flags, first match wins:
- ``x_train``/``y_train`` with ``x_test``/``y_test`` and ``x_val``/``y_val``
  if present (Keras' ``mnist.npz``);
- ``X``/``y``, ``x``/``y``, ``data``/``target`` (scikit-learn's naming),
  ``images``/``labels`` (course notMNIST, images N x H x W).
Keys match whatever their case. ``x_key``/``y_key`` name any others.

Arrays are data, never code: ``allow_pickle=False``, so an object array is
refused, not unpickled. Arrays are taken as prepared data: NaN or inf in the
features is refused with counts rather than imputed, and so are arrays with no
rows or no features. Before any array is loaded, its header (shape and type)
is read and checked against the bytes its member holds and against the memory
ceiling (``memory``): a header cannot make the reader allocate what the file
does not hold.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DatasetError
from .intake import Intake, shown
from .memory import MemoryBudget
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


# What reading a zip member or a .npy header raises on damaged bytes.
_DAMAGED = (
    OSError,
    EOFError,
    ValueError,
    zipfile.BadZipFile,
    zlib.error,
    RuntimeError,
    NotImplementedError,
    SyntaxError,
)
# Bytes held per value while an array is converted, beside the array itself and a copy of its
# training rows (and, for images stored channels last, their planes): for features, a float64
# copy and its deviations for the statistics (16), float32 rows and their splits (8), the NaN
# check (1); for images, float32 training rows and float64 deviations (12), float32 rows and
# their splits (8). With a margin; measured in tests/model/test_memory_ceiling.py.
_BYTES_PER_VALUE = {"features": 32, "image": 24}


@dataclass(frozen=True)
class _Header:
    shape: tuple[int, ...]
    dtype: np.dtype
    nbytes: int  # what the array will take in memory


def _peek(npz: np.lib.npyio.NpzFile, key: str, path: Path) -> _Header:
    """The shape and type an array's header declares, checked against the bytes of its member."""
    member = key + ".npy"
    archive = npz.zip
    if archive is None or member not in archive.namelist():
        raise DatasetError(f"{path}: {key!r} is not a NumPy array (.npy) in the archive")
    try:
        size = archive.getinfo(member).file_size
        with archive.open(member) as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
            else:  # 3.0 (utf-8 field names): numpy reads it with a private function
                shape, _, dtype = getattr(np.lib.format, "_read_array_header")(fh, version)  # noqa: B009
            start = fh.tell()
    except _DAMAGED as exc:
        raise DatasetError(f"{path}: array {key!r} cannot be read ({exc})") from None
    if dtype.hasobject:
        raise DatasetError(
            f"{path}: array {key!r} holds Python objects; only numeric or text arrays are read "
            "(files are never unpickled)"
        )
    values = int(np.prod(shape, dtype=object))
    if dtype.itemsize == 0 and values:
        raise DatasetError(f"{path}: array {key!r} has items of no size (dtype {dtype})")
    nbytes = values * dtype.itemsize
    if nbytes > size - start:
        raise DatasetError(
            f"{path}: array {key!r} declares shape {shape} of {dtype} ({nbytes} bytes) but holds "
            f"{max(size - start, 0)}: the file is damaged"
        )
    return _Header(tuple(shape), dtype, nbytes)


def _array(npz: np.lib.npyio.NpzFile, key: str, path: Path) -> np.ndarray:
    try:
        a = npz[key]
    except ValueError:  # numpy's refusal of an object array under allow_pickle=False
        raise DatasetError(
            f"{path}: array {key!r} holds Python objects; only numeric or text arrays are read "
            "(files are never unpickled)"
        ) from None
    except _DAMAGED as exc:
        raise DatasetError(f"{path}: array {key!r} cannot be read ({exc})") from None
    if a.dtype.kind == "O":
        raise DatasetError(f"{path}: array {key!r} holds Python objects; only numeric or text arrays are read")
    return a


def _labels(y: np.ndarray, key: str, path: Path) -> np.ndarray:
    """(n,) labels; one-hot rows (n, k) become their column index."""
    if y.dtype.kind not in "biufUS":
        raise DatasetError(f"{path}: labels {key!r} must be numbers or text, got dtype {y.dtype}")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    elif y.ndim == 2 and y.dtype.kind in "biuf" and np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all():
        y = y.argmax(axis=1)
    if y.ndim != 1:
        raise DatasetError(f"{path}: labels {key!r} must be one label per row, got shape {y.shape}")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise DatasetError(f"{path}: labels {key!r} hold {int((~np.isfinite(y)).sum())} NaN or inf values")
        if (np.abs(y) < 2**53).all() and (y == np.round(y)).all():
            y = y.astype(np.int64)
    elif y.dtype.kind == "S":  # bytes: as text, as a person reads them
        y = np.asarray([v.decode("utf-8", "backslashreplace") for v in y.tolist()], dtype=object)
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


def _check_headers(headers: dict[str, _Header], pairs: dict[str, tuple[str, str | None]], path: Path) -> None:
    """Shapes and types that cannot train, refused from the headers, before a byte of data is loaded."""
    for xk, yk in pairs.values():
        x = headers[xk]
        if x.dtype.kind not in "biuf":
            raise DatasetError(f"{path}: features {xk!r} must be numbers, got dtype {x.dtype}")
        if len(x.shape) not in (2, 3, 4):
            raise DatasetError(
                f"{path}: features {xk!r} must be rows x features (2-D) or images "
                f"(N x H x W, N x H x W x C), got shape {x.shape}"
            )
        if x.shape[0] == 0:
            raise DatasetError(f"{path}: features {xk!r} have no rows (shape {x.shape})")
        if 0 in x.shape[1:]:
            raise DatasetError(f"{path}: features {xk!r} of shape {x.shape} hold no values in a row")
        if yk is not None:
            y = headers[yk]
            if len(y.shape) == 0 or y.shape[0] != x.shape[0]:
                n = y.shape[0] if y.shape else "no"
                raise DatasetError(f"{path}: {xk!r} has {x.shape[0]} rows but {yk!r} has {n} labels")


def _check_memory(headers: dict[str, _Header], file_bytes: int, budget: MemoryBudget) -> None:
    need = float(file_bytes)
    for h in headers.values():
        values = int(np.prod(h.shape, dtype=object))
        copies = 2 + (len(h.shape) == 4)  # the array, its training rows, its planes
        need += values * (copies * h.dtype.itemsize + _BYTES_PER_VALUE["image" if len(h.shape) > 2 else "features"])
    budget.check(need, "converting its arrays", "use a sample of the rows, or a machine with more memory")


def read_npz(
    path: str | Path,
    x_key: str | None = None,
    y_key: str | None = None,
    labelled: bool = True,
    intake: Intake | None = None,
) -> RawData:
    """The parts of an ``.npz``; ``labelled=False`` (an input to predict) makes labels optional."""
    p = Path(path)
    intake = intake if intake is not None else Intake(p)
    data = intake.read(p, share=0.5)
    label = shown(p)
    try:
        npz = np.load(io.BytesIO(data), allow_pickle=False)
    except _DAMAGED as exc:
        raise DatasetError(f"{label}: not a readable .npz ({exc})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DatasetError(
            f"{label}: holds a single array, not named arrays; save it with np.savez(file, X=..., y=...)"
        )
    with npz:
        keys = list(npz.files)
        pairs = _pairs(keys, x_key, y_key, p, labelled)
        used = {k for pair in pairs.values() for k in pair if k is not None}
        headers = {k: _peek(npz, k, p) for k in sorted(used)}
        _check_headers(headers, pairs, p)
        _check_memory(headers, len(data), intake.budget)
        parts, shapes = {}, set()
        for part, (xk, yk) in pairs.items():
            X, image_shape = as_rows(_features(_array(npz, xk, p), xk, p), xk, p)
            y = _labels(_array(npz, yk, p), yk, p) if yk else None
            if y is not None and len(y) != len(X):
                raise DatasetError(f"{label}: {xk!r} has {len(X)} rows but {yk!r} has {len(y)} labels")
            parts[part] = RawPart(X, y)
            shapes.add(X.shape[1:])
    if len(shapes) > 1:
        raise DatasetError(f"{label}: the parts' rows differ in shape: {', '.join(map(str, sorted(shapes)))}")
    layout = "image" if image_shape is not None else "features"
    return RawData(parts, layout, image_shape)
