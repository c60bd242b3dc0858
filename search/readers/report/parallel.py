"""Drawing the report's figures on every core.

Why: drawing is most of a report's time (text layout in the heatmaps: about
0.6 s of CPU each), and the figures are independent. Forked children inherit
the study already read and the modules already imported, and send back only
PNG bytes; each figure's closure stays in the parent's memory, never pickled.
Where fork is unavailable or unsafe (other threads running), or there are
few figures, they are drawn in turn.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from matplotlib.figure import Figure

from search.readers.report.figures import png

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plot:
    """A figure still to draw: ``make`` returns it, or None when there is nothing to show."""

    name: str
    alt: str
    make: Callable[[], Figure | None]


_PENDING: Sequence[Plot] = ()  # set just before forking; read by the children


def _draw(index: int) -> bytes | None:
    fig = _PENDING[index].make()
    return None if fig is None else png(fig)


def _workers(n_plots: int) -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, n_plots // 2))


def draw_all(plots: Sequence[Plot]) -> list[bytes | None]:
    """PNG bytes (or None) for each of ``plots``, in order."""
    global _PENDING
    workers = _workers(len(plots))
    # forking a process with other threads (a notebook kernel, a server) can copy a held lock
    if workers < 2 or "fork" not in multiprocessing.get_all_start_methods() or threading.active_count() > 1:
        return [_draw_one(p) for p in plots]
    _PENDING = plots
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            # longest first (heatmaps are listed first): the pool balances the rest
            return pool.map(_draw, range(len(plots)), chunksize=1)
    finally:
        _PENDING = ()


def _draw_one(plot: Plot) -> bytes | None:
    fig = plot.make()
    return None if fig is None else png(fig)
