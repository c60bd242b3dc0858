"""Project errors: numerical blow-up has its own type so callers can record it and go on."""

from __future__ import annotations

__all__ = ["DivergedError"]


class DivergedError(FloatingPointError):
    """Training produced a non-finite loss; the message says where (epoch, batch, value).

    Raised by the training loop's per-batch check and caught by :func:`model.train`,
    which turns it into ``TrainResult(outcome="diverged", reason=str(error))``.
    Exported so that callers running lower-level code can catch it too.
    """
