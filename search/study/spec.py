"""StudySpec: everything that defines a study, kept on the Optuna study itself.

The spec is stored as one JSON user attribute of the study, so that ``resume``
needs only the study name and storage, and so that a ``run`` whose flags
contradict the stored study is refused instead of silently mixing two searches.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from model import TrainConfig
from model.config import RANGES, Interval
from model.datasets import DATASETS, MISSING, NORMALIZATIONS, DatasetError, FileSource, get_spec, parse_image_size
from model.losses import LOSSES
from search.errors import SearchError
from search.study.checks import Choice, Duration, Fraction, Rule, WholeNumber, named
from search.study.metrics import (
    BALANCED_BY_DEFAULT,
    CLASSIFICATION,
    DEFAULT_METRIC,
    METRICS,
    REGRESSION,
    TASKS,
    for_task,
)
from search.study.pruning import PRUNERS as _PRUNER_TABLE
from search.study.samplers import SAMPLERS as _SAMPLER_TABLE
from search.study.selection import SELECTIONS
from search.study.space import DEFAULT_SPACE, Dim, Fixed, check_value, parse_space, space_to_json
from search.study.space import Choice as ChoiceDim

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SAMPLERS = tuple(_SAMPLER_TABLE)  # names only; the samplers are built in search/study/samplers.py
PRUNERS = tuple(_PRUNER_TABLE)  # names only; the pruners are built in search/study/pruning.py
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")

# Per data set, what a study uses where neither a flag nor a preset says otherwise
# (a preset's [space] is laid over this space). Chosen by measurement with
# tests/bench/bench_quality.py; docs/search-quality.md gives the figures.
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    # 1,797 images. One holdout split ranks 200 search trials of 20 epochs; the 5
    # finalists are cross-validated twice on fresh 3-fold splits of train + validation,
    # for 80 epochs, on images warped with strength 1.5 (so are the final networks):
    # by 5-fold CV that took a search winner from 0.985 to 0.995 (warp 1: 0.992; no
    # warp, 80 epochs: 0.985; tests/bench/bench_digits_cv.py). A warp costs these small
    # networks as much as their training step, so the search trials go without it.
    # One wide hidden layer: deeper networks cost up to 7x more per epoch here and
    # scored no better.
    # Learning rates above 0.3 won the search by luck and lost 1-1.5 points on test
    # (measured: docs/search-quality.md).
    "digits": {
        "epochs": 20,
        "cv": 1,
        "finalist_cv": 3,
        "finalist_repeats": 2,
        "finalist_epochs": 80,
        "finalist_warp": 1.5,
        "selection": "smoothed_loss",
        "space": {
            "n_layers": 1,
            "units": {"low": 64, "high": 2048, "log": True},
            "learning_rate": {"low": 1e-3, "high": 0.3, "log": True},
            "dropout": {"low": 0.1, "high": 0.6},
        },
    },
}
# What a study stored before these settings existed meant: one holdout, no finalists.
_BEFORE_STAGES = {"cv": 1, "selection": "min_loss", "finalists": 0}
# ... and before the question was part of the study: classes, reported by accuracy and chosen by the objective,
# every row weighing the same.
_BEFORE_QUESTION = {"task": CLASSIFICATION, "metric": None, "class_weight": "none"}
CLASS_WEIGHTS = ("balanced", "none")
# A regression study's losses, searched as a choice unless its space says otherwise.
REGRESSION_LOSSES = tuple(name for name, loss in LOSSES.items() if loss.regression)


def default_study_name(spec: StudySpec) -> str:
    """A study is named after its data: the data set, or the file's name without its suffixes."""
    if spec.data is None:
        return spec.data_name
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(spec.data).name.split(".")[0]).strip("-._")
    return stem[:100] or "data"


def check_study_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise SearchError(
            f"study name must be 1-100 letters, digits, '_', '-' or '.', starting with a letter "
            f"or digit (it becomes a file name), got {name!r}"
        )
    return name


