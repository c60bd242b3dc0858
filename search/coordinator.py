"""The coordinator: the one process that samples, dispatches and records trials.

Sampling runs against an in-memory mirror of the study (Optuna's
``InMemoryStorage``), so a slow database never delays the next trial; every
change is also queued for the storage writer thread, in the same order, so the
database holds the same trials under the same numbers. Workers never touch the
storage: one writer keeps SQLite safe and lets writes be batched.
"""

from __future__ import annotations

import collections
import json
import logging
import math
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.storages import InMemoryStorage, RDBStorage
from optuna.trial import FrozenTrial, TrialState
from tqdm import tqdm

from search import finalists as fin
from search import optuna_internals
from search import storage as db
from search.errors import SearchError, StudyFailedError, root_cause
from search.executors import Executor, WorkerLostError
from search.finalists import FINISHED
from search.lease import StudyLease
from search.pruning import Curve
from search.space import suggest
from search.spec import StudySpec
from search.study import make_sampler
from search.tasks import DataRef, TrialResult, TrialTask, training_seed
from search.writer import StorageWriter

logger = logging.getLogger(__name__)

# A configuration whose worker dies this many times (the kernel's OOM killer, a
# crash in native code) is failed for good instead of being re-run forever.
MAX_ATTEMPTS = 3


class Interrupted(SearchError):
    """Ctrl-C or SIGTERM: in-flight trials were recorded as interrupted."""


@dataclass(slots=True)
class _Planned:
    """A trial whose parameters are known before it is asked: a re-run or a finalist run."""

    params: dict[str, Any]
    seed: int | None                # None: a fresh seed from the trial's number
    attrs: dict[str, Any] = field(default_factory=dict)  # stage, finalist_of, repeat, retry_of
    attempt: int = 1

    @property
    def finalist(self) -> bool:
        return self.attrs.get(fin.STAGE) == "finalist"


@dataclass(slots=True)
class _Pending:
    number: int
    task: TrialTask
    params: dict[str, Any]
    distributions: dict[str, Any]
    seed: int
    attrs: dict[str, Any]           # what _Planned carried, without retry_of/attempt
    attempt: int

    def again(self) -> _Planned:
        """The same parameters and seed, to be run again after a lost worker."""
        return _Planned(self.params, self.seed, self.attrs | {"retry_of": self.number}, self.attempt + 1)


@dataclass
class RunSummary:
    study: str
    finished: int = 0          # in the study, complete + pruned
    complete: int = 0          # in the study
    pruned: int = 0            # in the study
    finalist_runs: int = 0     # in the study, finished
    failed: int = 0            # in this run
    retries: int = 0           # in this run
    ran: int = 0               # finished in this run
    epochs_run: int = 0        # in this run
    epochs_budget: int = 0     # in this run: trials x max epochs
    best_value: float | None = None
    best_accuracy: float | None = None
    best_number: int | None = None
    wall_seconds: float = 0.0
    worker_busy: float = 0.0   # fraction of worker time spent in tasks after start-up
    worker_peak_rss_mb: float = 0.0
    ask_ms: list[float] = field(default_factory=list)
    dispatch_ms: list[float] = field(default_factory=list)
    collect_ms: list[float] = field(default_factory=list)
    write_ms: dict[str, list[float]] = field(default_factory=dict)


