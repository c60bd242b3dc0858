"""The question is part of the study: the task, the user's metric and class weights, and studies stored before them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import optuna
import pytest
import sklearn.metrics as skm
from optuna.distributions import FloatDistribution, json_to_distribution
from optuna.trial import TrialState

from search.cli import main
from search.errors import SearchError
from search.readers.results import leaderboard, load_results_and_finalists
from search.readers.winner import describe_best
from search.study import finalists as fin
from search.study import keys
from search.study.metrics import METRICS, TASKS, for_task, rank_key, reported, score, shown
from search.study.spec import StudySpec, build_spec
from search.study.winner import load_winner

BEFORE = Path(__file__).parent / "data" / "studies_before_issue28.json"
DIST = {"x": FloatDistribution(0.0, 10.0)}


# ---------------------------------------------------------------- the table
def test_every_metric_is_scikit_learns_on_the_outputs_a_network_gives() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 50)
    proba = rng.dirichlet(np.ones(3), 50).astype(np.float32)
    labels = proba.argmax(axis=1)
    assert score("accuracy", y, proba) == skm.accuracy_score(y, labels)
    assert score("balanced_accuracy", y, proba) == skm.balanced_accuracy_score(y, labels)
    assert score("f1_macro", y, proba) == skm.f1_score(y, labels, average="macro")
    expected_auc = skm.roc_auc_score(y, proba / proba.sum(axis=1, keepdims=True), multi_class="ovr")
    assert score("roc_auc", y, proba) == pytest.approx(expected_auc)
    p64 = proba.astype(np.float64)
    assert score("log_loss", y, proba) == pytest.approx(skm.log_loss(y, p64 / p64.sum(axis=1, keepdims=True)))
    binary = (y > 0).astype(int)
    two = np.stack([1 - proba[:, 0], proba[:, 0]], axis=1)
    assert score("roc_auc", binary, two) == skm.roc_auc_score(binary, two[:, 1])
    truth, predicted = rng.normal(size=40) * 1000, rng.normal(size=40) * 1000
    assert score("rmse", truth, predicted) == skm.root_mean_squared_error(truth, predicted)
    assert score("mae", truth, predicted) == skm.mean_absolute_error(truth, predicted)
    assert score("r2", truth, predicted) == skm.r2_score(truth, predicted)


def test_a_fold_without_every_class_has_no_roc_auc_rather_than_an_error() -> None:
    proba = np.full((4, 3), 1 / 3)
    assert math.isnan(score("roc_auc", np.array([0, 1, 1, 0]), proba))
    assert math.isnan(score("roc_auc", np.zeros(4, dtype=int), proba[:, :2]))


def test_rank_keys_put_the_better_score_first_and_a_missing_one_last() -> None:
    assert rank_key("accuracy", 0.9) < rank_key("accuracy", 0.8)
    assert rank_key("rmse", 1.0) < rank_key("rmse", 2.0)
    assert rank_key("r2", 0.7) < rank_key("r2", 0.1)
    assert rank_key("log_loss", 0.1) < rank_key("log_loss", 0.3)
    assert rank_key("accuracy", None) == rank_key("rmse", math.nan) == math.inf


def test_each_task_reports_its_metrics_with_the_studys_first() -> None:
    assert shown("classification", None) == ("accuracy",)
    assert shown("classification", "f1_macro") == ("f1_macro", "accuracy")
    assert shown("regression", None) == ("rmse", "mae", "r2")
    assert shown("regression", "r2") == ("r2", "rmse", "mae")
    assert reported("classification", None) == ()  # accuracy comes free with the validation loss
    assert reported("classification", "roc_auc") == ("roc_auc",)
    assert set(reported("regression", "mae")) == {"rmse", "mae", "r2"}
    assert {m.task for m in METRICS.values()} == set(TASKS)


# ---------------------------------------------------------------- the spec
def test_the_task_comes_from_the_data_set_or_the_metric_and_the_weights_from_the_metric() -> None:
    digits = StudySpec(name="s")
    assert (digits.task, digits.metric, digits.class_weight, digits.metric_name) == (
        "classification", None, "none", "accuracy")
    for metric in ("balanced_accuracy", "f1_macro", "roc_auc"):
        assert StudySpec(name="s", metric=metric).class_weight == "balanced"
        assert StudySpec(name="s", metric=metric, class_weight="none").class_weight == "none"
    assert StudySpec(name="s", metric="log_loss").class_weight == "none"
    assert StudySpec(name="s", class_weight="balanced").class_weight == "balanced"


def test_a_metric_or_a_task_that_does_not_fit_is_refused_naming_what_fits() -> None:
    with pytest.raises(SearchError, match="metric rmse: digits holds classes"):
        StudySpec(name="s", metric="rmse")
    with pytest.raises(SearchError, match="task: digits holds classes"):
        StudySpec(name="s", task="regression")
    with pytest.raises(SearchError, match=r"metric must be one of accuracy, .*, got 'auc'"):
        StudySpec(name="s", metric="auc")
    with pytest.raises(SearchError, match="space: loss huber does not fit a classification study"):
        build_spec("s", None, {"space": {"loss": "huber"}})


def test_the_flags_are_checked_by_the_studyspec_fields_rule(capsys: pytest.CaptureFixture[str],
                                                            tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert main(["run", "--metric", "auc", "--storage", url]) == 2
    assert "argument --metric: must be one of accuracy, balanced_accuracy" in capsys.readouterr().err
    assert main(["run", "--class-weight", "yes", "--storage", url]) == 2
    assert "argument --class-weight: must be one of balanced, none, got 'yes'" in capsys.readouterr().err
    assert main(["run", "--task", "numbers", "--storage", url]) == 2
    assert "argument --task: must be one of classification, regression" in capsys.readouterr().err
    assert not (tmp_path / "s.db").exists()


def test_a_spec_stored_before_the_question_reads_as_classes_chosen_by_the_objective() -> None:
    stored = json.loads(StudySpec(name="s").to_json())
    for name in ("task", "metric", "class_weight"):
        del stored[name]
    spec = StudySpec.from_json(json.dumps(stored))
    assert (spec.task, spec.metric, spec.class_weight, spec.metric_name) == (
        "classification", None, "none", "accuracy")
    assert spec.settings() == StudySpec(name="s").settings()  # and a new run of it asks for the same


# ---------------------------------------------------------------- choosing by the metric
def trial(number: int, value: float | None, state: TrialState = TrialState.COMPLETE,
          **attrs: object) -> optuna.trial.FrozenTrial:
    """A trial whose configuration is that of the search trial it runs again (``finalist_of``), else its own."""
    x = float(attrs.get("finalist_of", number))  # type: ignore[arg-type]
    t = optuna.trial.create_trial(state=state, value=value if state == TrialState.COMPLETE else None,
                                  params={"x": x}, distributions=DIST, user_attrs=dict(attrs))
    t.number = number
    return t


def _scores(metric: str, better: bool) -> dict[str, float]:
    """A trial's stored scores: ``metric`` better or worse, accuracy (or the objective, for accuracy) the other way."""
    good, bad = (0.9, 0.6) if METRICS[metric].greater_is_better else (0.3, 0.8)
    attrs = {keys.VAL_SCORE.format(metric): good if better else bad}
    if metric != "accuracy" and METRICS[metric].task == "classification":
        attrs[keys.VAL_ACCURACY] = 0.7 if better else 0.95
    return attrs


