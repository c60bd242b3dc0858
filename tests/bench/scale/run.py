"""One study run by the real ``Coordinator`` against the simulated workers, and its storage.

Everything the coordinator uses is the real thing (the study spec's TPE sampler and pruner, the
storage writer, the lease, a fresh SQLite file or a throwaway PostgreSQL server) except the
executor. After the run the stored rows are counted in SQL, so that the bench checks what it
reports (RunSummary) against what the storage holds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy

from search.coordinator.coordinator import Coordinator
from search.coordinator.create import create_or_continue
from search.study.dataref import DataRef
from search.study.spec import build_spec
from search.study.storage import open_storage
from tests.bench.scale.curves import CURVES
from tests.bench.scale.executor import SimulatedExecutor
from tests.bench.scale.report import BenchReport, mean, window_start, windows

MARK_EVERY = 100  # the coordinator's counters are also noted every this many finished trials


def count_stored(storage: Any, study_id: int) -> dict[str, int]:
    """The study's trials by state, counted in SQL rather than through Optuna."""
    sql = sqlalchemy.text("SELECT state, count(*) FROM trials WHERE study_id = :s GROUP BY state")
    with storage.engine.connect() as conn:
        return {str(state).split(".")[-1]: int(n) for state, n in conn.execute(sql, {"s": study_id})}


def run_bench(
    workers: int,
    trials: int,
    url: str,
    *,
    trial_seconds: float = 1.0,
    checkpoints: Sequence[int] = (),
    time_limit: float | None = None,
    pruner: str | None = None,
    real_every: int = 100,
    fixed_duration: bool = False,
    seed: int = 0,
    curves: Path = CURVES,
) -> BenchReport:
    """One study of ``trials`` search trials with ``workers`` virtual workers on storage ``url``."""
    # past the last checkpoint: its window ends before the run's tail, when no new trial starts
    overrides = {
        "dataset": "digits",
        "trials": trials + 2 * (workers + 2),
        "finalists": 0,
        "seed": seed,
        "pruner": pruner,
    }
    spec = build_spec(f"scale-k{workers}", None, {k: v for k, v in overrides.items() if v is not None})
    data = DataRef(spec.dataset, spec.val_fraction, spec.normalization, None)
    checkpoints = sorted(c for c in set(checkpoints) if c <= trials) or [trials]
    thresholds = [window_start(c) for c in checkpoints] + list(checkpoints)
    thresholds += list(range(MARK_EVERY, trials, MARK_EVERY))
    with contextlib.ExitStack() as done:
        storage = open_storage(url, create=True)
        done.callback(storage.engine.dispose)
        spec, study_id, lease = create_or_continue(storage, spec, set())
        done.callback(lease.release)
        ex = SimulatedExecutor(workers, trial_seconds, real_every, curves, fixed=fixed_duration)
        done.callback(ex.close)
        coordinator = Coordinator(
            spec, storage, study_id, ex, data=data, timeout=time_limit, progress=False, lease=lease
        )
        ex.watch(coordinator, thresholds)
        summary = coordinator.run()
        ex.mark()  # the end of the run
        writes = dict(coordinator._writer.seconds)
        stored = count_stored(storage, study_id)
    rows, missed = windows(ex, summary, writes, checkpoints)
    real = [s["agree"] for s in ex.sim_stats if "agree" in s]
    return BenchReport(
        workers,
        url.split(":")[0].split("+")[0],
        spec.pruner,
        summary,
        rows,
        stored,
        missed,
        (sum(real), len(real)),
        mean([end - begin for _, begin, end in ex.spans]),
    )


@contextlib.contextmanager
def storage_url(kind: str, tmp: Path, workers: int) -> Iterator[str | None]:
    """A fresh SQLite file, or a database on a throwaway PostgreSQL server (None: unavailable)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp / f'scale-k{workers}.db'}"
        return
    from tests.search.pg import PostgresUnavailable, start_postgres

    try:
        server = start_postgres()
    except PostgresUnavailable as exc:
        print(f"PostgreSQL skipped: {exc}")
        yield None
        return
    try:
        yield server.createdb(f"scale_k{workers}")
    finally:
        server.stop()
