"""Tasks in local worker processes (joblib's loky), one single-process pool per worker."""

from __future__ import annotations

import collections
import concurrent.futures
import functools
import logging
import threading
import traceback
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from joblib.externals.loky.process_executor import (
    BrokenProcessPool,
    ProcessPoolExecutor,
    TerminatedWorkerError,
)

from search.workers.base import WORKER_ENV, Executor, WorkerLostError, leave_ctrl_c_to_the_coordinator
from search.workers.tasks import TrialResult, TrialTask, run_trial

logger = logging.getLogger(__name__)


@dataclass(slots=True, eq=False)  # compared by identity
class _Sent:
    """A task handed to a worker's pool: running, or next in line behind the running one."""

    outer: concurrent.futures.Future
    task: TrialTask
    inner: concurrent.futures.Future


class LocalExecutor(Executor):
    """One single-process loky pool per worker, fed from one queue held here.

    Why not one loky pool of k workers: loky fails every task of a pool when one
    of its workers dies, so a trial killed by the OOM killer would take its
    neighbours (and the queued tasks) with it, and nobody could tell which
    configuration was to blame. Here a dead worker costs exactly the one trial
    it was running; its pool is replaced and the queue goes on.

    Each pool holds its running task and the next one (``DEPTH``), so a worker
    starts its next trial as soon as it sends a result, without a round trip
    through this process (whose threads share the GIL with the sampler): that
    round trip left each worker idle about 5 ms a trial, 7-10 % of a digits run
    (measured with ``python -m search run --trials 1000``). When a worker dies,
    its oldest unfinished task is the one it was running; the one behind it
    never started and goes back to the front of the queue.
    """

    DEPTH = 2  # tasks in each worker's pool: the running one and the next

    def __init__(self, n_workers: int) -> None:
        self.n_workers = n_workers
        self._lock = threading.Lock()
        self._queue: collections.deque[tuple[concurrent.futures.Future, TrialTask]] = collections.deque()
        self._sent: list[collections.deque[_Sent]] = [collections.deque() for _ in range(n_workers)]
        self._pools: list[Any] = [self._new_pool() for _ in range(n_workers)]

    @staticmethod
    def _new_pool() -> Any:
        return ProcessPoolExecutor(max_workers=1, env=WORKER_ENV, initializer=leave_ctrl_c_to_the_coordinator)

    def submit(self, task: TrialTask) -> concurrent.futures.Future:
        outer: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            self._queue.append((outer, task))
            sent = self._fill(replace_broken=True)
        self._watch(sent)
        return outer

    def _watch(self, sent: list[tuple[int, Any, _Sent]]) -> None:
        """Call ``_finished`` when each sent task ends: attached with the lock released, since a task
        that has already ended runs its callback at once, in this thread (it would wait for the lock
        this thread holds: seen as a run that hung on a 50 ms digits trial)."""
        for slot, pool, s in sent:
            s.inner.add_done_callback(functools.partial(self._finished, slot, pool, s))

    def _fill(self, *, replace_broken: bool) -> list[tuple[int, Any, _Sent]]:
        """Hand queued tasks to pools with room (lock held), emptiest first; returns them for ``_watch``.
        A broken pool is replaced only from the coordinator's thread, never from loky's thread that
        reports the death."""
        handed: list[tuple[int, Any, _Sent]] = []
        for depth in range(self.DEPTH):
            for slot in range(self.n_workers):
                if len(self._sent[slot]) != depth or not self._queue:
                    continue
                if self._pools[slot] is None:
                    if not replace_broken:
                        continue
                    self._pools[slot] = self._new_pool()
                pool = self._pools[slot]
                try:
                    inner = pool.submit(run_trial, self._queue[0][1])
                except (BrokenProcessPool, TerminatedWorkerError):
                    if not self._sent[slot]:  # its idle worker died: replaced on the next fill
                        self._pools[slot] = None
                    continue  # else the callback of the task it was running deals with it
                outer, task = self._queue.popleft()
                sent = _Sent(outer, task, inner)
                self._sent[slot].append(sent)
                handed.append((slot, pool, sent))
        return handed

    def _lost_pool(self, slot: int) -> _Sent | None:
        """The pool of ``slot`` is broken (lock held): its oldest unfinished task was running, the
        rest never started and go back to the front of the queue. Returns the one that was running."""
        sent = self._sent[slot]
        while sent and not _broken(sent[0].inner):
            sent.popleft()  # finished before the worker died: its own callback delivers it
        running = sent.popleft() if sent else None
        while sent:
            later = sent.pop()
            self._queue.appendleft((later.outer, later.task))
        self._pools[slot] = None
        return running

    def _finished(self, slot: int, pool: Any, sent: _Sent, inner: concurrent.futures.Future) -> None:
        broken = _broken(inner)
        with self._lock:
            if broken and self._pools[slot] is not pool:
                return  # its pool was already found broken: this task went back to the queue
            lost = self._lost_pool(slot) if broken else None
            if not broken and sent in self._sent[slot]:  # else delivered here after its worker died
                self._sent[slot].remove(sent)
            handed = self._fill(replace_broken=False)  # the next task starts before the coordinator wakes
        self._watch(handed)
        if lost is not None:
            lost.outer.set_exception(WorkerLostError(str(inner.exception()).splitlines()[0]))
        elif inner.cancelled():  # the pool was shut down (close): so is the task
            sent.outer.cancel()
        elif not broken:
            try:
                sent.outer.set_result(inner.result())
            except BaseException as exc:  # noqa: BLE001 -- handed to the coordinator as the task's outcome
                sent.outer.set_exception(exc)

    def wait(self, handles: Collection[Any], timeout: float | None) -> set[Any]:
        with self._lock:
            handed = self._fill(replace_broken=True)
        self._watch(handed)
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
        if kill:
            _quiet_lokys_kill_race()
        for pool in pools:
            if pool is not None:
                pool.shutdown(wait=not kill, kill_workers=kill)


def _quiet_lokys_kill_race() -> None:
    """Keep a known loky race at ``shutdown(kill_workers=True)`` off the user's terminal.

    loky's manager thread, shutting down with ``kill_workers``, drops its pending work
    items and kills the workers, then looks the ids still queued for them up again and
    dies of a ``KeyError`` (``add_call_item_to_queue``), printing a traceback. Its
    workers are already dead by then, and ours is a run that is stopping (Ctrl-C,
    SIGTERM, an error). A task waiting behind a worker's running one (``DEPTH``) makes
    the race reachable: found by the Ctrl-C test. Every other thread exception is
    handled as before.
    """
    previous = threading.excepthook
    if getattr(previous, "quiets_loky", False):
        return

    def hook(args: threading.ExceptHookArgs) -> None:
        frames = traceback.extract_tb(args.exc_traceback)
        if (
            args.exc_type is KeyError
            and args.thread is not None
            and args.thread.name == "ExecutorManagerThread"
            and frames
            and frames[-1].name == "add_call_item_to_queue"
        ):
            logger.debug("loky's manager thread stopped on its kill race: %s", args.exc_value)
            return
        previous(args)

    hook.quiets_loky = True  # type: ignore[attr-defined]
    threading.excepthook = hook


def _broken(inner: concurrent.futures.Future) -> bool:
    """The task's pool broke (its worker died) before the task delivered a result."""
    if not inner.done() or inner.cancelled():
        return False
    return isinstance(inner.exception(), (BrokenProcessPool, TerminatedWorkerError))
