"""Networks as ONNX nodes, so that they run where this package does not: onnxruntime in C, C#, Java, a browser.

Each dense layer is a ``Gemm`` (Z = X @ W + b), each hidden activation the ONNX
operator of the same maths (``ONNX_ACTIVATIONS``), and a classifier's head is
``Softmax``, the ensemble's mean of the probabilities, then ``ArgMax`` and
``Gather`` of the class labels: what ``Network.predict_proba`` and
``ensemble_proba`` compute. Two callers build graphs from these pieces:
``search/readers/export.py`` (a study's final networks behind its stored
preprocessing) and skl2onnx (``register_skl2onnx``: ``MLPClassifier`` inside a
scikit-learn pipeline). Both write through a ``Builder``: this module's
``Graph`` (the ``onnx`` package's helper API) or skl2onnx's container.

Heads are what the networks' outputs become: ``ClassesHead`` gives ``label``
and ``probabilities``; a regression head (``number``: the mean of the
networks' outputs, in the target's units) is another ``Head``, and nothing
before it changes. The ``onnx`` package is needed only here (``model`` does not
import this module); skl2onnx only by ``register_skl2onnx``.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from onnx import ModelProto, NodeProto, TensorProto, ValueInfoProto, helper, numpy_helper

from .periodic import PERIODIC_K, frequencies
from .plr import PLR, PLR_K

if TYPE_CHECKING:
    from .network import Network

__all__ = [
    "IR_VERSION",
    "ML_DOMAIN",
    "ML_OPSET",
    "ONNX_ACTIVATIONS",
    "OPSET",
    "Builder",
    "ClassesHead",
    "Graph",
    "Head",
    "ensemble",
    "label_values",
    "network_outputs",
    "periodic_inputs",
    "plr_inputs",
    "register_skl2onnx",
]

# Pinned, so that a file exported today opens in the runtimes deployed today: opset 17 and
# IR version 8 are onnx 1.12's (2022), read by onnxruntime >= 1.12 and onnxruntime-web.
OPSET = 17
ML_DOMAIN = "ai.onnx.ml"  # LabelEncoder: a table's text categories to their one-hot positions
ML_OPSET = 3
IR_VERSION = 8

# Hidden activation (a key of model.ACTIVATIONS) -> (ONNX operator, its attributes from the network).
ONNX_ACTIVATIONS: dict[str, Callable[[Network], tuple[str, dict[str, Any]]]] = {
    "relu": lambda net: ("Relu", {}),
    "leaky_relu": lambda net: ("LeakyRelu", {"alpha": net.leaky_slope}),  # z if z > 0 else alpha * z
    "tanh": lambda net: ("Tanh", {}),
    "sigmoid": lambda net: ("Sigmoid", {}),  # 1 / (1 + exp(-z)), which model's tanh form computes
}


class Builder(Protocol):
    """Where nodes go: ``Graph`` here, or skl2onnx's scope and container (see ``register_skl2onnx``)."""

    def constant(self, hint: str, value: np.ndarray) -> str:
        """Add ``value`` as an initializer; returns its (unique) name."""
        ...

    def node(self, op: str, inputs: Sequence[str], hint: str, *, out: str | None = None, **attrs: Any) -> str:
        """Add one node of the default domain; returns its output's name (``out`` if given)."""
        ...


class Graph:
    """The nodes and initializers of one ONNX graph, each value under a unique name.

    ``reserved``: names taken already (the graph's inputs and outputs), never
    given to an intermediate value.
    """

    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self.nodes: list[NodeProto] = []
        self.initializers: list[TensorProto] = []
        self.domains: set[str] = set()
        self._taken = set(reserved)

    def name(self, hint: str) -> str:
        """``hint``, or ``hint_2``, ``hint_3``... : the first not taken."""
        name, k = hint, 1
        while name in self._taken:
            k += 1
            name = f"{hint}_{k}"
        self._taken.add(name)
        return name

    def constant(self, hint: str, value: np.ndarray) -> str:
        name = self.name(hint)
        if value.dtype.kind in "OU":  # strings: from_array wants bytes or str objects
            self.initializers.append(helper.make_tensor(name, TensorProto.STRING, value.shape, value.ravel().tolist()))
        else:
            self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def node(
        self, op: str, inputs: Sequence[str], hint: str, *, out: str | None = None, domain: str = "", **attrs: Any
    ) -> str:
        output = out if out is not None else self.name(hint)
        self.nodes.append(helper.make_node(op, list(inputs), [output], name=self.name(f"{hint}/{op}"),
                                           domain=domain or None, **attrs))  # fmt: skip
        if domain:
            self.domains.add(domain)
        return output

    def model(
        self,
        inputs: Sequence[ValueInfoProto],
        outputs: Sequence[ValueInfoProto],
        *,
        name: str,
        doc: str = "",
        metadata: dict[str, str] | None = None,
    ) -> ModelProto:
        """The graph as a model with the pinned opsets, ``metadata`` as its metadata_props."""
        graph = helper.make_graph(self.nodes, name, list(inputs), list(outputs), self.initializers, doc_string=doc)
        opsets = [helper.make_opsetid("", OPSET)]
        if ML_DOMAIN in self.domains:
            opsets.append(helper.make_opsetid(ML_DOMAIN, ML_OPSET))
        model = helper.make_model(
            graph, opset_imports=opsets, ir_version=IR_VERSION, producer_name="numpy-hpsearch", doc_string=doc
        )
        helper.set_model_props(model, dict(metadata or {}))
        return model


