"""App unit tier: every figure builder on small, empty and one-class frames; the reader's
filters, name checks and error messages. No browser, no torch in the app."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from plotly.io.json import to_json_plotly

from app import ids, plotlyjs
from app.figures import decode_array, figure, sample_ids
from app.figures.attribution import drift_vs_sparsity
from app.figures.density import kde
from app.figures.dimension import angle_dimension
from app.figures.evaltable import (
    CHAR_PX,
    LINE_PX,
    PLOT_PX,
    evaluation_table,
    row_labels,
    table_frame,
    table_structure,
)
from app.figures.local import comparison, empty_figure, small_multiples, trajectories
from app.figures.parallel import (
    STRIP_HALF,
    axis_positions,
    axis_ranges,
    box_constraints,
    brushed,
    density_strips,
    dimensions,
    line_frame,
    parallel_coordinates,
    rank_axes,
)
from app.figures.robustness import margin_change
from app.figures.sensitivity import pie_per_class, sensitivity_heatmap
from app.figures.sweetspot import accuracy_vs_sparsity, sweet_spot_curves, sweet_spot_figure
from app.reader import StoreError, StoreReader
from app.snapshot import to_html
from app.state import Combo, make_selection, selected_ids
from app.views.combinations import LISTED, MAX_OPTIONS, combo_frame, combo_options
from app.views.local import points_to_ids
from pipeline import store
from pipeline.store import SENSITIVITY_METRICS as SENS_METRICS
from pipeline.store import density_bins
from tests.evaltable_shapes import models_in, rects, shape

REPO = Path(__file__).resolve().parents[1]


def F(spec: dict) -> go.Figure:
    """A builder's spec as a validated plotly Figure (attribute access for the assertions)."""
    return go.Figure(spec)


def arr(value) -> np.ndarray:
    """A trace array as numbers, whether the builder left it a list or made it a typed array."""
    return np.asarray(decode_array(value))


def samples_frame(n: int = 40, classes: int = 3, seed: int = 0, with_angles: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "sample_id": np.arange(n),
            "label": rng.integers(0, classes, n),
            "pred": rng.integers(0, classes, n),
            "angle": rng.uniform(40, 90, n),
            "length": rng.uniform(1, 5, n),
            "margin": rng.normal(0, 1, n),
            "confidence": rng.uniform(0, 1, n),
            "loss": rng.uniform(0, 2, n),
            "robustness": rng.uniform(0, 1, n),
        }
    )
    df["correct"] = df["margin"] > 0
    if with_angles:
        for j in range(classes):
            df[f"a{j}"] = rng.uniform(30, 120, n)
    return df


def evals_frame() -> pd.DataFrame:
    rows = []
    for mid, method, sp in (
        ("m-dense", "dense", 0.0),
        ("m-mag-50", "magnitude", 0.5),
        ("m-mag-90", "magnitude", 0.9),
        ("m-rand-50", "random", 0.5),
    ):
        for corr, sev, acc in (("clean", 0, 0.9), ("fog", 1, 0.8), ("fog", 3, 0.6)):
            rows.append(
                {
                    "model_id": mid,
                    "arch": "net",
                    "method": method,
                    "scope": "global",
                    "schedule": "oneshot",
                    "steps": 1,
                    "finetune_epochs": 0,
                    "sparsity": sp,
                    "target_sparsity": sp,
                    "corruption": corr,
                    "severity": sev,
                    "accuracy": acc - sp / 4,
                    "n": 10,
                }
            )
    return pd.DataFrame(rows)


def test_evaluation_table_ranks_highlights_and_shows_subset():
    frame = table_frame(evals_frame(), 3)
    fig = F(evaluation_table(frame, selected="m-mag-50"))
    bars = fig.data[0]  # a point at each bar's slot: hover, click and the keyboard
    assert len(arr(bars.x)) == 2 * 3  # 3 pruned models × (clean, fog)
    assert models_in(fig, "outline selected") == {"m-mag-50"} and models_in(fig, "outline compared") == set()
    height = arr(bars.y)
    top = max(range(len(height)), key=lambda i: height[i])
    assert bars.customdata[top][0].startswith("m-mag")  # magnitude's best beats random's: on top
    assert len(rects(shape(fig, "difference -")["path"])) == 0 and models_in(fig, "veil") == set()
    subset = frame[["model_id", "column"]].assign(accuracy=0.2)
    with_subset = F(evaluation_table(frame, subset=subset, subset_size=5))
    assert len(rects(shape(with_subset, "difference -")["path"])) == 6, "a red segment a bar: the subset does worse"
    assert len(rects(shape(with_subset, "difference +")["path"])) == 0
    mean = table_frame(evals_frame(), "mean")
    assert mean[mean["column"] == "fog"]["accuracy"].round(3).tolist() == pytest.approx([0.7, 0.575, 0.475, 0.575])


def test_evaluation_table_empty():
    fig = F(evaluation_table(table_frame(evals_frame().iloc[0:0], 3)))
    assert "no evaluations" in fig.layout.annotations[0].text


