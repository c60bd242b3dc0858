"""Reader for the IDX format of MNIST and Fashion-MNIST, gzipped or not.

Layout (all integers big-endian): two zero bytes, a type byte (0x08 = uint8),
a byte giving the number of dimensions, then one uint32 per dimension, then
the data in C order. Images have magic 0x00000803 (n, rows, cols), labels
0x00000801 (n,). Any deviation raises DatasetError naming the file, so a
truncated download never turns into a struct/gzip traceback.
"""

from __future__ import annotations

import gzip
import logging
import struct
import zlib
from pathlib import Path

import numpy as np

from .errors import DatasetError

__all__ = ["IMAGES_MAGIC", "LABELS_MAGIC", "read_idx", "read_idx_images", "read_idx_labels"]

logger = logging.getLogger(__name__)

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
_GZIP_MAGIC = b"\x1f\x8b"
# type byte -> big-endian dtype (the IDX spec's full table)
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_bytes(path: Path) -> bytes:
    """The decompressed content; gzip is detected by its magic, not the name."""
    try:
        raw = path.read_bytes()
        if raw[:2] == _GZIP_MAGIC:
            return gzip.decompress(raw)
        return raw
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise DatasetError(
            f"{path}: cannot read IDX file ({type(exc).__name__}: {exc}); "
            "it may be truncated: delete it and fetch it again"
        ) from exc


def read_idx(path: str | Path) -> np.ndarray:
    """Any IDX array, in native byte order, shape as the header says."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DatasetError(f"{path}: {len(data)} bytes is too short for an IDX header")
    zero, type_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or type_code not in _DTYPES:
        raise DatasetError(
            f"{path}: bad IDX magic 0x{data[:4].hex()}; expected 0x0000 then a type byte "
            f"in {[hex(t) for t in _DTYPES]} (e.g. 0x00000803 images, 0x00000801 labels)"
        )
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DatasetError(f"{path}: truncated IDX header ({len(data)} bytes, need {header_len})")
    dims = struct.unpack(f">{ndim}I", data[4:header_len])
    dtype = np.dtype(_DTYPES[type_code])
    expected = header_len + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise DatasetError(
            f"{path}: IDX header says shape {dims} ({expected} bytes) but the file "
            f"has {len(data)} bytes; it is truncated or corrupt"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=False)


def _read_expecting(path: str | Path, magic: int, what: str) -> np.ndarray:
    path = Path(path)
    array = read_idx(path)
    got = (array.dtype == np.uint8, array.ndim)
    want_ndim = 3 if magic == IMAGES_MAGIC else 1
    if got != (True, want_ndim):
        raise DatasetError(
            f"{path}: expected IDX {what} (magic 0x{magic:08x}: uint8, {want_ndim} dims), "
            f"got {array.dtype} with shape {array.shape}"
        )
    return array


def read_idx_images(path: str | Path) -> np.ndarray:
    """uint8 images, (n, rows, cols)."""
    return _read_expecting(path, IMAGES_MAGIC, "images")


def read_idx_labels(path: str | Path) -> np.ndarray:
    """uint8 labels, (n,)."""
    return _read_expecting(path, LABELS_MAGIC, "labels")


def read_idx_split(images_path: Path, labels_path: Path, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Images flattened to (n, rows*cols) uint8 and labels (n,) int64, checked against each other."""
    X = read_idx_images(images_path)  # (n, rows, cols)
    y = read_idx_labels(labels_path)  # (n,)
    if X.shape[0] != y.shape[0]:
        raise DatasetError(f"{images_path} has {X.shape[0]} images but {labels_path} has {y.shape[0]} labels")
    if y.size and int(y.max()) >= n_classes:
        raise DatasetError(f"{labels_path}: label {int(y.max())} out of range for {n_classes} classes")
    return X.reshape(X.shape[0], -1), y.astype(np.int64)
