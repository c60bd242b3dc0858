"""``--budget``: the job planned in time from costs measured on this machine.

Run in the coordinator's process before the study is created (the probe and
the plan) and while it runs (the deadlines, the final ensemble's size); the
readers show the stored plan. Imports the study contract and ``model`` only.
"""
