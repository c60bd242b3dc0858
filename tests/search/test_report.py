"""search.report: a study built so every answer is known, and the page follows the database."""

from __future__ import annotations

import base64
import datetime
import io
import json
import math
import re
import sqlite3
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial
from PIL import Image

from search.cli import main
from search.readers.report import gather, write_report
from search.readers.report.figures import pareto_front
from search.readers.report.savings import pruned_while_ahead, pruning_stats
from search.study import keys
from search.study.selection import SELECTIONS
from search.study.spec import StudySpec
from tests.conftest import finished, query, run_cli, running_cli, wait_until_finished
from tests.equipment import missing

EPOCHS = 6
T0 = datetime.datetime(2026, 1, 1, 12, 0, 0)
DISTS = {"learning_rate": FloatDistribution(1e-4, 1.0, log=True), "batch_size": CategoricalDistribution([32, 64]),
         "activation": CategoricalDistribution(["relu", "tanh"]), "n_layers": IntDistribution(1, 2),
         "units_l0": IntDistribution(16, 256, log=True)}
WINNER_CURVE = [1.0, 0.6, 0.4, 0.3, 0.25, 0.2]          # trial 0: the best complete trial


def _trial(number: int, state: TrialState, curve: list[float], *, stage: str | None = None,
           extra: dict | None = None, seconds: float = 0.6, pid: int = 100) -> optuna.trial.FrozenTrial:
    # a finalist run re-runs the parameters of the search trial it is a finalist of
    rng = np.random.default_rng((extra or {}).get("finalist_of", number))
    params = {"learning_rate": float(10 ** rng.uniform(-3, -1)), "batch_size": int(rng.choice([32, 64])),
              "activation": str(rng.choice(["relu", "tanh"])), "n_layers": 1,
              "units_l0": int(rng.choice([16, 64, 256]))}
    finite = [v for v in curve if math.isfinite(v)]
    outcome = "complete" if state == TrialState.COMPLETE else (
        "diverged" if len(finite) < len(curve) else "pruned")
    value = min(finite) if state == TrialState.COMPLETE else (finite[-1] if finite and outcome == "pruned" else None)
    attrs = {"val_accuracy": 1.0 - (min(finite) if finite else 1.0) / 2, "epochs": len(finite),
             "best_epoch": int(np.argmin(finite)) + 1 if finite else None, "seconds": seconds,
             "host": "box", "pid": pid + number % 2, "outcome": outcome, "seed": number,
             "stop_reason": f"{outcome} at epoch {len(curve)}"} | ({"stage": stage} if stage else {}) | (extra or {})
    return create_trial(state=state, value=value, params=params, distributions=DISTS, user_attrs=attrs,
                        intermediate_values=dict(enumerate(curve, 1)))


