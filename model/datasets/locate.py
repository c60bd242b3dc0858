"""Where raw files are looked for, in order, and how they are recognised.

Search order for data set ``<name>`` (``<source>`` is the raw directory name,
the same as the name except that ``cifar100-coarse`` shares ``cifar100``):

1. ``data_dir`` given to ``load_dataset``: the files directly in it, or in
   ``data_dir/<source>``;
2. ``$NUMPY_HPSEARCH_DATA``: likewise a directory holding ``<source>/``
   subdirectories, or the files directly;
3. the user cache ``$XDG_CACHE_HOME/numpy-hpsearch/<source>`` (default
   ``~/.cache/numpy-hpsearch/<source>``), where ``download=True`` puts files;
4. ``/usr/share/datasets/<source>`` (Debian's ``dataset-*`` packages).

The first directory holding a complete set of files wins; a later one is never
mixed in, so train and test files always come from the same place.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import DatasetNotFoundError
from .registry import CIFAR_LAYOUT, IDX_FILES, DatasetSpec

__all__ = ["DATA_ENV", "SYSTEM_DATA_DIRS", "RawSource", "candidate_dirs", "find_in", "locate", "user_data_dir"]

logger = logging.getLogger(__name__)

DATA_ENV = "NUMPY_HPSEARCH_DATA"
APP_NAME = "numpy-hpsearch"
# Module-level so tests can point it at an empty directory.
SYSTEM_DATA_DIRS: tuple[str, ...] = ("/usr/share/datasets",)


@dataclass(frozen=True, slots=True)
class RawSource:
    """Raw files found for one data set.

    ``paths`` maps a role to a file: for IDX the roles are the four standard
    names without ``.gz``; for CIFAR ``"archive"`` (the .tar.gz) or each member
    name (an extracted directory).
    """

    format: str
    paths: dict[str, Path]

    def fingerprint(self) -> list[tuple[str, int, int]]:
        """(path, size, mtime_ns) of every file: changes when any raw file does."""
        out = []
        for role in sorted(self.paths):
            st = self.paths[role].stat()
            out.append((str(self.paths[role].resolve()), st.st_size, st.st_mtime_ns))
        return out


def user_cache_root() -> Path:
    """``$XDG_CACHE_HOME/numpy-hpsearch`` or ``~/.cache/numpy-hpsearch``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / APP_NAME


def user_data_dir(spec: DatasetSpec) -> Path:
    """Where ``download=True`` stores the raw files of ``spec``."""
    return user_cache_root() / spec.source


def candidate_dirs(spec: DatasetSpec, data_dir: str | os.PathLike[str] | None) -> list[Path]:
    """Every directory searched, in order (see the module docstring)."""
    dirs: list[Path] = []
    for root in (data_dir, os.environ.get(DATA_ENV) or None):
        if root is not None:
            dirs += [Path(root), Path(root) / spec.source]
    dirs.append(user_data_dir(spec))
    dirs += [Path(d) / spec.source for d in SYSTEM_DATA_DIRS]
    return dirs


def _idx_variants(filename: str) -> list[str]:
    """Accepted spellings of a standard IDX name, gzipped or not.

    ``train-images-idx3-ubyte.gz`` -> also ``train-images-idx3-ubyte`` and the
    dotted ``train-images.idx3-ubyte`` (as some unpackers name them).
    """
    stem = filename.removesuffix(".gz")
    head, _, tail = stem.rpartition("-idx")
    dotted = f"{head}.idx{tail}"
    return [stem + ".gz", stem, dotted + ".gz", dotted]


def find_in(spec: DatasetSpec, directory: Path) -> RawSource | None:
    """The raw files of ``spec`` in ``directory``, or None if any is missing."""
    if not directory.is_dir():
        return None
    if spec.format == "idx":
        paths = {}
        for filename in IDX_FILES:
            hit = next((directory / v for v in _idx_variants(filename) if (directory / v).is_file()), None)
            if hit is None:
                return None
            paths[filename.removesuffix(".gz")] = hit
        return RawSource("idx", paths)
    layout = CIFAR_LAYOUT[spec.format]
    if (directory / layout.archive).is_file():
        return RawSource(spec.format, {"archive": directory / layout.archive})
    for extracted in (directory / layout.folder, directory):
        if all((extracted / m).is_file() for m in layout.members):
            return RawSource(spec.format, {m: extracted / m for m in layout.members})
    return None


def locate(spec: DatasetSpec, data_dir: str | os.PathLike[str] | None) -> RawSource:
    """The first complete set of raw files; DatasetNotFoundError lists all tried."""
    tried = candidate_dirs(spec, data_dir)
    for directory in tried:
        found = find_in(spec, directory)
        if found is not None:
            logger.debug("found %s raw files in %s", spec.name, directory)
            return found
    raise DatasetNotFoundError(not_found_message(spec, tried))


def not_found_message(spec: DatasetSpec, tried: list[Path]) -> str:
    """Every path tried and every way to get the files."""
    if spec.format == "idx":
        wanted = ", ".join(IDX_FILES) + " (gzipped or not)"
    else:
        layout = CIFAR_LAYOUT[spec.format]
        wanted = f"{layout.archive} or its extracted {layout.folder}/"
    lines = [f"data set {spec.name!r} not found: looked for {wanted} in"]
    lines += [f"  {p}" for p in tried]
    lines.append("to get it:")
    if spec.install_hint:
        lines.append(f"  {spec.install_hint}")
    lines.append(f"  load_dataset({spec.name!r}, download=True)  (or the CLI's download option)")
    lines += [f"  download {spec.url(f.filename)} into one of the directories above" for f in spec.files]
    lines.append(f"  or set ${DATA_ENV} to a directory holding {spec.source}/ or the files")
    return "\n".join(lines)
