"""The winner's "final networks" fact: how many epochs they trained, and why that is not its best epoch.

Why a fact of its own: the winner's facts show the best epoch of its search run
("8 of 60"), and its final networks train for another number (from its
finalist runs' mean curve, or cut by a budget), which read as a contradiction
until the page says where each number comes from.
"""

from __future__ import annotations

import json

from search.readers.report.facts import StudyFacts
from search.readers.report.render import Fact
from search.study.spec import StudySpec
from search.study.winner import Winner, final_epochs_why

LABEL = "final networks"
KEY = "final-epochs"


def final_epochs_fact(f: StudyFacts, won: Winner) -> Fact | None:
    """The epochs the stored final networks trained (``keys.RETRAINED``), or would: ``best --retrain``'s.

    A budget's last stage trains fewer only when not even one network of the full epochs fits
    (``budget.ensemble.ensemble_size``). A record of another trial, or longer, is from before
    the study changed its winner or its finalists.
    """
    if not f.spec:  # not made by this tool: nothing says how it would retrain
        return None
    epochs, why = final_epochs_why(StudySpec.from_json(json.dumps(f.spec)), won)
    ran = f.retrained.get("epochs")
    if not isinstance(ran, int):
        return Fact(LABEL, f"none trained yet; `best --retrain` trains {epochs} epochs, {why}", KEY, epochs)
    if f.retrained.get("trial") != won.trial.number or ran > epochs:
        text = f"{ran} epochs, of trial {f.retrained.get('trial')} then (now {epochs}: {why})"
    elif ran < epochs:
        text = f"{ran} epochs, cut to fit what was left of the budget (in full {epochs}: {why})"
    else:
        text = f"{ran} epochs: {why}"
    return Fact(LABEL, text, KEY, ran)
