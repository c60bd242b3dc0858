"""A folder of images, one sub-folder per class (torchvision's ``ImageFolder`` layout).

``root/<class>/<image>`` gives the rows; a root holding ``train/`` and
``test/`` (and ``val/`` or ``validation/``), each in that layout, gives its
own splits. Images are read with Pillow, grayscale or RGB as the files are
(one RGB file makes the whole set RGB), and must share one size unless
``image_size`` asks for resizing. Hidden files and files that are not
images by their suffix are skipped (and so are not part of the digest: see
``image_files``); a file that Pillow cannot decode is refused by name.

Reading is in two passes. The first opens every image's header only: its
size and mode decide, before any pixel is decoded, whether the images agree
in size and whether their conversion fits in memory (``memory``); an image
over Pillow's ``Image.MAX_IMAGE_PIXELS`` is refused there too. The second
reads each file's bytes once, in the digest's order (``intake``), and decodes
them on a few threads (Pillow releases the GIL while decoding).
"""

from __future__ import annotations

import io
import os
import warnings
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DatasetError
from .intake import Intake, name_of, open_regular, shown, subfolders, walk
from .memory import MemoryBudget
from .rawdata import RawData, RawPart

__all__ = ["GRAY_MODES", "IMAGE_SUFFIXES", "ImageFile", "image_files", "read_image_folder"]

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
# Pillow modes read as one channel; every other mode is read as RGB.
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})
_SPLIT_FOLDERS = {"train": ("train",), "val": ("val", "validation", "valid"), "test": ("test",)}
# Bytes held per value of the stored images (H x W x channels) while they are converted:
# the decoded list and its stack (3 for colour: the planes are transposed), the training rows
# taken (1), their float32 copy and float64 deviations for the statistics (12), or later the
# float32 rows and their splits (8). Measured peak: 14 (tests/model/test_memory_ceiling.py).
_BYTES_PER_VALUE = 20
# Bytes per pixel of one image while it is decoded: Pillow's own (up to 4), the converted copy
# (up to 4) and the array made of it (up to 3), with a margin.
_DECODE_BYTES_PER_PIXEL = 12
_WORKERS = min(8, os.cpu_count() or 1)


@dataclass(frozen=True, slots=True)
class ImageFile:
    path: Path
    split: str  # "train", "val" or "test"
    label: str | None  # the class folder's name; None for a flat folder of images to predict


@dataclass(frozen=True, slots=True)
class _Header:
    size: tuple[int, int]  # (width, height), as Pillow gives it
    mode: str


def _is_image(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")


def _class_files(folder: Path, split: str) -> list[ImageFile]:
    return [ImageFile(f, split, name_of(d.name)) for d in subfolders(folder) for f in walk(d) if _is_image(f)]


def image_files(root: Path, labelled: bool = True) -> list[ImageFile]:
    """The images the reader reads, in the digest's order (a folder's files, then its sub-folders', by name).

    Files that are not images by their suffix, hidden ones, and folders outside the layout
    (a third folder beside train/ and test/) are not read, and so are not hashed either.
    ``labelled=False`` (an input to predict): a flat folder of images is read too, or one image.
    """
    if root.is_file():
        return [ImageFile(root, "train", None)]
    subs = {d.name.lower(): d for d in subfolders(root)}
    given = {part: next((subs[n] for n in names if n in subs), None) for part, names in _SPLIT_FOLDERS.items()}
    if given["train"] is not None and given["test"] is not None:
        folders = sorted(((d, part) for part, d in given.items() if d is not None), key=lambda t: t[0].name)
        files = [f for d, part in folders for f in _class_files(d, part)]
    else:
        files = _class_files(root, "train")
    if not files and not labelled:
        files = [ImageFile(f, "train", None) for f in walk(root) if f.parent == root and _is_image(f)]
    return files


def _unreadable(path: Path, exc: Exception) -> DatasetError:
    from PIL import UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError):  # its text names a file object, not the file
        return DatasetError(f"{shown(path)}: not a readable image (no format Pillow knows)")
    return DatasetError(f"{shown(path)}: not a readable image ({type(exc).__name__}: {exc})")


def _header(path: Path) -> _Header:
    """An image's size and mode from its header, without decoding a pixel."""
    from PIL import Image

    with os.fdopen(open_regular(path), "rb") as fh:
        try:
            with Image.open(fh) as img:
                return _Header(img.size, img.mode)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise DatasetError(f"{shown(path)}: refused: {exc} (Pillow's Image.MAX_IMAGE_PIXELS)") from None
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 -- Pillow raises any type on damaged bytes
            raise _unreadable(path, exc) from None


