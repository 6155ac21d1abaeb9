"""The model map and the model-similarity map (issue 16): every model of a run as one node.

A node's colour is its pruning method (`pipeline.store.methods`), its size its measured
sparsity. The map places the nodes by clean accuracy against robustness (the mean accuracy
over the run's corrupted evaluation sets), or by provenance: a lane per pruning variant,
sparsity along it, and edges from each model to the one it came from. The similarity map
places them by an MDS embedding of prediction agreement or linear CKA
(`pipeline.store.similarity`). In both, the reference is ringed dark and the compared model
yellow (the models the evaluation table outlines), and a brushed group of models stays opaque
while the others fade.

Provenance edges: the store holds each pruned model's `parent_id` (the dense model it was
pruned from). Within that, a model is drawn after the run's model of the same recipe one
stage earlier, when the run has it: a fine-tuned model after the same pruning without
fine-tuning (dense → pruned → fine-tuned), an iterative model after the same schedule at the
next lower target sparsity (the steps as a chain). Those edges are dotted; edges to the
store's parent are solid.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

from app.figures import Figure, figure
from app.figures.style import FONT, YELLOW
from app.figures.sweetspot import variant_labels
from pipeline.store.methods import METHODS, facts

PLACEMENTS = {"robustness": "clean accuracy vs robustness", "provenance": "provenance"}
RECIPE = ["parent_id", "arch", "method", "scope", "schedule", "steps"]
FADED = 0.2  # opacity of the models outside a brushed group
RINGS = (("reference", "#222222"), ("compared", YELLOW))  # the paper's roles; the evaluation table outlines them


def node_size(sparsity: pd.Series) -> np.ndarray:
    """Marker diameter (px) of a model by its measured sparsity: 7 dense to 23 at sparsity 1."""
    return (7 + 16 * sparsity.fillna(0).clip(0, 1)).to_numpy()


def lineage(models: pd.DataFrame) -> pd.DataFrame:
    """Each model's drawn predecessor (`from_id`) and whether it is the store's parent (`stored`).

    Fine-tuned one-shot models follow the same pruning without fine-tuning; iterative models
    follow the same schedule (and fine-tuning) at the next lower target sparsity; every other
    pruned model, and any model whose predecessor the run lacks, follows its `parent_id`."""
    m = models.reset_index(drop=True).copy()
    key = pd.Series(["|".join(map(str, row)) for row in m[RECIPE].itertuples(index=False)], index=m.index)
    from_id = m["parent_id"].astype(object).where(m["parent_id"].notna(), None)
    stored = pd.Series(True, index=m.index)
    pruned = m["parent_id"].notna()
    ft = m["finetune_epochs"].fillna(0).astype(int)
    target = m["target_sparsity"].round(6)
    iterative = m["schedule"].eq("iterative")
    lookup = {(k, t, e): mid for k, t, e, mid in zip(key, target, ft, m["model_id"])}
    for i in m.index[pruned & ~iterative & ft.gt(0)]:
        base = lookup.get((key[i], target[i], 0))
        if base is not None:
            from_id[i], stored[i] = base, False
    for i in m.index[pruned & iterative]:
        lower = m.index[pruned & iterative & key.eq(key[i]) & ft.eq(ft[i]) & target.lt(target[i])]
        if len(lower):
            from_id[i], stored[i] = m.loc[target[lower].idxmax(), "model_id"], False
    return pd.DataFrame({"model_id": m["model_id"], "from_id": from_id, "stored": stored})


def map_frame(models: pd.DataFrame, evals: pd.DataFrame) -> pd.DataFrame:
    """One row per model: its facts, `robustness` (mean accuracy over its corrupted evaluation
    sets; NaN without any), its `lane` label (the variant, and a scope other than global or
    layer), its predecessor (`from_id`, `stored`) and its `hover` text (memoised with the frame,
    so a redraw for a new reference does not format it again)."""
    corrupted = evals[evals["corruption"] != "clean"].groupby("model_id")["accuracy"].mean().rename("robustness")
    frame = models.merge(corrupted, left_on="model_id", right_index=True, how="left")
    scope = frame["scope"].astype(object)
    local = scope.notna() & ~scope.isin(["global", "layer"])  # e.g. a sensitivity study's `layer:<name>`
    frame["lane"] = (
        frame["arch"].astype(str) + " · " + variant_labels(frame) + (", " + scope.astype(str)).where(local, "")
    )
    frame = frame.merge(lineage(models), on="model_id", how="left")
    return frame.assign(hover=_hover(frame))


def _hover(frame: pd.DataFrame) -> pd.Series:
    schedule = np.where(
        frame["schedule"].isna(),
        "",
        "<br>"
        + frame["scope"].astype(str)
        + ", "
        + frame["schedule"].astype(str)
        + np.where(frame["schedule"].eq("iterative"), " ×" + frame["steps"].fillna(1).astype(int).astype(str), ""),
    )
    robust = frame["robustness"].map(lambda v: "–" if pd.isna(v) else f"{v:.3f}")
    return (
        "<b>"
        + frame["model_id"].astype(str)
        + "</b><br>"
        + frame["arch"].astype(str)
        + " · "
        + frame["method"].map(lambda m: facts(str(m)).label)
        + schedule
        + "<br>sparsity "
        + frame["sparsity"].map("{:.3f}".format)
        + " (target "
        + frame["target_sparsity"].map("{:.2f}".format)
        + ")"
        + "<br>fine-tuning "
        + frame["finetune_epochs"].fillna(0).astype(int).astype(str)
        + " epochs"
        + "<br>clean accuracy "
        + frame["clean_accuracy"].map("{:.3f}".format)
        + "<br>robustness (mean corrupted accuracy) "
        + robust
        + "<br>from "
        + frame["parent_id"].fillna("–").astype(str)
    )


def _positions(frame: pd.DataFrame, placement: str) -> tuple[pd.Series, pd.Series, dict, dict]:
    """x, y and the two axes of a placement."""
    if placement == "provenance":
        lanes = frame[frame["method"] != "dense"].drop_duplicates("lane")
        order = list(METHODS)
        lanes = lanes.assign(
            rank=lanes["method"].map(lambda m: order.index(m) if m in order else len(order))
        ).sort_values(["arch", "rank", "schedule", "steps", "finetune_epochs"], kind="stable")
        lane_y = {lane: -k for k, lane in enumerate(lanes["lane"])}
        middle = (1 - len(lane_y)) / 2 if lane_y else 0.0
        y = frame["lane"].map(lane_y).astype(float).where(frame["method"] != "dense", middle)
        x = frame["target_sparsity"].where(frame["method"] != "dense", 0.0).astype(float)
        xaxis = {"title": {"text": "target sparsity (fraction removed)"}, "range": [-0.06, 1.02], "zeroline": False}
        yaxis = {
            "tickvals": list(lane_y.values()),
            "ticktext": [lane.split(" · ", 1)[-1] for lane in lane_y],
            "range": [-len(lane_y) + 0.4, 0.6],
            "zeroline": False,
            "automargin": True,
        }
        return x, y, xaxis, yaxis
    x, y = frame["clean_accuracy"].astype(float), frame["robustness"].astype(float)
    return (
        x,
        y,
        {"title": {"text": "clean accuracy"}, "zeroline": False},
        {"title": {"text": "robustness (mean accuracy, corrupted sets)"}, "zeroline": False},
    )


def _nodes(
    frame: pd.DataFrame,
    x: pd.Series,
    y: pd.Series,
    ref: str | None,
    cmp: str | None,
    highlighted: Collection[str] | None,
) -> list[dict]:
    """One marker trace per method (colour the method, size the sparsity, the models outside a
    brushed group faded), then a ring around the reference and one around the compared model."""
    traces = []
    method = frame["method"].astype(str).to_numpy()
    model_ids = frame["model_id"].astype(str).to_numpy()
    xs, ys, hover, size = x.to_numpy(), y.to_numpy(), frame["hover"].to_numpy(), node_size(frame["sparsity"])
    methods = sorted(set(method), key=lambda m: (list(METHODS).index(m) if m in METHODS else 99, m))
    for name in methods:
        mask = method == name
        ids = model_ids[mask]
        opacity = (
            np.where(np.isin(ids, list(highlighted)), 1.0, FADED) if highlighted is not None else np.ones(len(ids))
        )
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": facts(name).label,
                "x": xs[mask],
                "y": ys[mask],
                "customdata": [[m, "clean", 0] for m in ids],
                "hovertext": hover[mask],
                "hoverinfo": "text",
                "marker": {
                    "color": facts(name).color,
                    "size": size[mask],
                    "opacity": opacity,
                    "line": {"width": 0.5, "color": "#ffffff"},
                },
            }
        )
    for (role, color), model in zip(RINGS, (ref, cmp)):
        at = model_ids == model
        if model is not None and at.any():
            traces.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "name": role,
                    "x": xs[at],
                    "y": ys[at],
                    "marker": {
                        "symbol": "circle-open",
                        "size": size[at] + 8,
                        "color": color,
                        "line": {"width": 3, "color": color},
                    },
                    "hoverinfo": "skip",
                }
            )
    return traces


def _edges(frame: pd.DataFrame, x: pd.Series, y: pd.Series) -> list[dict]:
    """Lines from each model to its predecessor: solid to the store's parent, dotted along a recipe."""
    pos = pd.DataFrame({"model_id": frame["model_id"], "x": x.to_numpy(), "y": y.to_numpy()}).set_index("model_id")
    traces = []
    for stored, name, dash in (
        (True, "pruned from (store's parent)", "solid"),
        (False, "next stage of a recipe", "dot"),
    ):
        e = frame[frame["from_id"].isin(pos.index) & frame["stored"].eq(stored)]
        if e.empty:
            continue
        a, b = pos.loc[e["from_id"]].to_numpy(), pos.loc[e["model_id"]].to_numpy()
        gap = np.full(len(e), np.nan)
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": name,
                "x": np.column_stack([a[:, 0], b[:, 0], gap]).ravel(),
                "y": np.column_stack([a[:, 1], b[:, 1], gap]).ravel(),
                "line": {"color": "#b0b0b0" if stored else "#555555", "width": 1, "dash": dash},
                "hoverinfo": "skip",
            }
        )
    return traces


