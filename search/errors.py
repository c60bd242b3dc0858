"""The one error type the command line turns into a one-line message."""

from __future__ import annotations


class SearchError(Exception):
    """A problem the user can fix: bad input, a missing study, an unusable file.

    ``cli.main`` prints ``error: <message>`` and exits non-zero; anything else that
    escapes is a bug in this package, not in the user's input.
    """


class StudyFailedError(SearchError):
    """Too many trials in a row failed: going on would only spin."""