class Coordinator:
    def __init__(self, spec: StudySpec, storage: RDBStorage, study_id: int, executor: Executor,
                 *, data: DataRef, timeout: float | None = None, progress: bool = True,
                 max_failures: int = 10, prefetch: int = 2, lease: StudyLease | None = None) -> None:
        self.spec, self.storage, self.study_id, self.executor = spec, storage, study_id, executor
        self.lease = lease
        self.data, self.timeout, self.progress = data, timeout, progress
        self.max_failures, self.prefetch = max_failures, prefetch
        self.summary = RunSummary(spec.name)
        self._writer = StorageWriter()
        self._db_ids: dict[int, int] = {}
        self._curves: list[Curve] = []
        self._planned: collections.deque[_Planned] = collections.deque()
        self._inflight: dict[Any, _Pending] = {}
        self._mem_storage = InMemoryStorage()
        self._mem = optuna.create_study(storage=self._mem_storage, sampler=make_sampler(spec),
                                        study_name=spec.name, direction="minimize")
        self._mem_id = self._mem_storage.get_study_id_from_name(spec.name)
        self._bar: tqdm | None = None
        self._task_spans: list[tuple[int, float, float]] = []

    # ---------------------------------------------------------------- recovery
    def _recover(self) -> None:
        """Mirror the stored trials and queue every interrupted one that was not run again.

        Interrupted means: left RUNNING by a coordinator that died, or recorded FAIL
        with ``rerun`` (Ctrl-C, a lost worker) by a run that stopped before re-running it.
        """
        trials = self.storage.get_all_trials(self.study_id, deepcopy=False)
        rerun_already = {t.user_attrs["retry_of"] for t in trials if "retry_of" in t.user_attrs}
        for t in trials:
            interrupted = t.state == TrialState.FAIL and t.user_attrs.get("rerun", False)
            if t.state in (TrialState.RUNNING, TrialState.WAITING):
                logger.warning("trial %d was running when the last run stopped", t.number)
                db.fail_trial(self.storage, optuna_internals.trial_id(t),
                              {"stop_reason": "interrupted: the run stopped", "rerun": True})
                interrupted = True
            # an interrupted finalist run is not queued here: the finalist stage plans what is missing
            if interrupted and t.number not in rerun_already and not fin.is_finalist_run(t):
                logger.info("re-running the parameters of interrupted trial %d", t.number)
                self._planned.append(_Planned(dict(t.params), int(t.user_attrs.get("seed", 0)),
                                              {"retry_of": t.number}, int(t.user_attrs.get("attempt", 1)) + 1))
            self._db_ids[t.number] = optuna_internals.trial_id(t)
            if t.state in FINISHED and not fin.is_finalist_run(t):
                self._curves.append(self._curve(t.number, t.state == TrialState.COMPLETE, t.value,
                                                list(t.intermediate_values.values()), t.system_attrs))
        self._mem.add_trials(trials_for_mirror(trials))
        search = [t for t in trials if not fin.is_finalist_run(t)]
        counts = collections.Counter(t.state for t in search)
        s = self.summary
        s.complete, s.pruned = counts[TrialState.COMPLETE], counts[TrialState.PRUNED]
        s.finished = s.complete + s.pruned
        s.finalist_runs = sum(1 for t in trials if fin.is_finalist_run(t) and t.state in FINISHED)
        complete = [t for t in search if t.state == TrialState.COMPLETE]
        if complete:  # the best so far includes earlier runs of the study
            best = min(complete, key=lambda t: t.value)
            s.best_value, s.best_accuracy, s.best_number = best.value, best.user_attrs.get("val_accuracy"), best.number

    @staticmethod
    def _curve(number: int, complete: bool, value: float | None, values: list[float],
               system_attrs: dict[str, Any]) -> Curve:
        rung = {k: v for k, v in system_attrs.items() if k.startswith("completed_rung")}
        return Curve(number, complete, value, tuple(values), rung)

    # ---------------------------------------------------------------- dispatch
    def _next_trial(self) -> tuple[optuna.Trial, _Planned]:
        if self._planned:
            planned = self._planned.popleft()
            self._mem.enqueue_trial(planned.params, skip_if_exists=False)
            return self._mem.ask(), planned
        return self._mem.ask(), _Planned({}, None)

    def _task(self, number: int, trial: optuna.Trial, planned: _Planned, seed: int) -> TrialTask:
        spec = self.spec
        if planned.finalist:  # longer, never pruned, on its own fresh folds
            config = suggest(trial, spec.space, spec.finalist_epochs, seed)
            return TrialTask(spec.name, number, config, self.data, "none", (), spec.finalist_cv,
                             fin.folds_seed(spec.seed, planned.attrs[fin.REPEAT]), spec.selection)
        config = suggest(trial, spec.space, spec.epochs, seed)
        return TrialTask(spec.name, number, config, self.data, spec.pruner, tuple(self._curves), spec.cv,
                         fin.folds_seed(spec.seed, 0), spec.selection)

    def _dispatch(self) -> None:
        start = time.perf_counter()
        trial, planned = self._next_trial()
        number = trial.number
        seed = training_seed(self.spec.seed, number) if planned.seed is None else planned.seed
        task = self._task(number, trial, planned, seed)
        asked = time.perf_counter()
        stage = {fin.STAGE: "finalist" if planned.finalist else "search"}
        attrs = {k: v for k, v in planned.attrs.items() if k != "retry_of"} | stage
        pending = _Pending(number, task, dict(trial.params), dict(trial.distributions), seed, attrs,
                           planned.attempt)
        self._inflight[self.executor.submit(task)] = pending
        mem_trial_id = self._mem_storage.get_trial_id_from_study_id_trial_number(self._mem_id, number)
        for key, value in attrs.items():  # the finalist stage reads them from the mirror
            self._mem_storage.set_trial_user_attr(mem_trial_id, key, value)
        db_attrs = {"seed": seed} | attrs
        if "retry_of" in planned.attrs:
            db_attrs |= {"retry_of": planned.attrs["retry_of"], "attempt": planned.attempt}
        self._writer.put("create", self._create_in_db, pending, db_attrs)
        self.summary.ask_ms.append((asked - start) * 1e3)
        self.summary.dispatch_ms.append((time.perf_counter() - asked) * 1e3)

    def _create_in_db(self, pending: _Pending, attrs: dict[str, Any]) -> None:
        self._db_ids[pending.number] = db.create_running_trial(
            self.storage, self.study_id, pending.number, pending.params, pending.distributions, attrs)

    # ---------------------------------------------------------------- collect
    def _collect(self, handle: Any) -> None:
        pending = self._inflight[handle]
        start = time.perf_counter()
        try:
            result = self.executor.result(handle)
        except WorkerLostError as exc:
            del self._inflight[handle]
            if not exc.retryable or pending.attempt >= MAX_ATTEMPTS:
                self._fail(pending, f"worker lost on every attempt with these parameters "
                                    f"(out of memory?): {exc}")
                self._count_failure(f"worker lost: {exc}")
            else:
                self._fail(pending, f"worker lost: {exc}", rerun=True)
                self._planned.append(pending.again())
                self.summary.retries += 1
            return
        # only now: if result() raised anything else, _abandon still finds the trial in flight
        del self._inflight[handle]
        self._task_spans.append((result.pid, result.started, result.finished))
        self.summary.worker_peak_rss_mb = max(self.summary.worker_peak_rss_mb, result.peak_rss_mb)
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

    def _fail(self, pending: _Pending, reason: str, result: TrialResult | None = None, *,
              rerun: bool = False) -> None:
        """Record FAIL; ``rerun`` marks an interruption whose parameters must run again
        (now, or by the next ``resume`` if this run stops first)."""
        logger.warning("trial %d failed: %s", pending.number, reason)
        self._mem.tell(pending.number, state=TrialState.FAIL)
        attrs: dict[str, Any] = {"stop_reason": reason} | ({"rerun": True} if rerun else {})
        if result is not None:
            attrs |= {"host": result.host, "pid": result.pid, "seconds": round(result.seconds, 4)}
        self._writer.put("fail", lambda: db.fail_trial(self.storage, self._db_ids[pending.number], attrs))
        self._update_bar()

    def _record(self, pending: _Pending, result: TrialResult) -> None:
        complete = result.outcome == "complete"
        mem_trial_id = self._mem_storage.get_trial_id_from_study_id_trial_number(self._mem_id, pending.number)
        for step, value in enumerate(result.values, start=1):
            self._mem_storage.set_trial_intermediate_value(mem_trial_id, step, value)
        if complete:
            frozen = self._mem.tell(pending.number, result.value)
        else:
            frozen = self._mem.tell(pending.number, state=TrialState.PRUNED)
        epochs = sum(1 for v in result.values if math.isfinite(v))
        attrs = {
            "val_accuracy": result.val_accuracy, "best_epoch": result.best_epoch, "epochs": epochs,
            "val_accuracy_curve": [round(a, 6) for a in result.accuracies],
            "train_loss": result.train_loss, "seconds": round(result.seconds, 4),
            "host": result.host, "pid": result.pid, "outcome": result.outcome,
            "stop_reason": result.reason, "worker_peak_rss_mb": round(result.peak_rss_mb, 1),
        }
        state, value, values = frozen.state, frozen.value, list(result.values)
        self._writer.put("finish", lambda: db.finish_trial(
            self.storage, self._db_ids[pending.number], state, value, values, attrs,
            result.system_attrs))
        s = self.summary
        s.ran += 1
        s.epochs_run += epochs
        s.epochs_budget += pending.task.config.epochs
        if pending.attrs.get(fin.STAGE) == "finalist":
            s.finalist_runs += 1
            self._update_bar()
            return
        self._curves.append(self._curve(pending.number, complete, value, values, result.system_attrs))
        s.finished += 1
        s.complete += complete
        s.pruned += not complete
        if complete and (s.best_value is None or result.value < s.best_value):
            s.best_value, s.best_accuracy, s.best_number = result.value, result.val_accuracy, pending.number
        self._update_bar()

    # ---------------------------------------------------------------- loop
    def _update_bar(self) -> None:
        if self._bar is not None:
            s = self.summary
            self._bar.n = min(s.finished, self.spec.trials) + s.finalist_runs
            best = "-" if s.best_accuracy is None else f"{s.best_accuracy:.4f}"
            self._bar.set_postfix_str(f"pruned={s.pruned} failed={s.failed} best_val_acc={best}",
                                      refresh=True)

    def _timed_out(self, started: float) -> bool:
        return self.timeout is not None and time.monotonic() - started > self.timeout

    def _want_search(self, started: float) -> bool:
        return not self._timed_out(started) and self.summary.finished + len(self._inflight) < self.spec.trials

    def _want_finalists(self, started: float) -> bool:
        return not self._timed_out(started) and bool(self._planned)

    def _plan_finalists(self) -> None:
        """Choose the finalists from the finished search and queue their missing runs."""
        trials = self._mem.get_trials(deepcopy=False)
        chosen = fin.choose(trials, self.spec.finalists)
        record = {"after": self.summary.finished, "numbers": [t.number for t in chosen]}
        self._writer.put("finalists", self.storage.set_study_user_attr, self.study_id, fin.FINALISTS_ATTR,
                         json.dumps(record))
        for run in fin.missing_runs(chosen, trials, self.spec.finalist_repeats):
            attrs = {fin.STAGE: "finalist", fin.FINALIST_OF: run.finalist_of, fin.REPEAT: run.repeat}
            self._planned.append(_Planned(run.params, None, attrs))
        logger.info("finalist stage: %d configurations, %d runs to do", len(chosen), len(self._planned))

    def _stages(self, started: float) -> None:
        """The search until it holds ``trials`` finished trials, then the finalist stage."""
        loop = self._loop_in_batches if self.spec.deterministic else self._loop
        loop(lambda: self._want_search(started))
        if self.summary.finished >= self.spec.trials:
            # re-runs of interrupted search trials that the finished search no longer needs
            self._planned = collections.deque(p for p in self._planned if p.finalist)
        if (self.spec.finalists and self.summary.finished >= self.spec.trials and not self._planned
                and not self._timed_out(started)):
            self._plan_finalists()
            if self._bar is not None:
                self._bar.total = self.spec.trials + self.summary.finalist_runs + len(self._planned)
            loop(lambda: self._want_finalists(started))

    def run(self) -> RunSummary:
        started = time.monotonic()
        self._consecutive_failures = 0
        self._recover()
        self._writer.flush()
        if self.progress:
            self._bar = tqdm(total=self.spec.trials + self.summary.finalist_runs,
                             initial=min(self.summary.finished, self.spec.trials) + self.summary.finalist_runs,
                             desc=self.spec.name, unit="trial", dynamic_ncols=True)
        try:
            with _sigterm_as_interrupt():
                self._stages(started)
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
            if self._bar is not None:
                self._bar.close()
            self._finish_summary(started)
        return self.summary

    def _loop(self, want_more: Callable[[], bool]) -> None:
        capacity = self.executor.n_workers + self.prefetch
        while True:
            while len(self._inflight) < capacity and want_more():
                self._dispatch()
            if not self._inflight:
                return
            for handle in self.executor.wait(list(self._inflight), timeout=1.0):
                self._collect(handle)
            self._raise_if_broken()

    def _loop_in_batches(self, want_more: Callable[[], bool]) -> None:
        """Deterministic: a batch of ``sync_batch`` trials is sampled from the same history
        and told back in trial order, so neither timing nor ``--jobs`` changes any trial."""
        while want_more():
            while len(self._inflight) < self.spec.sync_batch and want_more():
                self._dispatch()
            results: dict[Any, _Pending] = dict(self._inflight)
            while len(self.executor.wait(list(results), timeout=1.0)) < len(results):
                pass
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
            logger.warning("could not record the interrupted trials (%s); resume finds them RUNNING "
                           "and re-runs them", root_cause(exc))
            logger.debug("recording the interrupted trials", exc_info=True)

    def _finish_summary(self, started: float) -> None:
        self._writer.close()
        s = self.summary
        s.wall_seconds = time.monotonic() - started
        s.write_ms = {k: [x * 1e3 for x in v] for k, v in self._writer.seconds.items()}
        if self._task_spans:
            # After start-up: each worker counts from its first task (process spawn and
            # imports excluded) to the end of the last task of the run.
            last = max(end for _, _, end in self._task_spans)
            first: dict[int, float] = {}
            for pid, begin, _ in self._task_spans:
                first[pid] = min(begin, first.get(pid, begin))
            busy = sum(end - begin for _, begin, end in self._task_spans)
            s.worker_busy = busy / max(1e-9, sum(last - f for f in first.values()))


def trials_for_mirror(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """Stored trials as the sampler should see them; running ones (a dead run's) as failed."""
    out = []
    for t in trials:
        if t.state in (TrialState.RUNNING, TrialState.WAITING):
            t = optuna.trial.create_trial(state=TrialState.FAIL, params=t.params,
                                          distributions=t.distributions)
        out.append(t)
    return out


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
