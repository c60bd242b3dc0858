"""The reading boundary: whatever goes wrong while a file is read, checked or converted, one line naming it.

Every reader (table, ``.npz``, image folder, a single image, the built-in
formats) and every conversion after it (labels, splits, preprocessing, the
encoding of ``predict``'s inputs) runs inside ``reading(label)``, and nothing
is written before it has returned: no cache entry, no database, no study.

Inside it:
- a ``DatasetError`` leaves as one line that names the file (its name is put in
  front if the message lacks it; line breaks and unprintable characters of a
  file's name are escaped);
- ``MemoryError`` leaves as a ``DatasetError`` saying so: the estimates in
  ``memory`` are meant to refuse first, so this is the last guard;
- warnings (NumPy's overflow, pandas' dtype guesses, Pillow's) are logged, not
  printed between a command's lines;
- any other exception is a defect of a reader, not a property of the file: it
  leaves as ``ReaderDefect`` (a ``DatasetError``, so the command line still
  says one line and exits 2), with the traceback in the log. The tests that
  generate inputs (``tests/model/test_reading_properties.py``) fail on it.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

import numpy as np

from .errors import DatasetError
from .intake import shown

__all__ = ["ReaderDefect", "one_line", "reading"]

logger = logging.getLogger(__name__)


class ReaderDefect(DatasetError):
    """An exception no reader expected: a bug to fix, reported to the user as one line all the same."""


def one_line(text: str) -> str:
    """``text`` on one printable line: line breaks and control characters escaped."""
    return shown(text.strip()) if text.strip() else "(no message)"


def _named(message: str, label: str) -> str:
    """The message on one line, the file's path in front unless it names the file already."""
    text = one_line(message)
    name = label.rstrip("/").rsplit("/", 1)[-1]
    return text if name and name in text else f"{label}: {text}"


@contextlib.contextmanager
def reading(path: object) -> Iterator[None]:
    """Run a read or a conversion of ``path``: every failure leaves as one ``DatasetError`` line naming it."""
    label = shown(str(path))
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
        warnings.simplefilter("always")
        try:
            yield
        except ReaderDefect as exc:
            raise ReaderDefect(_named(str(exc), label)) from exc
        except DatasetError as exc:
            raise type(exc)(_named(str(exc), label)) from None
        except MemoryError:
            raise DatasetError(
                f"{label}: ran out of memory while converting it; use a machine with more memory or a sample"
            ) from None
        except Exception as exc:  # noqa: BLE001 -- the boundary: anything else is a reader's defect, said in one line
            logger.info("defect while reading %s", label, exc_info=True)  # shown with -v
            raise ReaderDefect(
                _named(f"cannot be read ({type(exc).__name__}: {exc}); this is a defect of the reader", label)
            ) from exc
        finally:
            for w in caught:
                logger.info("while reading %s: %s", label, w.message)
