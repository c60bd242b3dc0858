"""The parts of ``tests/bench/bench_scale.py``, the coordinator-at-scale bench (run that file).

Split by job, in the order a trial's data flows:

- ``curves``: the recorded digits curves the virtual workers replay (``scale_curves.json``).
- ``executor``: ``SimulatedExecutor``, the coordinator side: pickles each task, takes the marks.
- ``simulator``: the one separate process that holds the K virtual workers.
- ``replay``: a task's epoch loop over a recorded curve, and run_trial's own pruning decision.
- ``shortcut``: the same median rule computed with NumPy, for the tasks not decided the real way.
- ``report``: the figures of each checkpoint's window, and how they are printed.
- ``run``: one study against the simulated workers, and its storage.
"""
