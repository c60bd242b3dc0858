"""Durations as people write them (``90s``, ``30m``, ``1h30m``) and read them back.

Here, below every process package, because the study's spec checks a preset's
``budget = "30m"`` with the same rule as the ``--budget`` flag.
"""

from __future__ import annotations

import re

from search.errors import SearchError

__all__ = ["MAX_SECONDS", "format_duration", "parse_duration"]

MAX_SECONDS = 30 * 86400  # a budget is less than 30 days
_UNIT = {"s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> float:
    """``"30m"``, ``"90s"``, ``"2h"``, ``"1h30m"`` or plain seconds -> seconds."""
    s = str(text).strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", s):
        seconds = float(s)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", s)
        if not parts or "".join(n + u for n, u in parts) != s:
            raise SearchError(f"budget must be a duration like 90s, 30m, 2h or 1h30m, got {text!r}")
        seconds = sum(float(n) * _UNIT[u] for n, u in parts)
    if not 0 < seconds < MAX_SECONDS:
        raise SearchError(f"budget must be more than 0 s and less than 30 days, got {text!r}")
    return seconds


def format_duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.2f} h"
