"""The 19 common corruptions of CIFAR-10-C (Hendrycks & Dietterich), implemented natively.

Every corruption is a registered function `(images, severity, sample_ids, options) -> images`:
uint8 (N, H, W, C) in and out, grayscale (C = 1) or RGB (C = 3), vectorised over the batch.
The severity constants are those of the original `make_cifar_c.py` (not the ImageNet-C
ones).

Equal to the reference: on 32×32 RGB images every corruption that draws no random numbers
(defocus_blur, zoom_blur, gaussian_blur, brightness, contrast, pixelate, jpeg_compression,
saturate) gives the reference script's output bit for bit, and glass_blur does for the same
pixel-move draws (`glass_blur_moves`), because the official CIFAR-10-C files were made with the
script's quirks: it computes in float64 (zoom_blur in float32) and saves `np.uint8(x)`, which
truncates; zoom_blur crops a whole number of pixels and trims the zoomed crop from the top-left;
glass_blur's "swap" of two pixels is a tuple assignment on numpy views, which copies one pixel
onto the other. tests/fixtures/cifar_c_reference.npz holds the reference's outputs
(scripts/reference_corruptions.py made it).

Determinism: every random draw comes from a counter-based stream (Philox) keyed by
(options.seed, corruption, severity, purpose of the draw), at a counter set by the sample id, so
a sample gets the same corrupted image in every run, on every worker, whatever batch it is in;
a batch of consecutive ids is one vectorised draw (see `Draws`).

Other image sizes: spatial constants (blur sigmas and radii, shuffling distance, motion
length, snow and spatter scales, fog's fractal size) are in pixels of a 32×32 image.
Images larger than 32 pixels scale them by min(H, W) / 32; smaller images (8×8 digits,
28×28 MNIST) use them unscaled, since a pixel is the smallest unit a corruption can act
on. Constants that the original states relative to the image (zoom factors, pixelation
factor, elastic_transform's fractions of the image size) stay relative, and intensity
constants (noise, brightness, contrast, saturation, JPEG quality) do not depend on size.
zoom_blur crops and zooms whole pixels at every size, as the reference does at 32×32, so on
images under 10 pixels (8×8 digits) its severity 1 (zooms up to 1.05) leaves them unchanged.

No ImageMagick: motion blur (and the snow streaks built on it) use their own line kernel,
ImageMagick's one-sided Gaussian along the motion direction; frost blends a procedural ice
texture unless `options.frost_dir` names a folder of frost photographs.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
from scipy import ndimage

from pipeline.errors import PruneScopeError
from pipeline.registry import Registry

CORRUPTION_NAMES: tuple[str, ...] = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "speckle_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "gaussian_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "spatter",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
    "saturate",
)
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
_CHUNK_PIXELS = 1 << 17  # pixels per kernel call: 128 images of 32×32
GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)
_ZOOM_BATCH = 32  # images per zoom_blur pass: 4 scratch arrays of 32×32×96 doubles, 3 MB


@dataclass(frozen=True)
class CorruptionOptions:
    """Run-level settings of the generators: the seed and an optional folder of frost photos."""

    seed: int = 0
    frost_dir: str | None = None


class Corruption(Protocol):
    def __call__(
        self, images: np.ndarray, severity: int, sample_ids: np.ndarray, options: CorruptionOptions = ...
    ) -> np.ndarray: ...


CORRUPTIONS: Registry[Corruption] = Registry("corruption")


def register_corruption(name: str) -> Callable[[Callable[..., np.ndarray]], Corruption]:
    """Register a kernel `(uint8 images (N,H,W,C), severity, draws, scale, options) -> images` under
    `name`, wrapped into the batch interface with validation and seeding. A kernel returns uint8,
    or floats in units of the full scale (0 to 1) that are saved as the reference saves them."""

    def deco(kernel: Callable[..., np.ndarray]) -> Corruption:
        index = CORRUPTION_NAMES.index(name)

        def corrupt(
            images: np.ndarray, severity: int, sample_ids: np.ndarray, options: CorruptionOptions = CorruptionOptions()
        ) -> np.ndarray:
            if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] not in (1, 3):
                raise ValueError(f"{name}: expected uint8 images (N, H, W, 1 or 3), got {images.dtype} {images.shape}")
            if severity not in SEVERITIES:
                raise PruneScopeError(f"severity {severity} is not one of 1..5", "use severities 1 to 5")
            ids = np.asarray(sample_ids, dtype=np.int64)
            if ids.shape != (len(images),):
                raise ValueError(f"{name}: {len(images)} images but sample_ids of shape {ids.shape}")
            if len(images) == 0:
                return images.copy()
            scale = max(1.0, min(images.shape[1:3]) / 32.0)
            out = np.empty_like(images)
            step = max(1, _CHUNK_PIXELS // (images.shape[1] * images.shape[2]))
            for lo in range(0, len(images), step):  # chunks that stay in cache; samples are independent
                part = kernel(
                    images[lo : lo + step],
                    severity,
                    Draws((options.seed, index, severity), ids[lo : lo + step]),
                    scale,
                    options,
                )
                out[lo : lo + step] = part if part.dtype == np.uint8 else _save(part)
            return out

        corrupt.__name__ = name
        corrupt.__doc__ = kernel.__doc__
        return CORRUPTIONS.register(name)(corrupt)

    return deco


def corrupt(
    images: np.ndarray,
    name: str,
    severity: int,
    sample_ids: np.ndarray,
    options: CorruptionOptions = CorruptionOptions(),
) -> np.ndarray:
    """Apply corruption `name` at `severity` to a batch (the registry lookup gives clear errors)."""
    return CORRUPTIONS.get(name)(images, severity, sample_ids, options)


# ---------------------------------------------------------------- helpers


def _unit(images: np.ndarray) -> np.ndarray:
    """uint8 → float64 in [0, 1], as the reference reads an image (`np.array(x) / 255.`)."""
    return images / 255.0


def _unit32(images: np.ndarray) -> np.ndarray:
    """uint8 → float32 in [0, 1], for the corruptions that draw random numbers (no output to equal)."""
    return images.astype(np.float32) / np.float32(255)


def _levels(x: np.ndarray) -> np.ndarray:
    """float32 grey levels (0 to 255 scale) → uint8, clipped and truncated in place, as `_save`."""
    return np.clip(x, 0, 255, out=x).astype(np.uint8)


def _save(x: np.ndarray) -> np.ndarray:
    """Floats in [0, 1] → uint8 as the reference saves them: clip, ×255, truncate (`np.uint8(x)`)."""
    return (np.clip(x, 0, 1) * 255).astype(np.uint8)


class Draws:
    """The random numbers of one batch: per sample, per purpose (a small int naming the draw
    within a corruption), independent of the batch the sample is in.

    Each (key, purpose) is a Philox stream; sample i's `count` 64-bit words are the blocks from
    counter i·⌈count/4⌉ on, so the words of consecutive ids are consecutive in the stream and a
    run of consecutive ids (the usual batch) is one `random_raw` call, not one generator per sample.
    """

    def __init__(self, key: tuple[int, ...], sample_ids: np.ndarray) -> None:
        self.key = tuple(int(k) for k in key)
        given = np.asarray(sample_ids, np.int64)
        self.ids, self.inverse = np.unique(given, return_inverse=True)
        self.in_order = len(self.ids) == len(given)  # unique ids, ascending: rows need no reordering
        self.in_order = self.in_order and bool(np.all(self.ids == given))
        if len(self.ids) and self.ids[0] < 0:
            raise ValueError(f"sample ids must be non-negative, got {self.ids[0]}")
        self.runs = np.split(np.arange(len(self.ids)), np.flatnonzero(np.diff(self.ids) != 1) + 1)

    def __len__(self) -> int:
        return len(self.inverse)

    def _philox(self, purpose: int, counter: int) -> np.random.Philox:
        words = np.random.SeedSequence([*self.key, purpose]).generate_state(2, np.uint64)
        return np.random.Philox(key=words, counter=counter)

    def words(self, purpose: int, count: int) -> np.ndarray:
        """(N, count) uint64 random words, one row per sample of the batch (in its order)."""
        blocks = -(-count // 4)

        def run_words(run: np.ndarray) -> np.ndarray:
            raw = self._philox(purpose, int(self.ids[run[0]]) * blocks).random_raw(len(run) * blocks * 4)
            return raw.reshape(len(run), blocks * 4)[:, :count]

        if self.in_order and len(self.runs) == 1:
            return run_words(self.runs[0])
        out = np.empty((len(self.ids), count), np.uint64)
        for run in self.runs:
            if len(run):
                out[run] = run_words(run)
        return out[self.inverse]

    def halves(self, purpose: int, count: int) -> np.ndarray:
        """(N, count) uint16 random numbers, four to a 64-bit word."""
        words = np.ascontiguousarray(self.words(purpose, -(-count // 4)), dtype="<u8")
        return words.view("<u2")[:, :count]

    def uniform(self, purpose: int, shape: tuple[int, ...], low: float = 0.0, high: float = 1.0) -> np.ndarray:
        """(N, *shape) float64 uniform in [low, high), 53 random bits each."""
        count = int(np.prod(shape, dtype=np.int64))
        u = (self.words(purpose, count) >> np.uint64(11)) * (1.0 / (1 << 53))
        return (low + (high - low) * u).reshape(len(self), *shape)

    def integers(self, purpose: int, low: int, high: int, shape: tuple[int, ...]) -> np.ndarray:
        """(N, *shape) int64 uniform in [low, high)."""
        return low + np.floor(self.uniform(purpose, shape) * (high - low)).astype(np.int64)

    def normal(self, purpose: int, shape: tuple[int, ...], loc: float, scale: float) -> np.ndarray:
        """(N, *shape) float32 normal deviates: 16 random bits each through the 2^16-quantile table
        of the standard normal (finer than 8-bit images resolve; tails end at ±4.32 σ)."""
        halves = self.halves(purpose, int(np.prod(shape, dtype=np.int64)))
        return np.take(_normal_quantiles(float(loc), float(scale)), halves).reshape(len(self), *shape)


@lru_cache(maxsize=16)
def _normal_quantiles(loc: float, scale: float) -> np.ndarray:
    """float32 quantiles of N(loc, scale²) at the midpoints of 2^16 equal-probability bins."""
    from scipy.special import ndtri

    return (loc + scale * ndtri((np.arange(1 << 16) + 0.5) / (1 << 16))).astype(np.float32)


def _blur(x: np.ndarray, sigma: float, mode: str = "nearest", truncate: float = 4.0) -> np.ndarray:
    """Gaussian blur over the two spatial axes of (N, H, W[, C])."""
    sig = (0.0, sigma, sigma) + ((0.0,) if x.ndim == 4 else ())
    return ndimage.gaussian_filter(x, sigma=sig, mode=mode, truncate=truncate)


def _gray(x: np.ndarray) -> np.ndarray:
    """Luma (N, H, W, 1) of RGB or grayscale images."""
    return x if x.shape[3] == 1 else (x @ GRAY_WEIGHTS)[..., None]


def _fold(i: np.ndarray, n: int, mode: str) -> np.ndarray:
    """Integer indices folded into 0..n-1: `mirror` (reflect-101), `reflect` (half-sample) or `edge`."""
    if n == 1:
        return np.zeros_like(i)
    if mode == "edge":
        return np.clip(i, 0, n - 1)
    if mode == "mirror":
        period = 2 * (n - 1)
        i = np.abs(i) % period
        return np.where(i > n - 1, period - i, i)
    i = i % (2 * n)
    return np.where(i >= n, 2 * n - 1 - i, i)


def _sample(x: np.ndarray, yy: np.ndarray, xx: np.ndarray, mode: str) -> np.ndarray:
    """Bilinear sampling of images x (N, H, W, C) at float coordinates yy, xx (N, H, W)."""
    n, h, w, c = x.shape
    y0, x0 = np.floor(yy).astype(np.int64), np.floor(xx).astype(np.int64)
    fy, fx = (yy - y0)[..., None], (xx - x0)[..., None]
    pixels = x.reshape(n * h * w, c)  # gathered by flat pixel index: one index array per neighbour
    first_row = (np.arange(n) * h)[:, None, None]
    y0f, y1f = (_fold(y0, h, mode) + first_row) * w, (_fold(y0 + 1, h, mode) + first_row) * w
    x0f, x1f = _fold(x0, w, mode), _fold(x0 + 1, w, mode)
    top = pixels.take(y0f + x0f, axis=0) * (1 - fx) + pixels.take(y0f + x1f, axis=0) * fx
    bottom = pixels.take(y1f + x0f, axis=0) * (1 - fx) + pixels.take(y1f + x1f, axis=0) * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


@lru_cache(maxsize=256)
def _zoom_taps(size: int, factor: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One axis of the reference's clipped zoom by `factor`: for each of the `size` pixels kept,
    the two source pixels (indices into the uncropped axis) and their weights, as scipy's order-1
    `zoom` computes them: crop ⌈size/factor⌉ pixels about the centre, zoom them to round(crop·factor)
    with corner-aligned coordinates k·(crop−1)/(zoomed−1), keep `size` of them from the top-left
    offset (zoomed−size)//2. A coordinate past the last pixel (rounding) is scipy's constant 0;
    the second tap past the edge has weight 0 and reads the mirrored pixel, as scipy does."""
    crop = int(np.ceil(size / factor))
    first = (size - crop) // 2
    zoomed = int(round(crop * factor))
    ratio = (crop - 1) / (zoomed - 1) if zoomed != 1 else 1.0
    trim = (zoomed - size) // 2
    cc = np.arange(trim, trim + size, dtype=np.float64) * ratio
    start = np.floor(cc)
    w0 = 1.0 - (cc - start)  # scipy's get_spline_interpolation_weights for order 1
    w1 = 1.0 - w0
    outside = cc > crop - 1
    w0[outside], w1[outside] = 0.0, 0.0
    i0 = np.minimum(start.astype(np.int64), crop - 1)
    i1 = np.where(i0 + 1 >= crop, 2 * crop - 2 - (i0 + 1), i0 + 1) if crop > 1 else np.zeros_like(i0)
    return i0 + first, np.clip(i1, 0, crop - 1) + first, w0, w1


