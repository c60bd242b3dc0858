"""Multi-fidelity augmentation: search trials train on the images as they are, finalists and final networks warped."""

from __future__ import annotations

from pathlib import Path

import pytest

import search.workers.final
from search.coordinator.coordinator import Coordinator
from search.coordinator.create import create_or_continue
from search.errors import SearchError
from search.study.dataref import DataRef
from search.study.spec import StudySpec, build_spec
from search.study.storage import open_storage
from search.study.stored import load_spec
from search.workers.final import retrain_best
from search.workers.tasks import TrialTask
from tests.search.test_faults import InlineExecutor


def test_only_finalist_runs_and_the_final_networks_are_warped(tmp_path: Path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    storage = open_storage(url, create=True)
    wanted = StudySpec(name="w", trials=6, epochs=2, finalists=2, finalist_repeats=1, finalist_warp=1.5)
    spec, study_id, lease = create_or_continue(storage, wanted, set())
    lease.release()
    warps: dict[int, float] = {}

    class Recording(InlineExecutor):
        def submit(self, task: TrialTask):
            warps[task.number] = task.config.augment_warp
            return super().submit(task)

    Coordinator(spec, storage, study_id, Recording(), data=DataRef.of(spec), progress=False).run()
    assert sorted(warps) == list(range(8))  # 6 search trials, then 2 finalist runs
    assert [warps[n] for n in range(8)] == [0.0] * 6 + [1.5] * 2
    assert load_spec(storage, "w")[0].finalist_warp == 1.5  # stored with the study: resume and retrain read it

    retrained = []
    real = search.workers.final._train_one

    def record(config, data, *more):
        retrained.append(config.augment_warp)
        return real(config, data, *more)

    monkeypatch.setattr(search.workers.final, "_train_one", record)
    retrain_best("w", url, seeds=1, jobs=1, out=str(tmp_path / "net.npz"))
    assert retrained == [1.5]


def test_a_finalist_warp_is_checked_like_the_spaces() -> None:
    assert build_spec("d", None, {}).finalist_warp == 1.5  # the digits default (search/study/spec.py)
    assert build_spec("d", None, {"dataset": "fashion-mnist"}).finalist_warp is None
    with pytest.raises(SearchError, match="augment_warp must be in"):
        StudySpec(name="s", finalist_warp=5.0)
