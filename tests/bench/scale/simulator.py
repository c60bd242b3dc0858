"""The simulator process: K virtual workers that train nothing, in ONE process apart from the coordinator.

Apart, so that the simulated work takes no GIL from the coordinator whose time the bench
measures; one process, so that 64 workers cost one core at most (its CPU share is printed: near
100%, the simulator and not the coordinator limits the rate). ``SimulatedExecutor`` (in
``executor``) spawns ``simulate`` and feeds it through two queues.

A task goes to a free virtual worker, replays the recorded curve nearest to its configuration,
and its real ``TrialResult`` leaves after ``trial_seconds`` x epochs run / max epochs of wall
time (``fixed``: ``trial_seconds``, pruned or not). Every ``real_every``-th task (by trial
number) is unpickled and decided as run_trial decides (``replay.play_real``), its cost kept as
worker-side cost and its agreement with the NumPy shortcut noted; the others use the shortcut.
"""

from __future__ import annotations

import heapq
import math
import pickle
import queue
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from search.study.selection import select
from search.workers.tasks import TrialResult, TrialTask
from tests.bench.scale.curves import Recorded, load_curves
from tests.bench.scale.replay import Header, Played, play_real
from tests.bench.scale.shortcut import History, play_fast


@dataclass(order=True)
class Running:
    """A task on a virtual worker; ordered by when its result is due (a heap of them)."""

    finish: float
    handle: int
    worker: int = field(compare=False)
    result: TrialResult = field(compare=False)
    stats: dict[str, Any] = field(compare=False)


class Simulator:
    """K virtual workers in one process: tasks in, results out after their simulated time."""

    def __init__(self, curves_path: str, n_workers: int, trial_seconds: float, real_every: int, fixed: bool) -> None:
        self.feats, self.curves = load_curves(Path(curves_path))
        self.trial_seconds, self.real_every, self.fixed = trial_seconds, real_every, fixed
        self.free: deque[int] = deque(range(n_workers))
        self.waiting: deque[tuple[Header, bytes]] = deque()
        self.running: list[Running] = []
        self.history: History | None = None

    def nearest(self, feats: list[float]) -> Recorded:
        """The recorded curve whose configuration is nearest (squared distance over the features)."""
        return self.curves[int(np.argmin(((self.feats - np.asarray(feats)) ** 2).sum(axis=1)))]

    def start(self, header: Header, payload: bytes) -> None:
        """Decide the whole task now; only its result's departure waits for the simulated time."""
        worker = self.free.popleft()
        started = time.time()
        cpu = time.process_time()
        curve = self.nearest(header.features)
        stats: dict[str, Any] = {}
        played = None if self.real_every and header.number % self.real_every == 0 else self._fast(curve, header)
        if played is None:
            played = self._real(curve, header, payload, stats)
        result = self._result(header, curve, played, worker, started)
        stats["sim_cpu_ms"] = (time.process_time() - cpu) * 1e3
        heapq.heappush(self.running, Running(result.finished, header.handle, worker, result, stats))

    def _fast(self, curve: Recorded, header: Header) -> Played | None:
        assert self.history is not None
        return play_fast(curve, header, self.history)

    def _real(self, curve: Recorded, header: Header, payload: bytes, stats: dict[str, Any]) -> Played:
        """The real decision, timed as a worker would spend it, and checked against the shortcut."""
        assert self.history is not None
        cpu = time.process_time()
        task: TrialTask = pickle.loads(payload)
        stats["unpickle_ms"] = (time.process_time() - cpu) * 1e3
        cpu = time.process_time()
        played = play_real(curve, header, task)
        stats["decide_ms"] = (time.process_time() - cpu) * 1e3
        fast = play_fast(curve, header, self.history)
        if fast is not None:
            stats["agree"] = (fast.outcome, len(fast.values)) == (played.outcome, len(played.values))
        return played

    def _result(self, header: Header, curve: Recorded, played: Played, worker: int, started: float) -> TrialResult:
        """The TrialResult run_trial would return for this replay, finishing at its simulated time."""
        result = TrialResult(
            header.number,
            played.outcome,
            played.reason,
            played.values,
            played.accuracies,
            host="simulated",
            pid=worker + 1,
            started=started,
        )
        if played.values and played.outcome == "complete":
            result.value, result.best_epoch = select(header.selection, played.values, played.accuracies)
            result.val_accuracy = played.accuracies[result.best_epoch - 1]
        elif played.values:
            result.best_epoch = int(np.argmin(played.values)) + 1
            result.val_accuracy = played.accuracies[result.best_epoch - 1]
        if played.outcome == "diverged":
            result.values = [*played.values, math.nan]
        result.train_loss = curve.train_loss
        result.system_attrs = played.system_attrs
        share = 1.0 if self.fixed else max(1, len(result.values)) / header.epochs  # epochs run
        result.finished = started + self.trial_seconds * share
        return result

    def receive(self, header: Header, payload: bytes) -> None:
        """Grow the snapshot by the task's new curves, then queue the task."""
        if self.history is None:
            self.history = History(header.epochs)
        self.history.extend(header.new_curves)
        self.waiting.append((header, payload))
        self.fill()

    def fill(self) -> None:
        while self.free and self.waiting:
            self.start(*self.waiting.popleft())

    def release_due(self, results: Any) -> None:
        """Send every result whose simulated time is over; their workers take the waiting tasks."""
        while self.running and self.running[0].finish <= time.time():
            done = heapq.heappop(self.running)
            done.stats["lag_ms"] = (time.time() - done.finish) * 1e3
            done.stats["sim_cpu_total"] = time.process_time()
            results.put((done.handle, done.result, done.stats))
            self.free.append(done.worker)
            self.fill()

    def next_due(self) -> float:
        """Seconds until the next result is due: how long to wait for a task meanwhile."""
        return max(0.0, self.running[0].finish - time.time()) if self.running else 0.5


def simulate(
    tasks: Any, results: Any, curves_path: str, n_workers: int, trial_seconds: float, real_every: int, fixed: bool
) -> None:
    """The simulator process's main loop: ``None`` on ``tasks`` ends it."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sim = Simulator(curves_path, n_workers, trial_seconds, real_every, fixed)
    results.put(("ready", None, None))
    while True:
        sim.release_due(results)
        try:
            message = tasks.get(timeout=sim.next_due())
        except queue.Empty:
            continue
        if message is None:
            return
        sim.receive(*message)
