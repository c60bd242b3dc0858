"""search.results on a real SQLite study laid out the way the coordinator writes it."""

from __future__ import annotations

import datetime
import json
import math
import sqlite3
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from search.errors import SearchError
from search.readers.results import format_table, leaderboard, load_curves, load_results
from search.study import keys

STUDY = "demo"
SPACE = {
    "learning_rate": {"low": 1e-4, "high": 1.0, "log": True, "zero": False},
    "batch_size": [16, 32, 64, 128, 256, 512],
    "l2": {"low": 1e-6, "high": 0.1, "log": True, "zero": True},
    "dropout": {"low": 0.0, "high": 0.6, "log": False, "zero": False},
    "activation": ["relu", "leaky_relu", "tanh", "sigmoid"],
    "n_layers": {"low": 1, "high": 4, "log": False},
    "units": {"low": 16, "high": 1024, "log": True},
    "momentum": {"low": 0.0, "high": 0.99, "log": False, "zero": False},
}
DISTS = {
    "learning_rate": FloatDistribution(1e-4, 1.0, log=True),
    "batch_size": CategoricalDistribution(SPACE["batch_size"]),
    "l2_on": CategoricalDistribution([True, False]),
    "l2": FloatDistribution(1e-6, 0.1, log=True),
    "dropout": FloatDistribution(0.0, 0.6),
    "activation": CategoricalDistribution(SPACE["activation"]),
    "n_layers": IntDistribution(1, 4),
    "momentum": FloatDistribution(0.0, 0.99),
}
UNITS = IntDistribution(16, 1024, log=True)


def _params(rng: np.random.Generator, l2_on: bool) -> tuple[dict, dict]:
    n_layers = int(rng.integers(1, 5))
    params = {
        "learning_rate": float(10 ** rng.uniform(-4, 0)), "batch_size": int(rng.choice(SPACE["batch_size"])),
        "l2_on": l2_on, "dropout": float(rng.uniform(0, 0.6)),
        "activation": str(rng.choice(SPACE["activation"])), "n_layers": n_layers,
        "momentum": float(rng.uniform(0, 0.99)),
    }
    if l2_on:
        params["l2"] = float(10 ** rng.uniform(-6, -1))
    params |= {f"units_l{i}": int(2 ** rng.integers(4, 11)) for i in range(n_layers)}
    dists = {k: DISTS.get(k, UNITS) for k in params}
    return params, dists


def build_study(path: Path, n_complete: int = 24, seed: int = 0) -> str:
    """A study with COMPLETE, PRUNED, diverged (NaN), FAIL and retried trials; returns its URL."""
    url = f"sqlite:///{path}"
    study = optuna.create_study(storage=url, study_name=STUDY, direction="minimize")
    spec = {"name": STUDY, "dataset": "digits", "trials": 200, "epochs": 8, "sampler": "tpe",
            "pruner": "median", "seed": 0, "space": SPACE}
    study.set_user_attr(keys.SPEC, json.dumps(spec, sort_keys=True))
    study.set_user_attr("objective", "best validation loss (cross-entropy)")
    rng = np.random.default_rng(seed)
    start = datetime.datetime(2024, 5, 1, 12, 0, 0)
    for n in range(n_complete + 4):
        params, dists = _params(rng, l2_on=n % 3 != 0)
        kind = "complete" if n < n_complete else ("pruned", "diverged", "fail", "retry")[n - n_complete]
        floor = 0.05 + 2 * abs(math.log10(params["learning_rate"]) + 1.5) / 3
        curve = [floor + 2.0 / (e + 1) for e in range(8)]
        attrs = {"seed": n, "host": "box", "pid": 100 + n, "seconds": 0.5 + n / 10}
        state, value, inter = TrialState.COMPLETE, min(curve), curve
        if kind in ("complete", "retry"):
            attrs |= {"outcome": "complete", "val_accuracy": 1 - min(curve) / 3, "best_epoch": 8,
                      "epochs": 8, "train_loss": min(curve) * 0.9, "stop_reason": "completed"}
            if kind == "retry":
                attrs["retry_of"] = n - 1
        elif kind == "pruned":
            state, value, inter = TrialState.PRUNED, curve[3], curve[:4]
            attrs |= {"outcome": "pruned", "val_accuracy": 0.4, "best_epoch": 4, "epochs": 4,
                      "train_loss": 1.0, "stop_reason": "pruned at epoch 4"}
        elif kind == "diverged":
            state, value, inter = TrialState.PRUNED, None, [2.5, 3.0, math.nan]
            attrs |= {"outcome": "diverged", "val_accuracy": 0.1, "best_epoch": 1, "epochs": 2,
                      "train_loss": math.inf, "stop_reason": "non-finite training loss at epoch 3"}
        else:
            state, value, inter = TrialState.FAIL, None, []
            attrs = {"stop_reason": "ValueError: boom"}
        study.add_trial(create_trial(
            state=state, value=value, params=params, distributions=dists, user_attrs=attrs,
            intermediate_values=dict(enumerate(inter, start=1)),
        ))
    # add_trial stamps the clock; give the trials known times so durations are checkable
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE trials SET datetime_start = ?, datetime_complete = ?",
                     (start.isoformat(" "), (start + datetime.timedelta(seconds=3)).isoformat(" ")))
    conn.close()
    return url


