"""The valid values of a study's numeric settings: each rule stated once, used twice.

A rule checks a value from a preset, a stored study or Python (``check``: what
``StudySpec.__post_init__`` calls) and reads a ``run`` flag's text (``parse``:
what the flag and ``search.run``'s keyword call, search/study/settings.py). So
``--trials 0``, ``trials = 0`` in a preset and ``search.run(trials=0)`` are
refused by one rule, with one reason. A rule's reason names no setting
(``must be a whole number >= 1, got 0``): each caller says whose it is in its
own way (``trials must be ...``, ``argument --trials: must be ...``).

Here, apart from spec.py, so that search/study/settings.py and spec.py share
the rules without importing each other in a circle.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from model.config import Interval
from search.errors import SearchError
from search.study.durations import parse_duration

__all__ = ["Choice", "Duration", "Fraction", "Rule", "WholeNumber", "int_at_least", "named"]


class Rule(Protocol):
    """The values one setting may take."""

    def check(self, value: Any) -> Any:
        """A value from a preset, a stored study or Python -> the value; SearchError says why not."""

    def parse(self, text: str) -> Any:
        """A flag's text -> the value; SearchError says why not."""


@dataclass(frozen=True)
class WholeNumber:
    """A whole number from ``low`` to ``high`` (None: no upper end)."""

    low: int
    high: int | None = None

    @classmethod
    def within(cls, interval: Interval) -> WholeNumber:
        """The rule of a TrainConfig field (``model.config.RANGES``), for the study setting that is that field."""
        if not interval.integer or interval.low_open or interval.high_open:
            raise ValueError(f"not a closed range of whole numbers: {interval}")
        return cls(int(interval.low), None if interval.high == math.inf else int(interval.high))

    def __str__(self) -> str:
        if self.high is None:
            return f"a whole number >= {self.low}"
        return f"a whole number from {self.low} to {self.high}"

    def check(self, value: Any) -> int:
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < self.low
            or (self.high is not None and value > self.high)
        ):
            raise SearchError(f"must be {self}, got {value!r}")
        return value

    def parse(self, text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise SearchError(f"must be {self}, got {text!r}") from None
        return self.check(value)


@dataclass(frozen=True)
class Fraction:
    """A real number in ``interval``, e.g. ``(0, 0.5]``."""

    interval: Interval

    def check(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value not in self.interval:
            raise SearchError(f"must be in {self.interval}, got {value!r}")
        return value

    def parse(self, text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise SearchError(f"must be in {self.interval}, got {text!r}") from None
        return self.check(value)


@dataclass(frozen=True)
class Choice:
    """One of a few names, e.g. ``("classification", "regression")``."""

    values: tuple[str, ...]

    def __str__(self) -> str:
        return f"one of {', '.join(self.values)}"

    def check(self, value: Any) -> str:
        if not isinstance(value, str) or value not in self.values:
            raise SearchError(f"must be {self}, got {value!r}")
        return value

    def parse(self, text: str) -> str:
        return self.check(text)


@dataclass(frozen=True)
class Duration:
    """Seconds, or a duration as people write it (``"30m"``, ``"1h30m"``); its range is ``parse_duration``'s."""

    def check(self, value: Any) -> float:
        if isinstance(value, str):  # a preset's "30m"
            return parse_duration(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SearchError(f"budget must be a duration like 90s, 30m or 2h, or seconds, got {value!r}")
        # written out in plain digits (1e-05 -> "0.00001"), the number meets parse_duration's range check
        parse_duration(str(value) if isinstance(value, int) else f"{Decimal(repr(value)):f}")
        return value

    def parse(self, text: str) -> float:
        return parse_duration(text)


def named(name: str, exc: SearchError) -> SearchError:
    """A rule's reason as the setting ``name``'s: ``trials must be ...`` (a reason that names it stays as it is)."""
    reason = str(exc)
    return SearchError(reason if reason.startswith(f"{name} ") else f"{name} {reason}")


def int_at_least(low: int) -> Callable[[str], int]:
    """A flag's text -> a whole number >= ``low`` (for flags that are not study settings: ``--jobs``, ``--top``)."""
    return WholeNumber(low).parse