def network_outputs(g: Builder, network: Network, X: str, prefix: str, dtype: type = np.float32) -> str:
    """The network's last-layer values (N, n_outputs) for inputs ``X`` (N, n_inputs): logits for a classifier.

    Dense layers as ``Gemm`` with the weights in ``dtype``; no dropout (it is off at inference).
    """
    op, attrs = ONNX_ACTIVATIONS[network.activation](network)
    A = X  # (N, widths[0])
    if network.embedding is not None:
        A = plr_inputs(g, network.embedding, X, prefix, dtype)
    elif network.periodic:
        A = periodic_inputs(g, network, X, prefix, dtype)
    last = len(network.layers) - 1
    for i, layer in enumerate(network.layers):
        W = g.constant(f"{prefix}/W{i}", np.ascontiguousarray(layer.W, dtype=dtype))  # (n_in, n_out)
        b = g.constant(f"{prefix}/b{i}", np.ascontiguousarray(layer.b, dtype=dtype))  # (n_out,)
        Z = g.node("Gemm", [A, W, b], f"{prefix}/z{i}")  # (N, n_out)
        A = Z if i == last else g.node(op, [Z], f"{prefix}/h{i}", **attrs)
    return A


def periodic_inputs(g: Builder, network: Network, X: str, prefix: str, dtype: type = np.float32) -> str:
    """``model.periodic.expand`` as nodes: the rows, then the sines, then the cosines of their chosen columns."""
    columns = network.periodic_columns
    m, k = len(columns), PERIODIC_K
    chosen = g.node("Gather", [X, g.constant(f"{prefix}/periodic_columns", np.asarray(columns, np.int64))],
                    f"{prefix}/periodic_x", axis=1)  # fmt: skip
    column = g.node("Reshape", [chosen, g.constant(f"{prefix}/periodic_column", np.asarray([0, m, 1], np.int64))],
                    f"{prefix}/periodic_xcol")  # fmt: skip
    F = g.constant(f"{prefix}/periodic_frequencies", frequencies(m, network.periodic).astype(dtype))  # (m, k)
    angles = g.node("Mul", [column, F], f"{prefix}/periodic_angles")  # (N, m, k)
    flat = g.node("Reshape", [angles, g.constant(f"{prefix}/periodic_flat", np.asarray([0, m * k], np.int64))],
                  f"{prefix}/periodic_angles_flat")  # fmt: skip
    sines, cosines = g.node("Sin", [flat], f"{prefix}/periodic_sin"), g.node("Cos", [flat], f"{prefix}/periodic_cos")
    return g.node("Concat", [X, sines, cosines], f"{prefix}/periodic_inputs", axis=1)


