"""The dashboard's side of the attribution maps (issue 15), without a browser: the reader, the
figure builder and the map overlay, the gallery's cards, the snapshot, a run without maps."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from PIL import Image

from app.export import build_snapshot
from app.figures.attribution import drift_vs_sparsity, overlay_png
from app.reader import StoreReader
from app.state import Combo
from app.views import attribution, samples

DENSE = "digits_cnn-dense"
CHILD = "digits_cnn-magnitude-global-oneshot-s90-ft0"


@pytest.fixture
def reader(attribution_store, tmp_path) -> StoreReader:
    return StoreReader(attribution_store, tmp_path / "dc")


def test_the_drift_figure_has_a_panel_per_method_and_selectable_sample_points(reader):
    drift = reader.attribution_drift("tiny")
    assert set(drift["model_id"]) == {DENSE, CHILD, "digits_cnn-magnitude-global-oneshot-s50-ft0"}
    for metric in ("spearman", "iou_top10"):
        spec = drift_vs_sparsity(drift, metric)
        go.Figure(spec)  # a valid plotly figure
        points = [t for t in spec["data"] if t.get("legendgroup") == "samples"]
        assert len(points) == 3, "one panel per attribution method"
        assert all(t["customdata"] for t in points) and {t["xaxis"] for t in points} == {"x", "x2", "x3"}
    means = [t for t in drift_vs_sparsity(drift)["data"] if t.get("mode") == "lines+markers"]
    assert means and all("customdata" not in t for t in means), "only samples select"


def test_the_drift_figure_leaves_out_single_layer_models_and_other_seeds(reader):
    """A sensitivity model (one layer pruned alone, so a small sparsity) and a seed-1 replicate
    are no points of their pruning method's curve: the drift view shows the run's main models."""
    drift = reader.attribution_drift("tiny")
    assert {"scope", "replicate"} <= set(drift.columns)
    child = drift["model_id"] == CHILD
    layer = drift[child].assign(model_id="one-layer", scope="layer:2", sparsity=0.05)
    seed1 = drift[child].assign(model_id="seed1", replicate=1)
    spec = drift_vs_sparsity(pd.concat([drift, layer, seed1], ignore_index=True))
    shown = {m for t in spec["data"] if t.get("legendgroup") == "samples" for m in t["text"]}
    assert CHILD in shown and not shown & {"one-layer", "seed1"}
    assert len(spec["data"]) == len(drift_vs_sparsity(drift)["data"]), "no curve of their own either"


def test_the_overlay_colours_evidence_for_the_class_and_against_it():
    values = np.zeros((8, 8), np.float32)
    values[0, 0], values[7, 7] = 2.0, -2.0
    png = Image.new("L", (8, 8), 0)
    buf = io.BytesIO()
    png.save(buf, format="PNG")
    out = np.asarray(Image.open(io.BytesIO(overlay_png(buf.getvalue(), values))))
    assert out.shape == (8, 8, 3)
    assert out[0, 0, 0] > out[0, 0, 2] and out[7, 7, 2] > out[7, 7, 0], "positive vermillion, negative blue"
    assert out[3, 3, 0] == out[3, 3, 1] == out[3, 3, 2], "no attribution: the grey image"
    assert overlay_png(None, np.zeros((8, 8)))  # a flat map and no image still draw


def test_the_gallery_compares_the_two_maps_of_a_sample(reader):
    ref, cmp = Combo(DENSE, "clean", 0), Combo(CHILD, "clean", 0)
    same = samples.Maps(reader, "tiny", ref, ref, "gradcam")
    assert same.ids and all(r == pytest.approx(1) and i == 1 for r, i in same.drift.values() if np.isfinite(r))
    maps = samples.Maps(reader, "tiny", ref, cmp, "gradcam")
    stored = reader.attribution_maps("tiny", CHILD, "gradcam", "clean", 0).set_index("sample_id")
    for sid, (rho, iou) in maps.drift.items():  # ref is the child's parent: the stored drift
        assert rho == pytest.approx(stored.loc[sid, "spearman"], nan_ok=True) and iou == pytest.approx(
            stored.loc[sid, "iou_top10"]
        )
    df = samples.rows(reader, "tiny", ref, cmp, "map_drift", maps)
    first = df["sample_id"].head(len(maps.ids)).tolist()
    assert set(first) == maps.ids, "the samples with maps come first"
    rhos = [maps.drift[s][0] for s in first if np.isfinite(maps.drift[s][0])]
    assert rhos == sorted(rhos), "by map drift, low ρ first"


def test_the_gallery_picks_its_samples_before_sorting_them_as_after(reader):
    """rows() with `chosen` or `label` is the whole table's rows of those samples, in the same order."""
    ref, cmp = Combo(DENSE, "clean", 0), Combo(CHILD, "clean", 0)
    maps = samples.Maps(reader, "tiny", ref, cmp, "gradcam")
    for other, sort, m in [
        (None, "margin", None),
        (cmp, "angle", None),
        (cmp, "margin", maps),
        (cmp, "map_drift", maps),
    ]:
        whole = samples.rows(reader, "tiny", ref, other, sort, m)
        assert whole["sample_id"].is_unique and len(whole) > 20
        if other is not None:
            assert {"pred_cmp", "correct_cmp", "margin_cmp"} <= set(whole.columns) and "label_cmp" not in whole
        chosen = set(whole["sample_id"].iloc[::3])
        for picked, expected in [
            (samples.rows(reader, "tiny", ref, other, sort, m, chosen=chosen), whole[whole["sample_id"].isin(chosen)]),
            (samples.rows(reader, "tiny", ref, other, sort, m, label=1), whole[whole["label"] == 1]),
        ]:
            assert len(expected) and picked.reset_index(drop=True).equals(expected.reset_index(drop=True))


def test_the_snapshot_embeds_the_maps_of_the_samples_it_embeds(reader):
    page = build_snapshot(reader, "tiny", DENSE, CHILD)
    ids = reader.attribution_maps("tiny", DENSE, "occlusion", "clean", 0)["sample_id"]
    cards = 'class=\\"map-img\\"'  # in the embedded JSON of the cards
    assert page.count(cards) == 2 * 3 * len(ids), "both models' maps of every method"
    assert "with their attribution maps" in page and 'id="fig-attribution"' in page


def test_a_run_without_attributions_says_so(tiny_run, tmp_path):
    reader = StoreReader(tiny_run.parent, tmp_path / "dc")
    assert reader.attribution_methods("tiny") == [] and reader.attribution_drift("tiny").empty
    spec = attribution.draw_figure(reader, "tiny", "spearman")
    assert "no attributions in this run" in spec["layout"]["annotations"][0]["text"]
    assert samples.method_options(reader, "tiny") == ([], None)
    page = build_snapshot(reader, "tiny", DENSE, "digits_cnn-magnitude-global-oneshot-s80-ft1")
    assert 'class=\\"map-img\\"' not in page and "no attributions in this run" in page
