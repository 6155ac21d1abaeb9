"""Local geometry (R2, R3): per class, angle to the class direction (x) against feature length (y).

Single model: small multiples of the classes, each with marginal densities of angle (top)
and length (right) and the margin density (top right); correct grey, incorrect red; the
class accuracy in the title. Comparison: the class in focus, reference (grey) and compared
(yellow) positions joined by each sample's trajectory, split into all / both wrong /
right→wrong / wrong→right / both right.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.figures.density import kde
from app.figures.style import FONT, GREEN, GREY, PURPLE, RED, YELLOW

CATEGORIES = (
    ("all", "all samples", "#555555"),
    ("both_wrong", "both wrong", PURPLE),
    ("right_wrong", "right → wrong", RED),
    ("wrong_right", "wrong → right", GREEN),
    ("both_right", "both right", GREY),
)
MAX_POINTS = 4000


def _sampled(df: pd.DataFrame, limit: int) -> tuple[pd.DataFrame, int]:
    """At most `limit` rows (a fixed random sample), and the number there were."""
    return (df if len(df) <= limit else df.sample(limit, random_state=0)), len(df)


def empty_figure(message: str, height: int = 260) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font={"size": 14, "color": "#666"})
    fig.update_layout(template="plotly_white", height=height, xaxis={"visible": False}, yaxis={"visible": False}, margin={"l": 10, "r": 10, "t": 10, "b": 10})
    return fig


def small_multiples(df: pd.DataFrame, class_names: list[str], classes: list[int], selected: set[int] | None = None, per_row: int = 5) -> go.Figure:
    """`df`: one evaluation set's rows (sample_id, label, correct, angle, length, margin)."""
    classes = [c for c in classes if (df["label"] == c).any()]
    if not classes:
        return empty_figure("no samples of these classes in this evaluation set")
    ncols = min(per_row, len(classes))
    nrows = math.ceil(len(classes) / ncols)
    fig = make_subplots(
        rows=2 * nrows, cols=2 * ncols, row_heights=[0.22, 0.78] * nrows, column_widths=[0.78, 0.22] * ncols,
        horizontal_spacing=0.012, vertical_spacing=0.05,
        subplot_titles=_grid_titles(df, classes, class_names, nrows, ncols),
    )
    a_lo, a_hi = float(np.nanmin(df["angle"])), float(np.nanmax(df["angle"]))
    l_lo, l_hi = float(np.nanmin(df["length"])), float(np.nanmax(df["length"]))
    traces, axes, notes = [], {}, []
    a_range, l_range = [a_lo - 2, a_hi + 2], [l_lo * 0.95, l_hi * 1.03]
    for i, c in enumerate(classes):
        r, col = 2 * (i // ncols) + 1, 2 * (i % ncols) + 1
        top, main, side, corner = (_axes(fig, rr, cc) for rr, cc in ((r, col), (r + 1, col), (r + 1, col + 1), (r, col + 1)))
        g, total = _sampled(df[df["label"] == c], MAX_POINTS)
        for ok, color, name in ((True, GREY, "correct"), (False, RED, "incorrect")):
            part = g[g["correct"] == ok]
            sel = part["sample_id"].isin(selected).to_numpy() if selected else np.zeros(len(part), bool)
            traces.append(go.Scattergl(
                x=part["angle"], y=part["length"], mode="markers", customdata=part["sample_id"], name=name, legendgroup=name, showlegend=i == 0,
                marker={"color": color, "size": 5, "opacity": 0.75, "line": {"width": np.where(sel, 1.5, 0), "color": "black"}},
                hovertemplate="sample %{customdata}<br>angle %{x:.1f}°<br>length %{y:.2f}<extra>" + name + "</extra>", **main,
            ))
            x, d = kde(part["angle"].to_numpy(), a_lo, a_hi)
            traces.append(go.Scatter(x=x, y=d, mode="lines", line={"color": color, "width": 1}, fill="tozeroy", hoverinfo="skip", showlegend=False, **top))
            y, d = kde(part["length"].to_numpy(), l_lo, l_hi)
            traces.append(go.Scatter(x=d, y=y, mode="lines", line={"color": color, "width": 1}, fill="tozerox", hoverinfo="skip", showlegend=False, **side))
            x, d = kde(part["margin"].to_numpy())
            traces.append(go.Scatter(x=x, y=d, mode="lines", line={"color": color, "width": 1}, hoverinfo="skip", showlegend=False, **corner))
        plain = {"showgrid": False, "showticklabels": False}
        axes[_layout_key(main["xaxis"])] = {"range": a_range, "title": {"text": "angle (°)" if i // ncols == nrows - 1 else None, "font": {"size": 10}}}
        axes[_layout_key(main["yaxis"])] = {"range": l_range, "title": {"text": "length" if i % ncols == 0 else None, "font": {"size": 10}}}
        axes[_layout_key(top["xaxis"])] = {"range": a_range, **plain}
        axes[_layout_key(top["yaxis"])] = plain
        axes[_layout_key(side["xaxis"])] = plain
        axes[_layout_key(side["yaxis"])] = {"range": l_range, **plain}
        axes[_layout_key(corner["xaxis"])] = {"showgrid": False, "tickfont": {"size": 8}}
        axes[_layout_key(corner["yaxis"])] = plain
        if total > len(g):
            notes.append({"text": f"{len(g)} of {total} shown", "showarrow": False, "xref": f"{main['xaxis']} domain", "yref": f"{main['yaxis']} domain", "x": 1, "y": 1, "font": {"size": 9}})
    fig.add_traces(traces)
    fig.update_layout(**axes)
    for note in notes:
        fig.add_annotation(**note)
    fig.update_annotations(font_size=11)
    fig.update_layout(
        font=FONT, template="plotly_white", height=340 * nrows + 30, margin={"l": 40, "r": 10, "t": 30, "b": 70}, dragmode="select",
        legend={"orientation": "h", "y": -0.06, "yanchor": "top", "x": 0}, uirevision="local",
    )
    return fig


def _axes(fig: go.Figure, row: int, col: int) -> dict[str, str]:
    """The trace anchors ({"xaxis": "x7", "yaxis": "y7"}) of a make_subplots cell."""
    sub = fig.get_subplot(row, col)
    return {"xaxis": sub.xaxis.plotly_name.replace("axis", ""), "yaxis": sub.yaxis.plotly_name.replace("axis", "")}


def _layout_key(anchor: str) -> str:
    """Layout key of an axis anchor: "x7" -> "xaxis7"."""
    return anchor[0] + "axis" + anchor[1:]


def _grid_titles(df: pd.DataFrame, classes: list[int], class_names: list[str], nrows: int, ncols: int) -> list[str]:
    """Row-major titles of the (2·nrows) × (2·ncols) grid: each class's title above its top density."""
    titles = []
    for r in range(nrows):
        row = classes[r * ncols : (r + 1) * ncols]
        titles += [t for c in row for t in (_title(df, c, class_names), "")] + [""] * (2 * (ncols - len(row)))
        titles += [""] * (2 * ncols)
    return titles


def _title(df: pd.DataFrame, c: int, class_names: list[str]) -> str:
    g = df[df["label"] == c]
    return f"<b>{class_names[c]}</b> · {g['correct'].mean():.1%} ({len(g)})"


def trajectories(ref: pd.DataFrame, cmp: pd.DataFrame) -> pd.DataFrame:
    """Reference and compared rows of the same samples side by side, with category and deltas."""
    m = ref.merge(cmp, on=["sample_id", "label"], suffixes=("_ref", "_cmp"))
    rw, cw = m["correct_ref"], m["correct_cmp"]
    m["category"] = np.select([~rw & ~cw, rw & ~cw, ~rw & cw], ["both_wrong", "right_wrong", "wrong_right"], "both_right")
    for k in ("angle", "length", "margin"):
        m[f"d_{k}"] = m[f"{k}_cmp"] - m[f"{k}_ref"]
    return m


def comparison(moves: pd.DataFrame, class_name: str, selected: set[int] | None = None) -> go.Figure:
    """Five panels (all, both wrong, right→wrong, wrong→right, both right) of one class."""
    if moves.empty:
        return empty_figure("no samples of this class in both evaluation sets (or none within the metric-difference range)")
    fig = make_subplots(rows=1, cols=len(CATEGORIES), shared_yaxes=True, horizontal_spacing=0.015,
                        subplot_titles=[f"{title} ({len(moves) if key == 'all' else int((moves['category'] == key).sum())})" for key, title, _ in CATEGORIES])
    for i, (key, title, color) in enumerate(CATEGORIES, start=1):
        g = moves if key == "all" else moves[moves["category"] == key]
        g, total = _sampled(g, MAX_POINTS)
        xs = np.column_stack([g["angle_ref"], g["angle_cmp"], np.full(len(g), np.nan)]).ravel()
        ys = np.column_stack([g["length_ref"], g["length_cmp"], np.full(len(g), np.nan)]).ravel()
        if key == "all":
            line_colors = {k: c for k, _, c in CATEGORIES}
            for cat, part in g.groupby("category"):
                px = np.column_stack([part["angle_ref"], part["angle_cmp"], np.full(len(part), np.nan)]).ravel()
                py = np.column_stack([part["length_ref"], part["length_cmp"], np.full(len(part), np.nan)]).ravel()
                fig.add_trace(go.Scattergl(x=px, y=py, mode="lines", line={"color": line_colors[cat], "width": 1}, opacity=0.45, hoverinfo="skip", showlegend=False), row=1, col=i)
        else:
            fig.add_trace(go.Scattergl(x=xs, y=ys, mode="lines", line={"color": color, "width": 1}, opacity=0.5, hoverinfo="skip", showlegend=False), row=1, col=i)
        sel = g["sample_id"].isin(selected) if selected else np.zeros(len(g), bool)
        for which, mcolor, name in (("ref", GREY, "reference"), ("cmp", YELLOW, "compared")):
            fig.add_trace(go.Scattergl(
                x=g[f"angle_{which}"], y=g[f"length_{which}"], mode="markers", customdata=g["sample_id"], name=name, legendgroup=name, showlegend=i == 1,
                marker={"color": mcolor, "size": 5, "line": {"width": np.where(sel, 1.5, 0), "color": "black"}},
                hovertemplate="sample %{customdata}<br>angle %{x:.1f}°<br>length %{y:.2f}<extra>" + name + "</extra>",
            ), row=1, col=i)
        fig.update_xaxes(title_text="angle (°)", title_font={"size": 10}, row=1, col=i)
        if total > len(g):
            fig.add_annotation(text=f"{len(g)} of {total} shown", showarrow=False, xref="x domain", yref="y domain", x=1, y=1, font={"size": 9}, row=1, col=i)
    fig.update_yaxes(title_text="length", title_font={"size": 10}, row=1, col=1)
    fig.update_annotations(font_size=11)
    fig.update_layout(font=FONT, template="plotly_white", height=360, margin={"l": 50, "r": 10, "t": 50, "b": 40}, dragmode="select",
                      title={"text": f"<b>{class_name}</b>: reference (grey) → compared (yellow)", "font": {"size": 13}, "x": 0.01}, legend={"orientation": "h", "y": 1.17, "x": 0.45}, uirevision="local-cmp")
    return fig
