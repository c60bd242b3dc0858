"""The coordinator at scale: where its time goes with 1,000-10,000 trials and up to 64 workers.

    python tests/bench/bench_scale.py [--workers 2 16 64] [--trials 10000] [--trial-seconds 1.0]
                                      [--storage sqlite|postgres|both] [--time-limit SECONDS]
    python tests/bench/bench_scale.py --record-from sqlite:////tmp/rec.db --study rec   # remake the curves

The real ``Coordinator`` (the study spec's TPE sampler, its pruner, the storage
writer, the lease, a fresh SQLite file or a throwaway PostgreSQL server) runs
against ``SimulatedExecutor``: K virtual workers that train nothing. Their work
runs in ONE separate process (spawned, fed through queues), never in the
coordinator's, so it takes no GIL from the coordinator.

- ``submit`` pickles the ``TrialTask`` as a real executor does (its size in bytes
  and the pickling time are kept) and sends the bytes to the simulator, with a
  small header: the task's configuration and the curves added to the pruning
  snapshot since the previous task (snapshots only grow, so the simulator holds
  each task's snapshot exactly without unpickling it).
- The simulator gives the task to a free virtual worker, replays the recorded
  digits curve nearest to its configuration (``scale_curves.json`` beside this
  file: 200 trials of ``python -m search run --trials 200 --finalists 0 --pruner
  none`` on digits; remake with ``--record-from``), decides pruning epoch by
  epoch, and returns a real ``TrialResult`` after ``--trial-seconds`` x epochs
  run / max epochs of wall-clock time (``--duration fixed``: every trial lasts
  ``--trial-seconds``, pruned or not; the issue's floor assumes 1-s trials, and
  median pruning stops most trials after 3-4 of 20 epochs).
- Pruning: every ``--real-every``-th task (by trial number) is unpickled and
  decided exactly as ``run_trial`` does (``make_pruner``, ``local_trial`` on the
  task's own snapshot, ``report``/``should_prune`` each epoch); that cost is
  printed as worker-side cost. The other tasks use the same median rule computed
  with NumPy on the same snapshot, because the real one grows with the study
  (about 0.25 s of CPU per task at 6,700 trials, measured) and one simulator
  process could not keep up with 64 workers; both are run on the sampled tasks
  and their agreement is printed. Hyperband has no
  such shortcut: every task is decided the real way (slow at scale).

Printed at each checkpoint (``--checkpoints``, default 1000 5000 10000 finished
trials in the study), over its window = the last 10% of trials before it:

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

First the floor of issue 12, for comparison (K=64, 1-s trials: >= 25 trials/s at
10,000 trials in the study, idle <= 10% at 1,000); after each run the stored rows
counted in SQL against RunSummary. ``--time-limit`` stops starting trials after that
many seconds (the coordinator's ``timeout``): checkpoints not reached are listed.

The study runs 2 x (K + 2) trials past ``--trials``, so that the last
checkpoint's window ends before the run's tail (when no new trial starts). The
bench reads private attributes (the coordinator's ``_writer``: write times and
queue length; the percentile pruner's settings) and changes nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import json
import logging
import math
import multiprocessing as mp
import pickle
import queue
import sys
import tempfile
import time
import warnings
from collections import deque
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import psutil
import sqlalchemy

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from model import TrainConfig  # noqa: E402
from search.coordinator import Coordinator, RunSummary  # noqa: E402
from search.executors import Executor  # noqa: E402
from search.pruning import local_trial, make_pruner, system_attrs_of  # noqa: E402
from search.selection import select  # noqa: E402
from search.space import config_from_params  # noqa: E402
from search.spec import build_spec  # noqa: E402
from search.storage import open_storage  # noqa: E402
from search.study import create_or_continue, load_spec  # noqa: E402
from search.tasks import DataRef, TrialResult, TrialTask  # noqa: E402

CURVES = Path(__file__).with_name("scale_curves.json")
MARK_EVERY = 100  # the coordinator's counters are also noted every this many finished trials
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid")
FLOOR = "issue 12 floor: K=64, 1-s trials: >= 25 trials/s sustained at 10,000 trials, idle <= 10% at 1,000"


# ------------------------------------------------------------------ recorded curves
def features(config: TrainConfig) -> list[float]:
    """Where a configuration lies, for the nearest recorded curve (roughly unit scales)."""
    width = sum(config.hidden) / len(config.hidden)
    return [
        math.log10(config.learning_rate),
        math.log2(width) / 4,
        len(config.hidden) / 2,
        config.dropout * 2,
        math.log2(config.batch_size) / 4,
        config.momentum,
        math.log10(config.l2 + 1e-6) / 5,
        *(float(config.activation == a) for a in ACTIVATIONS),
    ]


def record_curves(url: str, study: str, out: Path) -> int:
    """Write the finished trials of a real study as the bench's curves; returns their number."""
    storage = open_storage(url, read_only=True)
    try:
        spec, study_id = load_spec(storage, study)
        trials = storage.get_all_trials(study_id, deepcopy=False)
    finally:
        storage.engine.dispose()
    curves = []
    for t in trials:
        if t.state.name not in ("COMPLETE", "PRUNED") or t.user_attrs.get("outcome") not in ("complete", "diverged"):
            continue
        config = config_from_params(t.params, spec.space, spec.epochs, 0)
        values = [t.intermediate_values[s] for s in sorted(t.intermediate_values)]
        curves.append(
            {
                "features": [round(f, 5) for f in features(config)],
                "values": [None if math.isnan(v) else round(v, 6) for v in values],
                "accuracies": [round(a, 6) for a in t.user_attrs["val_accuracy_curve"]],
                "train_loss": t.user_attrs.get("train_loss"),
            }
        )
    source = f"{spec.dataset}, {len(curves)} trials of {spec.epochs} epochs, pruner {spec.pruner}, seed {spec.seed}"
    out.write_text(json.dumps({"source": source, "epochs": spec.epochs, "curves": curves}, separators=(",", ":")))
    return len(curves)


