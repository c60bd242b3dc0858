"""``export``: rows per second of ``predict`` against onnxruntime on the exported graph, and the file's size.

    python tests/bench/bench_export.py [--trials 4] [--epochs 5] [--seeds 3] [--layers 2] [--units 256] [--keep DIR]

Two studies, each searched (``--trials``, ``--epochs``, no finalists; the
networks' shape fixed by ``--layers`` and ``--units``, so that the figures are
of networks of a known size) and retrained (``best --retrain --seeds``), then
exported:

- a table of 12,500 rows: 16 numeric columns (5% of their cells missing) and 3
  text columns, the class drawn from them (``make_classification``);
- Fashion-MNIST as raw images: an ``.npz`` of 12,000 training images (uint8,
  28 x 28) and the 10,000 ``t10k`` images as its test split; from
  /usr/share/datasets/fashion-mnist (``apt-get install dataset-fashion-mnist``).

On 10,000 raw rows of each (the table's first 10,000; the t10k images), one
thread for both (threadpoolctl's BLAS limit; onnxruntime's intra- and inter-op
threads at 1), best of 5:

- ``predict``: ``load_final_networks(...).predict_proba(X)``, the arithmetic of
  ``python -m search predict`` without reading the input file or writing the CSV;
- onnxruntime: ``session.run`` on the same rows as the graph's inputs
  (preprocessing included in both);
- the same, one row per call (1,000 calls): a service answering requests.

And the size of the ``.onnx`` file against the ``.npz`` weights of the networks.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import onnxruntime as ort  # noqa: E402

import search  # noqa: E402

FASHION = Path("/usr/share/datasets/fashion-mnist")


def idx(path: Path) -> np.ndarray:
    """An idx file's array (the header's dimensions, then the bytes)."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def table(n: int = 12_500) -> pd.DataFrame:
    from sklearn.datasets import make_classification

    X, y = make_classification(n, 19, n_informative=10, n_classes=4, random_state=0)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(X[:, :16], columns=[f"x{j}" for j in range(16)])
    frame = frame.mask(rng.random(frame.shape) < 0.05)  # missing cells
    for j, name in enumerate(("colour", "size", "shop")):  # text from a number: an informative category
        bins = np.quantile(X[:, 16 + j], [0.2, 0.4, 0.6, 0.8])
        frame[name] = np.array(["a", "b", "c", "d", "e"], dtype=object)[np.digitize(X[:, 16 + j], bins)]
    frame["class"] = np.array(["north", "east", "south", "west"])[y]
    return frame


def best_of(fn: Callable[[], object], repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def feeds(session: ort.InferenceSession, X: object) -> dict[str, np.ndarray]:
    if isinstance(X, pd.DataFrame):
        return {
            i.name: X[i.name].fillna("").astype(str).to_numpy(object)
            if i.type == "tensor(string)"
            else X[i.name].to_numpy(np.float32)
            for i in session.get_inputs()
        }
    return {session.get_inputs()[0].name: np.asarray(X, np.float32)}


def one_row(X: object, i: int) -> object:
    return X.iloc[i : i + 1] if isinstance(X, pd.DataFrame) else X[i : i + 1]


def measure(name: str, data: str, X: object, tmp: Path, args: argparse.Namespace) -> dict[str, object]:
    url = f"sqlite:///{tmp / name}.db"
    started = time.perf_counter()
    study = search.run(data, study=name, storage=url, trials=args.trials, epochs=args.epochs, finalists=0,
                       space={"n_layers": args.layers, "units": args.units}, progress=False)  # fmt: skip
    final = study.retrain(seeds=args.seeds, out=tmp / f"{name}.npz")
    searched = time.perf_counter() - started
    path = study.export(tmp / f"{name}.onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    n = len(X)
    with threadpool_limits(1):
        inputs = feeds(session, X)
        p_predict = final.predict_proba(X, unseen="ignore")
        p_onnx = session.run(["probabilities"], inputs)[0]
        t_predict = best_of(lambda: final.predict_proba(X, unseen="ignore"))
        t_onnx = best_of(lambda: session.run(None, inputs))
        rows = [one_row(X, i) for i in range(1000)]
        row_feeds = [feeds(session, r) for r in rows]
        t_predict_1 = best_of(lambda: [final.predict_proba(r, unseen="ignore") for r in rows], 2)
        t_onnx_1 = best_of(lambda: [session.run(None, f) for f in row_feeds], 2)
    weights = sum(os.path.getsize(p) for p in final.record["weights"])
    return {
        "name": name,
        "networks": ", ".join(repr(net).split(",")[0].removeprefix("Network(") for net in final.networks),
        "search + retrain s": round(searched, 1),
        "max |p diff|": float(np.abs(p_predict - p_onnx).max()),
        "same labels": bool((p_predict.argmax(1) == p_onnx.argmax(1)).all()),
        "predict rows/s": round(n / t_predict),
        "onnxruntime rows/s": round(n / t_onnx),
        "predict 1-row calls/s": round(1000 / t_predict_1),
        "onnxruntime 1-row calls/s": round(1000 / t_onnx_1),
        "onnx kB": round(path.stat().st_size / 1e3, 1),
        "npz weights kB": round(weights / 1e3, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4, help="search trials per study")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per trial")
    parser.add_argument("--seeds", type=int, default=3, help="final networks per study")
    parser.add_argument("--layers", type=int, default=2, help="hidden layers of every network")
    parser.add_argument("--units", type=int, default=256, help="units of every hidden layer")
    parser.add_argument("--keep", metavar="DIR", help="keep the studies and files here (default: a temporary folder)")
    args = parser.parse_args()
    tmp = Path(args.keep or tempfile.mkdtemp(prefix="bench_export_"))
    tmp.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("NUMPY_HPSEARCH_CACHE", str(tmp / "cache"))
    results = []
    try:
        frame = table()
        frame.to_csv(tmp / "table.csv", index=False)
        results.append(measure("table", str(tmp / "table.csv"), frame.iloc[:10_000].drop(columns="class"), tmp, args))
        if FASHION.is_dir():
            train, labels = idx(FASHION / "train-images-idx3-ubyte.gz"), idx(FASHION / "train-labels-idx1-ubyte.gz")
            test, test_labels = idx(FASHION / "t10k-images-idx3-ubyte.gz"), idx(FASHION / "t10k-labels-idx1-ubyte.gz")
            np.savez(tmp / "fashion.npz", x_train=train[:12_000], y_train=labels[:12_000], x_test=test,
                     y_test=test_labels)  # fmt: skip
            results.append(measure("fashion", str(tmp / "fashion.npz"), test, tmp, args))
        else:
            print(f"{FASHION} not found (apt-get install dataset-fashion-mnist): the image half is skipped")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"onnxruntime {ort.__version__}, numpy {np.__version__}, one thread each")
    names = [r["name"] for r in results]
    print("| | " + " | ".join(map(str, names)) + " |\n|---|" + "---|" * len(names))
    for key in list(results[0])[1:] if results else []:
        print(f"| {key} | " + " | ".join(str(r[key]) for r in results) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
