"""``SimulatedExecutor``: the coordinator's side of the simulated workers, and its marks.

It stands where a real executor stands, so that the coordinator's own costs are the real ones:
``submit`` pickles the ``TrialTask`` as a real executor does (its size and the pickling time are
kept) and sends the bytes to the simulator process (``simulator``) with a small ``Header``: the
task's configuration and the curves added to the pruning snapshot since the previous task.
A snapshot is always the tail of the coordinator's growing list of finished curves (the last
``search.study.pruning.SNAPSHOT``), so the simulator holds each task's snapshot exactly, as a slice of
every curve sent, without unpickling it.

A ``Mark`` notes the coordinator's counters each time the study passes a threshold of finished
trials; ``report`` turns two marks into a checkpoint's figures. Marks read the coordinator's
private ``_writer`` (write times, queue length) and change nothing.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import pickle
import queue
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from search.coordinator.coordinator import Coordinator
from search.workers.base import Executor
from search.workers.tasks import TrialResult, TrialTask
from tests.bench.scale.curves import CURVES, features
from tests.bench.scale.replay import Header
from tests.bench.scale.simulator import simulate


@dataclass
class Mark:
    """The coordinator's counters when the study reached ``finished`` trials."""

    finished: int
    wall: float
    counts: dict[str, int]
    writes: dict[str, int]
    rss_mb: float
    backlog: int


class SimulatedExecutor(Executor):
    """K virtual workers behind the executor interface; their work runs in the simulator process."""

    def __init__(
        self, n_workers: int, trial_seconds: float, real_every: int, curves: Path = CURVES, *, fixed: bool = False
    ) -> None:
        self.n_workers = n_workers
        ctx = mp.get_context("spawn")  # the coordinator's threads are not copied into the simulator
        self._tasks: Any = ctx.Queue()
        self._results: Any = ctx.Queue()
        self._proc = ctx.Process(
            target=simulate,
            name="simulator",
            daemon=True,
            args=(self._tasks, self._results, str(curves), n_workers, trial_seconds, real_every, fixed),
        )
        self._proc.start()
        if self._results.get(timeout=120)[0] != "ready":
            raise RuntimeError("the simulator did not start")
        self._next_handle = 0
        self._sent_curves = 0  # finished curves sent to the simulator so far
        self._last_sent: object = None
        self._done: dict[int, TrialResult] = {}
        self.task_bytes: list[int] = []
        self.pickle_ms: list[float] = []
        self.sim_stats: list[dict[str, Any]] = []
        self.spans: list[tuple[int, float, float]] = []
        self.marks: list[Mark] = []
        self._coordinator: Coordinator | None = None
        self._thresholds: list[int] = []
        self.last_submit = math.inf

    def watch(self, coordinator: Coordinator, thresholds: Sequence[int]) -> None:
        """Take a ``Mark`` each time the study passes one of ``thresholds`` finished trials."""
        self._coordinator, self._thresholds = coordinator, sorted(set(thresholds))

    def mark(self, about_to_finish: int = 0) -> None:
        """Note the counters now; ``about_to_finish``: a result handed over that the coordinator records next."""
        c = self._coordinator
        assert c is not None
        s = c.summary
        writer = c._writer  # private: the write times and queue length, read only
        self.marks.append(
            Mark(
                s.finished + about_to_finish,
                time.time(),
                {
                    "ask": len(s.ask_ms),
                    "dispatch": len(s.dispatch_ms),
                    "collect": len(s.collect_ms),
                    "tasks": len(self.task_bytes),
                    "results": len(self.sim_stats),
                },
                {k: len(v) for k, v in list(writer.seconds.items())},
                psutil.Process().memory_info().rss / 2**20,
                writer._queue.qsize(),
            )
        )

    def _check_marks(self, about_to_finish: int = 0) -> None:
        if self._coordinator is None:
            return
        while self._thresholds and self._coordinator.summary.finished + about_to_finish >= self._thresholds[0]:
            self._thresholds.pop(0)
            self.mark(about_to_finish)

    def submit(self, task: TrialTask) -> int:
        start = time.perf_counter()
        payload = pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL)
        self.pickle_ms.append((time.perf_counter() - start) * 1e3)
        self.task_bytes.append(len(payload))
        snapshot = task.snapshot
        # a snapshot is the tail of the coordinator's growing list: what follows the last curve sent is new
        seen = next((i + 1 for i in range(len(snapshot) - 1, -1, -1) if snapshot[i] is self._last_sent), 0)
        new = tuple((c.number, c.complete, c.values) for c in snapshot[seen:])
        self._sent_curves += len(new)
        self._last_sent = snapshot[-1] if snapshot else self._last_sent
        handle, self._next_handle = self._next_handle, self._next_handle + 1
        header = Header(
            handle,
            task.number,
            self._sent_curves - len(snapshot),
            self._sent_curves,
            new,
            features(task.config),
            task.config.epochs,
            task.config.patience,
            task.pruner,
            task.selection,
        )
        self._tasks.put((header, payload))
        self.last_submit = time.time()
        return handle

    def _drain(self, timeout: float | None) -> None:
        """Take the results waiting on the queue; wait up to ``timeout`` for the first only."""
        block = True
        while True:
            try:
                handle, result, stats = self._results.get(block=block, timeout=timeout if block else None)
            except queue.Empty:
                return
            self._done[handle] = result
            self.sim_stats.append(stats)
            self.spans.append((result.pid, result.started, result.finished))
            block = False

    def wait(self, handles: Collection[Any], timeout: float | None) -> set[Any]:
        self._check_marks()
        if not self._proc.is_alive():
            raise RuntimeError(f"the simulator process died (exit code {self._proc.exitcode})")
        wanted = set(handles)
        if not wanted & self._done.keys():
            self._drain(timeout)
        else:
            self._drain(0)
        return wanted & self._done.keys()

    def result(self, handle: int) -> TrialResult:
        result = self._done.pop(handle)
        self._check_marks(about_to_finish=result.outcome != "failed")  # the coordinator records it next
        return result

    def close(self, *, kill: bool = False) -> None:
        if self._proc.is_alive():
            self._tasks.put(None)
            self._proc.join(timeout=0 if kill else 10)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(timeout=10)
        self._tasks.cancel_join_thread()
        self._results.cancel_join_thread()