def _zoom_stacked(v: np.ndarray, factor: float, work: np.ndarray | None = None) -> np.ndarray:
    """The reference's clipped zoom of float64 images stacked along the last axis, (H, W, M) →
    float32 (H, W, M), bit for bit scipy's `zoom(crop, (factor, factor, 1), order=1)` trimmed:
    each output value is, in double and in scipy's order, ((v₀₀·wy₀)·wx₀ + (v₀₁·wy₀)·wx₁)
    + (v₁₀·wy₁)·wx₀ + (v₁₁·wy₁)·wx₁, then rounded to float32. Gathers of whole rows and columns
    of the stack, a dozen passes over the batch instead of a 2×2×2 loop per pixel. `work`
    (4, H, W, M) float64 is scratch space reused across calls (fresh arrays of this size cost
    page faults that outweigh the arithmetic)."""
    r0, r1, wy0, wy1 = _zoom_taps(v.shape[0], factor)
    c0, c1, wx0, wx1 = _zoom_taps(v.shape[1], factor)
    wx0, wx1 = wx0[None, :, None], wx1[None, :, None]
    top, bottom, t, term = np.empty((4, *v.shape)) if work is None else work
    np.take(v, r0, axis=0, out=top, mode="clip")  # "clip": the indices are in range; "raise" copies `out`
    top *= wy0[:, None, None]
    np.take(v, r1, axis=0, out=bottom, mode="clip")
    bottom *= wy1[:, None, None]
    np.take(top, c0, axis=1, out=t, mode="clip")
    t *= wx0
    np.take(top, c1, axis=1, out=term, mode="clip")
    term *= wx1
    t += term
    np.take(bottom, c0, axis=1, out=term, mode="clip")
    term *= wx0
    t += term
    np.take(bottom, c1, axis=1, out=term, mode="clip")
    term *= wx1
    t += term
    return t.astype(np.float32)


