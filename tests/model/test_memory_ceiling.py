"""The memory ceiling holds: a conversion stays under it, or is refused before it gets there.

Each input is converted by ``load_file`` in a fresh process told that only
``CEILING`` bytes are available (``memory.available_memory``); the process
reports its peak resident memory above what it held before the conversion
(Linux's ``VmHWM``, reset through ``/proc/self/clear_refs`` once the readers'
imports are done), and every need the readers estimated. The inputs are
built to defeat an estimate made from a file's size: gzip files of several
members and of NUL bytes, images whose few kilobytes decode to gigabytes, an
``.npz`` whose header lies, a table whose encoding is wider than its text.

Asserted for each: the peak stays under the ceiling; and a conversion that was
accepted stayed under the largest need it estimated (the estimates are upper
bounds, which is what makes refusing on them sound).
"""

from __future__ import annotations

import gzip
import json
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import cli_env

PIL = pytest.importorskip("PIL.Image")
if not os.access("/proc/self/clear_refs", os.W_OK):  # Linux: where a process's peak memory can be reset
    pytest.skip("needs /proc/self/clear_refs to measure a conversion's peak memory", allow_module_level=True)

CEILING = 256 << 20

CONVERT = r"""
import json, sys, tempfile
from pathlib import Path
import numpy as np
import model.datasets.memory as memory
from model.datasets import DatasetError, FileSource, load_file

ceiling, path, options, warmup = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
memory.available_memory = lambda: ceiling
needs = []
check = memory.MemoryBudget.check
def recorded(self, need, what, hint):
    needs.append(need)
    return check(self, need, what, hint)
memory.MemoryBudget.check = recorded
for name in ("t.csv", "t.npz", "pics"):  # imports and first calls of each reader: not the conversion's memory
    load_file(FileSource(str(Path(warmup) / name)), cache_dir=tempfile.mkdtemp())

def status(field):
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith(field + ":"))
needs.clear()
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")  # the peak (VmHWM) starts again from here
before = status("VmRSS")
try:
    load_file(FileSource(path, **options), cache_dir=Path(path).parent / "cache")
    refused = None
except DatasetError as exc:
    refused = str(exc)
peak = status("VmHWM")
print(json.dumps({"refused": refused, "peak": peak - before, "need": max(needs, default=0)}))
"""