_NETWORK = TrainConfig()  # a network's defaults (model/config.py), where a study setting is a network's
_FOLDS = WholeNumber(1, 50)


def _setting(default: Any, rule: Rule, follows: str | None = None) -> Any:
    """A field whose valid values are ``rule``'s: ``StudySpec`` checks it, and its ``run`` flag parses with it.

    ``follows``: left None, the field takes that field's value.
    """
    return field(default=default, metadata={"rule": rule, "follows": follows})


@dataclass(frozen=True)
class StudySpec:
    name: str = "default"
    dataset: str | None = "digits"  # a registered data set; None when ``data`` names a file
    # finished (complete + pruned) trials the study should hold
    trials: int = _setting(200, WholeNumber(1))
    epochs: int = _setting(_NETWORK.epochs, WholeNumber.within(RANGES["epochs"]))  # most epochs one trial may train
    sampler: str = "tpe"
    pruner: str = "median"
    # sampler seed; training seeds derive from (seed, trial number)
    seed: int = _setting(0, WholeNumber(0))
    deterministic: bool = False  # same seed -> same trials whatever the number of workers
    sync_batch: int = _setting(4, WholeNumber(1))  # trials sampled together in deterministic mode
    # None: 0.2 for digits and files (a larger validation split ranks trials less noisily on small data), else 0.1
    val_fraction: float | None = _setting(None, Fraction(Interval(0.0, 0.5, low_open=True)))
    normalization: str | None = None  # None: the data set's default
    space: Mapping[str, Dim] = field(default_factory=lambda: dict(DEFAULT_SPACE))
    preset: str | None = None  # where the settings came from, for the record
    # k-fold cross-validation on train + validation; 1 = the holdout
    cv: int = _setting(1, _FOLDS)
    selection: str = "smoothed_loss"  # how a curve becomes the objective (search.selection)
    # the question: classification or regression; None: decided from the target (a built-in data set: classes)
    task: str | None = _setting(None, Choice(TASKS))
    # the measure (search/study/metrics.py) that chooses the finalists and the winner and is shown first;
    # None: the task's default (accuracy, rmse) is shown, and the objective (validation loss) chooses
    metric: str | None = _setting(None, Choice(tuple(METRICS)))
    # balanced: each class weighs alike in the training (and validation) loss; none: each row alike;
    # None: balanced for a metric that weighs the classes alike (BALANCED_BY_DEFAULT), else none
    class_weight: str | None = _setting(None, Choice(CLASS_WEIGHTS))
    # top configurations run again on fresh seeds; 0 = no such stage
    finalists: int = _setting(5, WholeNumber(0))
    finalist_repeats: int = _setting(3, WholeNumber(1))  # fresh runs per finalist
    # epochs of a finalist run; None: same as epochs
    finalist_epochs: int | None = _setting(None, WholeNumber.within(RANGES["epochs"]), follows="epochs")
    finalist_cv: int | None = _setting(None, _FOLDS, follows="cv")  # folds of a finalist run; None: same as cv
    finalist_warp: float | None = None  # augment_warp of finalist runs and final networks; None: the trial's
    # which 20% of digits (or of a file without a test split) is the test split
    test_seed: int = _setting(0, WholeNumber(0))
    data: str | None = None  # a file of one's own (.npz, table, folder of images): its absolute path
    target: str | None = None  # a table's label column (None: the last)
    x_key: str | None = None  # an .npz's feature and label arrays (None: by convention)
    y_key: str | None = None
    image_size: str | None = None  # "HxW": resize every image to it (None: as they are)
    missing: str = "impute"  # a table's missing values: imputed, or refused
    # seconds for the whole job (search, finalists, final networks); None: no limit
    budget: float | None = _setting(None, Duration())

    def __post_init__(self) -> None:
        check_study_name(self.name)
        self._check_data()
        if self.val_fraction is None:
            object.__setattr__(self, "val_fraction", 0.2 if self.dataset in ("digits", None) else 0.1)
        for f in fields(self):
            value, rule = getattr(self, f.name), f.metadata.get("rule")
            if value is None and f.metadata.get("follows"):
                value = getattr(self, f.metadata["follows"])
            if rule is None or (value is None and f.default is None):  # None: not set (budget: no limit)
                continue
            try:
                object.__setattr__(self, f.name, rule.check(value))
            except SearchError as exc:
                raise named(f.name, exc) from None
        if self.finalist_warp is not None:
            check_value("augment_warp", self.finalist_warp)
        if self.test_seed and self.dataset is not None and get_spec(self.dataset).official_test_split:
            raise SearchError(f"test_seed: {self.dataset} has an official test split; only digits draws its own")
        if self.sampler not in SAMPLERS:
            raise SearchError(f"sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        if self.selection not in SELECTIONS:
            raise SearchError(f"selection must be one of {', '.join(SELECTIONS)}, got {self.selection!r}")
        if self.pruner not in PRUNERS:
            raise SearchError(f"pruner must be one of {', '.join(PRUNERS)}, got {self.pruner!r}")
        if self.normalization is not None and self.normalization not in NORMALIZATIONS:
            raise SearchError(f"normalization must be one of {', '.join(NORMALIZATIONS)}, got {self.normalization!r}")
        self._decide_question()

    def _decide_question(self) -> None:
        """The task from the data set or the metric, then the class weights from the metric and the loss's
        place in the space; a file's task left None is decided from its target when it is read (``with_task``)."""
        task = self.task
        if self.data is None:  # a built-in data set: images and their classes
            if REGRESSION in (task, self.metric and METRICS[self.metric].task):
                raise SearchError(
                    f"{'metric ' + str(self.metric) if task is None else 'task'}: {self.dataset} "
                    f"holds classes; regression needs a file of your own (--data) with a numeric target"
                )
            task = CLASSIFICATION
        if self.metric is not None:
            metric_task = METRICS[self.metric].task
            if task is not None and task != metric_task:
                raise SearchError(
                    f"metric {self.metric} measures {metric_task}, but the task is {task}; "
                    f"its metrics: {', '.join(for_task(task))}"
                )
            task = metric_task
        object.__setattr__(self, "task", task)
        if task is None:
            return
        if self.class_weight is None:
            object.__setattr__(self, "class_weight", "balanced" if self.metric in BALANCED_BY_DEFAULT else "none")
        if task == REGRESSION:
            if self.class_weight == "balanced":
                raise SearchError("class_weight balanced weighs the classes alike; a regression target has none")
            if self.selection == "smoothed_error":
                raise SearchError(
                    "selection smoothed_error ranks by accuracy; a regression study has none: "
                    "choose one of the losses' rules"
                )
            if "loss" not in self.space:
                object.__setattr__(self, "space", {**self.space, "loss": ChoiceDim(REGRESSION_LOSSES)})
        loss = self.space.get("loss")
        losses = loss.values if isinstance(loss, ChoiceDim) else (loss.value,) if isinstance(loss, Fixed) else ()
        wrong = [v for v in losses if LOSSES[v].regression != (task == REGRESSION)]
        if wrong:
            fits = REGRESSION_LOSSES if task == REGRESSION else tuple(n for n in LOSSES if n not in REGRESSION_LOSSES)
            raise SearchError(f"space: loss {wrong[0]} does not fit a {task} study; its losses: {', '.join(fits)}")

    def _check_data(self) -> None:
        if self.data is None:
            if self.dataset not in DATASETS:
                raise SearchError(f"unknown data set {self.dataset!r}; known: {', '.join(DATASETS)}")
            given = [k for k in ("target", "x_key", "y_key", "image_size") if getattr(self, k) is not None]
            if given:
                flags = ", ".join("--" + k.replace("_", "-") for k in given)
                raise SearchError(f"{flags}: for a file of your own (--data), not for the data set {self.dataset}")
            return
        if self.dataset is not None:
            raise SearchError(
                f"give a registered data set or a file, not both: dataset {self.dataset!r}, data {self.data!r}"
            )
        if not isinstance(self.data, str) or not self.data:
            raise SearchError(f"data must be the path of a file or folder, got {self.data!r}")
        object.__setattr__(self, "data", os.path.abspath(self.data))
        if self.missing not in MISSING:
            raise SearchError(f"missing must be one of {', '.join(MISSING)}, got {self.missing!r}")
        try:
            self.file_source()
        except DatasetError as exc:
            raise SearchError(str(exc)) from None

    @property
    def metric_name(self) -> str:
        """The measure the study shows first: its metric, or the task's default (accuracy for an undecided task)."""
        return self.metric or DEFAULT_METRIC[self.task or CLASSIFICATION]

    @property
    def data_name(self) -> str:
        """What the trials train on, as a person names it: the data set, or the file's name."""
        return Path(self.data).name if self.data is not None else str(self.dataset)

    def file_source(self) -> FileSource | None:
        """The file of one's own and how to read it (its digest still to be taken); None for a data set."""
        if self.data is None:
            return None
        size = parse_image_size(self.image_size) if self.image_size is not None else None
        return FileSource(self.data, "", self.target, self.x_key, self.y_key, size, self.missing, self.task)

    def to_json(self) -> str:
        data = asdict(self)
        data["space"] = space_to_json(self.space)
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> StudySpec:
        data = json.loads(text)
        data["space"] = parse_space(data.get("space", {}), base={})
        if "cv" not in data:  # stored before cross-validation and finalists existed
            data |= _BEFORE_STAGES
        if "task" not in data:  # stored before the task, the metric and class weights existed
            data |= _BEFORE_QUESTION
        return cls(**data)

    def settings(self) -> dict[str, Any]:
        """The settings that must match between a stored study and a new ``run``."""
        data = json.loads(self.to_json())
        return {key: data[key] for key in FIXED_SETTINGS}


_FIELDS = {f.name: f for f in fields(StudySpec)}
# What a later `run` of a study may change: how long it goes on.
_CHANGEABLE = ("trials", "budget")
# The settings a later `run` may not change: they define what the trials mean. (The name and
# the preset a study came from are its record, not settings.)
FIXED_SETTINGS = tuple(name for name in _FIELDS if name not in ("name", "preset", *_CHANGEABLE))
_PRESET_KEYS = set(_FIELDS) - {"name", "preset", "space"}


def spec_rule(name: str) -> Rule | None:
    """The valid values of the study setting ``name`` (its StudySpec field's rule; None: a name, or a choice)."""
    field_ = _FIELDS.get(name)
    return None if field_ is None else field_.metadata.get("rule")


def load_preset(path: str | Path) -> dict[str, Any]:
    """Read a preset TOML into StudySpec keyword arguments (validated by StudySpec)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SearchError(f"preset {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SearchError(f"preset {str(path)!r} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SearchError(f"preset {str(path)!r} is not valid TOML: {exc}") from None
    space = raw.pop("space", {})
    if not isinstance(space, dict):
        raise SearchError(f"preset {str(path)!r}: [space] must be a table")
    unknown = sorted(set(raw) - _PRESET_KEYS)
    if unknown:
        raise SearchError(
            f"preset {str(path)!r}: unknown key(s) {', '.join(unknown)}; known: "
            f"{', '.join(sorted(_PRESET_KEYS))}, [space]"
        )
    parse_space(space)  # checked here, so the error names the preset
    kwargs = dict(raw)
    kwargs["space"] = space
    kwargs["preset"] = str(path)
    return kwargs


def build_spec(name: str, preset: str | None, overrides: Mapping[str, Any]) -> StudySpec:
    """Defaults < the data set's defaults < preset < explicit command-line flags (``None``: not given)."""
    kwargs: dict[str, Any] = load_preset(preset) if preset else {}
    for flag, other in (("data", "dataset"), ("dataset", "data")):  # a flag's data replaces a preset's
        if overrides.get(flag) is not None:
            kwargs.pop(other, None)
    kwargs.update({k: v for k, v in overrides.items() if v is not None})
    if "data" in kwargs:
        if "dataset" in kwargs:
            raise SearchError(
                f"give --dataset or --data, not both (dataset {kwargs['dataset']!r}, data {kwargs['data']!r})"
            )
        kwargs["dataset"] = None
    # with a budget the plan decides what a data set's table would (search/budget/plan.py)
    table = {} if kwargs.get("budget") else DATASET_DEFAULTS.get(kwargs.get("dataset", StudySpec.dataset) or "", {})
    defaults = dict(table)
    follower = "finalist_epochs"  # epochs given are the finalists' too, over the data set's (its finalist_cv stays)
    if _FIELDS[follower].metadata["follows"] in kwargs and follower not in kwargs:
        defaults.pop(follower, None)  # left None, StudySpec gives it the epochs
    space = parse_space(kwargs.pop("space", {}), base=parse_space(defaults.pop("space", {})))
    kwargs = defaults | kwargs | {"space": space}
    try:
        return StudySpec(name=name, **kwargs)
    except TypeError as exc:  # a wrongly typed preset value reaches the dataclass
        raise SearchError(f"bad study settings: {exc}") from None


def given_settings(overrides: Mapping[str, Any], preset: str | None) -> set[str]:
    """The settings a ``run`` states explicitly: its flags, and with a preset every fixed setting and what it holds.

    A preset is a whole study's definition, so a study continued with it must
    agree on every fixed setting; its ``trials`` or ``budget``, like the flags',
    change the stored ones.
    """
    if not preset:
        return set(overrides)
    return set(overrides) | set(FIXED_SETTINGS) | (set(load_preset(preset)) & set(_CHANGEABLE))


def check_compatible(stored: StudySpec, wanted: StudySpec, given: set[str]) -> StudySpec:
    """A ``run`` on an existing study may change only the trial count and the time budget.

    ``given`` names the settings the user asked for explicitly (flags or preset);
    the others are taken from the stored study.
    """
    stored_settings, wanted_settings = stored.settings(), wanted.settings()
    clashes = [k for k in FIXED_SETTINGS if k in given and stored_settings[k] != wanted_settings[k]]
    if clashes:
        detail = "; ".join(f"{k}: stored {stored_settings[k]!r}, asked {wanted_settings[k]!r}" for k in clashes)
        raise SearchError(
            f"study {stored.name!r} already exists with other settings ({detail}); "
            f"use 'python -m search resume --study {stored.name}' or choose a new --study name"
        )
    return replace(stored, **{key: getattr(wanted, key) for key in _CHANGEABLE if key in given})


def as_finalist(spec: StudySpec, config: TrainConfig) -> TrainConfig:
    """A finalist run's or a final network's configuration: the trial's, warped as the finalists are.

    Multi-fidelity: a warp costs the small digits networks as much as their
    training step, so by default only the finalists and final networks pay it.
    """
    if spec.finalist_warp is None:
        return config
    return replace(config, augment_warp=spec.finalist_warp)


def with_task(spec: StudySpec, task: str | None) -> StudySpec:
    """A study whose task was left to the data, with the task its target decided (a stated task stays)."""
    return spec if spec.task is not None or task is None else replace(spec, task=task)


def with_plan(spec: StudySpec, planned: Mapping[str, Any], given: set[str]) -> StudySpec:
    """A budgeted study's settings: the plan's (search/budget/plan.py), except what a flag or preset stated."""
    return replace(spec, **{key: value for key, value in planned.items() if key not in given})
