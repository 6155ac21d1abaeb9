"""A small Gaussian kernel density estimate for the marginal and comparison plots."""

from __future__ import annotations

import numpy as np

GRID = 80
BINS = 256


def kde(
    values: np.ndarray, lo: float | None = None, hi: float | None = None, points: int = GRID
) -> tuple[np.ndarray, np.ndarray]:
    """(x, density) of the finite `values` on an even grid (Scott's bandwidth); empty when undefined."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if len(v) < 2 or np.ptp(v) == 0:
        return np.empty(0), np.empty(0)
    lo = float(v.min()) if lo is None else lo
    hi = float(v.max()) if hi is None else hi
    bw = 1.06 * v.std() * len(v) ** (-1 / 5)
    x = np.linspace(lo - bw, hi + bw, points)
    if (
        len(v) > BINS
    ):  # bin first: at this many points the estimate of a fine histogram is indistinguishable, and cheaper
        counts, edges = np.histogram(v, bins=BINS, range=(x[0], x[-1]))
        centres, weights = (edges[:-1] + edges[1:]) / 2, counts / counts.sum()
    else:
        centres, weights = v, np.full(len(v), 1 / len(v))
    dens = (weights[None, :] * np.exp(-0.5 * ((x[:, None] - centres[None, :]) / bw) ** 2)).sum(1) / (
        bw * np.sqrt(2 * np.pi)
    )
    return x, dens
