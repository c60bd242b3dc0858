"""A folder of images, one sub-folder per class (torchvision's ``ImageFolder`` layout).

``root/<class>/<image>`` gives the rows; a root holding ``train/`` and
``test/`` (and ``val/`` or ``validation/``), each in that layout, gives its
own splits. Images are read with Pillow, grayscale or RGB as the files are
(one RGB file makes the whole set RGB), and must share one size unless
``image_size`` asks for resizing. Hidden files and files that are not
images by their suffix are skipped; a file that Pillow cannot decode is
refused by name.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .errors import DatasetError
from .filesource import available_memory
from .rawdata import RawData, RawPart

__all__ = ["GRAY_MODES", "IMAGE_SUFFIXES", "read_image", "read_image_folder"]

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
# Pillow modes read as one channel; every other mode is read as RGB.
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})
_SPLIT_FOLDERS = {"train": ("train",), "val": ("val", "validation", "valid"), "test": ("test",)}


def _is_image(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")


def _subfolders(p: Path) -> list[Path]:
    return sorted(d for d in p.iterdir() if d.is_dir() and not d.name.startswith("."))


def _class_files(root: Path) -> list[tuple[Path, str]]:
    """(image, class name) for every image of ``root/<class>/``, in name order."""
    out = []
    for folder in _subfolders(root):
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            out += [(Path(dirpath) / f, folder.name) for f in sorted(filenames) if _is_image(Path(f))]
    return out


def read_image(path: Path, size: tuple[int, int] | None) -> np.ndarray:
    """(H, W) uint8 for grayscale, (H, W, 3) for colour; a DatasetError names an undecodable file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            img = img.convert("L" if img.mode in GRAY_MODES else "RGB")
            if size is not None and img.size != (size[1], size[0]):
                img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            return np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DatasetError(f"{path}: not a readable image ({exc})") from None


def _stack(files: list[Path], size: tuple[int, int] | None, root: Path) -> np.ndarray:
    """Every image decoded (Pillow releases the GIL while decoding, so threads share the cores)."""
    first = read_image(files[0], size)
    need = 2.0 * first.nbytes * len(files) * 4  # float32 copies of every image
    if need > available_memory():
        raise DatasetError(
            f"{root}: {len(files)} images of {first.shape} need about {need / 2**30:.1f} GiB of "
            "memory; resize them smaller with --image-size or use a machine with more memory"
        )
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        images = list(pool.map(lambda f: read_image(f, size), files, chunksize=256))
    shapes: dict[tuple[int, ...], Path] = {}
    for f, im in zip(files, images):
        shapes.setdefault(im.shape[:2], f)
    if len(shapes) > 1:
        (s1, f1), (s2, f2) = list(shapes.items())[:2]
        raise DatasetError(
            f"{root}: images differ in size ({f1.relative_to(root)} is {s1[0]}x{s1[1]}, "
            f"{f2.relative_to(root)} is {s2[0]}x{s2[1]}); pass --image-size HxW to resize them"
        )
    if any(im.ndim == 3 for im in images):  # one colour image: all as RGB
        images = [im if im.ndim == 3 else np.repeat(im[:, :, None], 3, axis=2) for im in images]
        return np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2))  # (n, 3, H, W): planes per row
    return np.stack(images)  # (n, H, W)


def _part(files: list[tuple[Path, str]], size: tuple[int, int] | None, root: Path) -> RawPart:
    X = _stack([f for f, _ in files], size, root)
    return RawPart(X, np.array([c for _, c in files]), tuple(str(f.relative_to(root)) for f, _ in files))


def read_image_folder(path: str | Path, size: tuple[int, int] | None = None, labelled: bool = True) -> RawData:
    """The images of a folder; ``labelled=False`` (an input to predict) also takes a flat folder of images."""
    root = Path(path)
    if root.is_file():
        return RawData({"train": RawPart(read_image(root, size)[None], None, (root.name,))}, "image")
    subs = {d.name.lower(): d for d in _subfolders(root)}
    given = {part: next((subs[n] for n in names if n in subs), None) for part, names in _SPLIT_FOLDERS.items()}
    if given["train"] is not None and given["test"] is not None:
        splits = {part: _class_files(d) for part, d in given.items() if d is not None}
    else:
        splits = {"train": _class_files(root)}
    parts: dict[str, RawPart] = {}
    if not splits["train"] and not labelled:  # a flat folder of images to predict
        flat = sorted(f for f in root.iterdir() if f.is_file() and _is_image(f))
        if flat:
            X = _stack(flat, size, root)
            parts["train"] = RawPart(X, None, tuple(f.name for f in flat))
    for part, files in splits.items():
        if files:
            parts[part] = _part(files, size, root)
    if "train" not in parts:
        raise DatasetError(
            f"{root}: no images found; expected one sub-folder per class holding {', '.join(IMAGE_SUFFIXES)} files"
        )
    channels = {p.X.ndim for p in parts.values()}
    if len(channels) > 1:  # one split in colour, another in gray: all in colour
        parts = {
            k: RawPart(p.X if p.X.ndim == 4 else np.repeat(p.X[:, None], 3, axis=1), p.labels, p.names)
            for k, p in parts.items()
        }
    shapes = {p.X.shape[1:] for p in parts.values()}
    if len(shapes) > 1:
        raise DatasetError(f"{root}: the splits' images differ in size ({sorted(shapes)}); pass --image-size HxW")
    return RawData(parts, "image", next(iter(shapes)))