def _stack(x: np.ndarray) -> np.ndarray:
    """(N, H, W, C) → float64 (H, W, N·C): the images side by side along the last axis."""
    n, h, w, c = x.shape
    return x.transpose(1, 2, 0, 3).reshape(h, w, n * c).astype(np.float64)


def _unstack(s: np.ndarray, n: int) -> np.ndarray:
    """(H, W, N·C) → (N, H, W, C), the inverse of `_stack` (dtype kept)."""
    h, w, m = s.shape
    return np.ascontiguousarray(s.reshape(h, w, n, m // n).transpose(2, 0, 1, 3))


def _clipped_zoom(x: np.ndarray, factor: float) -> np.ndarray:
    """The reference's zoom into the centre of float32 (N, H, W, C) by `factor`, same size out:
    crop ⌈H/factor⌉ whole pixels about the centre, zoom them bilinearly (scipy, corner-aligned),
    trim the excess, the odd pixel from the top-left (see `_zoom_stacked`)."""
    return _unstack(_zoom_stacked(_stack(x), factor), len(x))


def _motion(x: np.ndarray, radius: float, sigma: float, angles_deg: np.ndarray) -> np.ndarray:
    """ImageMagick-style motion blur: a one-sided Gaussian line kernel along each sample's angle.

    Tap i (0 ≤ i ≤ 2·⌈radius⌉) has weight exp(−i²/2σ²) and reads the pixel i steps along the
    direction, rounded to the pixel grid, with edge replication. Samples sorted by angle share
    each tap's pixel offset in runs, so a tap is a few shifted slices of the edge-padded batch.
    """
    n, h, w, _ = x.shape
    taps = np.arange(2 * int(np.ceil(radius)) + 1)
    weights = np.exp(-(taps.astype(np.float64) ** 2) / (2 * sigma**2))
    weights /= weights.sum()
    order = np.argsort(angles_deg, kind="stable")
    rad = np.deg2rad(np.asarray(angles_deg, np.float64)[order])
    pad = int(taps[-1])
    padded = np.pad(x[order], ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    out = np.zeros_like(x)
    for i, wt in zip(taps, weights):
        dy, dx = np.rint(i * np.sin(rad)).astype(np.int64), np.rint(i * np.cos(rad)).astype(np.int64)
        starts = np.flatnonzero(np.r_[True, (np.diff(dy) != 0) | (np.diff(dx) != 0)])
        for a, b in zip(starts, np.r_[starts[1:], n]):
            oy, ox = pad + dy[a], pad + dx[a]
            out[a:b] += wt * padded[a:b, oy : oy + h, ox : ox + w]
    result = np.empty_like(out)
    result[order] = out
    return result


def _plasma(uniform: Callable[[int, tuple[int, ...]], np.ndarray], n: int, size: int, decay: float) -> np.ndarray:
    """n diamond-square fractal height maps (n, size, size) in [0, 1]; `uniform(k, shape)` gives
    the k-th draw, (n, *shape) uniform in [0, 1)."""
    maps = np.zeros((n, size, size), np.float64)
    step, wibble, calls = size, 100.0, 0

    def noisy_mean(total: np.ndarray) -> np.ndarray:
        nonlocal calls
        calls += 1
        return total / 4 + wibble * (uniform(calls, total.shape[1:]) * (2 * wibble) - wibble)

    while step >= 2:
        half = step // 2
        corners = maps[:, 0:size:step, 0:size:step]
        squares = corners + np.roll(corners, -1, axis=1)
        squares = squares + np.roll(squares, -1, axis=2)
        maps[:, half:size:step, half:size:step] = noisy_mean(squares)
        centres = maps[:, half:size:step, half:size:step]
        grid = maps[:, 0:size:step, 0:size:step]
        left = centres + np.roll(centres, 1, axis=1) + grid + np.roll(grid, -1, axis=2)
        maps[:, 0:size:step, half:size:step] = noisy_mean(left)
        top = centres + np.roll(centres, 1, axis=2) + grid + np.roll(grid, -1, axis=1)
        maps[:, half:size:step, 0:size:step] = noisy_mean(top)
        step //= 2
        wibble /= decay
    maps -= maps.min(axis=(1, 2), keepdims=True)
    return (maps / np.maximum(maps.max(axis=(1, 2), keepdims=True), 1e-12)).astype(np.float32)


# ---------------------------------------------------------------- noise


@register_corruption("gaussian_noise")
def _gaussian_noise(images, severity, draws, scale, options):
    """Additive Gaussian noise, σ ∈ (0.04, 0.06, 0.08, 0.09, 0.10) of the full scale."""
    c = (0.04, 0.06, 0.08, 0.09, 0.10)[severity - 1]
    return _levels(images + draws.normal(0, images.shape[1:], 0.0, 255 * c))


@lru_cache(maxsize=5)
def _shot_noise_tables(c: int) -> tuple[np.ndarray, np.ndarray]:
    """Alias tables (Walker/Vose) of shot noise's output: for each input level k, the distribution
    of the saved level of Poisson(λ)/c, λ = (k/255 in float32)·c, as the reference saves it (clip
    to [0, 1], ×255, truncate). Returns (thresholds, aliases), flat (256·256,) each: column j of
    row k is kept when a 32-bit draw is below thresholds[k·256 + j], else aliases[k·256 + j] is taken."""

    from scipy.stats import poisson

    lam = (np.arange(256, dtype=np.float32) / np.float32(255) * c).astype(np.float64)
    counts = np.arange(c)
    level = (np.clip(counts.astype(np.float32) / np.float32(c), 0, 1) * np.float32(255)).astype(np.int64)
    probs = poisson.pmf(counts[None, :], lam[:, None]) @ (level[:, None] == np.arange(256)[None, :])
    probs[:, 255] += poisson.sf(c - 1, lam)  # every count from c on saves as 255
    probs /= probs.sum(axis=1, keepdims=True)
    keep = np.ones((256, 256))
    alias = np.tile(np.arange(256), (256, 1))
    for k in range(256):  # Vose's method, row by row
        scaled = probs[k] * 256
        small = [j for j in range(256) if scaled[j] < 1]
        large = [j for j in range(256) if scaled[j] >= 1]
        while small and large:
            lo, hi = small.pop(), large.pop()
            keep[k, lo], alias[k, lo] = scaled[lo], hi
            scaled[hi] -= 1 - scaled[lo]
            (small if scaled[hi] < 1 else large).append(hi)
    # A column kept whole has itself as alias, so its threshold can stop one short of 2³².
    thresholds = np.minimum(np.round(keep * 2.0**32), 2.0**32 - 1).astype(np.uint32)
    return thresholds.ravel(), alias.astype(np.uint8).ravel()


@register_corruption("shot_noise")
def _shot_noise(images, severity, draws, scale, options):
    """Poisson (photon) noise with λ = x·c, c ∈ (500, 250, 100, 75, 50), saved as the reference
    saves Poisson(λ)/c: drawn straight in saved levels from the 256 distributions of the input
    levels (alias method, one 64-bit word per value: 8 bits pick a column, 32 bits the side; the
    probabilities are exact to 2⁻³²), all samples in one vectorised pass."""
    c = (500, 250, 100, 75, 50)[severity - 1]
    thresholds, aliases = _shot_noise_tables(c)
    words = np.ascontiguousarray(draws.words(0, images[0].size), "<u8").reshape(*images.shape, 1)
    column = words.view(np.uint8)[..., 0]  # the low byte picks a column, the high 32 bits the side
    side = words.view(np.uint32)[..., 1]
    cell = images.astype(np.intp) << 8  # row k·256 + column j, one index for both tables
    cell |= column
    return np.where(side < thresholds[cell], column, aliases[cell])


@register_corruption("impulse_noise")
def _impulse_noise(images, severity, draws, scale, options):
    """Salt-and-pepper noise on a fraction c ∈ (0.01, 0.02, 0.03, 0.05, 0.07) of the values."""
    c = (0.01, 0.02, 0.03, 0.05, 0.07)[severity - 1]
    bits = draws.halves(0, images[0].size).reshape(images.shape)  # 15 bits: does it flip; 1 bit: to what
    flipped = (bits >> 1) < round(c * (1 << 15))
    return np.where(flipped, (bits & 1).astype(np.uint8) * np.uint8(255), images)


@register_corruption("speckle_noise")
def _speckle_noise(images, severity, draws, scale, options):
    """Multiplicative noise x + x·n, n ~ N(0, c), c ∈ (0.06, 0.1, 0.12, 0.16, 0.2)."""
    c = (0.06, 0.1, 0.12, 0.16, 0.2)[severity - 1]
    return _levels(images * draws.normal(0, images.shape[1:], 1.0, c))


# ---------------------------------------------------------------- blur


def _gaussian_taps(sigma: float) -> np.ndarray:
    """OpenCV's 3-tap Gaussian for σ > 0 (float32), computed as OpenCV computes it."""
    t = np.exp(4.0 * (-0.125 / (sigma * sigma)))
    norm = 1.0 / (2.0 * t + 1.0)
    return np.array([t * norm, norm, t * norm]).astype(np.float32)


@lru_cache(maxsize=32)
def _disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """The reference's defocus kernel: a normalised aliased disk of `radius` on a grid of ±8
    pixels (±⌈radius⌉ beyond 8), in float32, smoothed by a separable 3-tap (5-tap beyond radius 8)
    Gaussian of σ = alias_blur with reflect-101 edges; the all-zero border is cut off."""
    half = max(8, int(np.ceil(radius)))
    r = np.arange(-half, half + 1)
    yy, xx = np.meshgrid(r, r, indexing="ij")
    disk = ((xx**2 + yy**2) <= radius**2).astype(np.float32)
    disk /= np.sum(disk)
    if radius <= 8:
        taps = _gaussian_taps(alias_blur)
    else:
        taps = np.exp(-(np.arange(-2, 3) ** 2) / (2.0 * alias_blur**2))
        taps = (taps / taps.sum()).astype(np.float32)
    smooth = ndimage.correlate1d(ndimage.correlate1d(disk, taps, axis=1, mode="mirror"), taps, axis=0, mode="mirror")
    rows = np.flatnonzero(smooth.any(axis=1))
    return smooth[rows[0] : rows[-1] + 1, rows[0] : rows[-1] + 1].astype(np.float64)


@register_corruption("defocus_blur")
def _defocus_blur(images, severity, draws, scale, options):
    """Correlation with an anti-aliased disk of radius (0.3, 0.4, 0.5, 1, 1.5) px, reflect-101 edges.
    (The reference's cv2.filter2D takes its DFT route for the 17×17 kernel; direct correlation
    agrees with it to 1e-15, and the kernel sums to a little over 1, so no level changes.)"""
    radius, alias = ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1))[severity - 1]
    kernel = _disk_kernel(radius * scale, alias)
    return ndimage.correlate(_unit(images), kernel[None, :, :, None], mode="mirror")


_GLASS = ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2))  # sigma, max move, iterations