@pytest.mark.parametrize("metric", list(METRICS))
def test_every_metric_chooses_the_finalists_and_the_winner_where_accuracy_or_the_objective_would_not(
    metric: str,
) -> None:
    # search trial 0 has the better objective (and accuracy); trial 1 the better score of `metric`
    search = [trial(0, 0.1, **_scores(metric, False)), trial(1, 0.2, **_scores(metric, True))]
    runs = [trial(n, v, stage=keys.FINALIST, finalist_of=of, repeat=r, **_scores(metric, of == 1))
            for n, v, of, r in ((2, 0.11, 0, 1), (3, 0.12, 0, 2), (4, 0.21, 1, 1), (5, 0.22, 1, 2))]
    trials = search + runs
    assert [t.number for t in fin.choose(trials, 2, metric)] == [1, 0]
    assert [t.number for t in fin.choose(trials, 2)] == [0, 1]  # no metric: the objective
    assert fin.winner(trials, metric) == 1
    assert fin.winner(trials) == 0
    if METRICS[metric].task == "classification" and metric != "accuracy":
        assert fin.winner(trials, "accuracy") == 0  # accuracy and the metric disagree: they pick differently
    table = fin.ranked(trials, metric)
    assert table[0].score_mean(metric) == _scores(metric, True)[keys.VAL_SCORE.format(metric)]


