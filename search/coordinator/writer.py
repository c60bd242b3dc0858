"""A single background thread that performs the coordinator's storage writes in order.

Why: a storage write costs a database round trip; done inline it would delay
the next dispatch and leave a worker idle. Writes are queued and performed in
submission order (so trial numbers in the database follow the coordinator's),
and the time each kind of write takes is kept for the benchmark.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from search.errors import SearchError, StorageWriteError, root_cause

logger = logging.getLogger(__name__)


class StorageWriter:
    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[str, Callable[..., Any], tuple[Any, ...]] | None] = queue.Queue()
        self._error: BaseException | None = None
        self.seconds: dict[str, list[float]] = defaultdict(list)
        self._thread = threading.Thread(target=self._loop, name="storage-writer", daemon=True)
        self._thread.start()

    def put(self, kind: str, fn: Callable[..., Any], *args: Any) -> None:
        self.raise_if_failed()
        self._queue.put((kind, fn, args))

    def _loop(self) -> None:
        while (item := self._queue.get()) is not None:
            kind, fn, args = item
            try:
                if self._error is None:  # after a failure, later writes would only compound it
                    start = time.perf_counter()
                    fn(*args)
                    self.seconds[kind].append(time.perf_counter() - start)
            except BaseException as exc:  # reported to the coordinator's thread
                logger.debug("storage write %s failed", kind, exc_info=True)
                self._error = exc
            finally:
                self._queue.task_done()
        self._queue.task_done()

    @property
    def failed(self) -> bool:
        return self._error is not None

    def raise_if_failed(self) -> None:
        if self._error is None:
            return
        if isinstance(self._error, SearchError):
            raise self._error
        raise StorageWriteError(
            f"the storage refused a write ({root_cause(self._error)}); the trials stored so far are "
            "kept: resume the study once the storage is writable again"
        ) from self._error

    def flush(self) -> None:
        """Wait until every queued write is done."""
        self._queue.join()
        self.raise_if_failed()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