def glass_blur_moves(images: np.ndarray, severity: int, moves: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """glass_blur with given pixel moves: `moves` (N, iterations, positions, 2) holds the (dx, dy)
    draw of every position in the reference's order (rows from the bottom, right to left within a
    row, `delta` pixels of border left alone), each in [−delta, delta). uint8 in and out.

    Blur, save as uint8 (truncating), then at each position in that order copy the pixel at
    (h + dy, w + dx) onto (h, w): the reference's tuple "swap" on numpy views copies. A pixel read
    after its own move carries its new value, so each copy follows the chain of moves made
    before it. Blur again.
    """
    sigma, delta, _ = _GLASS[severity - 1]
    sigma, delta = sigma * scale, max(1, int(round(delta * scale)))
    n, h, w, c = images.shape
    y = _save(_blur(_unit(images), sigma)).reshape(n, h * w, c)
    hs, ws = np.arange(h - delta, delta, -1), np.arange(w - delta, delta, -1)
    target = (hs[:, None] * w + ws[None, :]).ravel()
    order = np.full(h * w, len(target))
    order[target] = np.arange(len(target))
    b = np.arange(n)[:, None]
    for it in range(moves.shape[1]):
        dx, dy = moves[:, it, :, 0].astype(np.int64), moves[:, it, :, 1].astype(np.int64)
        source = target + dy * w + dx
        reader, read = np.broadcast_to(target, source.shape).copy(), source.copy()
        earlier = order[read] < order[reader]
        while earlier.any():
            reader = np.where(earlier, read, reader)
            read = np.where(earlier, np.take_along_axis(source, np.minimum(order[read], len(target) - 1), 1), read)
            earlier = order[read] < order[reader]
        moved = y.copy()
        moved[b, target] = y[b, read]
        y = moved
    return _save(_blur(_unit(y.reshape(n, h, w, c)), sigma))


@register_corruption("glass_blur")
def _glass_blur(images, severity, draws, scale, options):
    """Blur, move every pixel onto a random neighbour's place (up/left by at most `delta`), blur again."""
    _, delta, iterations = _GLASS[severity - 1]
    delta = max(1, int(round(delta * scale)))
    h, w = images.shape[1:3]
    positions = max(0, h - 2 * delta) * max(0, w - 2 * delta)
    moves = draws.integers(0, -delta, delta, (iterations, positions, 2))
    return glass_blur_moves(images, severity, moves, scale)


@register_corruption("motion_blur")
def _motion_blur(images, severity, draws, scale, options):
    """Motion blur of radius (6, 6, 6, 8, 9) px, σ (1, 1.5, 2, 2, 2.5), angle uniform in ±45°."""
    x = _unit32(images)
    radius, sigma = ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5))[severity - 1]
    angles = draws.uniform(0, (), -45, 45)
    return _motion(x, radius * scale, sigma * scale, angles)


