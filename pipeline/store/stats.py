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
# A model is at chance when its clean accuracy is at most the share of the most frequent
# test class plus this margin: it predicts (nearly) one class, and its correlations in
# Table 1 say nothing about its geometry.
CHANCE_MARGIN = 0.02


def chance_level(labels: np.ndarray) -> float:
    """Accuracy of always predicting the most frequent class of `labels`."""
    labels = np.asarray(labels)
    return float(np.bincount(labels).max() / len(labels)) if len(labels) else float("nan")


def at_chance(accuracy: float, labels: np.ndarray) -> bool:
    """Whether a clean accuracy is no better than predicting the most frequent class (+ CHANCE_MARGIN)."""
    return bool(np.isfinite(accuracy) and len(labels) and accuracy <= chance_level(labels) + CHANCE_MARGIN)


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


def table1(samples: pd.DataFrame, accuracy: dict[str, float] | None = None) -> pd.DataFrame:
    """Table 1: Pearson correlation, per model, of per-sample robustness with the clean angle,
    length and margin. `samples`: the clean rows with model_id, robustness, angle, length,
    margin (and label). A model whose clean `accuracy` is at chance (`at_chance`) keeps its
    row with NaN correlations and a `note` saying it is left out."""
    rows = {}
    for model_id, g in samples.groupby("model_id", sort=True):
        acc = (accuracy or {}).get(model_id, float("nan"))
        if "label" in g and at_chance(acc, g["label"].to_numpy()):
            rows[model_id] = dict.fromkeys(TABLE1_MEASURES, float("nan")) | {
                "note": f"at chance (accuracy {acc:.3f}): left out"
            }
        else:
            rows[model_id] = {m: pearson(g["robustness"].to_numpy(), g[m].to_numpy()) for m in TABLE1_MEASURES} | {
                "note": ""
            }
    return pd.DataFrame.from_dict(rows, orient="index", columns=[*TABLE1_MEASURES, "note"]).astype(
        dict.fromkeys(TABLE1_MEASURES, float)
    )


def run_table1(run_dir: Path) -> pd.DataFrame:
    """Table 1 of a run folder, read from its models' clean samples; models at chance left out with a note."""
    from pipeline.store.io import clean_samples, load, run_meta
    from pipeline.store.schema import MODELS_TABLE

    meta, _ = run_meta(run_dir)
    models = load(run_dir, MODELS_TABLE, ["model_id", "clean_accuracy"]).to_pydict()
    columns = ["label", "robustness", *TABLE1_MEASURES]
    samples = clean_samples(run_dir, models["model_id"], columns, meta["num_classes"]).to_pandas()
    return table1(samples, dict(zip(models["model_id"], models["clean_accuracy"])))
