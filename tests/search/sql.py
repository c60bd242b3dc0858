"""Named queries on a study's SQLite file, in Optuna's schema: what the tests read behind Optuna's back.

Each returns the rows as SQLite gives them (``value_json`` still JSON text), so a
test decodes what it checks. Trials are named by ``number``, as users see them,
never by the storage's ``trial_id``.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import query

_FINALIST_RUN = "s.key='stage' AND s.value_json='\"finalist\"'"
# trials t that are not finalist runs (the search's own trials)
_SEARCH_ONLY = ("t.trial_id NOT IN (SELECT trial_id FROM trial_user_attributes "
                "WHERE key='stage' AND value_json='\"finalist\"')")


def attr_by_number(db: Path, key: str, state: str | None = None) -> list[tuple[int, str]]:
    """(trial number, value_json) of user attribute ``key``, by trial number; only trials in ``state`` if given."""
    where = " AND t.state=?" if state is not None else ""
    return query(db, "SELECT t.number, a.value_json FROM trials t JOIN trial_user_attributes a USING (trial_id) "
                     f"WHERE a.key=?{where} ORDER BY t.number", key, *([state] if state is not None else []))


def attrs_of(db: Path, number: int) -> dict[str, str]:
    """Every user attribute of trial ``number``: key -> value_json."""
    return dict(query(db, "SELECT a.key, a.value_json FROM trial_user_attributes a JOIN trials t "
                          "USING (trial_id) WHERE t.number=?", number))


def params_of(db: Path, number: int) -> list[tuple[str, float]]:
    """(name, stored value) of trial ``number``'s parameters, by name."""
    return query(db, "SELECT param_name, param_value FROM trial_params JOIN trials USING (trial_id) "
                     "WHERE number=? ORDER BY param_name", number)


def params_of_retries(db: Path, number: int) -> list[tuple[str, float]]:
    """The parameters, as ``params_of``, of the trials that re-ran trial ``number`` (user attr ``retry_of``)."""
    return query(db, "SELECT p.param_name, p.param_value FROM trial_params p JOIN trials t USING (trial_id) "
                     "JOIN trial_user_attributes a USING (trial_id) WHERE a.key='retry_of' AND "
                     "a.value_json=? ORDER BY p.param_name", json.dumps(number))


def curve_of(db: Path, number: int) -> list[tuple[int, float | None, str]]:
    """(epoch, validation loss, Optuna's value type: FINITE, NAN ...) of trial ``number``, by epoch."""
    return query(db, "SELECT v.step, v.intermediate_value, v.intermediate_value_type FROM "
                     "trial_intermediate_values v JOIN trials t USING (trial_id) WHERE t.number=? ORDER BY v.step",
                 number)


def epochs_reported(db: Path, state: str) -> list[tuple[int, int]]:
    """(trial number, epochs with a stored validation loss) of the trials in ``state``."""
    return query(db, "SELECT t.number, count(v.step) FROM trials t JOIN trial_intermediate_values v "
                     "USING (trial_id) WHERE t.state=? GROUP BY t.number", state)


def best_search_trials(db: Path, k: int) -> list[tuple[int]]:
    """(number,) of the ``k`` COMPLETE search trials (finalist runs left out) of lowest value, ties by number."""
    return query(db, "SELECT t.number FROM trials t JOIN trial_values v USING (trial_id) "
                     f"WHERE t.state='COMPLETE' AND {_SEARCH_ONLY} ORDER BY v.value, t.number LIMIT ?", k)


def finalist_attr(db: Path, key: str) -> list[tuple[str]]:
    """(value_json,) of user attribute ``key`` on every finalist run."""
    return query(db, "SELECT a.value_json FROM trial_user_attributes a JOIN trial_user_attributes s "
                     f"USING (trial_id) WHERE a.key=? AND {_FINALIST_RUN}", key)


def state_counts(db: Path) -> list[tuple[str, int]]:
    """(state, number of trials) over every trial, finalist runs included."""
    return query(db, "SELECT state, count(*) FROM trials GROUP BY state")


def best_search_value(db: Path) -> float:
    """The lowest objective value of a COMPLETE search trial (finalist runs left out)."""
    ((best,),) = query(db, "SELECT min(v.value) FROM trial_values v JOIN trials t USING (trial_id) "
                           f"WHERE t.state='COMPLETE' AND {_SEARCH_ONLY}")
    return best


def search_epochs_run(db: Path) -> int:
    """Epochs with a finite validation loss over the finished search trials (finalist runs left out)."""
    ((epochs,),) = query(db, "SELECT count(*) FROM trial_intermediate_values v JOIN trials t USING (trial_id) "
                             "WHERE t.state IN ('COMPLETE', 'PRUNED') AND v.intermediate_value_type='FINITE' "
                             f"AND {_SEARCH_ONLY}")
    return epochs


def study_id_of(db: Path, name: str) -> int:
    """The storage's id of study ``name``."""
    ((study_id,),) = query(db, "SELECT study_id FROM studies WHERE study_name=?", name)
    return study_id
