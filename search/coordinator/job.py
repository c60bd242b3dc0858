"""The job of ``run`` and ``resume``: data, plan, study, coordinator and, with a budget, the final ensemble.

Kept apart from the command line so that the order of its stages is read in
one place, ``run_job``: the data is loaded and the file checked before
anything is written (``_load``); a budget is planned (``search/budget/plan.py``)
before the study is created, since the plan decides its settings, and after
the executor's workers exist, since the plan is sized for them (``_plan``);
the study is created or continued and the coordinator runs it (``_run``);
and the final ensemble is trained after the coordinator has released its
workers (``_final_stage``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from model.datasets import Dataset
from search.budget.cost import probe
from search.budget.deadlines import deadlines_for
from search.budget.ensemble import why_fewer, winner_ensemble_size
from search.budget.leftover import end_margin, final_overhead, why_early
from search.budget.plan import Plan, minimum_budget, plan_budget
from search.budget.shares import ENSEMBLE_MAX, TRIAL_CEILING
from search.coordinator.coordinator import Coordinator, RunSummary
from search.coordinator.create import create_or_continue
from search.errors import SearchError
from search.study import keys
from search.study.datafile import check_unchanged, every_row_ratio, record_in
from search.study.dataref import DataRef, task_decided, task_of
from search.study.durations import format_duration
from search.study.spec import StudySpec, with_plan, with_task
from search.study.storage import default_url, open_storage, peek_study_attrs
from search.study.stored import load_spec
from search.study.winner import final_epochs, load_winner
from search.workers import make_executor
from search.workers.base import Executor
from search.workers.final import retrain_best

__all__ = ["Execution", "JobResult", "run_job"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Execution:
    """How a run executes: nothing here changes what its trials mean."""

    storage: str | None = None
    jobs: int | None = None
    timeout: float | None = None
    data_dir: str | None = None
    progress: bool = True
    executor: str = "local"
    scheduler: str | None = None


@dataclass
class JobResult:
    summary: RunSummary
    url: str
    jobs: int
    record: dict[str, Any] | None  # a file's record
    plan: Plan | None = None  # a new budgeted study's plan
    budget: float | None = None
    spent_before: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)  # this run's seconds per stage
    final: str | None = None  # the final ensemble's report, when a budget trained it
    used: float | None = None  # a budget's seconds used when the job ended, earlier runs' included
    ended: str | None = None  # a budget's job that ended before 90% of it: why, in one line


def _stored(attrs: dict[str, Any] | None) -> tuple[StudySpec, float] | None:
    """An existing study's spec and budget spent, from its user attrs; None if there is no such study."""
    if attrs is None or keys.SPEC not in attrs:
        return None
    return StudySpec.from_json(attrs[keys.SPEC]), float(json.loads(attrs.get(keys.BUDGET_SPENT, "0")))


def _stored_plan(attrs: dict[str, Any] | None) -> Plan | None:
    """The plan a budgeted study was created with: ``resume`` keeps to its cost model."""
    return Plan.from_json(json.loads(attrs[keys.BUDGET_PLAN])) if attrs and keys.BUDGET_PLAN in attrs else None


def _store_spent(url: str, name: str, seconds: float, ended: str | None) -> None:
    """The budget's seconds used, and on its stored plan why the job ended early (the report shows both)."""
    storage = open_storage(url)
    try:
        study_id = load_spec(storage, name)[1]
        storage.set_study_user_attr(study_id, keys.BUDGET_SPENT, json.dumps(round(seconds, 3)))
        stored = storage.get_study_user_attrs(study_id).get(keys.BUDGET_PLAN)
        if stored is not None:  # the last run's word stands: an earlier run's is replaced or dropped
            plan = {k: v for k, v in json.loads(stored).items() if k != "ended"}
            storage.set_study_user_attr(
                study_id, keys.BUDGET_PLAN, json.dumps(plan | ({"ended": ended} if ended else {}))
            )
    finally:
        storage.engine.dispose()


@dataclass(frozen=True)
class _Loaded:
    """What the job reads before it writes anything: the data, and the study if it exists."""

    data: DataRef
    dataset: Dataset
    url: str
    attrs: dict[str, Any] | None  # the existing study's user attrs; None: there is no such study
    spec: StudySpec  # the spec asked for, with its task: the stored study's, or the data's (``with_task``)


