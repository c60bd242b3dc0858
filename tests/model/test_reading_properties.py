"""Every input gets one answer: converted into a dataset that trains, or refused in one line naming it.

Hypothesis generates tables, ``.npz`` files and image folders, valid and
damaged (``generated_inputs``), and each is given to ``load_file``, the
reading boundary's caller. The properties, for every input:

- it converts, and the arrays are finite float32 rows with at least two
  classes, rows in every split and a digest equal to ``content_digest`` (what
  is hashed is what is read), and a small network trains on them; or
- it is refused with one ``DatasetError`` line that names the file, is not a
  ``ReaderDefect``, and leaves the folder byte for byte as it was (no cache
  entry).

The default run draws a few hundred inputs; the slow run (``-m slow``) more
than a thousand here, and ``tests/search/test_owndata_properties.py`` adds
the command line and ``predict``.
"""

from __future__ import annotations

import collections
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model import TrainConfig, train
from model.datasets import Dataset, DatasetError, FileSource, ReaderDefect, load_file
from model.datasets.filesource import content_digest
from model.datasets.imagefolder import image_files
from model.datasets.intake import shown
from tests.model.generated_inputs import Entry, Input, image_folders, npz_files, tables, tree

PROFILES = [pytest.param("default", id="default"), pytest.param("slow", id="slow", marks=pytest.mark.slow)]


def examples(profile: str, default: int, slow: int) -> settings:
    """Hypothesis settings of a run: a few hundred inputs by default, thousands among the slow tests."""
    return settings(max_examples=default if profile == "default" else slow, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


def check_refusal(message: str, path: Path) -> None:
    assert "\n" not in message and message.isprintable(), repr(message)
    assert shown(path.name) in message, (message, path.name)
    assert "has changed" not in message, message  # nothing changed: the digest and the reader disagree


def check_dataset(data: Dataset, path: Path) -> None:
    assert data.n_classes >= 2 and data.n_features >= 1
    for part in ("train", "val", "test"):
        X, y = getattr(data, f"X_{part}"), getattr(data, f"y_{part}")
        assert X.dtype == np.float32 and np.isfinite(X).all(), part
        assert len(y) >= 1 and ((0 <= y) & (y < data.n_classes)).all(), part
    assert data.record is not None and data.record["digest"] == content_digest(path)
    result = train(TrainConfig(hidden=(4,), epochs=1, batch_size=16), data.X_train, data.y_train, data.X_val,
                   data.y_val, n_classes=data.n_classes)
    assert result.outcome != "diverged", result.reason


def convert_or_refuse(inp: Input) -> str:
    """"accepted" or "refused", having checked the properties of either."""
    with tempfile.TemporaryDirectory() as d:
        home = Path(d)
        path = inp.write(home)
        before = tree(home)
        try:
            data = load_file(FileSource(str(path), **inp.options), cache_dir=home / "cache")
        except ReaderDefect as exc:
            raise AssertionError(f"a defect of the reader, not a refusal: {exc}") from exc
        except DatasetError as exc:
            check_refusal(str(exc), path)
            assert tree(home) == before
            return "refused"
        check_dataset(data, path)
        return "accepted"


@pytest.mark.parametrize("profile", PROFILES)
def test_any_table_is_converted_or_refused_in_one_line(profile: str) -> None:
    seen: collections.Counter[str] = collections.Counter()

    @examples(profile, 90, 500)
    @given(tables())
    def check(inp: Input) -> None:
        seen[convert_or_refuse(inp)] += 1

    check()
    print(f"tables: {dict(seen)}")
    assert seen["accepted"] and seen["refused"]


@pytest.mark.parametrize("profile", PROFILES)
def test_any_npz_is_converted_or_refused_in_one_line(profile: str) -> None:
    seen: collections.Counter[str] = collections.Counter()

    @examples(profile, 90, 500)
    @given(npz_files())
    def check(inp: Input) -> None:
        seen[convert_or_refuse(inp)] += 1

    check()
    print(f"npz: {dict(seen)}")
    assert seen["accepted"] and seen["refused"]


@pytest.mark.parametrize("profile", PROFILES)
def test_any_image_folder_is_converted_or_refused_in_one_line(profile: str) -> None:
    seen: collections.Counter[str] = collections.Counter()

    @examples(profile, 60, 400)
    @given(image_folders())
    def check(inp: Input) -> None:
        seen[convert_or_refuse(inp)] += 1

    check()
    print(f"image folders: {dict(seen)}")
    assert seen["accepted"] and seen["refused"]


@pytest.mark.parametrize("profile", PROFILES)
def test_a_file_the_reader_skips_never_changes_the_digest_and_one_it_reads_always_does(profile: str) -> None:
    @examples(profile, 25, 150)
    @given(image_folders(valid=True), st.data())
    def check(inp: Input, data: st.DataObject) -> None:
        with tempfile.TemporaryDirectory() as d:
            root = inp.write(Path(d))
            try:
                digest = content_digest(root)
            except DatasetError:
                return  # a folder the reader refuses: nothing to compare
            read = image_files(root)  # what the reader reads, in its order
            where = read[0].path.parent if read else root
            for name, content in ((b"Thumbs.db", b"\xd0\xcf\x11\xe0" + bytes(60)), (b".DS_Store", b"\0\0\0\1Bud1"),
                                  (b"notes.txt", b"scanned in May"), (b"._0.png", b"resource fork")):
                with open(os.path.join(os.fsencode(where), name), "wb") as fh:
                    fh.write(content)
            os.makedirs(os.path.join(os.fsencode(root), b".thumbnails", b"a"), exist_ok=True)
            (root / ".thumbnails" / "a" / "0.png").write_bytes(b"a hidden folder's image")
            assert content_digest(root) == digest
            if read:
                target = data.draw(st.sampled_from(read)).path
                with open(target, "ab") as fh:
                    fh.write(b"\0")
                assert content_digest(root) != digest

    check()


def test_an_image_outside_the_layout_is_neither_read_nor_hashed(tmp_path: Path) -> None:
    inp = Input(b"pics", (Entry((b"a", b"0.png"), "file", b"x"), Entry((b"b", b"0.png"), "file", b"y")), folder=True)
    root = inp.write(tmp_path)
    digest = content_digest(root)
    (root / "loose.png").write_bytes(b"an image beside the class folders, not in one")
    assert content_digest(root) == digest
