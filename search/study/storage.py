"""Storage URL -> Optuna RDBStorage, safely.

Why this module exists: Optuna's ``RDBStorage`` creates tables in whatever file
it is pointed at, so a typo'd path would silently make a new database and a
non-Optuna SQLite file would be modified. Here an existing SQLite file is
checked read-only first, readers get read-only connections, and the writer runs
in WAL mode (readers never block it) with ``synchronous=NORMAL`` (no fsync per
commit; a power cut may lose the last commits, never corrupt the file).
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import optuna
import sqlalchemy
import sqlalchemy.engine
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from search.errors import SearchError
from search.study import optuna_internals

logger = logging.getLogger(__name__)

_SQLITE_MAGIC = b"SQLite format 3\x00"
_BUSY_TIMEOUT_S = 60.0


def default_url(study: str, directory: str | Path = "studies") -> str:
    return f"sqlite:///{Path(directory) / f'{study}.db'}"


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for other databases."""
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise SearchError(
            f"storage {url!r} is not a database URL; use e.g. sqlite:///studies/NAME.db "
            "or postgresql://USER:PASSWORD@HOST/DB"
        ) from None
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:":
        raise SearchError(f"storage {url!r} names no file; use sqlite:///PATH/TO/FILE.db")
    return Path(parsed.database)


def _read_only_uri(path: Path) -> str:
    """An SQLite URI that never writes to ``path``.

    A reader of a WAL database needs its "-shm" index, which SQLite creates when
    the directory is writable. In a read-only directory no writer can exist
    either (it could not create the "-wal"), so the file is opened as immutable.
    """
    frozen = not os.access(path.parent, os.W_OK) and not Path(f"{path}-wal").exists()
    return f"file:{path}?mode=ro" + ("&immutable=1" if frozen else "")


def _check_sqlite_file(path: Path, create: bool) -> None:
    """Refuse a file that is not an Optuna SQLite database, without touching it."""
    try:
        with path.open("rb") as handle:
            header = handle.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise SearchError(f"cannot read {str(path)!r}: {exc.strerror}") from None
    if not header:
        if create:
            return  # an empty file is an empty database: Optuna may initialise it
        raise SearchError(f"{str(path)!r} holds no Optuna studies (it is empty)")
    if header != _SQLITE_MAGIC:
        raise SearchError(f"{str(path)!r} is not an SQLite database")
    try:
        conn = sqlite3.connect(_read_only_uri(path), uri=True, timeout=_BUSY_TIMEOUT_S)
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            problem = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise SearchError(f"{str(path)!r} is not a usable SQLite database ({exc})") from None
    if problem != "ok":
        raise SearchError(f"{str(path)!r} is damaged (SQLite integrity check: {problem})")
    if tables and not {"studies", "trials", "version_info"} <= tables:
        raise SearchError(f"{str(path)!r} is an SQLite database but not an Optuna study database")
    if not tables and not create:
        raise SearchError(f"{str(path)!r} holds no Optuna studies (it has no tables)")


def _on_connect(read_only: bool):
    def set_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
        if not read_only:
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    return set_pragmas