@dataclass(frozen=True)
class Recorded:
    values: tuple[float, ...]  # validation loss per epoch; NaN where the run diverged
    accuracies: tuple[float, ...]
    train_loss: float | None


def load_curves(path: Path) -> tuple[np.ndarray, list[Recorded]]:
    data = json.loads(path.read_text())
    recorded = [
        Recorded(tuple(math.nan if v is None else v for v in c["values"]), tuple(c["accuracies"]), c["train_loss"])
        for c in data["curves"]
    ]
    return np.array([c["features"] for c in data["curves"]], dtype=float), recorded


# ------------------------------------------------------------------ the simulator process
@dataclass(frozen=True)
class Header:
    """What the simulator needs of a task without unpickling it."""

    handle: int
    number: int
    snapshot_len: int
    new_curves: tuple[tuple[int, bool, tuple[float, ...]], ...]  # (number, complete, values) since last task
    features: list[float]
    epochs: int
    patience: int | None
    pruner: str
    selection: str


@dataclass
class Played:
    """A task's replay: what run_trial would have returned, and what deciding it cost."""

    values: list[float]
    accuracies: list[float]
    outcome: str
    reason: str
    system_attrs: dict[str, Any]


class History:
    """The finished search curves in the coordinator's order: each task's snapshot is a prefix."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs
        self.matrix = np.full((1024, epochs), np.nan)
        self.complete = np.zeros(1024, dtype=bool)
        self.n = 0
        self._medians: tuple[int, np.ndarray, int] | None = None

    def extend(self, curves: Sequence[tuple[int, bool, tuple[float, ...]]]) -> None:
        for _, complete, values in curves:
            if self.n == len(self.complete):
                self.matrix = np.vstack([self.matrix, np.full_like(self.matrix, np.nan)])
                self.complete = np.concatenate([self.complete, np.zeros_like(self.complete)])
            row = values[: self.epochs]
            self.matrix[self.n, : len(row)] = row
            self.complete[self.n] = complete
            self.n += 1

    def medians(self, length: int, percentile: float) -> tuple[np.ndarray, int]:
        """Per step, the percentile of the complete curves among the first ``length``; their count."""
        if self._medians is None or self._medians[0] != length:
            done = self.matrix[:length][self.complete[:length]]
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)  # a step no complete curve reached: NaN
                p = np.nanpercentile(done, percentile, axis=0) if len(done) else np.full(self.epochs, np.nan)
            self._medians = (length, p, len(done))
        return self._medians[1], self._medians[2]


def fast_rule(pruner: optuna.pruners.BasePruner) -> tuple[int, int, float] | None:
    """(startup trials, warm-up steps, percentile) of a percentile pruner judged every step, else None."""
    every_step = isinstance(pruner, optuna.pruners.PercentilePruner) and pruner._interval_steps == 1
    if every_step and pruner._n_min_trials == 1:
        return pruner._n_startup_trials, pruner._n_warmup_steps, pruner._percentile
    return None


def replay(curve: Recorded, header: Header, should_prune: Any) -> Played:
    """run_trial's epoch loop over a recorded curve; ``should_prune(values, epoch)`` decides."""
    values: list[float] = []
    accuracies: list[float] = []
    outcome, reason = "complete", f"completed {header.epochs} epochs"
    for epoch in range(1, min(header.epochs, len(curve.values)) + 1):
        loss = curve.values[epoch - 1]
        if math.isnan(loss):
            outcome, reason = "diverged", f"diverged at epoch {epoch} (recorded)"
            break
        values.append(loss)
        accuracies.append(curve.accuracies[epoch - 1])
        if should_prune(values, epoch):
            outcome, reason = "pruned", f"pruned at epoch {epoch}"
            break
        if header.patience is not None and epoch - (int(np.argmin(values)) + 1) >= header.patience:
            reason = f"no improvement in validation loss for {header.patience} epochs at epoch {epoch}"
            break
    return Played(values, accuracies, outcome, reason, {})


