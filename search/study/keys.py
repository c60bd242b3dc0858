"""The names a study keeps in its storage: written by the coordinator, read by every reader.

Stated once, here, because they are a file format: a study stored months ago
is read with these strings, so a name may gain a constant but never change its
value. Trial attributes are Optuna user attributes of one trial; study
attributes are user attributes of the study.
"""

from __future__ import annotations

from typing import Final

# ---- trial user attributes
STAGE: Final = "stage"  # which stage ran the trial: SEARCH or FINALIST (absent in old studies: SEARCH)
SEARCH: Final = "search"
FINALIST: Final = "finalist"
STAGES: Final = (SEARCH, FINALIST)
FINALIST_OF: Final = "finalist_of"  # a finalist run: the search trial it runs again
REPEAT: Final = "repeat"  # a finalist run: 1..finalist_repeats
RETRY_OF: Final = "retry_of"  # a re-run: the number of the trial it runs again
ATTEMPT: Final = "attempt"  # a re-run: 2 for the first re-run, 3 for the next
RERUN: Final = "rerun"  # an interrupted FAIL: its parameters must run again
SEED: Final = "seed"  # the training seed (weights, shuffling, dropout masks)
# Epochs the trial actually trained (a pruned one, fewer): not the setting ``epochs``,
# the most a trial may train.
EPOCHS_RUN: Final = "epochs"
BEST_EPOCH: Final = "best_epoch"  # the epoch the selection rule chose (1-based)
VAL_ACCURACY: Final = "val_accuracy"  # at the best epoch (mean over folds)
VAL_ACCURACY_CURVE: Final = "val_accuracy_curve"  # per epoch
# A validation score at the best epoch (mean over folds): "val_" + the metric's name (search/study/metrics.py:
# val_balanced_accuracy, val_rmse, ...); accuracy's is VAL_ACCURACY, as stored since the first studies.
VAL_SCORE: Final = "val_{}"
TRAIN_LOSS: Final = "train_loss"  # the last epoch's
SECONDS: Final = "seconds"  # wall time of the task in its worker
# ... of which in its epochs (training, scoring the validation rows): the rest is the task's fixed
# cost (loading the data, building the networks), which a longer run of the same network pays once
TRAIN_SECONDS: Final = "train_seconds"
OUTCOME: Final = "outcome"  # complete | pruned | diverged | failed | NOT_STARTED
# The outcome of a search trial sampled but never sent: it could not end within the search's time
# (stored as FAIL, the one finished state Optuna gives a trial without a value)
NOT_STARTED: Final = "not started"
STOP_REASON: Final = "stop_reason"  # why it stopped, for people
HOST: Final = "host"
PID: Final = "pid"
PEAK_RSS: Final = "worker_peak_rss_mb"

# ---- study user attributes
SPEC: Final = "search_spec"  # StudySpec.to_json()
OBJECTIVE: Final = "objective"  # the selection rule, for people (optuna-dashboard shows it)
DATA_FILE: Final = "data_file"  # a file's identity and fitted preprocessing
FINALISTS: Final = "finalists"  # {"after": n search trials, "numbers": [...]}
RETRAINED: Final = "retrained"  # the last final networks' test scores and weights
# In RETRAINED: a metric's test score per network, "test_" + its name (test_rmse, ...), with "_mean" and "_sd"
# (test_accuracy, test_accuracy_mean, test_accuracy_sd: the names accuracy had from the first studies).
TEST_SCORE: Final = "test_{}"
ENSEMBLE_SCORE: Final = "ensemble_{}"  # in RETRAINED: the ensemble's test score of a metric (ensemble_accuracy, ...)
BUDGET_SPENT: Final = "budget_spent"  # seconds of its budget that its runs have used
BUDGET_PLAN: Final = "budget_plan"  # the plan it was created with (Plan.to_json)