@register_corruption("zoom_blur")
def _zoom_blur(images, severity, draws, scale, options):
    """Mean of the image and its centre zooms by 1.00, 1.01, ... up to 1.05 ... 1.25 (1.26 at
    severity 5: the reference's `np.arange(1, 1.26, 0.01)` ends there), summed in float32 in
    the reference's order."""
    top = (1.06, 1.11, 1.16, 1.21, 1.26)[severity - 1]
    factors = np.arange(1, top, 0.01)
    x = (images / 255.0).astype(np.float32)
    out = np.empty_like(x)
    for lo in range(0, len(x), _ZOOM_BATCH):  # a batch whose scratch space stays in cache
        part = x[lo : lo + _ZOOM_BATCH]
        stacked = _stack(part)  # every zoom gathers whole rows and columns of the batch
        work = np.empty((4, *stacked.shape))
        total = np.zeros(stacked.shape, np.float32)
        for f in factors:
            total += _zoom_stacked(stacked, f, work)
        out[lo : lo + _ZOOM_BATCH] = (part + _unstack(total, len(part))) / (len(factors) + 1)
    return out


@register_corruption("gaussian_blur")
def _gaussian_blur(images, severity, draws, scale, options):
    """Gaussian blur, σ ∈ (0.4, 0.6, 0.7, 0.8, 1) px."""
    sigma = (0.4, 0.6, 0.7, 0.8, 1.0)[severity - 1]
    return _blur(_unit(images), sigma * scale)


