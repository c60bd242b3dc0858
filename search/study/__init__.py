"""The stored contract every process shares: what a study is, and how it is kept.

The spec and its settings, the search space, samplers and pruners by name, the
selection rule, the finalist markers, the storage, the data a study trains on
and its record, and the winner as read from the stored trials. The
coordinator, the workers, the budget and the readers all import this package;
it imports none of them (import-linter checks it), so it loads no process
pool, no Dask and no scipy.optimize.
"""
