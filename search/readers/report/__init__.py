"""The study report: one command writes the page people assemble by hand.

``write_report(study, storage, out, fmt)`` reads the study once, read-only (safe
while a run writes it), and writes either one self-contained HTML file or a
Markdown file with a folder of PNGs beside it.
"""

from __future__ import annotations

import datetime
import logging
import time
from pathlib import Path

from search.errors import SearchError
from search.readers.report.facts import StudyFacts, gather
from search.readers.report.parallel import Plot, draw_all
from search.readers.report.render import Image, Section, to_html, to_markdown
from search.readers.results import REPORT_FORMATS
from search.study.storage import default_url, sqlite_path

__all__ = ["FORMATS", "build_sections", "default_report_path", "gather", "write_report"]

logger = logging.getLogger(__name__)

FORMATS = REPORT_FORMATS


def build_sections(facts: StudyFacts, data_dir: str | None = None) -> list[Section]:
    from search.readers.report import sections, sections_figures, tables, winner_section

    return [
        sections.summary(facts),
        winner_section.winner(facts),
        sections.leaderboard_section(facts),
        sections.importance_section(facts),
        sections_figures.figures_section(facts),
        sections_figures.pruning_section(facts),
        sections_figures.timeline_section(facts),
        sections_figures.tradeoff_section(facts, tables.n_features(facts, data_dir)),
    ]


def draw_plots(sections: list[Section]) -> list[Section]:
    """The sections with every ``Plot`` drawn into an ``Image`` (a plot with nothing to show is dropped)."""
    pending = [b for s in sections for b in s.blocks if isinstance(b, Plot)]
    drawn = dict(zip(map(id, pending), draw_all(pending)))
    out = []
    for s in sections:
        blocks = [b if not isinstance(b, Plot) else (Image(b.name, drawn[id(b)], b.alt) if drawn[id(b)] else None)
                  for b in s.blocks]
        out.append(Section(s.key, s.title, [b for b in blocks if b is not None]))
    return out


def default_report_path(study: str, storage: str | None, fmt: str) -> Path:
    """``<database dir>/<study>-report.<html|md>`` for SQLite; ``./<study>-report.<fmt>`` otherwise."""
    path = sqlite_path(storage if storage is not None else default_url(study))
    return (path.parent if path is not None else Path(".")) / f"{study}-report.{fmt}"


def write_report(study: str, storage: str | None = None, out: str | Path | None = None, fmt: str = "html",
                 data_dir: str | None = None) -> Path:
    """Write the report of ``study``; return the file written."""
    if fmt not in FORMATS:
        raise SearchError(f"report format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    start = time.perf_counter()
    facts = gather(study, storage)
    sections = draw_plots(build_sections(facts, data_dir))
    when = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    title = f"Study report: {study}"
    subtitle = (f"{len(facts.df)} trials read at {when}; every number below is computed from the study "
                "by `python -m search report`.")
    path = Path(out) if out is not None else default_report_path(study, storage, fmt)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "html":
            path.write_text(to_html(title, subtitle, sections), encoding="utf-8")
        else:
            images = path.with_name(f"{path.stem}-images")
            path.write_text(to_markdown(title, subtitle, sections, images), encoding="utf-8")
    except OSError as exc:
        raise SearchError(f"cannot write the report to {str(path)!r}: {exc.strerror}") from None
    logger.info("report of %r written to %s in %.1f s", study, path, time.perf_counter() - start)
    return path
