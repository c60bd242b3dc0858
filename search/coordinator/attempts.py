"""Trials whose parameters are known before they are asked, and the retry policy.

Two kinds of trial are planned instead of sampled: the re-run of a trial whose
worker was lost (or whose run stopped under it), and a finalist run. Both are a
``Planned``. The retry policy lives here alone: a re-run keeps the parameters and
the seed, is stored with ``retry_of: <number>`` and ``attempt: <n>``, and a
configuration that lost its worker on ``MAX_ATTEMPTS`` attempts is given up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from search.study import keys

# A configuration whose worker dies this many times (the kernel's OOM killer, a
# crash in native code) is failed for good instead of being re-run forever.
MAX_ATTEMPTS = 3


@dataclass(slots=True)
class Planned:
    """A trial to run with these parameters: a re-run or a finalist run."""

    params: dict[str, Any]
    seed: int | None  # None: a fresh seed from the trial's number
    attrs: dict[str, Any] = field(default_factory=dict)  # stage, finalist_of, repeat
    attempt: int = 1
    retry_of: int | None = None  # the trial this one runs again

    @property
    def finalist(self) -> bool:
        return self.attrs.get(keys.STAGE) == keys.FINALIST

    def retry(self, number: int) -> Planned:
        """The same parameters and seed, run again in place of trial ``number``."""
        return Planned(self.params, self.seed, dict(self.attrs), self.attempt + 1, retry_of=number)

    def retry_markers(self) -> dict[str, Any]:
        """The user attrs that mark a re-run in the storage; none for a first attempt."""
        return {} if self.retry_of is None else {keys.RETRY_OF: self.retry_of, keys.ATTEMPT: self.attempt}


def after_lost_worker(run: Planned, number: int, *, retryable: bool) -> Planned | None:
    """The re-run of trial ``number`` whose worker was lost, or None: given up.

    Given up when the executor has already re-run it itself (``retryable=False``,
    Dask's ``KilledWorker``) or when this was attempt ``MAX_ATTEMPTS``.
    """
    if not retryable or run.attempt >= MAX_ATTEMPTS:
        return None
    return run.retry(number)