# ---------------------------------------------------------------- weather


@register_corruption("snow")
def _snow(images, severity, draws, scale, options):
    """Falling snow: a thresholded, zoomed noise layer streaked by motion blur, added twice
    (once rotated by 180°) over a brightened, washed-out image."""
    x = _unit32(images)
    loc, sd, zoom, threshold, radius, sigma, blend = (
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
        (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
    )[severity - 1]
    n, h, w, _ = x.shape
    layer = draws.normal(0, (h, w, 1), loc, sd)
    layer = _clipped_zoom(layer, zoom) if zoom != 1 else layer
    layer[layer < threshold] = 0
    layer = np.clip(layer, 0, 1)
    angles = draws.uniform(1, (), -135, -45)
    layer = _motion(np.round(layer * 255) / 255, radius * scale, sigma * scale, angles)
    x = blend * x + (1 - blend) * np.maximum(x, _gray(x) * 1.5 + 0.5)
    return x + layer + np.rot90(layer, k=2, axes=(1, 2))


@lru_cache(maxsize=4)
def _frost_texture(size: int, seed: int) -> np.ndarray:
    """A procedural ice texture (size × size × 3 in [0, 1]): ridged fractal noise for the
    frozen film, plus crystal needles drawn as motion-blurred sparse seeds, tinted blue-white."""
    rng = np.random.default_rng([seed, 7919])
    base = _plasma(lambda k, shape: rng.random((1, *shape)), 1, size, 1.9)[0]
    ridges = (1.0 - np.abs(2.0 * base - 1.0)) ** 3
    fine = ndimage.gaussian_filter(rng.random((size, size)), 1.0)
    fine = (fine - fine.min()) / (fine.max() - fine.min())
    needles = np.zeros((1, size, size, 1), np.float32)
    for angle in (15.0, 75.0, 135.0):
        seeds = (rng.random((1, size, size, 1)) > 0.985).astype(np.float32)
        needles += _motion(seeds, 6.0, 3.0, np.array([angle]))
    needles = np.clip(needles[0, ..., 0] * 4.0, 0, 1)
    ice = np.clip(0.45 * ridges + 0.25 * fine + 0.6 * needles, 0, 1)
    tint = np.array([0.86, 0.93, 1.0], np.float32)
    return (ice[..., None] * tint).astype(np.float32)


@lru_cache(maxsize=2)
def _frost_photos(folder: str) -> tuple[np.ndarray, ...]:
    """Frost photographs from a folder (PNG/JPEG), shrunk to a fifth as the original does."""
    from PIL import Image

    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not paths:
        raise PruneScopeError(
            f"no frost images (.png, .jpg) in {folder}",
            "point frost_dir to a folder of frost photos, or leave it unset for the procedural texture",
        )
    photos = []
    for p in paths:
        with Image.open(p) as img:
            img = img.convert("RGB")
            img = img.resize((max(1, img.width // 5), max(1, img.height // 5)), Image.BILINEAR)
            photos.append(np.asarray(img, np.float32) / 255.0)
    return tuple(photos)


@register_corruption("frost")
def _frost(images, severity, draws, scale, options):
    """Blend with a random crop of frost: c0·x + c1·frost, (c0, c1) from (1, 0.2) to (0.75, 0.45)."""
    x = _unit32(images)
    c0, c1 = ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45))[severity - 1]
    n, h, w, ch = x.shape
    sources = (
        _frost_photos(options.frost_dir)
        if options.frost_dir
        else (_frost_texture(max(128, 4 * max(h, w)), options.seed),)
    )
    crops = []
    for pick, (u_top, u_left) in zip(draws.integers(0, 0, len(sources), ()), draws.uniform(1, (2,))):
        src = sources[pick]
        if src.shape[0] <= h or src.shape[1] <= w:
            src = np.asarray(ndimage.zoom(src, (2 * h / src.shape[0] + 0.1, 2 * w / src.shape[1] + 0.1, 1), order=1))
        top, left = int(u_top * (src.shape[0] - h)), int(u_left * (src.shape[1] - w))
        crops.append(src[top : top + h, left : left + w])
    frost = np.stack(crops)
    if ch == 1:
        frost = frost @ GRAY_WEIGHTS[:, None]
    return c0 * x + c1 * frost


@register_corruption("fog")
def _fog(images, severity, draws, scale, options):
    """Add a plasma-fractal fog layer of strength c0 and roughness decay c1, keeping the maximum."""
    x = _unit32(images)
    c0, decay = ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75))[severity - 1]
    h, w = x.shape[1:3]
    size = 1 << int(np.ceil(np.log2(max(h, w, 32))))
    peak = x.max(axis=(1, 2, 3), keepdims=True)
    fog = _plasma(draws.uniform, len(x), size, decay)[:, :h, :w, None]
    return (x + c0 * fog) * peak / (peak + c0)


