"""``export``: a study's final networks, behind its stored preprocessing, as one ONNX file.

Why: ``predict`` needs this package and the study's database; a service, a
phone or a browser has neither. The exported graph takes the inputs in the
study's own form and answers as ``predict`` does, with nothing else to ship:

- a table: one input per feature column, named as the column, shape (N,):
  numbers as float (double for a column whose values pass float32's range),
  NaN for a missing cell; text as strings, "" for a missing cell; a date column
  (``model/datasets/dates.py``) as double seconds since 1970-01-01 UTC, NaN
  for a missing one (a graph cannot read dates written as text). Inside: a
  date's parts, the stored medians and missing indicators, the z-score, the
  one-hot encoding with the stored categories (an unseen one encoded as none,
  as ``predict --unseen ignore``);
- an ``.npz`` of rows: ``features`` (N, n_features) float, with the stored z-score;
- images: ``images`` (N, H, W) or (N, C, H, W) float pixels, with the stored
  intensity scale and normalisation;
- a built-in data set: ``features`` (N, n_features), its prepared rows.

Then every final network (``model/onnx.py``) and the head: ``label`` (class
names as strings, or int64 when they are whole numbers) and ``probabilities``,
the mean of the networks'. The metadata names the study, the data's digest, the
retrained trial's parameters and the test score.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from model.datasets import Preprocessing
from model.datasets.dates import DAY, WEEK_OFFSET, YEAR, part_names
from model.datasets.encoding import MISSING_CATEGORY, TableEncoding
from search.errors import SearchError
from search.readers.ensemble import FinalNetworks, load_final_networks
from search.study.datafile import check_source_unchanged, record_of
from search.study.spec import StudySpec
from search.study.storage import default_url, open_storage
from search.study.stored import load_spec

if TYPE_CHECKING:
    from onnx import ModelProto, ValueInfoProto

    from model.onnx import Graph, Head

__all__ = ["FORMATS", "INSTALL", "Exported", "build_model", "export_study"]

logger = logging.getLogger(__name__)

FORMATS = ("onnx",)
INSTALL = "pip install -e '.[export]'"
# A column whose stored statistics pass this is given as double: its values do not fit a float32.
_FLOAT32_REACH = 1e37


@dataclass(frozen=True)
class Exported:
    path: Path
    text: str  # what a person is told


def export_study(study: str, storage_url: str | None, path: str | Path, *, format: str = "onnx") -> Exported:
    """Write the study's final networks with its preprocessing to ``path``; refuse as ``predict`` does."""
    if format not in FORMATS:
        raise SearchError(f"format must be one of {', '.join(FORMATS)}, got {format=}")
    _require_onnx()
    final = load_final_networks(study, storage_url)  # no networks: says to run best --retrain first
    spec, record, params = _study_facts(study, storage_url or default_url(study), int(final.record["trial"]))
    check_source_unchanged(record, spec, study)
    metadata = {
        "study": study,
        "data": spec.data_name,
        "data_digest": "" if record is None else str(record["digest"]),
        "trial": str(final.record["trial"]),
        "params": json.dumps(params, sort_keys=True),
        **_test_score(final.record),
        "networks": str(len(final.networks)),
    }
    model = build_model(final, study, metadata)
    out = Path(path)
    _write(out, model.SerializeToString())
    n = len(final.networks)
    text = (
        f"wrote {out}: {n} network{'s' if n > 1 else ''} of trial {final.record['trial']} of study {study!r} "
        f"behind its preprocessing, inputs {', '.join(i.name for i in model.graph.input[:6])}"
        f"{' ...' if len(model.graph.input) > 6 else ''}, outputs {', '.join(o.name for o in model.graph.output)} "
        f"({out.stat().st_size / 1e3:.1f} kB)"
    )
    return Exported(out, text)


def _test_score(record: dict[str, Any]) -> dict[str, str]:
    """The final networks' ensemble test score: accuracy for classes, RMSE for numbers."""
    name = "rmse" if record.get("task") == "regression" else "accuracy"
    return {f"test_{name}": repr(record.get(f"ensemble_{name}", record.get(f"test_{name}_mean")))}


def build_model(final: FinalNetworks, name: str, metadata: dict[str, str]) -> ModelProto:
    """The ONNX model of ``final``: its preprocessing, its networks, its head."""
    from model.onnx import Graph, ensemble

    prep = final.preprocessing
    head = _head(final)
    outputs = [o.name for o in head.outputs()]
    names = list(prep.table.columns) if prep is not None and prep.table is not None else []
    clash = sorted(set(names) & set(outputs))
    if clash:
        raise SearchError(f"column {clash[0]!r} has the name of an output of the exported graph; rename it")
    g = Graph(reserved=[*names, *outputs])
    inputs, rows = _inputs(g, prep, final.networks[0].n_inputs)
    ensemble(g, final.networks, rows, head)
    doc = (
        f"Study {name!r}: {len(final.networks)} network(s) behind the preprocessing stored with the study "
        f"({_form(prep)}). Outputs: {', '.join(outputs)}."
    )
    return g.model(inputs, head.outputs(), name=name, doc=doc, metadata=metadata)


