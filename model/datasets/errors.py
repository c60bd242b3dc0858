"""Exception types of the data-set loaders.

``DatasetError`` subclasses ``ValueError`` because every failure here is a bad
input (a name, an option or a file's bytes); ``DatasetNotFoundError`` is also a
``FileNotFoundError`` so callers that already handle missing files keep working.
"""

from __future__ import annotations

__all__ = ["DatasetError", "DatasetNotFoundError"]


class DatasetError(ValueError):
    """A bad data-set name or option, or a raw file that is corrupt or truncated.

    The message names the bad value (or file) and what would have been accepted.
    """


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """The raw files of a data set were in none of the places searched.

    The message lists every path tried and how to obtain the files.
    """
