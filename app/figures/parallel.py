"""Global geometry (R2, R3): parallel coordinates of the samples of the class in focus.

One axis per class (the angle to that class direction), then length and margin; correct
samples grey, incorrect red; in comparison mode each sample is two lines, reference grey and
compared yellow (the colours of the trajectories' ends). Above the axes, a density strip per
axis compares reference and compared. With many classes, a ranked pre-selection picks the axes.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from app.figures import Figure, figure
from app.figures.density import kde
from app.figures.local import empty_figure
from app.figures.style import FONT, GREY, RED, SELECTED, YELLOW

MAX_AXES = 20
MAX_LINES = 3000


def class_angles(df: pd.DataFrame, num_classes: int) -> np.ndarray:
    """The angle columns a0..a{C−1} of `df` as an (N, C) array, an angle the row does not hold (a
    run that keeps only the k nearest classes of corrupted rows, docs/store.md) counted as the row's
    largest held angle, its k-th nearest: a lower bound, so that rankings see it as far."""
    return _nearest_filled(df[[f"a{j}" for j in range(num_classes)]].to_numpy(dtype=float))


def _nearest_filled(mat: np.ndarray) -> np.ndarray:
    """class_angles of an (N, C) angle matrix with NaN where a row does not hold an angle."""
    held = np.isfinite(mat)
    if held.all():
        return mat
    kth = np.where(held.any(axis=1), np.nanmax(np.where(held, mat, -np.inf), axis=1), np.nan)
    return np.where(held, mat, kth[:, None])


def rank_axes(
    ref: pd.DataFrame, cmp: pd.DataFrame | None, focus: int, num_classes: int, k: int = MAX_AXES
) -> list[int]:
    """The class in focus, then the classes most confused with it (smallest mean angle of its
    samples, an angle not held counted as the k-th nearest) and, with a comparison, those whose
    mean angle moved most (over the angles both hold: one not held may not have moved at all);
    at most `k` in all."""
    if num_classes <= k:
        return list(range(num_classes))
    others = np.arange(num_classes) != focus
    cols = [f"a{j}" for j in range(num_classes)]
    # one (N, C) matrix per frame: at 1000 classes a selection of the angle columns costs more than the ranking
    g = ref.loc[ref["label"].to_numpy() == focus, cols].to_numpy(dtype=float)
    with warnings.catch_warnings():  # a class no sample holds has no mean: NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        mean_ref = np.nanmean(_nearest_filled(g), axis=0)
    confusion = np.where(others & np.isfinite(mean_ref), mean_ref, np.inf)
    picked = [focus] + [int(j) for j in np.argsort(confusion, kind="stable")[: (k - 1) if cmp is None else k // 2]]
    if cmp is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            held_ref = np.nanmean(g, axis=0)
            held_cmp = np.nanmean(cmp.loc[cmp["label"].to_numpy() == focus, cols].to_numpy(dtype=float), axis=0)
        moved = np.abs(held_cmp - held_ref)
        moved[~np.isfinite(moved)] = -np.inf
        moved[picked] = -np.inf
        picked += [int(j) for j in np.argsort(-moved, kind="stable")[: k - len(picked)]]
    return picked[:k]


def dimensions(axes: list[int], class_names: list[str]) -> list[tuple[str, str]]:
    """(column, label) of every axis: angles, then length and margin."""
    return [(f"a{j}", f"∠ {class_names[j]}") for j in axes] + [("length", "length"), ("margin", "margin")]


def line_frame(ref: pd.DataFrame, cmp: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every line to draw, with its `group`: for one model 0 correct / 1 incorrect; with a
    compared model, each sample twice, 0 its reference line and 1 its compared line."""
    if cmp is None:
        return ref.assign(group=np.where(ref["correct"].to_numpy(dtype=bool), 0, 1))
    return pd.concat([ref.assign(group=0), cmp.assign(group=1)], ignore_index=True)


