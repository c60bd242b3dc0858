"""Readers: processes that open a study read-only and never write it.

The results as pandas frames, the plots, the report, ``best``'s description,
``predict`` with the final networks read back from their weights. The one
exception to "write nothing" is ``best --retrain`` storing its scores, and that
runs ``search/workers/final.py``, not a reader. Readers never import the
coordinator (import-linter checks it).
"""