def _create_sqlite_file(path: Path) -> None:
    """Make an empty Optuna database at ``path`` in one step.

    Optuna creates its tables one by one; a reader (a dashboard, ``show``) polling
    the path meanwhile would see a half-made schema. The tables are made in a
    temporary file beside it, which is then renamed into place.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SearchError(f"cannot create directory {str(path.parent)!r}: {exc.strerror}") from None
    if not os.access(path.parent, os.W_OK):
        raise SearchError(f"directory {str(path.parent)!r} is not writable")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        conn = sqlite3.connect(tmp)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.close()
        RDBStorage(f"sqlite:///{tmp}").engine.dispose()
        os.replace(tmp, path)
    finally:
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            leftover.unlink(missing_ok=True)


def open_storage(url: str, *, create: bool = False, read_only: bool = False) -> RDBStorage:
    """Open (or with ``create`` make) the storage behind ``url`` with one-line errors."""
    if not read_only:  # a writer goes below Optuna's API: say when its version was not tested
        optuna_internals.check_version()
    path = sqlite_path(url)
    shown = url  # error messages name what the user typed, not the read-only rewrite
    engine_kwargs: dict[str, Any] = {}
    if path is not None:
        if path.exists():
            _check_sqlite_file(path, create)
        elif not create:
            raise SearchError(f"no study database at {str(path)!r}")
        else:
            _create_sqlite_file(path)
        if not read_only and not os.access(path.parent, os.W_OK):
            raise SearchError(f"directory {str(path.parent)!r} is not writable")
        if not read_only and path.exists() and not os.access(path, os.W_OK):
            raise SearchError(f"database {str(path)!r} is read-only")
        if not read_only:
            # WAL is a property of the file: set once, every later connection uses it.
            conn = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S)
            try:
                conn.execute("PRAGMA journal_mode = WAL")
            finally:
                conn.close()
        else:
            url = f"sqlite:///{_read_only_uri(path)}&uri=true"
        engine_kwargs["connect_args"] = {"timeout": _BUSY_TIMEOUT_S, "check_same_thread": False}
    else:
        engine_kwargs["pool_pre_ping"] = True
    try:
        storage = RDBStorage(url, engine_kwargs=engine_kwargs, skip_table_creation=read_only)
    except ImportError:
        raise SearchError(
            f"no database driver for {url.split(':', 1)[0]!r}; for PostgreSQL: pip install '.[cluster]'"
        ) from None
    except RuntimeError as exc:  # schema written by an incompatible Optuna
        raise SearchError(f"storage {shown!r}: {str(exc).splitlines()[0]}") from None
    except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as exc:
        first = str(getattr(exc, "orig", exc) or exc).splitlines()[0]
        raise SearchError(f"cannot open storage {shown!r}: {first}") from None
    if path is not None:
        sqlalchemy.event.listen(storage.engine, "connect", _on_connect(read_only))
        storage.engine.dispose()  # connections made so far lack the pragmas
    return storage


def create_running_trial(
    storage: RDBStorage,
    study_id: int,
    number: int,
    params: Mapping[str, Any],
    distributions: Mapping[str, optuna.distributions.BaseDistribution],
    user_attrs: Mapping[str, Any],
) -> int:
    """One transaction: a RUNNING trial with its parameters, so a crash leaves a trace.

    Optuna's ``create_new_trial(template_trial=...)`` checks every parameter's
    distribution against the whole study with a join (20 ms a trial at 60 trials
    on SQLite, growing); the coordinator's in-memory study has already checked
    them, so the rows are written directly. ``number`` must be the next number
    in the study: anything else means a second process is writing it.
    """
    models = optuna_internals.rdb_models()

    with optuna_internals.scoped_session(storage) as session:
        models.StudyModel.find_or_raise_by_id(study_id, session, for_update=True)
        trial = models.TrialModel(
            study_id=study_id, number=number, state=TrialState.RUNNING, datetime_start=datetime.datetime.now()
        )
        session.add(trial)
        session.flush()
        past = trial.count_past_trials(session)
        if past != number:
            raise SearchError(
                f"trial {number} would be trial {past} in the database: another process is "
                "writing this study; run one coordinator per study"
            )
        _insert(
            session,
            models.TrialParamModel,
            [
                {
                    "trial_id": trial.trial_id,
                    "param_name": name,
                    "param_value": distributions[name].to_internal_repr(value),
                    "distribution_json": optuna.distributions.distribution_to_json(distributions[name]),
                }
                for name, value in params.items()
            ],
        )
        _insert(session, models.TrialUserAttributeModel, _attr_rows(trial.trial_id, user_attrs))
        return int(trial.trial_id)


def finish_trial(
    storage: RDBStorage,
    trial_id: int,
    state: TrialState,
    value: float | None,
    intermediate_values: Sequence[float],
    user_attrs: Mapping[str, Any],
    system_attrs: Mapping[str, Any],
) -> None:
    """Record a finished trial in ONE transaction with bulk inserts.

    Optuna's public calls cost one transaction (two queries) per intermediate
    value and attribute: about 40 ms for a 30-epoch trial on SQLite in WAL mode.
    Rows go in as bulk inserts, not ORM objects: the unit of work per object was
    half of the coordinator's write time. The rows written here are exactly the
    ones those calls write (same tables, same encodings, via Optuna's own
    models), so Optuna, pandas and optuna-dashboard read the trial as usual.
    """
    models = optuna_internals.rdb_models()

    ivm = models.TrialIntermediateValueModel
    with optuna_internals.scoped_session(storage) as session:
        trial = models.TrialModel.find_or_raise_by_id(trial_id, session, for_update=True)
        storage.check_trial_is_updatable(trial_id, cast(TrialState, trial.state))  # a TrialState at run time
        values = []
        for step, raw in enumerate(intermediate_values, start=1):
            stored, kind = ivm.intermediate_value_to_stored_repr(raw)
            values.append(
                {"trial_id": trial_id, "step": step, "intermediate_value": stored, "intermediate_value_type": kind}
            )
        _insert(session, ivm, values)
        _insert(session, models.TrialUserAttributeModel, _attr_rows(trial_id, user_attrs))
        _insert(session, models.TrialSystemAttributeModel, _attr_rows(trial_id, system_attrs))
        if value is not None:
            stored_value, value_kind = models.TrialValueModel.value_to_stored_repr(value)
            _insert(
                session,
                models.TrialValueModel,
                [{"trial_id": trial_id, "objective": 0, "value": stored_value, "value_type": value_kind}],
            )
        trial.state = state
        trial.datetime_complete = datetime.datetime.now()


def _attr_rows(trial_id: int, attrs: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"trial_id": trial_id, "key": k, "value_json": json.dumps(v)} for k, v in attrs.items()]


def _insert(session: Any, model: Any, rows: list[dict[str, Any]]) -> None:
    """Rows into ``model``'s table in one executemany: an ORM bulk insert (no unit of work per row)."""
    if rows:
        session.execute(sqlalchemy.insert(model), rows)


def fail_trial(storage: RDBStorage, trial_id: int, user_attrs: Mapping[str, Any]) -> None:
    """Mark a trial FAIL, keeping why (interrupted, worker died, exception text)."""
    finish_trial(storage, trial_id, TrialState.FAIL, None, (), user_attrs, {})


def peek_study_attrs(url: str, study: str) -> dict[str, Any] | None:
    """The user attrs of ``study`` if the storage and the study exist; read-only, creates nothing.

    None also when the storage cannot be opened (a server database without Optuna's
    tables yet): a real fault there (a wrong password, a dead server) is reported by
    the writer's open, which comes next.
    """
    from search.errors import SearchError

    path = sqlite_path(url)
    if path is not None and not path.exists():
        return None
    try:
        storage = open_storage(url, read_only=True)
    except SearchError:
        return None
    try:
        try:
            study_id = storage.get_study_id_from_name(study)
        except KeyError:
            return None
        return dict(storage.get_study_user_attrs(study_id))
    finally:
        storage.engine.dispose()
