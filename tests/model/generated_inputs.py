"""Inputs as people bring them, generated: tables, ``.npz`` files and image folders, valid and damaged.

Strategies draw a whole input as plain data (names and bytes), so that
hypothesis can shrink a failure to the smallest input that shows it; ``write``
puts it on disk. Valid inputs vary in shape, types, encodings and sizes; the
damage is what happens to files on their way: truncated, bytes flipped, bytes
or members appended, names of any bytes, links (to folders, to nothing, back
to a folder above), special files (a FIFO where an image should be), and a
mode or bit depth no one expected.

Also ``tree``: a folder's entries as a comparable value (names, kinds, bytes,
link targets), without following links: "byte for byte as before".
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import stat
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

PIL = __import__("PIL.Image").Image

# --- what a folder holds -----------------------------------------------------------------------------


def tree(root: Path) -> dict[bytes, tuple]:
    """Every entry under ``root`` (links not followed): kind and content digest, or link target."""
    out: dict[bytes, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(os.fsencode(root)):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, os.fsencode(root))
            st_ = os.lstat(path)
            if stat.S_ISLNK(st_.st_mode):
                out[rel] = ("link", os.readlink(path))
            elif stat.S_ISREG(st_.st_mode):
                if rel.endswith((b"-shm",)) or (rel.endswith(b"-wal") and st_.st_size == 0):
                    continue  # SQLite's index of its log, rewritten by any reader; an empty log
                with open(path, "rb") as fh:
                    out[rel] = ("file", hashlib.sha256(fh.read()).hexdigest())
            elif stat.S_ISDIR(st_.st_mode):
                out[rel] = ("dir",)
            else:
                out[rel] = ("special", stat.S_IFMT(st_.st_mode))
    return out


# --- entries and damage --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    path: tuple[bytes, ...]  # parts under the input's folder
    kind: str  # "file", "dir", "link" (to ``target``), "fifo"
    data: bytes = b""
    target: bytes = b""  # a link's target, relative to the link's folder (or absolute)


@dataclass(frozen=True)
class Input:
    name: bytes  # the input's own name: a file (table, .npz) or a folder of images
    entries: tuple[Entry, ...] = ()  # a folder's; a file's bytes are ``data``
    data: bytes = b""
    options: dict = field(default_factory=dict)  # FileSource options (image_size, target...)
    folder: bool = False

    def write(self, home: Path) -> Path:
        root = Path(os.fsdecode(os.path.join(os.fsencode(home), self.name)))
        if not self.folder:
            root.write_bytes(self.data)
            return root
        root.mkdir()
        for e in self.entries:
            path = os.path.join(os.fsencode(root), *e.path)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if e.kind == "dir":
                os.makedirs(path, exist_ok=True)
            elif e.kind == "link":
                os.symlink(e.target, path)
            elif e.kind == "fifo":
                os.mkfifo(path)
            else:
                with open(path, "wb") as fh:
                    fh.write(e.data)
        return root


def damage(draw: st.DrawFn, data: bytes, gz: bool = False, zipped: bool = False) -> bytes:
    """The bytes as a copy, a download or a disk can leave them."""
    how = draw(st.sampled_from(["truncate", "flip", "append", "append_member", "empty", "zeros"]))
    if how == "truncate" and data:
        return data[: draw(st.integers(0, len(data) - 1))]
    if how == "flip" and data:
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(out) - 1))
            out[i] ^= draw(st.integers(1, 255))
        return bytes(out)
    if how == "append":
        return data + draw(st.binary(min_size=1, max_size=64))
    if how == "append_member":
        if gz:
            return data + gzip.compress(draw(st.binary(max_size=64)))
        if zipped:
            buffer = io.BytesIO(data)
            try:
                with warnings.catch_warnings(), zipfile.ZipFile(buffer, "a") as zf:
                    warnings.simplefilter("ignore")  # "Duplicate name": the point
                    zf.writestr(draw(st.sampled_from(["X.npy", "extra.npy", "y.npy", "notes.txt"])),
                                draw(st.binary(max_size=64)))
                return buffer.getvalue()
            except (zipfile.BadZipFile, OSError, ValueError):
                return data + data
        return data + data
    if how == "zeros":
        return bytes(len(data))
    return b""


# Half the inputs are valid by construction (what a study needs: 20 rows or more, two or three
# classes, intact bytes, and any shape, type, encoding and size that reads); the others may be anything.
rows = st.one_of(st.integers(12, 40), st.integers(0, 11))
classes_ = st.one_of(st.integers(2, 3), st.integers(1, 5))
sometimes = st.integers(0, 2).map(lambda k: k == 2)  # hypothesis tries the simplest, 0, first: intact


def pick(draw: st.DrawFn, valid: bool, good: st.SearchStrategy, anything: st.SearchStrategy) -> object:
    return draw(good if valid else anything)

names = st.one_of(
    st.sampled_from([b"a", b"b", b"cat", b"dog", b"Class 1", "café".encode(), b"x y"]),
    st.binary(min_size=1, max_size=6).filter(lambda b: b"/" not in b and b"\0" not in b and b not in (b".", b"..")),
)


# --- tables --------------------------------------------------------------------------------------------

_KINDS = ["float", "int", "text", "bool", "huge", "tiny", "holes", "token", "id"]
_ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "cp1252"]


def _column(kind: str, n: int, rng: np.random.Generator) -> list[str]:
    if kind == "float":
        return [f"{v:.4g}" for v in rng.normal(size=n)]
    if kind == "int":
        return [str(v) for v in rng.integers(-5, 50, n)]
    if kind == "text":
        return [str(v) for v in rng.choice(["red", "vert", "été", "x,y", 'q"t', "", "NA"], n)]
    if kind == "bool":
        return [str(v) for v in rng.choice(["True", "False"], n)]
    if kind == "huge":
        with np.errstate(over="ignore"):
            return [f"{v:.6g}" for v in rng.normal(size=n) * 10.0 ** rng.choice([38, 163, 305, 308])]
    if kind == "tiny":
        return [f"{v:.6g}" for v in rng.normal(size=n) * 1e-300]
    if kind == "holes":
        return [f"{v:.3f}" if rng.random() > 0.3 else "" for v in rng.normal(size=n)]
    if kind == "token":
        return [f"{v:.3f}" if rng.random() > 0.2 else "?" for v in rng.normal(size=n)]
    return [str(i) for i in range(n)]  # a row number


@st.composite
def tables(draw: st.DrawFn, valid: bool | None = None) -> Input:
    """A CSV/TSV (maybe gzipped, maybe several members) of random columns, labels, separator and encoding."""
    valid = draw(st.booleans()) if valid is None else valid
    n = pick(draw, valid, st.integers(20, 40), rows)
    good = st.lists(st.sampled_from(_KINDS[:-1]), min_size=1, max_size=4)
    kinds = pick(draw, valid, good, good | st.lists(st.sampled_from(_KINDS)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_classes = pick(draw, valid, st.integers(2, 3), classes_)
    label = draw(st.sampled_from(["int", "text", "float", "mixed"]))
    classes = {"int": [str(i) for i in range(n_classes)], "text": ["cat", "dog", "fox", "émeu"][:n_classes],
               "float": [f"{i}.5" for i in range(n_classes)], "mixed": ["1", "b", "2.0", "z"][:n_classes]}[label]
    plain = st.just([f"f{i}" for i in range(len(kinds))] + ["label"])
    header = pick(draw, valid, plain, plain | st.lists(st.text(st.characters(blacklist_characters="\0"), max_size=5),
                                                       min_size=len(kinds) + 1, max_size=len(kinds) + 1))
    columns = [_column(k, n, rng) for k in kinds] + [[classes[i % len(classes)] for i in range(n)]]
    sep = draw(st.sampled_from([",", ";", "\t", "|"]))
    text = io.StringIO()
    writer = csv.writer(text, delimiter=sep, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    writer.writerow(header)
    writer.writerows(zip(*columns))
    encoding = draw(st.sampled_from(_ENCODINGS))
    data = text.getvalue().encode(encoding, errors="replace")
    gz = draw(st.booleans())
    if gz and draw(st.booleans()):  # several members, split anywhere
        cut = draw(st.integers(0, len(data)))
        data = gzip.compress(data[:cut]) + gzip.compress(data[cut:])
    elif gz:
        data = gzip.compress(data)
    if not valid and draw(sometimes):
        data = damage(draw, data, gz=gz)
    suffix = b".tsv" if sep == "\t" and draw(st.booleans()) else b".csv"
    stem = draw(st.one_of(st.just(b"data"), names))
    return Input(stem + suffix + (b".gz" if gz else b""), data=data)


# --- .npz ----------------------------------------------------------------------------------------------

_X_TYPES = ["u1", "i2", "i8", "u8", "f2", "f4", "f8", "?", "c8", "U2", "S2", "M8[D]", "V4", "O"]
_Y_TYPES = ["i8", "u1", "f8", "f8-nan", "f8-frac", "U3", "S2", "?", "onehot", "column", "O", "c8"]


def _features(dtype: str, shape: tuple[int, ...], rng: np.random.Generator, extreme: bool) -> np.ndarray:
    if dtype == "O":
        a = np.empty(shape, dtype=object)
        a[...] = 1.0
        return a
    if dtype in ("U2", "S2"):
        return rng.choice(["a", "bc", "1"], shape).astype(dtype)
    if dtype == "M8[D]":
        return np.zeros(shape, dtype="M8[D]")
    if dtype == "V4":
        return np.zeros(shape, dtype="V4")
    if dtype == "?":
        return rng.random(shape) > 0.5
    if dtype[0] in "ui":
        info = np.iinfo(dtype)
        return rng.integers(max(info.min, -1000), min(info.max, 1000), shape, endpoint=True).astype(dtype)
    a = rng.normal(size=shape) * 10.0 ** rng.choice([0, 0, 0, 40, 163, 305])
    if extreme and a.size:
        a.flat[rng.integers(0, a.size)] = rng.choice([np.nan, np.inf, 1e300, -1e308, 7e37, 1e-310])
    with np.errstate(all="ignore"):
        return a.astype(dtype)


def _labels(kind: str, n: int, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    codes = np.arange(n) % max(n_classes, 1)
    rng.shuffle(codes)
    if kind == "f8-nan":
        y = codes.astype(np.float64)
        if n:
            y[0] = np.nan
        return y
    if kind == "f8-frac":
        return codes + 0.5
    if kind in ("U3", "S2"):
        return np.asarray([f"c{c}" for c in codes]).astype(kind)
    if kind == "?":
        return codes % 2 == 1
    if kind == "onehot":
        return np.eye(max(n_classes, 1), dtype=np.uint8)[codes]
    if kind == "column":
        return codes[:, None]
    if kind == "O":
        return np.asarray([f"c{c}" for c in codes], dtype=object)
    if kind == "c8":
        return codes.astype(np.complex64)
    return codes.astype(kind)


@st.composite
def npz_files(draw: st.DrawFn, valid: bool | None = None) -> Input:
    """An .npz in one of the key conventions (or none), of random shapes, types and labels."""
    valid = draw(st.booleans()) if valid is None else valid
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    layouts = ["X/y", "x/y", "data/target", "images/labels", "keras", "keras+val", "other"]
    layout = pick(draw, valid, st.sampled_from(layouts[:-1]), st.sampled_from(layouts))
    n = pick(draw, valid, st.integers(20, 40), rows)
    tail = draw(st.one_of(st.tuples(st.integers(1, 6)), st.tuples(st.integers(1, 6)), st.tuples(st.integers(0, 6)),
                          st.tuples(st.integers(0, 7), st.integers(0, 7)),
                          st.tuples(st.integers(0, 6), st.integers(0, 6), st.sampled_from([1, 2, 3, 4])),
                          st.tuples(st.sampled_from([1, 3]), st.integers(1, 6), st.integers(1, 6))))
    if valid and 0 in tail:
        tail = tuple(max(t, 1) for t in tail)
    if not valid and draw(st.integers(0, 9)) == 0:
        tail = ()  # one value a row: 1-D features
    x_type = pick(draw, valid, st.sampled_from(_X_TYPES[:8]), st.sampled_from(_X_TYPES))
    good_y = st.sampled_from(["i8", "u1", "f8", "U3", "S2", "?", "onehot", "column"])
    y_type = pick(draw, valid, good_y, st.sampled_from(_Y_TYPES))
    n_classes = pick(draw, valid, st.integers(2, 3), classes_)
    if valid and y_type == "?":
        n_classes = 2
    extreme = not valid and draw(sometimes)
    n_y = n + pick(draw, valid, st.just(0), st.sampled_from([0] * 8 + [-1, 1]))

    def part(m: int) -> tuple[np.ndarray, np.ndarray]:
        return _features(x_type, (m, *tail), rng, extreme), _labels(y_type, max(m + n_y - n, 0), n_classes, rng)

    arrays: dict[str, np.ndarray] = {}
    if layout.startswith("keras"):
        held = pick(draw, valid, st.integers(3 * n_classes, 12), st.integers(0, 12))
        for split, m in (("train", n), ("test", held), ("val", held)):
            if split != "val" or layout == "keras+val":
                arrays[f"x_{split}"], arrays[f"y_{split}"] = part(m)
    else:
        xk, yk = {"X/y": ("X", "y"), "x/y": ("x", "y"), "data/target": ("data", "target"),
                  "images/labels": ("images", "labels"), "other": ("features", "classes")}[layout]
        arrays[xk], arrays[yk] = part(n)
    buffer = io.BytesIO()
    (np.savez_compressed if draw(st.booleans()) else np.savez)(buffer, **arrays)
    data = buffer.getvalue()
    if not valid and draw(sometimes):
        data = damage(draw, data, zipped=True)
    return Input(draw(st.one_of(st.just(b"arrays"), names)) + b".npz", data=data)


# --- image folders -------------------------------------------------------------------------------------

_MODES = ["L", "RGB", "RGBA", "P", "1", "I;16", "I", "F", "LA", "CMYK"]
_FORMATS = {"png": "PNG", "jpg": "JPEG", "bmp": "BMP", "gif": "GIF", "tif": "TIFF", "webp": "WEBP"}


def image_bytes(mode: str, size: tuple[int, int], fmt: str, seed: int) -> bytes:
    """An image of ``mode`` and (H, W) ``size`` in ``fmt``, as that format stores it (converted where it must)."""
    rng = np.random.default_rng(seed)
    h, w = size
    img = PIL.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).convert(mode)
    buffer = io.BytesIO()
    for attempt in (mode, "RGB"):  # a format that cannot store the mode stores the image as RGB
        try:
            (img if attempt == mode else img.convert("RGB")).save(buffer, _FORMATS[fmt])
            return buffer.getvalue()
        except (OSError, ValueError, KeyError):
            buffer = io.BytesIO()
    raise AssertionError(f"cannot write {mode} as {fmt}")


@st.composite
def image_folders(draw: st.DrawFn, valid: bool | None = None) -> Input:
    """A folder of class sub-folders (or train/test splits of them) holding images of any mode and format."""
    valid = draw(st.booleans()) if valid is None else valid
    split = draw(st.sampled_from([None, None, ("train", "test"), ("train", "test", "val"), ("Train", "TEST")]))
    good = st.lists(names.filter(lambda b: not b.startswith(b".")), min_size=2, max_size=3, unique=True)
    classes = pick(draw, valid, good, good | st.lists(names, max_size=4, unique=True))
    size = st.tuples(st.integers(1, 10), st.integers(1, 10))
    sizes = pick(draw, valid, st.lists(size, min_size=1, max_size=1), st.lists(size, min_size=1, max_size=2))
    entries: list[Entry] = []
    for top in split or (None,):
        for c in classes:
            for i in range(pick(draw, valid, st.integers(4, 6), st.integers(3, 5) | st.integers(0, 2))):
                fmt = draw(st.sampled_from(["png"] * 4 + list(_FORMATS)))
                data = image_bytes(draw(st.sampled_from(_MODES)), draw(st.sampled_from(sizes)), fmt,
                                   draw(st.integers(0, 1000)))
                nested = (b"sub",) if draw(st.integers(0, 9)) == 0 else ()
                prefix = (top.encode(),) if top else ()
                entries.append(Entry((*prefix, c, *nested, b"%d." % i + fmt.encode()), "file", data))
    extras = draw(st.lists(st.sampled_from(["thumbs", "hidden", "notes", "empty_dir", "dir_png"]), max_size=3))
    for extra in extras:
        where = (entries[draw(st.integers(0, len(entries) - 1))].path[:-1] if entries else ())
        entries.append({
            "thumbs": Entry((*where, b"Thumbs.db"), "file", b"\xd0\xcf\x11\xe0" + bytes(60)),
            "hidden": Entry((*where, b".secret.png"), "file", b"not an image"),
            "notes": Entry((*where, b"notes.txt"), "file", b"where these came from"),
            "empty_dir": Entry((*where, b"empty"), "dir"),
            "dir_png": Entry((*where, b"folder.png"), "dir"),
        }[extra])
    if not valid and draw(sometimes):
        entries = _damage_folder(draw, entries)
    options = {"image_size": draw(st.sampled_from([None, None, None, (6, 6), (1, 3)]))}
    return Input(b"pics", tuple(entries), options={k: v for k, v in options.items() if v is not None}, folder=True)


def _damage_folder(draw: st.DrawFn, entries: list[Entry]) -> list[Entry]:
    files = [i for i, e in enumerate(entries) if e.kind == "file" and len(e.path) >= 2]
    how = draw(st.sampled_from(["bytes", "bytes", "link_class", "link_nowhere", "loop", "fifo", "device", "rename"]))
    if how == "bytes" and files:
        i = draw(st.sampled_from(files))
        entries[i] = Entry(entries[i].path, "file", damage(draw, entries[i].data))
    elif how == "link_class" and files:  # a class folder that is a link to another folder of images
        e = entries[draw(st.sampled_from(files))]
        entries.append(Entry((*e.path[:-2], b"linked"), "link", target=e.path[-2]))
    elif how == "link_nowhere":
        where = entries[files[0]].path[:-1] if files else (b"a",)
        entries.append(Entry((*where, b"gone.png"), "link", target=b"nowhere.png"))
    elif how == "loop" and files:
        e = entries[draw(st.sampled_from(files))]
        entries.append(Entry((*e.path[:-1], b"up"), "link", target=b"../" * (len(e.path) - 1) or b"."))
    elif how == "fifo":
        where = entries[files[0]].path[:-1] if files else (b"a",)
        entries.append(Entry((*where, b"pipe.png"), "fifo"))
    elif how == "device":
        where = entries[files[0]].path[:-1] if files else (b"a",)
        entries.append(Entry((*where, b"zero.png"), "link", target=b"/dev/zero"))
    elif how == "rename" and files:
        i = draw(st.sampled_from(files))
        entries[i] = Entry((*entries[i].path[:-1], draw(names) + b".png"), "file", entries[i].data)
    return entries


inputs = st.one_of(tables(), npz_files(), image_folders())
