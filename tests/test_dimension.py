"""Fig. 3 (the curse of dimensionality): random-vector angles, per-model angle summaries, an untrained model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline import store
from pipeline.store import model_kinds, pooled, random_angle_stats
from pipeline.store import run_angle_summary as angle_summary
from tests.conftest import tiny_config


def test_random_angle_stats_match_sampling_and_shrink():
    rng = np.random.default_rng(0)
    dims = np.array([2, 3, 10, 84, 512])
    mean, std = random_angle_stats(dims)
    for d, m, s in zip(dims, mean, std):
        a, b = rng.normal(size=(2, 40_000, d))
        cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        angles = np.degrees(np.arccos(cos))
        assert m == 90 and abs(angles.mean() - 90) < 0.6
        assert s == pytest.approx(angles.std(), rel=0.02)
    assert np.all(np.diff(std) < 0)
    assert std[0] == pytest.approx(180 / np.sqrt(12), rel=1e-6)  # uniform on [0°, 180°] in the plane
    assert std[1] == pytest.approx(np.degrees(np.sqrt((np.pi**2 - 8) / 4)), rel=1e-6)  # density sin θ / 2 in 3-D


def test_random_angle_stats_stay_exact_in_high_dimensions():
    """The quadrature follows the density as it narrows: the spread of a large d matches the
    asymptotic 1/√(d − 1) rad (its relative error is O(1/d))."""
    dims = np.array([10_000, 100_000, 1_000_000])
    _, std = random_angle_stats(dims)
    assert std == pytest.approx(np.degrees(1 / np.sqrt(dims - 1)), rel=2 / dims.min())


def test_pooled_is_the_std_of_the_union():
    rng = np.random.default_rng(1)
    parts = [rng.normal(m, s, n) for m, s, n in ((60, 5, 40), (80, 12, 70), (90, 3, 10))]
    m, s = pooled(pd.Series([len(p) for p in parts]), [p.mean() for p in parts], [p.std() for p in parts])
    union = np.concatenate(parts)
    assert m == pytest.approx(union.mean()) and s == pytest.approx(union.std())
    assert np.isnan(pooled(pd.Series([0]), [np.nan], [np.nan])[0])


def test_model_kinds():
    kinds = model_kinds(
        pd.Series(["dense", "dense", "magnitude", "mpt"]), pd.Series(["untrained", "trained", "parent", "random"])
    )
    assert kinds.tolist() == ["untrained", "dense", "pruned", "pruned"]


def test_angle_summary_of_the_tiny_run(tiny_run):
    summary = angle_summary(tiny_run).set_index("model_id")
    assert len(summary) == 9 and (summary["dim"] == 128).all() and (summary["n"] == 120).all()
    assert summary.loc["digits_cnn-dense", "kind"] == "dense"
    assert set(summary.drop("digits_cnn-dense")["kind"]) == {"pruned"}
    clean = pq.read_table(store.samples_path(tiny_run, "digits_cnn-dense", store.CLEAN, 0)).to_pandas()
    angles = np.stack(clean["angles"].to_numpy())
    others = angles[np.arange(angles.shape[1])[None, :] != clean["label"].to_numpy()[:, None]]
    row = summary.loc["digits_cnn-dense"]
    assert row["angle_mean"] == pytest.approx(clean["angle"].mean(), rel=1e-5)
    assert row["angle_std"] == pytest.approx(clean["angle"].std(ddof=0), rel=1e-4)
    assert row["other_mean"] == pytest.approx(others.mean(), rel=1e-5)
    assert row["above_30"] == pytest.approx((clean["angle"] > 30).mean())
    assert row["angle_mean"] < row["other_mean"]  # trained: samples lean toward their own class direction


def test_untrained_model_sits_on_the_random_vectors(tmp_path):
    """`[train] epochs = 0` keeps the initial weights: its model is recorded as untrained and its
    samples are about as far from their class direction as random vectors are (Fig. 3)."""
    from pipeline.config import parse_config
    from pipeline.runner import build_run

    run = build_run(parse_config(tiny_config(prune=[], train={"epochs": 0})), tmp_path).run_dir
    models = pq.read_table(run / store.MODELS).to_pandas()
    assert models["init"].tolist() == [store.INIT_UNTRAINED]
    row = angle_summary(run).iloc[0]
    _, std = random_angle_stats(np.array([row["dim"]]))
    assert row["kind"] == "untrained"
    assert abs(row["angle_mean"] - 90) < std[0] and row["angle_std"] < 2 * std[0]
