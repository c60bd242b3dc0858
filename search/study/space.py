"""The search space: what a trial may vary, and how it becomes a ``TrainConfig``.

A space is a mapping from parameter name to a dimension. It is written in TOML
presets, stored as JSON on the study (so ``resume`` needs nothing else) and
turned into Optuna ``suggest_*`` calls in the coordinator, never in a worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import optuna

from model import ACTIVATIONS, LOSSES, TrainConfig
from model.config import RANGES, Interval
from model.optim import OPTIMIZERS, SCHEDULES
from search.errors import SearchError


@dataclass(frozen=True, slots=True)
class Float:
    low: float
    high: float
    log: bool = False
    zero: bool = False  # zero reachable: an extra "<name>_on" switch picks 0 or the range


@dataclass(frozen=True, slots=True)
class Int:
    low: int
    high: int
    log: bool = False


@dataclass(frozen=True, slots=True)
class Choice:
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Fixed:
    value: Any


Dim = Float | Int | Choice | Fixed

# A trial's hidden layers are its "n_layers" and one width each: "units_l0", "units_l1"... (conditional
# on the depth, so the sampler models a width only where the layer exists)
WIDTH_PARAM = "units_l"

_AS_TRAINED = (
    "learning_rate",
    "batch_size",
    "l1",
    "l2",
    "dropout",
    "momentum",
    "leaky_slope",
    "lr_step",
    "warmup",
    "huber_delta",
)
# Every numeric name a space may hold, with the interval its values must lie in:
# TrainConfig's own (model/config.py) where the search takes them as they are.
_NUMERIC_BOUNDS: dict[str, Interval] = {
    **{name: RANGES[name] for name in _AS_TRAINED},
    "n_layers": Interval(1, 16, integer=True),
    "units": Interval(1, 65536, integer=True),  # the width of each hidden layer (suggested once per layer)
    "lr_decay": Interval(0.0, 1.0, low_open=True),  # narrower than TrainConfig's: a decay, not a growth
    "augment_shift": Interval(0, 8, integer=True),  # pixels, narrower than TrainConfig's; needs an image_shape
    "augment_warp": Interval(0.0, 3.0),  # warp strength (model/augment.py), narrower than TrainConfig's
    "periodic": Interval(0.0, 10.0),  # sigma of periodic features of a table's numbers (model/periodic.py); 0: none
    "plr": Interval(0, 64, integer=True),  # units of learned embeddings of a table's numbers (model/plr.py); 0: none
    "plr_sigma": Interval(0.001, 10.0),  # the sigma of those embeddings' starting frequencies
}
_INTEGER_PARAMS = frozenset(name for name, bounds in _NUMERIC_BOUNDS.items() if bounds.integer)
_CHOICES: dict[str, tuple[Any, ...]] = {
    "activation": tuple(ACTIVATIONS),
    "optimizer": tuple(OPTIMIZERS),
    "lr_schedule": SCHEDULES,
    "augment_flip": (False, True),
    "loss": tuple(LOSSES),  # the task's: a regression study searches squared_error and huber (search/study/spec.py)
}
KNOWN_PARAMS = tuple(sorted([*_NUMERIC_BOUNDS, *_CHOICES, "patience"]))

DEFAULT_SPACE: dict[str, Dim] = {
    "learning_rate": Float(1e-4, 1.0, log=True),
    "batch_size": Choice((16, 32, 64, 128, 256, 512)),
    "l2": Float(1e-6, 1e-1, log=True, zero=True),
    "dropout": Float(0.0, 0.6),
    "activation": Choice(tuple(ACTIVATIONS)),
    "n_layers": Int(1, 4),
    "units": Int(16, 1024, log=True),
    "momentum": Float(0.0, 0.99),
}


def check_value(name: str, value: Any) -> None:
    """Raise SearchError unless ``value`` is one a space may give ``name``."""
    if name in _CHOICES:
        if not any(value == c and type(value) is type(c) for c in _CHOICES[name]):  # True is not 1
            shown = ", ".join(str(c).lower() if isinstance(c, bool) else str(c) for c in _CHOICES[name])
            raise SearchError(f"space: {name} must be one of {shown}, got {value!r}")
        return
    if name == "patience":
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise SearchError(f"space: patience must be a positive integer, got {value!r}")
        return
    bounds = _NUMERIC_BOUNDS[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SearchError(f"space: {name} must be a number, got {value!r}")
    if name in _INTEGER_PARAMS and not float(value).is_integer():
        raise SearchError(f"space: {name} must be a whole number, got {value!r}")
    if value not in bounds:  # NaN never is
        raise SearchError(f"space: {name} must be in {bounds}, got {value!r}")


def parse_dim(name: str, raw: Any) -> Dim:
    """One TOML/JSON entry -> a dimension: a table is a range, a list a choice, a scalar fixed."""
    if name not in KNOWN_PARAMS:
        raise SearchError(f"space: unknown parameter {name!r}; known: {', '.join(KNOWN_PARAMS)}")
    if isinstance(raw, Mapping):
        unknown = set(raw) - {"low", "high", "log", "zero"}
        if unknown or not {"low", "high"} <= set(raw):
            raise SearchError(f"space: {name} range needs keys low and high (optional log, zero), got {sorted(raw)}")
        low, high, log, zero = raw["low"], raw["high"], raw.get("log", False), raw.get("zero", False)
        if name in _CHOICES or name == "patience":
            raise SearchError(f"space: {name} takes a value or a list of values, not a range")
        for v in (low, high):
            check_value(name, v)
        if not isinstance(log, bool) or not isinstance(zero, bool):
            raise SearchError(f"space: {name}: log and zero must be true or false")
        if low > high:
            raise SearchError(f"space: {name} range is inverted: low={low} > high={high}")
        if log and low <= 0:
            raise SearchError(f"space: {name} is log-scaled, so low must be > 0, got low={low}")
        if zero and name not in ("l1", "l2"):
            raise SearchError(f"space: zero = true is only for l1 and l2, not {name}")
        if name in _INTEGER_PARAMS:
            return Int(int(low), int(high), log)
        return Float(float(low), float(high), log, zero)
    if isinstance(raw, (list, tuple)):
        if not raw:
            raise SearchError(f"space: {name} has an empty list of choices")
        for v in raw:
            check_value(name, v)
        if len(set(raw)) != len(raw):
            raise SearchError(f"space: {name} lists a choice twice: {list(raw)}")
        return Choice(tuple(raw))
    check_value(name, raw)
    return Fixed(raw)


def parse_space(raw: Mapping[str, Any], base: Mapping[str, Dim] = DEFAULT_SPACE) -> dict[str, Dim]:
    """Overlay a preset's ``[space]`` table on ``base`` (the defaults)."""
    space = dict(base)
    for name, value in raw.items():
        space[name] = parse_dim(name, value)
    if all(_reaches(space.get(name), lambda v: v > 0) for name in ("periodic", "plr")):
        raise SearchError("space: periodic and plr are two first maps and a draw holds one only: search one of them")
    return space


