"""Creating a study, or continuing a stored one: done by the coordinator, the one writer."""

from __future__ import annotations

import json
import logging
import warnings
from typing import Any

import optuna
from optuna.storages import RDBStorage

from search.coordinator.lease import StudyLease
from search.study import keys
from search.study.selection import SELECTIONS
from search.study.spec import StudySpec, check_compatible
from search.study.stored import load_spec, study_id_of

logger = logging.getLogger(__name__)


def _name_objective(storage: RDBStorage, spec: StudySpec) -> None:
    """Name the objective once (optuna-dashboard says "Objective 0" otherwise), also on a
    study made before names were stored."""
    study = optuna.Study(study_name=spec.name, storage=storage)
    if study.metric_names is None:
        with warnings.catch_warnings():  # experimental in some Optuna versions
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([SELECTIONS[spec.selection].metric])


def create_or_continue(
    storage: RDBStorage, spec: StudySpec, given: set[str], data_record: dict[str, Any] | None = None
) -> tuple[StudySpec, int, StudyLease]:
    """The study for a ``run``: new with ``spec``, or the stored one if its settings agree.

    ``data_record`` (a file's identity and preprocessing) is stored on a new study;
    an existing one keeps its own, which the caller has checked against the file.

    Also returns the study's lease, taken before anything of an existing study is
    changed: a study another coordinator is running is refused untouched.
    """
    study_id = study_id_of(storage, spec.name)
    created = False
    if study_id is None:
        try:
            study_id = storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], spec.name)
            created = True
        except optuna.exceptions.DuplicatedStudyError:  # another run created it a moment ago
            pass
    if created:
        merged = spec
        attrs = {keys.SPEC: spec.to_json(), keys.OBJECTIVE: SELECTIONS[spec.selection].text}
        if data_record is not None:
            attrs[keys.DATA_FILE] = json.dumps(data_record, sort_keys=True)
    else:
        stored, study_id = load_spec(storage, spec.name)
        merged = check_compatible(stored, spec, given)
        attrs = {} if merged == stored else {keys.SPEC: merged.to_json()}
    lease = StudyLease(storage, study_id, spec.name)
    lease.acquire()
    try:
        for key, value in attrs.items():
            storage.set_study_user_attr(study_id, key, value)
        _name_objective(storage, merged)
    except BaseException:
        lease.release()
        raise
    logger.info("%s study %r", "created" if created else "continuing", spec.name)
    return merged, study_id, lease
