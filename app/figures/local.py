"""Local geometry (R2, R3): per class, angle to the class direction (x) against feature length (y).

Single model: small multiples of the classes, each with marginal densities of angle (top)
and length (right) and the margin density (top right); correct grey, incorrect red; the
class accuracy in the title. Comparison: the class in focus, reference (grey) and compared
(yellow) positions joined by each sample's trajectory, split into all / both wrong /
right→wrong / wrong→right / both right.
"""

from __future__ import annotations

import html
import math
import textwrap

import numpy as np
import pandas as pd

from app.figures import Figure, figure, sample_ids
from app.figures.density import kde
from app.figures.grid import grid, merge_axes
from app.figures.grid import note as cell_note
from app.figures.grid import title as cell_title
from app.figures.style import BLUE, FONT, GREY, PURPLE, RED, YELLOW

CATEGORIES = (
    ("all", "all samples", "#555555"),
    ("both_wrong", "both wrong", PURPLE),
    ("right_wrong", "right → wrong", RED),
    ("wrong_right", "wrong → right", BLUE),
    ("both_right", "both right", GREY),
)
MAX_POINTS = 4000
MAX_CLASSES = 10  # small multiples drawn at most
WEBGL_FROM = 1000  # markers per figure: SVG below (draws at once), WebGL from here (plotly express's rule)


def scatter_type(points: int) -> str:
    """SVG scatter for few points, WebGL for many: software WebGL costs about a second to set up."""
    return "scattergl" if points >= WEBGL_FROM else "scatter"


def _sample(n: int, limit: int) -> np.ndarray:
    """Positions of at most `limit` of `n` rows: all of them, or a fixed random sample (pandas'
    `sample(limit, random_state=0)`, drawn the same way)."""
    return np.arange(n) if n <= limit else np.random.RandomState(0).choice(n, limit, replace=False)


RANK_CONFUSION, RANK_CHANGE = "confusion", "change"
RANKINGS = {RANK_CONFUSION: "confusion", RANK_CHANGE: "change"}


def class_ranking(ref: pd.DataFrame, cmp: pd.DataFrame | None, by: str, num_classes: int) -> pd.DataFrame:
    """Every class ranked for the pre-selection, first the one to look at: by confusion, the lowest
    accuracy on the reference (then the lowest mean margin); by change (with a compared
    combination), the most samples whose correctness flips between the two.
    Columns: class, n, accuracy, flips (NaN without a comparison)."""
    label, correct = ref["label"].to_numpy(np.int64), ref["correct"].to_numpy(float)
    margin = ref["margin"].to_numpy(float)
    known = (label >= 0) & (label < num_classes)
    n = np.bincount(label[known], minlength=num_classes)
    measured = known & np.isfinite(margin)  # a mean of the margins there are, as pandas' mean skips NaN
    with np.errstate(invalid="ignore", divide="ignore"):  # a class without samples: NaN, ranked last
        accuracy = np.bincount(label[known], correct[known], num_classes) / n
        margins = np.bincount(label[measured], margin[measured], num_classes) / np.bincount(
            label[measured], minlength=num_classes
        )
    out = pd.DataFrame({"class": np.arange(num_classes), "n": n, "accuracy": accuracy, "flips": np.nan})
    keys = [np.nan_to_num(accuracy, nan=np.inf), np.nan_to_num(margins, nan=np.inf)]
    if cmp is not None:
        _, mine, theirs = np.intersect1d(
            ref["sample_id"].to_numpy(), cmp["sample_id"].to_numpy(), assume_unique=True, return_indices=True
        )
        flipped = mine[correct[mine] != cmp["correct"].to_numpy(float)[theirs]]
        flips = np.bincount(label[flipped][known[flipped]], minlength=num_classes)
        out["flips"] = flips
        if by == RANK_CHANGE:
            keys = [-flips.astype(float)]  # ties by class index, as the export's default class
    order = np.lexsort(keys[::-1])  # lexsort: the last key sorts first
    return out.iloc[order].reset_index(drop=True)


def classes_to_show(ranked: list[int], focus: int, num_classes: int) -> list[int]:
    """All classes when few; otherwise the class in focus and the first of the pre-selection's ranking."""
    if num_classes <= MAX_CLASSES:
        return list(range(num_classes))
    return [focus] + [int(c) for c in ranked if c != focus][: MAX_CLASSES - 1]


