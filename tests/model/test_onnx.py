"""model/onnx.py: networks as ONNX nodes give predict_proba's numbers in onnxruntime and in onnx's reference
evaluator, and skl2onnx converts a pipeline holding model.MLPClassifier once it is registered."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tests.equipment import in_ci

try:
    import onnx
    import onnxruntime as ort
    import skl2onnx
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator
except ImportError as exc:  # the export extra
    if in_ci():
        raise
    pytest.skip(f"{exc.name} is not installed (pip install -e '.[export]')", allow_module_level=True)

from model import ACTIVATIONS, MLPClassifier, Network
from model.onnx import ONNX_ACTIVATIONS, ClassesHead, Graph, ensemble, label_values, register_skl2onnx


def both_runtimes(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[list[np.ndarray]]:
    """The outputs of onnxruntime and of the reference evaluator, after the full check."""
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [session.run(None, feeds), ReferenceEvaluator(model).run(None, feeds)]


def graph_of(networks: list[Network], classes: list) -> onnx.ModelProto:
    g = Graph(reserved=["X", "label", "probabilities"])
    head = ClassesHead(label_values(classes))
    ensemble(g, networks, "X", head)
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", networks[0].n_inputs])
    return g.model([x], head.outputs(), name="test")


def test_every_activation_has_an_onnx_operator() -> None:
    assert set(ONNX_ACTIVATIONS) == set(ACTIVATIONS)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_a_network_as_onnx_nodes_gives_its_probabilities_and_classes(activation: str) -> None:
    rng = np.random.default_rng(0)
    net = Network(7, (12, 9), 4, activation, leaky_slope=0.2, seed=1)
    for p in net.parameters():  # biases too, and weights large enough that the activation's shape matters
        p[...] = rng.normal(0, 1.0, p.shape)
    X = rng.normal(0, 2.0, (50, 7)).astype(np.float32)
    for label, proba in both_runtimes(graph_of([net], [3, 5, 7, 9]), {"X": X}):
        assert label.dtype == np.int64
        assert np.array_equal(label, np.array([3, 5, 7, 9])[net.predict(X)])
        assert np.abs(proba - net.predict_proba(X)).max() < 1e-5


def test_periodic_features_as_onnx_nodes_give_the_networks_probabilities() -> None:
    rng = np.random.default_rng(6)
    net = Network(5, (16,), 3, "relu", periodic=1.0, periodic_columns=[0, 1, 3], seed=2)
    X = rng.normal(0, 2.0, (60, 5)).astype(np.float32)
    for label, proba in both_runtimes(graph_of([net], [0, 1, 2]), {"X": X}):
        assert np.array_equal(label, net.predict(X))
        assert np.abs(proba - net.predict_proba(X)).max() < 1e-5


def test_an_ensemble_averages_the_probabilities_and_names_its_classes() -> None:
    rng = np.random.default_rng(2)
    nets = [Network(5, (6,), 3, "tanh", seed=k) for k in range(3)]
    X = rng.normal(size=(40, 5)).astype(np.float32)
    expected = np.mean([n.predict_proba(X) for n in nets], axis=0)
    names = np.array(["cat", "dog", "emu"])
    for label, proba in both_runtimes(graph_of(nets, list(names)), {"X": X}):
        assert np.abs(proba - expected).max() < 1e-6
        assert label.tolist() == names[expected.argmax(axis=1)].tolist()


def test_label_values_are_int64_for_whole_numbers_and_strings_otherwise() -> None:
    assert label_values([0, 1, 2]).dtype == np.int64
    assert label_values(np.array([3.0, 7.0])).tolist() == [3, 7]
    assert label_values(np.array([1, 2], dtype=np.int32)).dtype == np.int64
    assert label_values(["a", "b"]).tolist() == ["a", "b"]
    assert label_values([0.5, 1.0]).tolist() == ["0.5", "1.0"]
    assert label_values([True, False]).tolist() == ["True", "False"]


def iris() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_iris(return_X_y=True)
    return X, y


@pytest.mark.parametrize("names", [False, True], ids=["integer classes", "string classes"])
def test_skl2onnx_converts_a_pipeline_holding_mlpclassifier_once_registered(names: bool) -> None:
    X, y = iris()
    labels = np.array(["setosa", "versicolor", "virginica"])[y] if names else y
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden=(16,), activation="leaky_relu", epochs=10))
    pipe.fit(X, labels)
    register_skl2onnx()
    register_skl2onnx()  # twice changes nothing
    X32 = X.astype(np.float32)
    # as scikit-learn's own MLPClassifier converts: label and a list of {class: probability} by default
    model = skl2onnx.to_onnx(pipe, X32[:1])
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    label, maps = session.run(None, {session.get_inputs()[0].name: X32})
    assert label.tolist() == pipe.predict(X).tolist()
    proba = np.array([[m[c] for c in pipe.classes_] for m in maps])
    assert np.abs(proba - pipe.predict_proba(X)).max() < 1e-5
    # zipmap off: a tensor, in both runtimes
    model = skl2onnx.to_onnx(pipe, X32[:1], options={"zipmap": False})
    for label, proba in both_runtimes(model, {model.graph.input[0].name: X32}):
        assert label.tolist() == pipe.predict(X).tolist()
        assert np.abs(proba - pipe.predict_proba(X)).max() < 1e-5


def test_skl2onnx_computes_in_double_for_a_double_input_and_honours_nocl() -> None:
    X, y = iris()
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden=(8,), activation="sigmoid", epochs=5)).fit(X, y + 10)
    register_skl2onnx()
    model = skl2onnx.to_onnx(pipe, X[:1], options={"zipmap": False})
    for label, proba in both_runtimes(model, {model.graph.input[0].name: X}):
        assert proba.dtype == np.float64 and np.abs(proba - pipe.predict_proba(X)).max() < 1e-9
        assert label.tolist() == pipe.predict(X).tolist()
    model = skl2onnx.to_onnx(pipe, X[:1], options={id(pipe.steps[-1][1]): {"zipmap": False, "nocl": True}})
    label, _ = both_runtimes(model, {model.graph.input[0].name: X})[0]
    assert label.tolist() == (pipe.predict(X) - 10).tolist()  # class indices


def test_learned_embeddings_as_onnx_nodes_give_the_networks_probabilities() -> None:
    rng = np.random.default_rng(7)
    net = Network(5, (16,), 3, "relu", plr_sigma=0.3, periodic_columns=[0, 1, 3], plr=4, seed=2)
    net.embedding.c[...] *= 3  # trained frequencies are what the graph must hold, not the seed's
    X = rng.normal(0, 2.0, (60, 5)).astype(np.float32)
    for label, proba in both_runtimes(graph_of([net], [0, 1, 2]), {"X": X}):
        assert np.array_equal(label, net.predict(X))
        assert np.abs(proba - net.predict_proba(X)).max() < 1e-5
