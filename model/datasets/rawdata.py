"""What a reader hands over: a file's rows as they are, split where the file splits them.

Readers (``npzfile``, ``table``, ``imagefolder``) only parse and check; they
never scale, encode or split. ``owndata`` does that, so the statistics come
from the training split alone whatever the file's form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["RawData", "RawPart"]


@dataclass(frozen=True)
class RawPart:
    """Rows of one split: features as read, labels as read (None: an unlabelled input)."""

    X: Any  # (n, d) array, (n, H, W) / (n, C, H, W) images, or a pandas DataFrame for tables
    labels: np.ndarray | None  # (n,) of ints or strings
    names: tuple[str, ...] | None = None  # an image's file name per row, for predict's output

    def __len__(self) -> int:
        return len(self.X)


@dataclass(frozen=True)
class RawData:
    """A file's parts (``train`` always; ``val`` and ``test`` where the file gives them)."""

    parts: dict[str, RawPart]
    layout: str  # "table" (a DataFrame), "features" ((n, d) numbers) or "image"
    image_shape: tuple[int, ...] | None = None  # (H, W) or (C, H, W) for layout "image"
    notes: tuple[str, ...] = ()  # what the reader decided that a person should know
    target: str | None = None  # a table's label column
    tokens: dict[str, str] = field(default_factory=dict)  # a table's column -> the token read as a missing number

    def all_labels(self) -> np.ndarray:
        return np.concatenate([p.labels for p in self.parts.values() if p.labels is not None])
