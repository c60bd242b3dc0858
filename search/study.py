"""Creating, finding and describing studies in a storage."""

from __future__ import annotations

import json
import logging
import warnings
from typing import Any

import optuna
from optuna.storages import RDBStorage

from search.datafile import DATA_ATTR
from search.errors import SearchError
from search.lease import StudyLease
from search.samplers import SAMPLERS
from search.selection import SELECTIONS
from search.spec import SPEC_ATTR, StudySpec, check_compatible

logger = logging.getLogger(__name__)


def make_sampler(spec: StudySpec) -> optuna.samplers.BaseSampler:
    """The one sampler, living in the coordinator, seeded from the study seed."""
    return SAMPLERS[spec.sampler](spec.seed)  # StudySpec has checked the name


def _study_id(storage: RDBStorage, name: str) -> int | None:
    try:
        return storage.get_study_id_from_name(name)
    except KeyError:
        return None


def no_such_study(storage: RDBStorage, name: str, where: str = "this storage") -> SearchError:
    """The error for an unknown study name, listing the studies that do exist."""
    known = sorted(s.study_name for s in storage.get_all_studies())
    return SearchError(f"no study named {name!r} in {where}; studies here: {', '.join(known) or '(none)'}")


def load_spec(storage: RDBStorage, name: str) -> tuple[StudySpec, int]:
    """The stored spec of study ``name`` (and its id); a clear error if there is none."""
    study_id = _study_id(storage, name)
    if study_id is None:
        raise no_such_study(storage, name)
    attrs = storage.get_study_user_attrs(study_id)
    if SPEC_ATTR not in attrs:
        raise SearchError(f"study {name!r} was not made by this tool (it has no {SPEC_ATTR!r} attribute)")
    return StudySpec.from_json(attrs[SPEC_ATTR]), study_id


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
    study_id = _study_id(storage, spec.name)
    created = False
    if study_id is None:
        try:
            study_id = storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], spec.name)
            created = True
        except optuna.exceptions.DuplicatedStudyError:  # another run created it a moment ago
            pass
    if created:
        merged = spec
        attrs = {SPEC_ATTR: spec.to_json(), "objective": SELECTIONS[spec.selection].text}
        if data_record is not None:
            attrs[DATA_ATTR] = json.dumps(data_record, sort_keys=True)
    else:
        stored, study_id = load_spec(storage, spec.name)
        merged = check_compatible(stored, spec, given)
        attrs = {} if merged == stored else {SPEC_ATTR: merged.to_json()}
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
