"""The recorded digits curves that the virtual workers replay instead of training.

``scale_curves.json`` (beside ``bench_scale.py``) holds 200 trials of ``python -m search run
--trials 200 --finalists 0 --pruner none`` on digits, so that every curve runs its full length
and the bench's own pruner decides where it stops. A task replays the curve whose configuration
is nearest to its own, by ``features``. Remake the file with ``bench_scale.py --record-from``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model import TrainConfig
from search.study.space import config_from_params
from search.study.storage import open_storage
from search.study.stored import load_spec

CURVES = Path(__file__).resolve().parents[1] / "scale_curves.json"
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid")


def features(config: TrainConfig) -> list[float]:
    """Where a configuration lies, for the nearest recorded curve (roughly unit scales)."""
    width = sum(config.hidden) / len(config.hidden)
    return [
        math.log10(config.learning_rate),
        math.log2(width) / 4,
        len(config.hidden) / 2,
        config.dropout * 2,
        math.log2(config.batch_size) / 4,
        config.momentum,
        math.log10(config.l2 + 1e-6) / 5,
        *(float(config.activation == a) for a in ACTIVATIONS),
    ]


def record_curves(url: str, study: str, out: Path) -> int:
    """Write the finished trials of a real study as the bench's curves; returns their number."""
    storage = open_storage(url, read_only=True)
    try:
        spec, study_id = load_spec(storage, study)
        trials = storage.get_all_trials(study_id, deepcopy=False)
    finally:
        storage.engine.dispose()
    curves = []
    for t in trials:
        if t.state.name not in ("COMPLETE", "PRUNED") or t.user_attrs.get("outcome") not in ("complete", "diverged"):
            continue
        config = config_from_params(t.params, spec.space, spec.epochs, 0)
        values = [t.intermediate_values[s] for s in sorted(t.intermediate_values)]
        curves.append(
            {
                "features": [round(f, 5) for f in features(config)],
                "values": [None if math.isnan(v) else round(v, 6) for v in values],
                "accuracies": [round(a, 6) for a in t.user_attrs["val_accuracy_curve"]],
                "train_loss": t.user_attrs.get("train_loss"),
            }
        )
    source = f"{spec.dataset}, {len(curves)} trials of {spec.epochs} epochs, pruner {spec.pruner}, seed {spec.seed}"
    out.write_text(json.dumps({"source": source, "epochs": spec.epochs, "curves": curves}, separators=(",", ":")))
    return len(curves)


@dataclass(frozen=True)
class Recorded:
    """One recorded trial: what a replay reports epoch by epoch."""

    values: tuple[float, ...]  # validation loss per epoch; NaN where the run diverged
    accuracies: tuple[float, ...]
    train_loss: float | None


def load_curves(path: Path) -> tuple[np.ndarray, list[Recorded]]:
    """The curves' features as one matrix (for a vectorised nearest search), and the curves."""
    data = json.loads(path.read_text())
    recorded = [
        Recorded(tuple(math.nan if v is None else v for v in c["values"]), tuple(c["accuracies"]), c["train_loss"])
        for c in data["curves"]
    ]
    return np.array([c["features"] for c in data["curves"]], dtype=float), recorded
