"""Epoch-time benchmark: our NumPy MLP against PyTorch CPU and the machine's GEMM peak.

Run as ``python tests/bench/bench_epoch.py`` (not collected by pytest). One
BLAS thread throughout; 784-256-128-10 relu, dropout 0.2, momentum 0.9,
l2 1e-4, 50,000 Fashion-MNIST training rows (random data of that shape if the
files are missing); best of 3 epochs for batch sizes 32, 128 and 512.

FLOPs counted are the GEMMs a minimal implementation must do, per sample:
forward 2*sum(n_in*n_out); backward dW for every layer (same again) and dX for
every layer but the first (its input is the data).

Every time is reported twice: wall clock, and the CPU time of this thread
(``time.thread_time``), which does not count time the scheduler gave to other
processes; on a shared machine the second is the steadier figure. Each is the
best of the runs.
"""

from __future__ import annotations

import argparse
import gzip
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from model.network import Network  # noqa: E402
from model.optim import make_optimizer  # noqa: E402
from model.train import _run_epoch  # noqa: E402

FASHION = Path("/usr/share/datasets/fashion-mnist")
WIDTHS = (784, 256, 128, 10)
N_TRAIN = 50_000
LR, MOMENTUM, L2, DROPOUT = 0.01, 0.9, 1e-4, 0.2


def load_data() -> tuple[np.ndarray, np.ndarray, str]:
    """Fashion-MNIST training images as float32 in [0, 1] (IDX: 16-byte header, labels 8)."""
    images, labels = FASHION / "train-images-idx3-ubyte.gz", FASHION / "train-labels-idx1-ubyte.gz"
    if images.exists() and labels.exists():
        X = np.frombuffer(gzip.decompress(images.read_bytes()), np.uint8, offset=16).reshape(-1, 784)
        y = np.frombuffer(gzip.decompress(labels.read_bytes()), np.uint8, offset=8)
        return (X[:N_TRAIN] / np.float32(255)).astype(np.float32), y[:N_TRAIN].astype(np.int64), "Fashion-MNIST"
    rng = np.random.default_rng(0)
    return rng.random((N_TRAIN, 784), dtype=np.float32), rng.integers(0, 10, N_TRAIN), "random"


def flops_per_sample() -> int:
    pairs = list(zip(WIDTHS[:-1], WIDTHS[1:]))
    forward = 2 * sum(a * b for a, b in pairs)
    dW = forward
    dX = 2 * sum(a * b for a, b in pairs[1:])  # no dX for the first layer
    return forward + dW + dX


class Best:
    """Best wall-clock and thread-CPU time over several timed blocks."""

    def __init__(self) -> None:
        self.wall = self.cpu = math.inf

    def __enter__(self) -> Best:
        self._wall, self._cpu = time.perf_counter(), time.thread_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = min(self.wall, time.perf_counter() - self._wall)
        self.cpu = min(self.cpu, time.thread_time() - self._cpu)


def gemm_peak(repeats: int = 5) -> tuple[float, float, dict[str, tuple[float, float]]]:
    """Best single-thread float32 GEMM rate (GFLOP/s, wall and CPU) over this network's shapes and 1024^3."""
    rng = np.random.default_rng(0)
    shapes = {
        "(128,784)@(784,256)": (128, 784, 256, False),
        "(784,128)@(128,256) [X.T@dZ]": (784, 128, 256, True),
        "(128,256)@(256,128)": (128, 256, 128, False),
        "(512,784)@(784,256)": (512, 784, 256, False),
        "1024^3": (1024, 1024, 1024, False),
    }
    rates = {}
    for name, (m, k, n, transposed) in shapes.items():
        A = rng.random((k, m), dtype=np.float32).T if transposed else rng.random((m, k), dtype=np.float32)
        B = rng.random((k, n), dtype=np.float32)
        out = np.empty((m, n), np.float32)
        number = max(1, int(2e9 / (2 * m * k * n)))
        best = Best()
        for _ in range(repeats):
            with best:
                for _ in range(number):
                    np.matmul(A, B, out=out)
        flop = 2 * m * k * n * number / 1e9
        rates[name] = (flop / best.wall, flop / best.cpu)
    return max(r[0] for r in rates.values()), max(r[1] for r in rates.values()), rates


