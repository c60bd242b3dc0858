"""The coordinator: the one process that samples, dispatches and records trials.

Workers never touch the storage: one writer keeps SQLite safe and lets writes be
batched. The coordinator decides; the rest is in small modules beside it:

- ``search/coordinator/recovery.py``: what the trials stored by earlier runs need (a pure function);
- ``search/coordinator/attempts.py``: planned trials (re-runs, finalist runs) and the retry policy;
- ``search/coordinator/mirror.py``: the study in memory for the sampler and in the storage, in step;
- ``search/coordinator/summary.py``: the run's figures (``RunSummary``) and the progress bar;
- ``search/coordinator/later.py``: a budget's later stages: what they need, the finalists and their runs;
- ``search/budget/deadlines.py``: when its stages end (``Deadlines``: a budget's shares, or ``--timeout``);
- ``search/budget/leftover.py``: a budget's stage ends moved as trials measure what the later stages need.

About 500 lines: dispatch, collection, the two loops and ``_abandon`` share the
table of trials in flight, and read best in one class.
"""

from __future__ import annotations

import collections
import json
import logging
import math
import signal
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.storages import RDBStorage

from search.budget.deadlines import Deadlines
from search.budget.leftover import end_margin, final_overhead
from search.budget.shares import TRIAL_CEILING
from search.coordinator.attempts import MAX_ATTEMPTS, Planned, after_lost_worker
from search.coordinator.later import LaterStages
from search.coordinator.lease import StudyLease
from search.coordinator.mirror import StudyMirror
from search.coordinator.recovery import curve, plan_recovery
from search.coordinator.summary import Progress, RunSummary
from search.errors import SearchError, StudyFailedError, root_cause
from search.study import finalists as fin
from search.study import keys
from search.study.dataref import DataRef
from search.study.metrics import reported
from search.study.pruning import Curve, make_pruner, snapshot
from search.study.space import suggest
from search.study.spec import StudySpec, as_finalist
from search.workers.base import Executor, WorkerLostError
from search.workers.tasks import TrialResult, TrialTask, training_seed

__all__ = ["MAX_ATTEMPTS", "Coordinator", "Interrupted", "RunSummary"]

logger = logging.getLogger(__name__)


class Interrupted(SearchError):
    """Ctrl-C or SIGTERM: in-flight trials were recorded as interrupted."""


@dataclass(slots=True)
class _Pending:
    """A trial sent to a worker."""

    number: int
    task: TrialTask
    distributions: dict[str, Any]
    run: Planned  # as asked: its parameters, the seed it trains with, its stage attrs and attempt
    modelled: float = 0.0  # its seconds by the budget's cost model (0: no model)
    expected: float = 0.0  # the same, scaled by how this run's trials compared with the model
    sent: float = 0.0  # time.time() when it was sent to a worker


