"""A small Gaussian kernel density estimate for the marginal, comparison and robustness plots."""

from __future__ import annotations

import numpy as np

from pipeline.store import density_bins

GRID = 80


def kde(
    values: np.ndarray, lo: float | None = None, hi: float | None = None, points: int = GRID
) -> tuple[np.ndarray, np.ndarray]:
    """(x, density) of the finite `values` on an even grid (Scott's bandwidth); empty when undefined."""
    return kde_of(density_bins(values, lo, hi), points)


def kde_of(bins: dict | None, points: int = GRID) -> tuple[np.ndarray, np.ndarray]:
    """(x, density) on an even grid over [lo − bw, hi + bw] from pipeline.store.density_bins() (or a
    stored summary of the same keys): the kernels sit on the values, or on the centres of the bins
    weighted by their counts; empty when None or without a density."""
    if bins is None or "bw" not in bins:
        return np.empty(0), np.empty(0)
    bw = bins["bw"]
    start, stop = bins["lo"] - bw, bins["hi"] + bw
    x = start + (stop - start) / max(points - 1, 1) * np.arange(points)  # np.linspace, without its checks
    if "counts" in bins:
        counts = np.asarray(bins["counts"], np.float64)
        full = np.flatnonzero(counts)  # empty bins add nothing: fewer kernels to evaluate
        centres, weights = start + (stop - start) / len(counts) * (full + 0.5), counts[full] / counts.sum()
    else:
        centres = np.asarray(bins["values"], np.float64)
        weights = np.full(len(centres), 1 / len(centres))
    # (points, kernels) in single precision, in place from here: views draw dozens (a figure is drawn in float32)
    kernels = np.subtract.outer(x / bw, centres / bw).astype(np.float32)
    kernels *= kernels
    kernels *= -0.5
    np.exp(kernels, out=kernels)
    return x, (kernels @ weights.astype(np.float32)).astype(np.float64) / (bw * np.sqrt(2 * np.pi))