def run_job(
    spec: StudySpec,
    options: Execution,
    given: set[str],
    *,
    create: bool,
    announce: Callable[[str], None] | None = None,
    train_ensemble: bool = True,
) -> JobResult:
    """Run or resume a study; ``announce`` hears the budget's plan as soon as it is made.

    ``train_ensemble=False``: a budget's last stage, the final ensemble, is left to the caller
    (``SearchCV`` refits on all its rows).
    """
    started = time.monotonic()
    loaded = _load(spec, options)
    if spec.task is None and loaded.attrs is None and announce is not None:
        announce(task_decided(loaded.dataset))
    spec = loaded.spec
    stored = _stored(loaded.attrs)
    spent_before = stored[1] if stored else 0.0
    budget = spec.budget if stored is None or "budget" in given else stored[0].budget
    plan = None
    with contextlib.ExitStack() as done:  # the executor closes last, after the study's storage
        executor = make_executor(options.executor, options.jobs, options.scheduler)
        done.callback(executor.close)
        jobs = executor.n_workers
        if budget is not None and stored is None:
            spec, plan = _plan(spec, given, budget, loaded.dataset, jobs, started, announce)
        spec, summary, setup = _run(spec, given, create, options, loaded, executor, plan, spent_before, started)
    result = JobResult(
        summary=summary,
        url=loaded.url,
        jobs=jobs,
        record=loaded.dataset.record,
        plan=plan,
        budget=spec.budget,
        spent_before=spent_before,
        stages={"start-up": setup, **summary.stage_seconds},
    )
    if spec.budget is not None and train_ensemble:
        _final_stage(result, spec, options, started)
    return result


def _load(spec: StudySpec, options: Execution) -> _Loaded:
    """The data, checked against the study's file record, and one read-only look at the study."""
    url = options.storage or default_url(spec.name)
    attrs = peek_study_attrs(url, spec.name)
    stored = _stored(attrs)
    spec = spec if stored is None else with_task(spec, stored[0].task)  # an existing study keeps its question
    data = DataRef.of(spec, options.data_dir)
    check_unchanged(record_in(attrs), data, spec.name)  # before the file is converted again
    dataset = data.load()  # before any file is written: a missing data set changes nothing
    if spec.task is None and data.file is not None:  # a new study's task left to its target: now decided
        spec = with_task(spec, task_of(dataset))
        data = dataclasses.replace(data, file=dataclasses.replace(data.file, task=spec.task))  # the same entry
    logger.info(
        "%s: %d train / %d validation / %d test samples, %d features, %d classes",
        spec.data_name,
        len(dataset.y_train),
        len(dataset.y_val),
        len(dataset.y_test),
        dataset.n_features,
        dataset.n_classes,
    )
    return _Loaded(data, dataset, url, attrs, spec)


def _plan(
    spec: StudySpec,
    given: set[str],
    budget: float,
    dataset: Dataset,
    jobs: int,
    started: float,
    announce: Callable[[str], None] | None,
) -> tuple[StudySpec, Plan]:
    """A new budgeted study's plan from costs measured now, and the spec it decides (a flag still wins)."""
    cost = probe(dataset, spec.seed)
    least = minimum_budget(dataset, jobs, cost)
    if budget < least:
        raise SearchError(
            f"a budget of {format_duration(budget)} cannot train three epochs of the "
            f"smallest network in each stage on this data: give at least "
            f"{format_duration(least)}"
        )
    plan = plan_budget(budget, dataset, jobs, cost, elapsed=time.monotonic() - started)
    if announce is not None:
        announce("\n".join(f"{k:<6}  {v}" for k, v in plan.describe()))
    spec = with_plan(spec, plan.settings(), given)
    if "trials" not in given:
        spec = _without_trial_cap(spec)
    return spec, plan