def _head(final: FinalNetworks) -> Head:
    """What the networks' values become. Classes: ``label`` and ``probabilities``, the mean of the networks';
    numbers (a regression study): ``number``, the mean of their outputs in the target's units."""
    from model.onnx import ClassesHead, NumberHead, label_values

    if final.regression:
        prep = final.preprocessing
        return NumberHead() if prep is None else NumberHead(prep.target_mean, prep.target_scale)
    return ClassesHead(label_values(final.classes))


def _form(prep: Preprocessing | None) -> str:
    if prep is None:
        return "inputs: features, the prepared rows of the built-in data set"
    if prep.table is not None:
        return "inputs: one per feature column, numbers as float with NaN for missing, text as strings"
    if prep.layout == "image":
        return f"input: images of shape N x {' x '.join(map(str, prep.image_shape or []))}, raw pixel values"
    return "input: features, raw rows"


def _inputs(g: Graph, prep: Preprocessing | None, n_features: int) -> tuple[list[ValueInfoProto], str]:
    """The graph's inputs in the study's form, and the name of the network rows (N, n_features) float."""
    from onnx import TensorProto, helper

    if prep is not None and prep.table is not None:
        return _table(g, prep.table)
    if prep is None or prep.layout != "image":  # a built-in data set's prepared rows, or an .npz's raw ones
        x = helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", n_features])
        if prep is None or not prep.mean:
            return [x], "features"
        # in double, as Preprocessing.transform: a value's offset is not lost to float32 first
        rows = _cast(g, "features", TensorProto.DOUBLE)
        rows = g.node("Sub", [rows, g.constant("mean", np.asarray(prep.mean, np.float64))], "centred")
        rows = g.node("Div", [rows, g.constant("std", np.asarray(prep.std, np.float64))], "scaled")
        return [x], _cast(g, rows, TensorProto.FLOAT)
    shape = list(prep.image_shape or [])
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", *shape])
    rows = g.node("Flatten", ["images"], "pixels", axis=1)  # (N, n_features)
    if prep.scale != 1.0:  # to [0, 1] as prepare.to_unit_float32: times 1 / scale, in float32 unless it underflows
        if prep.scale < 1e37:
            rows = g.node("Mul", [rows, g.constant("inverse_scale", np.asarray(1.0 / prep.scale, np.float32))], "unit")
        else:
            wide = g.node("Mul", [_cast(g, rows, TensorProto.DOUBLE), g.constant("inverse_scale", np.asarray(
                1.0 / prep.scale))], "unit")  # fmt: skip
            rows = _cast(g, wide, TensorProto.FLOAT)
    if prep.mean:  # one value for the whole image, or one per pixel
        rows = g.node("Sub", [rows, g.constant("mean", np.asarray(prep.mean, np.float32))], "centred")
        rows = g.node("Div", [rows, g.constant("std", np.asarray(prep.std, np.float32))], "scaled")
    return [x], rows


def _cast(g: Graph, x: str, to: int) -> str:
    return g.node("Cast", [x], f"{x}/cast", to=to)


def _date_parts(g: Graph, dates: list[str]) -> dict[str, str]:
    """Each date column's parts (``dates.parts``, the same arithmetic), by name, from its (N,) seconds since 1970."""

    def mod(x: str, m: float, name: str) -> str:  # x - floor(x / m) * m, as dates._mod
        whole = g.node("Floor", [g.node("Div", [x, g.constant(f"{name}/m", np.asarray(m))], f"{name}/q")], f"{name}/f")
        return g.node("Sub", [x, g.node("Mul", [whole, g.constant(f"{name}/m2", np.asarray(m))], f"{name}/w")], name)

    out: dict[str, str] = {}
    for column in dates:
        days, hour, weekday, year = part_names(column)
        out[days] = g.node("Div", [column, g.constant(f"{days}/day", np.asarray(DAY))], days)
        seconds_of_day = mod(column, DAY, f"{hour}/seconds")
        out[hour] = g.node("Div", [seconds_of_day, g.constant(f"{hour}/3600", np.asarray(3600.0))], hour)
        day = g.node("Floor", [days], f"{weekday}/day")
        shifted = g.node("Add", [day, g.constant(f"{weekday}/offset", np.asarray(WEEK_OFFSET))], f"{weekday}/shifted")
        out[weekday] = mod(shifted, 7.0, weekday)
        out[year] = g.node("Div", [mod(days, YEAR, f"{year}/days"), g.constant(f"{year}/year", np.asarray(YEAR))],
                           year)  # fmt: skip
    return out


