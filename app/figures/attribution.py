"""Attribution maps: a map over its image (a small PNG for the sample gallery) and the drift of
the maps against sparsity, one panel per attribution method (seeds/002's sweet-spot question
asked of attributions: up to which sparsity does a pruned model still look where its parent did?)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from PIL import Image

from app.figures import Figure, figure, sample_ids
from app.figures.grid import grid, merge_axes, title
from app.figures.local import empty_figure
from app.figures.style import BLUE, FONT, GREY, RED
from app.figures.sweetspot import variant_labels
from pipeline.store import main_models
from pipeline.store.methods import facts

DRIFT_METRICS = {"spearman": "Spearman ρ with the parent's map", "iou_top10": "IoU of the top 10 % pixels"}
METHOD_LABELS = {"occlusion": "occlusion", "integrated_gradients": "integrated gradients", "gradcam": "Grad-CAM"}
OPACITY = 0.75  # of the map at its strongest pixel; weaker pixels let more of the image through


def method_label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def _rgb(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)], np.float32)


def overlay_png(png: bytes | None, values: np.ndarray) -> bytes:
    """The map over the image as a PNG at the map's size: positive attribution in vermillion,
    negative in blue, each pixel as opaque as its share of the map's largest |value| (each map is
    scaled to itself, so maps of models with other score scales compare by where, not how much);
    the image in grey below (a blank one without `png`)."""
    values = np.nan_to_num(np.asarray(values, np.float32))
    h, w = values.shape
    if png is not None:
        base = np.asarray(Image.open(io.BytesIO(png)).convert("L").resize((w, h), Image.BILINEAR), np.float32)
    else:
        base = np.full((h, w), 255.0, np.float32)
    peak = float(np.abs(values).max())
    alpha = (np.abs(values) / peak if peak > 0 else np.zeros_like(values))[..., None] * OPACITY
    colour = np.where(values[..., None] >= 0, _rgb(RED), _rgb(BLUE))
    grey = np.repeat(base[..., None], 3, axis=2) * 0.85 + 38  # lifted a little so black digits keep their colour
    out = grey * (1 - alpha) + colour * alpha
    buf = io.BytesIO()
    Image.fromarray(out.clip(0, 255).astype(np.uint8), "RGB").save(buf, format="PNG")
    return buf.getvalue()


def drift_vs_sparsity(drift: pd.DataFrame, metric: str = "spearman", height: int = 360) -> Figure:
    """`drift` (StoreReader.attribution_drift): one row per map with model_id, sample_id, method,
    pruning, schedule, steps, finetune_epochs, sparsity and the `metric` column. One panel per
    attribution method: each sample's drift as a faint point (customdata: its sample id, so a box
    or lasso selects samples), each pruning variant's mean over samples as a line over sparsity,
    coloured by pruning method; the parent against itself at 1. The run's main models only
    (store.main_models: single-layer models and other seeds have their own views, and a model
    pruned in one layer alone would show as a point of its method at a small sparsity)."""
    drift = drift[main_models(drift)] if not drift.empty else drift
    rows = drift[np.isfinite(drift[metric].astype(float))] if not drift.empty else drift
    if rows.empty:
        return empty_figure("no attributions in this run (add an [attribution] table to its config)", height)
    methods = list(dict.fromkeys(rows["method"]))
    cells, axes = grid(1, len(methods), hspace=0.06)
    traces, notes, shown = [], [], set()
    rows = rows.assign(variant=variant_labels(rows.rename(columns={"pruning": "method", "method": "attribution"})))
    for k, method in enumerate(methods):
        cell = cells[0][k]
        mine = rows[rows["method"] == method]
        notes.append(title(cell, method_label(method)))
        traces.append(
            {
                "type": "scatter",
                "x": mine["sparsity"].to_numpy(float),
                "y": mine[metric].to_numpy(float),
                "mode": "markers",
                "name": "samples",
                "legendgroup": "samples",
                "showlegend": k == 0,
                "marker": {"size": 4, "color": GREY, "opacity": 0.45},
                "customdata": sample_ids(mine["sample_id"]),
                "text": mine["model_id"].to_numpy(),
                "hovertemplate": "sample %{customdata}<br>%{text}<br>%{y:.2f}<extra></extra>",
                **cell.anchors,
            }
        )
        means = (
            mine.groupby(["variant", "pruning", "finetune_epochs", "model_id"], dropna=False)
            .agg(sparsity=("sparsity", "first"), mean=(metric, "mean"), std=(metric, "std"), n=(metric, "size"))
            .reset_index()
        )
        for variant, g in means.groupby("variant", sort=True):
            g = g.sort_values("sparsity")
            ft = int(g["finetune_epochs"].fillna(0).iloc[0])
            traces.append(
                {
                    "type": "scatter",
                    "x": g["sparsity"].to_numpy(float),
                    "y": g["mean"].to_numpy(float),
                    "mode": "lines+markers",
                    "name": variant,
                    "legendgroup": variant,
                    "showlegend": variant not in shown,
                    "line": {"color": facts(str(g["pruning"].iloc[0])).color, "dash": "solid" if ft else "dot"},
                    "error_y": {
                        "type": "data",
                        "array": g["std"].fillna(0).to_numpy(float),
                        "thickness": 1,
                        "width": 2,
                    },
                    "text": g["model_id"].to_numpy(),
                    "hovertemplate": "%{text}<br>sparsity %{x:.3f}<br>mean %{y:.2f}<extra></extra>",
                    **cell.anchors,
                }
            )
            shown.add(variant)
    low = min(0.0, float(rows[metric].min()))
    updates = {}
    for k, cell in enumerate(cells[0]):
        updates[cell.xkey] = {"title": {"text": "sparsity"}, "range": [-0.02, 1.0]}
        updates[cell.ykey] = {
            "range": [low - 0.05, 1.05],
            **({"title": {"text": DRIFT_METRICS[metric]}} if k == 0 else {}),
        }
    return figure(
        {
            "data": traces,
            "layout": {
                "font": FONT,
                "height": height,
                "margin": {"l": 55, "r": 10, "t": 30, "b": 40},
                "annotations": notes,
                "shapes": [
                    {
                        "type": "line",
                        "xref": f"{cell.xaxis} domain",
                        "x0": 0,
                        "x1": 1,
                        "yref": cell.yaxis,
                        "y0": 1,
                        "y1": 1,
                        "line": {"color": facts("dense").color, "dash": "dash", "width": 1},
                    }
                    for cell in cells[0]
                ],
                "dragmode": "select",
                "legend": {"font": {"size": 9}, "tracegroupgap": 0},  # a group per variant: no gaps, no scrolling
                **merge_axes(axes, updates),
            },
        }
    )
