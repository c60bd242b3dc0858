"""What every executor offers the coordinator: four methods, and one way to say a worker died.

The coordinator only submits ``run_trial(task)``, waits for any task to finish
and reads its result; a worker that died surfaces as ``WorkerLostError`` for the
task it was running (and only that one) so the coordinator can run the task
again. An engine (local processes in ``local.py``, Dask in ``cluster.py``) only
has to provide these four methods.
"""

from __future__ import annotations

import signal
from abc import ABC, abstractmethod
from collections.abc import Collection
from typing import Any

from search.workers.tasks import TrialResult, TrialTask

__all__ = ["WORKER_ENV", "Executor", "WorkerLostError", "leave_ctrl_c_to_the_coordinator"]


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
