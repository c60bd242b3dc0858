"""What a run says when it ends: its summary, and how its budget went; the CLI prints it, the API keeps it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from search.coordinator.coordinator import RunSummary
from search.coordinator.job import JobResult
from search.study.datafile import describe_data
from search.study.durations import format_duration

__all__ = ["format_budget", "format_summary", "format_outcome"]


def format_outcome(r: JobResult) -> str:
    """The whole text of a finished ``run``: the summary, then the budget's when there is one."""
    text = format_summary(r.summary, r.url, r.jobs, r.record)
    return text + (f"\n{format_budget(r)}" if r.budget is not None else "")


def format_summary(s: RunSummary, url: str, jobs: int, record: dict[str, Any] | None = None) -> str:
    def mean(xs: Sequence[float]) -> str:
        return f"{sum(xs) / len(xs):.1f}" if xs else "-"

    writes = sum(sum(v) for v in s.write_ms.values()) / max(1, s.ran + s.failed + s.retries)
    best = (
        "-"
        if s.best_number is None
        else f"trial {s.best_number}: val {s.measure} {_score(s.best_score)}, val loss {s.best_value:.4f}"
    )
    rows = [
        ("study", f"{s.study}  ({url})"),
        ("trials in study", f"{s.finished} finished ({s.complete} complete, {s.pruned} pruned)"),
        (
            "this run",
            f"{s.ran} finished, {s.failed} failed, {s.retries} retried, {s.wall_seconds:.1f} s with {jobs} workers",
        ),
        ("finalist runs", f"{s.finalist_runs} in the study"),
        ("epochs", f"{s.epochs_run} run of {s.epochs_budget} budgeted"),
        ("best", best),
        (
            "coordinator ms/trial",
            f"ask {mean(s.ask_ms)}, dispatch {mean(s.dispatch_ms)}, "
            f"collect {mean(s.collect_ms)}, storage writes {writes:.1f} (off-path)",
        ),
        (
            "workers busy",
            f"{s.worker_busy:.0%} of wall time after start-up; peak RSS of a worker {s.worker_peak_rss_mb:.0f} MB",
        ),
        *(describe_data(record) if record else []),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def format_budget(r: JobResult) -> str:
    """How the budget was planned and spent, stage by stage; then the final ensemble's report."""
    assert r.budget is not None
    used = r.used if r.used is not None else r.spent_before + sum(r.stages.values())
    rows = [
        (
            "budget",
            f"{format_duration(r.budget)}: {format_duration(used)} used ({used / r.budget:.0%})"
            + (f", {format_duration(r.spent_before)} of it by earlier runs" if r.spent_before else ""),
        )
    ]
    rows += [(f"  {stage}", f"{format_duration(s)} ({s / r.budget:.0%})") for stage, s in r.stages.items()]
    if r.plan is not None:
        rows += r.plan.describe()
    if r.ended:
        rows.insert(1, ("", r.ended))
    width = max(len(k) for k, _ in rows)
    text = "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
    return text + (f"\n{r.final}" if r.final else "")
