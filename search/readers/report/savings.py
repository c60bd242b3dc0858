"""What stopping trials early saved, and what it may have cost.

Why both sides: a pruner is judged by the training it skipped *and* by the good
networks it may have killed. The saving is estimated from each trial's own pace
(its training seconds per epoch run), the risk from the curves themselves: a
trial pruned while its validation loss was at or below the eventual winner's at
the same epoch was, at that moment, doing at least as well as the winner did.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# why a finished trial stopped before its epoch budget, by its recorded outcome
CAUSES = {"pruned": "pruned (the pruner)", "complete": "early stopping (patience)",
          "diverged": "diverged (non-finite loss)"}


@dataclass(frozen=True, slots=True)
class PruningStats:
    finished: int            # search trials COMPLETE or PRUNED
    epochs_run: int          # finite validation losses reported by those trials
    epochs_budget: int       # finished x the study's most epochs per trial
    seconds_spent: float     # their training seconds
    by_cause: pd.DataFrame   # cause, trials, epochs_skipped, seconds_saved


def epochs_run(curves: pd.DataFrame, numbers: pd.Series) -> pd.Series:
    """Epochs with a finite validation loss, per trial number (0 for a trial with none)."""
    finite = curves[curves["number"].isin(numbers) & np.isfinite(curves["val_loss"])]
    return finite.groupby("number").size().reindex(numbers, fill_value=0)


def pruning_stats(search: pd.DataFrame, curves: pd.DataFrame, max_epochs: int) -> PruningStats:
    """Epochs run against budget, and the seconds each way of stopping early saved.

    A trial stopped after ``e`` of ``max_epochs`` epochs in ``s`` seconds saved an
    estimated ``(max_epochs - e) * s / e`` seconds: its own epochs cost what its
    first ones did. (An upper bound for a pruned trial that early stopping
    would have ended anyway.)
    """
    done = search[search["state"].isin(("COMPLETE", "PRUNED"))]
    run = epochs_run(curves, done["number"]).to_numpy()
    # a diverged epoch was trained too: pace counts every epoch reported
    trained = curves[curves["number"].isin(done["number"])].groupby("number").size()
    trained = trained.reindex(done["number"], fill_value=0).to_numpy()
    seconds = done["seconds"].to_numpy(dtype=float, na_value=np.nan)
    pace = np.where(trained > 0, seconds / np.maximum(trained, 1), np.nan)
    skipped = np.maximum(max_epochs - run, 0)
    outcome = done["outcome"].astype(object).where(done["outcome"].notna(),
                                                   done["state"].astype(str).str.lower())
    frame = pd.DataFrame({"cause": outcome.map(lambda o: CAUSES.get(o, str(o))).to_numpy(),
                          "trials": (skipped > 0).astype(int), "epochs_skipped": skipped,
                          "seconds_saved": np.nan_to_num(skipped * pace)})
    frame = frame[frame["trials"] > 0]
    by_cause = (frame.groupby("cause", sort=False)[["trials", "epochs_skipped", "seconds_saved"]].sum()
                .reindex([c for c in CAUSES.values() if c in set(frame["cause"])]).reset_index())
    return PruningStats(finished=len(done), epochs_run=int(run.sum()), epochs_budget=len(done) * max_epochs,
                        seconds_spent=float(np.nansum(seconds)), by_cause=by_cause)


def pruned_while_ahead(search: pd.DataFrame, curves: pd.DataFrame, winner: int) -> pd.DataFrame:
    """Pruned trials whose loss at their last epoch was <= the winner's at that epoch.

    If the winner stopped before that epoch, its last loss stands in. Diverged
    trials are left out: they were stopped by their own NaN, not by a judgement.
    Returns number, epoch, val_loss, winner_loss (sorted by trial number).
    """
    columns = ["number", "epoch", "val_loss", "winner_loss"]
    ref = curves[curves["number"] == winner].set_index("epoch")["val_loss"].sort_index()
    pruned = search[(search["state"] == "PRUNED") & (search["outcome"].astype(object) != "diverged")]
    if ref.empty or pruned.empty:
        return pd.DataFrame(columns=columns)
    mine = curves[curves["number"].isin(pruned["number"]) & np.isfinite(curves["val_loss"])]
    last = mine.sort_values("epoch").groupby("number").tail(1)
    horizon = int(max(ref.index.max(), last["epoch"].max() if len(last) else 0))
    at = ref.reindex(range(1, horizon + 1)).ffill()
    last = last.assign(winner_loss=at.reindex(last["epoch"]).to_numpy())
    ahead = last[last["val_loss"] <= last["winner_loss"]]
    return ahead[columns].sort_values("number").reset_index(drop=True)
