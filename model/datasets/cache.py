"""On-disk cache of prepared arrays, shared by every worker through the page cache.

Parsing Fashion-MNIST's .gz files takes about a second per process; a search
with many workers and trials would repeat it constantly. Instead the split and
normalised arrays are saved once as ``.npy`` files and opened with
``np.load(mmap_mode="r")``: every process maps the same file, the kernel keeps
one copy in memory, and opening costs milliseconds.

Entries are immutable directories named by a hash of everything that decides
their content. A writer builds the directory under a temporary name and
renames it into place; ``rename`` of a directory is atomic, so a reader sees
either nothing or a complete entry, and when two workers race the loser simply
discards its copy and uses the winner's (the contents are identical).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .locate import user_cache_root

__all__ = [
    "ARRAY_NAMES",
    "CACHE_ENV",
    "FORMAT_VERSION",
    "cache_key",
    "default_cache_dir",
    "load_entry",
    "load_or_build",
    "load_meta",
    "save_entry",
]

logger = logging.getLogger(__name__)

CACHE_ENV = "NUMPY_HPSEARCH_CACHE"
# Bump when the preparation code changes what an entry contains.
FORMAT_VERSION = 2  # 2: feature rows centred in float64; tables of huge values fitted safely
ARRAY_NAMES: tuple[str, ...] = ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")


def default_cache_dir() -> Path:
    """``$NUMPY_HPSEARCH_CACHE``, else ``<user cache>/numpy-hpsearch/arrays``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else user_cache_root() / "arrays"


def cache_key(**fields: object) -> str:
    """Short stable hash of JSON-able ``fields`` (name, options, raw-file fingerprint)."""
    blob = json.dumps({"format_version": FORMAT_VERSION, **fields}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def load_entry(entry: Path, mmap: bool) -> dict[str, np.ndarray] | None:
    """The arrays of a complete entry, or None if it does not exist or is unreadable."""
    if not entry.is_dir():
        return None
    try:
        arrays = {
            n: np.load(entry / f"{n}.npy", mmap_mode="r" if mmap else None, allow_pickle=False) for n in ARRAY_NAMES
        }
    except (OSError, ValueError) as exc:  # someone deleted files under us, or disk damage
        logger.warning("ignoring unreadable cache entry %s: %s", entry, exc)
        return None
    logger.debug("cache hit %s", entry)
    return arrays


def load_meta(entry: Path) -> dict[str, Any] | None:
    """What ``save_entry`` stored beside the arrays, or None if there is no such entry."""
    try:
        with open(entry / "meta.json") as fh:
            meta: dict[str, Any] = json.load(fh)
    except (OSError, ValueError):
        return None
    return meta


def save_entry(entry: Path, arrays: dict[str, np.ndarray], meta: dict[str, object]) -> bool:
    """Write ``arrays`` as ``entry`` atomically; False (logged) if the cache is not writable.

    Losing a race to another writer counts as success: the entry exists.
    """
    tmp: str | None = None
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f".{entry.name}.", suffix=".tmp", dir=entry.parent)
        for name in ARRAY_NAMES:
            with open(os.path.join(tmp, f"{name}.npy"), "wb") as fh:
                np.save(fh, np.ascontiguousarray(arrays[name]), allow_pickle=False)
                fh.flush()
                os.fsync(fh.fileno())
        with open(os.path.join(tmp, "meta.json"), "w") as fh:
            json.dump(meta, fh, indent=1, sort_keys=True, default=str)
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700; let other users' workers read it
        try:
            os.rename(tmp, entry)  # atomic; fails if entry already exists (non-empty dir)
        except OSError:
            if not entry.is_dir():
                raise
            logger.debug("cache entry %s was written by another process first", entry)
            shutil.rmtree(tmp, ignore_errors=True)
            return True
        tmp = None
        logger.info("cached prepared arrays in %s", entry)
        return True
    except OSError as exc:
        logger.warning("cannot write cache entry %s (%s); continuing without the cache", entry, exc)
        return False
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


Build = Callable[[], tuple[dict[str, np.ndarray], dict[str, Any]]]


def load_or_build(entry: Path, mmap: bool, build: Build) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The entry's read-only arrays and meta; on a miss, ``build()`` them, save them and map the saved copy.

    Nothing is written unless ``build`` returns: a file refused while it is read leaves no entry.
    """
    arrays, meta = load_entry(entry, mmap), load_meta(entry)
    if arrays is None or meta is None:
        arrays, meta = build()
        if save_entry(entry, arrays, meta) and mmap:
            arrays = load_entry(entry, mmap) or arrays
    for a in arrays.values():
        if a.flags.writeable:
            a.flags.writeable = False
    return arrays, meta