class Coordinator:
    """Asks the sampler, sends tasks to the executor, records their results; re-runs and gives up.

    ``run()`` recovers the stored trials, runs the search until the study holds
    ``spec.trials`` finished search trials (or its deadline passes), then the
    finalist stage.
    """

    def __init__(
        self,
        spec: StudySpec,
        storage: RDBStorage,
        study_id: int,
        executor: Executor,
        *,
        data: DataRef,
        timeout: float | None = None,
        deadlines: Deadlines | None = None,
        progress: bool = True,
        max_failures: int = 10,
        prefetch: int = 2,
        lease: StudyLease | None = None,
        spent_before: float | None = None,
    ) -> None:
        self.spec, self.storage, self.study_id, self.executor = spec, storage, study_id, executor
        self.lease = lease
        self.data = data
        self.deadlines = deadlines if timeout is None else Deadlines(timeout, timeout)
        self._started = time.monotonic()
        self._search_seconds: list[float] = []  # this run's finished search trials' durations
        self._cost_ratios: list[float] = []  # finished search trials: measured / expected seconds per epoch
        self._search_closed = False  # a trial was drawn that could not end within the search's time
        self._trials = 0  # trials the study holds, of any state: the final stage reads them all back
        self._later = LaterStages(
            spec, executor.n_workers, lambda: final_overhead(self.summary.worker_start, self._trials)
        )
        # a budget's seconds used before this run, kept on the study as they grow (so a killed
        # run's time still counts when it resumes); None: no budget
        self._spent_before, self._spent_stored = spent_before, 0.0
        self.max_failures, self.prefetch = max_failures, prefetch
        self.summary = RunSummary(spec.name, measure=spec.metric_name, metric=spec.metric)
        counted = None if deadlines is not None and deadlines.budgeted and spec.trials >= TRIAL_CEILING else spec.trials
        self._progress = Progress(self.summary, counted, enabled=progress)
        self._consecutive_failures = 0  # failed trials since the last finished one
        self._mirror = StudyMirror(spec, storage, study_id)
        self._writer = self._mirror.writer
        self._curves: list[Curve] = []  # finished search trials, for the workers' pruner
        self._pruner = make_pruner(spec.pruner, spec.epochs)  # what it reads of them: pruning.snapshot
        self._planned: collections.deque[Planned] = collections.deque()
        self._inflight: dict[Any, _Pending] = {}

    # ---------------------------------------------------------------- recovery
    def _recover(self) -> None:
        """Mirror the stored trials, record a dead run's running ones as interrupted and
        queue the re-runs that ``plan_recovery`` finds missing."""
        trials = self.storage.get_all_trials(self.study_id, deepcopy=False)
        self._trials = len(trials)
        plan = plan_recovery(trials)
        for t in plan.left_running:
            logger.warning("trial %d was running when the last run stopped", t.number)
            self._mirror.fail_stored(t, {keys.STOP_REASON: "interrupted: the run stopped", keys.RERUN: True})
        for planned in plan.reruns:
            logger.info("re-running the parameters of interrupted trial %d", planned.retry_of)
            self._planned.append(planned)
        self._mirror.load(trials, plan.mirror)
        self._curves.extend(plan.curves)
        self._later.stored(trials)  # what earlier runs' trials took (the mirror keeps no timings)
        self.summary.count_stored(trials)

    # ---------------------------------------------------------------- dispatch
    def _next_trial(self) -> _Pending:
        """Ask the in-memory study for the next trial: a planned one first, else a sampled one."""
        planned = self._planned.popleft() if self._planned else None
        trial = self._mirror.ask(planned.params if planned is not None else None)
        planned = planned if planned is not None else Planned({}, None)  # sampled: a fresh seed
        number = trial.number
        seed = training_seed(self.spec.seed, number) if planned.seed is None else planned.seed
        task = self._task(number, trial, planned, seed)  # suggests: trial.params are known after it
        stage = {keys.STAGE: keys.FINALIST if planned.finalist else keys.SEARCH}
        run = Planned(dict(trial.params), seed, planned.attrs | stage, planned.attempt, planned.retry_of)
        return _Pending(number, task, dict(trial.distributions), run)

    def _task(self, number: int, trial: optuna.Trial, planned: Planned, seed: int) -> TrialTask:
        spec = self.spec
        scores, weights = reported(spec.task, spec.metric), spec.class_weight
        if planned.finalist:  # longer, never pruned, on its own fresh folds
            config = as_finalist(spec, suggest(trial, spec.space, spec.finalist_epochs, seed))
            return TrialTask(
                spec.name,
                number,
                config,
                self.data,
                "none",
                (),
                spec.finalist_cv,
                fin.folds_seed(spec.seed, planned.attrs[keys.REPEAT]),
                spec.selection,
                scores,
                weights,
            )
        config = suggest(trial, spec.space, spec.epochs, seed)
        return TrialTask(
            spec.name,
            number,
            config,
            self.data,
            spec.pruner,
            snapshot(self._curves, self._pruner),
            spec.cv,
            fin.folds_seed(spec.seed, 0),
            spec.selection,
            scores,
            weights,
        )

    def _dispatch(self) -> None:
        start = time.perf_counter()
        pending = self._next_trial()
        asked = time.perf_counter()
        late = self._too_late(pending)
        if pending.run.finalist:
            pending.expected = self._later.finalist_run_seconds(pending.run)
        if late is None:
            pending.sent = time.time()
            self._inflight[self.executor.submit(pending.task)] = pending
        run = pending.run
        self._trials = max(self._trials, pending.number + 1)
        self._mirror.create(
            pending.number,
            run.params,
            pending.distributions,
            run.attrs,
            {keys.SEED: run.seed} | run.attrs | run.retry_markers(),
        )
        if late is not None:  # never started: recorded as such, and the search ends here
            logger.info("trial %d %s; the search ends here", pending.number, late)  # the plan at work, not a fault
            self._mirror.fail(pending.number, {keys.STOP_REASON: late, keys.OUTCOME: keys.NOT_STARTED})
            self._progress.update()
            self._search_closed = True
            self.summary.search_ended = f"the search ended when trial {pending.number} was {late}"
            return
        self.summary.ask_ms.append((asked - start) * 1e3)
        self.summary.dispatch_ms.append((time.perf_counter() - asked) * 1e3)

    def _too_late(self, pending: _Pending) -> str | None:
        """Why a sampled search trial cannot end within the search's time (waiting for a worker included), or None.

        A late wide trial would otherwise run past the search's share by its whole length.
        """
        if pending.run.finalist or self.deadlines is None or self.deadlines.trial_cost is None:
            return None
        pending.modelled = self.deadlines.trial_cost(pending.task.config)
        pending.expected = pending.modelled * (statistics.median(self._cost_ratios) if self._cost_ratios else 1.0)
        wait = self._wait_for_a_worker()
        if self._fits(wait + pending.expected, "search") and self._fits(wait + pending.expected, "stop"):
            return None
        # the nearer of the two ends, and the wait for a worker said: "4 s, 7 s left" alone reads as a contradiction
        left = max(min(self.deadlines.search, self.deadlines.stop) - self._elapsed(), 0.0)
        waiting = f" after waiting {wait:.0f} s for a worker" if wait >= 0.5 else ""
        expected = f"expected to take {pending.expected:.0f} s{waiting}, {left:.0f} s were left of the search"
        return f"{keys.NOT_STARTED}: {expected}"

    def _wait_for_a_worker(self) -> float:
        """Seconds a trial sent now may wait for a worker: the work in flight, shared out, when all are busy."""
        if len(self._inflight) < self.executor.n_workers:
            return 0.0
        return sum(p.expected for p in self._inflight.values()) / self.executor.n_workers

    # ---------------------------------------------------------------- collect
    def _collect(self, handle: Any) -> None:
        pending = self._inflight[handle]
        start = time.perf_counter()
        try:
            result = self.executor.result(handle)
        except WorkerLostError as exc:
            del self._inflight[handle]
            retry = after_lost_worker(pending.run, pending.number, retryable=exc.retryable)
            if retry is None:
                self._fail(pending, f"worker lost on every attempt with these parameters (out of memory?): {exc}")
                self._count_failure(f"worker lost: {exc}")
            else:
                self._fail(pending, f"worker lost: {exc}", rerun=True)
                self._planned.append(retry)
                self.summary.retries += 1
            return
        # only now: if result() raised anything else, _abandon still finds the trial in flight
        del self._inflight[handle]
        if result.pid not in {pid for pid, _, _ in self.summary.task_spans}:  # a new worker: its start-up
            self.summary.worker_start = max(self.summary.worker_start, min(result.started - pending.sent, 60.0))
        self.summary.count_task(result.pid, result.started, result.finished, result.peak_rss_mb)
        if result.outcome == "failed":
            self._fail(pending, result.reason, result)
            self._count_failure(result.reason)
            return
        self._consecutive_failures = 0
        self._record(pending, result)
        self.summary.collect_ms.append((time.perf_counter() - start) * 1e3)

    def _count_failure(self, reason: str) -> None:
        self.summary.failed += 1
        self._consecutive_failures += 1
        if self._consecutive_failures >= self.max_failures:
            raise StudyFailedError(f"{self._consecutive_failures} trials in a row failed; the last: {reason}")

    def _fail(self, pending: _Pending, reason: str, result: TrialResult | None = None, *, rerun: bool = False) -> None:
        """Record FAIL; ``rerun`` marks an interruption whose parameters must run again
        (now, or by the next ``resume`` if this run stops first)."""
        logger.warning("trial %d failed: %s", pending.number, reason)
        attrs: dict[str, Any] = {keys.STOP_REASON: reason} | ({keys.RERUN: True} if rerun else {})
        if result is not None:
            attrs |= {keys.HOST: result.host, keys.PID: result.pid, keys.SECONDS: round(result.seconds, 4)}
        self._mirror.fail(pending.number, attrs)
        self._progress.update()

    def _record(self, pending: _Pending, result: TrialResult) -> None:
        complete = result.outcome == "complete"
        epochs = sum(1 for v in result.values if math.isfinite(v))
        attrs = {
            keys.VAL_ACCURACY: result.val_accuracy,
            keys.BEST_EPOCH: result.best_epoch,
            keys.EPOCHS_RUN: epochs,
            keys.VAL_ACCURACY_CURVE: [round(a, 6) for a in result.accuracies],
            keys.TRAIN_LOSS: result.train_loss,
            keys.SECONDS: round(result.seconds, 4),
            keys.TRAIN_SECONDS: round(result.train_seconds, 4),
            keys.HOST: result.host,
            keys.PID: result.pid,
            keys.OUTCOME: result.outcome,
            keys.STOP_REASON: result.reason,
            keys.PEAK_RSS: round(result.peak_rss_mb, 1),
        } | {keys.VAL_SCORE.format(name): value for name, value in result.scores.items()}
        frozen = self._mirror.finish(pending.number, result, attrs)
        self.summary.count_ran(epochs, pending.task.config.epochs, finalist=pending.run.finalist)
        if pending.run.finalist and epochs == pending.task.config.epochs:
            self._later.timings.finalist_run(pending.run.attrs[keys.FINALIST_OF], result.seconds)
        if not pending.run.finalist:
            if epochs:
                self._later.timings.search_trial(pending.number, result.seconds, epochs, result.train_seconds)
                if pending.modelled:
                    self._cost_ratios.append(result.seconds / epochs / (pending.modelled / pending.task.config.epochs))
            if result.outcome == "complete":
                self._search_seconds.append(result.seconds)
                if frozen.value is not None:  # the stages' ends move to what the best cost
                    self._later.note_candidate(frozen.value, pending.number)
                    self.deadlines = self._later.replanned(self.deadlines)
            self._curves.append(curve(pending.number, complete, frozen.value, list(result.values), result.system_attrs))
            score = result.scores.get(self.summary.measure, result.val_accuracy)
            self.summary.count_search_trial(pending.number, complete, result.value, score)
        self._progress.update()

    # ---------------------------------------------------------------- loop
    def _elapsed(self) -> float:
        return time.monotonic() - self._started

    def _past(self, which: str) -> bool:
        return self.deadlines is not None and self._elapsed() >= getattr(self.deadlines, which)

    def _fits(self, seconds: float, which: str) -> bool:
        """Whether a trial of ``seconds`` started now ends before the deadline ``which``."""
        return self.deadlines is None or self._elapsed() + seconds <= getattr(self.deadlines, which)

    def _typical_search_trial(self) -> float:
        """A complete search trial's seconds: the median of this run's, else the plan's estimate."""
        if self._search_seconds:
            return statistics.median(self._search_seconds)
        return self.deadlines.typical_trial if self.deadlines is not None else 0.0

    def _want_search(self) -> bool:
        typical = self._typical_search_trial()
        return (
            not self._search_closed
            and self.summary.finished + len(self._inflight) < self.spec.trials
            and self._fits(typical, "search")
            and self._fits(typical, "stop")
        )

    def _want_finalists(self) -> bool:
        if not self._planned and self.deadlines is not None and self.deadlines.more_finalists:
            self._plan_another_finalist_run()
        return bool(self._planned) and self._fits(
            self._wait_for_a_worker() + self._later.finalist_run_seconds(self._planned[0]), "stop"
        )

    # ---------------------------------------------------------------- a budget's later stages
    def _plan_another_finalist_run(self) -> None:
        """The planned finalist runs are all sent: one more fresh run of a finalist, if one fits (``LaterStages``)."""
        assert self.deadlines is not None
        sent = collections.Counter(p.run.attrs.get(keys.FINALIST_OF) for p in self._inflight.values())
        chosen = len(self._later.numbers)
        self.deadlines, run = self._later.another_run(
            self._mirror.trials(), self.deadlines, self._elapsed(), self._wait_for_a_worker(), sent
        )
        if run is not None:
            self._planned.append(run)
        if len(self._later.numbers) > chosen:  # a configuration left out for time came back
            self._store_finalists()

    def _store_finalists(self) -> None:
        """The finalist stage's configurations, on the study (the report and ``show`` read them)."""
        record = {"after": self.summary.finished, "numbers": self._later.numbers}
        self._mirror.set_study_attr(keys.FINALISTS, json.dumps(record))

    def _search_over(self) -> bool:
        """The search has its trials, or (a budget) its time."""
        budgeted = self.deadlines is not None and self.deadlines.budgeted
        return self.summary.finished >= self.spec.trials or (budgeted and not self._want_search())

    def _plan_finalists(self) -> None:
        """Choose the finalists from the finished search and queue their missing runs."""
        self.deadlines, planned = self._later.plan_finalists(self._mirror.trials(), self.deadlines, self._elapsed())
        self._store_finalists()
        self._planned.extend(planned)
        logger.info("finalist stage: %d configurations, %d runs to do", len(self._later.numbers), len(self._planned))

    def _stages(self) -> None:
        """The search until it holds ``trials`` finished trials, then the finalist stage."""
        loop = self._loop_in_batches if self.spec.deterministic else self._loop
        loop(self._want_search)
        self.summary.stage_seconds["search"] = self._elapsed()
        if not self.summary.search_ended and self.summary.finished >= self.spec.trials:
            self.summary.search_ended = f"the search reached its {self.spec.trials} trials (--trials)"
        if self.deadlines is not None and self.deadlines.end is not None:
            self.summary.search_left = max(self.deadlines.search - self._elapsed(), 0.0)
            self.summary.later_left = self.deadlines.end - self._elapsed() - end_margin(self.deadlines.budget)
            logger.info(
                "search over after %.1f s (%.1f s before its end): %.1f s left to the finalists and final "
                "networks, %.1f s of them planned for the finalists",
                self._elapsed(),
                self.summary.search_left,
                self.summary.later_left,
                self.deadlines.stop - self.deadlines.search,
            )
        search_over = self._search_over()
        if search_over:
            # re-runs of interrupted search trials that the finished search no longer needs
            self._planned = collections.deque(p for p in self._planned if p.finalist)
        # a budget's finalist stage sets its own end when it begins (``finalists_from``): a last search trial
        # that ran past the stop takes its overrun from the final networks, not the finalists
        timed_out = self._past("stop") and self.deadlines is not None and self.deadlines.end is None
        if self.spec.finalists and search_over and not self._planned and not timed_out:
            self._plan_finalists()
            self._progress.expect(len(self._planned))
            loop(self._want_finalists)
            self.summary.stage_seconds["finalists"] = self._elapsed() - self.summary.stage_seconds["search"]

    def run(self) -> RunSummary:
        started = self._started = time.monotonic()
        self._recover()
        self.deadlines = self._later.replanned(self.deadlines)
        self._writer.flush()
        self._progress.open()
        try:
            with _sigterm_as_interrupt():
                self._stages()
        except KeyboardInterrupt:
            self._abandon("interrupted")
            raise Interrupted(
                f"interrupted: {self.summary.finished} finished trials are stored; continue with "
                f"'python -m search resume --study {self.spec.name}'"
            ) from None
        except BaseException:
            self._abandon("the run stopped with an error")
            raise
        finally:
            self._store_spent(every=0.0)
            self._progress.close()
            self._writer.close()
            self.summary.close(time.monotonic() - started, self._writer.seconds)
        return self.summary

    def _wait_seconds(self) -> float:
        """How long a wait may block: a second, or until the stop deadline."""
        if self.deadlines is None:
            return 1.0
        return max(0.0, min(1.0, self.deadlines.stop - self._elapsed()))

    def _store_spent(self, every: float = 5.0) -> None:
        """Keep the budget's seconds used on the study, every few seconds (off the dispatch path)."""
        if self._spent_before is None or self._writer.failed or self._elapsed() - self._spent_stored < every:
            return
        self._spent_stored = self._elapsed()
        self._mirror.set_study_attr(keys.BUDGET_SPENT, json.dumps(round(self._spent_before + self._spent_stored, 3)))

    def _stop_at_deadline(self) -> bool:
        """At the stop deadline, what still runs is stopped and recorded for a re-run; True if so."""
        if not self._inflight or not self._past("stop"):
            return False
        logger.info("time is up: stopping %d running trials, recorded for a re-run", len(self._inflight))
        self.summary.stopped_at_deadline += len(self._inflight)
        self._abandon("stopped at the time limit")
        return True

    def _loop(self, want_more: Callable[[], bool]) -> None:
        capacity = self.executor.n_workers + self.prefetch
        while True:
            while len(self._inflight) < capacity and want_more():
                self._dispatch()
            if not self._inflight:
                return
            for handle in self.executor.wait(list(self._inflight), timeout=self._wait_seconds()):
                self._collect(handle)
            self._raise_if_broken()
            self._store_spent()
            if self._stop_at_deadline():
                return

    def _loop_in_batches(self, want_more: Callable[[], bool]) -> None:
        """Deterministic: a batch of ``sync_batch`` trials is sampled from the same history
        and told back in trial order, so neither timing nor ``--jobs`` changes any trial."""
        while want_more():
            while len(self._inflight) < self.spec.sync_batch and want_more():
                self._dispatch()
            results: dict[Any, _Pending] = dict(self._inflight)
            while len(self.executor.wait(list(results), timeout=self._wait_seconds())) < len(results):
                self._store_spent()
                if self._stop_at_deadline():
                    return
            for handle in sorted(results, key=lambda h: results[h].number):
                self._collect(handle)
            self._raise_if_broken()

    def _raise_if_broken(self) -> None:
        """A failed storage write or a lost lease stops the run: going on would write blind."""
        self._writer.raise_if_failed()
        if self.lease is not None:
            self.lease.check()

    def _abandon(self, reason: str) -> None:
        """Record in-flight trials as interrupted (resume re-runs them) and stop the workers.

        Not recorded when the lease was lost (the study is another coordinator's
        now, and it has recorded them itself) or when the storage refused a write:
        they stay RUNNING there, which ``resume`` also treats as interrupted."""
        record = not (self.lease is not None and self.lease.lost) and not self._writer.failed
        try:
            for handle, pending in list(self._inflight.items()):
                if record:
                    self._fail(pending, reason, rerun=True)
                del self._inflight[handle]
        finally:
            self.executor.close(kill=True)
        if not record:
            return
        try:
            self._writer.flush()
        except Exception as exc:  # noqa: BLE001 -- the original error is the one to report
            logger.warning(
                "could not record the interrupted trials (%s); resume finds them RUNNING and re-runs them",
                root_cause(exc),
            )
            logger.debug("recording the interrupted trials", exc_info=True)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a scheduler's kill, `timeout`) gets the same orderly stop as Ctrl-C."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
