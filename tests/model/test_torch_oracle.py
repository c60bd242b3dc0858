"""PyTorch as the gradient oracle: the same weights, inputs and masks through autograd, in float64.

PyTorch is never a runtime dependency (it is in the test extra, pinned to a CPU build).
Each test builds the network's maths from torch's own functions (``F.cross_entropy``,
``F.huber_loss``, ``torch.optim.AdamW``) on copies of our parameters and compares the
loss and every parameter gradient, or the parameters after some steps.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight

from model import ACTIVATIONS, LOSSES, Network
from model.optim import Adam
from model.periodic import PERIODIC_K, frequencies
from tests.equipment import missing

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - the test extra installs it
    torch = None


@pytest.fixture(autouse=True)
def _needs_torch():
    if torch is None:
        missing("PyTorch, the gradient oracle (pip install -e '.[test]')")


def _t(a: np.ndarray, grad: bool = False):
    return torch.tensor(np.asarray(a, np.float64), requires_grad=grad)


def _torch_loss_and_gradients(net: Network, X, y, masks, sample_weight):
    """The network's loss (data loss + penalty) and parameter gradients, computed by torch autograd."""
    params = [_t(p, grad=True) for p in net.parameters()]  # W0, b0, W1, b1, ..., then an embedding's c, W, b
    act = {
        "relu": F.relu,
        "leaky_relu": lambda z: F.leaky_relu(z, negative_slope=net.leaky_slope),
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
    }[net.activation]
    A = _t(X)
    if net.plr:  # model/plr.py, written again in torch as Gorishniy et al.'s PeriodicEmbeddings + NLinear + ReLU
        c, W, b = params[-3:]
        angles = 2 * torch.pi * c[None] * A[:, net.periodic_columns, None]  # (n, m, k)
        periodic = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)  # (n, m, 2k)
        units = F.relu(torch.einsum("nmi,mio->nmo", periodic, W) + b)  # (n, m, d): a linear map per column
        A = torch.cat([A, units.reshape(len(X), -1)], dim=1)
    elif net.periodic:  # model/periodic.py, written again in torch: the rows, then the sines, then the cosines
        angles = A[:, net.periodic_columns, None] * _t(frequencies(len(net.periodic_columns), net.periodic))
        flat = angles.reshape(len(X), -1)
        A = torch.cat([A, torch.sin(flat), torch.cos(flat)], dim=1)
    for i in range(len(net.layers)):
        Z = A @ params[2 * i] + params[2 * i + 1]  # the dense layers' parameters come first
        if i == len(net.layers) - 1:
            break
        A = act(Z)
        if masks is not None:
            A = A * _t(masks[i])
    w = torch.ones(len(X), dtype=torch.float64) if sample_weight is None else _t(sample_weight)
    if net.loss == "cross_entropy":
        rows = F.cross_entropy(Z, torch.as_tensor(y), reduction="none", label_smoothing=net.label_smoothing)
    else:
        target = _t(np.asarray(y).reshape(Z.shape))
        if net.loss == "squared_error":
            rows = 0.5 * F.mse_loss(Z, target, reduction="none").mean(dim=1)
        else:
            rows = F.huber_loss(Z, target, reduction="none", delta=net.huber_delta).mean(dim=1)
    loss = (w * rows).sum() / w.sum()
    weights = params[0 : 2 * len(net.layers) : 2]  # dense weights only: an embedding is not penalised
    loss = loss + 0.5 * net.l2 * sum((W**2).sum() for W in weights) + net.l1 * sum(W.abs().sum() for W in weights)
    loss.backward()
    return float(loss.detach()), [p.grad.numpy() for p in params]


LOSS_CASES = {
    "cross_entropy": {"loss": "cross_entropy"},
    "cross_entropy, smoothed and weighted": {"loss": "cross_entropy", "label_smoothing": 0.15, "weighted": True},
    "squared_error, weighted": {"loss": "squared_error", "weighted": True},
    "huber": {"loss": "huber", "huber_delta": 0.3},
}


