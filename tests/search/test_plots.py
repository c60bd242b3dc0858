"""search.plots writes readable PNGs from a real SQLite study."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial
from PIL import Image

from search.errors import SearchError
from search.readers.plots import bin_parameter, default_out_dir, make_plots
from search.study import keys

SPACE = {
    "learning_rate": {"low": 1e-4, "high": 1.0, "log": True, "zero": False},
    "batch_size": [16, 64, 256],
    "l2": {"low": 1e-6, "high": 0.1, "log": True, "zero": True},
    "dropout": {"low": 0.0, "high": 0.6, "log": False, "zero": False},
    "activation": ["relu", "tanh"],
    "n_layers": {"low": 1, "high": 3, "log": False},
    "units": {"low": 16, "high": 1024, "log": True},
    "momentum": {"low": 0.0, "high": 0.99, "log": False, "zero": False},
}


def build(path: Path, name: str = "s", fixed: dict | None = None, n: int = 12) -> str:
    """``n`` complete trials plus one pruned, one diverged and one failed; ``fixed`` params left out."""
    url = f"sqlite:///{path}"
    study = optuna.create_study(storage=url, study_name=name, direction="minimize")
    space = SPACE | (fixed or {})
    study.set_user_attr(keys.SPEC, json.dumps({"name": name, "space": space}))
    rng = np.random.default_rng(0)
    for i in range(n + 3):
        depth = int(rng.integers(1, 4))
        params = {"learning_rate": float(10 ** rng.uniform(-4, 0)), "batch_size": int(rng.choice([16, 64, 256])),
                  "l2_on": bool(i % 2), "dropout": float(rng.uniform(0, 0.6)),
                  "activation": str(rng.choice(["relu", "tanh"])), "n_layers": depth,
                  "momentum": float(rng.uniform(0, 0.99))}
        if params["l2_on"]:
            params["l2"] = float(10 ** rng.uniform(-6, -1))
        params |= {f"units_l{k}": int(2 ** rng.integers(4, 11)) for k in range(depth)}
        params = {k: v for k, v in params.items() if k not in (fixed or {})}
        dists = {k: FloatDistribution(1e-4, 1.0, log=True) if k == "learning_rate"
                 else CategoricalDistribution([16, 64, 256]) if k == "batch_size"
                 else CategoricalDistribution([True, False]) if k == "l2_on"
                 else FloatDistribution(1e-6, 0.1, log=True) if k == "l2"
                 else CategoricalDistribution(["relu", "tanh"]) if k == "activation"
                 else IntDistribution(1, 3) if k == "n_layers"
                 else IntDistribution(16, 1024, log=True) if k.startswith("units_l")
                 else FloatDistribution(0.0, 0.99 if k == "momentum" else 0.6) for k in params}
        curve = [0.1 + rng.uniform(0.5, 2) / e for e in range(1, 7)]
        state, value, attrs = TrialState.COMPLETE, min(curve), {"outcome": "complete", "val_accuracy": 0.9}
        if i == n:
            state, value, curve, attrs = TrialState.PRUNED, curve[2], curve[:3], {"outcome": "pruned"}
        elif i == n + 1:
            state, value, curve, attrs = TrialState.PRUNED, None, [2.0, math.nan], {"outcome": "diverged"}
        elif i == n + 2:
            state, value, curve, attrs = TrialState.FAIL, None, [], {"stop_reason": "boom"}
        study.add_trial(create_trial(state=state, value=value, params=params, distributions=dists,
                                     user_attrs=attrs, intermediate_values=dict(enumerate(curve, 1))))
    return url


EXPECTED = ["heatmap_learning_rate_x_batch_size.png", "heatmap_l2_x_dropout.png",
            "heatmap_activation_x_n_layers.png", "heatmap_learning_rate_x_momentum.png",
            "heatmap_units_l0_x_n_layers.png", "curves.png", "history.png"]


def test_make_plots_writes_every_png_beside_the_database(tmp_path: Path) -> None:
    url = build(tmp_path / "s.db")
    paths = make_plots("s", url)
    assert [p.name for p in paths] == EXPECTED
    assert all(p.parent == tmp_path / "s-plots" for p in paths)
    for p in paths:
        with Image.open(p) as image:
            image.load()  # decodes every pixel: a truncated or corrupt file raises here
            width, height = image.size
        assert image.format == "PNG" and width >= 400 and height >= 300, (p.name, image.size)


def test_a_parameter_fixed_by_a_preset_skips_its_heatmap_with_a_log_message(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = build(tmp_path / "f.db", name="f", fixed={"batch_size": 64, "activation": "relu"}, n=5)
    with caplog.at_level(logging.INFO, logger="search.readers.plots"):
        paths = make_plots("f", url, out_dir=tmp_path / "out")
    names = [p.name for p in paths]
    assert "heatmap_learning_rate_x_batch_size.png" not in names
    assert "heatmap_activation_x_n_layers.png" not in names
    assert "heatmap_l2_x_dropout.png" in names and "curves.png" in names
    assert "batch_size is fixed" in caplog.text
    assert all(p.parent == tmp_path / "out" for p in paths)


def test_a_study_without_finished_trials_is_a_search_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/e.db"
    optuna.create_study(storage=url, study_name="empty")
    with pytest.raises(SearchError, match="'empty' has no finished trials to plot"):
        make_plots("empty", url, out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_log_parameters_get_log_spaced_bins_and_l2_zero_its_own_bin() -> None:
    lr = bin_parameter(pd.Series([1e-4, 5e-3, 0.99]), SPACE["learning_rate"])
    assert lr.log and lr.n == 8 and lr.labels[:3] == ["1e-4", "3e-4", "1e-3"]
    assert lr.codes.tolist() == [0, 3, 7]
    l2 = bin_parameter(pd.Series([0.0, 2e-6, 0.05, np.nan]), SPACE["l2"])
    assert l2.labels[0] == "0" and l2.codes.tolist() == [0, 1, 5, -1]
    units = bin_parameter(pd.Series([16, 100, 1024], dtype="Int64"), SPACE["units"])
    assert units.labels == ["16", "32", "64", "128", "256", "512", "1024"]
    depth = bin_parameter(pd.Series([1, 3], dtype="Int64"), SPACE["n_layers"])
    assert depth.labels == ["1", "2", "3"] and depth.codes.tolist() == [0, 2]


def test_plots_of_a_server_database_default_to_a_local_folder() -> None:
    assert default_out_dir("x", "postgresql://u:p@host/db") == Path("plots") / "x"
    assert default_out_dir("x", "sqlite:///a/b/x.db") == Path("a/b/x-plots")


@pytest.mark.parametrize("task, metric, column, best", [("regression", None, "val_rmse", "min"),
                                                        ("classification", "balanced_accuracy",
                                                         "val_balanced_accuracy", "max"),
                                                        ("classification", None, "val_accuracy", "max")])
def test_a_heatmaps_first_panel_is_the_measure_the_study_is_judged_by(
        tmp_path: Path, task: str, metric: str | None, column: str, best: str) -> None:
    from search.readers.frames import trials_frame
    from search.readers.plots import heatmap_figure
    from search.study.metrics import shown

    url = build(tmp_path / "m.db", name="m")
    study = optuna.load_study(study_name="m", storage=url)
    study.set_user_attr(keys.SPEC, json.dumps({"name": "m", "space": SPACE, "task": task, "metric": metric}))
    df = trials_frame(study.get_trials(), SPACE)
    df = df[df["state"] == "COMPLETE"].reset_index(drop=True)
    df[column] = np.linspace(1.0, 2.0, len(df))  # a score per trial: the panel shows each cell's best of them
    measure = shown(task, metric)[0]
    fig = heatmap_figure(df, "activation", "n_layers", SPACE, "m", measure)
    first = fig.axes[0]
    assert first.get_title().startswith(f"best {column.replace('_', ' ', 1)} ")
    cells = df.groupby(["n_layers", "activation"])[column].agg(best)
    shown_numbers = sorted(float(t.get_text().split("\n")[0]) for t in first.texts if "n=" in t.get_text())
    assert shown_numbers == pytest.approx(sorted(cells.round(2)), abs=0.006)