def play_fast(curve: Recorded, header: Header, history: History) -> Played | None:
    """The pruning decision by the pruner's own rule on the snapshot, in NumPy; None: no such shortcut."""
    pruner = make_pruner(header.pruner, header.epochs)
    if isinstance(pruner, optuna.pruners.NopPruner):
        return replay(curve, header, lambda values, epoch: False)
    rule = fast_rule(pruner)
    if rule is None:
        return None
    startup, warmup, percentile = rule
    medians, n_complete = history.medians(header.snapshot_len, percentile)

    def should_prune(values: list[float], epoch: int) -> bool:
        if n_complete == 0 or n_complete < startup or epoch < warmup:
            return False
        p = medians[epoch - 1]
        return not math.isnan(p) and min(values) > p

    return replay(curve, header, should_prune)


def play_real(curve: Recorded, header: Header, task: TrialTask) -> Played:
    """The decision exactly as run_trial makes it, on the task's own (unpickled) snapshot."""
    pruner = make_pruner(task.pruner, task.config.epochs)
    trial = local_trial(task.study_name, pruner, task.snapshot, task.number)

    def should_prune(values: list[float], epoch: int) -> bool:
        trial.report(values[-1], epoch)
        return trial.should_prune()

    played = replay(curve, header, should_prune)
    played.system_attrs = system_attrs_of(trial)
    return played


@dataclass(order=True)
class Running:
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
        return self.curves[int(np.argmin(((self.feats - np.asarray(feats)) ** 2).sum(axis=1)))]

    def start(self, header: Header, payload: bytes) -> None:
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
        return max(0.0, self.running[0].finish - time.time()) if self.running else 0.5


