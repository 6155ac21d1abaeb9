"""Per-layer sensitivity as a layer × sparsity heatmap, and the PIE of a population per class."""

from __future__ import annotations

import numpy as np
import pandas as pd

from app.figures import Figure, figure
from app.figures.local import empty_figure
from app.figures.style import BLUE, FONT, RED, SELECTED
from pipeline.store import SENSITIVITY_METRICS, sensitivity_grid

# worse in red, better in blue (the palette's roles); flips count up from white to red
DIVERGING = [[0.0, RED], [0.5, "#f7f7f7"], [1.0, BLUE]]
SEQUENTIAL = [[0.0, "#f7f7f7"], [1.0, RED]]


def _cell_text(value: float, metric: str) -> str:
    if np.isnan(value):
        return ""
    return f"{value:.0f}" if metric == "flips" else f"{value:+.3f}"


def sensitivity_heatmap(
    table: pd.DataFrame, metric: str, method: str | None = None, selected: str | None = None
) -> Figure:
    """Layers (rows, in the run's order) × requested sparsity (columns) of one method, coloured by
    `metric` (a key of SENSITIVITY_METRICS; mean over seeds). Each cell's customdata is the id of
    its first seed's model, which a click compares with its dense parent; `selected` is outlined."""
    if table.empty:
        return empty_figure("no per-layer sensitivity in this run: add a [[sensitivity]] table to its config")
    method = method if method in set(table["method"]) else str(table["method"].iloc[0])
    grid = sensitivity_grid(table, metric, method)
    sub = table[table["method"] == method].sort_values("replicate", kind="stable")
    first = sub.drop_duplicates(["layer", "target_sparsity"]).set_index(["layer", "target_sparsity"])["model_id"]
    seeds = sub.groupby(["layer", "target_sparsity"])["model_id"].count()
    z = grid.to_numpy(np.float64)
    ids = [[first.get((layer, s), "") for s in grid.columns] for layer in grid.index]
    text = [[_cell_text(v, metric) for v in row] for row in z]
    x = [f"{s * 100:g} %" for s in grid.columns]
    label = SENSITIVITY_METRICS[metric]
    finite = z[np.isfinite(z)]
    if metric == "flips":
        scale, zmin, zmax = SEQUENTIAL, 0.0, float(finite.max()) if finite.size else 1.0
    else:
        bound = float(np.abs(finite).max()) if finite.size else 1.0
        scale, zmin, zmax = DIVERGING, -(bound or 1.0), bound or 1.0
    heat = {
        "type": "heatmap",
        "z": z.tolist(),
        "x": x,
        "y": list(grid.index),
        "customdata": ids,
        "text": text,
        "texttemplate": "%{text}",
        "colorscale": scale,
        "zmin": zmin,
        "zmax": zmax,
        "xgap": 2,
        "ygap": 2,
        "colorbar": {"title": {"text": label, "side": "right"}, "thickness": 12},
        "hovertemplate": f"layer %{{y}} alone at sparsity %{{x}}<br>{label}: %{{text}}<br>%{{customdata}}"
        "<br>click: compare with its dense model<extra></extra>",
        "name": "sensitivity",
    }
    shapes = []
    for i, row in enumerate(ids):
        for j, mid in enumerate(row):
            if selected and mid == selected:
                shapes.append(
                    {
                        "type": "rect",
                        "x0": j - 0.5,
                        "x1": j + 0.5,
                        "y0": i - 0.5,
                        "y1": i + 0.5,
                        "line": {"color": SELECTED, "width": 3},
                    }
                )
    replicas = int(seeds.max()) if len(seeds) else 1
    title = f"{method}: each layer pruned alone — {label}" + (f" (mean of {replicas} seeds)" if replicas > 1 else "")
    return figure(
        {
            "data": [heat],
            "layout": {
                "title": {"text": title, "font": {"size": 13}},
                "font": FONT,
                "height": max(260, 60 + 34 * len(grid.index)),
                "margin": {"l": 90, "r": 20, "t": 40, "b": 50},
                "xaxis": {"title": {"text": "sparsity of the layer"}, "type": "category"},
                "yaxis": {"title": {"text": "layer"}, "type": "category", "autorange": "reversed"},
                "shapes": shapes,
            },
        }
    )


def pie_per_class(counts: list[int], names: list[str], title: str) -> Figure:
    """PIE per true class as bars; each bar's customdata is its class index (a click selects its PIE)."""
    return figure(
        {
            "data": [
                {
                    "type": "bar",
                    "x": [str(n) for n in names],
                    "y": list(counts),
                    "customdata": list(range(len(names))),
                    "marker": {"color": RED},
                    "text": [str(c) for c in counts],
                    "textposition": "outside",
                    "cliponaxis": False,
                    "hovertemplate": "class %{x}: %{y} PIE<br>click: select them<extra></extra>",
                    "name": "PIE",
                }
            ],
            "layout": {
                "title": {"text": title, "font": {"size": 13}},
                "font": FONT,
                "height": 260,
                "margin": {"l": 50, "r": 10, "t": 40, "b": 60},
                "xaxis": {"title": {"text": "true class"}, "type": "category"},
                "yaxis": {"title": {"text": "PIE"}, "rangemode": "tozero"},
            },
        }
    )