def empty_figure(message: str, height: int = 260) -> Figure:
    """A blank plot that says `message` (wrapped narrow enough for a small panel: a store error and its fix)."""
    lines = textwrap.wrap(html.escape(message, quote=False), 60) or [""]
    return figure(
        {
            "data": [],
            "layout": {
                "annotations": [
                    {
                        "text": "<br>".join(lines),
                        "showarrow": False,
                        "x": 0.5,
                        "y": 0.5,
                        "xref": "paper",
                        "yref": "paper",
                        "font": {"size": 14, "color": "#666"},
                    }
                ],
                "height": height,
                "xaxis": {"visible": False},
                "yaxis": {"visible": False},
                "margin": {"l": 10, "r": 10, "t": 10, "b": 10},
            },
        }
    )


# The small multiples share one pair of axes: each class is a cell of 1 × 1 data units (column c,
# row r from the top) holding its scatter, the angle density above it, the length density to its
# right and the margin density in the corner between them. plotly.js then lays out, draws and sets
# up WebGL for one subplot instead of four a class (10 classes, 5,200 points, software WebGL: 1.7 s
# to draw as 40 subplots, 0.9 s as one). Angle and length ranges are shared by every class, as the
# paper's "similar ranges for each class" allows; the margin densities share the corner's range.
SCATTER_U, SIDE_U = (0.0, 0.74), (0.755, 0.95)  # across a cell: the scatter, then the side densities
SCATTER_V, TOP_V = (0.02, 0.70), (0.72, 0.86)  # up a cell: the scatter, then the top densities; the title above
GRID_COLOR = "#eee"  # plotly.js's own grid colour


def _scale(values: np.ndarray, lo: float, hi: float, to: tuple[float, float]) -> np.ndarray:
    """`values` on [lo, hi] mapped onto `to` (a zone of a cell)."""
    return to[0] + (np.asarray(values, np.float64) - lo) * ((to[1] - to[0]) / (hi - lo))