def _decode(path: Path, data: bytes, header: _Header, size: tuple[int, int] | None, gray: bool | None) -> np.ndarray:
    """(H, W) uint8 for grayscale, (H, W, 3) for colour, from the bytes that were hashed.

    ``gray``: None reads an image in its own colours; True and False make it grayscale or RGB.
    """
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            if _Header(img.size, img.mode) != header:
                raise DatasetError(f"{shown(path)}: changed while it was being read; read it again")
            img.load()
            img = img.convert("L" if (img.mode in GRAY_MODES if gray is None else gray) else "RGB")
            if size is not None and img.size != (size[1], size[0]):
                img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            return np.asarray(img, dtype=np.uint8)
    except (DatasetError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 -- Pillow raises any type on damaged bytes
        raise _unreadable(path, exc) from None


def _shape(files: list[ImageFile], headers: list[_Header], size: tuple[int, int] | None, root: Path) -> tuple[int, int]:
    """(H, W) every stored image will have; images of two sizes without ``size`` are refused by name."""
    if size is not None:
        return size
    (w, h) = headers[0].size
    for f, hd in zip(files, headers):
        if hd.size != (w, h):
            first, other = (shown(_row_name(x.path, root)) for x in (files[0], f))
            raise DatasetError(
                f"{shown(root)}: images differ in size ({first} is {h}x{w}, {other} is {hd.size[1]}x{hd.size[0]}); "
                "pass --image-size HxW to resize them"
            )
    return h, w


def _check_memory(
    files: list[ImageFile], headers: list[_Header], shape: tuple[int, int], gray: bool | None, budget: MemoryBudget
) -> None:
    colour = any(hd.mode not in GRAY_MODES for hd in headers) if gray is None else not gray
    values = len(files) * shape[0] * shape[1] * (3 if colour else 1)
    largest = max(hd.size[0] * hd.size[1] for hd in headers)
    need = values * _BYTES_PER_VALUE + _WORKERS * largest * _DECODE_BYTES_PER_PIXEL
    budget.check(
        need,
        f"converting {len(files)} images of {shape[0]}x{shape[1]}{' in colour' if colour else ''}",
        "resize them smaller with --image-size, or use a machine with more memory",
    )


def _decode_all(
    files: list[ImageFile], headers: list[_Header], size: tuple[int, int] | None, gray: bool | None, intake: Intake
) -> list[np.ndarray]:
    """Each image decoded, its bytes read (and hashed) in order; a few in flight at a time."""
    out: list[Any] = [None] * len(files)
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        pending: deque[tuple[int, Future[np.ndarray]]] = deque()
        for i, (f, hd) in enumerate(zip(files, headers)):
            data = intake.read(f.path, share=1 / (4 * _WORKERS))
            pending.append((i, pool.submit(_decode, f.path, data, hd, size, gray)))
            while len(pending) > 2 * _WORKERS:
                j, done = pending.popleft()
                out[j] = done.result()
        for j, done in pending:
            out[j] = done.result()
    return out


def _row_name(path: Path, root: Path) -> str:
    """An image's name in predict's output: its path under the folder (or its own name)."""
    return name_of(path.relative_to(root)) if path != root else name_of(root.name)


def _stack(images: list[np.ndarray]) -> np.ndarray:
    if any(im.ndim == 3 for im in images):  # one colour image: all as RGB
        images = [im if im.ndim == 3 else np.repeat(im[:, :, None], 3, axis=2) for im in images]
        return np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2))  # (n, 3, H, W): planes per row
    return np.stack(images)  # (n, H, W)


def read_image_folder(
    path: str | Path,
    size: tuple[int, int] | None = None,
    labelled: bool = True,
    intake: Intake | None = None,
    gray: bool | None = None,
) -> RawData:
    """The images of a folder; ``labelled=False`` (an input to predict) also takes a flat folder of images.

    ``gray``: None reads each image in its colours (one colour image makes all RGB); True or False
    makes every image grayscale or RGB (an input to predict, in its study's colours).
    """
    from PIL import Image

    root = Path(path)
    intake = intake if intake is not None else Intake(root)
    files = image_files(root, labelled)
    if not files:
        raise DatasetError(
            f"{shown(root)}: no images found; expected one sub-folder per class holding "
            f"{', '.join(IMAGE_SUFFIXES)} files"
        )
    with warnings.catch_warnings():  # process-wide: the decoding threads see it too
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        headers = [_header(f.path) for f in files]
        shape = _shape(files, headers, size, root)
        _check_memory(files, headers, shape, gray, intake.budget)
        images = _decode_all(files, headers, size, gray, intake)
    parts: dict[str, RawPart] = {}
    for part in ("train", "val", "test"):
        rows = [i for i, f in enumerate(files) if f.split == part]
        if rows:
            labels = None if files[rows[0]].label is None else np.array([files[i].label for i in rows], dtype=object)
            names = tuple(_row_name(files[i].path, root) for i in rows)
            parts[part] = RawPart(_stack([images[i] for i in rows]), labels, names)
    if "train" not in parts:
        raise DatasetError(f"{shown(root)}: no training images; its test split needs a train/ folder beside it")
    X0 = parts["train"].X
    if any(p.X.ndim != X0.ndim for p in parts.values()):  # one split in colour, another in gray: all in colour
        parts = {
            k: RawPart(p.X if p.X.ndim == 4 else np.repeat(p.X[:, None], 3, axis=1), p.labels, p.names)
            for k, p in parts.items()
        }
    return RawData(parts, "image", parts["train"].X.shape[1:])
