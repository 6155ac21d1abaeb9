"""Robustness statistics of shared/DESIGN.md §1, as pure numpy functions (no torch).

Shared by the terminal report and the dashboard, which reads the store only; part of the
contract package so that both compute them the same way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

TABLE1_MEASURES = ("angle", "length", "margin")
TRIM = 0.005  # drop the lowest and highest 0.5 % before plotting a density (Fig. 10)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation over the pairs where both values are finite (NaN when undefined)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 2 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def relative_margin_change(clean_margin: np.ndarray, corrupted_margin: np.ndarray) -> np.ndarray:
    """(m_clean − m_corrupted) / m_clean per sample and corrupted version (Fig. 10).

    Shapes: clean (N,), corrupted (N,) or (K, N) for K corrupted versions; NaN where the
    clean margin is zero or undefined.
    """
    clean = np.asarray(clean_margin, np.float64)
    corrupted = np.asarray(corrupted_margin, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        change = (clean - corrupted) / clean
    return np.where(np.isfinite(change), change, np.nan)


def trim(values: np.ndarray, fraction: float = TRIM) -> np.ndarray:
    """The finite values without the lowest and highest `fraction` of them."""
    v = np.asarray(values, np.float64).ravel()
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return v
    lo, hi = np.quantile(v, [fraction, 1.0 - fraction])
    return v[(v >= lo) & (v <= hi)]


def table1(samples: pd.DataFrame) -> pd.DataFrame:
    """Table 1: Pearson correlation, per model, of per-sample robustness with the clean angle,
    length and margin. `samples`: the clean rows with model_id, robustness, angle, length, margin."""
    rows = {
        model_id: {m: pearson(g["robustness"].to_numpy(), g[m].to_numpy()) for m in TABLE1_MEASURES}
        for model_id, g in samples.groupby("model_id", sort=True)
    }
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(TABLE1_MEASURES)).astype(float)


def run_table1(run_dir: Path) -> pd.DataFrame:
    """Table 1 of a run folder, read from its models' clean samples."""
    from pipeline.store.io import clean_samples, load, run_meta
    from pipeline.store.schema import MODELS_TABLE

    meta, _ = run_meta(run_dir)
    models = load(run_dir, MODELS_TABLE, ["model_id"]).column("model_id").to_pylist()
    samples = clean_samples(run_dir, models, ["robustness", *TABLE1_MEASURES], meta["num_classes"]).to_pandas()
    return table1(samples)
