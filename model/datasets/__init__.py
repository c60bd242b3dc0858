"""Data sets for the MLPs: official file formats in, float32 splits out.

``load_dataset(name)`` returns a ``Dataset`` with train / validation / test
arrays; names are in ``DATASETS``. Failures raise ``DatasetError`` (bad name,
option or file) or its subclass ``DatasetNotFoundError`` (files not found,
with every path tried and how to get them).
"""

from __future__ import annotations

from .dataset import Dataset, load_dataset
from .errors import DatasetError, DatasetNotFoundError
from .registry import DATASETS, NORMALIZATIONS, get_spec

__all__ = ["DATASETS", "NORMALIZATIONS", "Dataset", "DatasetError", "DatasetNotFoundError", "get_spec", "load_dataset"]