def _run(
    spec: StudySpec,
    given: set[str],
    create: bool,
    options: Execution,
    loaded: _Loaded,
    executor: Executor,
    plan: Plan | None,
    spent_before: float,
    started: float,
) -> tuple[StudySpec, RunSummary, float]:
    """Create or continue the study and run its coordinator: (the study's spec, the run's summary, start-up seconds)."""
    with contextlib.ExitStack() as done:  # closed in reverse: lease, storage
        storage = open_storage(loaded.url, create=create)
        done.callback(storage.engine.dispose)  # closes the writer's connections: SQLite checkpoints the WAL
        spec, study_id, lease = create_or_continue(storage, spec, given, loaded.dataset.record)
        done.callback(lease.release)
        if plan is not None:
            storage.set_study_user_attr(study_id, keys.BUDGET_PLAN, json.dumps(plan.to_json()))
        setup = time.monotonic() - started
        spent = spent_before + setup
        made = plan or _stored_plan(loaded.attrs)
        deadlines = deadlines_for(spec, spec.budget, spent, options.timeout, made, loaded.dataset)
        coordinator = Coordinator(
            spec,
            storage,
            study_id,
            executor,
            data=loaded.data,
            deadlines=deadlines,
            progress=options.progress,
            lease=lease,
            spent_before=None if spec.budget is None else spent,
        )
        return spec, coordinator.run(), setup


def _without_trial_cap(spec: StudySpec) -> StudySpec:
    """A budget without --trials: time decides how many (the count is only a ceiling no plan reaches)."""
    return dataclasses.replace(spec, trials=TRIAL_CEILING)


def _final_stage(result: JobResult, spec: StudySpec, options: Execution, started: float) -> None:
    """A budget's last stage: the final ensemble in what is left of it; then the budget's seconds used, stored,
    and why the job ended early if it did."""
    budget = result.budget
    assert budget is not None
    stage_start = time.monotonic()
    left = budget - result.spent_before - (stage_start - started)
    networks, full, fewer = 0, False, ""
    if left > end_margin(budget):
        overhead = final_overhead(result.summary.worker_start)
        result.final, networks, full, fewer = _train_final_ensemble(
            spec, result.url, budget, left, result.jobs, options, overhead, result.record
        )
    else:
        result.final = (
            f"no time left for final networks: the budget of {format_duration(budget)} is "
            f"spent; give more with `python -m search run --study {spec.name} --budget ...`"
        )
    result.stages["final networks"] = time.monotonic() - stage_start
    used = result.spent_before + time.monotonic() - started
    s = result.summary
    result.used = used
    result.ended = why_early(
        used,
        budget,
        search_ended=s.search_ended,
        search_left=s.search_left,
        later_left=s.later_left,
        took=s.stage_seconds.get("finalists", 0.0) + result.stages["final networks"],
        finalist_runs=s.finalist_runs,
        networks=networks,
        full_epochs=full,
        fewer=fewer,
        finalist_stage=spec.finalists > 0,
    )
    _store_spent(result.url, spec.name, used, result.ended)


def _train_final_ensemble(
    spec: StudySpec,
    url: str,
    budget: float,
    seconds_left: float,
    jobs: int,
    options: Execution,
    overhead: float,
    record: dict[str, Any] | None,
) -> tuple[str, int, bool, str]:
    """The final ensemble of the budget's last stage, sized to what is left of it: (its report, networks, whether
    they trained their full epochs, why fewer networks than the cap if they did). On a table whose test rows
    were drawn (``record``: the file's), each network is scored, then trained again on every row for predict."""
    try:
        read = load_winner(spec.name, url)
    except SearchError as exc:  # not one trial finished in the search's share
        raise SearchError(
            f"{exc}: its budget of {format_duration(budget)} left no time to finish a trial "
            "of this data; give a longer --budget"
        ) from None
    winner = read[1]
    every_row = every_row_ratio(record)
    k, epochs = winner_ensemble_size(spec, winner, seconds_left, jobs, overhead=overhead, every_row=every_row)
    logger.info(
        "final networks: %d of %d epochs%s (%.0f s left, %.1f s of them the stage's own)",
        k,
        epochs,
        ", each again on every row" if every_row else "",
        seconds_left,
        overhead,
    )
    report = retrain_best(
        spec.name,
        options.storage,
        data_dir=options.data_dir,
        seeds=k,
        jobs=jobs,
        epochs=epochs,
        every_row=every_row > 0,
        read=read,
    )
    full = epochs >= final_epochs(spec, winner)
    short = full and k < ENSEMBLE_MAX
    fewer = why_fewer(spec, winner, seconds_left, jobs, k, overhead, every_row) if short else ""
    return report, k, full, fewer
