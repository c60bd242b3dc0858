"""A file whose target is a number: the task decided from it, split at random, standardised on training rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model.datasets import DatasetError, FileSource, Preprocessing, load_file
from model.datasets.owndata import REGRESSION_DISTINCT, REGRESSION_SHARE, decide_task


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUMPY_HPSEARCH_CACHE", str(tmp_path / "cache"))


def test_numbers_with_many_distinct_values_are_regression_and_class_codes_are_not() -> None:
    rng = np.random.default_rng(0)
    assert decide_task(rng.normal(size=500) * 1e4, None, "f") == "regression"  # a price
    assert decide_task(rng.integers(20_000, 90_000, 300), None, "f") == "regression"  # a wage in whole units
    assert decide_task(np.repeat(np.arange(100), 500), None, "f") == "classification"  # CIFAR-100's codes
    assert decide_task(np.repeat(np.arange(REGRESSION_DISTINCT), 5), None, "f") == "classification"
    few = int(REGRESSION_DISTINCT / REGRESSION_SHARE) * 2  # 21 values in 840 rows: under one per 20 rows
    assert decide_task(np.arange(few) % (REGRESSION_DISTINCT + 1), None, "f") == "classification"
    assert decide_task(np.array(["a", "b"] * 50, dtype=object), None, "f") == "classification"
    assert decide_task(rng.normal(size=50), "classification", "f") == "classification"  # the user decides
    with pytest.raises(DatasetError, match="f: --task regression needs numbers in the target, got text such as 'a'"):
        decide_task(np.array(["a", "b", "1"], dtype=object), "regression", "f")


def test_a_numeric_table_is_split_at_random_and_standardised_on_its_training_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 3))
    price = 1000 + 300 * X[:, 0] + rng.normal(size=400) * 50
    path = tmp_path / "houses.csv"
    pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "price": price}).to_csv(path, index=False)
    data = load_file(FileSource(str(path)))
    assert (data.task, data.n_classes, data.y_train.dtype) == ("regression", 1, np.float32)
    mean, sd = data.target_scale
    assert abs(float(data.y_train.mean())) < 1e-5 and float(data.y_train.std()) == pytest.approx(1, abs=1e-5)
    numbers = np.concatenate([data.y_train, data.y_val, data.y_test]).astype(np.float64) * sd + mean
    np.testing.assert_allclose(np.sort(numbers), np.sort(price), rtol=1e-6)  # every row, in one split each
    record = json.loads(json.dumps(data.record))  # stored as JSON, as the study keeps it
    assert record["task"] == "regression" and record["classes"] == [] and record["target"]["distinct"] == 400
    prep = Preprocessing.from_json(record["preprocessing"])
    assert (prep.task, prep.target_mean, prep.target_scale) == ("regression", mean, sd)
    np.testing.assert_allclose(prep.decode_targets(prep.encode_targets(price[:5])), price[:5], rtol=1e-6)
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (256, 64, 80)  # 20% test, then 20% val


def test_a_stated_task_finds_the_conversion_the_target_decided(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": np.arange(200.0), "y": np.arange(200.0) ** 1.5}).to_csv(path, index=False)
    decided = load_file(FileSource(str(path)))
    stated = load_file(FileSource(str(path), task="regression"))
    assert decided.task == stated.task == "regression"
    assert len(list((tmp_path / "cache").glob("file-t.csv-*"))) == 1  # one conversion, not two
    np.testing.assert_array_equal(decided.y_test, stated.y_test)
    with pytest.raises(DatasetError, match="too few rows to stratify"):  # the user's word: 200 classes of one row
        load_file(FileSource(str(path), task="classification"))