@pytest.fixture(scope="module")
def study_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_study(tmp_path_factory.mktemp("db") / "s.db")


def test_one_row_per_trial_in_number_order_with_typed_columns(study_url: str) -> None:
    df = load_results(STUDY, study_url)
    assert len(df) == 28
    assert df["number"].tolist() == list(range(28))
    assert df["state"].value_counts().to_dict()["COMPLETE"] == 25
    assert isinstance(df["state"].dtype, pd.CategoricalDtype)
    assert isinstance(df["activation"].dtype, pd.CategoricalDtype)
    assert list(df["activation"].cat.categories) == SPACE["activation"]
    assert isinstance(df["outcome"].dtype, pd.CategoricalDtype)
    for col in ("value", "val_accuracy", "seconds", "learning_rate", "l2", "dropout", "momentum", "duration_s"):
        assert df[col].dtype == "float64", col
    for col in ("epochs", "best_epoch", "pid", "seed", "retry_of", "n_layers", "batch_size", "units_l0"):
        assert df[col].dtype == "Int64", col
    assert pd.api.types.is_datetime64_any_dtype(df["started"])
    assert df["duration_s"].dropna().eq(3.0).all()
    assert not any(c.startswith("params_") for c in df.columns)


def test_missing_values_are_nan_or_na_not_none(study_url: str) -> None:
    df = load_results(STUDY, study_url).set_index("number")
    fail, diverged, retry = df.loc[26], df.loc[25], df.loc[27]
    assert fail["state"] == "FAIL" and math.isnan(fail["value"]) and pd.isna(fail["epochs"])
    assert fail["stop_reason"] == "ValueError: boom"
    assert diverged["outcome"] == "diverged" and math.isnan(diverged["value"])
    assert retry["retry_of"] == 26
    assert df["retry_of"].isna().sum() == 27


def test_l2_is_zero_where_its_switch_was_off(study_url: str) -> None:
    df = load_results(STUDY, study_url)
    off = df["l2_on"] == False  # noqa: E712  (a nullable boolean column)
    assert off.sum() == 10
    assert (df.loc[off, "l2"] == 0.0).all()
    assert (df.loc[~off, "l2"] > 0).all()


def test_hidden_spells_the_layer_widths_in_order(study_url: str) -> None:
    df = load_results(STUDY, study_url)
    for _, row in df.iterrows():
        widths = [str(int(row[f"units_l{i}"])) for i in range(int(row["n_layers"]))]
        assert row["hidden"] == "-".join(widths)
    assert df["hidden"].str.count("-").add(1).eq(df["n_layers"]).all()


def test_layers_text_counts_the_layers_and_gives_their_widths_not_one_width_as_a_count() -> None:
    from search.readers.frames import layers_text

    assert layers_text("46") == "1 layer of 46 units"
    assert layers_text("256-128") == "2 layers of 256, 128 units"
    assert layers_text(pd.NA) == layers_text(None) == "-"


def test_curves_are_long_with_the_diverged_epoch_kept_as_nan(study_url: str) -> None:
    curves = load_curves(STUDY, study_url)
    assert list(curves.columns) == ["number", "epoch", "val_loss", "state"]
    assert len(curves) == 25 * 8 + 4 + 3
    assert curves.groupby("number")["epoch"].min().eq(1).all()
    diverged = curves[curves["number"] == 25]
    assert diverged["epoch"].tolist() == [1, 2, 3] and math.isnan(diverged["val_loss"].iloc[-1])
    assert 26 not in set(curves["number"])  # the FAIL trial has no curve


def test_leaderboard_puts_complete_trials_first_best_first(study_url: str) -> None:
    board = leaderboard(load_results(STUDY, study_url), top=30)
    assert len(board) == 27  # every finished trial; FAIL left out
    assert (board["state"].iloc[:25] == "COMPLETE").all()
    assert board["value"].iloc[:25].is_monotonic_increasing
    assert board["number"].iloc[-1] == 25  # the diverged trial, with no value, is last
    assert list(board.columns)[:3] == ["number", "val_accuracy", "value"]  # the measure first, then the objective
    text = format_table(leaderboard(load_results(STUDY, study_url), top=3))
    assert len(text.splitlines()) == 4 and "learning_rate" in text and "None" not in text
    with pytest.raises(SearchError, match="top=0"):
        leaderboard(board, top=0)


def test_an_unknown_study_names_the_studies_that_exist(study_url: str) -> None:
    with pytest.raises(SearchError, match=r"no study named 'nope'.*studies here: demo"):
        load_results("nope", study_url)


def test_a_missing_database_is_a_search_error(tmp_path: Path) -> None:
    with pytest.raises(SearchError):
        load_results(STUDY, f"sqlite:///{tmp_path}/absent.db")


def test_reading_does_not_wait_for_a_writer_holding_a_transaction(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    url = build_study(path, n_complete=6)
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO trials (number, study_id, state, datetime_start) "
                       "VALUES (99, 1, 'RUNNING', '2024-05-01 12:00:00')")
        t0 = time.perf_counter()
        df = load_results(STUDY, url)
        elapsed = time.perf_counter() - t0
        assert len(df) == 10  # the uncommitted trial is invisible
        assert elapsed < 30.0  # a reader that waited would wait out the 60 s busy timeout
    finally:
        writer.execute("ROLLBACK")
        writer.close()
