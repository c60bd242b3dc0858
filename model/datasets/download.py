"""Explicit download of official files, only when the user passes download=True.

Each file is streamed to a temporary name beside its destination while its
MD5 is computed, checked against the published sum, and only then renamed
into place, so an interrupted or corrupted download never leaves a file that
later looks complete. Nothing here runs unless asked: trials must never touch
the network behind the user's back.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from .errors import DatasetError
from .registry import DatasetSpec

__all__ = ["download_dataset", "download_file"]

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20
TIMEOUT_S = 60.0


def download_file(url: str, destination: Path, md5: str | None, *, timeout: float = TIMEOUT_S) -> Path:
    """Fetch ``url`` to ``destination`` atomically; DatasetError on network failure or MD5 mismatch."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".part", dir=destination.parent)
    digest = hashlib.md5(usedforsecurity=False)  # integrity against the published sums, not security
    n_bytes = 0
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                n_bytes += len(chunk)
        got = digest.hexdigest()
        if md5 is not None and got != md5:
            raise DatasetError(
                f"checksum mismatch for {url}: expected MD5 {md5}, got {got} ({n_bytes} bytes); the file was discarded"
            )
        if md5 is None:
            logger.warning("no published checksum for %s; kept it unchecked (MD5 %s)", url, got)
        os.replace(tmp, destination)
    except (urllib.error.URLError, OSError) as exc:
        raise DatasetError(f"download of {url} failed: {exc}") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    logger.info("downloaded %s (%d bytes) to %s", url, n_bytes, destination)
    return destination


def download_dataset(spec: DatasetSpec, target_dir: Path) -> Path:
    """Fetch every official file of ``spec`` missing from ``target_dir``; return ``target_dir``."""
    if not spec.files:
        raise DatasetError(f"data set {spec.name!r} has no files to download")
    for remote in spec.files:
        destination = target_dir / remote.filename
        if destination.is_file():
            logger.info("%s already present, not downloading", destination)
            continue
        download_file(spec.url(remote.filename), destination, remote.md5)
    return target_dir
