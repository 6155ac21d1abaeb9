"""The curse of dimensionality (the paper's Fig. 3): the angle of samples to their class
direction in the run's models against the angle between random vectors of the same dimension.

Left: mean ± std angle between two random vectors as the dimension grows (it tends to 90°
with a shrinking spread), with the run's models at the width of their last feature layer,
pooled by kind (untrained, dense, pruned): to their own class direction (filled) and to the
other classes' directions (hollow). Right: every model's mean ± std angle to its own class
direction over its measured sparsity, one colour per method, against the random-vector band
at the run's dimension.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from app.figures import Figure, figure
from app.figures.grid import grid, merge_axes, title
from app.figures.local import empty_figure
from app.figures.style import FONT, GREY
from pipeline.store import KINDS, pooled, random_angle_stats
from pipeline.store.methods import facts

KIND_COLORS = {"untrained": "#b0b0b0", "dense": facts("dense").color, "pruned": "#1f77b4"}
BAND = "rgba(158,158,158,0.25)"


def angle_dimension(summary: pd.DataFrame, height: int = 420) -> Figure:
    """`summary`: one row per model (pipeline.report.angle_summary): model_id, method, kind,
    dim, sparsity, clean_accuracy, n, angle_mean, angle_std, other_mean, other_std."""
    summary = summary[summary["n"] > 0]
    if summary.empty:
        return empty_figure("no clean evaluations with angles in this run", height=height)
    cells, axes = grid(1, 2, col_widths=[1.0, 1.0], hspace=0.09)
    left, right = cells[0]
    dims = sorted({int(d) for d in summary["dim"]})
    grid_dims = np.unique(np.geomspace(2, max(8192, 2 * dims[-1]), 48).round().astype(int))
    mean, std = random_angle_stats(grid_dims)
    traces = [
        _band(grid_dims, mean, std, "random vectors: mean ± std", left.anchors),
        _line(grid_dims, mean, left.anchors),
    ]
    for k, kind in enumerate(kind for kind in KINDS if (summary["kind"] == kind).any()):
        g = summary[summary["kind"] == kind]
        for j, (col, hollow) in enumerate((("angle", False), ("other", True))):
            rows = [(d, *pooled(part["n"], part[f"{col}_mean"], part[f"{col}_std"])) for d, part in g.groupby("dim")]
            d, m, s = (np.array(v, float) for v in zip(*rows))
            shift = 2.0 ** (0.4 * (k - 1) + 0.13 * j)  # side by side at the same dimension
            traces.append(
                {
                    "type": "scatter",
                    "x": d * shift,
                    "y": m,
                    "mode": "markers",
                    "name": f"{kind}: {'other classes' if hollow else 'own class'}",
                    "legendgroup": kind,
                    "error_y": {"type": "data", "array": s, "color": KIND_COLORS[kind], "thickness": 1.2},
                    "marker": {
                        "symbol": "circle-open" if hollow else "circle",
                        "size": 9,
                        "color": KIND_COLORS[kind],
                        "line": {"width": 2, "color": KIND_COLORS[kind]},
                    },
                    "customdata": np.column_stack([d, s, [int((g["dim"] == v).sum()) for v in d]]).tolist(),
                    "hovertemplate": f"{kind}, {'other class directions' if hollow else 'own class direction'}"
                    "<br>dimension %{customdata[0]:.0f}: %{y:.1f}° ± %{customdata[1]:.1f}°"
                    "<br>%{customdata[2]} model(s)<extra></extra>",
                    **left.anchors,
                }
            )

    r_mean, r_std = random_angle_stats(np.array(dims))
    traces.append(
        _band(np.array([-0.05, 1.02]), np.repeat(r_mean[-1], 2), np.repeat(r_std[-1], 2), None, right.anchors)
    )
    methods = sorted(set(summary["method"]))
    for method, g in summary.sort_values("sparsity").groupby("method", sort=True):
        dodge = 0.012 * (methods.index(method) - (len(methods) - 1) / 2)  # error bars of methods side by side
        untrained = g["kind"] == "untrained"
        for part, label in ((g[~untrained], method), (g[untrained], f"{method} (untrained)")):
            if part.empty:
                continue
            color = KIND_COLORS["untrained"] if label.endswith("(untrained)") else facts(str(method)).color
            traces.append(
                {
                    "type": "scatter",
                    "x": part["sparsity"].to_numpy(float) + dodge,
                    "y": part["angle_mean"].to_numpy(float),
                    "mode": "markers",
                    "name": label,
                    "legendgroup": f"m-{label}",
                    "error_y": {"type": "data", "array": part["angle_std"].to_numpy(float), "thickness": 1},
                    "marker": {"size": 8, "color": color, "symbol": "diamond" if method == "dense" else "circle"},
                    "customdata": np.column_stack(
                        [part["model_id"], part["angle_std"], part["clean_accuracy"], part["dim"], part["sparsity"]]
                    ).tolist(),
                    "hovertemplate": "%{customdata[0]}<br>sparsity %{x:.2f}, clean accuracy %{customdata[2]:.3f}"
                    "<br>angle to own class %{y:.1f}° ± %{customdata[1]:.1f}° (dimension %{customdata[3]})"
                    "<extra></extra>",
                    **right.anchors,
                }
            )
    note = f"random vectors of dimension {dims[-1]}: {r_mean[-1]:.1f}° ± {r_std[-1]:.1f}°"
    layout = {
        **merge_axes(
            axes,
            {
                left.xkey: {"type": "log", "title": {"text": "dimension (width of the last feature layer)"}},
                left.ykey: {"title": {"text": "angle (°)"}, "range": [0, 180], "dtick": 30},
                right.xkey: {"title": {"text": "sparsity (measured)"}, "range": [-0.05, 1.02]},
                right.ykey: {"title": {"text": "angle to own class direction (°)"}},
            },
        ),
        "annotations": [
            title(left, "angle vs dimension: random vectors and the run's models"),
            title(right, f"per model, mean ± std ({note})"),
        ],
        "font": FONT,
        "height": height,
        "margin": {"l": 50, "r": 10, "t": 40, "b": 40},
        "legend": {"font": {"size": 9}, "orientation": "h", "y": -0.18, "yanchor": "top"},
        "hovermode": "closest",
    }
    return figure({"data": traces, "layout": layout})


def _band(x: np.ndarray, mean: np.ndarray, std: np.ndarray, name: str | None, anchors: dict) -> dict:
    """A filled mean ± std band (one closed polygon)."""
    return {
        "type": "scatter",
        "x": np.concatenate([x, x[::-1]]).astype(float),
        "y": np.concatenate([mean + std, (mean - std)[::-1]]),
        "fill": "toself",
        "fillcolor": BAND,
        "line": {"width": 0},
        "mode": "lines",
        "name": name or "random vectors",
        "showlegend": name is not None,
        "legendgroup": "random",
        "hoverinfo": "skip",
        **anchors,
    }


def _line(x: np.ndarray, mean: np.ndarray, anchors: dict) -> dict:
    return {
        "type": "scatter",
        "x": x.astype(float),
        "y": mean,
        "mode": "lines",
        "line": {"color": GREY, "width": 1.5, "dash": "dot"},
        "showlegend": False,
        "legendgroup": "random",
        "hoverinfo": "skip",
        **anchors,
    }
