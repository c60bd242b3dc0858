"""No command writes over what it reads: its input, the study's data file or folder, the database.

Every command with ``--out`` (``predict``, ``export``, ``report``, ``plot``,
``best --retrain``, ``show --csv``) asks ``check_output`` first, so a mistyped
path refuses in one line instead of replacing the file a study was made from.
An output inside a data folder is refused too, existing or not: a plot written
into an image folder would become a training image.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from search.errors import SearchError
from search.study.datafile import record_of
from search.study.storage import default_url, open_storage, sqlite_path
from search.study.stored import load_spec, study_id_of

__all__ = ["check_output", "study_files"]


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them is not there
        return False


def _inside(path: Path, folder: Path) -> bool:
    if not folder.is_dir():
        return False
    real, top = os.path.realpath(path), os.path.realpath(folder)
    return real != top and os.path.commonpath([real, top]) == top


def check_output(
    out: str | os.PathLike[str] | None, reads: Iterable[str | os.PathLike[str]], flag: str = "--out"
) -> None:
    """Refuse an output that would replace, or land inside, a file or folder the command reads.

    Paths are compared as the files they name (links followed), whatever their spelling.
    """
    if out is None:
        return
    target = Path(out)
    for read in map(Path, reads):
        if _same(target, read) or _inside(target, read):
            raise SearchError(f"{flag} {out} would replace {read}, which this command reads; write it elsewhere")


def study_files(study: str, storage_url: str | None) -> list[str]:
    """What every command on ``study`` reads: its database file and the file or folder it was made from."""
    url = storage_url or default_url(study)
    database = sqlite_path(url)
    files = [str(database)] if database else []
    if database is not None and not database.exists():
        return files  # no study here: the command says so itself
    storage = open_storage(url, read_only=True)
    try:
        study_id = study_id_of(storage, study)
        if study_id is None:
            return files
        spec, _ = load_spec(storage, study)
        record = record_of(storage, study_id)
    finally:
        storage.engine.dispose()
    source = spec.file_source()
    return files + ([source.path] if source is not None else []) + ([record["path"]] if record else [])