def shown_lines(lines: pd.DataFrame) -> pd.DataFrame:
    """The lines drawn, in drawing order: all, or those of a fixed sample of MAX_LINES samples."""
    ids = lines["sample_id"].unique()
    if len(ids) <= MAX_LINES:
        return lines
    keep = pd.Series(ids).sample(MAX_LINES, random_state=0)
    return lines[lines["sample_id"].isin(keep)]


def axis_ranges(df: pd.DataFrame, dims: list[tuple[str, str]]) -> list[tuple[float, float]]:
    """(low, high) of every axis over all of `df`: an axis spans its values from bottom to top."""
    return _ranges(_axis_values(df, dims))


def _axis_values(df: pd.DataFrame, dims: list[tuple[str, str]]) -> np.ndarray:
    """The axes' values of `df`'s rows as one (N, k) matrix: one column selection, not one per axis and
    trace (each a pandas lookup, which cost more than the axis's arithmetic)."""
    return df[[col for col, _ in dims]].to_numpy(dtype=float)


def _ranges(values: np.ndarray) -> list[tuple[float, float]]:
    """axis_ranges of an (N, k) matrix of the axes' values."""
    ranges = []
    for v in values.T:
        lo, hi = (float(np.nanmin(v)), float(np.nanmax(v))) if np.isfinite(v).any() else (0.0, 1.0)
        ranges.append((lo, hi if hi > lo else lo + 1.0))
    return ranges