def build(path: Path | str, name: str = "known") -> str:
    """A study whose report is known: trial 0 wins; 3 and 5 are pruned while ahead of it.

    0: complete, the winner. 1, 2: complete, worse.
    3: pruned at epoch 4 with 0.28 <= the winner's 0.30 then           -> ahead
    4: pruned at epoch 4 with 0.50 >  0.30                             -> not ahead
    5: pruned at epoch 2 with exactly the winner's 0.6 ("at or below") -> ahead
    6: diverged (NaN at epoch 2), pruned without a value               -> left out
    7: failed. 8-11: finalist runs of trials 0 and 1 (two repeats each).
    """
    url = path if isinstance(path, str) else f"sqlite:///{path}"
    study = optuna.create_study(storage=url, study_name=name, direction="minimize")
    spec = json.loads(StudySpec(name=name, epochs=EPOCHS, trials=7).to_json())
    spec["space"] = {"learning_rate": {"low": 1e-4, "high": 1.0, "log": True, "zero": False},
                     "batch_size": [32, 64], "activation": ["relu", "tanh"],
                     "n_layers": {"low": 1, "high": 2, "log": False}, "units": {"low": 16, "high": 256, "log": True}}
    study.set_user_attr(keys.SPEC, json.dumps(spec))
    c, p, f = TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL
    trials = [
        _trial(0, c, WINNER_CURVE),
        _trial(1, c, [1.1, 0.7, 0.5, 0.4, 0.35, 0.33]),
        _trial(2, c, [1.2, 0.9, 0.8, 0.7, 0.65, 0.6], stage="search"),
        _trial(3, p, [0.9, 0.5, 0.35, 0.28], seconds=0.4),
        _trial(4, p, [1.5, 1.0, 0.7, 0.5], seconds=0.4),
        _trial(5, p, [1.0, 0.6], seconds=0.2),
        _trial(6, p, [2.0, math.nan], seconds=0.2),
        create_trial(state=f, user_attrs={"stop_reason": "boom"}),
    ]
    for number, (of, repeat, loss) in enumerate([(0, 1, 0.21), (0, 2, 0.23), (1, 1, 0.30), (1, 2, 0.40)], start=8):
        curve = [1.0, 0.5, loss + 0.1, loss, loss + 0.05, loss + 0.02]
        trials.append(_trial(number, c, curve, stage="finalist", extra={"finalist_of": of, "repeat": repeat}))
    study.add_trials(trials)
    study.set_user_attr("finalists", json.dumps({"after": 7, "numbers": [0, 1]}))
    return url


@pytest.fixture
def known(tmp_path: Path) -> tuple[Path, str]:
    """A fresh copy, for tests that change the database."""
    db = tmp_path / "known.db"
    return db, build(db)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """(url, html) of one report of the known study, for tests that only read."""
    tmp = tmp_path_factory.mktemp("report")
    url = build(tmp / "known.db")
    return url, write_report("known", url, tmp / "r.html").read_text()


def _keyed(html: str) -> dict[str, str]:
    """data-key -> data-value (or the cell text) of every keyed element in the page."""
    found = {}
    for m in re.finditer(r'<(td|table)[^>]*data-key="([^"]+)"(?: data-value="([^"]*)")?[^>]*>([^<]*)', html):
        found[m.group(2)] = m.group(3) if m.group(3) is not None else m.group(4)
    return found


def test_pruned_while_ahead_is_exactly_the_trials_built_to_be_ahead(shared: tuple[str, str]) -> None:
    facts = gather("known", shared[0])
    ahead = pruned_while_ahead(facts.search, facts.curves, winner=0)
    assert ahead["number"].tolist() == [3, 5]
    assert ahead["epoch"].tolist() == [4, 2]
    assert ahead["winner_loss"].tolist() == [0.3, 0.6]


def test_pruning_stats_count_epochs_and_estimate_seconds_from_each_trials_pace(shared: tuple[str, str]) -> None:
    facts = gather("known", shared[0])
    stats = pruning_stats(facts.search, facts.curves, EPOCHS)
    assert stats.finished == 7                         # finalist runs and the FAIL left out
    assert stats.epochs_run == 6 * 3 + 4 + 4 + 2 + 1   # trial 6's NaN epoch is not a finite loss
    assert stats.epochs_budget == 7 * EPOCHS
    by_cause = stats.by_cause.set_index("cause")
    # pruned: trials 3, 4 skip 2 epochs at 0.1 s/epoch; trial 5 skips 4 at 0.1 s/epoch
    assert by_cause.loc["pruned (the pruner)", "trials"] == 3
    assert by_cause.loc["pruned (the pruner)", "seconds_saved"] == pytest.approx(0.2 + 0.2 + 0.4)
    # diverged: 1 finite epoch of 6, 0.2 s over 2 epochs trained -> 5 * 0.1
    assert by_cause.loc["diverged (non-finite loss)", "seconds_saved"] == pytest.approx(0.5)


