"""Files as the readers take them: regular files only, links followed, every byte hashed as it is read.

A study is tied to its data by a content digest, and the digest must cover
exactly the bytes that become data: a file the reader skips must change
nothing, a file it reads must change the digest. So the digest and the reader
share everything here: one walk of a folder (``walk``), one policy for links
and special files (``open_regular``), and one hash (``Intake``) that the
reader feeds with the very bytes it then parses. ``content_digest`` in
``filesource`` hashes the same files in the same order without keeping them.

Links are followed, and what they point at is hashed like any file: a class
folder that is a link is part of the data, and a change behind the link is a
change of the data. A link that loops back to a folder holding it is refused,
and so is a special file (a FIFO, a device, a socket): reading one could
block, or never end.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from .errors import DatasetError
from .memory import MemoryBudget

__all__ = ["Intake", "hash_file", "open_regular", "shown", "subfolders", "walk"]

_CHUNK = 1 << 20
_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a device", stat.S_IFBLK: "a device", stat.S_IFSOCK: "a socket"}


def shown(path: str | os.PathLike[str]) -> str:
    """A path as one printable line, whatever bytes its name holds (``\\n``, invalid UTF-8...)."""
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def name_of(path: str | os.PathLike[str]) -> str:
    """A file or folder name as text that prints (a class name, a row's file name): invalid UTF-8 escaped."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def open_regular(path: Path) -> int:
    """A read-only descriptor of ``path``, links followed; anything but a regular file is refused by name."""
    try:  # O_NONBLOCK: opening a FIFO must not wait for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise DatasetError(f"{shown(path)}: cannot be read: {exc.strerror or exc}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        what = "a folder" if stat.S_ISDIR(mode) else _KINDS.get(stat.S_IFMT(mode), "not a regular file")
        raise DatasetError(f"{shown(path)}: {what}, not a file of data")
    return fd


def hash_file(h: hashlib._Hash, path: Path) -> None:
    """Feed ``h`` with the bytes of ``path``, in chunks (the digest of a file no reader holds whole)."""
    fd = open_regular(path)
    with os.fdopen(fd, "rb") as fh:
        try:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
        except OSError as exc:
            raise DatasetError(f"{shown(path)}: cannot be read: {exc.strerror or exc}") from None


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)  # follows links
    except OSError:  # a link to nothing, or a name that cannot be looked up: a file for whoever reads it
        return None


def subfolders(folder: Path) -> list[Path]:
    """The folder's non-hidden sub-folders (links to folders included), by name."""
    try:
        names = sorted(e.name for e in os.scandir(folder) if not e.name.startswith("."))
    except OSError as exc:
        raise DatasetError(f"{shown(folder)}: cannot list the folder: {exc.strerror or exc}") from None
    return [folder / n for n in names if (s := _stat(folder / n)) is not None and stat.S_ISDIR(s.st_mode)]


def walk(root: Path, above: frozenset[tuple[int, int]] = frozenset()) -> list[Path]:
    """Every non-hidden entry under ``root`` that is not a folder, in a fixed order, links followed.

    The order: a folder's files by name, then each sub-folder's, by name (``os.walk``'s, sorted).
    ``above``: (device, inode) of the folders that hold ``root``, so that a link back to one is refused.
    """
    top = _stat(root)
    if top is None or not stat.S_ISDIR(top.st_mode):
        raise DatasetError(f"{shown(root)}: not a folder that can be read")
    out: list[Path] = []
    stack = [(root, above | {(top.st_dev, top.st_ino)})]
    while stack:
        folder, held = stack.pop()
        try:
            names = sorted(e.name for e in os.scandir(folder) if not e.name.startswith("."))
        except OSError as exc:
            raise DatasetError(f"{shown(folder)}: cannot list the folder: {exc.strerror or exc}") from None
        inner = []
        for name in names:
            path = folder / name
            s = _stat(path)
            if s is None or not stat.S_ISDIR(s.st_mode):
                out.append(path)
            elif (s.st_dev, s.st_ino) in held:
                raise DatasetError(f"{shown(path)}: a link back to a folder that holds it; remove the link")
            else:
                inner.append((path, held | {(s.st_dev, s.st_ino)}))
        stack.extend(reversed(inner))
    return out


class Intake:
    """Reads the files of one input for its reader, hashing exactly the bytes it hands over.

    For a folder each file's path relative to ``root`` goes into the hash before its bytes,
    as ``content_digest`` does, so a renamed file changes the digest too.
    """

    def __init__(self, root: str | os.PathLike[str], budget: MemoryBudget | None = None) -> None:
        self.root = Path(root)
        self.budget = budget if budget is not None else MemoryBudget(shown(root))
        self._hash = hashlib.sha256()
        self._folder = self.root.is_dir()

    def read(self, path: Path, share: float = 1.0) -> bytes:
        """The bytes of ``path``; one larger than ``share`` of the memory budget is refused before it is read."""
        fd = open_regular(path)
        with os.fdopen(fd, "rb") as fh:
            size = os.fstat(fd).st_size
            hint = "use a smaller file or a machine with more memory"
            self.budget.check(size / share, f"reading {shown(path)}", hint)
            limit = int(self.budget.available * share)
            try:
                data = fh.read(limit + 1)  # a file that grows while it is read stops at the ceiling
            except OSError as exc:
                raise DatasetError(f"{shown(path)}: cannot be read: {exc.strerror or exc}") from None
        if len(data) > limit:
            self.budget.check(len(data) / share, f"reading {shown(path)}", "the file grew while it was read")
        if self._folder:
            self._hash.update(os.fsencode(path.relative_to(self.root)) + b"\0")
        self._hash.update(data)
        return data

    @property
    def digest(self) -> str:
        """SHA-256 of what was read so far, as ``content_digest`` computes it for the whole input."""
        return self._hash.hexdigest()