def _span(lo: float, hi: float, pad: float) -> tuple[float, float]:
    """[lo, hi] widened by `pad` of its width each side (by 1 when it has none)."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return 0.0, 1.0
    width = hi - lo
    return (lo - pad * width, hi + pad * width) if width > 0 else (lo - 1.0, hi + 1.0)


def _finite_ends(values: np.ndarray) -> np.ndarray:
    """[min, max] of the finite `values` (NaN, NaN without any: _span then falls back to [0, 1])."""
    finite = np.asarray(values, np.float64)
    finite = finite[np.isfinite(finite)]
    return np.array([finite.min(), finite.max()]) if len(finite) else np.array([np.nan, np.nan])


def _ticks(values: np.ndarray, span: tuple[float, float], count: int = 4) -> tuple[np.ndarray, list[str]]:
    """nice_ticks of `span`, none where `values` has no finite value (its span is a placeholder)."""
    if not np.isfinite(np.asarray(values, np.float64)).any():
        return np.empty(0), []
    return nice_ticks(*span, count=count)


def nice_ticks(lo: float, hi: float, count: int = 4) -> tuple[np.ndarray, list[str]]:
    """About `count` round values strictly inside (lo, hi), a step of 1, 2 or 5 × 10^k (the nearest to
    the width over `count`), and their labels (with plotly.js's minus sign)."""
    raw = (hi - lo) / count
    power = math.floor(math.log10(raw))
    step = min((m * 10.0**power for m in (1, 2, 5, 10)), key=lambda s: abs(math.log(s / raw)))
    values = np.arange(math.ceil(lo / step), math.floor(hi / step) + 1) * step
    values = values[(values > lo) & (values < hi)]
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return values, [f"{v:.{decimals}f}".replace("-", "\u2212") for v in values]


def _segments(xs: list[np.ndarray], ys: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Polylines as one trace's x and y, a NaN between two (plotly.js draws each on its own)."""
    if not xs:
        return np.empty(0), np.empty(0)
    gap = np.array([np.nan])
    return np.concatenate([p for x in xs for p in (x, gap)]), np.concatenate([p for y in ys for p in (y, gap)])


def _density_polygon(
    at: np.ndarray, density: np.ndarray, peak: float, base: float, height: float, upright: bool
) -> tuple[np.ndarray, np.ndarray]:
    """A density as a closed polygon on its baseline (fill "toself"): `at` the positions along the
    baseline, the density scaled so that `peak` reaches `height`; `upright` for a curve above a
    horizontal baseline, else to the right of a vertical one. Returns (x, y)."""
    along = np.concatenate([[at[0]], at, [at[-1]]])
    across = base + np.concatenate([[0.0], density / peak * height, [0.0]])
    return (along, across) if upright else (across, along)


def small_multiples(
    df: pd.DataFrame,
    class_names: list[str],
    classes: list[int],
    selected: set[int] | None = None,
    per_row: int = 5,
    margin_label: str = "margin",
) -> Figure:
    """`df`: one evaluation set's rows (sample_id, label, correct, angle, length, margin);
    `margin_label` names the run's margin definition on the margin densities' axis. Each marker's
    customdata is [sample id, angle, length]: the axes hold cell positions, the hover the values."""
    classes = [c for c in classes if (df["label"] == c).any()]
    if not classes:
        return empty_figure("no samples of these classes in this evaluation set")
    ncols = min(per_row, len(classes))
    nrows = math.ceil(len(classes) / ncols)
    label, correct = df["label"].to_numpy(), df["correct"].to_numpy(bool)
    column = {k: df[k].to_numpy() for k in ("sample_id", "angle", "length", "margin")}
    shown = np.isin(label, classes)
    a_range = _span(*(_finite_ends(column["angle"]) + np.array([-2.0, 2.0])), 0)
    l_range = _span(*_finite_ends(column["length"]), 0.04)
    margins = column["margin"][shown]
    margins = margins[np.isfinite(margins)]
    m_data = _span(float(margins.min()), float(margins.max()), 0) if len(margins) else (-1.0, 1.0)
    kind = scatter_type(int(shown.sum()))
    chosen = np.isin(column["sample_id"], list(selected)) if selected else np.zeros(len(df), bool)
    drawn = []  # per class: its sample count, accuracy and the positions of the rows drawn, correct or not
    for c in classes:
        rows = np.flatnonzero(label == c)  # positions, not pandas masks: this loop runs per class and per set
        total, accuracy = len(rows), correct[rows].mean()
        rows = rows[_sample(total, MAX_POINTS)]
        drawn.append((total, accuracy, {ok: rows[correct[rows] == ok] for ok in (True, False)}))
    corner_kdes = [{ok: kde(column["margin"][part], *m_data) for ok, part in parts.items()} for *_, parts in drawn]
    ends = [(x[0], x[-1]) for kdes in corner_kdes for x, _ in kdes.values() if len(x)]
    m_range = (min(e[0] for e in ends), max(e[1] for e in ends)) if ends else m_data  # the densities' tails too
    points: dict[bool, list[np.ndarray]] = {True: [], False: []}
    fills: dict[bool, tuple[list, list]] = {True: ([], []), False: ([], [])}
    curves: dict[bool, tuple[list, list]] = {True: ([], []), False: ([], [])}
    grid_x, grid_y, edge_x, edge_y, notes = [], [], [], [], []
    a_ticks, a_text = _ticks(column["angle"], a_range)
    l_ticks, l_text = _ticks(column["length"], l_range)
    m_ticks, m_text = _ticks(margins, m_range, count=3)
    for i, (c, (total, accuracy, parts), corners) in enumerate(zip(classes, drawn, corner_kdes)):
        ox, oy = i % ncols, nrows - 1 - i // ncols  # the cell's lower left corner
        tops, sides = {}, {}
        for ok, part in parts.items():
            points[ok].append(part)
            tops[ok] = kde(column["angle"][part], *a_range)
            sides[ok] = kde(column["length"][part], *l_range)
        for zone, ranged, upright, along, across, outline in (
            (tops, a_range, True, SCATTER_U, TOP_V, False),
            (sides, l_range, False, SCATTER_V, SIDE_U, False),
            (corners, m_range, True, SIDE_U, TOP_V, True),
        ):
            inside = {ok: (x >= ranged[0]) & (x <= ranged[1]) for ok, (x, _) in zone.items()}
            peak = max((d[inside[ok]].max() for ok, (_, d) in zone.items() if inside[ok].any()), default=0.0)
            if peak <= 0:
                continue
            offset_along, offset_across = (ox, oy) if upright else (oy, ox)
            for ok, (x, d) in zone.items():
                if inside[ok].sum() < 2:
                    continue
                at = offset_along + _scale(x[inside[ok]], *ranged, along)
                px, py = _density_polygon(
                    at, d[inside[ok]], peak, offset_across + across[0], across[1] - across[0], upright
                )
                target = curves[ok] if outline else fills[ok]
                target[0].append(px[1:-1] if outline else px)
                target[1].append(py[1:-1] if outline else py)
        for t in a_ticks:  # the scatter's grid, inside its zone
            x = ox + _scale(t, *a_range, SCATTER_U)
            grid_x.append(np.array([x, x]))
            grid_y.append(oy + np.array(SCATTER_V))
        for t in l_ticks:
            y = oy + _scale(t, *l_range, SCATTER_V)
            grid_x.append(ox + np.array(SCATTER_U))
            grid_y.append(np.array([y, y]))
        if m_range[0] < 0 < m_range[1]:  # the decision boundary in the margin's corner
            x = ox + _scale(0.0, *m_range, SIDE_U)
            edge_x.append(np.array([x, x]))
            edge_y.append(oy + np.array(TOP_V))
        notes.append(
            {
                "text": f"<b>{class_names[c]}</b> · {accuracy:.1%} ({total})",
                "x": ox + sum(SCATTER_U) / 2,
                "y": oy + TOP_V[1],
                "xref": "x",
                "yref": "y",
                "xanchor": "center",
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"size": 11},
            }
        )
        if total > (shown_here := sum(len(p) for p in parts.values())):
            notes.append(
                {
                    "text": f"{shown_here} of {total} shown",
                    "x": ox + SCATTER_U[1],
                    "y": oy + SCATTER_V[1],
                    "xref": "x",
                    "yref": "y",
                    "xanchor": "right",
                    "yanchor": "top",
                    "showarrow": False,
                    "font": {"size": 9},
                }
            )
    traces = [
        {
            "type": "scatter",
            "x": x,
            "y": y,
            "mode": "lines",
            "line": line,
            "hoverinfo": "skip",
            "showlegend": False,
            **anchor,
        }
        for (x, y), line, anchor in (
            (_segments(grid_x, grid_y), {"color": GRID_COLOR, "width": 1}, {}),
            (_segments(edge_x, edge_y), {"color": "#888", "width": 1, "dash": "dot"}, {"xaxis": "x2"}),
        )
    ]
    for ok, color, name in ((True, GREY, "correct"), (False, RED, "incorrect")):
        fx, fy = _segments(*fills[ok])
        cx, cy = _segments(*curves[ok])
        traces += [
            {
                "type": "scatter",
                "x": fx,
                "y": fy,
                "mode": "lines",
                "fill": "toself",
                "line": {"color": color, "width": 1},
                "hoverinfo": "skip",
                "showlegend": False,
            },
            {
                "type": "scatter",
                "x": cx,
                "y": cy,
                "mode": "lines",
                "line": {"color": color, "width": 1},
                "hoverinfo": "skip",
                "showlegend": False,
                "xaxis": "x2",
            },
        ]
    for ok, color, name in ((True, GREY, "correct"), (False, RED, "incorrect")):
        rows = np.concatenate(points[ok])
        cells = np.concatenate([np.full(len(p), i) for i, p in enumerate(points[ok])])
        angle, length = column["angle"][rows], column["length"][rows]
        traces.append(
            {
                "type": kind,
                "x": cells % ncols + _scale(angle, *a_range, SCATTER_U),
                "y": nrows - 1 - cells // ncols + _scale(length, *l_range, SCATTER_V),
                "mode": "markers",
                "customdata": point_data(column["sample_id"][rows], angle, length),
                "name": name,
                "showlegend": len(rows) > 0,
                "marker": {
                    "color": color,
                    "size": 5,
                    "opacity": 0.75,
                    "line": {"width": np.where(chosen[rows], 1.5, 0.0), "color": "black"},
                },
                "hovertemplate": "sample %{customdata[0]}<br>angle %{customdata[1]:.1f}°<br>"
                "length %{customdata[2]:.2f}<extra>" + name + "</extra>",
            }
        )
    if not len(a_text):  # no finite angle: the points have no place in the scatters
        notes.append(
            {
                "text": "no finite angles in this evaluation set (zero feature vectors?): no points to place",
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.5,
                "showarrow": False,
                "bgcolor": "white",
                "font": {"size": 12, "color": "#666"},
            }
        )
    bottom = len(classes) - (nrows - 1) * ncols  # the cells of the bottom row: the angle axis labels those
    below = {"xref": "x", "yref": "y", "y": 1, "yanchor": "top", "showarrow": False, "font": {"size": 12}}
    notes += [  # the columns whose bottom cell is empty: their angle values under the cell above
        below | {"text": text, "x": c + x}
        for c in range(bottom, ncols)
        for x, text in zip(_scale(a_ticks, *a_range, SCATTER_U).tolist(), a_text)
    ]
    plain = {"showgrid": False, "zeroline": False, "ticks": ""}
    layout = {
        "xaxis": {
            **plain,
            "range": [-0.02, ncols - 0.03],
            "tickvals": np.concatenate([c + _scale(a_ticks, *a_range, SCATTER_U) for c in range(bottom)]),
            "ticktext": a_text * bottom,
            "title": {"text": "angle (°)", "font": {"size": 10}},
        },
        "xaxis2": {  # the margin densities' values, above the top row's corners
            **plain,
            "overlaying": "x",
            "matches": "x",
            "side": "top",
            "tickvals": np.concatenate([c + _scale(m_ticks, *m_range, SIDE_U) for c in range(ncols)]),
            "ticktext": m_text * ncols,
            "tickfont": {"size": 8},
            "title": {"text": f"corner: {margin_label}", "font": {"size": 8}, "standoff": 0},
        },
        "yaxis": {
            **plain,
            "range": [0, nrows],
            "tickvals": np.concatenate([r + _scale(l_ticks, *l_range, SCATTER_V) for r in range(nrows)]),
            "ticktext": l_text * nrows,
            "title": {"text": "length", "font": {"size": 10}},
        },
        "annotations": notes,
        "font": FONT,
        "height": 340 * nrows + 64,
        "margin": {"l": 40, "r": 10, "t": 64, "b": 70},  # above: the toolbar and the margin's axis
        "dragmode": "select",
        "legend": {"orientation": "h", "y": -0.06, "yanchor": "top", "x": 0},
        "uirevision": "local",
    }
    return figure({"data": traces, "layout": layout})


def point_data(sample_id: np.ndarray, angle: np.ndarray, length: np.ndarray) -> list[tuple]:
    """Each point's (sample id, angle, length), for its hover and a selection: plain values, as dcc.Graph
    copies a selected WebGL point's customdata from the figure it holds and cannot index a typed array.
    Tuples, which `figure()` passes through as they are (it would visit each list) and JSON writes as arrays."""
    return list(
        zip(
            sample_ids(sample_id),
            np.round(np.asarray(angle, np.float64), 2).tolist(),
            np.round(np.asarray(length, np.float64), 3).tolist(),
        )
    )


def trajectories(ref: pd.DataFrame, cmp: pd.DataFrame) -> pd.DataFrame:
    """Reference and compared rows of the same samples side by side, with category and deltas."""
    _, mine, theirs = np.intersect1d(  # a merge on (sample_id, label), by position: views call it per change
        ref["sample_id"].to_numpy(), cmp["sample_id"].to_numpy(), assume_unique=True, return_indices=True
    )
    same = ref["label"].to_numpy()[mine] == cmp["label"].to_numpy()[theirs]
    order = np.argsort(mine[same], kind="stable")  # in the reference's order, as a merge keeps it
    mine, theirs = mine[same][order], theirs[same][order]
    keys = {k: ref[k].to_numpy()[mine] for k in ("sample_id", "label")}
    rest = [c for c in ref.columns if c not in keys]
    m = pd.DataFrame(
        keys
        | {f"{c}_ref": ref[c].to_numpy()[mine] for c in rest}
        | {f"{c}_cmp": cmp[c].to_numpy()[theirs] for c in cmp.columns if c not in keys}
    )
    rw, cw = m["correct_ref"], m["correct_cmp"]
    m["category"] = np.select(
        [~rw & ~cw, rw & ~cw, ~rw & cw], ["both_wrong", "right_wrong", "wrong_right"], "both_right"
    )
    for k in ("angle", "length", "margin"):
        m[f"d_{k}"] = m[f"{k}_cmp"] - m[f"{k}_ref"]
    return m


def comparison(moves: pd.DataFrame, class_name: str, selected: set[int] | None = None) -> Figure:
    """Five panels (all, both wrong, right→wrong, wrong→right, both right) of one class."""
    if moves.empty:
        return empty_figure(
            "no samples of this class in both evaluation sets (or none within the metric-difference range)"
        )
    cells, axes = grid(1, len(CATEGORIES), hspace=0.015)
    line_colors = {k: c for k, _, c in CATEGORIES}
    kind = scatter_type(4 * min(len(moves), MAX_POINTS))  # every sample twice in "all" and twice in its category
    traces, notes, updates = [], [], {}
    y_lo = float(np.nanmin(moves[["length_ref", "length_cmp"]].to_numpy()))
    y_hi = float(np.nanmax(moves[["length_ref", "length_cmp"]].to_numpy()))
    column = {k: moves[k].to_numpy() for k in ("sample_id", "angle_ref", "angle_cmp", "length_ref", "length_cmp")}
    category = moves["category"].to_numpy()
    chosen = np.isin(column["sample_id"], list(selected)) if selected else np.zeros(len(moves), bool)
    for i, ((key, label, color), cell) in enumerate(zip(CATEGORIES, cells[0])):
        rows = np.arange(len(moves)) if key == "all" else np.flatnonzero(category == key)  # positions, as above
        total = len(rows)
        rows = rows[_sample(total, MAX_POINTS)]
        groups = [(c, rows[category[rows] == c]) for c in np.unique(category[rows])] if key == "all" else [(key, rows)]
        for cat, part in groups:
            ends = [column["angle_ref"][part], column["angle_cmp"][part], np.full(len(part), np.nan)]
            xs = np.column_stack(ends).ravel()
            ys = np.column_stack([column["length_ref"][part], column["length_cmp"][part], ends[2]]).ravel()
            traces.append(
                {
                    "type": kind,
                    "x": xs,
                    "y": ys,
                    "mode": "lines",
                    "line": {"color": line_colors[cat], "width": 1},
                    "opacity": 0.45,
                    "hoverinfo": "skip",
                    "showlegend": False,
                    **cell.anchors,
                }
            )
        for which, mcolor, name in (("ref", GREY, "reference"), ("cmp", YELLOW, "compared")):
            traces.append(
                {
                    "type": kind,
                    "x": column[f"angle_{which}"][rows],
                    "y": column[f"length_{which}"][rows],
                    "mode": "markers",
                    "customdata": sample_ids(column["sample_id"][rows]),
                    "name": name,
                    "legendgroup": name,
                    "showlegend": i == 0,
                    "marker": {
                        "color": mcolor,
                        "size": 5,
                        "line": {"width": np.where(chosen[rows], 1.5, 0.0), "color": "black"},
                    },
                    "hovertemplate": "sample %{customdata}<br>angle %{x:.1f}°<br>length %{y:.2f}<extra>"
                    + name
                    + "</extra>",
                    **cell.anchors,
                }
            )
        count = total
        notes.append(cell_title(cell, f"{label} ({count})"))
        updates[cell.xkey] = {"title": {"text": "angle (°)", "font": {"size": 10}}}
        updates[cell.ykey] = {
            "range": [y_lo * 0.95, y_hi * 1.03],
            "showticklabels": i == 0,
            "title": {"text": "length" if i == 0 else None, "font": {"size": 10}},
        }
        if count == 0:  # an empty panel says so instead of drawing blank axes
            updates[cell.xkey] = {"visible": False}
            updates[cell.ykey] = {**updates[cell.ykey], "showgrid": False, "showticklabels": i == 0, "zeroline": False}
            notes.append(cell_note(cell, "none", 0.5, 0.5, {"size": 13, "color": "#888"}))
        if total > len(rows):
            notes.append(cell_note(cell, f"{len(rows)} of {total} shown", 1, 1, {"size": 9}))
    layout = {
        **merge_axes(axes, updates),
        "annotations": notes,
        "font": FONT,
        "height": 360,
        "margin": {"l": 50, "r": 10, "t": 50, "b": 40},
        "dragmode": "select",
        "uirevision": "local-cmp",
        "title": {
            "text": f"<b>{class_name}</b>: reference (grey) → compared (yellow)",
            "font": {"size": 13},
            "x": 0.01,
        },
        "legend": {"orientation": "h", "y": 1.17, "x": 0.45},
    }
    return figure({"data": traces, "layout": layout})
