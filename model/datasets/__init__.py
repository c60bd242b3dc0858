"""Data sets for the MLPs: official file formats in, float32 splits out.

``load_dataset(name)`` returns a ``Dataset`` with train / validation / test
arrays; names are in ``DATASETS``. ``load_file(FileSource(path))`` does the
same for a user's own ``.npz``, table or folder of images. Failures raise ``DatasetError`` (bad name,
option or file) or its subclass ``DatasetNotFoundError`` (files not found,
with every path tried and how to get them); ``reading`` is the boundary every
reader runs behind (one line naming the file, ``ReaderDefect`` for a bug).
"""

from __future__ import annotations

from .dataset import Dataset, load_dataset
from .errors import DatasetError, DatasetNotFoundError
from .filesource import KINDS, MISSING, FileSource, parse_image_size
from .owndata import load_file, read_input, with_digest
from .preprocessing import NUMBERS, Preprocessing
from .reading import ReaderDefect, reading
from .registry import DATASETS, NORMALIZATIONS, get_spec

__all__ = [
    "DATASETS",
    "KINDS",
    "MISSING",
    "NORMALIZATIONS",
    "NUMBERS",
    "Dataset",
    "DatasetError",
    "DatasetNotFoundError",
    "FileSource",
    "Preprocessing",
    "ReaderDefect",
    "get_spec",
    "load_dataset",
    "load_file",
    "parse_image_size",
    "read_input",
    "reading",
    "with_digest",
]
