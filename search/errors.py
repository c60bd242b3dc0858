"""The one error type the command line turns into a one-line message."""

from __future__ import annotations


class SearchError(Exception):
    """A problem the user can fix: bad input, a missing study, an unusable file.

    ``cli.main`` prints ``error: <message>`` and exits non-zero; anything else that
    escapes is a bug in this package, not in the user's input.
    """


class StudyFailedError(SearchError):
    """Too many trials in a row failed: going on would only spin."""


class StorageWriteError(SearchError):
    """The storage refused a write (disk full, read-only, server gone): the run stops."""


def root_cause(exc: BaseException) -> str:
    """The first line of the innermost error, for messages about wrapped driver errors.

    Optuna wraps SQLAlchemy's error, which wraps the driver's ("disk I/O error");
    only the last says what happened.
    """
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "orig", None) or exc.__cause__
        if not isinstance(inner, BaseException):
            break
        exc = inner
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
