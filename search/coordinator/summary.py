"""A run's figures (``RunSummary``) and the one progress bar that shows them.

The counts of the study (finished, complete, pruned, finalist runs, the best
trial) start from what earlier runs stored and grow with each trial this run
records; the rest is about this run alone. Search-only counts exclude finalist
runs: ``trials`` asks for finished search trials.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

from optuna.trial import FrozenTrial, TrialState
from tqdm.auto import tqdm  # a widget in a notebook, the text bar in a terminal

from search.study import finalists as fin
from search.study.metrics import rank_key


@dataclass
class RunSummary:
    study: str
    finished: int = 0  # in the study, complete + pruned
    complete: int = 0  # in the study
    pruned: int = 0  # in the study
    finalist_runs: int = 0  # in the study, finished
    failed: int = 0  # in this run
    retries: int = 0  # in this run
    stopped_at_deadline: int = 0  # in this run: running at the time limit, recorded for a re-run
    stage_seconds: dict[str, float] = field(default_factory=dict)  # this run's wall time per stage
    search_ended: str = ""  # why the search ended before its time, in words ("": its time, or no budget)
    # a budget, when the search ended: seconds left of its time, and left to the finalists and final networks
    search_left: float = 0.0
    later_left: float | None = None
    worker_start: float = 0.0  # this run: the longest a new worker took to start its first task (spawn, imports)
    ran: int = 0  # finished in this run
    epochs_run: int = 0  # in this run
    epochs_budget: int = 0  # in this run: trials x max epochs
    best_value: float | None = None
    best_score: float | None = None  # the best search trial's validation score of ``measure``
    best_number: int | None = None
    measure: str = "accuracy"  # the score it shows: the study's metric, or its task's (search/study/metrics.py)
    metric: str | None = None  # the study's metric, which names the best trial; None: the objective does
    wall_seconds: float = 0.0
    worker_busy: float = 0.0  # fraction of worker time spent in tasks after start-up
    worker_peak_rss_mb: float = 0.0
    ask_ms: list[float] = field(default_factory=list)
    dispatch_ms: list[float] = field(default_factory=list)
    collect_ms: list[float] = field(default_factory=list)
    write_ms: dict[str, list[float]] = field(default_factory=dict)
    task_spans: list[tuple[int, float, float]] = field(default_factory=list, repr=False)  # (pid, start, end)

    def count_stored(self, trials: Sequence[FrozenTrial]) -> None:
        """The study's counts and best trial as earlier runs left them."""
        search = [t for t in trials if not fin.is_finalist_run(t)]
        counts = collections.Counter(t.state for t in search)
        self.complete, self.pruned = counts[TrialState.COMPLETE], counts[TrialState.PRUNED]
        self.finished = self.complete + self.pruned
        self.finalist_runs = sum(1 for t in trials if fin.is_finalist_run(t) and t.state in fin.FINISHED)
        best = fin.choose(search, 1, self.metric)
        if best:  # the best so far includes earlier runs of the study
            self.best_value, self.best_score, self.best_number = (
                best[0].value,
                fin.trial_score(best[0], self.measure),
                best[0].number,
            )

    def count_task(self, pid: int, started: float, finished: float, peak_rss_mb: float) -> None:
        """A worker (``pid``) ran a task from ``started`` to ``finished``, peaking at ``peak_rss_mb``."""
        self.task_spans.append((pid, started, finished))
        self.worker_peak_rss_mb = max(self.worker_peak_rss_mb, peak_rss_mb)

    def count_ran(self, epochs: int, budget: int, *, finalist: bool) -> None:
        """A trial of this run finished after ``epochs`` of at most ``budget`` epochs."""
        self.ran += 1
        self.epochs_run += epochs
        self.epochs_budget += budget
        self.finalist_runs += finalist

    def count_search_trial(self, number: int, complete: bool, value: float | None, score: float | None) -> None:
        """A search trial finished: complete (with its value and its score of ``measure``) or pruned."""
        self.finished += 1
        self.complete += complete
        self.pruned += not complete
        if complete and value is not None and (self.best_value is None or self._better(value, score)):
            self.best_value, self.best_score, self.best_number = value, score, number

    def _better(self, value: float, score: float | None) -> bool:
        """Better than the best so far: by the metric where the study names one (ties by value), else by value."""
        if self.metric is None:
            return value < cast(float, self.best_value)
        new, old = rank_key(self.metric, score), rank_key(self.metric, self.best_score)
        return new < old or (new == old and value < cast(float, self.best_value))

    @property
    def best_accuracy(self) -> float | None:
        """The best trial's validation accuracy, where accuracy is the score shown."""
        return self.best_score if self.measure == "accuracy" else None

    def close(self, wall_seconds: float, write_seconds: Mapping[str, list[float]]) -> None:
        """The figures known only at the end: wall time, storage write times, worker use."""
        self.wall_seconds = wall_seconds
        self.write_ms = {k: [x * 1e3 for x in v] for k, v in write_seconds.items()}
        if self.task_spans:
            self.worker_busy = busy_fraction(self.task_spans)


def busy_fraction(task_spans: Sequence[tuple[int, float, float]]) -> float:
    """The fraction of the workers' time spent in tasks, after start-up.

    Each worker counts from its first task (process spawn and imports excluded)
    to the end of the last task of the run.
    """
    last = max(end for _, _, end in task_spans)
    first: dict[int, float] = {}
    for pid, begin, _ in task_spans:
        first[pid] = min(begin, first.get(pid, begin))
    busy = sum(end - begin for _, begin, end in task_spans)
    return busy / max(1e-9, sum(last - f for f in first.values()))


class Progress:
    """The run's one progress bar: finished search trials (up to ``trials``) plus finalist runs.

    ``trials`` None (a budget decides the count): a count and a rate, no total.
    """

    def __init__(self, summary: RunSummary, trials: int | None, *, enabled: bool) -> None:
        self._summary, self._trials, self._enabled = summary, trials, enabled
        self._bar: tqdm | None = None

    def open(self) -> None:
        """Show the bar, starting from the stored trials that ``summary`` counts."""
        if self._enabled:
            s = self._summary
            self._bar = tqdm(
                total=None if self._trials is None else self._trials + s.finalist_runs,
                initial=self._done(),
                desc=s.study,
                unit="trial",
                dynamic_ncols=True,
            )

    def update(self) -> None:
        if self._bar is not None:
            s = self._summary
            self._bar.n = self._done()
            best = "-" if s.best_score is None else f"{s.best_score:.4f}"
            name = "acc" if s.measure == "accuracy" else s.measure
            self._bar.set_postfix_str(f"pruned={s.pruned} failed={s.failed} best_val_{name}={best}", refresh=True)

    def expect(self, more: int) -> None:
        """``more`` runs are planned beyond those counted so far (the finalist stage)."""
        if self._bar is not None and self._trials is not None:
            self._bar.total = self._trials + self._summary.finalist_runs + more

    def _done(self) -> int:
        s = self._summary
        return (s.finished if self._trials is None else min(s.finished, self._trials)) + s.finalist_runs

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
