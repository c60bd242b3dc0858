"""What runs in a worker process, and the executors that start them.

``tasks.run_trial`` is the pure function a worker runs; ``final`` trains the
final networks in worker processes; ``local`` (loky processes here) and
``cluster`` (Dask) are the executors the coordinator submits tasks to. This
package imports neither engine until one is asked for, so reading the names
below loads no loky and no Dask. Nothing here imports the coordinator or the
readers (import-linter checks it).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from search.errors import SearchError

if TYPE_CHECKING:
    from search.workers.base import Executor

__all__ = ["EXECUTORS", "make_executor", "worker_count"]

EXECUTORS = ("local", "dask")  # --executor: LocalExecutor in local.py, DaskExecutor in cluster.py


def make_executor(kind: str, n_workers: int | None, scheduler: str | None) -> Executor:
    """``local``: a process pool here; ``dask``: the cluster at ``scheduler`` (or a local one)."""
    if kind == "local":
        if scheduler is not None:
            raise SearchError("--scheduler needs --executor dask")
        from search.workers.local import LocalExecutor

        return LocalExecutor(worker_count(n_workers))
    if kind == "dask":
        from search.workers.cluster import DaskExecutor

        return DaskExecutor(n_workers, scheduler)
    raise SearchError(f"unknown executor {kind!r}; choose one of {', '.join(EXECUTORS)}")


def worker_count(jobs: int | None) -> int:
    """Worker processes for ``--jobs``: as given, else one per core."""
    return jobs if jobs else (os.cpu_count() or 1)
