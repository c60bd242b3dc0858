"""The service from Python: ``search.run`` is ``python -m search run``, ``search.load`` opens a study.

Both return a ``Study``, the handle a notebook works with. ``run`` takes the
command line's settings as keywords (``trials=``, ``budget=``, ``jobs=``...:
``search/settings.py`` states them once for both) and runs the same job
(``search/coordinator/job.py``): the same coordinator, workers, storage, lease, pruning,
finalists and resume. Data may also be arrays or a DataFrame
(``search/inputs.py``).

Interrupting (Jupyter's stop button, Ctrl-C) stops as in the terminal: the
trials running are recorded for a re-run, the workers are stopped, and
``KeyboardInterrupt`` propagates; calling ``run`` again continues the study.
"""

from __future__ import annotations

import contextlib
import dataclasses
import html
import math
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from search.coordinator.coordinator import Interrupted
from search.coordinator.job import Execution, run_job
from search.errors import SearchError
from search.inputs import data_settings
from search.outcome import format_outcome
from search.settings import EXECUTION, STORAGE, STUDY_SETTINGS, check_settings
from search.study import finalists as fin
from search.study.checks import WholeNumber
from search.study.spec import build_spec, default_study_name, given_settings
from search.study.storage import default_url, open_storage
from search.study.stored import load_spec
from search.study.winner import Winner

__all__ = ["Best", "Study", "load", "optuna_quiet", "run", "run_study"]


@dataclass(frozen=True)
class Best:
    """The winner: the finalist with the best mean over its fresh runs (else the best search trial)."""

    trial: int
    params: dict[str, Any]
    val_accuracy: float  # mean over the finalist's fresh runs (the search trial's own, without finalists); NaN: numbers
    val_accuracy_sd: float | None  # over those runs; None for one run
    runs: int
    metric: str = "accuracy"  # the measure the study shows first: its metric, or its task's (search/study/metrics.py)
    score: float = math.nan  # the mean validation score of ``metric`` over the same runs
    score_sd: float | None = None

    @classmethod
    def of(cls, winner: Winner, metric: str = "accuracy") -> Best:
        accuracy, accuracy_sd, runs = _mean_score(winner, "accuracy")
        score, score_sd, _ = _mean_score(winner, metric)
        return cls(winner.trial.number, dict(winner.trial.params), accuracy, accuracy_sd, runs, metric, score, score_sd)

    def __str__(self) -> str:
        spread = "" if self.score_sd is None else f" ± {self.score_sd:.4f}"
        params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.params.items())
        measure = f"validation {self.metric} {self.score:.4f}{spread} over {self.runs} run(s)"
        return f"trial {self.trial}: {measure}; {params}"


def _mean_score(winner: Winner, metric: str) -> tuple[float, float | None, int]:
    """(mean, sd or None, runs) of ``metric`` over the winner's fresh runs, else of its search trial."""
    values = [v for t in winner.runs if (v := fin.trial_score(t, metric)) is not None]
    if not values:
        values = [v if (v := fin.trial_score(winner.trial, metric)) is not None else math.nan]
    sd = fin.spread(values)
    return statistics.fmean(values), None if math.isnan(sd) else sd, len(values)


