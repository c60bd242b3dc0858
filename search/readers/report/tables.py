"""The report's numbers beyond counting: importances, network sizes, finalists.

Importances use Optuna's own evaluators. PED-ANOVA is the default because it
scores a parameter by how differently it is distributed among the top 10 % of
trials than among all of them, from one-dimensional Parzen estimates: linear in
the number of trials and well under a second at 1,000. fANOVA (the classic)
fits a random forest and decomposes its variance: more thorough on
interactions, but it takes seconds to minutes on large studies.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import numpy as np
import optuna
import pandas as pd

from search.budget.cost import n_parameters
from search.readers.frames import STATES, hidden_widths, never_started
from search.readers.report.facts import FINALIST, SEARCH, StudyFacts
from search.study import keys

NOT_STARTED = keys.NOT_STARTED.upper()  # a row of the trials' table, beside Optuna's states

logger = logging.getLogger(__name__)

EVALUATORS = {
    "ped-anova": ("PED-ANOVA", "optuna.importance.PedAnovaImportanceEvaluator"),
    "fanova": ("fANOVA", "optuna.importance.FanovaImportanceEvaluator"),
}


def importances(facts: StudyFacts, evaluator: str = "ped-anova") -> tuple[dict[str, float], str]:
    """(parameter -> importance, a note); search-stage COMPLETE trials only."""
    from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator, get_param_importances

    numbers = set(facts.search["number"])
    done = [t for t in facts.trials if t.number in numbers and t.state == optuna.trial.TrialState.COMPLETE]
    if len(done) < 2:
        return {}, f"importances need at least 2 complete search trials; the study has {len(done)}"
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "new study created in memory" line
    try:
        study = optuna.create_study(direction="minimize")
    finally:
        optuna.logging.set_verbosity(verbosity)
    study.add_trials(done)
    chosen = PedAnovaImportanceEvaluator() if evaluator == "ped-anova" else FanovaImportanceEvaluator(seed=0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = get_param_importances(study, evaluator=chosen, normalize=True)
    except (RuntimeError, ValueError, ZeroDivisionError) as exc:
        return {}, f"{EVALUATORS[evaluator][0]} could not score this study: {exc}"
    return {k: float(v) for k, v in result.items()}, f"{len(done)} complete search trials"


def n_features(facts: StudyFacts, data_dir: str | None = None) -> int | None:
    """Input width of the data set: from the registry's image shape, else by loading it; None if neither."""
    from model.datasets.registry import REGISTRY
    from search.study.dataref import DataRef

    spec = facts.spec
    if facts.data_record:
        return int(facts.data_record["n_features"])
    shape = getattr(REGISTRY.get(str(spec.get("dataset"))), "image_shape", None)
    if shape:
        return int(np.prod(shape))
    try:
        ref = DataRef(spec["dataset"], spec.get("val_fraction"), spec.get("normalization"), data_dir,
                      spec.get("test_seed", 0))
        return int(ref.load().n_features)
    except Exception as exc:  # noqa: BLE001 -- any reason: the figure then counts hidden layers only
        logger.info("data set %r not loadable for parameter counts: %s", spec.get("dataset"), exc)
        return None


def n_classes(facts: StudyFacts) -> int | None:
    from model.datasets.registry import REGISTRY

    if facts.data_record:
        return len(facts.data_record["classes"])
    entry = REGISTRY.get(str(facts.spec.get("dataset")))
    return entry.n_classes if entry is not None else None


def parameter_count(hidden: Any, n_in: int | None, n_out: int | None) -> float:
    """Weights + biases of a dense network ``n_in -> hidden... -> n_out``; NaN if unknown."""
    widths = hidden_widths(hidden)
    if widths is None or n_in is None or n_out is None:
        return math.nan
    return float(n_parameters(n_in, widths, n_out))


def tradeoff_points(facts: StudyFacts, n_in: int | None) -> pd.DataFrame:
    """Complete search trials: number, params, seconds, and ``score``, the measure the study is judged by first."""
    done = facts.search[facts.search["state"] == "COMPLETE"]
    n_out = n_classes(facts)
    column = f"val_{facts.shown[0]}"
    return pd.DataFrame({
        "number": done["number"].to_numpy(),
        "params": [parameter_count(h, n_in, n_out) for h in done["hidden"]],
        "seconds": done["seconds"].to_numpy(dtype=float, na_value=np.nan),
        "score": done[column].to_numpy(dtype=float, na_value=np.nan) if column in done else np.nan,
    })


def finalists(facts: StudyFacts) -> pd.DataFrame:
    """``search.readers.results.finalist_summary``: one row per finalist configuration, best mean first."""
    from search.readers.results import finalist_summary

    return finalist_summary(facts.trials, facts.df)


def stage_counts(facts: StudyFacts) -> pd.DataFrame:
    """Trials by state (rows) and stage (columns), with an ``all`` column.

    A search trial the search's time could not fit is stored as FAIL; it is counted as
    NOT STARTED, since nothing failed (and shown only when there is one).
    """
    df = facts.df
    late = never_started(df)
    state = df["state"].astype(str).where(~late, NOT_STARTED)
    after_fail = STATES.index("FAIL") + 1
    states = [*STATES[:after_fail], *([NOT_STARTED] if late.any() else []), *STATES[after_fail:]]
    table = pd.crosstab(state, df["stage"]).reindex(states, fill_value=0)
    stages = [s for s in (SEARCH, FINALIST) if s in table.columns]
    table = table[stages] if stages else table
    table["all"] = table.sum(axis=1)
    return table.astype(int)