def plr_inputs(g: Builder, embedding: PLR, X: str, prefix: str, dtype: type = np.float32) -> str:
    """``model.plr.PLR.forward`` as nodes: the rows, then each chosen column's learned units."""
    m, k, d = len(embedding.columns), PLR_K, embedding.d
    p = f"{prefix}/plr"
    chosen = g.node("Gather", [X, g.constant(f"{p}_columns", np.asarray(embedding.columns, np.int64))],
                    f"{p}_x", axis=1)  # (N, m)  # fmt: skip
    by_row = g.node("Transpose", [chosen], f"{p}_xt", perm=[1, 0])  # (m, N)
    by_column = g.node("Reshape", [by_row, g.constant(f"{p}_shape", np.asarray([m, -1, 1], np.int64))], f"{p}_xcol")
    frequencies = (embedding.c * embedding.c.dtype.type(2 * np.pi)).reshape(m, 1, k).astype(dtype)  # as forward rounds
    angles = g.node("Mul", [by_column, g.constant(f"{p}_frequencies", frequencies)], f"{p}_angles")  # (m, N, k)
    P = g.node("Concat", [g.node("Cos", [angles], f"{p}_cos"), g.node("Sin", [angles], f"{p}_sin")],
               f"{p}_periodic", axis=2)  # (m, N, 2k)  # fmt: skip
    Z = g.node("MatMul", [P, g.constant(f"{p}_W", np.ascontiguousarray(embedding.W, dtype=dtype))], f"{p}_z")
    Z = g.node("Add", [Z, g.constant(f"{p}_b", embedding.b.reshape(m, 1, d).astype(dtype))], f"{p}_zb")
    units = g.node("Transpose", [g.node("Relu", [Z], f"{p}_relu")], f"{p}_units", perm=[1, 0, 2])  # (N, m, d)
    flat = g.node("Reshape", [units, g.constant(f"{p}_flat", np.asarray([0, m * d], np.int64))], f"{p}_flat_units")
    return g.node("Concat", [X, flat], f"{p}_inputs", axis=1)


def label_values(classes: Sequence[Any] | np.ndarray) -> np.ndarray:
    """The ``label`` output's values per class: int64 when every class is a whole number, else strings."""
    values = list(np.asarray(classes, dtype=object).ravel())
    if values and all(
        isinstance(c, numbers.Real) and not isinstance(c, (bool, np.bool_)) and float(c).is_integer() for c in values
    ):
        return np.asarray(values, dtype=np.int64)
    return np.asarray([str(c) for c in values], dtype=object)


class Head(Protocol):
    """What the networks' last-layer values become: the graph's outputs."""

    def outputs(self) -> list[ValueInfoProto]:
        """The graph outputs it writes, typed, with N rows."""
        ...

    def build(self, g: Builder, values: Sequence[str]) -> None:
        """Nodes from each network's last-layer values (N, n_outputs) to the outputs."""
        ...


@dataclass(frozen=True)
class ClassesHead:
    """``probabilities`` (N, n_classes): the mean of the networks' softmax; ``label`` (N,): its argmax's class."""

    labels: np.ndarray  # per class, as label_values gives them
    dtype: type = np.float32  # of the probabilities
    label: str = "label"  # the outputs' names
    probabilities: str = "probabilities"

    def outputs(self) -> list[ValueInfoProto]:
        kind = TensorProto.INT64 if self.labels.dtype.kind in "iu" else TensorProto.STRING
        elem = helper.np_dtype_to_tensor_dtype(np.dtype(self.dtype))
        return [
            helper.make_tensor_value_info(self.label, kind, ["N"]),
            helper.make_tensor_value_info(self.probabilities, elem, ["N", len(self.labels)]),
        ]

    def build(self, g: Builder, values: Sequence[str]) -> None:
        # the ensemble is the mean of the networks' probabilities (search.study.winner.ensemble_proba), as
        # numpy forms it: their sum, divided by their number (onnxruntime has no double Mean)
        if len(values) == 1:
            p = g.node("Softmax", [values[0]], f"{values[0]}/softmax", out=self.probabilities, axis=1)
        else:
            total = g.node("Sum", [g.node("Softmax", [v], f"{v}/softmax", axis=1) for v in values], "sum")
            count = g.constant("count", np.asarray(len(values), dtype=self.dtype))
            p = g.node("Div", [total, count], "mean", out=self.probabilities)  # (N, n_classes)
        index = g.node("ArgMax", [p], "argmax", axis=1, keepdims=0)  # (N,) int64: the first maximum, as numpy's
        g.node("Gather", [g.constant("classes", self.labels), index], "class", out=self.label, axis=0)