@dataclass
class Study:
    """A study in its storage: read, retrain, predict, report. Every method reads the storage afresh."""

    name: str
    storage: str  # its SQLAlchemy URL
    summary: str | None = None  # what the run that made this handle printed (None from ``load``)

    def results(self):  # -> pd.DataFrame (pandas is imported on use)
        """One row per trial (``search.load_results``)."""
        from search.readers.results import load_results

        return load_results(self.name, self.storage)

    def finalists(self):  # -> pd.DataFrame
        """The finalist stage's standings, best mean first (``search.load_finalists``)."""
        from search.readers.results import load_finalists

        return load_finalists(self.name, self.storage)

    def curves(self):  # -> pd.DataFrame
        """Validation loss per epoch of every trial, long format (``search.load_curves``)."""
        from search.readers.results import load_curves

        return load_curves(self.name, self.storage)

    @property
    def best(self) -> Best:
        from search.study.winner import load_winner

        spec, winner, _ = load_winner(self.name, self.storage)
        return Best.of(winner, spec.metric_name)

    def retrain(self, seeds: int = 1, jobs: int | None = None, out: str | Path | None = None, every_row: bool = False):
        """Train the winner ``seeds`` times on train + validation and score it once on the test split, as
        ``best --retrain`` does (``every_row``: ``--every-row``); returns the final networks (their ``predict``
        takes raw rows)."""
        from search.readers.ensemble import load_final_networks
        from search.workers.final import retrain_best

        check_settings({"jobs": jobs})
        try:
            WholeNumber(1).check(seeds)  # as best --seeds
        except SearchError as exc:
            raise SearchError(f"argument seeds: {exc}") from None
        self.summary = retrain_best(
            self.name, self.storage, out=None if out is None else str(out), seeds=seeds, jobs=jobs, every_row=every_row
        )
        return load_final_networks(self.name, self.storage)

    def final_networks(self):
        """The networks of the last retrain (or of the budget's last stage)."""
        from search.readers.ensemble import load_final_networks

        return load_final_networks(self.name, self.storage)

    def predict(self, X: Any) -> np.ndarray:
        """Each row's class by the final networks' ensemble; ``X`` in the data's own form."""
        return self.final_networks().predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.final_networks().predict_proba(X)

    def export(self, path: str | Path, format: str = "onnx") -> Path:
        """Write the final networks, behind the study's preprocessing, as one ONNX file
        (``python -m search export``); returns the file."""
        from search.readers.export import export_study

        return export_study(self.name, self.storage, path, format=format).path

    def report(self, path: str | Path | None = None, format: str = "html") -> Path:
        """Write the study's report (``python -m search report``); returns the file."""
        from search.readers.report import write_report

        return write_report(self.name, self.storage, path, format)

    def plot(self, out_dir: str | Path | None = None) -> list[Path]:
        """Heatmaps, learning curves and history as PNG files (``python -m search plot``)."""
        from search.readers.plots import make_plots

        return make_plots(self.name, self.storage, out_dir)

    def _repr_html_(self) -> str:
        """The report's summary and winner, for a notebook cell."""
        from search.readers.report import draw_plots, gather, sections, winner_section
        from search.readers.report.render import sections_html

        facts = gather(self.name, self.storage)
        parts = draw_plots([sections.summary(facts), winner_section.winner(facts)])
        return f"<div><h3>Study {html.escape(self.name)}</h3>{sections_html(parts, level=4)}</div>"

    def __repr__(self) -> str:
        return f"Study(name={self.name!r}, storage={self.storage!r})"


def run(data: Any = None, *, target: str | None = None, **settings: Any) -> Study:
    """Create a study or continue one, as ``python -m search run`` with these keywords for its flags.

    ``data`` (first, or as ``data=``): a built-in data set's name, a path (a CSV/TSV
    table, an ``.npz``, a folder of images), ``(X, y)``, ``(X_train, y_train, X_test,
    y_test)``, or a DataFrame with ``target=``. Without a test split, 20% of the rows per class
    is held out (``test_seed``) and read only by the final networks.
    The other keywords are the flags of ``run`` (see ``python -m search run
    --help``): ``trials``, ``budget`` (``"30m"`` or seconds), ``epochs``, ``jobs``,
    ``storage``, ``study``, ``preset``, ``cv``, ``seed``, ``deterministic``,
    ``progress``... A bad one raises ``SearchError`` with the flag's message.
    ``space``, in Python only: a mapping in a preset's ``[space]`` form
    (docs/space.md), laid over the default space.
    """
    return run_study(data, target, settings)


def run_study(data: Any, target: str | None, settings: dict[str, Any], *, train_ensemble: bool = True) -> Study:
    """``run``; ``train_ensemble=False`` leaves a budget's last share to the caller (``SearchCV``'s refit)."""
    settings = dict(settings)
    space = settings.pop("space", None)  # Python only: a preset's [space] as a mapping
    given = check_settings(data_settings(data, target) | settings)
    overrides = {k: v for k, v in given.items() if k in STUDY_SETTINGS} | ({"space": space} if space else {})
    preset = given.get("preset")
    spec = build_spec(given.get("study", "default"), preset, overrides)
    if "study" not in given:  # named after its data, as on the command line
        spec = dataclasses.replace(spec, name=default_study_name(spec))
    execution = Execution(**{s.name: given[s.name] for s in (STORAGE, *EXECUTION) if s.name in given})
    try:
        with optuna_quiet():
            given_keys = given_settings(overrides, preset)
            result = run_job(spec, execution, given_keys, create=True, train_ensemble=train_ensemble)
    except Interrupted as exc:
        raise KeyboardInterrupt(str(exc)) from None
    return Study(spec.name, result.url, format_outcome(result))


@contextlib.contextmanager
def optuna_quiet() -> Iterator[None]:
    """Optuna's INFO lines ("A new study created...") off during a run, as the CLI has them; restored after."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


def load(study: str, storage: str | None = None) -> Study:
    """The handle of an existing study (``storage``: its URL; default ``sqlite:///studies/<study>.db``)."""
    check_settings({"study": study, "storage": storage})
    url = storage or default_url(study)
    rdb = open_storage(url, read_only=True)
    try:
        load_spec(rdb, study)  # an unknown study is refused here, naming the ones there are
    finally:
        rdb.engine.dispose()
    return Study(study, url)
