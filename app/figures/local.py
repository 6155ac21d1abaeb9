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


def small_multiples(
    df: pd.DataFrame,
    class_names: list[str],
    classes: list[int],
    selected: set[int] | None = None,
    per_row: int = 5,
    margin_label: str = "margin",
) -> Figure:
    """`df`: one evaluation set's rows (sample_id, label, correct, angle, length, margin);
    `margin_label` names the run's margin definition under each margin density."""
    classes = [c for c in classes if (df["label"] == c).any()]
    if not classes:
        return empty_figure("no samples of these classes in this evaluation set")
    ncols = min(per_row, len(classes))
    nrows = math.ceil(len(classes) / ncols)
    cells, axes = grid(2 * nrows, 2 * ncols, [0.22, 0.78] * nrows, [0.78, 0.22] * ncols, hspace=0.012, vspace=0.05)
    a_lo, a_hi = float(np.nanmin(df["angle"])), float(np.nanmax(df["angle"]))
    l_lo, l_hi = float(np.nanmin(df["length"])), float(np.nanmax(df["length"]))
    a_range, l_range = [a_lo - 2, a_hi + 2], [l_lo * 0.95, l_hi * 1.03]
    traces, updates, notes = [], {}, []
    kind = scatter_type(int(df["label"].isin(classes).sum()))
    plain = {"showgrid": False, "showticklabels": False, "zeroline": False}
    in_legend: set[str] = set()
    label, correct = df["label"].to_numpy(), df["correct"].to_numpy(bool)
    column = {k: df[k].to_numpy() for k in ("sample_id", "angle", "length", "margin")}
    chosen = np.isin(column["sample_id"], list(selected)) if selected else np.zeros(len(df), bool)
    for i, c in enumerate(classes):
        r, col = 2 * (i // ncols), 2 * (i % ncols)
        top, main, side, corner = cells[r][col], cells[r + 1][col], cells[r + 1][col + 1], cells[r][col + 1]
        rows = np.flatnonzero(label == c)  # positions, not pandas masks: this loop runs per class and per set
        total, accuracy = len(rows), correct[rows].mean()
        rows = rows[_sample(total, MAX_POINTS)]
        for ok, color, name in ((True, GREY, "correct"), (False, RED, "incorrect")):
            part = rows[correct[rows] == ok]
            value = {k: v[part] for k, v in column.items()}
            if len(part):
                in_legend.add(name)
            traces.append(
                {
                    "type": kind,
                    "x": value["angle"],
                    "y": value["length"],
                    "mode": "markers",
                    "customdata": sample_ids(value["sample_id"]),
                    "name": name,
                    "legendgroup": name,
                    "showlegend": name not in in_legend and len(part) > 0,
                    "marker": {
                        "color": color,
                        "size": 5,
                        "opacity": 0.75,
                        "line": {"width": np.where(chosen[part], 1.5, 0.0), "color": "black"},
                    },
                    "hovertemplate": "sample %{customdata}<br>angle %{x:.1f}°<br>length %{y:.2f}<extra>"
                    + name
                    + "</extra>",
                    **main.anchors,
                }
            )
            x, d = kde(value["angle"], a_lo, a_hi)
            traces.append(
                {
                    "type": "scatter",
                    "x": x,
                    "y": d,
                    "mode": "lines",
                    "line": {"color": color, "width": 1},
                    "fill": "tozeroy",
                    "hoverinfo": "skip",
                    "showlegend": False,
                    **top.anchors,
                }
            )
            y, d = kde(value["length"], l_lo, l_hi)
            traces.append(
                {
                    "type": "scatter",
                    "x": d,
                    "y": y,
                    "mode": "lines",
                    "line": {"color": color, "width": 1},
                    "fill": "tozerox",
                    "hoverinfo": "skip",
                    "showlegend": False,
                    **side.anchors,
                }
            )
            x, d = kde(value["margin"])
            traces.append(
                {
                    "type": "scatter",
                    "x": x,
                    "y": d,
                    "mode": "lines",
                    "line": {"color": color, "width": 1},
                    "hoverinfo": "skip",
                    "showlegend": False,
                    **corner.anchors,
                }
            )
        updates[main.xkey] = {
            "range": a_range,
            "title": {"text": "angle (°)" if i // ncols == nrows - 1 else None, "font": {"size": 10}},
        }
        updates[main.ykey] = {
            "range": l_range,
            "title": {"text": "length" if i % ncols == 0 else None, "font": {"size": 10}},
        }
        updates[top.xkey] = {"range": a_range, **plain}
        updates[top.ykey] = plain
        updates[side.xkey] = plain
        updates[side.ykey] = {"range": l_range, **plain}
        updates[corner.xkey] = {
            "showgrid": False,
            "tickfont": {"size": 8},
            "title": {"text": margin_label, "font": {"size": 8}, "standoff": 0},
        }
        updates[corner.ykey] = plain
        notes.append(cell_title(top, f"<b>{class_names[c]}</b> · {accuracy:.1%} ({total})"))
        if total > len(rows):
            notes.append(cell_note(main, f"{len(rows)} of {total} shown", 1, 1, {"size": 9}))
    layout = {
        **merge_axes(axes, updates),
        "annotations": notes,
        "font": FONT,
        "height": 340 * nrows + 48,
        "margin": {"l": 40, "r": 10, "t": 48, "b": 70},  # the plot toolbar sits above the top row's titles
        "dragmode": "select",
        "legend": {"orientation": "h", "y": -0.06, "yanchor": "top", "x": 0},
        "uirevision": "local",
    }
    return figure({"data": traces, "layout": layout})


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
