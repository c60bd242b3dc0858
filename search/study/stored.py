"""Finding a stored study: its id, its spec, and the sampler it was made with."""

from __future__ import annotations

import optuna
from optuna.storages import BaseStorage

from search.errors import SearchError
from search.study import keys
from search.study.samplers import SAMPLERS
from search.study.spec import StudySpec


def make_sampler(spec: StudySpec) -> optuna.samplers.BaseSampler:
    """The one sampler, living in the coordinator, seeded from the study seed."""
    return SAMPLERS[spec.sampler](spec.seed)  # StudySpec has checked the name


def study_id_of(storage: BaseStorage, name: str) -> int | None:
    try:
        return storage.get_study_id_from_name(name)
    except KeyError:
        return None


def no_such_study(storage: BaseStorage, name: str, where: str = "this storage") -> SearchError:
    """The error for an unknown study name, listing the studies that do exist."""
    known = sorted(s.study_name for s in storage.get_all_studies())
    return SearchError(f"no study named {name!r} in {where}; studies here: {', '.join(known) or '(none)'}")


def load_spec(storage: BaseStorage, name: str) -> tuple[StudySpec, int]:
    """The stored spec of study ``name`` (and its id); a clear error if there is none."""
    study_id = study_id_of(storage, name)
    if study_id is None:
        raise no_such_study(storage, name)
    attrs = storage.get_study_user_attrs(study_id)
    if keys.SPEC not in attrs:
        raise SearchError(f"study {name!r} was not made by this tool (it has no {keys.SPEC!r} attribute)")
    return StudySpec.from_json(attrs[keys.SPEC]), study_id
