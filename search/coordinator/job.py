"""The job of ``run`` and ``resume``: data, plan, study, coordinator and, with a budget, the final networks.

Kept apart from the command line so that the order of its steps is read in
one place: the data is loaded and the file checked before anything is
written; a budget is planned (``search/budget/plan.py``) before the study is
created, since the plan decides its settings; the executor's workers exist
before the plan, since the plan is sized for them; and the final networks
are trained after the coordinator has released its workers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from search.budget import plan as bud
from search.coordinator.coordinator import Coordinator, Deadlines, RunSummary
from search.coordinator.create import create_or_continue
from search.errors import SearchError
from search.study import keys
from search.study.datafile import check_unchanged, record_in
from search.study.dataref import DataRef
from search.study.durations import format_duration
from search.study.spec import StudySpec, with_plan
from search.study.storage import default_url, open_storage, peek_study_attrs
from search.study.stored import load_spec
from search.study.winner import Winner, final_epochs, load_winner
from search.workers import make_executor
from search.workers.final import retrain_best

__all__ = ["Execution", "JobResult", "final_size", "run_job"]

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
    plan: bud.Plan | None = None  # a new budgeted study's plan
    budget: float | None = None
    spent_before: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)  # this run's seconds per stage
    final: str | None = None  # the final networks' report, when a budget trained them


def _stored(attrs: dict[str, Any] | None) -> tuple[StudySpec, float] | None:
    """An existing study's spec and budget spent, from its user attrs; None if there is no such study."""
    if attrs is None or keys.SPEC not in attrs:
        return None
    return StudySpec.from_json(attrs[keys.SPEC]), float(json.loads(attrs.get(keys.BUDGET_SPENT, "0")))


def _stored_plan(attrs: dict[str, Any] | None) -> bud.Plan | None:
    """The plan a budgeted study was created with: ``resume`` keeps to its cost model."""
    return bud.Plan.from_json(json.loads(attrs[keys.BUDGET_PLAN])) if attrs and keys.BUDGET_PLAN in attrs else None


def _store_spent(url: str, name: str, seconds: float) -> None:
    storage = open_storage(url)
    try:
        storage.set_study_user_attr(load_spec(storage, name)[1], keys.BUDGET_SPENT, json.dumps(round(seconds, 3)))
    finally:
        storage.engine.dispose()


def run_job(
    spec: StudySpec,
    options: Execution,
    given: set[str],
    *,
    create: bool,
    announce: Callable[[str], None] | None = None,
    final_networks: bool = True,
) -> JobResult:
    """Run or resume a study; ``announce`` hears the budget's plan as soon as it is made.

    ``final_networks=False``: a budget's last stage is left to the caller (``SearchCV`` refits on all its rows).
    """
    started = time.monotonic()
    data = DataRef.of(spec, options.data_dir)
    url = options.storage or default_url(spec.name)
    attrs = peek_study_attrs(url, spec.name)  # one read-only look at an existing study
    check_unchanged(record_in(attrs), data, spec.name)  # before the file is converted again
    dataset = data.load()  # before any file is written: a missing data set changes nothing
    logger.info(
        "%s: %d train / %d validation / %d test samples, %d features, %d classes",
        spec.data_name,
        len(dataset.y_train),
        len(dataset.y_val),
        len(dataset.y_test),
        dataset.n_features,
        dataset.n_classes,
    )
    stored = _stored(attrs)
    spent_before = stored[1] if stored else 0.0
    budget = spec.budget if stored is None or "budget" in given else stored[0].budget
    plan = None
    with contextlib.ExitStack() as done:  # closed in reverse: executor, lease, storage
        executor = make_executor(options.executor, options.jobs, options.scheduler)
        done.callback(executor.close)
        jobs = executor.n_workers
        if budget is not None and stored is None:
            cost = bud.probe(dataset, spec.seed)
            least = bud.minimum_budget(dataset, jobs, cost)
            if budget < least:
                raise SearchError(
                    f"a budget of {format_duration(budget)} cannot train one epoch of the "
                    f"smallest network in each stage on this data: give at least "
                    f"{format_duration(least)}"
                )
            plan = bud.plan_budget(budget, dataset, jobs, cost, elapsed=time.monotonic() - started)
            if announce is not None:
                announce("\n".join(f"{k:<6}  {v}" for k, v in plan.describe()))
            spec = with_plan(spec, plan.settings(), given)
            if "trials" not in given:
                spec = _without_trial_cap(spec)
        storage = open_storage(url, create=create)
        done.callback(storage.engine.dispose)  # closes the writer's connections: SQLite checkpoints the WAL
        spec, study_id, lease = create_or_continue(storage, spec, given, dataset.record)
        done.callback(lease.release)
        if plan is not None:
            storage.set_study_user_attr(study_id, keys.BUDGET_PLAN, json.dumps(plan.to_json()))
        budget = spec.budget
        setup = time.monotonic() - started
        made = plan or _stored_plan(attrs)
        trial_cost = bud.TrialCost.of(made, dataset, spec.cv) if made is not None else None
        deadlines = _deadlines(spec, budget, spent_before + setup, options.timeout, made, trial_cost)
        coordinator = Coordinator(
            spec,
            storage,
            study_id,
            executor,
            data=data,
            deadlines=deadlines,
            progress=options.progress,
            lease=lease,
            spent_before=None if budget is None else spent_before + setup,
        )
        summary = coordinator.run()
    result = JobResult(
        summary, url, jobs, dataset.record, plan, budget, spent_before, {"start-up": setup, **summary.stage_seconds}
    )
    if budget is not None and final_networks:
        stage_start = time.monotonic()
        left = budget - spent_before - (stage_start - started)
        if left > bud.MARGIN * budget:
            result.final = _final_networks(spec, url, budget, left, jobs, options)
        else:
            result.final = (
                f"no time left for final networks: the budget of {format_duration(budget)} is "
                f"spent; give more with `python -m search run --study {spec.name} --budget ...`"
            )
        result.stages["final networks"] = time.monotonic() - stage_start
        _store_spent(url, spec.name, spent_before + time.monotonic() - started)
    return result


