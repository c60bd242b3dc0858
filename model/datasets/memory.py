"""The memory a conversion may use, and the refusal of one that would need more.

The ceiling: converting a file (reading, decompressing, parsing, encoding and
splitting it) never holds more than the memory that was available when the
conversion started (Linux's ``MemAvailable``: what the machine can give
without swapping). Estimates from a file's size alone are easy to defeat (a
gzip file's size field describes its last member only; a 48 KB PNG can hold
20000 x 20000 pixels), so each stage states its need from what has actually
been read, and is checked before it runs:

- a file's bytes: their size on disk, before they are read;
- decompressed text: counted as it streams, and refused as soon as it passes
  the share of the ceiling that parsing it could fit in;
- a parsed table: its lines, cells and text columns counted in the bytes;
  an encoded table: its rows times the width of its encoding, before the fit;
- an ``.npz``: each array's shape and type from its header, before it is loaded;
- images: each image's width, height and mode from its header, before any is
  decoded (and Pillow's own limit, ``Image.MAX_IMAGE_PIXELS``, honoured).

The costs per byte, cell and pixel are measured upper bounds (see the
constants beside each reader); ``tests/model/test_memory_ceiling.py`` holds a
converting process's peak memory under the ceiling for inputs built to defeat
an estimate.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .errors import DatasetError

__all__ = ["MemoryBudget", "available_memory", "size_text"]


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


def size_text(n: float) -> str:
    """Bytes for a person: ``1.5 GiB``, ``12 MiB``, ``900 bytes``."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}" if n < 10 * scale else f"{n / scale:.0f} {unit}"
    return f"{int(n)} bytes"


@dataclass
class MemoryBudget:
    """The ceiling of one conversion: ``available`` bytes, taken when it starts."""

    label: str  # the file a refusal names, as shown to a person
    available: int = field(default_factory=lambda: available_memory())

    def check(self, need: float, what: str, hint: str) -> None:
        """Refuse, before it runs, a stage that would hold ``need`` bytes (what it already holds included)."""
        if need > self.available:
            raise DatasetError(
                f"{self.label}: {what} needs about {size_text(need)} of memory and "
                f"{size_text(self.available)} are available; {hint}"
            )
