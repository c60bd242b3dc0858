"""One coordinator per study: a lease that the running coordinator keeps fresh.

Why: the coordinator numbers trials itself, and a starting run records every
trial left RUNNING as interrupted and runs it again. A second ``run`` or
``resume`` of a study that is still running would do exactly that to the live
run's trials, and the two would then fight over trial numbers. So a coordinator
holds a lease on its study while it runs and renews it every few seconds; any
other coordinator is refused while the lease is fresh.

Optuna's own heartbeat (``RDBStorage(heartbeat_interval=...)``) is kept per
trial by the process that runs the trial; here one coordinator writes every
trial, so the heartbeat is kept per study instead. It lives in Optuna's
``study_system_attributes`` table, whose unique (study, key) constraint makes
taking the lease a compare-and-set on SQLite and PostgreSQL alike.

A lease is free when it was released, when its holder ran on this host and that
process is gone (a coordinator killed with SIGKILL is taken over at once), or
when its last heartbeat is older than ``STALE_SECONDS`` (a machine lost).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import sqlalchemy
from optuna.storages import RDBStorage

from search.errors import SearchError, root_cause
from search.study import optuna_internals

logger = logging.getLogger(__name__)

LEASE_KEY = "search:coordinator"
BEAT_SECONDS = 5.0
STALE_SECONDS = 30.0


class StudyBusyError(SearchError):
    """Another live coordinator holds the study."""


class LeaseLostError(SearchError):
    """Another coordinator took the study over while this one ran (it missed its heartbeats)."""


@dataclass(frozen=True)
class Holder:
    token: str
    host: str
    pid: int
    process_start: str | None  # tells a reused pid from the holder itself
    beat: float  # wall-clock time of the last heartbeat

    def describe(self, now: float) -> str:
        return f"pid {self.pid} on {self.host}, last heartbeat {max(0.0, now - self.beat):.0f} s ago"


def _parse(value: str | None) -> Holder | None:
    """The holder a lease row names; None for no row or one this code cannot read (free)."""
    if value is None:
        return None
    try:
        return Holder(**json.loads(value))
    except (ValueError, TypeError):
        logger.warning("ignoring an unreadable coordinator lease: %.80s", value)
        return None


def _process_start(pid: int) -> str | None:
    """The process's start time since boot (Linux), or None where /proc is missing."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _is_alive_here(holder: Holder) -> bool:
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        pass
    return holder.process_start is None or _process_start(holder.pid) in (None, holder.process_start)


def is_stale(holder: Holder, now: float) -> bool:
    if holder.host == socket.gethostname():
        return not _is_alive_here(holder)
    return now - holder.beat > STALE_SECONDS


class StudyLease:
    """The right to write one study, renewed by a daemon thread while the run lasts."""

    def __init__(self, storage: RDBStorage, study_id: int, study_name: str) -> None:
        models = optuna_internals.rdb_models()
        self._engine = storage.engine
        self._table = models.StudySystemAttributeModel.__table__
        self._study_id, self._name = study_id, study_name
        pid = os.getpid()
        self._me = Holder(uuid.uuid4().hex, socket.gethostname(), pid, _process_start(pid), beat=0.0)
        self._mine: str | None = None  # the value_json this process last wrote
        self._lost: LeaseLostError | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ the row
    def _where(self) -> sqlalchemy.ColumnElement[bool]:
        t = self._table
        return sqlalchemy.and_(t.c.study_id == self._study_id, t.c.key == LEASE_KEY)

    def _read(self) -> str | None:
        with self._engine.connect() as conn:
            return conn.execute(sqlalchemy.select(self._table.c.value_json).where(self._where())).scalar()

    def _swap(self, old: str | None, new: str) -> bool:
        """Write ``new`` only if the row still holds ``old`` (None: no row): a compare-and-set."""
        t = self._table
        try:
            with self._engine.begin() as conn:
                if old is None:
                    conn.execute(t.insert().values(study_id=self._study_id, key=LEASE_KEY, value_json=new))
                    return True
                updated = conn.execute(t.update().where(self._where(), t.c.value_json == old).values(value_json=new))
                return updated.rowcount == 1
        except sqlalchemy.exc.IntegrityError:  # another process inserted first
            return False

    def _fresh(self) -> str:
        """This process as the holder, beating now."""
        return json.dumps(asdict(replace(self._me, beat=time.time())))

    # ------------------------------------------------------------ the API
    def acquire(self) -> None:
        """Take the lease or refuse with one line naming the holder; start the heartbeat."""
        for _ in range(5):  # lose a race only to a process that then holds the lease
            current = self._read()
            holder = _parse(current)
            if holder is not None:
                now = time.time()
                if not is_stale(holder, now):
                    raise StudyBusyError(
                        f"study {self._name!r} is being run by another coordinator ({holder.describe(now)}); "
                        f"wait for it to finish or stop it (Ctrl-C); a coordinator on another host that "
                        f"stopped beating is taken over {STALE_SECONDS:.0f} s after its last heartbeat"
                    )
                logger.warning(
                    "taking over study %r from a coordinator that is gone (%s)", self._name, holder.describe(now)
                )
            mine = self._fresh()
            if self._swap(current, mine):
                self._mine = mine
                self._thread = threading.Thread(target=self._beat_loop, name="lease-heartbeat", daemon=True)
                self._thread.start()
                return
        raise StudyBusyError(f"study {self._name!r} is being taken by other coordinators; try again")

    def beat(self) -> None:
        """Renew the lease; if another process has taken it, remember that for ``check``."""
        assert self._mine is not None
        mine = self._fresh()
        if self._swap(self._mine, mine):
            self._mine = mine
            return
        parsed = _parse(self._read())
        holder = "nobody" if parsed is None else parsed.describe(time.time())
        self._lost = LeaseLostError(
            f"study {self._name!r} was taken over by another coordinator ({holder}) after this one "
            f"missed its heartbeats; stored trials are kept"
        )
        self._stop.set()

    def _beat_loop(self) -> None:
        while not self._stop.wait(BEAT_SECONDS):
            try:
                self.beat()
            except Exception as exc:  # noqa: BLE001 -- a busy database: the next beat tries again
                logger.warning("could not renew the lease on study %r: %s", self._name, root_cause(exc))
                logger.debug("lease renewal", exc_info=True)

    @property
    def lost(self) -> bool:
        return self._lost is not None

    def check(self) -> None:
        """Raise in the coordinator's thread if the lease was lost."""
        if self._lost is not None:
            raise self._lost

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._mine is not None and self._lost is None:
            t = self._table
            try:
                with self._engine.begin() as conn:
                    conn.execute(t.delete().where(self._where(), t.c.value_json == self._mine))
            except sqlalchemy.exc.SQLAlchemyError as exc:  # once this pid is gone, the lease is free anyway
                logger.info("could not release the lease on study %r: %s", self._name, root_cause(exc))
                logger.debug("lease release", exc_info=True)
        self._mine = None