def simulate(
    tasks: Any, results: Any, curves_path: str, n_workers: int, trial_seconds: float, real_every: int, fixed: bool
) -> None:
    """The simulator process's main loop."""
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


# ------------------------------------------------------------------ the executor (coordinator side)
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
        self._sent_curves = 0
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
        new = tuple((c.number, c.complete, c.values) for c in snapshot[self._sent_curves :])
        self._sent_curves = max(self._sent_curves, len(snapshot))
        handle, self._next_handle = self._next_handle, self._next_handle + 1
        header = Header(
            handle,
            task.number,
            len(snapshot),
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


# ------------------------------------------------------------------ figures
@dataclass
class Window:
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


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else math.nan


def idle_fraction(spans: Sequence[tuple[int, float, float]], n_workers: int, t0: float, t1: float) -> float:
    busy = sum(max(0.0, min(end, t1) - max(begin, t0)) for _, begin, end in spans)
    return 1.0 - busy / max(1e-9, n_workers * (t1 - t0))


def window(
    ex: SimulatedExecutor, summary: RunSummary, write_s: dict[str, list[float]], a: Mark, b: Mark, checkpoint: int
) -> Window:
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
        _mean(asks),
        _mean(dispatches),
        _mean(part("tasks", ex.pickle_ms)),
        _mean(collects),
        writes / n,
        b.backlog,
        b.rss_mb,
        _mean(part("tasks", [float(x) for x in ex.task_bytes])) / 1024,
        sim_cpu,
        _mean([s["lag_ms"] for s in stats]),
        _mean(real) if real else None,
        len(real),
        len(asks),
        (sum(asks) + sum(dispatches) + sum(collects)) / max(1e-9, wall * 1e3),
    )


def format_windows(rows: Sequence[Window]) -> str:
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


# ------------------------------------------------------------------ one run
@dataclass
class BenchReport:
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