def _polylines(values: np.ndarray, ranges: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """x and y of one polyline per row of `values` (N, k: the rows' values on the k axes) through the
    axes (x = axis index, y = position 0..1 on it), separated by NaN so that one SVG path draws them all."""
    n, k = values.shape
    lo, hi = np.array(ranges, dtype=float).reshape(k, 2).T
    y = np.full((n, k + 1), np.nan)
    y[:, :k] = (values - lo) / (hi - lo)
    x = np.tile(np.append(np.arange(k, dtype=float), np.nan), n)
    return x, y.ravel()


def axis_positions(
    g: pd.DataFrame, dims: list[tuple[str, str]], ranges: list[tuple[float, float]], decimals: int = 4
) -> list[list[float | None]]:
    """Per axis, each row's position on it (0 bottom, 1 top), None where the value is missing
    (a zero feature vector has no angles): the snapshot's script brushes and redraws from these."""
    out = []
    for (col, _), (lo, hi) in zip(dims, ranges):
        pos = np.round((g[col].to_numpy(dtype=float) - lo) / (hi - lo), decimals)
        out.append([None if np.isnan(p) else float(p) for p in pos])
    return out


def axis_position(i: int, k: int) -> float:
    """Where axis `i` of `k` sits, as a fraction of the plot's width: the middle of its k-th."""
    return (i + 0.5) / k


SINGLE_GROUPS = (("correct", GREY, 0.35), ("incorrect", RED, 0.6))
COMPARED_GROUPS = (("reference", GREY, 0.35), ("compared", YELLOW, 0.45))
SELECTED_GROUP = ("selected", SELECTED, 0.9)


def parallel_coordinates(
    df: pd.DataFrame,
    dims: list[tuple[str, str]],
    title: str,
    selected: set[int] | None = None,
    boxes: list[dict] | None = None,
    compared: pd.DataFrame | None = None,
) -> Figure:
    """`df`: the class in focus (sample_id, correct, a*, length, margin) of one evaluation set;
    `compared`: the same samples on the compared model.

    SVG lines, three traces drawn in this order: correct grey and incorrect red (with a
    compared model: reference grey and compared yellow), then the `selected` sample ids blue;
    one vertical axis per dimension with its own value ticks. A box selection (dragmode
    "select") brushes the axes it covers; `boxes` are the brushes to keep drawn, as plotly
    layout selections. Software WebGL (plotly's parcoords) costs about a second to set up in
    a browser without a GPU; a few SVG paths draw at once."""
    if df.empty:
        return empty_figure("no samples of this class in this evaluation set", height=380)
    lines = line_frame(df, compared)
    g = shown_lines(lines)
    ranges = axis_ranges(lines, dims)
    values = _axis_values(g, dims)
    chosen = g["sample_id"].isin(selected).to_numpy() if selected else np.zeros(len(g), bool)
    group = g["group"].to_numpy()
    traces = []
    groups = (*(SINGLE_GROUPS if compared is None else COMPARED_GROUPS), SELECTED_GROUP)
    for (name, color, opacity), rows in zip(groups, (~chosen & (group == 0), ~chosen & (group == 1), chosen)):
        x, y = _polylines(values[rows], ranges)
        traces.append(
            {
                "type": "scatter",
                "x": x,
                "y": y,
                "mode": "lines",
                "name": name,
                "line": {"color": color, "width": 1},
                "opacity": opacity,
                "hoverinfo": "skip",
                "showlegend": False,
            }
        )
    k = len(dims)
    layout = {
        "font": FONT,
        "height": 380,
        "margin": {"l": 20, "r": 20, "t": 80, "b": 20},
        "dragmode": "select",
        "showlegend": False,
        "title": {
            "text": title
            + (f" ({len(g)} of {len(lines)} lines shown)" if len(g) < len(lines) else f" ({len(df)} samples)"),
            "font": {"size": 13},
            "x": 0.01,
            "y": 0.98,
        },
        "xaxis": {
            "range": [-0.5, k - 0.5],
            "tickvals": list(range(k)),
            "ticktext": [label for _, label in dims],
            "side": "top",
            "tickangle": -30,
            "tickfont": {"size": 11},
            "showgrid": True,
            "gridcolor": "#555",
            "zeroline": False,
            "fixedrange": True,
        },
        "yaxis": {"range": [-0.03, 1.03], "visible": False, "fixedrange": True},
        "selections": boxes or [],
    }
    for i, (lo, hi) in enumerate(ranges):
        pad = 0.03 * (hi - lo)
        layout[f"yaxis{i + 2}"] = {
            "overlaying": "y",
            "anchor": "free",
            "position": axis_position(i, k),
            "range": [lo - pad, hi + pad],
            "tickmode": "auto",
            "nticks": 5,
            "tickfont": {"size": 10, "color": "#444"},
            "showgrid": False,
            "zeroline": False,
            "fixedrange": True,
        }
        traces.append(
            {"type": "scatter", "x": [], "y": [], "yaxis": f"y{i + 2}", "hoverinfo": "skip", "showlegend": False}
        )
    return figure({"data": traces, "layout": layout})


STRIP_HALF = 0.4  # a density strip's half width, in axes: it starts 0.4 left of its axis and reaches at most 0.4 right


def density_strips(ref: pd.DataFrame, cmp: pd.DataFrame | None, dims: list[tuple[str, str]]) -> Figure:
    """One small density per axis, reference grey and compared yellow, over its axis of the parallel
    coordinates (the same x range and margins): the axis's values upwards, over their range in both
    models, and their density rightwards from STRIP_HALF left of the axis, the larger of the two
    reaching STRIP_HALF right of it. Every strip shares one pair of axes, one trace a model: each
    density is a polygon, separated from the next by NaN, which plotly fills on its own ("toself").
    A subplot a strip cost plotly.js 0.1–0.27 s of the first page (22 axes at 1000 classes)."""
    columns = [col for col, _ in dims]
    frames = [  # every axis's values as one matrix per frame: a column lookup per axis costs more than its density
        (f[columns].to_numpy(dtype=float), color, name)
        for f, color, name in ((ref, GREY, "reference"), (cmp, YELLOW, "compared"))
        if f is not None and not f.empty
    ]
    shapes: list[tuple[list[np.ndarray], list[np.ndarray]]] = [([], []) for _ in frames]
    for i in range(len(dims)):
        values = np.concatenate([m[:, i] for m, _, _ in frames]) if frames else np.empty(0)
        values = values[np.isfinite(values)]  # an angle a row does not hold (k nearest only) is NaN
        if not len(values):
            continue
        lo, hi = float(values.min()), float(values.max())
        curves = [kde(matrix[:, i], lo, hi) for matrix, _, _ in frames]
        drawn = [(x, d) for x, d in curves if len(x)]
        if not drawn:
            continue
        bottom = min(float(x[0]) for x, _ in drawn)
        top = max(float(x[-1]) for x, _ in drawn)
        peak = max(float(d.max()) for _, d in drawn)
        base = i - STRIP_HALF
        for (x, d), (xs, ys) in zip(curves, shapes):
            if not len(x) or peak <= 0 or top <= bottom:
                continue
            xs.append(np.concatenate([[base], base + 2 * STRIP_HALF * d / peak, [base, np.nan]]))
            ys.append((np.concatenate([[x[0]], x, [x[-1], np.nan]]) - bottom) / (top - bottom))
    traces = [
        {
            "type": "scatter",
            "x": np.concatenate(xs),
            "y": np.concatenate(ys),
            "mode": "lines",
            "fill": "toself",
            "opacity": 0.55,
            "line": {"color": color, "width": 1.5},
            "hoverinfo": "skip",
            "showlegend": False,
            "name": name,
        }
        for (_, color, name), (xs, ys) in zip(frames, shapes)
        if xs
    ]
    key = " · ".join(f'<span style="color:{color}">■</span> {name}' for _, color, name in frames)
    note = {
        "text": f"density per axis: {key}" if frames else "",
        "showarrow": False,
        "xref": "paper",
        "yref": "paper",
        "x": 0,
        "y": 1,
        "xanchor": "left",
        "yanchor": "bottom",  # above the strips, in the top margin
        "font": {"size": 10, "color": "#444"},
    }
    hidden = {"visible": False, "fixedrange": True}
    return figure(
        {
            "data": traces,
            "layout": {
                "xaxis": {"range": [-0.5, len(dims) - 0.5], **hidden},
                "yaxis": {"range": [-0.02, 1.02], **hidden},
                "annotations": [note],
                "height": 96,
                "margin": {"l": 20, "r": 20, "t": 18, "b": 4},
            },
        }
    )


def box_constraints(boxes: list[dict], ranges: list[tuple[float, float]]) -> dict[str, list[list[float]]]:
    """Brushed value ranges per axis index from box selections drawn on the parallel
    coordinates: a box brushes every axis it covers, over its height in that axis's values."""
    constraints: dict[str, list[list[float]]] = {}
    for box in boxes:
        try:
            x0, x1 = sorted((float(box["x0"]), float(box["x1"])))
            y0, y1 = sorted((float(box["y0"]), float(box["y1"])))
        except (KeyError, TypeError, ValueError):
            continue
        for i, (lo, hi) in enumerate(ranges):
            if x0 <= i <= x1:  # a box past an end of the axis takes everything beyond it (no rounding loss at the ends)
                constraints.setdefault(str(i), []).append(
                    [-np.inf if y0 <= 0 else lo + y0 * (hi - lo), np.inf if y1 >= 1 else lo + y1 * (hi - lo)]
                )
    return constraints


def brushed(df: pd.DataFrame, dims: list[tuple[str, str]], constraints: dict[str, list]) -> list[int]:
    """Sample ids with a row inside every brushed range (a range may be one [lo, hi] or a list of
    them); `df` may hold several rows (lines) per sample."""
    keep = np.ones(len(df), bool)
    for idx, ranges in constraints.items():
        i = int(idx)
        if i >= len(dims) or not ranges:
            continue
        spans = ranges if isinstance(ranges[0], (list, tuple)) else [ranges]
        col = df[dims[i][0]].to_numpy()
        keep &= np.any([(col >= lo) & (col <= hi) for lo, hi in spans], axis=0)
    return sorted(set(df.loc[keep, "sample_id"].astype(int).tolist()))
