"""Random shifts and horizontal flips of image rows, applied to training batches only.

Why: a wide MLP sees each pixel as its own feature, so it has no built-in
tolerance to an object drawn one pixel to the left. Showing it randomly
shifted (and, where the classes allow, mirrored) copies of the training
images is the cheapest way to teach that tolerance; validation and test
images are never touched, so the scores stay comparable with unaugmented runs.

How: the network knows nothing of images, so the caller names the layout of
a row: ``(H, W)`` for grayscale, ``(C, H, W)`` for colour planes (CIFAR's
rows hold the R, G and B planes one after the other). Every combination of
(flip, dy, dx) is a fixed permutation-with-repeats of a row's features, so
all of them are tabulated once ((2 * 2N+1 * 2N+1, d) source indices) and a
batch is augmented by ONE gather: ``out[i, j] = Xb[i, table[k_i, j]]`` with
one random k per image. Shifts pad with the edge pixels (the source index
is clipped), not with zeros: after normalisation 0 is not the background
colour, the edge pixels of these data sets are. Per batch the only work is
drawing k, adding row offsets into a reused index buffer and the gather into
a reused output buffer; nothing is allocated after the first batch of a size.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Augmenter", "shift_flip_table"]


def shift_flip_table(image_shape: tuple[int, ...], shift: int, flip: bool) -> np.ndarray:
    """(n_variants, d) source index of every output feature, for each (flip, dy, dx) variant.

    Variant (f, dy, dx) moves content down by dy and right by dx (output pixel
    (r, c) reads source (r - dy, c - dx), clipped to the image: edge padding),
    after mirroring left-right when f. Variants are ordered flip-major, then dy,
    then dx, each offset running -shift..shift; the variant with f=0, dy=dx=0
    is the identity.
    """
    *channels, height, width = image_shape
    n_channels = math.prod(channels)
    offsets = range(-shift, shift + 1)
    flips = (False, True) if flip else (False,)
    r = np.arange(height)[:, None]  # (H, 1)
    c = np.arange(width)[None, :]  # (1, W)
    plane = height * width
    table = np.empty((len(flips), len(offsets), len(offsets), n_channels, plane), np.intp)
    for fi, f in enumerate(flips):
        for yi, dy in enumerate(offsets):
            for xi, dx in enumerate(offsets):
                src_r = np.clip(r - dy, 0, height - 1)
                src_c = np.clip(c - dx, 0, width - 1)
                if f:
                    src_c = width - 1 - src_c
                pixel = (src_r * width + src_c).ravel()  # (H*W,)
                table[fi, yi, xi] = pixel[None, :] + plane * np.arange(n_channels)[:, None]
    return table.reshape(-1, n_channels * plane)


class Augmenter:
    """Callable that returns a randomly shifted/flipped copy of a (b, d) batch, in a reused buffer.

    ``rng`` is the only source of randomness, so a run is repeatable for a seed.
    The returned array is overwritten by the next call with the same batch size.
    """

    def __init__(self, image_shape: tuple[int, ...], shift: int, flip: bool, rng: np.random.Generator) -> None:
        if not (
            isinstance(image_shape, tuple)
            and len(image_shape) in (2, 3)
            and all(isinstance(s, (int, np.integer)) and s > 0 for s in image_shape)
        ):
            raise ValueError(f"image_shape must be (H, W) or (C, H, W) of positive ints, got {image_shape=}")
        if not (isinstance(shift, (int, np.integer)) and shift >= 0):
            raise ValueError(f"shift must be an int >= 0, got {shift=}")
        height, width = image_shape[-2:]
        if shift >= min(height, width):
            raise ValueError(f"shift must be smaller than the image, got {shift=} for {image_shape=}")
        self.image_shape = image_shape
        self.n_features = math.prod(image_shape)
        self.table = shift_flip_table(image_shape, int(shift), bool(flip))  # (n_variants, d)
        self.rng = rng
        self._buffers: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def __call__(self, Xb: np.ndarray) -> np.ndarray:
        b, d = Xb.shape
        if d != self.n_features:
            raise ValueError(f"batch has {d} features but image_shape {self.image_shape} holds {self.n_features}")
        buffers = self._buffers.get(b)
        if buffers is None:
            row_start = (np.arange(b, dtype=np.intp) * d)[:, None]  # (b, 1): where row i starts in Xb.ravel()
            buffers = self._buffers[b] = (row_start, np.empty((b, d), np.intp), np.empty((b, d), Xb.dtype))
        row_start, index, out = buffers
        if out.dtype != Xb.dtype:
            out = np.empty((b, d), Xb.dtype)
        k = self.rng.integers(0, len(self.table), size=b)  # one variant per image
        self.table.take(k, axis=0, out=index, mode="clip")  # (b, d) source column of each output
        index += row_start  # -> flat index into the contiguous batch
        # mode="clip" avoids take's hidden copy with out=; the indices are in range by construction
        np.ascontiguousarray(Xb).ravel().take(index, out=out, mode="clip")
        return out
