"""The study held twice and kept in step: in memory for the sampler, in the storage for everyone else.

Sampling runs against an in-memory mirror of the study (Optuna's
``InMemoryStorage``, which shows the sampler a bounded view of a long study:
``search/coordinator/history.py``), so a slow database never delays the next trial. Every
change made to the mirror is also queued for the storage writer thread, in the
same order, so the database holds the same trials under the same numbers (the
storage checks the number it gets: ``search/study/storage.py::create_running_trial``).
The coordinator decides what to record; this class only records it in both places.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from search.coordinator.history import SamplerHistory
from search.coordinator.writer import StorageWriter
from search.study import optuna_internals
from search.study import storage as db
from search.study.spec import StudySpec
from search.study.stored import make_sampler
from search.workers.tasks import TrialResult

logger = logging.getLogger(__name__)


class StudyMirror:
    def __init__(self, spec: StudySpec, storage: RDBStorage, study_id: int) -> None:
        self.storage, self.study_id = storage, study_id
        self.writer = StorageWriter()
        self._db_ids: dict[int, int] = {}  # trial number -> the stored trial's row id
        self._mem_storage = SamplerHistory()
        self.study = optuna.create_study(
            storage=self._mem_storage, sampler=make_sampler(spec), study_name=spec.name, direction="minimize"
        )
        self._mem_id = self._mem_storage.get_study_id_from_name(spec.name)

    def load(self, stored: Sequence[FrozenTrial], as_seen: list[FrozenTrial]) -> None:
        """Mirror the ``stored`` trials, given ``as_seen`` by the sampler (``recovery.trials_for_mirror``)."""
        self._db_ids.update((t.number, optuna_internals.trial_id(t)) for t in stored)
        self.study.add_trials(as_seen)

    def fail_stored(self, trial: FrozenTrial, attrs: dict[str, Any]) -> None:
        """Record FAIL on a trial an earlier run left running; at once, not through the writer."""
        db.fail_trial(self.storage, optuna_internals.trial_id(trial), attrs)

    def ask(self, params: dict[str, Any] | None) -> optuna.Trial:
        """The next trial: with these ``params`` if given, else sampled."""
        if params is not None:
            self.study.enqueue_trial(params, skip_if_exists=False)
        return self.study.ask()

    def create(
        self,
        number: int,
        params: dict[str, Any],
        distributions: dict[str, Any],
        mem_attrs: dict[str, Any],
        db_attrs: dict[str, Any],
    ) -> None:
        """Trial ``number``, asked, is running: ``mem_attrs`` on the mirror, the trial into the storage."""
        mem_trial_id = self._mem_trial_id(number)
        for key, value in mem_attrs.items():  # the finalist stage reads them from the mirror
            self._mem_storage.set_trial_user_attr(mem_trial_id, key, value)
        self.writer.put("create", self._create_in_db, number, params, distributions, db_attrs)

    def _create_in_db(
        self, number: int, params: dict[str, Any], distributions: dict[str, Any], attrs: dict[str, Any]
    ) -> None:
        self._db_ids[number] = db.create_running_trial(
            self.storage, self.study_id, number, params, distributions, attrs
        )

    def fail(self, number: int, attrs: dict[str, Any]) -> None:
        self.study.tell(number, state=TrialState.FAIL)
        self.writer.put("fail", lambda: db.fail_trial(self.storage, self._db_ids[number], attrs))

    def finish(self, number: int, result: TrialResult, attrs: dict[str, Any]) -> FrozenTrial:
        """Record a complete (else pruned) trial with its curve; the told trial as the mirror holds it."""
        mem_trial_id = self._mem_trial_id(number)
        for step, loss in enumerate(result.values, start=1):
            self._mem_storage.set_trial_intermediate_value(mem_trial_id, step, loss)
        if result.outcome == "complete":
            frozen = self.study.tell(number, result.value)
        else:
            frozen = self.study.tell(number, state=TrialState.PRUNED)
        state, value, values = frozen.state, frozen.value, list(result.values)
        self.writer.put(
            "finish",
            lambda: db.finish_trial(
                self.storage, self._db_ids[number], state, value, values, attrs, result.system_attrs
            ),
        )
        return frozen

    def set_study_attr(self, key: str, value: str) -> None:
        """A study user attr, into the storage only (its write times are kept under ``key``)."""
        self.writer.put(key, self.storage.set_study_user_attr, self.study_id, key, value)

    def trials(self) -> list[FrozenTrial]:
        """Every trial, as the mirror holds it (the sampler sees fewer)."""
        return self._mem_storage.all_trials(self._mem_id)

    def _mem_trial_id(self, number: int) -> int:
        return self._mem_storage.get_trial_id_from_study_id_trial_number(self._mem_id, number)
