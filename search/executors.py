"""Where tasks run: local worker processes (joblib's loky) behind one small interface.

The coordinator only submits ``run_trial(task)``, waits for any task to finish
and reads its result; a worker that died surfaces as ``WorkerLostError`` for the
task it was running (and only that one) so the coordinator can run the task
again. Another engine (Dask, ``search/cluster.py``) only has to provide these
four methods; ``make_executor`` builds the one ``--executor`` names.
"""

from __future__ import annotations

import collections
import concurrent.futures
import functools
import logging
import os
import signal
import threading
from abc import ABC, abstractmethod
from collections.abc import Collection
from typing import Any

from joblib.externals.loky.process_executor import (
    BrokenProcessPool,
    ProcessPoolExecutor,
    TerminatedWorkerError,
)

from search.errors import SearchError
from search.tasks import TrialResult, TrialTask, run_trial

logger = logging.getLogger(__name__)

EXECUTORS = ("local", "dask")  # --executor: LocalExecutor here, DaskExecutor in search/cluster.py

# One BLAS/OpenMP thread per worker: k workers x k threads on k cores is slower than k x 1.
WORKER_ENV = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def leave_ctrl_c_to_the_coordinator() -> None:
    """Run in each worker process as it starts: ignore SIGINT.

    Ctrl-C in a terminal sends SIGINT to the whole process group, workers
    included. The coordinator handles it (records the running trials as
    interrupted, then ends the workers itself); a worker hit between two tasks,
    inside loky's own loop, would instead die printing a traceback.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class WorkerLostError(RuntimeError):
    """The process running a task died (killed, out of memory, machine lost).

    ``retryable=False`` when the engine has already re-run the task itself
    (Dask's ``KilledWorker``): running it again would only kill more workers.
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class Executor(ABC):
    n_workers: int

    @abstractmethod
    def submit(self, task: TrialTask) -> Any:
        """Start ``run_trial(task)`` somewhere; returns a handle."""

    @abstractmethod
    def wait(self, handles: Collection[Any], timeout: float | None) -> set[Any]:
        """The handles among ``handles`` that are done (at least one unless timed out)."""

    @abstractmethod
    def result(self, handle: Any) -> TrialResult:
        """The task's result; raises ``WorkerLostError`` if its worker died."""

    @abstractmethod
    def close(self, *, kill: bool = False) -> None:
        """Release the workers; ``kill`` ends running tasks too."""


class LocalExecutor(Executor):
    """One single-process loky pool per worker, fed from one queue held here.

    Why not one loky pool of k workers: loky fails every task of a pool when one
    of its workers dies, so a trial killed by the OOM killer would take its
    neighbours (and the queued tasks) with it, and nobody could tell which
    configuration was to blame. Here a dead worker costs exactly the one trial
    it was running; its pool is replaced and the queue goes on.
    """

    def __init__(self, n_workers: int) -> None:
        self.n_workers = n_workers
        self._lock = threading.Lock()
        self._queue: collections.deque[tuple[concurrent.futures.Future, TrialTask]] = collections.deque()
        self._running: list[concurrent.futures.Future | None] = [None] * n_workers
        self._pools: list[Any] = [self._new_pool() for _ in range(n_workers)]

    @staticmethod
    def _new_pool() -> Any:
        return ProcessPoolExecutor(max_workers=1, env=WORKER_ENV, initializer=leave_ctrl_c_to_the_coordinator)

    def submit(self, task: TrialTask) -> concurrent.futures.Future:
        outer: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            self._queue.append((outer, task))
            self._fill(replace_broken=True)
        return outer

    def _fill(self, *, replace_broken: bool) -> None:
        """Start queued tasks on idle workers (lock held). A broken pool is replaced only
        from the coordinator's thread, never from loky's thread that reports the death."""
        for slot in range(self.n_workers):
            if self._running[slot] is not None or not self._queue:
                continue
            if self._pools[slot] is None:
                if not replace_broken:
                    continue
                self._pools[slot] = self._new_pool()
            try:
                inner = self._pools[slot].submit(run_trial, self._queue[0][1])
            except (BrokenProcessPool, TerminatedWorkerError):
                self._pools[slot] = None  # its idle worker died: the task waits for a new pool
                continue
            outer, _ = self._queue.popleft()
            self._running[slot] = outer
            inner.add_done_callback(functools.partial(self._finished, slot, outer))

    def _finished(self, slot: int, outer: concurrent.futures.Future, inner: concurrent.futures.Future) -> None:
        error: BaseException | None = None
        try:
            result = inner.result()
        except (BrokenProcessPool, TerminatedWorkerError) as exc:
            error = WorkerLostError(str(exc).splitlines()[0])
        except BaseException as exc:  # noqa: BLE001 -- handed to the coordinator as the task's outcome
            error = exc
        with self._lock:
            self._running[slot] = None
            if isinstance(error, WorkerLostError):
                self._pools[slot] = None
            self._fill(replace_broken=False)  # the next task starts before the coordinator wakes
        if error is None:
            outer.set_result(result)
        else:
            outer.set_exception(error)

    def wait(self, handles: Collection[Any], timeout: float | None) -> set[Any]:
        with self._lock:
            self._fill(replace_broken=True)
        done, _ = concurrent.futures.wait(handles, timeout=timeout, return_when=concurrent.futures.FIRST_COMPLETED)
        return done

    def result(self, handle: concurrent.futures.Future) -> TrialResult:
        return handle.result()

    def close(self, *, kill: bool = False) -> None:
        with self._lock:
            for outer, _ in self._queue:
                outer.cancel()
            self._queue.clear()
            pools, self._pools = self._pools, [None] * self.n_workers
        for pool in pools:
            if pool is not None:
                pool.shutdown(wait=not kill, kill_workers=kill)


def make_executor(kind: str, n_workers: int | None, scheduler: str | None) -> Executor:
    """``local``: a process pool here; ``dask``: the cluster at ``scheduler`` (or a local one)."""
    if kind == "local":
        if scheduler is not None:
            raise SearchError("--scheduler needs --executor dask")
        return LocalExecutor(worker_count(n_workers))
    if kind == "dask":
        from search.cluster import DaskExecutor  # search.cluster imports this module

        return DaskExecutor(n_workers, scheduler)
    raise SearchError(f"unknown executor {kind!r}; choose one of {', '.join(EXECUTORS)}")


def worker_count(jobs: int | None) -> int:
    return jobs if jobs else (os.cpu_count() or 1)
