"""The figures of each checkpoint's window, and how the bench prints them.

A checkpoint is a number of finished trials in the study; its window is the last 10% of the
trials before it (``window_start``), so that its figures are a sustained rate, not the start-up.
The columns, per window:

    trials/s    finished trials per second of wall time in the window (sustained rate)
    started     trials dispatched in the window
    loop        share of the window's wall time the coordinator spent in ask + dispatch + collect
    idle        fraction of the K virtual workers' time in the window without a task
                (includes the simulator's lag, printed apart)
    ask         ms per trial in ``Coordinator._next_trial``: sampler ask + suggest + the
                TrialTask (the snapshot tuple) -- RunSummary.ask_ms
    dispatch    ms per trial in submit + recording the new trial -- RunSummary.dispatch_ms;
                ``pickle`` is the part spent pickling the task inside submit
    collect     ms per trial reading and recording a result (tell, curve) -- RunSummary.collect_ms
    write       ms per trial of storage writes (create + finish) in the writer thread, off the
                dispatch path (it includes waits for the GIL held by the coordinator's thread);
                ``backlog`` is the writer's queue length at the checkpoint
    RSS         the coordinator process's resident memory (psutil)
    task KB     the pickled TrialTask (most of it the pruning snapshot)
    sim         the simulator process's CPU share of one core, and how late (ms, mean) results left it:
                if it nears 100% the simulator, not the coordinator, limits the rate
    worker      CPU ms per task of the real worker-side pruning on the sampled tasks
                (unpickle + local_trial + decisions): worker cost in a real run
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from search.coordinator.coordinator import RunSummary
from tests.bench.scale.executor import Mark, SimulatedExecutor


@dataclass
class Window:
    """One printed row: the figures between two marks."""

    checkpoint: int
    reached: int
    first: int
    rate: float
    idle: float
    ask: float
    dispatch: float
    pickle: float
    collect: float
    write: float
    backlog: int
    rss_mb: float
    task_kb: float
    sim_cpu: float
    sim_lag_ms: float
    worker_ms: float | None  # real worker-side pruning cost on the sampled tasks
    worker_n: int
    started: int  # trials dispatched in the window
    loop: float  # share of the window's wall time spent in ask + dispatch + collect


@dataclass
class BenchReport:
    """One run: its windows, and what the storage holds to check RunSummary against."""

    workers: int
    storage: str
    pruner: str
    summary: RunSummary
    windows: list[Window]
    stored: dict[str, int]  # search trials in the storage by state, counted in SQL
    missed: list[int]  # checkpoints not reached
    agree: tuple[int, int]  # sampled tasks where the NumPy rule matched run_trial's decision, of all
    mean_trial_s: float  # simulated duration of a trial, mean over the run

    @property
    def stored_finished(self) -> int:
        return self.stored.get("COMPLETE", 0) + self.stored.get("PRUNED", 0)


def mean(xs: Sequence[float]) -> float:
    """The mean, NaN for none (printed as nan rather than failing a run)."""
    return sum(xs) / len(xs) if xs else math.nan


def idle_fraction(spans: Sequence[tuple[int, float, float]], n_workers: int, t0: float, t1: float) -> float:
    """The share of ``n_workers`` x (t1 - t0) not covered by the (worker, begin, end) spans."""
    busy = sum(max(0.0, min(end, t1) - max(begin, t0)) for _, begin, end in spans)
    return 1.0 - busy / max(1e-9, n_workers * (t1 - t0))


def window_start(checkpoint: int) -> int:
    """The first trial of a checkpoint's window: the last 10% of the trials before it."""
    return max(1, checkpoint - max(1, checkpoint // 10))


def window(
    ex: SimulatedExecutor, summary: RunSummary, write_s: dict[str, list[float]], a: Mark, b: Mark, checkpoint: int
) -> Window:
    """The figures between marks ``a`` and ``b``, labelled ``checkpoint``."""

    def part(name: str, xs: Sequence[float]) -> list[float]:
        return list(xs[a.counts[name] : b.counts[name]])

    n = max(1, b.finished - a.finished)
    writes = sum(sum(v[a.writes.get(k, 0) : b.writes.get(k, len(v))]) for k, v in write_s.items()) * 1e3
    stats = ex.sim_stats[a.counts["results"] : b.counts["results"]]
    real = [s["unpickle_ms"] + s["decide_ms"] for s in stats if "decide_ms" in s]
    wall = b.wall - a.wall
    asks, dispatches, collects = (
        part("ask", summary.ask_ms),
        part("dispatch", summary.dispatch_ms),
        part("collect", summary.collect_ms),
    )
    sim_cpu = (stats[-1]["sim_cpu_total"] - stats[0]["sim_cpu_total"]) / wall if len(stats) > 1 else math.nan
    return Window(
        checkpoint,
        b.finished,
        a.finished,
        (b.finished - a.finished) / max(1e-9, wall),
        idle_fraction(ex.spans, ex.n_workers, a.wall, b.wall),
        mean(asks),
        mean(dispatches),
        mean(part("tasks", ex.pickle_ms)),
        mean(collects),
        writes / n,
        b.backlog,
        b.rss_mb,
        mean(part("tasks", [float(x) for x in ex.task_bytes])) / 1024,
        sim_cpu,
        mean([s["lag_ms"] for s in stats]),
        mean(real) if real else None,
        len(real),
        len(asks),
        (sum(asks) + sum(dispatches) + sum(collects)) / max(1e-9, wall * 1e3),
    )


def windows(
    ex: SimulatedExecutor, summary: RunSummary, writes: dict[str, list[float]], checkpoints: Sequence[int]
) -> tuple[list[Window], list[int]]:
    """The figures of each checkpoint reached; the checkpoints missed. When the time limit stopped
    the run first, one more row: the last 10% of the trials reached while trials still started."""
    marks = sorted(ex.marks, key=lambda m: m.finished)

    def at_least(n: int) -> Mark | None:
        return next((m for m in marks if m.finished >= n), None)

    rows, missed = [], []
    for c in checkpoints:
        start, end = at_least(window_start(c)), at_least(c)
        if start is None or end is None or end.wall > ex.last_submit:
            missed.append(c)
            continue
        rows.append(window(ex, summary, writes, start, end, c))
    if missed:
        end = max((m for m in marks if m.wall <= ex.last_submit), key=lambda m: m.finished, default=None)
        start = None if end is None else at_least(window_start(end.finished))
        if end is not None and start is not None and end.finished > start.finished:
            rows.append(window(ex, summary, writes, start, end, missed[0]))
    return rows, missed


def format_windows(rows: Sequence[Window]) -> str:
    """The table of windows; a checkpoint not reached is labelled with the trials reached and ``*``."""
    head = (
        f"{'trials':>7} {'window':>11} {'trials/s':>8} {'started':>7} {'loop':>5} {'idle':>5} "
        f"{'ask':>6} {'dispatch':>8} {'(pickle)':>8} "
        f"{'collect':>7} {'write':>6} {'backlog':>7} {'RSS MB':>6} {'task KB':>7} {'sim cpu':>7} "
        f"{'sim lag':>7}  worker ms (n)"
    )
    lines = [head, "-" * len(head)]
    for w in rows:
        worker = "-" if w.worker_ms is None else f"{w.worker_ms:.0f} ({w.worker_n})"
        label = f"{w.checkpoint}" if w.reached >= w.checkpoint else f"{w.reached}*"
        lines.append(
            f"{label:>7} {f'{w.first}-{w.reached}':>11} {w.rate:8.1f} {w.started:7d} {w.loop:5.0%} {w.idle:5.0%} "
            f"{w.ask:6.1f} {w.dispatch:8.1f} "
            f"{w.pickle:8.1f} {w.collect:7.1f} {w.write:6.1f} {w.backlog:7d} {w.rss_mb:6.0f} {w.task_kb:7.0f} "
            f"{w.sim_cpu:7.0%} {w.sim_lag_ms:7.0f}  {worker}"
        )
    return "\n".join(lines)


def print_report(r: BenchReport, trial_seconds: float, duration: str, elapsed: float) -> None:
    """The run's heading, its windows, and the checks: pruning agreement and stored vs. RunSummary."""
    s = r.summary
    how = "scaled by epochs run" if duration == "epochs" else "pruned or not"
    print(
        f"\nK={r.workers} virtual workers, {trial_seconds:g}-s trials ({how}), {r.storage}, pruner {r.pruner}: "
        f"{s.finished} trials in {elapsed:.0f} s "
        f"({s.complete} complete, {s.pruned} pruned, {s.failed} failed)"
    )
    print(format_windows(r.windows))
    if r.missed:
        print(
            f"  * not reached: {', '.join(map(str, r.missed))} trials (time limit); the last row is the "
            f"last 10% of the {s.finished} trials reached"
        )
    agree, total = r.agree
    print(f"  pruning: the NumPy rule matched run_trial's decision on {agree} of {total} sampled tasks")
    print(
        f"  stored (SQL): {r.stored_finished} finished search trials {dict(sorted(r.stored.items()))}; "
        f"RunSummary: {s.finished} finished" + ("" if r.stored_finished == s.finished else "  MISMATCH")
    )
    print(
        f"  whole run: ask {mean(s.ask_ms):.1f}, dispatch {mean(s.dispatch_ms):.1f}, collect "
        f"{mean(s.collect_ms):.1f} ms/trial; workers busy {s.worker_busy:.0%}; a trial lasted "
        f"{r.mean_trial_s:.2f} s on average"
    )