def test_pareto_front_keeps_only_points_nothing_beats() -> None:
    cost = np.array([1.0, 2.0, 3.0, 2.0, 5.0])
    gain = np.array([0.5, 0.7, 0.6, 0.8, 0.9])
    assert pareto_front(cost, gain).tolist() == [0, 3, 4]


def test_html_report_is_self_contained_and_every_image_decodes(shared: tuple[str, str]) -> None:
    html = shared[1]
    assert "<script" not in html.lower()
    assert not re.search(r'(src|href)="(https?:)?//', html)          # nothing fetched from anywhere
    images = re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,([^"]+)"', html)
    assert {"learning curves", "optimisation history", "worker timeline", "parameter importances",
            "accuracy against size and time"} <= {alt for alt, _ in images}
    for _, data in images:
        with Image.open(io.BytesIO(base64.b64decode(data))) as im:
            im.verify()
    for title in ("Summary", "The winner", "Leaderboard", "Parameter importances", "Pruning", "Worker timeline",
                  "Trade-offs", "PED-ANOVA"):
        assert title in html


def test_report_numbers_equal_sql_counts_and_follow_a_changed_database(known: tuple[Path, str],
                                                                       tmp_path: Path) -> None:
    db, url = known

    def report() -> dict[str, str]:
        return _keyed(write_report("known", url, tmp_path / "r.html").read_text())

    page = report()
    for state, n in query(db, "SELECT state, count(*) FROM trials GROUP BY state"):
        assert page[f"trials.{state}.all"] == str(n)
    assert page["best-value"] == repr(0.2) and page["winner"] == "0"      # best single trial and finalist mean
    assert page["pruned-while-ahead"] == "3,5"
    assert int(page["epochs-run"]) == 29

    # trial 4 completes with the best value (0.05); trial 2 fails; trial 0's finalist runs (8, 9) fail,
    # so trial 1 wins on its finalist mean, and its curve is made lower (0.5, 0.3, 0.2, 0.1, ...)
    with sqlite3.connect(db) as conn:
        ids = dict(conn.execute("SELECT number, trial_id FROM trials"))
        conn.execute("UPDATE trials SET state = 'COMPLETE' WHERE trial_id = ?", (ids[4],))
        conn.execute("UPDATE trial_values SET value = 0.05 WHERE trial_id = ?", (ids[4],))
        for step, loss in enumerate([0.5, 0.3, 0.2, 0.1], start=1):
            conn.execute("UPDATE trial_intermediate_values SET intermediate_value = ? WHERE trial_id = ? AND step = ?",
                         (loss, ids[1], step))
        conn.executemany("UPDATE trials SET state = 'FAIL' WHERE trial_id = ?", [(ids[n],) for n in (2, 8, 9)])
    page = report()
    for state, n in query(db, "SELECT state, count(*) FROM trials GROUP BY state"):
        assert page[f"trials.{state}.all"] == str(n)
    assert page["trials.FAIL.all"] == "4" and page["trials.PRUNED.all"] == "3"
    assert page["best-value"] == repr(0.05)
    assert page["winner"] == "1"                   # chosen on finalist means, not on the best single run
    assert int(page["epochs-run"]) == 29 - 6       # trial 2 is no longer finished
    assert page["pruned-while-ahead"] == ""        # 3 (0.28 > 0.1 at epoch 4) and 5 (0.6 > 0.3) were behind

    # a retrained test score stored by `best --retrain` (issue 9's study attr) appears next time
    optuna.load_study(study_name="known", storage=url).set_user_attr("retrained", json.dumps({
        "trial": 4, "epochs": 4, "samples": 1437, "seeds": 3, "test_accuracy": [0.97, 0.98, 0.99],
        "test_accuracy_mean": 0.98, "test_accuracy_sd": 0.01, "ensemble_accuracy": 0.985,
        "weights": [], "when": "2026-01-01T12:00:00"}))
    html = write_report("known", url, tmp_path / "r.html").read_text()
    assert _keyed(html)["test-accuracy"] == "0.98" and "0.9800 ± 0.0100" in html and "0.9850" in html


def test_finalists_are_shown_with_mean_and_sd_of_their_repeats(shared: tuple[str, str]) -> None:
    page = _keyed(shared[1])
    assert page["finalists.0.search trial"] == "0" and page["finalists.0.runs"] == "2"
    metric = SELECTIONS[StudySpec().selection].metric  # the study's objective, named by its selection rule
    assert page[f"finalists.0.{metric} mean ± sd"].startswith("0.2200 ± 0.0141")   # sd of 0.21, 0.23
    assert page["finalists.1.search trial"] == "1"
    assert "test-accuracy" not in page and "No retrained test score is stored yet" in shared[1]


def test_the_finalists_training_and_the_test_draw_are_said(known: tuple[Path, str], tmp_path: Path) -> None:
    _, url = known
    study = optuna.load_study(study_name="known", storage=url)
    html = write_report("known", url, tmp_path / "before.html").read_text()
    assert f"re-run on fresh seeds ({EPOCHS} epochs)" in html  # no folds, no warp: said as such
    spec = json.loads(study.user_attrs[keys.SPEC])
    spec |= {"finalist_epochs": 80, "finalist_cv": 3, "finalist_warp": 1.5, "test_seed": 4}
    study.set_user_attr(keys.SPEC, json.dumps(spec))
    study.set_user_attr("retrained", json.dumps({"trial": 0, "epochs": 70, "samples": 1437, "seeds": 1,
                                                 "test_accuracy": [0.99], "when": "2026-01-01T12:00:00"}))
    html = write_report("known", url, tmp_path / "after.html").read_text()
    assert "re-run on fresh seeds (80 epochs, 3-fold cross-validation, images warped with strength 1.5)" in html
    assert "Scored once on the test split, drawn with --test-seed 4 (selection used only" in html


def test_the_final_networks_epochs_are_said_beside_the_search_runs_best_epoch_with_where_they_come_from(
        known: tuple[Path, str], tmp_path: Path) -> None:
    from search.readers.winner import describe_best

    _, url = known
    # trial 0's search run was best at its last epoch; the mean of its finalist runs (8, 9:
    # 1.0, 0.5, 0.32, 0.22, 0.27, 0.24) is lowest over epochs 4-6 (smoothed_loss), so 5
    why = "the best epoch of the mean validation curve of its 2 fresh runs, 6 epochs long"

    def winner_facts() -> dict[str, str]:
        html = write_report("known", url, tmp_path / "r.html").read_text()
        return dict(re.findall(r"<tr><td>([^<]+)</td><td[^>]*>([^<]*)</td></tr>", html))

    facts = winner_facts()
    assert facts["best epoch"] == f"6 of {EPOCHS} (its search run)"
    assert facts["final networks"] == f"none trained yet; `best --retrain` trains 5 epochs, {why}"
    assert f"  best epoch           6 of {EPOCHS} (search)\n  retrain epochs       5 ({why})\n" in describe_best(
        "known", url)
    study = optuna.load_study(study_name="known", storage=url)
    for epochs, said in [(5, f"5 epochs: {why}"),
                         (3, f"3 epochs, cut to fit what was left of the budget (in full 5: {why})")]:
        study.set_user_attr("retrained", json.dumps({"trial": 0, "epochs": epochs, "samples": 1437, "seeds": 1,
                                                     "test_accuracy": [0.99], "when": "2026-01-01T12:00:00"}))
        assert winner_facts()["final networks"] == said


def test_the_winners_hidden_layers_are_counted_with_their_widths(shared: tuple[str, str]) -> None:
    # the winner, trial 0, has n_layers = 1 and units_l0 = 16: one layer of 16 units, not 16 layers
    assert "<tr><td>hidden layers</td><td>1 layer of 16 units</td></tr>" in shared[1]


def test_cli_writes_markdown_and_a_folder_of_pngs_beside_the_database(known: tuple[Path, str],
                                                                      capsys: pytest.CaptureFixture) -> None:
    db, url = known
    assert main(["report", "--study", "known", "--storage", url, "--format", "md"]) == 0
    out = Path(capsys.readouterr().out.strip())
    assert out == db.parent / "known-report.md"
    text = out.read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) >= 6 and all(link.startswith("known-report-images/") for link in links)
    for link in links:
        with Image.open(out.parent / link) as im:
            im.verify()
    assert "| state | search | finalist | all |" in text and "## Pruning" in text
    assert "python -m search run --study known" in text


def test_cli_report_of_an_unknown_study_is_one_line_naming_the_known_ones(shared: tuple[str, str],
                                                                         capsys: pytest.CaptureFixture) -> None:
    assert main(["report", "--study", "nope", "--storage", shared[0]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no study named 'nope'" in err and "known" in err


def test_report_of_a_study_with_no_finished_trial_says_so(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    study = optuna.create_study(storage=url, study_name="empty")
    study.set_user_attr(keys.SPEC, StudySpec(name="empty").to_json())
    study.add_trial(create_trial(state=TrialState.FAIL))
    html = write_report("empty", url, tmp_path / "e.html").read_text()
    assert "No search trial has completed yet." in html and "No finished search trial to plot yet." in html


@pytest.mark.slow
def test_report_of_a_live_run_reads_without_disturbing_it(db: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{db}"
    with running_cli("run", "--trials", "80", "--jobs", "2", "--study", "live", "--storage", url,
                     "--epochs", "8", "--no-progress") as proc:
        wait_until_finished(db, 10, proc)
        reports = []
        while proc.poll() is None and len(reports) < 3:
            out = run_cli("report", "--study", "live", "--storage", url, "--out", str(tmp_path / "live.html"))
            assert out.returncode == 0, out.stderr
            reports.append(_keyed((tmp_path / "live.html").read_text()))
        _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert reports, "the run ended before a report was made"
    done = [int(r["trials.COMPLETE.search"]) + int(r["trials.PRUNED.search"]) for r in reports]
    assert done == sorted(done) and 10 <= done[0] and done[-1] <= finished(db)
    assert query(db, "PRAGMA integrity_check") == [("ok",)]


@pytest.mark.slow
@pytest.mark.cluster
def test_report_reads_a_study_on_postgresql(tmp_path: Path) -> None:
    from tests.search.pg import PostgresUnavailable, start_postgres

    try:
        server = start_postgres()
    except PostgresUnavailable as exc:
        missing(f"no PostgreSQL server: {exc}")
    try:
        url = build(server.createdb("report"))
        page = _keyed(write_report("known", url, tmp_path / "pg.html").read_text())
        for state, n in server.query("report", "SELECT state, count(*) FROM trials GROUP BY state"):
            assert page[f"trials.{state}.all"] == str(n)
        assert page["best-value"] == repr(0.2) and page["pruned-while-ahead"] == "3,5"
        assert "postgresql+psycopg://search:***@" in (tmp_path / "pg.html").read_text()   # no password shown
    finally:
        server.stop()


def test_the_tradeoff_figure_of_an_error_measure_puts_the_front_on_the_lowest_errors() -> None:
    from search.readers.report.figures import tradeoff_figure

    points = pd.DataFrame({"number": [0, 1, 2, 3], "params": [100.0, 200.0, 300.0, 400.0],
                           "seconds": [1.0, 2.0, 3.0, 4.0], "score": [5.0, 3.0, 4.0, 1.0]})  # RMSE: lower is better
    fig = tradeoff_figure(points, "s", "rmse")
    assert "rmse against size and cost (down and left is better)" in fig.get_suptitle()
    assert fig.axes[0].get_ylabel() == "validation rmse"
    front = fig.axes[0].collections[1].get_offsets()  # the Pareto front's points: cheaper and lower first
    assert [tuple(p) for p in front] == [(100.0, 5.0), (200.0, 3.0), (400.0, 1.0)]