def _layout(xaxis: dict, yaxis: dict, height: int, note: str, dragmode: str = "zoom") -> dict:
    """`note`: one short line above the plot, left of the toolbar."""
    return {
        "font": FONT,
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 34, "b": 40},
        "title": {"text": note, "x": 0.01, "xref": "container", "y": 0.985, "font": {"size": 10, "color": "#555"}},
        "xaxis": {**xaxis, "automargin": True},
        "yaxis": {**yaxis, "automargin": True},
        "clickmode": "event+select" if dragmode in ("lasso", "select") else "event",
        "dragmode": dragmode,
        "hovermode": "closest",
        "legend": {"orientation": "h", "y": -0.21, "yanchor": "top", "x": 0, "font": {"size": 10}},
        "hoverlabel": {"font": {"size": 11}, "align": "left"},
    }


def model_map(
    frame: pd.DataFrame,
    placement: str = "robustness",
    ref: str | None = None,
    cmp: str | None = None,
    highlighted: Collection[str] | None = None,
    height: int = 460,
) -> Figure:
    """The model map of `frame` (from `map_frame`). Without corrupted evaluations there is no
    robustness, and the map says so and uses the provenance placement."""
    note = "size: sparsity · rings: reference (dark), compared (yellow)"
    if placement == "robustness" and frame["robustness"].isna().all():
        placement = "provenance"
        note = "no corrupted evaluations in this run (no robustness): placed by provenance"
    x, y, xaxis, yaxis = _positions(frame, placement)
    edges = _edges(frame, x, y) if placement == "provenance" else []
    nodes = _nodes(frame, x, y, ref, cmp, highlighted)
    return figure({"data": [*edges, *nodes], "layout": _layout(xaxis, yaxis, height, note)})


def similarity_map(
    frame: pd.DataFrame,
    embedding: pd.DataFrame,
    measure_label: str,
    ref: str | None = None,
    cmp: str | None = None,
    highlighted: Collection[str] | None = None,
    height: int = 460,
) -> Figure:
    """The models placed by `embedding` (model_id, x, y: an MDS of 1 − similarity); `frame` from
    `map_frame` gives their facts. Lasso or box a group to highlight it in the other views."""
    shown = frame.merge(embedding, on="model_id", how="inner").reset_index(drop=True)
    axis = {"showticklabels": False, "zeroline": False}
    return figure(
        {
            "data": _nodes(shown, shown["x"], shown["y"], ref, cmp, highlighted),
            "layout": _layout(axis, {**axis, "scaleanchor": "x"}, height, f"MDS of 1 − {measure_label}", "lasso"),
        }
    )