def window_start(checkpoint: int) -> int:
    """The first trial of a checkpoint's window: the last 10% of the trials before it."""
    return max(1, checkpoint - max(1, checkpoint // 10))


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


def count_stored(storage: Any, study_id: int) -> dict[str, int]:
    sql = sqlalchemy.text("SELECT state, count(*) FROM trials WHERE study_id = :s GROUP BY state")
    with storage.engine.connect() as conn:
        return {str(state).split(".")[-1]: int(n) for state, n in conn.execute(sql, {"s": study_id})}


def run_bench(
    workers: int,
    trials: int,
    url: str,
    *,
    trial_seconds: float = 1.0,
    checkpoints: Sequence[int] = (),
    time_limit: float | None = None,
    pruner: str | None = None,
    real_every: int = 100,
    fixed_duration: bool = False,
    seed: int = 0,
    curves: Path = CURVES,
) -> BenchReport:
    """One study of ``trials`` search trials with ``workers`` virtual workers on storage ``url``."""
    # past the last checkpoint: its window ends before the run's tail, when no new trial starts
    overrides = {
        "dataset": "digits",
        "trials": trials + 2 * (workers + 2),
        "finalists": 0,
        "seed": seed,
        "pruner": pruner,
    }
    spec = build_spec(f"scale-k{workers}", None, {k: v for k, v in overrides.items() if v is not None})
    data = DataRef(spec.dataset, spec.val_fraction, spec.normalization, None)
    checkpoints = sorted(c for c in set(checkpoints) if c <= trials) or [trials]
    thresholds = [window_start(c) for c in checkpoints] + list(checkpoints)
    thresholds += list(range(MARK_EVERY, trials, MARK_EVERY))
    with contextlib.ExitStack() as done:
        storage = open_storage(url, create=True)
        done.callback(storage.engine.dispose)
        spec, study_id, lease = create_or_continue(storage, spec, set())
        done.callback(lease.release)
        ex = SimulatedExecutor(workers, trial_seconds, real_every, curves, fixed=fixed_duration)
        done.callback(ex.close)
        coordinator = Coordinator(
            spec, storage, study_id, ex, data=data, timeout=time_limit, progress=False, lease=lease
        )
        ex.watch(coordinator, thresholds)
        summary = coordinator.run()
        ex.mark()  # the end of the run
        writes = dict(coordinator._writer.seconds)
        stored = count_stored(storage, study_id)
    rows, missed = windows(ex, summary, writes, checkpoints)
    real = [s["agree"] for s in ex.sim_stats if "agree" in s]
    return BenchReport(
        workers,
        url.split(":")[0].split("+")[0],
        spec.pruner,
        summary,
        rows,
        stored,
        missed,
        (sum(real), len(real)),
        _mean([end - begin for _, begin, end in ex.spans]),
    )


# ------------------------------------------------------------------ storage and main
@contextlib.contextmanager
def storage_url(kind: str, tmp: Path, workers: int) -> Iterator[str | None]:
    """A fresh SQLite file, or a database on a throwaway PostgreSQL server (None: unavailable)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp / f'scale-k{workers}.db'}"
        return
    from tests.search.pg import PostgresUnavailable, start_postgres

    try:
        server = start_postgres()
    except PostgresUnavailable as exc:
        print(f"PostgreSQL skipped: {exc}")
        yield None
        return
    try:
        yield server.createdb(f"scale_k{workers}")
    finally:
        server.stop()


def print_report(r: BenchReport, trial_seconds: float, duration: str, elapsed: float) -> None:
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
        f"  whole run: ask {_mean(s.ask_ms):.1f}, dispatch {_mean(s.dispatch_ms):.1f}, collect "
        f"{_mean(s.collect_ms):.1f} ms/trial; workers busy {s.worker_busy:.0%}; a trial lasted "
        f"{r.mean_trial_s:.2f} s on average"
    )


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, nargs="+", default=[2, 16, 64], metavar="K")
    p.add_argument("--trials", type=int, default=10000)
    p.add_argument("--trial-seconds", type=float, default=1.0, help="a full-length trial (pruned: in proportion)")
    p.add_argument("--storage", choices=("sqlite", "postgres", "both"), default="sqlite")
    p.add_argument("--checkpoints", type=int, nargs="+", default=[1000, 5000, 10000])
    p.add_argument("--time-limit", type=float, help="stop starting trials after this many seconds (per run)")
    p.add_argument("--pruner", choices=("median", "hyperband", "none"), help="default: the study spec's (median)")
    p.add_argument(
        "--real-every",
        type=int,
        default=100,
        help="decide every N-th task exactly as run_trial does (0: never; default 100)",
    )
    p.add_argument(
        "--duration",
        choices=("epochs", "fixed"),
        default="epochs",
        help="epochs: a trial lasts --trial-seconds x epochs run / max epochs (default); fixed: every trial lasts "
        "--trial-seconds, pruned or not",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--record-from", metavar="URL", help="remake scale_curves.json from this storage's --study")
    p.add_argument("--study", default="rec")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.record_from:
        print(f"{record_curves(args.record_from, args.study, CURVES)} curves written to {CURVES}")
        return
    print(FLOOR)
    kinds = ("sqlite", "postgres") if args.storage == "both" else (args.storage,)
    for kind in kinds:
        for k in args.workers:
            with tempfile.TemporaryDirectory() as tmp, storage_url(kind, Path(tmp), k) as url:
                if url is None:
                    break
                started = time.monotonic()
                report = run_bench(
                    k,
                    args.trials,
                    url,
                    trial_seconds=args.trial_seconds,
                    checkpoints=args.checkpoints,
                    time_limit=args.time_limit,
                    pruner=args.pruner,
                    real_every=args.real_every,
                    fixed_duration=args.duration == "fixed",
                    seed=args.seed,
                )
                print_report(report, args.trial_seconds, args.duration, time.monotonic() - started)
                sys.stdout.flush()


if __name__ == "__main__":
    main()
