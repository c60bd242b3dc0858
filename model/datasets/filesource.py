"""A user's data file: which kind it is, what its content is, whether it fits in memory.

A study is tied to its data by content, not by name: ``content_digest`` is a
SHA-256 of the bytes (of every file, with its relative path, for a folder), so
a file that changed since the study began is recognised wherever it lies, and
the prepared arrays are cached under the digest rather than the path.

The options that change how a file is read (target column, array keys, image
size, how missing values are treated) travel with the path in one frozen
``FileSource``: it is what a worker needs to find the cache entry, and what it
would need to rebuild the entry on a machine that has none.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from .errors import DatasetError

__all__ = [
    "KINDS",
    "MISSING",
    "TABLE_SUFFIXES",
    "FileSource",
    "available_memory",
    "check_fits_in_memory",
    "content_digest",
    "file_kind",
    "parse_image_size",
]

# What a file can be: arrays in an .npz, a table (CSV/TSV, maybe gzipped), a folder of images.
KINDS: tuple[str, ...] = ("npz", "table", "images")
# How a table's missing values are treated: imputed (median + indicator, or a category), or refused.
MISSING: tuple[str, ...] = ("impute", "refuse")
TABLE_SUFFIXES: tuple[str, ...] = (".csv", ".tsv", ".tab", ".txt")
_CHUNK = 1 << 20


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

    @property
    def kind(self) -> str:
        return file_kind(self.path)

    @property
    def label(self) -> str:
        """The name a person knows the data by: the file or folder name."""
        return Path(self.path).name


def file_kind(path: str | os.PathLike[str]) -> str:
    """One of KINDS, from what ``path`` is; a DatasetError names a path that is none of them."""
    p = Path(path)
    if p.is_dir():
        return "images"
    if not p.exists():
        raise DatasetError(f"{p}: no such file or folder")
    suffixes = [s.lower() for s in p.suffixes[-2:]]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] == ".npz":
        return "npz"
    if suffixes and suffixes[-1] in TABLE_SUFFIXES:
        return "table"
    raise DatasetError(
        f"{p}: not a data file this tool reads; give an .npz, a table ({', '.join(TABLE_SUFFIXES)}, "
        "optionally .gz) or a folder of images with one sub-folder per class"
    )


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


def _files_under(root: Path) -> list[Path]:
    """Every non-hidden file under a folder, in a fixed order (the digest and the reading order)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out += [Path(dirpath) / f for f in sorted(filenames) if not f.startswith(".")]
    return out


def content_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes; for a folder, of each file's relative path and bytes, in order."""
    p = Path(path)
    h = hashlib.sha256()
    files = _files_under(p) if p.is_dir() else [p]
    try:
        for f in files:
            if p.is_dir():
                h.update(str(f.relative_to(p)).encode() + b"\0")
            with open(f, "rb") as fh:
                while chunk := fh.read(_CHUNK):
                    h.update(chunk)
    except OSError as exc:
        raise DatasetError(f"{p}: cannot read {exc.filename or p}: {exc.strerror or exc}") from None
    return h.hexdigest()


def available_memory() -> int:
    """Bytes this machine can still give a process without swapping (Linux: MemAvailable)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _unpacked_size(p: Path) -> int:
    """The bytes a file holds once decompressed (gzip keeps it, modulo 4 GiB, in its last 4 bytes)."""
    size = p.stat().st_size
    if p.suffix.lower() == ".gz" and size >= 18:
        with open(p, "rb") as fh:
            fh.seek(-4, os.SEEK_END)
            (isize,) = struct.unpack("<I", fh.read(4))
        return max(isize, size)
    return size


def _table_bytes_per_cell(p: Path) -> float:
    """Bytes of text per cell, from the first lines: a parsed cell costs 8 bytes whatever its text."""
    opener = gzip.open if p.suffix.lower() == ".gz" else open
    try:
        with opener(p, "rb") as fh:
            head = fh.read(1 << 16)
    except (OSError, EOFError):
        return 8.0  # unreadable: the reader says why
    lines = head.splitlines()[1:-1] or head.splitlines()
    cells = sum(max(1, line.count(b",") + line.count(b"\t") + 1) for line in lines)
    return max(1.0, len(head) / max(1, cells))


# A parsed table is held about three times over while it is encoded (the frame, the
# encoder's float64 output, the float32 splits); arrays and images about twice.
_COPIES = {"table": 3.0, "npz": 2.0, "images": 2.0}


def check_fits_in_memory(path: str | os.PathLike[str], kind: str, available: int | None = None) -> None:
    """Refuse, before reading it all, a file whose arrays would not fit in the memory left."""
    p = Path(path)
    if kind == "images":
        return  # decoded one image at a time; the arrays' size is checked once the first image is read
    if kind == "npz":
        import zipfile

        try:
            with zipfile.ZipFile(p) as zf:
                need = float(sum(i.file_size for i in zf.infolist()))
        except (OSError, zipfile.BadZipFile) as exc:
            raise DatasetError(f"{p}: not a readable .npz ({exc})") from None
    else:
        need = _unpacked_size(p) * 8.0 / _table_bytes_per_cell(p)
    need *= _COPIES[kind]
    free = available_memory() if available is None else available
    if need > free:
        raise DatasetError(
            f"{p}: reading it needs about {need / 2**30:.1f} GiB of memory and {free / 2**30:.1f} GiB "
            "are available; use a machine with more memory or a sample of the rows"
        )