def _table(g: Graph, enc: TableEncoding) -> tuple[list[ValueInfoProto], str]:
    """One input per column, and the (N, n_features) float rows of ``TableEncoding.transform``."""
    from onnx import TensorProto, helper

    from model.onnx import ML_DOMAIN

    inputs, blocks = [], []
    if enc.numeric:
        k, ind = enc.imputed, len(enc.indicators)
        means, scales = np.asarray(enc.means), np.asarray(enc.scales)
        mean = np.concatenate([means[:k], means[k + ind :]])  # per numeric column; the indicators' apart
        scale = np.concatenate([scales[:k], scales[k + ind :]])
        reach = np.maximum(np.maximum(np.abs(mean), scale), np.abs(np.asarray(enc.medians)))
        derived = _date_parts(g, enc.dates)  # a date's parts, in double, from its input of seconds
        inputs += [helper.make_tensor_value_info(name, TensorProto.DOUBLE, ["N"]) for name in enc.dates]
        wide = [bool(r > _FLOAT32_REACH) or c in derived for r, c in zip(reach, enc.numeric)]
        for name, w in zip(enc.numeric, wide):
            if name not in derived:
                kind = TensorProto.DOUBLE if w else TensorProto.FLOAT
                inputs.append(helper.make_tensor_value_info(name, kind, ["N"]))
        columns = [derived.get(c, c) for c in enc.numeric]
        if any(wide):  # one type to concatenate: every column in double
            columns = [c if w else _cast(g, c, TensorProto.DOUBLE) for c, w in zip(columns, wide)]
        # (N,) columns -> (N, n_numeric): end to end, then (n_numeric, N), transposed
        stacked = g.node("Concat", columns, "numbers/stacked", axis=0)
        shape = g.constant("numbers/shape", np.asarray([len(columns), -1], np.int64))
        values = g.node("Transpose", [g.node("Reshape", [stacked, shape], "numbers/by_column")], "numbers", perm=[1, 0])
        if not any(wide):
            values = _cast(g, values, TensorProto.DOUBLE)  # in double, as TableEncoding.transform
        miss = g.node("IsNaN", [values], "missing")
        filled = g.node("Where", [miss, g.constant("medians", np.asarray(enc.medians)), values], "filled")
        z = g.node("Sub", [filled, g.constant("numbers/mean", mean)], "numbers/centred")
        z = g.node("Div", [z, g.constant("numbers/scale", scale)], "numbers/scaled")
        if ind:  # the indicator columns, scaled too, go between the imputed columns and the others
            flags = g.node("Gather", [miss, g.constant("indicators", np.asarray(enc.indicators, np.int64))],
                           "indicators", axis=1)  # fmt: skip
            flags = _cast(g, flags, TensorProto.DOUBLE)  # missing: 1.0, as a bool minus a float in numpy
            flags = g.node("Sub", [flags, g.constant("indicators/mean", means[k : k + ind])], "indicators/centred")
            flags = g.node("Div", [flags, g.constant("indicators/scale", scales[k : k + ind])], "indicators/scaled")
            n = len(enc.numeric)
            order = [*range(k), *range(n, n + ind), *range(k, n)]
            z = g.node("Concat", [z, flags], "numbers/with_indicators", axis=1)
            z = g.node("Gather", [z, g.constant("numbers/order", np.asarray(order, np.int64))], "numbers/ordered",
                       axis=1)  # fmt: skip
        blocks.append(_cast(g, z, TensorProto.FLOAT))
    for name, cats in zip(enc.text, enc.categories):
        inputs.append(helper.make_tensor_value_info(name, TensorProto.STRING, ["N"]))
        keys = [str(c) for c in cats]
        codes = list(range(len(cats)))
        if MISSING_CATEGORY in keys and "" not in keys:  # an empty string is a missing cell
            keys.append("")
            codes.append(keys.index(MISSING_CATEGORY))
        code = g.node("LabelEncoder", [name], f"{name}/code", domain=ML_DOMAIN, keys_strings=keys,
                      values_int64s=codes, default_int64=-1)  # fmt: skip  # -1: unseen, encoded as none
        column = g.node("Unsqueeze", [code, g.constant("axis1", np.asarray([1], np.int64))], f"{name}/column")
        positions = g.constant(f"{name}/positions", np.arange(len(cats), dtype=np.int64)[None, :])
        hot = g.node("Equal", [column, positions], f"{name}/onehot")  # (N, n_categories)
        blocks.append(_cast(g, hot, TensorProto.FLOAT))
    rows = blocks[0] if len(blocks) == 1 else g.node("Concat", blocks, "rows", axis=1)
    return inputs, rows


def _study_facts(study: str, url: str, trial: int) -> tuple[StudySpec, dict[str, Any] | None, dict[str, Any]]:
    """(spec, the data file's record or None, the parameters of trial number ``trial``), read once."""
    storage = open_storage(url, read_only=True)
    try:
        spec, study_id = load_spec(storage, study)
        record = record_of(storage, study_id)
        params = storage.get_trial_params(storage.get_trial_id_from_study_id_trial_number(study_id, trial))
    finally:
        storage.engine.dispose()
    return spec, record, dict(params)


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise SearchError(f"export needs the onnx package: {INSTALL}") from None


def _write(path: Path, data: bytes) -> None:
    """The whole file or nothing: written beside ``path``, then renamed over it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as exc:
        raise SearchError(f"cannot write {path}: {exc.strerror or exc}") from None
