"""Trial tasks on a Dask cluster, behind the same four methods as the local pool.

The coordinator stays the one process that samples and writes the storage; Dask
only runs ``run_trial(task)`` on its workers. Each worker loads the data set
itself (``DataRef.load`` caches it per process), so a task ships a small
dataclass, never arrays.

A worker that dies mid-trial: the Dask scheduler runs the task again on another
worker (up to ``distributed.scheduler.allowed-failures`` times, default 3), so
the trial keeps its number and costs one re-run; the coordinator never sees it.
Only a task that killed that many workers comes back as ``KilledWorker`` and is
reported as ``WorkerLostError`` (the coordinator records it FAIL and re-runs its
parameters as a retry). Losing the scheduler ends the run with a ``SearchError``
that says how to resume; the coordinator records the in-flight trials as
interrupted.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import socket
import threading
import uuid
from collections.abc import Collection
from typing import Any

from search.errors import SearchError
from search.workers import worker_count
from search.workers.base import WORKER_ENV, Executor, WorkerLostError
from search.workers.tasks import TrialResult, TrialTask, run_trial

logger = logging.getLogger(__name__)

_CONNECT_TIMEOUT_S = 10


class DaskExecutor(Executor):
    """Tasks on a Dask cluster: ``scheduler`` (tcp://host:8786) or, if None, a
    ``LocalCluster`` of ``n_workers`` single-threaded worker processes here.

    ``n_workers`` with a scheduler caps the tasks running at once; without it
    the cluster's thread count at start-up is used.
    """

    def __init__(self, n_workers: int | None = None, scheduler: str | None = None) -> None:
        try:
            import distributed
        except ImportError:
            raise SearchError("the dask executor needs the cluster extra: pip install -e '.[cluster]'") from None
        self._distributed = distributed
        _quiet_dask(logging.WARNING)  # a local cluster's scheduler and nannies log every worker at INFO
        self._cluster: Any = None
        self._study = "NAME"
        self._futures: set[Any] = set()
        self._closed = False
        self._finished = threading.Event()
        if scheduler is None:
            self.address = "a local cluster"
            self._cluster = distributed.LocalCluster(
                n_workers=worker_count(n_workers),
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                env=dict(WORKER_ENV),
                scheduler_kwargs={"dashboard_address": ":0"},  # no dashboard; health routes on any port
                silence_logs=logging.ERROR,
            )
            target: Any = self._cluster
        else:
            self.address = target = scheduler
        try:
            self._client = distributed.Client(target, timeout=_CONNECT_TIMEOUT_S, set_as_default=False)
        except (OSError, TimeoutError, asyncio.TimeoutError, ValueError) as exc:
            if self._cluster is not None:
                self._cluster.close()
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SearchError(f"cannot reach the Dask scheduler at {scheduler}: {first}") from None
        threads = self._client.nthreads()
        if any(n > 1 for n in threads.values()):
            logger.warning(
                "Dask workers with several threads run trials in threads that share "
                "one GIL; start workers with --nthreads 1 (and more --nworkers)"
            )
        if not threads:
            logger.warning("the Dask scheduler at %s has no workers yet: trials wait for them", self.address)
        self.n_workers = n_workers if n_workers else max(1, sum(threads.values()))
        self._check_workers()
        logger.info("Dask: %d workers, %d threads at %s", len(threads), sum(threads.values()), self.address)

    def _check_workers(self) -> None:
        """Every worker must import the project: a task it cannot unpickle never comes back.

        Measured with distributed 2026.8: such a task stays pending for ever, so the run
        would wait for ever; asked up front, the worker answers with its ImportError.
        """
        answers = self._client.run(_can_run_trials, on_error="return")
        broken = [answer for answer in answers.values() if isinstance(answer, BaseException)]
        if broken:
            self.close(kill=True)
            raise _unusable_worker(broken[0])

    # ------------------------------------------------------------------ Executor
    def submit(self, task: TrialTask) -> Any:
        self._study = task.study_name
        # A unique key: two tasks with equal arguments are different trials (never deduplicated).
        key = f"trial-{task.study_name}-{task.number}-{uuid.uuid4().hex[:8]}"
        try:
            future = self._client.submit(run_trial, task, key=key, pure=False)
        except Exception:  # noqa: BLE001 -- the client refuses once the scheduler is gone
            if self._scheduler_is_lost():
                raise self._scheduler_lost_error() from None
            raise
        self._futures.add(future)
        future.add_done_callback(lambda _: self._finished.set())
        return future

    def wait(self, handles: Collection[Any], timeout: float | None) -> set[Any]:
        # Done means finished, erred or cancelled; every future sets the event when done.
        self._finished.clear()
        done = {f for f in handles if f.done()}
        if not done:
            self._finished.wait(timeout)
            done = {f for f in handles if f.done()}
        if self._client.status != "running" and (not done or any(f.cancelled() for f in done)):
            # Raised here, before any handle is collected, so the coordinator records every
            # in-flight trial as interrupted.
            raise self._scheduler_lost_error()
        return done

    def result(self, handle: Any) -> TrialResult:
        self._futures.discard(handle)
        try:
            return handle.result()
        except self._distributed.KilledWorker as exc:
            raise WorkerLostError(f"Dask workers died running it ({exc})", retryable=False) from None
        except (asyncio.CancelledError, concurrent.futures.CancelledError) as exc:
            if getattr(exc, "reason", "") == "scheduler-connection-lost" or self._scheduler_is_lost():
                raise self._scheduler_lost_error() from None
            raise WorkerLostError(f"Dask cancelled the task ({getattr(exc, 'reason', 'no reason given')})") from None
        except self._distributed.comm.CommClosedError as exc:  # a connection broke as the result came back
            # The client may not have noticed yet that the scheduler is gone (seen 1 run in 10
            # after a SIGKILLed scheduler), so ask the scheduler's port itself.
            if self._scheduler_is_lost() or not _answers(self.scheduler_address()):
                raise self._scheduler_lost_error() from None
            raise WorkerLostError(f"the connection broke while its result came back ({exc})") from None
        except Exception as exc:  # noqa: BLE001 -- reported as the worker's failure
            # run_trial never raises for training trouble: this is the worker unable to run it
            # at all (e.g. the project is not installed on the worker machine).
            raise _unusable_worker(exc) from None

    def close(self, *, kill: bool = False) -> None:
        if self._closed:
            return
        self._closed = True
        lost = self._client.status != "running"
        if lost:  # our error says the scheduler is gone; the client's reconnect traceback is noise
            _quiet_dask(logging.CRITICAL)
        try:
            if kill and self._futures and not lost:
                self._client.cancel(list(self._futures), force=True)
            self._client.close(timeout=10)
        except Exception:  # noqa: BLE001 -- closing a client whose scheduler is gone
            logger.debug("closing the Dask client", exc_info=True)
        if self._cluster is not None:
            try:
                self._cluster.close(timeout=20)
            except Exception:  # noqa: BLE001
                logger.debug("closing the local Dask cluster", exc_info=True)

    # ------------------------------------------------------------------ helpers
    def _scheduler_is_lost(self) -> bool:
        return self._client.status not in ("running", "connecting", "newly-created")

    def _scheduler_lost_error(self) -> SearchError:
        """The one-line error for a lost scheduler, saying how to resume."""
        return SearchError(
            f"lost the Dask scheduler at {self.address}; the study is saved: resume with "
            f"python -m search resume --study {self._study}"
        )

    def scheduler_address(self) -> str:
        return self._client.scheduler.address


def _can_run_trials() -> str:
    """Run on each worker: unpickling this function imports the project there."""
    import search.workers.tasks

    return search.workers.tasks.__name__


def _answers(address: str) -> bool:
    """Whether something accepts connections at a Dask address (``tcp://host:port``) within 2 s."""
    from distributed.comm import get_address_host_port  # Dask's own parser (IPv6 brackets included)

    try:
        with socket.create_connection(get_address_host_port(address), timeout=2):
            return True
    except (OSError, ValueError):
        return False


def _unusable_worker(exc: BaseException) -> SearchError:
    first = str(exc).splitlines()[0] if str(exc) else ""
    return SearchError(
        f"a Dask worker could not run trial tasks: {type(exc).__name__}: {first}; "
        "every worker needs the same version of this project and the data set"
    )


def _quiet_dask(level: int) -> None:
    """Raise the level of Dask's loggers (dask's config gives several their own level); not with -v -v."""
    if logging.getLogger().getEffectiveLevel() <= logging.DEBUG:
        return
    names = ["distributed"] + [n for n in logging.root.manager.loggerDict if n.startswith("distributed.")]
    for name in names:
        logging.getLogger(name).setLevel(max(level, logging.getLogger(name).level))