def convert(path: Path, warmup: Path, **options: object) -> dict:
    out = subprocess.run([sys.executable, "-c", CONVERT, str(CEILING), str(path), json.dumps(options), str(warmup)],
                         capture_output=True, text=True, env=cli_env(), timeout=600)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def warmup(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny file of each kind, converted first: the imports are not the conversion's memory."""
    home = tmp_path_factory.mktemp("warmup")
    rng = np.random.default_rng(0)
    (home / "t.csv").write_text("a,b,c,label\n" + "".join(f"{rng.normal():.3f},{i % 4},{'pq'[i % 2]},{'xyz'[i % 3]}\n"
                                                           for i in range(60)))
    np.savez(home / "t.npz", X=rng.normal(size=(60, 3)), y=np.arange(60) % 3)
    small_images(home / "pics", n=6)
    return home


def held(result: dict) -> None:
    """Under the ceiling, whatever happened; under its own estimate, if it was accepted."""
    print(f"peak {result['peak'] >> 20} MiB, estimated {int(result['need']) >> 20} MiB, refused: {result['refused']}")
    assert result["peak"] <= CEILING, result
    if result["refused"] is None:
        assert result["peak"] <= result["need"], result


def deflate_repeated(block: bytes, times: int) -> bytes:
    """A gzip member of ``block`` repeated ``times`` times, built without compressing it ``times`` times.

    After a full flush a deflate stream refers to nothing before it, so the flushed
    compression of one block can be repeated; the trailer's CRC is computed over the whole.
    """
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    one = packer.compress(block) + packer.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(times):
        crc = zlib.crc32(block, crc)
    body = one * times + b"\x03\x00"  # a final, empty block
    trailer = struct.pack("<II", crc, (len(block) * times) & 0xFFFFFFFF)
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + body + trailer


def png(width: int, height: int) -> bytes:
    """A valid grayscale PNG of zeros: a few kilobytes that decode to width x height bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte, then the pixels
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def small_images(root: Path, n: int = 3, size: int = 8) -> None:
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            PIL.fromarray(rng.integers(0, 255, (size, size), dtype=np.uint8)).save(root / c / f"{i}.png")


def npy_member(zf: zipfile.ZipFile, name: str, shape: tuple[int, ...], dtype: str, chunks: int,
               header_shape: tuple[int, ...] | None = None) -> None:
    """An .npy member of zeros written as it streams (the test never holds the array)."""
    header = {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": header_shape or shape}
    with zf.open(name, "w", force_zip64=True) as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        total = int(np.prod(shape)) * np.dtype(dtype).itemsize
        step = -(-total // chunks)
        for start in range(0, total, step):
            fh.write(bytes(min(step, total - start)))


# --- refused before the ceiling ---------------------------------------------------------------------


def test_a_gzip_whose_first_member_holds_the_rows_is_refused_within_the_ceiling(tmp_path, warmup) -> None:
    block = b"1.250,3,x\n2.500,4,y\n" * 10000
    path = tmp_path / "rows.csv.gz"
    # the header, 700 MB of rows, one row: the size field (of the last member) says 6 bytes
    path.write_bytes(gzip.compress(b"a,b,label\n") + deflate_repeated(block, 3000) + gzip.compress(b"1,2,x\n"))
    result = convert(path, warmup)
    assert result["refused"] and "decompressed" in result["refused"] and "are available" in result["refused"]
    held(result)


def test_a_gzip_of_a_gigabyte_of_nul_bytes_is_refused_within_the_ceiling(tmp_path, warmup) -> None:
    path = tmp_path / "nul.csv.gz"
    path.write_bytes(deflate_repeated(bytes(1 << 20), 1024))
    result = convert(path, warmup)
    assert result["refused"] and "memory" in result["refused"]
    held(result)


@pytest.mark.slow
def test_large_pngs_after_small_ones_are_refused_before_any_is_decoded(tmp_path, warmup) -> None:
    root = tmp_path / "pics"
    small_images(root)
    big = png(9000, 9000)
    for i in range(24):
        (root / "b" / f"z{i:02d}.png").write_bytes(big)
    result = convert(root, warmup)
    assert result["refused"] and "differ in size" in result["refused"]
    held(result)
    resized = convert(root, warmup, image_size=[8, 8])  # every one would be decoded whole before resizing
    assert resized["refused"] and "memory" in resized["refused"]
    held(resized)


def test_an_npz_whose_arrays_decompress_past_the_ceiling_is_refused_from_their_headers(tmp_path, warmup) -> None:
    path = tmp_path / "zeros.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        npy_member(zf, "X.npy", (4000, 20000), "<f8", 64)  # 640 MB of zeros
        npy_member(zf, "y.npy", (4000,), "<i8", 1)
    result = convert(path, warmup)
    assert result["refused"] and "memory" in result["refused"]
    held(result)


def test_an_npz_whose_header_claims_more_than_it_holds_is_refused(tmp_path, warmup) -> None:
    path = tmp_path / "liar.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        npy_member(zf, "X.npy", (10, 4), "<f8", 1, header_shape=(10**9, 4))
        npy_member(zf, "y.npy", (10,), "<i8", 1, header_shape=(10**9,))
    result = convert(path, warmup)
    assert result["refused"] and "damaged" in result["refused"]
    held(result)


@pytest.mark.slow
def test_a_table_whose_encoding_is_wider_than_its_text_is_refused_before_it_is_encoded(tmp_path, warmup) -> None:
    rng = np.random.default_rng(0)
    n, columns = 3000, 100
    cells = rng.integers(0, 100, (n, columns))
    lines = [",".join(f"t{j}" for j in range(columns)) + ",label"]
    lines += [",".join(f"v{v}" for v in row) + f",{'xyz'[i % 3]}" for i, row in enumerate(cells)]
    (tmp_path / "wide.csv").write_text("\n".join(lines) + "\n")  # 2 MB of text; 3000 x 10000 one-hot columns
    result = convert(tmp_path / "wide.csv", warmup)
    assert result["refused"] and "encoding it" in result["refused"]
    held(result)


# --- accepted under the ceiling, and under their own estimates -----------------------------------------


def test_a_numeric_table_converts_under_its_estimate(tmp_path, warmup) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60000, 20)).round(4)
    text = "\n".join([",".join(f"f{j}" for j in range(20)) + ",label"]
                     + [",".join(map(str, row)) + f",{i % 5}" for i, row in enumerate(X)])
    (tmp_path / "numbers.csv").write_text(text + "\n")
    result = convert(tmp_path / "numbers.csv", warmup)
    assert result["refused"] is None, result
    held(result)


@pytest.mark.slow
@pytest.mark.parametrize("quoted", [False, True])
def test_a_table_of_distinct_text_converts_under_its_estimate(tmp_path, warmup, quoted) -> None:
    q = '"' if quoted else ""
    lines = ["id,a,b,label"] + [f"{q}r{i}x{q},{q}s{i * 7}y{q},{i % 97},{'xyz'[i % 3]}" for i in range(80000)]
    (tmp_path / "text.csv").write_text("\n".join(lines) + "\n")
    result = convert(tmp_path / "text.csv", warmup)
    held(result)


@pytest.mark.slow
def test_an_npz_of_features_and_one_of_images_convert_under_their_estimates(tmp_path, warmup) -> None:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "rows.npz", X=rng.normal(size=(40000, 100)), y=np.arange(40000) % 4)
    np.savez(tmp_path / "pics.npz", x_train=rng.integers(0, 255, (3000, 32, 32, 3), dtype=np.uint8),
             y_train=np.arange(3000) % 10)
    for name in ("rows.npz", "pics.npz"):
        result = convert(tmp_path / name, warmup)
        assert result["refused"] is None, result
        held(result)


@pytest.mark.slow
def test_a_folder_of_colour_images_converts_under_its_estimate(tmp_path, warmup) -> None:
    rng = np.random.default_rng(0)
    for c in range(4):
        (tmp_path / "pics" / f"c{c}").mkdir(parents=True)
        for i in range(300):
            pixels = rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)
            PIL.fromarray(pixels).save(tmp_path / "pics" / f"c{c}" / f"{i}.png")
    result = convert(tmp_path / "pics", warmup)
    assert result["refused"] is None, result
    held(result)