def _without_trial_cap(spec: StudySpec) -> StudySpec:
    """A budget without --trials: time decides how many (the count is only a ceiling no plan reaches)."""
    return dataclasses.replace(spec, trials=bud.TRIAL_CEILING)


def _deadlines(
    spec: StudySpec,
    budget: float | None,
    spent: float,
    timeout: float | None,
    plan: bud.Plan | None,
    cost: bud.TrialCost | None,
) -> Deadlines | None:
    """The coordinator's deadlines, in seconds from its start: a budget's stage ends, or ``--timeout``."""
    if budget is None:
        return None if timeout is None else Deadlines(timeout, timeout)
    search_end = bud.SHARES["search"] * budget - spent
    stop = (bud.SHARES["search"] + bud.SHARES["finalists"]) * budget - spent
    if timeout is not None:
        search_end, stop = min(search_end, timeout), min(stop, timeout)
    typical = plan.typical_epoch_seconds * spec.epochs * spec.cv if plan else 0.0
    return Deadlines(max(search_end, 0.0), max(stop, 0.0), budgeted=True, typical_trial=typical, trial_cost=cost)


def _final_networks(
    spec: StudySpec, url: str, budget: float, seconds_left: float, jobs: int, options: Execution
) -> str:
    """The final ensemble of the budget's last stage, sized to what is left of it."""
    try:
        _, winner, _ = load_winner(spec.name, url)
    except SearchError as exc:  # not one trial finished in the search's share
        raise SearchError(
            f"{exc}: its budget of {format_duration(budget)} left no time to finish a trial "
            "of this data; give a longer --budget"
        ) from None
    k, epochs = final_size(spec, winner, seconds_left, jobs)
    logger.info("final networks: %d of %d epochs (%.0f s left)", k, epochs, seconds_left)
    return retrain_best(spec.name, options.storage, data_dir=options.data_dir, seeds=k, jobs=jobs, epochs=epochs)


def final_size(spec: StudySpec, winner: Winner, seconds_left: float, jobs: int, rows: float = 1.0) -> tuple[int, int]:
    """(networks, epochs) of a budget's final ensemble in ``seconds_left`` (less the margin).

    ``rows``: how many times train + validation the networks train on (``SearchCV`` refits on all its rows).
    """
    assert spec.budget is not None
    epoch_seconds = winner_epoch_seconds(spec, winner.runs or (winner.trial,)) * rows
    return bud.final_networks(seconds_left - bud.MARGIN * spec.budget, epoch_seconds, final_epochs(spec, winner), jobs)


def winner_epoch_seconds(spec: StudySpec, runs: Any) -> float:
    """One epoch of the winner on train + validation, one worker: from its runs' own timings.

    A run of k folds trained k networks on (k-1)/k of train + validation each; a holdout
    run one network on the training split (val_fraction short of the whole).
    """
    per_epoch = []
    for t in runs:
        seconds, epochs = t.user_attrs.get("seconds"), t.user_attrs.get("epochs")
        if seconds and epochs:
            folds = cast(int, spec.finalist_cv) if t.user_attrs.get("stage") == "finalist" else spec.cv
            share = (folds - 1) / folds if folds > 1 else 1 - cast(float, spec.val_fraction)
            warp = bud.WARP_COST if spec.finalist_warp and t.user_attrs.get("stage") != "finalist" else 1.0
            per_epoch.append(seconds / epochs / folds / share * warp)
    return max(per_epoch) if per_epoch else 0.0