def _reaches(dim: Dim | None, test: Any) -> bool:
    """Whether some value the dimension can give passes ``test``."""
    if dim is None:
        return False
    if isinstance(dim, Fixed):
        return bool(test(dim.value))
    if isinstance(dim, Choice):
        return any(test(v) for v in dim.values)
    return bool(test(dim.low) or test(dim.high) or (isinstance(dim, Float) and dim.zero and test(0.0)))


def dim_to_json(dim: Dim) -> Any:
    if isinstance(dim, Float):
        return {"low": dim.low, "high": dim.high, "log": dim.log, "zero": dim.zero}
    if isinstance(dim, Int):
        return {"low": dim.low, "high": dim.high, "log": dim.log}
    if isinstance(dim, Choice):
        return list(dim.values)
    return dim.value


def space_to_json(space: Mapping[str, Dim]) -> dict[str, Any]:
    return {name: dim_to_json(dim) for name, dim in sorted(space.items())}


def _suggest(trial: optuna.trial.BaseTrial, name: str, dim: Dim) -> Any:
    if isinstance(dim, Fixed):
        return dim.value
    if isinstance(dim, Choice):
        return trial.suggest_categorical(name, list(dim.values))
    if isinstance(dim, Int):
        return trial.suggest_int(name, dim.low, dim.high, log=dim.log)
    if dim.zero and not trial.suggest_categorical(f"{name}_on", [True, False]):
        return 0.0
    return trial.suggest_float(name, dim.low, dim.high, log=dim.log)


def suggest(trial: optuna.trial.BaseTrial, space: Mapping[str, Dim], epochs: int, seed: int) -> TrainConfig:
    """Sample one configuration; depth first, then one width per layer (a conditional space).

    ``plr_sigma`` is drawn only for a configuration with learned embeddings (``plr`` > 0): without
    them it would be a parameter that changes nothing, and the sampler would model it all the same.
    """
    values = {name: _suggest(trial, name, dim) for name, dim in space.items() if name not in ("units", "plr_sigma")}
    if values.get("plr") and "plr_sigma" in space:
        values["plr_sigma"] = _suggest(trial, "plr_sigma", space["plr_sigma"])
    n_layers = int(values.pop("n_layers", 1))
    units = space.get("units", Fixed(128))
    hidden = tuple(int(_suggest(trial, f"{WIDTH_PARAM}{i}", units)) for i in range(n_layers))
    try:
        return TrainConfig(hidden=hidden, epochs=epochs, seed=seed, **values)
    except ValueError as exc:  # a range the checks above let through; say where it came from
        raise SearchError(f"space: the sampled configuration is invalid: {exc}") from None


def config_from_params(params: Mapping[str, Any], space: Mapping[str, Dim], epochs: int, seed: int) -> TrainConfig:
    """Rebuild a trial's ``TrainConfig`` from its stored parameters (for ``best --retrain``)."""
    return suggest(optuna.trial.FixedTrial(dict(params)), space, epochs, seed)
