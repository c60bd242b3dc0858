"""How the plots cut a parameter into heatmap cells, and how they label numbers.

Why a module of its own: binning follows the search space (log-scaled ranges
get log-spaced edges, ``l2 = 0`` a cell of its own, choices one cell each), a
rule worth testing apart from drawing; and the short number labels (3e-4, 0.03,
256) are shared by the figures and the report's text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, MaxNLocator

from search.study.space import WIDTH_PARAM


@dataclass(frozen=True, slots=True)
class Bins:
    """How one parameter is cut into heatmap cells."""

    codes: np.ndarray  # (n_trials,) cell index per trial, -1 where the value is missing
    n: int  # number of cells
    ticks: list[float]  # tick positions in cell units (edges for ranges, centres for values)
    labels: list[str]
    log: bool = False


def short_number(v: float, digits: int = 2) -> str:
    """Short tick label: 3e-4, 1e-3, 0.03, 0.5, 256."""
    if v == 0:
        return "0"
    if abs(v) >= 10 and float(v).is_integer():
        return f"{v:.0f}"
    if abs(v) < 0.01:
        mantissa, exponent = f"{v:.{digits - 1}e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".") if "." in mantissa else mantissa
        return f"{mantissa}e{int(exponent)}"
    return f"{v:.{digits}g}" if abs(v) < 100 else f"{v:.0f}"


def plain_ticks(axis: Any) -> None:
    """Log-axis labels as 0.3, 1, 2 rather than 3x10^-1; minor ones too when the axis spans few decades."""
    axis.set_major_formatter(FuncFormatter(lambda v, _: short_number(v)))

    def minor(v: float, _pos: Any) -> str:
        lo, hi = sorted(axis.get_view_interval())
        few_decades = lo > 0 and math.log10(hi / lo) <= 1.5
        return short_number(v) if few_decades and f"{v:.0e}"[0] in "1235" else ""

    axis.set_minor_formatter(FuncFormatter(minor))


def _discrete(values: pd.Series, order: list[Any]) -> Bins:
    order = [o for o in order if o is not None] + sorted(set(values.dropna()) - set(order), key=str)
    index = {v: i for i, v in enumerate(order)}
    codes = np.array([index.get(v, -1) if not pd.isna(v) else -1 for v in values], dtype=int)
    return Bins(codes, len(order), [i + 0.5 for i in range(len(order))], [str(o) for o in order])


def _ranged(values: pd.Series, edges: np.ndarray, log: bool, zero_bin: bool) -> Bins:
    x = values.to_numpy(dtype=float, na_value=np.nan)
    offset = 1 if zero_bin else 0
    n = len(edges) - 1 + offset
    codes = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2) + offset
    if zero_bin:
        codes[x == 0] = 0
    codes[np.isnan(x)] = -1
    ticks = ([0.5] if zero_bin else []) + [offset + i for i in range(len(edges))]
    labels = (["0"] if zero_bin else []) + [short_number(e, 1 if log else 2) for e in edges]
    return Bins(codes, n, ticks, labels, log)


def bin_parameter(values: pd.Series, dim: Any) -> Bins:
    """Cut a parameter column into cells, following its search-space dimension ``dim``.

    Log-scaled ranges get edges evenly spaced in log space (powers of 2 for
    integers such as widths, decades or half-decades for floats); ``l2 = 0``
    (switched off) gets a cell of its own; choices and small integer ranges get
    one cell per value.
    """
    if isinstance(dim, list):
        return _discrete(values, sorted(dim) if all(isinstance(d, (int, float)) for d in dim) else dim)
    if isinstance(values.dtype, pd.CategoricalDtype):
        return _discrete(values.astype(object), list(values.cat.categories))
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return _discrete(values.astype(object), sorted(set(values.dropna()), key=str))
    x = values.dropna().astype(float)
    is_int = pd.api.types.is_integer_dtype(values)
    if isinstance(dim, dict):
        low, high, log = float(dim["low"]), float(dim["high"]), bool(dim.get("log", False))
    elif x.nunique() <= 8 and (x == x.round()).all():  # not in the spec: few whole numbers are values
        return _discrete(values.astype(object), sorted(int(v) for v in x.unique()))
    else:  # not in the spec: infer from the data
        positive = x[x > 0]
        low, high = (positive.min(), positive.max()) if len(positive) else (x.min(), x.max())
        log = len(positive) > 0 and high / low >= 100
    if is_int and not log and high - low < 12:
        return _discrete(values.astype(object), list(range(int(low), int(high) + 1)))
    if log:
        base = 2.0 if is_int else 10.0
        lo, hi = math.log(low, base), math.log(high, base)
        step = 1.0 if is_int or hi - lo >= 5 - 1e-9 else 0.5
        exps = np.arange(math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step + step / 2, step)
        edges = base**exps
    else:
        edges = np.asarray(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]).tick_values(low, high))
        edges = edges[(edges > low - 1e-12) | (np.arange(len(edges)) == 0)]
        edges = np.append(edges[edges < high - 1e-12], max(high, edges[-1]))
    zero_bin = bool((x == 0).any()) or (isinstance(dim, dict) and bool(dim.get("zero")))
    return _ranged(values, edges, log, zero_bin and log)


def dim_for(space: dict[str, Any], name: str) -> Any:
    """The search-space dimension of parameter ``name`` (the widths ``units_l*`` share ``units``)."""
    return space.get("units") if name.startswith(WIDTH_PARAM) else space.get(name)