def test_small_multiples_place_each_class_in_its_cell_on_shared_axes(monkeypatch):
    """One pair of axes: class i's points lie in cell (column i % 5, row i // 5 from the top), and the
    axes' tick labels read the values back at their positions (angle below, length left, margin above)."""
    from app.figures import decode_array
    from app.figures.local import SCATTER_U, SCATTER_V, SIDE_U

    df = samples_frame(n=700, classes=7)
    classes = [6, 0, 1, 2, 3, 4, 5]  # the class in focus first
    fig = small_multiples(df, [f"c{i}" for i in range(7)], classes)
    layout = fig["layout"]
    label = df.set_index("sample_id")["label"]
    markers = [t for t in fig["data"] if t["mode"] == "markers"]
    assert {t.get("xaxis", "x") + t.get("yaxis", "y") for t in markers} == {"xy"}
    for t in markers:
        x, y = decode_array(t["x"]), decode_array(t["y"])
        cell = np.array([classes.index(label[row[0]]) for row in t["customdata"]])
        u, v = x - cell % 5, y - (1 - cell // 5)  # 2 rows: row 0 is the upper, from y = 1
        assert (u >= SCATTER_U[0] - 1e-6).all() and (u <= SCATTER_U[1] + 1e-6).all()
        assert (v >= SCATTER_V[0] - 1e-6).all() and (v <= SCATTER_V[1] + 1e-6).all()

    def reads(axis: dict, zone: tuple[float, float], cells: int) -> tuple[float, float]:
        """The value at a position within a cell (slope, intercept), from the axis's tick labels."""
        at = np.asarray(decode_array(axis["tickvals"]), float)
        values = [float(t.replace("\u2212", "-")) for t in axis["ticktext"]]
        assert len(at) == len(values) and len(at) % cells == 0 and len(at) // cells >= 2
        first = at[: len(at) // cells]  # the first cell's ticks: every cell has them at the same place
        assert np.allclose(at.reshape(cells, -1) - np.arange(cells)[:, None], first)
        assert ((first > zone[0]) & (first < zone[1])).all()
        slope = (values[1] - values[0]) / (first[1] - first[0])
        return slope, values[0] - slope * first[0]

    slope, start = reads(layout["xaxis"], SCATTER_U, 2)  # under the bottom row's two cells only
    first = np.asarray(decode_array(layout["xaxis"]["tickvals"]), float)[: len(layout["xaxis"]["ticktext"]) // 2]
    under = [a for a in layout["annotations"] if a.get("y") == 1 and a.get("yanchor") == "top"]
    assert [(round(a["x"], 6), a["text"]) for a in under] == [  # the other columns: under their upper cell
        (round(c + x, 6), text) for c in (2, 3, 4) for x, text in zip(first, layout["xaxis"]["ticktext"])
    ]
    t = markers[0]
    x = decode_array(t["x"])
    assert start + slope * (x - np.floor(x)) == pytest.approx([row[1] for row in t["customdata"]], abs=0.02)
    slope, start = reads(layout["yaxis"], SCATTER_V, 2)
    y = decode_array(t["y"])
    assert start + slope * (y - np.floor(y)) == pytest.approx([row[2] for row in t["customdata"]], abs=0.02)
    reads(layout["xaxis2"], SIDE_U, 5)
    assert layout["xaxis2"]["matches"] == "x" and layout["xaxis2"]["overlaying"] == "x"
    titles = [a["text"] for a in layout["annotations"] if "<b>" in a["text"]]
    assert titles == [
        f"<b>c{c}</b> · {(df[df.label == c].correct.mean()):.1%} ({(df.label == c).sum()})" for c in classes
    ]
    assert not [a for a in layout["annotations"] if "shown" in a["text"]]
    monkeypatch.setattr("app.figures.local.MAX_POINTS", 30)  # a class of more samples draws a sample of them
    sampled = small_multiples(df, [f"c{i}" for i in range(7)], classes)
    assert sum(len(t["customdata"]) for t in sampled["data"] if t["mode"] == "markers") == 30 * len(classes)
    notes = [a["text"] for a in sampled["layout"]["annotations"] if "shown" in a["text"]]
    assert notes == [f"30 of {(df.label == c).sum()} shown" for c in classes]


def test_local_small_multiples_and_comparison():
    df = samples_frame()
    fig = F(small_multiples(df, ["a", "b", "c"], [0, 1, 2], selected={1, 2}))
    assert any(t.type == "scatter" and t.mode == "markers" for t in fig.data)  # few points: SVG
    many = F(small_multiples(samples_frame(n=3000), ["a", "b", "c"], [0, 1, 2]))
    assert {t.type for t in many.data if t.mode == "markers"} == {"scattergl"}  # many: WebGL
    raw = small_multiples(samples_frame(n=3000), ["a", "b", "c"], [0, 1, 2])["data"]  # as the browser gets it
    markers = [t for t in raw if t["mode"] == "markers"]  # dcc.Graph gives WebGL points the customdata it holds:
    assert all(isinstance(t["customdata"], list) for t in markers)  # a plain list, which it can index
    rows = [row for t in markers for row in t["customdata"]]  # [sample id, angle, length]: the hover's values
    assert sorted(row[0] for row in rows) == sorted(samples_frame(n=3000)["sample_id"])
    by_id = samples_frame(n=3000).set_index("sample_id")
    assert all(
        row[1:] == pytest.approx([by_id.at[row[0], "angle"], by_id.at[row[0], "length"]], abs=5e-3) for row in rows
    )
    assert points_to_ids([{"customdata": rows[0]}, {"customdata": rows[1][0]}, {"customdata": "x"}]) == [
        rows[0][0],
        rows[1][0],
    ]
    assert "a</b> · " in fig.layout.annotations[0].text
    one = F(small_multiples(df[df["label"] == 1], ["a", "b", "c"], [0, 1, 2]))
    assert sum(t.mode == "markers" for t in one.data) == 2  # one class: correct + incorrect
    assert "no samples" in F(small_multiples(df.iloc[0:0], ["a"], [0])).layout.annotations[0].text
    moves = trajectories(df, samples_frame(seed=1).assign(label=df["label"]))
    assert set(moves["category"]) <= {"both_wrong", "right_wrong", "wrong_right", "both_right"}
    assert (moves["d_margin"] == moves["margin_cmp"] - moves["margin_ref"]).all()
    cmp = F(comparison(moves[moves["label"] == 0], "a"))
    assert all(isinstance(t.customdata, tuple) for t in cmp.data if t.mode == "markers")  # plain lists, as above
    assert [a.text.split(" (")[0] for a in cmp.layout.annotations[:5]] == [
        "all samples",
        "both wrong",
        "right → wrong",
        "wrong → right",
        "both right",
    ]
    assert "no samples" in F(comparison(moves.iloc[0:0], "a")).layout.annotations[0].text


def test_parallel_coordinates_brushing_and_axis_ranking():
    df = samples_frame(classes=30)
    dims = dimensions(rank_axes(df, None, 0, 30), [f"c{j}" for j in range(30)])
    assert len(dims) == 20 + 2 and dims[0][0] == "a0" and dims[-1][0] == "margin"
    ids = brushed(df, dims, {str(len(dims) - 1): [0.0, 10.0]})
    assert set(ids) == set(df.loc[df["margin"] >= 0, "sample_id"])
    two = brushed(df, dims, {str(len(dims) - 1): [[-10.0, -1.0], [1.0, 10.0]]})
    assert set(two) == set(df.loc[df["margin"].abs() >= 1, "sample_id"])
    strips = F(density_strips(df, samples_frame(seed=2, classes=30), dims))
    assert [t.name for t in strips.data] == ["reference", "compared"]
    assert "no samples" in F(parallel_coordinates(df.iloc[0:0], dims, "t")).layout.annotations[0].text


def test_density_strips_are_one_polygon_per_axis_over_it_the_larger_density_reaching_across():
    """All strips share one pair of axes (a subplot a strip cost plotly.js 0.1–0.27 s of the first page):
    for axis i each model's density is a polygon from i − STRIP_HALF, NaN-separated from the next; the
    larger of the two reaches i + STRIP_HALF, the values fill the height; an axis without values has none."""
    df, other = samples_frame(classes=30), samples_frame(seed=2, classes=30)
    dims = dimensions(rank_axes(df, None, 0, 30), [f"c{j}" for j in range(30)])
    df.loc[:, dims[1][0]] = other.loc[:, dims[1][0]] = np.nan  # an axis no row holds (k nearest only)
    strips = F(density_strips(df, other, dims))
    assert list(strips.layout.xaxis.range) == [-0.5, len(dims) - 0.5], "the parallel coordinates' x range"
    reach = np.full(len(dims), -np.inf)
    low, high = np.full(len(dims), np.inf), np.full(len(dims), -np.inf)  # each axis's heights, both models
    for trace in strips.data:
        assert trace.fill == "toself" and trace.hoverinfo == "skip"
        x, y = arr(trace.x), arr(trace.y)
        cuts = np.flatnonzero(np.isnan(x))
        assert (np.isnan(y[cuts])).all() and cuts[-1] == len(x) - 1
        axes = []
        for poly_x, poly_y in zip(np.split(x, cuts + 1)[:-1], np.split(y, cuts + 1)[:-1]):
            poly_x, poly_y = poly_x[:-1], poly_y[:-1]
            i = int(round(poly_x[0] + STRIP_HALF))
            axes.append(i)
            assert poly_x[0] == poly_x[-1] == pytest.approx(i - STRIP_HALF), "from the strip's left edge, back to it"
            assert (poly_x >= i - STRIP_HALF - 1e-9).all() and (poly_x <= i + STRIP_HALF + 1e-9).all()
            assert (poly_y >= -1e-9).all() and (poly_y <= 1 + 1e-9).all()
            reach[i] = max(reach[i], poly_x.max())
            low[i], high[i] = min(low[i], poly_y.min()), max(high[i], poly_y.max())
        assert axes == [i for i in range(len(dims)) if i != 1], "one polygon an axis with values, in axis order"
    drawn = np.isfinite(reach)
    assert np.allclose(reach[drawn], np.arange(len(dims))[drawn] + STRIP_HALF), "the larger density spans the strip"
    assert np.allclose(low[drawn], 0) and np.allclose(high[drawn], 1), "both models' values on one scale, the height"
    single = F(density_strips(df, None, dims))
    assert [t.name for t in single.data] == ["reference"] and "compared" not in single.layout.annotations[0].text
    assert F(density_strips(df.iloc[0:0], None, dims)).data == ()
    assert "no samples" in F(parallel_coordinates(df.iloc[0:0], dims, "t")).layout.annotations[0].text


def test_parallel_coordinates_draw_each_sample_through_its_axis_values():
    df = samples_frame(classes=3)
    g = df[df["label"] == 0]
    dims = dimensions([0, 1, 2], ["a", "b", "c"])
    picked = int(g["sample_id"].iloc[0])
    fig = F(parallel_coordinates(g, dims, "t", selected={picked}))
    correct, incorrect, chosen = fig.data[:3]
    assert (correct.name, incorrect.name, chosen.name) == ("correct", "incorrect", "selected")
    k = len(dims)
    y = arr(chosen.y)
    assert len(y) == k + 1 and np.isnan(y[k]) and list(arr(chosen.x)[:k]) == list(range(k))
    ranges = axis_ranges(g, dims)
    row = g[g["sample_id"] == picked].iloc[0]
    assert np.allclose(y[:k], [(row[col] - lo) / (hi - lo) for (col, _), (lo, hi) in zip(dims, ranges)])
    rest = g[g["sample_id"] != picked]
    assert len(arr(correct.y)) == (k + 1) * int(rest["correct"].sum()) and len(arr(incorrect.y)) == (k + 1) * int(
        (~rest["correct"]).sum()
    )
    assert list(fig.layout.xaxis.ticktext) == [label for _, label in dims]
    for i, (lo, hi) in enumerate(ranges):  # each axis's value ticks span its values over the plot's height
        axis = fig.layout[f"yaxis{i + 2}"]
        assert axis.overlaying == "y" and axis.range[0] < lo and axis.range[1] > hi


def test_axis_positions_leave_missing_values_out():
    df = samples_frame(classes=3)
    df.loc[0, ["a0", "a1", "a2"]] = np.nan  # a zero feature vector has no angles
    dims = dimensions([0, 1, 2], ["a", "b", "c"])
    positions = axis_positions(df, dims, axis_ranges(df, dims))
    assert positions[0][0] is None and positions[-1][0] is not None
    assert all(p is None or 0 <= p <= 1 for axis in positions for p in axis)
    json.dumps(positions, allow_nan=False)  # what the snapshot embeds
    fig = F(parallel_coordinates(df, dims, "t"))
    assert fig.data[0].type == "scatter"


def test_box_constraints_brush_the_axes_a_box_covers():
    df = samples_frame(classes=3)
    dims = dimensions([0, 1, 2], ["a", "b", "c"])
    ranges = axis_ranges(df, dims)
    m = len(dims) - 1  # the margin axis
    lo, hi = ranges[m]
    top_half = box_constraints([{"x0": m - 0.2, "x1": m + 0.2, "y0": 1.0, "y1": 0.5}], ranges)
    assert list(top_half) == [str(m)] and np.allclose(top_half[str(m)], [[lo + 0.5 * (hi - lo), np.inf]])
    assert set(brushed(df, dims, top_half)) == set(df.loc[df["margin"] >= lo + 0.5 * (hi - lo), "sample_id"])
    wide = box_constraints([{"x0": -0.3, "x1": 1.2, "y0": 0, "y1": 1}], ranges)
    assert sorted(wide) == ["0", "1"]
    assert (
        box_constraints([{"x0": 0.3, "x1": 0.7, "y0": 0, "y1": 1}], ranges) == {}
    )  # between two axes: nothing brushed
    both = box_constraints(
        [{"x0": m - 0.1, "x1": m + 0.1, "y0": 0, "y1": 0.2}, {"x0": m - 0.1, "x1": m + 0.1, "y0": 0.8, "y1": 1}], ranges
    )
    assert len(both[str(m)]) == 2  # two boxes on one axis: either range
    assert box_constraints([{"x0": "?", "y0": 0}], ranges) == {}


def test_robustness_and_sweetspot_figures():
    summary = store.margin_change_summary
    fig = F(margin_change([("a", summary(np.random.default_rng(0).normal(0, 1, 200))), ("b", summary([1.0]))]))
    assert len([t for t in fig.data if t.fill == "tozeroy"]) == 1
    assert "no corrupted evaluations" in F(margin_change([])).layout.annotations[0].text
    models = evals_frame().query("corruption == 'clean'").assign(clean_accuracy=lambda d: d["accuracy"])
    sweet = F(accuracy_vs_sparsity(models, selected="m-mag-50"))
    assert {t.name for t in sweet.data} >= {"magnitude", "random", "selected"}
    below = accuracy_vs_sparsity(models, selected="m-mag-50", legend_below=True, height=420)["layout"]
    rows = -(-len(sweet.data) // 2)  # the legend's rows sit in the bottom margin, under the axis title
    assert below["legend"]["yref"] == "container" and below["margin"]["b"] >= 50 + 18 * rows
    assert below["height"] - below["margin"]["b"] == 420 - 50


def test_the_sweet_spot_rings_each_reference_on_curves_built_once():
    models = evals_frame().query("corruption == 'clean'").assign(clean_accuracy=lambda d: d["accuracy"])
    curves = sweet_spot_curves(models)
    for selected in ["m-mag-50", "m-rand-50", None, "no-such-model", "m-mag-50"]:
        kept = sweet_spot_figure(curves, "t", selected, legend_below=True, height=420)
        built = accuracy_vs_sparsity(models, title="t", selected=selected, legend_below=True, height=420)
        assert json.dumps(kept, sort_keys=True, default=str) == json.dumps(built, sort_keys=True, default=str)
    ring = [t for t in F(sweet_spot_figure(curves, selected="m-rand-50")).data if t.name == "selected"]
    row = models.set_index("model_id").loc["m-rand-50"]
    assert len(ring) == 1 and (ring[0].x[0], ring[0].y[0]) == (row["sparsity"], row["clean_accuracy"])


def test_table1_columns_format_numbers_and_drop_an_empty_note_column():
    from app.views.robustness import table1_columns

    cols = {c["id"]: c for c in table1_columns("margin (eq. 5)", notes=False)}
    assert list(cols) == ["model", "angle", "length", "margin"] and cols["margin"]["name"] == "margin (eq. 5)"
    assert all(cols[k]["format"].to_plotly_json()["specifier"] == "+.3f" for k in ("angle", "length", "margin"))
    assert "note" in {c["id"] for c in table1_columns("margin")}


def _every_builder() -> dict[str, dict]:
    df = samples_frame()
    moves = trajectories(df, samples_frame(seed=1).assign(label=df["label"]))
    dims = dimensions(rank_axes(df, None, 0, 3), ["a", "b", "c"])
    frame = table_frame(evals_frame(), 3)
    models = evals_frame().query("corruption == 'clean'").assign(clean_accuracy=lambda d: d["accuracy"])
    return {
        "evaltable": evaluation_table(
            frame, "m-mag-50", "m-rand-50", frame[["model_id", "column"]].assign(accuracy=0.2), 5
        ),
        "evaltable-empty": evaluation_table(table_frame(evals_frame().iloc[0:0], 3)),
        "local": small_multiples(df, ["a", "b", "c"], [0, 1, 2], selected={1}),
        "local-empty": small_multiples(df.iloc[0:0], ["a"], [0]),
        "comparison": comparison(moves[moves["label"] == 0], "a", selected={1}),
        "comparison-empty": comparison(moves.iloc[0:0], "a"),
        "parallel": parallel_coordinates(
            df[df["label"] == 0],
            dims,
            "t",
            {1},
            [{"type": "rect", "xref": "x", "yref": "y", "x0": 0.8, "x1": 1.2, "y0": 0.1, "y1": 0.6}],
        ),
        "strips": density_strips(df, samples_frame(seed=2), dims),
        "margin": margin_change([("a", store.margin_change_summary(np.random.default_rng(0).normal(0, 1, 200)))]),
        "margin-empty": margin_change([]),
        "sweetspot": accuracy_vs_sparsity(models, selected="m-mag-50"),
        "sweetspot-empty": accuracy_vs_sparsity(models.iloc[0:0]),
        "dimension": angle_dimension(angle_summary_frame()),
        "dimension-empty": angle_dimension(angle_summary_frame().iloc[0:0]),
        **{f"sensitivity-{m}": sensitivity_heatmap(sensitivity_frame(), m, selected="s-a-9") for m in SENS_METRICS},
        "sensitivity-empty": sensitivity_heatmap(sensitivity_frame().iloc[0:0], "flips"),
        "pie": pie_per_class([0, 3, 1], ["a", "b", "c"], "PIE per class"),
        "attribution-drift": drift_vs_sparsity(attribution_drift_frame()),
        "attribution-drift-empty": drift_vs_sparsity(attribution_drift_frame().iloc[0:0]),
    }


def attribution_drift_frame() -> pd.DataFrame:
    """StoreReader.attribution_drift's rows: two methods' maps of 3 samples for a dense and two pruned models."""
    n = 3 * 2 * 3
    return pd.DataFrame(
        {
            "model_id": np.repeat(["d", "p1", "p2"], 6),
            "sample_id": np.tile([1, 5, 9], 6),
            "method": np.tile(np.repeat(["occlusion", "gradcam"], 3), 3),
            "spearman": np.r_[np.full(6, np.nan), np.linspace(0.9, -0.2, 12)],
            "iou_top10": np.r_[np.full(6, np.nan), np.linspace(1.0, 0.0, 12)],
            "pruning": np.repeat(["dense", "magnitude", "magnitude"], 6),
            "schedule": np.repeat([None, "oneshot", "oneshot"], 6),
            "steps": np.ones(n, int),
            "finetune_epochs": np.zeros(n, int),
            "sparsity": np.repeat([0.0, 0.5, 0.9], 6),
        }
    )


def sensitivity_frame() -> pd.DataFrame:
    """store.sensitivity_of's rows: two layers × two sparsities, layer b with two seeds."""
    return pd.DataFrame(
        {
            "model_id": ["s-a-5", "s-a-9", "s-b-5", "s-b-9", "s-b-9-seed1"],
            "parent_id": ["d", "d", "d", "d", "d-seed1"],
            "replicate": [0, 0, 0, 0, 1],
            "method": ["magnitude"] * 5,
            "layer": ["a", "a", "b", "b", "b"],
            "target_sparsity": [0.5, 0.9, 0.5, 0.9, 0.9],
            "accuracy": [0.9, 0.5, 0.95, 0.9, 0.8],
            "delta_accuracy": [-0.05, -0.45, 0.0, -0.05, -0.15],
            "delta_margin": [-0.1, -0.8, 0.0, -0.1, -0.2],
            "flips": [3.0, 40.0, 0.0, 5.0, 9.0],
        }
    )


def test_sensitivity_heatmap_cells_hold_the_mean_over_seeds_and_the_first_seeds_model():
    fig = sensitivity_heatmap(sensitivity_frame(), "delta_accuracy", selected="s-a-9")
    heat = fig["data"][0]
    assert heat["y"] == ["a", "b"] and heat["x"] == ["50 %", "90 %"]
    np.testing.assert_allclose(heat["z"], [[-0.05, -0.45], [0.0, -0.1]])  # b at 90 %: mean of two seeds
    assert heat["customdata"] == [["s-a-5", "s-a-9"], ["s-b-5", "s-b-9"]]  # a click compares seed 0's model
    assert heat["zmin"] == -heat["zmax"] and heat["text"][0][1] == "-0.450"
    (box,) = fig["layout"]["shapes"]
    assert (box["x0"], box["y0"]) == (0.5, -0.5)  # the compared model's cell is outlined
    assert "mean of 2 seeds" in fig["layout"]["title"]["text"]
    flips = sensitivity_heatmap(sensitivity_frame(), "flips")["data"][0]
    assert flips["zmin"] == 0 and flips["text"][1][1] == "7"


def angle_summary_frame() -> pd.DataFrame:
    """Fig. 3's per-model numbers for an untrained, a dense and two pruned models (two widths)."""
    return pd.DataFrame(
        {
            "model_id": ["u", "d", "p1", "p2"],
            "method": ["dense", "dense", "magnitude", "random"],
            "kind": ["untrained", "dense", "pruned", "pruned"],
            "dim": [84, 128, 128, 128],
            "sparsity": [0.0, 0.0, 0.5, 0.9],
            "clean_accuracy": [0.1, 0.98, 0.97, 0.1],
            "n": [100, 100, 100, 100],
            "angle_mean": [89.0, 60.0, 62.0, 88.0],
            "angle_std": [6.5, 10.0, 11.0, 5.0],
            "other_mean": [90.0, 95.0, 95.0, 90.0],
            "other_std": [6.0, 8.0, 8.0, 5.0],
            "above_30": [1.0, 0.95, 0.94, 1.0],
        }
    )


def test_angle_dimension_draws_random_vectors_and_each_kind():
    from pipeline.store import random_angle_stats

    fig = angle_dimension(angle_summary_frame())
    band = next(t for t in fig["data"] if t.get("fill") == "toself")
    x, y = arr(band["x"]), arr(band["y"])
    _, std = random_angle_stats(x[: len(x) // 2].round().astype(int))
    np.testing.assert_allclose(y[: len(x) // 2], 90 + std, rtol=1e-5)  # the band is mean ± std of random vectors
    names = {t.get("name") for t in fig["data"]}
    assert {"untrained: own class", "dense: other classes", "pruned: own class", "magnitude"} <= names
    pruned = next(t for t in fig["data"] if t.get("name") == "pruned: own class")
    m = 0.5 * (62.0 + 88.0)
    assert arr(pruned["y"])[0] == pytest.approx(m, rel=1e-6)  # pooled over the two pruned models
    assert arr(pruned["error_y"]["array"])[0] == pytest.approx(
        np.sqrt(0.5 * (11.0**2 + 62.0**2 + 5.0**2 + 88.0**2) - m * m), rel=1e-5
    )
    assert "no clean evaluations" in F(angle_dimension(angle_summary_frame().iloc[0:0])).layout.annotations[0].text


@pytest.mark.parametrize("name", list(_every_builder()))
def test_every_builder_makes_a_valid_plotly_figure(name):
    """The builders skip plotly's validation for speed (app.figures.figure): hold them to it here."""
    spec = _every_builder()[name]
    go.Figure(spec)  # raises on any property plotly does not know or any invalid value
    json.loads(to_json_plotly(spec))
    assert {t.get("type", "scatter") for t in spec["data"]} <= plotlyjs.contents()[1], (
        "a trace type the plotly.js bundle lacks"
    )


def test_plotly_bundle_is_plotly_pys_plotlyjs():
    """Rebuild assets/plotly-bundle.min.js (scripts/build_plotly_bundle.sh) when plotly moves."""
    from plotly.offline import get_plotlyjs_version

    version, traces = plotlyjs.contents()
    assert version == get_plotlyjs_version()
    assert {"scatter", "scattergl", "bar"} <= traces


def test_kde_edge_cases():
    assert kde(np.array([1.0]))[0].size == 0 and kde(np.array([2.0, 2.0]))[0].size == 0
    x, d = kde(np.random.default_rng(0).normal(size=10_000))
    assert abs(np.trapezoid(d, x) - 1) < 0.02


def test_kde_is_the_gaussian_estimate_of_the_binned_values_and_bins_as_numpy_does():
    from pipeline.store.stats import _histogram

    rng = np.random.default_rng(3)
    for values, lo, hi in ((rng.normal(size=5_000), None, None), (rng.gamma(2, size=700), 0.5, 4.0)):
        bins = density_bins(values, lo, hi)
        start, stop = bins["lo"] - bins["bw"], bins["hi"] + bins["bw"]
        assert bins["bw"] == pytest.approx(1.06 * values.std() * len(values) ** -0.2)
        assert (bins["counts"] == np.histogram(values, len(bins["counts"]), (start, stop))[0]).all()
        edges = np.linspace(start, stop, len(bins["counts"]) + 1)
        centres, weights = (edges[:-1] + edges[1:]) / 2, bins["counts"] / bins["counts"].sum()
        x, d = kde(values, lo, hi)
        z = (x[:, None] - centres[None, :]) / bins["bw"]  # the textbook estimate, in double precision
        want = np.exp(-(z**2) / 2) @ weights / (bins["bw"] * np.sqrt(2 * np.pi))
        assert np.allclose(x, np.linspace(start, stop, 80)) and np.allclose(d, want, rtol=1e-5, atol=1e-9)
    grid = np.array([0.0, 0.25, 0.5, 1.0, 1.5, -0.1])  # on edges, at both ends and outside
    assert (_histogram(grid, 4, 0.0, 1.0) == np.histogram(grid, 4, (0.0, 1.0))[0]).all()


def test_state_helpers_and_typed_arrays():
    assert (
        Combo.parse("m|fog-3") == Combo("m", "fog", 3) and Combo.parse("../x") is None and Combo.parse("a|b|c") is None
    )
    assert Combo("m", "fog", 3).key == "m|fog-3" and Combo.parse("m|clean") == Combo("m", "clean", 0)
    assert Combo.parse("m|fog-x") is None and Combo("m", "fog", 3).evalset == "fog s3"
    assert selected_ids(make_selection([3, 1, 3], "local")) == {1, 3} and selected_ids(None) is None
    encoded = {"dtype": "i8", "bdata": "AQAAAAAAAAACAAAAAAAAAAMAAAAAAAAA"}
    assert list(decode_array(encoded)) == [1, 2, 3]
    assert points_to_ids([{"curveNumber": 0, "pointIndex": 2}, {"customdata": 9}, {"customdata": "9"}]) == [9]
    ids_ = sample_ids(np.arange(5))
    spec = figure({"data": [{"x": np.arange(3.0), "customdata": ids_, "marker": {"color": [np.zeros(2)]}}]})
    assert spec["data"][0]["customdata"] is ids_  # plain data is left as it is: no call per sample
    assert spec["data"][0]["x"]["dtype"] == "f4" and spec["data"][0]["marker"]["color"][0]["dtype"] == "f4"


def test_the_shared_memo_is_keyed_by_the_code_that_made_it(tiny_run, tmp_path, monkeypatch):
    """The shared cache outlives an upgrade: a value pickled by other code (a class without an
    attribute the new code reads) is computed again, never read back."""
    import app.reader as reader_module

    calls = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    assert StoreReader(tiny_run.parent, tmp_path / "dc").derived("tiny", "probe", compute) == 1
    assert StoreReader(tiny_run.parent, tmp_path / "dc").derived("tiny", "probe", compute) == 1  # the shared cache
    monkeypatch.setattr(reader_module, "CODE_VERSION", "other code")
    assert StoreReader(tiny_run.parent, tmp_path / "dc").derived("tiny", "probe", compute) == 2


def test_reader_filters_and_memo(tiny_run, tmp_path):
    reader = StoreReader(tiny_run.parent, tmp_path / "dc")
    assert reader.runs() == ["tiny"]
    df = reader.samples("tiny", "digits_cnn-dense", "clean", 0, with_angles=True, labels=[3])
    assert set(df["label"]) == {3} and "a9" in df.columns and df["sample_id"].is_monotonic_increasing
    np.testing.assert_allclose(
        df["angle"], [row[f"a{int(lab)}"] for lab, (_, row) in zip(df["label"], df.iterrows())], rtol=1e-6
    )
    again = reader.samples("tiny", "digits_cnn-dense", "clean", 0, with_angles=True, labels=[3])
    pd.testing.assert_frame_equal(df, again)
    sub = reader.subset_accuracy("tiny", df["sample_id"].tolist())
    dense = sub[(sub["model_id"] == "digits_cnn-dense") & (sub["corruption"] == "clean")]
    assert dense["accuracy"].iloc[0] == pytest.approx(df["correct"].mean())
    pngs, corrupted = reader.images("tiny", [0, 5])
    assert set(pngs) == {0, 5} and not corrupted and pngs[0].startswith(b"\x89PNG")
    assert reader.margin_change("tiny", "digits_cnn-dense")["n"] == 0  # no corrupted sets in this run
    assert set(reader.table1("tiny")["model_id"]) == set(reader.models("tiny")["model_id"])
    calls = []
    for _ in range(2):  # a view's derived table is computed once per run version
        assert reader.derived("tiny", "count", lambda: calls.append(1) or len(calls)) == 1


def test_subset_accuracy_is_each_evaluations_mean_over_the_subset(tiny_run, tmp_path, monkeypatch):
    """Every evaluation's accuracy on a subset, from the correctness rows picked in blocks (a block
    of 7 samples here, so that blocks, partial bytes and a last short block all occur), against each
    samples file's own mean (every evaluation of the tiny run has all its samples: an evaluation with
    fewer counts the ids it lacks as wrong); ids outside the run are left out, and no id gives NaN."""
    import app.reader as reader_module

    monkeypatch.setattr(reader_module, "SUBSET_BLOCK", 7)
    reader = StoreReader(tiny_run.parent, tmp_path / "dc")
    chosen = [0, 1, 2, 9, 10, 17, 23, 24, 31, 40, 41, 42, 55, 63, 64, 80, 99]
    sub = reader.subset_accuracy("tiny", [*chosen, -1, 10**9])
    assert len(sub) == len(reader.evaluations("tiny"))
    for row in sub.itertuples():
        df = reader.samples("tiny", row.model_id, row.corruption, int(row.severity))
        assert row.accuracy == pytest.approx(df[df["sample_id"].isin(chosen)]["correct"].mean())
    assert reader.subset_accuracy("tiny", [10**9])["accuracy"].isna().all()


@pytest.mark.parametrize(
    "run,model", [("../tiny", "digits_cnn-dense"), ("/etc", "x"), ("tiny", "../../etc/passwd"), ("tiny", "nope")]
)
def test_reader_refuses_names_not_in_the_store(tiny_run, run, model):
    reader = StoreReader(tiny_run.parent)
    with pytest.raises(StoreError):
        reader.samples(run, model, "clean", 0)


def test_reader_errors_on_newer_schema_and_missing_evaluation(tiny_run, tmp_path):
    shutil.copytree(tiny_run, tmp_path / "tiny")
    reader = StoreReader(tmp_path)
    with pytest.raises(StoreError, match="no evaluation on fog-3"):
        reader.samples("tiny", "digits_cnn-dense", "fog", 3)
    meta = json.loads((tmp_path / "tiny" / store.RUN_JSON).read_text())
    meta["schema_version"] = 99
    (tmp_path / "tiny" / store.RUN_JSON).write_text(json.dumps(meta))
    with pytest.raises(StoreError, match="newer than this PruneScope reads"):
        reader.models("tiny")


def test_app_never_imports_torch_nor_pipeline_beyond_the_store(tiny_run):
    code = (
        "import sys; from app.main import create_app; "
        f"create_app({str(tiny_run.parent)!r}, 'tiny', None); print('torch' in sys.modules); "
        "print(sorted(m for m in sys.modules if m.startswith('pipeline.') and not m.startswith('pipeline.store')))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "[]"]  # the contract package is the only pipeline code the app imports


def test_margin_changes_read_one_model_and_match_a_direct_computation(browser_store):
    from pipeline.store import relative_margin_change, trim

    reader = StoreReader(browser_store)
    model = "digits_cnn-magnitude-global-oneshot-s80-ft1"
    clean = reader.samples("tiny", model, "clean", 0).set_index("sample_id")["margin"]
    rows = [
        reader.samples("tiny", model, c, 3).set_index("sample_id")["margin"].reindex(clean.index).to_numpy()
        for c in ("fog", "gaussian_noise")
    ]
    expected = trim(relative_margin_change(clean.to_numpy(np.float32), np.vstack(rows).astype(np.float32)))
    got = reader.margin_changes("tiny", model)
    assert got.size == expected.size > 0
    np.testing.assert_allclose(np.sort(got), np.sort(expected), rtol=1e-5)


def test_images_refuse_an_evaluation_set_the_run_does_not_have(browser_store):
    reader = StoreReader(browser_store)
    pngs, corrupted = reader.images("tiny", [0, 1], "fog", 3)
    assert corrupted and set(pngs) == {0, 1}
    for corruption, severity in (("../../etc/passwd", 3), ("fog", 5), ("snow", 3)):
        with pytest.raises(StoreError, match="has no evaluation set"):
            reader.images("tiny", [0], corruption, severity)


def test_parallel_coordinates_draw_the_compared_lines_and_brush_either():
    df = samples_frame(classes=3)
    g = df[df["label"] == 0].reset_index(drop=True)
    h = g.assign(margin=g["margin"] + 5.0)  # the compared model moved every margin up
    dims = dimensions([0, 1, 2], ["a", "b", "c"])
    fig = F(parallel_coordinates(g, dims, "t", compared=h))
    ref, cmp, chosen = fig.data[:3]
    assert (ref.name, cmp.name, chosen.name) == ("reference", "compared", "selected")
    k = len(dims)
    assert len(arr(ref.y)) == len(arr(cmp.y)) == (k + 1) * len(g) and len(arr(chosen.y)) == 0
    assert ref.line.color != cmp.line.color
    lines = line_frame(g, h)
    ranges = axis_ranges(lines, dims)
    top = box_constraints([{"x0": k - 1.2, "x1": k - 0.8, "y0": 0.95, "y1": 1.0}], ranges)
    picked = brushed(lines, dims, top)  # only compared lines reach the top of the margin axis
    assert picked and set(picked) <= set(g["sample_id"]) and len(picked) == len(set(picked))
    assert set(picked) == set(h.loc[h["margin"] >= ranges[-1][0] + 0.95 * (ranges[-1][1] - ranges[-1][0]), "sample_id"])
    strips = F(density_strips(g, h, dims))
    assert "reference" in strips.layout.annotations[0].text and "compared" in strips.layout.annotations[0].text


def test_combo_options_list_every_combination_next_to_the_anchor_and_search_them_all():
    evals = evals_frame()
    combos = combo_frame(evals)
    anchor = Combo("m-dense", "clean", 0)
    key = lambda m, c="clean", s=0: Combo(m, c, s).key  # noqa: E731
    listed = {o["value"] for o in combo_options(combos, anchor)}
    assert listed == {key(m) for m in evals["model_id"].unique()} | {key("m-dense", "fog", 1), key("m-dense", "fog", 3)}
    found = combo_options(combos, anchor, "rand fog 3")
    assert [o["value"] for o in found] == [key("m-rand-50", "fog", 3)] and found[0]["label"].startswith(
        "m-rand-50 · fog"
    )
    kept = key("m-mag-90", "fog", 1)
    assert {o["value"] for o in combo_options(combos, anchor, "nothing-like-this", (kept,))} == {kept}


def test_combo_options_list_few_before_a_search_and_a_search_finds_any():
    """At 200 models × 96 sets the dropdowns list LISTED combinations next to the anchor (dcc.Dropdown
    indexes each option's every substring: 295 of them were 0.23 s of a page load), half of them its
    model on other sets and half other models on its set, the nearest in the run's order; a search
    still reaches every combination."""
    models = [f"m{i:03d}" for i in range(200)]
    sets = [("clean", 0)] + [(f"c{j:02d}", s) for j in range(19) for s in range(1, 6)]
    evals = pd.DataFrame([(m, c, s) for m in models for c, s in sets], columns=["model_id", "corruption", "severity"])
    combos = combo_frame(evals)
    anchor = Combo("m150", "c03", 2)
    listed = [Combo.parse(o["value"]) for o in combo_options(combos, anchor, keep=(anchor.key, "nonsense"))]
    assert len(listed) == LISTED and anchor in listed
    on_set = [c for c in listed if (c.corruption, c.severity) == ("c03", 2)]
    of_model = [c for c in listed if c.model_id == "m150"]
    assert len(on_set) == LISTED // 2 and len(of_model) == LISTED // 2 + 1, (len(on_set), len(of_model))
    assert {c.model_id for c in on_set} == {f"m{i:03d}" for i in range(136, 166)}, "the models around m150"
    assert ("c03", 1) in {(c.corruption, c.severity) for c in of_model}, "the sets around c03 s2"
    first = [Combo.parse(o["value"]) for o in combo_options(combos, Combo("m000", "clean", 0))]
    assert {c.model_id for c in first if c.corruption == "clean"} == {f"m{i:03d}" for i in range(30)}
    assert len(set(listed)) == len(listed)
    small = combo_frame(evals[evals["model_id"].isin(models[:5])])  # few models: their sets fill the room
    assert len(combo_options(small, Combo("m001", "clean", 0))) == LISTED
    assert [o["value"] for o in combo_options(combos, anchor, "m199 c18 s5")] == [Combo("m199", "c18", 5).key]
    assert len(combo_options(combos, anchor, "c18")) == MAX_OPTIONS
    assert len(combo_options(combos, None)) == LISTED


def test_to_html_renders_the_views_markup_escaped():
    from dash import html

    node = html.Div([html.Span("<b>", className="x"), None, 3, html.Img(src="a&b")], style={"fontSize": "3px"})
    assert to_html(node) == '<div style="font-size:3px"><span class="x">&lt;b&gt;</span>3<img src="a&amp;b"></div>'
    with pytest.raises(TypeError):
        to_html(object())


def test_an_element_is_the_components_json_and_renders_the_same():
    """app.views.common.element: what the renderer receives for the same dash.html component."""
    import plotly.io.json as pj
    from dash import html

    from app.views.common import element

    def json_of(node):
        return json.loads(pj.to_json_plotly(node))

    made = element("Div", [element("Span", "<b>", className="x"), element("Img", src="a&b")], **{"data-sample-id": 3})
    component = html.Div([html.Span("<b>", className="x"), html.Img(src="a&b")], **{"data-sample-id": 3})
    assert json_of(made) == json_of(component)
    assert (
        to_html(made)
        == to_html(component)
        == '<div data-sample-id="3"><span class="x">&lt;b&gt;</span><img src="a&amp;b"></div>'
    )
    assert to_html([element("Div", [html.B("mixed")])]) == "<div><b>mixed</b></div>"
    for bad in ({"type": "Div", "namespace": "dash_core_components", "props": {}}, {"type": "script", "props": {}}):
        with pytest.raises(TypeError):
            to_html(bad)


def test_an_empty_trajectory_panel_says_none_and_messages_wrap():
    df = samples_frame()
    same = df.assign(correct=True)
    moves = trajectories(same, same)  # every sample right in both: four of the five panels are empty
    fig = F(comparison(moves, "a"))
    titles = [a.text for a in fig.layout.annotations if "(" in a.text]
    nones = [a for a in fig.layout.annotations if a.text == "none"]
    assert sum(t.endswith("(0)") for t in titles) == len(nones) == 3
    assert all(fig.layout[f"xaxis{a.xref.split()[0][1:]}"].visible is False for a in nones)
    long = "model 'x' has no evaluation on fog-3 — finish the run with python -m pipeline run CONFIG (it resumes)"
    text = F(empty_figure(long)).layout.annotations[0].text
    assert "<br>" in text and max(len(line) for line in text.split("<br>")) <= 60


def test_evaluation_table_labels_sparsities_values_and_methods():
    fig = F(evaluation_table(table_frame(evals_frame(), 3)))  # 2 columns × 2 bars: room for bars and their numbers
    bars = next(t for t in fig.data if t.name == "accuracy")
    labels = next(t for t in fig.data if t.name == "sparsity labels")
    values = next(t for t in fig.data if t.name == "accuracy labels")
    assert sorted(labels.text) == sorted(["50", "90", "50"] * 2)  # under each bar of the columns clean and fog
    assert np.allclose(arr(labels.x), arr(bars.x)) and np.allclose(arr(values.x), arr(bars.x))
    assert sorted(values.text) == sorted(["78", "68", "78", "48", "38", "48"])  # the accuracy above each bar
    rows = next(t for t in fig.data if t.name == "row labels")
    assert {"magnitude", "random"} <= set(rows.text)  # two columns leave room for full names
    assert {t.name for t in fig.data if t.showlegend} == {"magnitude", "random"}
    assert fig.layout.hoverdistance > 40, "a bar hovers over all its width, not only 20 px around its point"


def test_evaluation_table_numbers_mode_writes_each_sparsity_and_accuracy_on_its_own_line():
    evals = evals_frame()
    wide = pd.concat([evals] + [evals[evals["corruption"] == "fog"].assign(corruption=f"c{i}") for i in range(20)])
    frame = table_frame(wide, 3)
    fig = F(evaluation_table(frame))  # 22 columns: bars too narrow for their numbers, so "auto" writes numbers
    names = {t.name for t in fig.data}
    assert "values" in names and "sparsity labels" not in names
    values = next(t for t in fig.data if t.name == "values")
    bars = fig.data[0]
    assert bars.mode == "none" and len(arr(bars.y)) == 3 * 22
    cells = [text.split("<br>") for text in values.text]  # one text per cell (a row of a column), a line per bar
    assert len(cells) == 2 * 22 and sum(map(len, cells)) == 3 * 22
    assert "50 78" in cells[0] and all(len(line.split()) == 2 for line in sum(cells, []))
    plot_px = fig.layout.height - fig.layout.margin.t - fig.layout.margin.b
    line = LINE_PX / plot_px * np.diff(fig.layout.yaxis.range)[0]  # a text line in row units
    first = np.sort(arr(bars.y)[: len(cells[0])])[::-1]  # its bars from the top: a line apart, centred on the text
    assert np.allclose(np.diff(first), -line) and np.isclose(first.mean(), arr(values.y)[0])
    rows = next(t for t in fig.data if t.name == "row labels")
    assert set(rows.text) == {"mag", "rand"}  # short labels where a full name does not fit a column at 1280 px
    assert {t.name for t in F(evaluation_table(frame, mode="bars")).data} >= {"sparsity labels", "accuracy labels"}
    assert "values" in {t.name for t in F(evaluation_table(table_frame(evals, 3), mode="numbers")).data}


def test_a_table_cell_without_any_accuracy_is_drawn_last_with_dashes_in_both_modes():
    """A store from another tool may hold NaN accuracies: a cell of only those ranks last in its
    column, keeps its bars together and writes "–" where a number would be."""
    evals = evals_frame()
    evals.loc[(evals["method"] == "magnitude") & (evals["corruption"] == "fog"), "accuracy"] = np.nan
    wide = pd.concat([evals] + [evals[evals["corruption"] == "fog"].assign(corruption=f"c{i}") for i in range(20)])
    for mode in ("numbers", "bars"):
        fig = F(evaluation_table(table_frame(wide, 3), mode=mode))
        if mode == "numbers":
            cells = [t.split("<br>") for t in next(t for t in fig.data if t.name == "values").text]
            assert len(cells) == 2 * 22 and sum(map(len, cells)) == 3 * 22
            assert ["50 –", "90 –"] in cells and ["50 78", "90 68"] in cells
        else:
            labels = next(t for t in fig.data if t.name == "accuracy labels")
            assert list(labels.text).count("–") == 2 * 21 and np.isfinite(arr(labels.y)).all()  # drawn, at the bottom
    table = table_structure(table_frame(wide, 3), "numbers")
    assert (np.diff(table.cells["cell"]) >= 0).all()  # the bars in cell order: a cell's texts are its bars'
    fog = table.cells[table.cells["column"] == "fog"]
    assert fog["accuracy"].isna().tolist() == [False, True, True]  # the cell without accuracies is the lower row


def test_the_table_makes_room_for_each_row_of_its_legend():
    from app.figures.evaltable import _legend_rows

    assert _legend_rows([100, 100, 100], 780) == 1 and _legend_rows([300, 300, 300], 780) == 2
    assert _legend_rows([500, 100, 500], 780) == 2 and _legend_rows([800], 780) == 1  # an item wider: a row alone


def test_the_table_outlines_the_selected_model_thick_and_the_compared_one_thinner():
    frame = table_frame(evals_frame(), 3)
    for selected, compared in (("m-mag-50", "m-rand-50"), ("m-mag-90", None), (None, None)):
        fig = F(evaluation_table(frame, selected, compared))
        assert models_in(fig, "outline selected") == {selected} - {None}
        assert models_in(fig, "outline compared") == {compared} - {None}
        assert shape(fig, "outline selected")["line"]["width"] > shape(fig, "outline compared")["line"]["width"]


def test_evaluation_table_rows_keep_scopes_apart():
    """A layer-wise and a global run of one method and sparsity are two rows, labelled by scope;
    a run of one scope keeps its labels."""
    layer = evals_frame().query("model_id == 'm-mag-50'").assign(model_id="m-mag-50-layer", scope="layer")
    frame = table_frame(pd.concat([evals_frame(), layer], ignore_index=True), 3)
    rows = frame.drop_duplicates("model_id").set_index("model_id")["row"]
    assert rows["m-mag-50"] != rows["m-mag-50-layer"] and rows["m-mag-50"] == rows["m-mag-90"]
    fig = F(evaluation_table(frame))
    labels = set(next(t for t in fig.data if t.name == "row labels").text)
    assert {t.replace("<br>", " ") for t in labels} == {"magnitude global", "magnitude layer", "random global"}
    assert table_frame(evals_frame(), 3)["row"].str.contains("global").sum() == 0


def test_row_labels_break_onto_two_lines_where_one_does_not_fit():
    df = pd.DataFrame(
        {
            "method": ["magnitude", "taylor"],
            "scope": ["global", "global"],
            "schedule": ["iterative", "oneshot"],
            "steps": [3, 1],
            "finetune_epochs": [1, 2],
        }
    )
    text, lines = row_labels(df, 2)
    assert lines == 1 and list(text) == ["magnitude it3 ft1", "taylor ft2"]
    text, lines = row_labels(df, 19)
    assert lines == 2 and list(text) == ["mag<br>it3 ft1", "taylor<br>ft2"]
    assert max(len(p) for t in text for p in t.split("<br>")) * CHAR_PX <= PLOT_PX / 19


def test_the_guard_lets_search_text_through_but_not_as_a_name():
    from app.guard import FIELDS

    typed = "magnitude fog s3 · clean"
    assert FIELDS[(ids.COMPARED_DROPDOWN, "search_value")](typed)  # typed text, only matched against the listing
    assert not FIELDS[(ids.COMPARED_DROPDOWN, "value")](typed)
    assert not FIELDS[(ids.REFERENCE_DROPDOWN, "search_value")]("x" * 201)


def test_one_thread_computes_a_memo_while_the_others_wait_for_it(tiny_run, tmp_path):
    """A page load's callbacks ask for the same table at once: it is computed once, not once each."""
    reader = StoreReader(tiny_run.parent, tmp_path / "dc")
    started, release, calls, results = threading.Event(), threading.Event(), [], []

    def compute() -> int:
        calls.append(1)
        started.set()
        release.wait(30)
        return len(calls)

    def ask() -> None:
        results.append(reader.derived("tiny", "slow", compute))

    threads = [threading.Thread(target=ask, daemon=True) for _ in range(2)]
    try:
        threads[0].start()
        assert started.wait(30)
        threads[1].start()
        wait_for(lambda: sum(n for _, n, _ in reader._flights.values()) == 2)  # the second waits on the key's lock
    finally:
        release.set()
    for t in threads:
        t.join(30)
    assert results == [1, 1] and calls == [1]
    assert reader._flights == {}, "a key's lock is dropped once no thread uses it"


def test_the_memo_computes_other_keys_at_once_and_a_failure_is_computed_again(tiny_run, tmp_path):
    reader = StoreReader(tiny_run.parent, tmp_path / "dc")
    both = threading.Barrier(2, timeout=30)  # each key's computation waits for the other's: no lock for both
    results: dict[str, int] = {}

    def ask(name: str) -> None:
        results[name] = reader.derived("tiny", name, lambda: both.wait() + 10)

    threads = [threading.Thread(target=ask, args=(n,), daemon=True) for n in ("one", "two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results.values()) == [10, 11], "two keys were computed together"

    def broken() -> int:
        raise ValueError("a read failed")

    with pytest.raises(ValueError):
        reader.derived("tiny", "flaky", broken)
    assert reader.derived("tiny", "flaky", lambda: 3) == 3 and reader._flights == {}


def test_a_memo_asked_for_while_it_is_computed_in_the_same_thread_says_so(tiny_run, tmp_path):
    reader = StoreReader(tiny_run.parent, tmp_path / "dc")
    with pytest.raises(RuntimeError, match="asked for again"):
        reader.derived("tiny", "loop", lambda: reader.derived("tiny", "loop", lambda: 1))
    assert reader._flights == {}


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    """Return once `condition()` holds, polling; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.01)


def test_figure_keeps_every_tick_label_where_plotly_places_it():
    """figure() sets ticklabeloverflow "allow" on every cartesian axis a builder left it unset on (plotly.js
    would measure each label to hide those past the div), and keeps a builder's own setting."""
    fig = figure(
        {"data": [], "layout": {"xaxis": {}, "yaxis12": {"ticklabeloverflow": "hide past domain"}, "font": {}}}
    )
    assert fig["layout"]["xaxis"]["ticklabeloverflow"] == "allow"
    assert fig["layout"]["yaxis12"]["ticklabeloverflow"] == "hide past domain"
    assert "ticklabeloverflow" not in fig["layout"]["font"]
    F(fig)  # a valid plotly figure


def test_small_multiples_label_no_values_that_a_run_lacks():
    """Without a finite angle (zero feature vectors) the angle axis has no tick labels: its range is a
    placeholder, whose round numbers would read as angles."""
    df = samples_frame(n=200)
    df["angle"] = np.nan
    layout = small_multiples(df, ["a", "b", "c"], [0, 1, 2])["layout"]
    assert list(layout["xaxis"]["ticktext"]) == [] and len(decode_array(layout["xaxis"]["tickvals"])) == 0
    assert len(layout["yaxis"]["ticktext"]) >= 2, "the lengths are labelled as before"
    assert any("no finite angles" in a["text"] for a in layout["annotations"])


def test_small_multiples_keep_their_cells_with_an_infinite_length():
    """An infinite length (a store from another tool) does not widen the shared range: every class's
    finite points stay in its cell."""
    from app.figures.local import SCATTER_V

    df = samples_frame(n=200)
    df.loc[0, "length"] = np.inf
    fig = small_multiples(df, ["a", "b", "c"], [0, 1, 2])
    ys = np.concatenate([decode_array(t["y"]) for t in fig["data"] if t["mode"] == "markers"])
    ys = ys[np.isfinite(ys)]
    assert ((ys >= SCATTER_V[0] - 1e-6) & (ys <= SCATTER_V[1] + 1e-6)).all()
