"""``--budget``: the job planned in time from costs measured on this machine.

Run in the coordinator's process before the study is created (the probe and
the plan) and while it runs (the deadlines, the final ensemble's size); the
readers show the stored plan. Imports the study contract and ``model`` only.

- ``shares.py``: the stages' shares and the plan's fixed figures, and a stored plan in words;
  the one module the readers import (no SciPy);
- ``cost.py``: the probe, its cost model, and one network's epoch from a trial's timing;
- ``plan.py``: the plan, stage by stage, and a search trial's expected cost;
- ``deadlines.py``: when the coordinator's stages must end;
- ``leftover.py``: the stages' ends moved as trials measure the later stages, and why a job ended early;
- ``timings.py``: what a finalist run, a final network and the winner's epoch take, as this study's trials timed them;
- ``ensemble.py``: the final ensemble's size in the time left.

Nothing is imported here, so that ``import search.budget.shares`` stays light.
"""