def ours_epoch(X: np.ndarray, y: np.ndarray, batch_size: int, epochs: int = 3) -> Best:
    net = Network(784, WIDTHS[1:-1], 10, "relu", dropout=DROPOUT, l2=L2, seed=0)
    optimizer = make_optimizer("momentum", [net.flat_parameters], LR, MOMENTUM)
    shuffle_rng, dropout_rng = np.random.default_rng(1), np.random.default_rng(2)
    best = Best()
    with np.errstate(all="ignore"):
        for epoch in range(1, epochs + 1):
            with best:
                loss = _run_epoch(net, optimizer, X, y, batch_size, shuffle_rng, dropout_rng, epoch)
    assert np.isfinite(loss)
    return best


def torch_epoch(X: np.ndarray, y: np.ndarray, batch_size: int, epochs: int = 3) -> Best | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Dropout(DROPOUT),
        torch.nn.Linear(256, 128), torch.nn.ReLU(), torch.nn.Dropout(DROPOUT),
        torch.nn.Linear(128, 10),
    )  # fmt: skip
    optimizer = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=L2)
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    net.train()
    best = Best()
    for _ in range(epochs):
        with best:
            order = torch.randperm(len(Xt))
            for start in range(0, len(Xt), batch_size):
                idx = order[start : start + batch_size]
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(net(Xt[idx]), yt[idx])
                loss.backward()
                optimizer.step()
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 128, 512], help="batch sizes to time")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per measurement (best is kept)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    args = parser.parse_args()

    env = {k: os.environ.get(k, "<unset>") for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    X, y, source = load_data()
    with threadpool_limits(1):
        blas = [(i["internal_api"], i.get("architecture"), i["num_threads"], i["version"]) for i in threadpool_info()]
        print(f"env: {env}")
        print(f"BLAS (api, kernel, threads, version): {blas}")
        print(f"data: {source} {X.shape} {X.dtype}")
        peak, peak_cpu, rates = gemm_peak()
        for name, (rate, rate_cpu) in rates.items():
            print(f"  GEMM {name:30s} {rate:6.1f} GFLOP/s wall  {rate_cpu:6.1f} cpu")
        per_sample = flops_per_sample()
        epoch_flops = per_sample * N_TRAIN / 1e9
        print(f"GEMM peak (best of the above): {peak:.1f} GFLOP/s wall, {peak_cpu:.1f} cpu, single thread")
        print(f"FLOPs per sample: fwd 2*{sum(a * b for a, b in zip(WIDTHS[:-1], WIDTHS[1:]))} + dW (same) "
              f"+ dX for layers 2-3 = {per_sample:,}; per epoch {epoch_flops:.2f} GFLOP "
              f"-> {epoch_flops / peak:.3f} s at peak")  # fmt: skip
        print("times in s, best of", args.epochs, "epochs; [wall | thread cpu]")
        print(f"{'batch':>5} {'ours':>15} {'torch':>15} {'ours/torch':>13} {'GFLOP/s':>13} {'% of peak':>13}")
        for batch_size in args.batch_sizes:
            ours = ours_epoch(X, y, batch_size, args.epochs)
            theirs = None if args.no_torch else torch_epoch(X, y, batch_size, args.epochs)
            t_ours = f"{ours.wall:7.3f} {ours.cpu:7.3f}"
            t_theirs = f"{theirs.wall:7.3f} {theirs.cpu:7.3f}" if theirs else f"{'n/a':>15}"
            ratio = f"{ours.wall / theirs.wall:6.2f} {ours.cpu / theirs.cpu:6.2f}" if theirs else f"{'n/a':>13}"
            rate = f"{epoch_flops / ours.wall:6.1f} {epoch_flops / ours.cpu:6.1f}"
            frac = f"{100 * epoch_flops / ours.wall / peak:5.1f}% {100 * epoch_flops / ours.cpu / peak_cpu:5.1f}%"
            print(f"{batch_size:5d} {t_ours} {t_theirs} {ratio} {rate} {frac}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
