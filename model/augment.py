"""Random shifts, flips and small affine warps of image rows, applied to training batches only.

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

``Warp`` adds what whole-pixel shifts cannot: small rotations, scalings, shears
and sub-pixel translations, sampled bilinearly (edge padding again). On digits'
8x8 images a 1-pixel shift moves an eighth of the image and cost 1.4 points of
cross-validated accuracy, while a warp of strength 1.5 over 80 epochs took a
search winner from 0.985 to 0.995 (tests/bench/bench_digits_cv.py;
docs/search-quality.md). Its ranges are relative (degrees, fractions of the image
side), so one strength means the same on 8x8 and 28x28 images.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["WARP_AT_STRENGTH_1", "Augmenter", "Warp", "shift_flip_table"]

# The largest draw of each part of a warp at strength 1 (each is uniform in
# [-x, x] and scales linearly with the strength): looked at on a grid of warped
# digits, nearly all still read as themselves at strength 2, and not all at 3.
# The strength itself is a setting, measured in tests/bench/bench_digits_cv.py.
WARP_AT_STRENGTH_1 = {"rotation_degrees": 8.0, "scale": 0.08, "shear": 0.1, "translation": 0.05}


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


def _check_image_shape(image_shape: tuple[int, ...]) -> None:
    if not (
        isinstance(image_shape, tuple)
        and len(image_shape) in (2, 3)
        and all(isinstance(s, (int, np.integer)) and s > 0 for s in image_shape)
    ):
        raise ValueError(f"image_shape must be (H, W) or (C, H, W) of positive ints, got {image_shape=}")


class Augmenter:
    """Callable that returns a randomly shifted/flipped copy of a (b, d) batch, in a reused buffer.

    ``rng`` is the only source of randomness, so a run is repeatable for a seed.
    The returned array is overwritten by the next call with the same batch size.
    """

    def __init__(self, image_shape: tuple[int, ...], shift: int, flip: bool, rng: np.random.Generator) -> None:
        _check_image_shape(image_shape)
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


class Warp:
    """Callable that returns a randomly warped copy of a (b, d) batch: one affine map per image.

    Output pixel p reads the source at ``A @ (p - centre) + centre + t``, where
    A = rotation @ shear / scale and t a translation, all drawn per image from
    ``WARP_AT_STRENGTH_1`` scaled by ``strength``; the source is sampled
    bilinearly and clipped to the image (edge padding). Colour planes share
    their image's map. ``rng`` is the only source of randomness.

    The maps and their sampling positions are computed ``BLOCK`` images at a
    time and handed out batch by batch: on digits' batches of 16 small images,
    the per-batch coordinate arithmetic (25 numpy calls) cost as much as the
    training step itself; per batch there remain the four gathers and the blend.
    """

    BLOCK = 2048

    def __init__(self, image_shape: tuple[int, ...], strength: float, rng: np.random.Generator) -> None:
        _check_image_shape(image_shape)
        *channels, height, width = image_shape
        if min(height, width) < 2:
            raise ValueError(f"a warp needs images of at least 2x2 pixels, got {image_shape=}")
        if not (isinstance(strength, (int, float, np.floating)) and 0 < strength < math.inf):
            raise ValueError(f"strength must be a positive number, got {strength=}")
        self.image_shape = image_shape
        self.n_features = math.prod(image_shape)
        self.strength = float(strength)
        self.rng = rng
        self._size = np.array([height, width], np.float64)
        centre = (self._size - 1) / 2
        r, c = np.mgrid[0:height, 0:width]
        # (2, H*W) about the centre; float32 coordinates are exact to 1e-5 pixel here and twice as fast
        self._grid = np.stack([r.ravel() - centre[0], c.ravel() - centre[1]]).astype(np.float32)
        self._centre = centre
        plane = height * width
        self._planes = (plane * np.arange(math.prod(channels)))[None, :, None]  # (1, C, 1): where each plane starts
        self._block: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # sampling of the maps not yet used
        self._used = 0  # images of the block handed out

    def maps(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        """(A (b, 2, 2), t (b, 2)) for b images, drawn in a fixed order from ``rng``."""
        s, g, w = self.strength, self.rng, WARP_AT_STRENGTH_1
        angle = np.deg2rad(g.uniform(-1, 1, b) * w["rotation_degrees"] * s)
        scale = 1 + g.uniform(-1, 1, b) * w["scale"] * s
        shear = g.uniform(-1, 1, b) * w["shear"] * s
        t = g.uniform(-1, 1, (b, 2)) * w["translation"] * s * self._size
        cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
        # rotation [[cos, -sin], [sin, cos]] times shear [[1, shear], [0, 1]], over the scale
        A = np.stack([np.stack([cos, cos * shear - sin], -1), np.stack([sin, sin * shear + cos], -1)], 1)
        return A, t

    def __call__(self, Xb: np.ndarray) -> np.ndarray:
        b, d = Xb.shape
        if d != self.n_features:
            raise ValueError(f"batch has {d} features but image_shape {self.image_shape} holds {self.n_features}")
        if self._block is None or self._used + b > len(self._block[0]):
            self._block = self.sampling(*self.maps(max(self.BLOCK, b)))
            self._used = 0
        top_left, fr, fc = (a[self._used : self._used + b] for a in self._block)
        self._used += b
        return self._gather(Xb, top_left, fr, fc)

    def apply(self, Xb: np.ndarray, A: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The batch warped by the given maps: bilinear, edge-padded, in Xb's dtype."""
        return self._gather(Xb, *self.sampling(A, t))

    def sampling(self, A: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Where each map's output pixels read: (top-left source pixel (n, H*W), row and column fractions).

        Written as per-coordinate products: numpy's stacked ``A @ grid`` measured
        4-10x slower on 28x28 images.
        """
        height, width = self.image_shape[-2:]
        y, x = self._grid  # (H*W,) each, about the centre
        cy, cx = self._centre
        A, t = A.astype(np.float32), t.astype(np.float32)
        rows = A[:, 0, 0, None] * y + A[:, 0, 1, None] * x + (t[:, 0] + cy)[:, None]  # (n, H*W) source row
        cols = A[:, 1, 0, None] * y + A[:, 1, 1, None] * x + (t[:, 1] + cx)[:, None]
        np.clip(rows, 0, height - 1, out=rows)
        np.clip(cols, 0, width - 1, out=cols)
        r0 = np.minimum(rows.astype(np.intp), height - 2)  # truncation is floor: both are >= 0
        c0 = np.minimum(cols.astype(np.intp), width - 2)
        rows -= r0
        cols -= c0
        r0 *= width
        r0 += c0
        return r0, rows, cols

    def _gather(self, Xb: np.ndarray, top_left: np.ndarray, fr: np.ndarray, fc: np.ndarray) -> np.ndarray:
        """Bilinear samples of each row of Xb at its image's positions (``take``: 4x faster than indexing)."""
        b, d = Xb.shape
        width = self.image_shape[-1]
        index = (top_left + (np.arange(b) * d)[:, None])[:, None] + self._planes  # (b, C, H*W) into Xb.ravel()
        # (b, 1, H*W), over colour planes; float32 already for float32 batches, so no copy
        fr, fc = fr.astype(Xb.dtype, copy=False)[:, None], fc.astype(Xb.dtype, copy=False)[:, None]
        flat = np.ascontiguousarray(Xb).ravel()
        top = flat.take(index)
        top += (flat.take(index + 1) - top) * fc
        bottom = flat.take(index + width)
        bottom += (flat.take(index + width + 1) - bottom) * fc
        top += (bottom - top) * fr
        return top.reshape(b, d)