@dataclass(frozen=True)
class NumberHead:
    """``number`` (N,) float64: the mean of the networks' outputs, in the target's units (``mean + scale * it``).

    A regression network's one output is the target standardised on its training split; the
    ensemble is the mean of the networks' outputs (``search.study.winner.ensemble_proba`` on numbers),
    turned back by the stored statistics in double precision, as ``Preprocessing.decode_targets`` does.
    """

    mean: float = 0.0
    scale: float = 1.0
    dtype: type = np.float32  # of the networks' outputs
    number: str = "number"

    def outputs(self) -> list[ValueInfoProto]:
        return [helper.make_tensor_value_info(self.number, TensorProto.DOUBLE, ["N"])]

    def build(self, g: Builder, values: Sequence[str]) -> None:
        if len(values) == 1:
            mean = values[0]  # (N, 1)
        else:
            count = g.constant("count", np.asarray(len(values), dtype=self.dtype))
            mean = g.node("Div", [g.node("Sum", list(values), "sum"), count], "mean")
        flat = g.node("Reshape", [mean, g.constant("rows", np.asarray([-1], dtype=np.int64))], "flat")  # (N,)
        wide = g.node("Cast", [flat], "wide", to=TensorProto.DOUBLE)
        scaled = g.node("Mul", [wide, g.constant("scale", np.asarray(self.scale, dtype=np.float64))], "scaled")
        g.node(
            "Add",
            [scaled, g.constant("target_mean", np.asarray(self.mean, dtype=np.float64))],
            "number",
            out=self.number,
        )


def ensemble(g: Builder, networks: Sequence[Network], X: str, head: Head, dtype: type = np.float32) -> None:
    """Every network on ``X`` (N, n_inputs), their values through ``head`` to the outputs."""
    head.build(g, [network_outputs(g, net, X, f"net{k}", dtype) for k, net in enumerate(networks)])


# ----------------------------------------------------------------- skl2onnx


class _Skl2onnx:
    """``Builder`` over skl2onnx's scope (unique names) and container (nodes and initializers)."""

    def __init__(self, scope: Any, container: Any) -> None:
        self.scope, self.container = scope, container

    def constant(self, hint: str, value: np.ndarray) -> str:
        name: str = self.scope.get_unique_variable_name(hint.replace("/", "_"))
        if value.dtype.kind in "OU":
            content = [str(v).encode("utf-8") for v in value.ravel().tolist()]
            self.container.add_initializer(name, TensorProto.STRING, list(value.shape), content)
        else:
            tensor = numpy_helper.from_array(value, name)
            self.container.add_initializer(name, tensor.data_type, list(value.shape), tensor)
        return name

    def node(self, op: str, inputs: Sequence[str], hint: str, *, out: str | None = None, **attrs: Any) -> str:
        output: str = out if out is not None else self.scope.get_unique_variable_name(hint.replace("/", "_"))
        self.container.add_node(op, list(inputs), [output], name=self.scope.get_unique_operator_name(op), **attrs)
        return output


def _convert_mlp_classifier(scope: Any, operator: Any, container: Any) -> None:
    """skl2onnx converter of a fitted ``model.MLPClassifier``: outputs label, then probabilities.

    Computed in double for a double input (the estimator predicts in float64), else in float.
    """
    estimator = operator.raw_operator
    source = operator.inputs[0]
    double = source.type.to_onnx_type().tensor_type.elem_type == TensorProto.DOUBLE
    dtype = np.float64 if double else np.float32
    g = _Skl2onnx(scope, container)
    X = source.full_name
    if source.type.to_onnx_type().tensor_type.elem_type != helper.np_dtype_to_tensor_dtype(np.dtype(dtype)):
        X = g.node("Cast", [X], "cast_input", to=helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))
    from skl2onnx.common.utils_classifier import get_label_classes

    classes = np.asarray(get_label_classes(scope, estimator))  # the indices under the option nocl=True
    # skl2onnx's shape calculator types the label int64 for numeric classes, string otherwise
    labels = classes.astype(np.int64) if classes.dtype.kind in "biuf" else np.asarray(classes.astype(str), object)
    head = ClassesHead(labels, dtype, operator.outputs[0].full_name, operator.outputs[1].full_name)
    ensemble(g, [estimator.network_], X, head, dtype)


def register_skl2onnx() -> None:
    """Teach skl2onnx ``model.MLPClassifier``: ``skl2onnx.to_onnx(pipeline, X[:1])`` then converts it.

    Registered as scikit-learn's classifiers are, with their options: ``zipmap``
    (probabilities as a list of dicts by default, ``{"zipmap": False}`` for a
    tensor), ``nocl`` (class indices for labels), ``output_class_labels``.
    Calling it again changes nothing.
    """
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

    from .estimator import MLPClassifier

    update_registered_converter(
        MLPClassifier,
        "NumpyHpsearchMLPClassifier",
        calculate_linear_classifier_output_shapes,
        _convert_mlp_classifier,
        options={"zipmap": [True, False, "columns"], "nocl": [False, True], "output_class_labels": [False, True]},
    )
