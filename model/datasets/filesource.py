"""A user's data file: which kind it is and what its content is.

A study is tied to its data by content, not by name: ``content_digest`` is a
SHA-256 of the bytes that become data (of every image the reader reads, with
its relative path, for a folder: see ``intake``), so a file that changed since
the study began is recognised wherever it lies, and the prepared arrays are
cached under the digest rather than the path.

The options that change how a file is read (target column, array keys, image
size, how missing values are treated) travel with the path in one frozen
``FileSource``: it is what a worker needs to find the cache entry, and what it
would need to rebuild the entry on a machine that has none.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import DatasetError
from .imagefolder import image_files
from .intake import hash_file, shown

__all__ = [
    "KINDS",
    "MISSING",
    "TABLE_SUFFIXES",
    "FileSource",
    "content_digest",
    "file_kind",
    "parse_image_size",
]

# What a file can be: arrays in an .npz, a table (CSV/TSV, maybe gzipped), a folder of images.
KINDS: tuple[str, ...] = ("npz", "table", "images")
# How a table's missing values are treated: imputed (median + indicator, or a category), or refused.
MISSING: tuple[str, ...] = ("impute", "refuse")
TABLE_SUFFIXES: tuple[str, ...] = (".csv", ".tsv", ".tab", ".txt")


@dataclass(frozen=True, slots=True)
class FileSource:
    """A data file and how to read it; ``digest`` is its content when the study began."""

    path: str  # absolute
    digest: str = ""  # content_digest(path); "" = not yet computed
    target: str | None = None  # a table's label column (None: the last column)
    x_key: str | None = None  # an .npz's feature array (None: by convention)
    y_key: str | None = None  # an .npz's label array
    image_size: tuple[int, int] | None = None  # (H, W) every image is resized to; None: as they are
    missing: str = "impute"  # one of MISSING
    task: str | None = None  # "classification" or "regression" (owndata.TASKS); None: decided from the target

    @property
    def kind(self) -> str:
        """What the file is; by its name alone once it is gone (a study's data moved away is still a table)."""
        return file_kind(self.path) if os.path.lexists(self.path) else _kind_by_name(Path(self.path))

    @property
    def label(self) -> str:
        """The name a person knows the data by: the file or folder name."""
        return Path(self.path).name


def _kind_by_name(p: Path) -> str:
    """The kind a name says: a name without a known suffix (a folder's) says images."""
    suffixes = [x.lower() for x in p.suffixes[-2:]]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] == ".npz":
        return "npz"
    if suffixes and suffixes[-1] in TABLE_SUFFIXES:
        return "table"
    return "images"


def file_kind(path: str | os.PathLike[str]) -> str:
    """One of KINDS, from what ``path`` is; a DatasetError names a path that is none of them."""
    p = Path(path)
    if p.is_dir():
        return "images"
    if not os.path.lexists(p):
        raise DatasetError(f"{shown(p)}: no such file or folder")
    kind = _kind_by_name(p)
    if kind == "images":
        raise DatasetError(
            f"{shown(p)}: not a data file this tool reads; give an .npz, a table ({', '.join(TABLE_SUFFIXES)}, "
            "optionally .gz) or a folder of images with one sub-folder per class"
        )
    return kind


def parse_image_size(text: str) -> tuple[int, int]:
    """``"28x28"`` -> (28, 28): height by width, as the images are shown."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise DatasetError(f"image size must be HxW in pixels, e.g. 28x28, got {text!r}") from None
    if not (1 <= h <= 4096 and 1 <= w <= 4096):
        raise DatasetError(f"image size must be 1..4096 pixels each way, got {text!r}")
    return h, w


def content_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes; for a folder, of each image the reader reads: relative path and bytes, in order."""
    p = Path(path)
    h = hashlib.sha256()
    if p.is_dir():
        for f in image_files(p):
            h.update(os.fsencode(f.path.relative_to(p)) + b"\0")
            hash_file(h, f.path)
    else:
        hash_file(h, p)
    return h.hexdigest()
