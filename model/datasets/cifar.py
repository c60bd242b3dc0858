"""Reader for the official "python version" of CIFAR-10 and CIFAR-100.

``cifar-10-python.tar.gz`` holds ``cifar-10-batches-py/data_batch_1..5``,
``test_batch`` and ``batches.meta``; ``cifar-100-python.tar.gz`` holds
``cifar-100-python/train``, ``test`` and ``meta``. Each batch is a pickled
dict (written by Python 2, so keys come back as bytes or str depending on the
encoding) with ``data``: uint8 (n, 3072), one row per image holding the R, G
and B 32x32 planes one after the other, and ``labels`` (CIFAR-10) or
``fine_labels``/``coarse_labels`` (CIFAR-100). Rows are kept exactly in that
plane order: feature ``c*1024 + r*32 + col`` is channel ``c`` at (r, col).

Both the .tar.gz (read in one streaming pass, no extraction to disk) and an
extracted directory are accepted. Unpickling is restricted to the numpy
classes an array needs, because a pickle can otherwise run arbitrary code.
"""

from __future__ import annotations

import io
import logging
import pickle
import tarfile
import zlib

import numpy as np

from .errors import DatasetError
from .locate import RawSource
from .registry import CIFAR_LAYOUT

__all__ = ["read_cifar"]

logger = logging.getLogger(__name__)

N_FEATURES = 3 * 32 * 32

# What an ndarray pickle refers to (numpy 1 and numpy 2 module paths).
_ALLOWED = {
    (mod, name) for mod in ("numpy.core.multiarray", "numpy._core.multiarray") for name in ("_reconstruct", "scalar")
} | {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"), ("codecs", "encode")}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that only builds plain containers and numpy arrays."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _unpickle(data: bytes, where: str) -> dict[str, object]:
    try:
        obj = _ArrayUnpickler(io.BytesIO(data), encoding="latin1").load()
    except Exception as exc:  # pickle raises many types on garbage: all mean "corrupt"
        raise DatasetError(f"{where}: not a valid CIFAR pickle ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, dict):
        raise DatasetError(f"{where}: expected a pickled dict, got {type(obj).__name__}")
    # Python-3-written pickles keep bytes keys even under latin1; unify to str.
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _read_members(source: RawSource, folder: str, names: tuple[str, ...]) -> dict[str, bytes]:
    """Raw bytes of each wanted member, from the archive or the extracted files."""
    if "archive" not in source.paths:
        try:
            return {n: source.paths[n].read_bytes() for n in names}
        except OSError as exc:
            raise DatasetError(f"cannot read CIFAR file: {exc}") from exc
    archive = source.paths["archive"]
    wanted = {f"{folder}/{n}": n for n in names}
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r|gz") as tar:  # streaming: one pass over the gzip
            for member in tar:
                name = wanted.get(member.name.removeprefix("./"))
                if name is not None and member.isfile():
                    data = tar.extractfile(member)
                    assert data is not None  # a regular file always has data
                    found[name] = data.read()
                    if len(found) == len(wanted):
                        break
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"{archive}: corrupt or truncated tar.gz ({type(exc).__name__}: {exc})") from exc
    missing = [m for m, n in wanted.items() if n not in found]
    if missing:
        raise DatasetError(f"{archive}: missing member(s) {missing}; is this the official python-version archive?")
    return found


def _parse_batch(raw: bytes, where: str, label_key: str, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(raw, where)
    if "data" not in batch or label_key not in batch:
        raise DatasetError(f"{where}: needs keys 'data' and {label_key!r}, has {sorted(map(str, batch))}")
    X = np.asarray(batch["data"])
    y = np.asarray(batch[label_key])
    if X.dtype != np.uint8 or X.ndim != 2 or X.shape[1] != N_FEATURES:
        raise DatasetError(f"{where}: 'data' must be uint8 (n, {N_FEATURES}), got {X.dtype} {X.shape}")
    if y.shape != (X.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise DatasetError(f"{where}: {label_key!r} must be {X.shape[0]} integers, got {y.dtype} {y.shape}")
    if y.size and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise DatasetError(f"{where}: {label_key!r} outside [0, {n_classes}): {int(y.min())}..{int(y.max())}")
    return X, y.astype(np.int64)


def read_cifar(
    source: RawSource, label_key: str, n_classes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_train, y_train, X_test, y_test): uint8 (n, 3072) in R,G,B plane order, int64 labels."""
    fmt, layout = source.format, CIFAR_LAYOUT[source.format]
    folder = layout.folder
    raws = _read_members(source, folder, layout.members)
    origin = source.paths.get("archive")

    def parse(names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        parts = [
            _parse_batch(raws[n], f"{origin}:{folder}/{n}" if origin else str(source.paths[n]), label_key, n_classes)
            for n in names
        ]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    X_train, y_train = parse(layout.train)
    X_test, y_test = parse(layout.test)
    logger.info("read %s: %d train, %d test images", fmt, len(y_train), len(y_test))
    return X_train, y_train, X_test, y_test
