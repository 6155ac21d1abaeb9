"""Global geometry (R2, R3): parallel coordinates of the samples of the class in focus.

One axis per class (the angle to that class direction), then length and margin; correct
samples grey, incorrect red. Above the axes, a density strip per axis compares reference
(grey) and compared (yellow). With many classes, a ranked pre-selection picks the axes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from app.figures import Figure, figure
from app.figures.density import kde
from app.figures.grid import grid
from app.figures.local import empty_figure
from app.figures.style import FONT, GREY, RED, SELECTED, YELLOW

MAX_AXES = 20
MAX_LINES = 3000


def rank_axes(ref: pd.DataFrame, cmp: pd.DataFrame | None, focus: int, num_classes: int, k: int = MAX_AXES) -> list[int]:
    """The class in focus, then the classes most confused with it (smallest mean angle of its
    samples) and, with a comparison, those whose angles moved most; at most `k` in all."""
    if num_classes <= k:
        return list(range(num_classes))
    g = ref[ref["label"] == focus]
    confusion = pd.Series({j: g[f"a{j}"].mean() for j in range(num_classes) if j != focus}).sort_values()
    picked = [focus] + list(confusion.index[: (k - 1) if cmp is None else (k - 1) // 2 + 1])
    if cmp is not None:
        h = cmp[cmp["label"] == focus]
        moved = pd.Series({j: abs(h[f"a{j}"].mean() - g[f"a{j}"].mean()) for j in range(num_classes) if j not in picked}).sort_values(ascending=False)
        picked += list(moved.index[: k - len(picked)])
    return picked[:k]


def dimensions(axes: list[int], class_names: list[str]) -> list[tuple[str, str]]:
    """(column, label) of every axis: angles, then length and margin."""
    return [(f"a{j}", f"∠ {class_names[j]}") for j in axes] + [("length", "length"), ("margin", "margin")]


def shown_lines(df: pd.DataFrame) -> pd.DataFrame:
    """The rows drawn as lines, in drawing order: all, or a fixed sample of MAX_LINES."""
    return df if len(df) <= MAX_LINES else df.sample(MAX_LINES, random_state=0)


def parallel_coordinates(df: pd.DataFrame, dims: list[tuple[str, str]], title: str, selected: set[int] | None = None) -> Figure:
    """`df`: the class in focus (sample_id, correct, a*, length, margin) of one evaluation set;
    `selected` sample ids are drawn blue (and first in the sample when lines are capped)."""
    if df.empty:
        return empty_figure("no samples of this class in this evaluation set", height=380)
    g = shown_lines(df)
    color = g["correct"].astype(int).to_numpy()
    if selected:
        color = np.where(g["sample_id"].isin(selected), 2, color)
    trace = {
        "type": "parcoords", "line": {"color": color, "colorscale": [[0, RED], [0.5, GREY], [1, SELECTED]], "cmin": 0, "cmax": 2},
        "dimensions": [{"label": label, "values": g[col].to_numpy(), "range": [float(np.nanmin(df[col])), float(np.nanmax(df[col]))]} for col, label in dims],
        "labelangle": -30, "labelfont": {"size": 10}, "tickfont": {"size": 9}, "rangefont": {"size": 8},
    }
    note = f" ({len(g)} of {len(df)} shown)" if len(g) < len(df) else f" ({len(df)} samples)"
    return figure({"data": [trace], "layout": {"font": FONT, "height": 380, "margin": {"l": 50, "r": 50, "t": 90, "b": 20},
                                               "title": {"text": title + note, "font": {"size": 13}, "x": 0.01, "y": 0.98}}})


def density_strips(ref: pd.DataFrame, cmp: pd.DataFrame | None, dims: list[tuple[str, str]]) -> Figure:
    """One small density per axis, reference grey and compared yellow, aligned with the axes."""
    cells, axes = grid(1, len(dims), hspace=0.02)
    frames = [(f, color) for f, color in ((ref, GREY), (cmp, YELLOW)) if f is not None and not f.empty]
    traces = []
    for cell, (col, _) in zip(cells[0], dims):
        if not frames:
            break
        lo = min(float(np.nanmin(f[col])) for f, _ in frames)
        hi = max(float(np.nanmax(f[col])) for f, _ in frames)
        for frame, color in frames:
            x, d = kde(frame[col].to_numpy(), lo, hi)
            traces.append({"type": "scatter", "x": d, "y": x, "mode": "lines", "fill": "tozerox", "opacity": 0.55, "line": {"color": color, "width": 1.5},
                           "hoverinfo": "skip", "showlegend": False, **cell.anchors})
    hidden = {k: {**v, "visible": False} for k, v in axes.items()}
    return figure({"data": traces, "layout": {**hidden, "height": 90, "margin": {"l": 35, "r": 35, "t": 4, "b": 4}}})


def brushed(df: pd.DataFrame, dims: list[tuple[str, str]], constraints: dict[str, list]) -> list[int]:
    """Sample ids inside every brushed range (a range may be one [lo, hi] or a list of them)."""
    keep = np.ones(len(df), bool)
    for idx, ranges in constraints.items():
        i = int(idx)
        if i >= len(dims) or not ranges:
            continue
        spans = ranges if isinstance(ranges[0], (list, tuple)) else [ranges]
        col = df[dims[i][0]].to_numpy()
        keep &= np.any([(col >= lo) & (col <= hi) for lo, hi in spans], axis=0)
    return df.loc[keep, "sample_id"].astype(int).tolist()
