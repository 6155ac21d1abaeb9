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
    x = np.linspace(bins["lo"] - bw, bins["hi"] + bw, points)
    if "counts" in bins:
        counts = np.asarray(bins["counts"], np.float64)
        edges = np.linspace(x[0], x[-1], len(counts) + 1)
        full = counts > 0  # empty bins add nothing: fewer kernels to evaluate
        centres, weights = ((edges[:-1] + edges[1:]) / 2)[full], counts[full] / counts.sum()
    else:
        centres = np.asarray(bins["values"], np.float64)
        weights = np.full(len(centres), 1 / len(centres))
    kernels = np.subtract.outer(x / bw, centres / bw)  # (points, kernels), in place from here: views draw dozens
    kernels *= kernels
    kernels *= -0.5
    np.exp(kernels, out=kernels)
    return x, (kernels @ weights) / (bw * np.sqrt(2 * np.pi))