@pytest.mark.parametrize("case", LOSS_CASES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_loss_and_every_gradient_equal_pytorch_autograd(case, activation, dropout):
    options = dict(LOSS_CASES[case])
    weighted = options.pop("weighted", False)
    regression = options["loss"] != "cross_entropy"
    n_out = 2 if regression else 3
    rng = np.random.default_rng(11)
    net = Network(
        6, (5, 4), n_out, activation, leaky_slope=0.1, dropout=dropout, l1=0.01, l2=0.02, seed=3, dtype=np.float64,
        **options,
    )  # fmt: skip
    for p in net.parameters():  # non-zero biases; weights away from 0, where |W| has no derivative
        p[...] = np.where(p >= 0, 1, -1) * np.maximum(np.abs(p), 1e-3) + (0.05 if p.ndim == 1 else 0)
    X = rng.standard_normal((7, 6))
    y = rng.standard_normal((7, n_out)) * 2 if regression else rng.integers(0, n_out, 7)
    w = rng.uniform(0.2, 3.0, 7) if weighted else None
    masks = [(rng.random((7, h)) >= dropout) / (1 - dropout) for h in (5, 4)] if dropout else None

    loss, grads = net.loss_and_gradients(X, y, masks=masks, sample_weight=w)
    expected_loss, expected_grads = _torch_loss_and_gradients(net, X, y, masks, w)

    assert loss == pytest.approx(expected_loss, rel=1e-12)
    for ours, theirs in zip(grads, expected_grads, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("loss", ["cross_entropy", "squared_error"])
def test_a_network_with_periodic_features_has_pytorchs_loss_and_gradients(loss):
    rng = np.random.default_rng(5)
    n_out = 3 if loss == "cross_entropy" else 1
    net = Network(6, (5,), n_out, "relu", l2=0.02, loss=loss, periodic=0.7, periodic_columns=[0, 3, 4], seed=2,
                  dtype=np.float64)  # fmt: skip
    assert net.widths[0] == 6 + 2 * PERIODIC_K * 3
    X = rng.standard_normal((9, 6))
    y = rng.integers(0, n_out, 9) if loss == "cross_entropy" else rng.standard_normal((9, 1))
    loss_value, grads = net.loss_and_gradients(X, y)
    expected_loss, expected_grads = _torch_loss_and_gradients(net, X, y, None, None)
    assert loss_value == pytest.approx(expected_loss, rel=1e-12)
    for ours, theirs in zip(grads, expected_grads, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-13)


def test_balanced_sample_weights_give_pytorchs_class_weighted_cross_entropy():
    # compute_sample_weight("balanced", y)[i] is compute_class_weight("balanced")[y_i], and both
    # normalise by the sum of the weights of the rows' classes: the same loss and gradient
    rng = np.random.default_rng(0)
    y = np.array([0, 0, 0, 0, 0, 0, 1, 1, 2, 0, 0, 1])
    logits = rng.standard_normal((12, 3)) * 2
    class_weight = compute_class_weight("balanced", classes=np.arange(3), y=y)
    z = _t(logits, grad=True)
    expected = F.cross_entropy(z, torch.as_tensor(y), weight=_t(class_weight))
    expected.backward()

    sample_weight = compute_sample_weight("balanced", y)
    for form in ("backward", "fused"):
        out = logits.copy()
        loss = getattr(LOSSES["cross_entropy"], form)(out, y, scale=1.0, sample_weight=sample_weight)
        assert loss == pytest.approx(float(expected.detach()), rel=1e-12), form
        np.testing.assert_allclose(out, z.grad.numpy(), rtol=1e-12, atol=1e-15, err_msg=form)


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.5])
def test_label_smoothing_equals_pytorchs(smoothing):
    rng = np.random.default_rng(1)
    logits, y = rng.standard_normal((9, 4)) * 3, rng.integers(0, 4, 9)
    z = _t(logits, grad=True)
    expected = F.cross_entropy(z, torch.as_tensor(y), label_smoothing=smoothing)
    expected.backward()
    for form in ("backward", "fused"):
        out = logits.copy()
        loss = getattr(LOSSES["cross_entropy"].bind(label_smoothing=smoothing), form)(out, y, scale=1.0)
        assert loss == pytest.approx(float(expected.detach()), rel=1e-12), form
        np.testing.assert_allclose(out, z.grad.numpy(), rtol=1e-12, atol=1e-15, err_msg=form)


def test_adam_with_weight_decay_equals_pytorchs_adamw_over_some_steps():
    # weights decayed, biases not: AdamW with two parameter groups
    rng = np.random.default_rng(2)
    W, b = rng.standard_normal((4, 3)), rng.standard_normal(3)
    tW, tb = _t(W, grad=True), _t(b, grad=True)
    ours = Adam([W, b], lr=0.05, beta1=0.8, beta2=0.95, weight_decay=0.3, decayed=[W])
    theirs = torch.optim.AdamW(
        [{"params": [tW], "weight_decay": 0.3}, {"params": [tb], "weight_decay": 0.0}], lr=0.05, betas=(0.8, 0.95)
    )
    for lr in (0.05, 0.05, 0.02, 0.01, 0.03):  # a schedule changes the rate between steps
        gW, gb = rng.standard_normal((4, 3)), rng.standard_normal(3)
        ours.lr = lr
        ours.step([gW, gb])
        for group in theirs.param_groups:
            group["lr"] = lr
        tW.grad, tb.grad = _t(gW), _t(gb)
        theirs.step()
    np.testing.assert_allclose(W, tW.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(b, tb.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("loss", ["cross_entropy", "huber"])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_a_network_with_learned_embeddings_has_pytorchs_loss_and_gradients(loss, dropout):
    rng = np.random.default_rng(9)
    n_out = 3 if loss == "cross_entropy" else 2
    net = Network(6, (5, 4), n_out, "relu", dropout=dropout, l1=0.01, l2=0.02, loss=loss, plr_sigma=0.4,
                  periodic_columns=[0, 3, 4], plr=4, seed=2, dtype=np.float64)  # fmt: skip
    assert net.widths[0] == 6 + 3 * 4
    X = rng.standard_normal((9, 6))
    y = rng.integers(0, n_out, 9) if loss == "cross_entropy" else rng.standard_normal((9, n_out))
    w = rng.uniform(0.2, 3.0, 9)
    masks = [(rng.random((9, h)) >= dropout) / (1 - dropout) for h in (5, 4)] if dropout else None
    loss_value, grads = net.loss_and_gradients(X, y, masks=masks, sample_weight=w)
    expected_loss, expected_grads = _torch_loss_and_gradients(net, X, y, masks, w)
    assert loss_value == pytest.approx(expected_loss, rel=1e-12)
    assert len(grads) == len(expected_grads) == 2 * 3 + 3
    for ours, theirs in zip(grads, expected_grads, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-13)
