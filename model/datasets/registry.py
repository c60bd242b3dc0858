"""What each data set is, where its official files live and how to check them.

One frozen ``DatasetSpec`` per public name in ``REGISTRY``; the loaders look a
spec up by name at call time, so tests can swap an entry (e.g. point
``base_url`` at a local HTTP server) with ``monkeypatch.setitem``.

Checksums are the MD5 sums published with the official files (the ones
torchvision also verifies). Debian's ``dataset-fashion-mnist`` ships files that
were re-compressed, so their ``.gz`` MD5 differs from the official one; that is
why checksums are only checked on download, never on files found locally
(those are validated by their IDX/pickle structure instead).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import DatasetError

__all__ = [
    "CIFAR_LAYOUT",
    "DATASETS",
    "NORMALIZATIONS",
    "REGISTRY",
    "CifarLayout",
    "DatasetSpec",
    "RemoteFile",
    "get_spec",
]

# How features are scaled; see prepare.normalize for the maths.
NORMALIZATIONS: tuple[str, ...] = ("zscore", "image", "channel", "none")
FORMATS: tuple[str, ...] = ("sklearn", "idx", "cifar10", "cifar100")

IDX_FILES: tuple[str, ...] = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


@dataclass(frozen=True, slots=True)
class CifarLayout:
    """Where the official "python version" archive of a CIFAR format keeps its batches."""

    archive: str  # the .tar.gz as served
    folder: str  # its top directory: also the name of the directory it extracts to
    train: tuple[str, ...]  # pickled training batches in the folder, in order
    test: tuple[str, ...]  # pickled test batches

    @property
    def members(self) -> tuple[str, ...]:
        """Every batch file, training first."""
        return self.train + self.test


# keyed by DatasetSpec.format
CIFAR_LAYOUT: dict[str, CifarLayout] = {
    "cifar10": CifarLayout(
        "cifar-10-python.tar.gz", "cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",)
    ),
    "cifar100": CifarLayout("cifar-100-python.tar.gz", "cifar-100-python", ("train",), ("test",)),
}


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """One file of an official distribution."""

    filename: str
    md5: str | None  # published MD5 of the file as served; None = none published


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    """Static facts about one data set."""

    name: str  # public name, a key of REGISTRY
    source: str  # directory name of the raw files; cifar100-coarse shares "cifar100"
    format: str  # one of FORMATS: which parser reads the raw files
    n_classes: int
    n_channels: int  # 1 for grayscale, 3 for RGB planes (decides whether "channel" is allowed)
    default_normalization: str  # used when load_dataset(normalization=None)
    image_shape: tuple[int, ...]  # layout of a row: (H, W) grayscale, (C, H, W) for colour planes
    base_url: str | None = None  # official download location; None = nothing to download
    files: tuple[RemoteFile, ...] = ()
    label_key: str = "labels"  # CIFAR pickle key holding the labels
    install_hint: str | None = None  # a system package that provides the files

    @property
    def official_test_split(self) -> bool:
        """False for scikit-learn's digits, whose test split this project draws itself (``test_seed``)."""
        return self.format != "sklearn"

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise DatasetError(f"format must be one of {FORMATS}, got {self.format=}")
        if self.default_normalization not in NORMALIZATIONS:
            raise DatasetError(
                f"default_normalization must be one of {NORMALIZATIONS}, got {self.default_normalization=}"
            )
        if self.n_channels not in (1, 3):
            raise DatasetError(f"n_channels must be 1 or 3, got {self.n_channels=}")
        if len(self.image_shape) != (2 if self.n_channels == 1 else 3):
            raise DatasetError(
                f"image_shape must be (H, W) for grayscale, (C, H, W) for colour, got {self.image_shape=}"
            )

    def url(self, filename: str) -> str:
        """Full address of one of ``files``."""
        if self.base_url is None:
            raise DatasetError(f"data set {self.name!r} has nothing to download")
        return self.base_url.rstrip("/") + "/" + filename


_CIFAR10 = RemoteFile(CIFAR_LAYOUT["cifar10"].archive, "c58f30108f718f92721af3b95e74349a")
_CIFAR100 = RemoteFile(CIFAR_LAYOUT["cifar100"].archive, "eb9058c3a382ffc7106e4002c42a8d85")
_CIFAR_URL = "https://www.cs.toronto.edu/~kriz/"

# One data set a row, as a table.
# fmt: off
REGISTRY: dict[str, DatasetSpec] = {
    # 8x8 digits bundled with scikit-learn: nothing to find or download.
    # Default "image": on digits it tied with "zscore" (sklearn MLPClassifier (64,),
    # best of lr 1e-3/1e-2, 6 split seeds: test acc 0.968 +- 0.005 vs 0.968 +- 0.002)
    # and it matches the other grayscale sets.
    "digits": DatasetSpec("digits", "digits", "sklearn", 10, 1, "image", (8, 8)),
    "mnist": DatasetSpec(
        "mnist", "mnist", "idx", 10, 1, "image", (28, 28),
        # yann.lecun.com is often down; this is the mirror torchvision uses.
        base_url="https://ossci-datasets.s3.amazonaws.com/mnist/",
        files=tuple(RemoteFile(f, m) for f, m in zip(IDX_FILES, (
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "d53e105ee54ea40749a09fcbcd1e9432",
            "9fb629c4189551a2d022fa330f9573f3",
            "ec29112dd5afa0611ce80d1b7f02629c",
        ))),
    ),
    "fashion-mnist": DatasetSpec(
        "fashion-mnist", "fashion-mnist", "idx", 10, 1, "image", (28, 28),
        base_url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        files=tuple(RemoteFile(f, m) for f, m in zip(IDX_FILES, (
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "25c81989df183df01b3e8a0aad5dffbe",
            "bef4ecab320f06d8554ea6380940ec79",
            "bb300cfdad3c16e7a12a480ee83cd310",
        ))),
        install_hint="apt-get install dataset-fashion-mnist",
    ),
    # CIFAR: per-channel statistics are the convention for RGB planes. A row holds
    # the R, G and B 32x32 planes one after the other (see cifar.py): (C, H, W).
    "cifar10": DatasetSpec(
        "cifar10", "cifar10", "cifar10", 10, 3, "channel", (3, 32, 32),
        base_url=_CIFAR_URL, files=(_CIFAR10,),
    ),
    "cifar100": DatasetSpec(
        "cifar100", "cifar100", "cifar100", 100, 3, "channel", (3, 32, 32),
        base_url=_CIFAR_URL, files=(_CIFAR100,), label_key="fine_labels",
    ),
    "cifar100-coarse": DatasetSpec(
        "cifar100-coarse", "cifar100", "cifar100", 20, 3, "channel", (3, 32, 32),
        base_url=_CIFAR_URL, files=(_CIFAR100,), label_key="coarse_labels",
    ),
}
# fmt: on

DATASETS: tuple[str, ...] = tuple(REGISTRY)


def get_spec(name: str) -> DatasetSpec:
    """The spec registered under ``name``; a DatasetError lists the accepted names."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise DatasetError(f"unknown data set {name!r}; accepted names: {', '.join(REGISTRY)}") from None
