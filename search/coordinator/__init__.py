"""The coordinator: the one process that writes a study.

``job.run_job`` is ``run`` and ``resume``: data, plan, study, coordinator and
the final networks, in that order. The coordinator asks the sampler, sends
tasks to the workers, collects results and records them (``writer``, off the
dispatch path), holding the study's ``lease`` while it runs; ``recovery`` and
``attempts`` decide what an interrupted run must re-run. Readers never import
this package (import-linter checks it).
"""
