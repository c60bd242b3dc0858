"""The settings that define a study, as ``run`` takes them: stated once.

The command line's flags (``search/cli.py``), the keywords of ``search.run``
(``search/api.py``) and the report's "reproduce this study" command
(``search/readers/report/command.py``) are all made from ``RUN_SETTINGS``: a setting
gains its flag, its keyword, its check and its place in the reproduce command
in one line here. A value from Python goes through the same check as the
flag's text, so a bad one gets the same message either way; and a study
setting's check is its StudySpec field's (search/study/checks.py), so a preset
or a stored study meets the same rule too. Defaults in the help come from
StudySpec and the data sets' table, not retyped here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from model.datasets import DATASETS, MISSING
from search.errors import SearchError
from search.study.checks import int_at_least
from search.study.metrics import BALANCED_BY_DEFAULT, CLASSIFICATION, DEFAULT_METRIC, REGRESSION, TASKS, for_task
from search.study.spec import (
    CLASS_WEIGHTS,
    DATASET_DEFAULTS,
    PRUNERS,
    SAMPLERS,
    StudySpec,
    check_study_name,
    spec_rule,
)

__all__ = ["RUN_SETTINGS", "STORAGE", "STUDY", "STUDY_SETTINGS", "Setting", "int_at_least"]


@dataclass(frozen=True)
class Setting:
    """One setting: its keyword (``name``, also its StudySpec or Execution field) and its flag."""

    name: str
    help: str
    parse: Callable[[str], Any] | None = None  # text -> value; SearchError says why not (a study setting: its rule's)
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    switch: bool = False  # a flag without a value
    negated: bool = False  # a switch that turns the setting off (--no-progress: progress=False)
    study: bool = True  # defines the study (StudySpec); else only how this run executes

    def __post_init__(self) -> None:
        rule = spec_rule(self.name) if self.study else None
        if rule is not None:  # the StudySpec field's rule, stated there once
            if self.parse is not None and self.parse != rule.parse:
                raise ValueError(f"setting {self.name}: its check is StudySpec's, not a second one")
            object.__setattr__(self, "parse", rule.parse)

    @property
    def flag(self) -> str:
        return "--" + ("no-" if self.negated else "") + self.name.replace("_", "-")

    def check(self, value: Any) -> Any:
        """A value given from Python, checked as the flag's text would be; SearchError names the keyword."""
        try:
            return self._checked(value)
        except SearchError as exc:
            raise SearchError(f"argument {self.name}: {exc}") from None

    def _checked(self, value: Any) -> Any:
        if self.switch:
            if not isinstance(value, bool):
                raise SearchError(f"expected True or False, got {value!r}")
            return value
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise SearchError(f"expected {self.metavar or 'a value'}, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise SearchError(f"invalid choice: {value!r} (choose from {', '.join(map(repr, self.choices))})")
        return self.parse(str(value)) if self.parse is not None else str(value)


STORAGE = Setting(
    "storage",
    "SQLAlchemy URL of the study database (default: sqlite:///studies/<study>.db, relative to the working directory)",
    metavar="URL",
    study=False,
)
STUDY = Setting("study", "study name (default: the data set)", check_study_name, "NAME", study=False)
_DIGITS = DATASET_DEFAULTS["digits"]

# In the order ``run --help`` lists them.
RUN_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "trials",
        f"finished (complete + pruned) trials the study should hold (default {StudySpec.trials}; "
        "with --budget, a ceiling)",
        metavar="N",
    ),
    Setting(
        "budget",
        "wall-clock time of the whole job, e.g. 90s, 30m, 2h: the search, the finalists and the "
        "final networks, planned from this data's measured costs (docs/budget.md)",
        metavar="DURATION",
    ),
    STUDY,
    Setting("dataset", f"a built-in data set (default {StudySpec.dataset})", choices=DATASETS),
    Setting(
        "data",
        "your own data: an .npz, a CSV/TSV table (gzipped too) or a folder of images with one "
        "sub-folder per class (docs/own-data.md)",
        metavar="PATH",
    ),
    Setting("target", "a table's label column (default: the last column)", metavar="COLUMN"),
    Setting("x_key", "an .npz's feature array (default: by convention, e.g. x_train, X, data, images)", metavar="KEY"),
    Setting("y_key", "an .npz's label array (default: by convention)", metavar="KEY"),
    Setting(
        "image_size",
        "resize every image to H x W pixels (default: as they are; they must then share one size)",
        metavar="HxW",
    ),
    Setting(
        "missing",
        "a table's missing values: impute (median + indicator, or a category of their own; the default) or refuse them",
        choices=MISSING,
    ),
    Setting(
        "task",
        "the question: which class (classification) or how much (regression); by default decided from the "
        "target: numbers with many distinct values are regression, and a built-in data set is classification",
        metavar="{" + ",".join(TASKS) + "}",
    ),
    Setting(
        "metric",
        f"the measure that chooses the finalists and the winner and is shown first: for classification "
        f"{', '.join(for_task(CLASSIFICATION))}; for regression {', '.join(for_task(REGRESSION))} "
        f"(without it, {DEFAULT_METRIC[CLASSIFICATION]} or {DEFAULT_METRIC[REGRESSION]} is shown and the "
        "validation loss chooses)",
        metavar="NAME",
    ),
    Setting(
        "class_weight",
        "balanced: every class weighs alike in the loss (scikit-learn's compute_sample_weight); none: every row "
        f"alike. Without it, balanced for {', '.join(BALANCED_BY_DEFAULT)}, else none",
        metavar="{" + ",".join(CLASS_WEIGHTS) + "}",
    ),
    Setting(
        "epochs",
        f"most epochs per search trial (default {_DIGITS['epochs']} on digits, {StudySpec.epochs} "
        "otherwise; when given, also the finalists' epochs unless a preset sets finalist_epochs)",
        metavar="E",
    ),
    Setting("sampler", f"Optuna sampler (default {StudySpec.sampler}; gp needs PyTorch)", choices=SAMPLERS),
    Setting("pruner", f"pruner on validation loss (default {StudySpec.pruner})", choices=PRUNERS),
    Setting("seed", f"study seed (default {StudySpec.seed})", metavar="S"),
    Setting("preset", "study preset TOML, e.g. studies/digits.toml", metavar="FILE", study=False),
    Setting(
        "cv",
        f"k-fold cross-validation on train + validation for every search trial (default {StudySpec.cv}: one "
        f"holdout split; finalists use finalist_cv, {_DIGITS['finalist_cv']} on digits)",
        metavar="K",
    ),
    Setting(
        "finalists",
        "after the search, run the K best configurations again on fresh seeds and choose the "
        f"best mean (default {StudySpec.finalists}; 0: no finalist stage)",
        metavar="K",
    ),
    Setting(
        "test_seed",
        "which 20% of the rows is the test split, read only by the final networks, where the "
        f"data gives none (default {StudySpec.test_seed}: the same test rows for every study)",
        metavar="S",
    ),
    Setting(
        "deterministic", "same seed -> same trials and values whatever --jobs is (sampled in batches)", switch=True
    ),
    STORAGE,
)
# The settings that define a study (StudySpec fields), as a `run` may give them.
STUDY_SETTINGS: tuple[str, ...] = tuple(s.name for s in RUN_SETTINGS if s.study)
