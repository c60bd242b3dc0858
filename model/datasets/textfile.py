"""A table's bytes as text: decompressed within the memory ceiling, its encoding found, its size counted.

- gzip: every member is decompressed (a file may hold several; its size
  field describes only the last), counting the bytes as they stream, and
  refused once they pass what parsing could fit in memory;
- encoding: a byte order mark says UTF-8, UTF-16 or UTF-32; otherwise UTF-8,
  else Windows-1252 (what spreadsheets write on Windows; latin-1 text reads
  the same), said in a note; else refused naming the line and the byte;
- NUL bytes (a binary file, or UTF-16 without its mark) are refused by line.
"""

from __future__ import annotations

import codecs
import gzip
import io
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DatasetError
from .intake import shown
from .memory import MemoryBudget, size_text

__all__ = ["PARSE_BYTES_PER_BYTE", "Text", "decode_text", "text_columns"]

_CHUNK = 1 << 20
# Parsing holds at least three bytes per byte of text (the text, the parser's copy, the frame):
# decompressed text beyond a third of the ceiling cannot be parsed within it.
PARSE_BYTES_PER_BYTE = 3
# Decompression goes on counting (not keeping) past the ceiling up to this many times it, to say how much.
_COUNT_ON = 8
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16: its mark starts the same
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True)
class Text:
    data: bytes  # the text, decompressed, in ``encoding``
    encoding: str  # what pandas decodes it with
    note: str | None = None  # what a person should know about how it was read

    @property
    def ascii_compatible(self) -> bool:
        """Separators, digits and line ends are single bytes of their own (so they can be counted as bytes)."""
        return self.encoding in ("utf-8", "utf-8-sig", "cp1252")

    def head(self, n_lines: int) -> list[str]:
        """The first lines as text (the header, and a few rows for guessing the separator)."""
        end = 0
        for _ in range(n_lines):
            nl = self.data.find(b"\n", end)
            if nl < 0:
                end = len(self.data)
                break
            end = nl + 1
        return self.data[: min(end, 1 << 20)].decode(self.encoding, errors="replace").splitlines()


def _gunzip(raw: bytes, path: Path, budget: MemoryBudget) -> bytes:
    """Every member of a gzip stream, counted as it streams; past what can be parsed, refused."""
    limit = budget.available // PARSE_BYTES_PER_BYTE
    out = bytearray()
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as gz:
            while chunk := gz.read(_CHUNK):
                out += chunk
                if len(out) > limit:
                    total, more = len(out), True
                    del out[:]  # keep nothing more: only count, to say how much it holds
                    while more and total < _COUNT_ON * max(limit, 1):
                        more = bool(chunk := gz.read(_CHUNK))
                        total += len(chunk)
                    budget.check(
                        total * PARSE_BYTES_PER_BYTE,
                        f"its text ({'at least ' if more else ''}{size_text(total)} once decompressed)",
                        "use a sample of the rows, or a machine with more memory",
                    )
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise DatasetError(f"{shown(path)}: not a readable gzip file ({exc})") from None
    return bytes(out)


def _first_bad(data: bytes, encoding: str) -> int | None:
    """The offset of the first byte that is not ``encoding`` text, or None; checked in chunks."""
    decoder = codecs.getincrementaldecoder(encoding)()
    for start in range(0, len(data), _CHUNK):
        try:
            decoder.decode(data[start : start + _CHUNK], final=start + _CHUNK >= len(data))
        except UnicodeDecodeError as exc:
            return max(0, start + exc.start - len(decoder.getstate()[0]))
    return None


def _where(data: bytes, offset: int) -> str:
    """An offset as a person finds it in an editor: line and byte within the line, from 1."""
    line = data.count(b"\n", 0, offset) + 1
    line_start = data.rfind(b"\n", 0, offset) + 1
    return f"line {line}, byte {offset - line_start + 1}"


def decode_text(raw: bytes, path: Path, budget: MemoryBudget) -> Text:
    """The bytes of a table file as text in a known encoding (gzip first, if the name says so)."""
    data = _gunzip(raw, path, budget) if path.name.lower().endswith(".gz") else raw
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return Text(data, encoding)
    nul = data.find(b"\0")
    if nul >= 0:
        raise DatasetError(
            f"{shown(path)}: holds NUL bytes ({_where(data, nul)}): not a text table; a spreadsheet "
            "saves one as CSV in UTF-8 (or UTF-16 with its byte order mark)"
        )
    bad = _first_bad(data, "utf-8")
    if bad is None:
        return Text(data, "utf-8")
    if _first_bad(data, "cp1252") is None:
        return Text(data, "cp1252", "read as Windows-1252 text: it is not UTF-8")
    raise DatasetError(
        f"{shown(path)}: not text in UTF-8 or Windows-1252 (byte 0x{data[bad]:02x} on {_where(data, bad)}); "
        "save it as CSV in UTF-8"
    )


def text_columns(text: Text, sep: str, decimal: str, n_columns: int) -> int:
    """How many columns may hold text (and so one string per cell once parsed), from the bytes.

    A column holds text if any of its cells has a byte outside numbers; with quotes in the
    file (a quoted cell can hold the separator) or an encoding whose characters are not single
    bytes, cells cannot be told apart by bytes, and every column is counted.
    """
    if not text.ascii_compatible or b'"' in text.data or len(sep) != 1 or len(decimal) != 1:
        return n_columns
    numeric = np.zeros(256, dtype=bool)
    numeric[list(b"0123456789+-.eE \t\r\n")] = True
    numeric[[ord(sep), ord(decimal)]] = True
    start = text.data.find(b"\n") + 1  # after the header
    if start == 0:
        return 0
    found: set[int] = set()
    while start < len(text.data) and len(found) < n_columns:
        end = text.data.find(b"\n", start + _CHUNK)
        end = len(text.data) if end < 0 else end + 1
        a = np.frombuffer(text.data, dtype=np.uint8, count=end - start, offset=start)  # whole lines
        is_text = ~numeric[a]
        if is_text.any():
            cs = np.cumsum(a == ord(sep), dtype=np.int64)  # separators so far
            base = np.zeros(len(a), dtype=np.int64)
            nl = np.flatnonzero(a[:-1] == 10)
            base[nl + 1] = cs[nl]
            column = cs - np.maximum.accumulate(base)  # each byte's column within its line
            found.update(np.unique(column[is_text]).tolist())
        start = end
    return min(len(found), n_columns)
