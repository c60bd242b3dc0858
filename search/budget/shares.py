"""A budget's fixed figures, and a stored plan in words: the light part of ``search/budget``.

The readers (``report``) show a budgeted study's plan and know a budget's
trial ceiling; they import this module and no other of the package, so that
reading a study never loads the probe's SciPy solver (``cost.py``) nor the
planner. Everything here is a constant or reads the plan's stored form
(``Plan.to_json``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from search.study.durations import format_duration

__all__ = [
    "END_MARGIN",
    "END_SECONDS",
    "ENSEMBLE_MAX",
    "EPOCH_OVERHEAD",
    "FINAL_OVERHEAD",
    "FINAL_STORE",
    "FINALIST_ERROR",
    "FINALIST_SIZES",
    "FIDELITIES",
    "FULL_FIDELITY",
    "MARGIN",
    "REFIT_OVERHEAD",
    "SHARES",
    "STUDY_READ",
    "TARGET_TRIALS",
    "TRIAL_CEILING",
    "TRIAL_OVERHEAD",
    "WARP",
    "WARP_COST",
    "WARP_MAX_ROWS",
    "WARP_MIN_EPOCHS",
    "describe_plan",
]

# What each stage may spend of the budget; the rest is the margin for start-up, the
# storage's last writes and the estimates' error.
# The final networks' share is what a large data set's score rests on (Fashion-MNIST: a
# 2048-wide network needs 30-40 epochs of the whole training set, ~4 s each, and the
# ensemble of a few of them gained 0.3 points over one); small data leaves it unused.
SHARES: dict[str, float] = {"search": 0.5, "finalists": 0.18, "final": 0.24}
MARGIN = 1.0 - sum(SHARES.values())
# What a job keeps at its end once its later stages are re-planned from measured costs
# (``leftover.py``): less than the plan's MARGIN, which also covers the probe's error.
END_MARGIN = 0.03
END_SECONDS = 1.0  # ... and the storage's last writes and the process's exit, whatever the budget
# A finalist stage's sizes, (configurations, fresh runs of each), the first that fits wins: more
# configurations, then more runs of each (the plan's order, and the coordinator's when the stage begins).
FINALIST_SIZES: tuple[tuple[int, int], ...] = ((5, 2), (4, 2), (3, 2), (4, 1), (3, 1), (2, 1))
# A finalist stage is reserved this much more than its runs' estimates from their search trials' timings
# (on a loaded machine those varied by 10-50% either way); what it leaves goes to more fresh runs.
FINALIST_ERROR = 0.1
# The final stage's seconds besides training: its worker processes start (measured on a quiet machine
# about 1.5 s; under a load of 5 on 2 cores 5-6.5 s, spawning and importing), load the data, save
# the weights and store the scores. The least it is taken to be: the coordinator measures its own
# workers' start and the final stage is taken to need that and FINAL_STORE more.
FINAL_OVERHEAD = 2.0
FINAL_STORE = 1.0
# ... and, before it trains, it reads the study back from its storage (the winner; ``SearchCV`` also keeps
# an in-memory copy): seconds per stored trial, which grow with the trials a small table runs. Wine at
# 30 s, 2 workers (2026-12-07): SearchCV's two reads of 587 trials (winner, then the copy) took 2.2 s of
# the 2.0 s its stage was reserved besides training, leaving its refit 0.3 s (CI: one network of one
# epoch); one read took 4.5-6 ms a trial beside another job, 8.5-9.4 ms under a load of 6 on 2 cores.
# Wells' 1,488 trials of a 2-minute budget took 2.5-3.2 s a read under a load of 2 (2026-12-07), where
# 10 ms a trial reserved 14.9 s and the job ended at 86% of its budget, "every stage reached its cap".
# The service's final stage and SearchCV each read the study once (``retrain_best(read=...)``).
STUDY_READ = 6e-3
# ``SearchCV``'s refit trained in its own process, one network after another: no worker starts,
# nothing stored; only the scaler and the voting wrapper (wine, 5 networks: 0.87 s serial against
# 2.7 s on 2 fresh loky workers, 2026-12-06), so small data refits serially within a budget.
REFIT_OVERHEAD = 0.2
# Epochs a search trial may train: the plan picks the longest its share affords.
FIDELITIES: tuple[int, ...] = (3, 5, 8, 10, 15, 20, 30, 40, 60)
# What a generous plan gives a search trial: the plan's "full search" (``Plan.needed``) is
# TARGET_TRIALS trials of this many epochs.
FULL_FIDELITY = 30
# Search trials the plan wants at its chosen fidelity: TPE's 10 random start-up trials,
# then enough guided ones to learn from.
TARGET_TRIALS = 40
ENSEMBLE_MAX = 5  # the most networks of the final ensemble
# A budget without --trials: time decides the count; this ceiling only keeps it a number.
TRIAL_CEILING = 100_000
# Images get warped finalists and final networks when these train long enough: by 5-fold CV a
# warp of 1.5 over 80 epochs took digits from 0.985 to 0.995 (1: 0.992), while within 30 epochs it cost
# Fashion-MNIST 0.8-1.6 points (docs/search-quality.md). It costs a small network about as
# much as its training step: WARP_COST times the epoch.
WARP = 1.5
WARP_MIN_EPOCHS = 60
# ... and only small image sets: Fashion-MNIST's 54,000 (warped 1.5 over 120-epoch finalists and
# 59-epoch final networks under a 30-minute budget: test 0.872, against 0.904 for its preset unwarped).
WARP_MAX_ROWS = 10_000
WARP_COST = 2.0
# What a trial costs besides its training epochs, measured on wine and digits (2026-12-04):
# the pruner's report and decision after each epoch (the median over up to 200 stored
# curves), the mean over folds, and per trial the task's round trip and its storage rows.
EPOCH_OVERHEAD = 1e-3
TRIAL_OVERHEAD = 0.02


def describe_plan(plan: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, text) rows of a plan in its stored form: what was measured and what it bought.

    The run's summary shows them when the plan is made, ``report`` when it reads the study.
    """
    cost, cv, layers = plan["cost"], plan["cv"], plan["layers"]
    folds = "one holdout split" if cv == 1 else f"{cv}-fold cross-validation"
    finalists, finalist_cv, warp = plan["finalists"], plan["finalist_cv"], plan["warp"]
    return [
        (
            "plan",
            f"measured: {cost['per_row_param'] * 1e9:.3g} ns per row x weight, {cost['per_step'] * 1e3:.3g} ms per "
            f"mini-batch step; a typical network's epoch {plan['typical_epoch_seconds']:.2g} s on one worker",
        ),
        (
            "",
            f"search: {plan['epochs']} epochs a trial, about {plan['expected_trials']} trials, {folds}; widths up to "
            f"{plan['units_high']} in {'one or two layers' if layers > 1 else 'one layer'}, batches "
            f"{', '.join(map(str, plan['batches']))}, "
            + ("Adam (a table's space)" if plan.get("table") else "Nesterov momentum")
            + (", with or without learned embeddings of its numbers" if plan.get("embeddings") else ""),
        ),
        (
            "",
            f"finalists: {finalists} x {plan['finalist_repeats']} fresh runs of {plan['finalist_epochs']} epochs"
            + (f", {finalist_cv}-fold" if finalist_cv > 1 else "")
            + (f", on images warped with strength {warp}" if warp else "")
            + "; then as many final networks as the time left trains",
        ),
        (
            "",
            f"this data needs about {format_duration(plan['needed'])} for a full search ({TARGET_TRIALS} trials "
            f"of {FULL_FIDELITY} epochs)",
        ),
        *([("", plan["ended"])] if plan.get("ended") else []),  # the job's word, when it ended early
    ]