@pytest.mark.parametrize("metric", ["balanced_accuracy", "rmse"])
def test_the_leaderboard_ranks_by_the_metric_and_shows_it_first(metric: str) -> None:
    from search.readers.frames import trials_frame

    task = METRICS[metric].task
    trials = [trial(0, 0.1, **_scores(metric, False)), trial(1, 0.2, **_scores(metric, True))]
    df = trials_frame(trials)
    df.attrs["task"], df.attrs["metric"] = task, metric
    board = leaderboard(df)
    assert list(board["number"]) == [1, 0]
    assert list(board.columns[:2]) == ["number", keys.VAL_SCORE.format(metric)]
    df.attrs["metric"] = None
    assert list(leaderboard(df)["number"]) == [0, 1]


def test_a_finalist_with_a_diverged_run_ranks_last_by_the_metric_too() -> None:
    search = [trial(0, 0.1, val_f1_macro=0.5), trial(1, 0.2, val_f1_macro=0.6)]
    runs = [trial(2, 0.1, stage=keys.FINALIST, finalist_of=1, repeat=1, val_f1_macro=0.99),
            trial(3, None, TrialState.PRUNED, stage=keys.FINALIST, finalist_of=1, repeat=2),
            trial(4, 0.3, stage=keys.FINALIST, finalist_of=0, repeat=1, val_f1_macro=0.4)]
    assert [f.number for f in fin.ranked(search + runs, "f1_macro")] == [0, 1]


# ---------------------------------------------------------------- studies stored before
def stored_before(name: str, folder: Path) -> str:
    """Study ``name`` as the code before issue 28 stored it (tests/search/data), in a new SQLite file."""
    data = json.loads(BEFORE.read_text())[name]
    url = f"sqlite:///{folder / name}.db"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=name, storage=url)
    for key, value in data["user_attrs"].items():
        study.set_user_attr(key, value)
    dists = {k: json_to_distribution(json.dumps(v)) for k, v in data["distributions"].items()}
    study.add_trials([
        optuna.trial.create_trial(
            state=TrialState[t["state"]], value=t["value"] if t["state"] == "COMPLETE" else None, params=t["params"],
            distributions={k: dists[k] for k in t["params"]}, user_attrs=t["user_attrs"],
            intermediate_values={int(k): v for k, v in t["intermediate_values"].items()},
        )
        for t in sorted(data["trials"], key=lambda t: t["number"])
    ])
    return url


def test_a_study_stored_before_opens_as_classes_and_keeps_its_winner(tmp_path: Path) -> None:
    url = stored_before("det", tmp_path)
    spec, winner, _ = load_winner("det", url)
    assert (spec.task, spec.metric, spec.class_weight) == ("classification", None, "none")
    assert winner.trial.number == 54  # the objective's choice, as the old code made it ...
    trials = optuna.load_study(study_name="det", storage=url).get_trials()
    assert fin.winner(trials, "accuracy") == 38  # ... which accuracy would not have made
    text = describe_best("det", url)
    assert "best trial 54 of study 'det' (digits, classification)" in text
    assert "val accuracy" in text and "by the mean objective" in text
    df, finalists = load_results_and_finalists("det", url)
    assert (df.attrs["task"], df.attrs["metric"]) == ("classification", None)
    assert list(finalists["finalist_of"])[:1] == [54]
    assert list(finalists.columns[:4]) == ["finalist_of", "runs", "val_accuracy_mean", "val_accuracy_sd"]


@pytest.mark.slow
def test_a_study_stored_before_reports_and_goes_on_as_it_was(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    url = stored_before("old", tmp_path)
    assert main(["report", "--study", "old", "--storage", url, "--out", str(tmp_path / "old.md"),
                 "--format", "md"]) == 0
    report = (tmp_path / "old.md").read_text()
    assert "classification: judged by accuracy, chosen by val_loss_smoothed" in report
    assert main(["run", "--study", "old", "--trials", "22", "--storage", url, "--no-progress", "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert "22 finished" in out and "best                  trial 19: val accuracy 0.9722" in out
    spec = load_winner("old", url)[0]
    assert (spec.task, spec.metric, spec.trials) == ("classification", None, 22)


def test_the_metrics_of_a_task_are_listed_in_the_help_of_run(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for task in TASKS:
        assert ", ".join(for_task(task)) in help_text