def _rgb_to_hsv(r: np.ndarray, g: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hue, saturation and value of float64 RGB planes, with scikit-image's arithmetic (the
    reference's `rgb2hsv`): a gray pixel has hue 0 and saturation 0; where two channels tie for
    the maximum, blue's formula wins over green's and green's over red's."""
    v = np.maximum(np.maximum(r, g), b)
    delta = v - np.minimum(np.minimum(r, g), b)
    gray = delta == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(gray, 0.0, delta / v)
        hue = np.where(b == v, 4.0 + (r - g) / delta, np.where(g == v, 2.0 + (b - r) / delta, (g - b) / delta))
    h = np.where(gray, 0.0, (hue / 6.0) % 1.0)
    return h, s, v


# For each sextant of the hue, which of (v, p, q, t) is red, green and blue.
_HSV_SECTORS = np.array([[0, 3, 1], [2, 0, 1], [1, 0, 3], [1, 2, 0], [3, 1, 0], [0, 1, 2]], np.uint8)


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """float64 RGB (..., 3) from hue, saturation and value planes, with scikit-image's arithmetic."""
    sextant = np.floor(h * 6)
    f = h * 6 - sextant
    candidates = (v, v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s))
    pick = _HSV_SECTORS[sextant.astype(np.uint8) % 6]
    return np.stack([np.choose(pick[..., k], candidates) for k in range(3)], axis=-1)


def _rgb_planes(images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float64 R, G, B planes in [0, 1] (the reference's `np.array(x) / 255.`); gray is R = G = B."""
    return tuple(images[..., min(k, images.shape[3] - 1)] / 255.0 for k in range(3))


@register_corruption("brightness")
def _brightness(images, severity, draws, scale, options):
    """Add c ∈ (0.05, 0.1, 0.15, 0.2, 0.3) to the HSV value (clipped to 1), keeping hue and saturation."""
    c = (0.05, 0.1, 0.15, 0.2, 0.3)[severity - 1]
    h, s, v = _rgb_to_hsv(*_rgb_planes(images))
    out = _hsv_to_rgb(h, s, np.clip(v + c, 0, 1))
    return out if images.shape[3] == 3 else out[..., :1]


def _liquid(draws: Draws, shape: tuple[int, int], loc: float, sd: float, sigma: float) -> np.ndarray:
    """A blurred normal layer (N, H, W): the liquid of spatter."""
    return _blur(draws.normal(0, shape, loc, sd), sigma)


@register_corruption("spatter")
def _spatter(images, severity, draws, scale, options):
    """Water drops (severities 1–3: pale turquoise, shaded by the distance to the drop edges)
    or mud (4–5: brown blobs) splashed on the image."""
    x = _unit32(images)
    loc, sd, sigma, threshold, intensity, mud = (
        (0.62, 0.1, 0.7, 0.7, 0.5, 0),
        (0.65, 0.1, 0.8, 0.7, 0.5, 0),
        (0.65, 0.3, 1, 0.69, 0.5, 0),
        (0.65, 0.1, 0.7, 0.69, 0.6, 1),
        (0.65, 0.1, 0.5, 0.68, 0.6, 1),
    )[severity - 1]
    n, h, w, ch = x.shape
    liquid = _liquid(draws, (h, w), loc, sd, sigma * scale)
    liquid[liquid < threshold] = 0
    if mud:
        m = _blur((liquid > threshold).astype(np.float32), intensity * scale)
        m[m < 0.8] = 0
        color = np.array([63, 42, 20], np.float32) / 255.0
        color = color if ch == 3 else (color @ GRAY_WEIGHTS)[None]
        return x * (1 - m[..., None]) + m[..., None] * color
    inside = liquid > 0
    edges = inside ^ ndimage.binary_erosion(inside, structure=np.ones((1, 3, 3), bool))
    dist = np.stack([ndimage.distance_transform_edt(~e) for e in edges]).astype(np.float32)
    dist = ndimage.uniform_filter(np.minimum(dist, 20.0), size=(1, 3, 3))
    ranks = dist.reshape(n, -1).argsort(axis=1).argsort(axis=1).reshape(dist.shape)
    dist = ranks / max(h * w - 1, 1)  # histogram equalisation
    emboss = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], np.float32)
    dist = np.clip(ndimage.convolve(dist, emboss[None], mode="mirror"), 0, None)
    dist = ndimage.uniform_filter(dist, size=(1, 3, 3))
    m = liquid * dist
    m = m / np.maximum(m.max(axis=(1, 2), keepdims=True), 1e-12) * intensity
    color = np.array([175, 238, 238], np.float32) / 255.0
    color = color if ch == 3 else (color @ GRAY_WEIGHTS)[None]
    return x + m[..., None] * color


# ---------------------------------------------------------------- digital


@register_corruption("contrast")
def _contrast(images, severity, draws, scale, options):
    """Scale each channel's deviation from its mean by c ∈ (0.75, 0.5, 0.4, 0.3, 0.15)."""
    c = (0.75, 0.5, 0.4, 0.3, 0.15)[severity - 1]
    x = _unit(images)
    means = x.mean(axis=(1, 2), keepdims=True)
    return (x - means) * c + means


@register_corruption("elastic_transform")
def _elastic_transform(images, severity, draws, scale, options):
    """A random affine jitter of three control points, then a smooth random displacement
    field (amplitude α, smoothness σ), both sampled bilinearly with reflection."""
    x = _unit32(images)
    frac = ((0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03))[severity - 1]
    n, h, w, _ = x.shape
    alpha, sigma, jitter = (f * min(h, w) for f in frac)  # fractions of the image size, as in the original
    centre = np.array([h // 2, w // 2], np.float64)[::-1]  # (x, y)
    square = min(h, w) // 3
    src = np.array([centre + square, [centre[0] + square, centre[1] - square], centre - square])
    dst = src[None] + draws.uniform(0, (3, 2), -jitter, jitter)
    ys, xs = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    ones = np.ones((n, 3, 1))
    # inverse map: output pixel -> source point, from the 3-point affine (one 3×3 solve per sample)
    a = np.linalg.solve(np.concatenate([dst, ones], axis=2), np.column_stack([src, ones[0]])[None])
    a = a[:, :, :, None, None]
    xx = a[:, 0, 0] * xs + a[:, 1, 0] * ys + a[:, 2, 0]
    yy = a[:, 0, 1] * xs + a[:, 1, 1] * ys + a[:, 2, 1]
    warped = _sample(x, yy, xx, "mirror")
    if alpha == 0:
        return warped
    fields = draws.uniform(1, (2, h, w), -1, 1).astype(np.float32)
    dx = _blur(fields[:, 0], sigma, mode="reflect", truncate=3.0) * alpha
    dy = _blur(fields[:, 1], sigma, mode="reflect", truncate=3.0) * alpha
    return _sample(warped, ys[None] + dy, xs[None] + dx, "reflect")


def _pil_each(images: np.ndarray, fn: Callable) -> np.ndarray:
    """Apply a Pillow operation to every uint8 image of a batch."""
    from PIL import Image

    out = []
    for img in images:
        res = np.asarray(fn(Image.fromarray(img[..., 0] if img.shape[2] == 1 else img)), np.uint8)
        out.append(res[..., None] if res.ndim == 2 else res)
    return np.stack(out)


def _pil_resize(mosaic: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pillow's BOX resize of one (H, W, C) uint8 mosaic to (height, width, C)."""
    from PIL import Image

    c = mosaic.shape[2]
    out = np.asarray(Image.fromarray(mosaic[..., 0] if c == 1 else mosaic).resize((width, height), Image.BOX))
    return out.reshape(height, width, c)


def _box_resize(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """`Image.resize((width, height), Image.BOX)` of every image, bit for bit, in two Pillow calls.

    Pillow resizes in a horizontal pass, saved as uint8, then a vertical one, and a pass computes
    each row (column) from that row (column) alone with coefficients set by the sizes. So the
    horizontal pass runs on the images stacked top to bottom, the vertical one on them side by
    side: each pass only sees the axis it resizes within one image."""
    n, h, w, c = images.shape
    if w != width:
        images = _pil_resize(images.reshape(n * h, w, c), width, n * h).reshape(n, h, width, c)
    if h != height:
        side_by_side = images.transpose(1, 0, 2, 3).reshape(h, n * width, c)
        images = _pil_resize(side_by_side, n * width, height).reshape(height, n, width, c).transpose(1, 0, 2, 3)
    return np.ascontiguousarray(images)


@register_corruption("pixelate")
def _pixelate(images, severity, draws, scale, options):
    """Box-downsample to a fraction c ∈ (0.95, 0.9, 0.85, 0.75, 0.65) of the size and back
    (Pillow's BOX filter, as the reference's two `resize` calls)."""
    c = (0.95, 0.9, 0.85, 0.75, 0.65)[severity - 1]
    h, w = images.shape[1:3]
    small = _box_resize(images, max(1, int(h * c)), max(1, int(w * c)))
    return _box_resize(small, h, w)


@register_corruption("jpeg_compression")
def _jpeg_compression(images, severity, draws, scale, options):
    """JPEG round trip at quality (80, 65, 58, 50, 40)."""
    from PIL import Image

    quality = (80, 65, 58, 50, 40)[severity - 1]

    def roundtrip(im):
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=quality)
        buf.seek(0)
        with Image.open(buf) as out:
            return out.copy()

    return _pil_each(images, roundtrip)


@register_corruption("saturate")
def _saturate(images, severity, draws, scale, options):
    """HSV saturation S → clip(a·S + b), (a, b) from (0.3, 0) to (2.5, 0.2). A gray pixel has
    no hue (taken as red, as in HSV conversion), so grayscale images change only through b:
    their output is the luma of the reddened RGB."""
    a, b = ((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2))[severity - 1]
    h, s, v = _rgb_to_hsv(*_rgb_planes(images))
    out = _hsv_to_rgb(h, np.clip(s * a + b, 0, 1), v)
    return out if images.shape[3] == 3 else _gray(out)


def load_official(root: Path, name: str, severity: int, n: int) -> np.ndarray:
    """The first `n` images of the official CIFAR-10-C file `<root>/<name>.npy` at `severity`.

    The files are uint8 (50000, 32, 32, 3), severity-major: rows (s−1)·10000 … s·10000−1.
    """
    path = Path(root) / f"{name}.npy"
    if not path.is_file():
        raise PruneScopeError(
            f"{path} not found", "point corrupted_root to the CIFAR-10-C folder (<name>.npy and labels.npy)"
        )
    try:
        data = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise PruneScopeError(
            f"cannot read {path}: {exc}", "replace it with an intact copy of the CIFAR-10-C file"
        ) from None
    per = len(data) // 5
    if data.dtype != np.uint8 or data.ndim != 4 or len(data) % 5 or per < n:
        raise PruneScopeError(
            f"{path} has shape {data.shape} {data.dtype}", f"expected uint8 (5·N, H, W, C) with N ≥ {n}, severity-major"
        )
    return np.asarray(data[(severity - 1) * per : (severity - 1) * per + n])


def check_official_labels(root: Path, labels: np.ndarray) -> None:
    """Refuse official files whose labels do not match the run's test labels (a wrong folder or order)."""
    path = Path(root) / "labels.npy"
    if not path.is_file():
        raise PruneScopeError(
            f"{path} not found", "the CIFAR-10-C folder holds labels.npy next to the corruption files"
        )
    official = np.load(path, mmap_mode="r")
    per = len(official) // 5
    if per < len(labels) or not np.array_equal(np.asarray(official[: len(labels)]).astype(np.int64), labels):
        raise PruneScopeError(
            f"the labels in {path} do not match the run's test set",
            "use the CIFAR-10 test set in its original order (no test_limit other than a prefix) with CIFAR-10-C",
        )
