"""The evaluation table (R1): methods × evaluation sets, each cell a bar chart of accuracy over sparsity.

Drawn as one figure on a shared canvas: column k spans x ∈ [k, k+1), and within each column
the method variants are stacked by their best accuracy in that column (best on top), so a
method's vertical position is its rank there. The dense model is a dashed line in every cell
of its architecture; the selected model's bars are outlined; with a sample subset, bars show
the subset's accuracy and a green (better) or red (worse) segment marks the difference from
the whole test set.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from app.figures.style import FONT, GREEN, RED, method_color
from app.figures.sweetspot import variant_label

CELL_PAD = 0.08
BAR_SPACE = 0.84
HEIGHT_FRACTION = 0.72


ABBREVIATIONS = {"magnitude": "mag", "random": "rand", "taylor": "taylor", "filter": "filter", "channel": "chan", "mpt": "mpt"}


def short_label(row: pd.Series) -> str:
    """A cell's compact label: method, iterative steps, fine-tuning epochs."""
    parts = [ABBREVIATIONS.get(str(row["method"]), str(row["method"])[:8])]
    if row.get("schedule") == "iterative":
        parts.append(f"it{int(row['steps'])}")
    if int(row.get("finetune_epochs") or 0):
        parts.append(f"ft{int(row['finetune_epochs'])}")
    return " ".join(parts)


def table_frame(evals: pd.DataFrame, severity: int | str) -> pd.DataFrame:
    """One accuracy per (model, column): clean, and each corruption at `severity` (or their mean)."""
    if evals.empty:
        return evals.assign(variant=pd.Series(dtype=str), row=pd.Series(dtype=str), column=pd.Series(dtype=str))
    ev = evals.assign(variant=evals.apply(variant_label, axis=1), row=lambda d: d["arch"].astype(str) + " · " + d.apply(variant_label, axis=1))
    clean = ev[ev["corruption"] == "clean"]
    corrupted = ev[ev["corruption"] != "clean"]
    if severity == "mean":
        keys = ["model_id", "corruption"]
        agg = corrupted.groupby(keys, as_index=False).agg({"accuracy": "mean", **{c: "first" for c in ev.columns if c not in keys + ["accuracy"]}})
        agg["severity"] = 0
        corrupted = agg
    else:
        corrupted = corrupted[corrupted["severity"] == int(severity)]
    out = pd.concat([clean, corrupted], ignore_index=True)
    out["column"] = out["corruption"]
    return out


def evaluation_table(
    frame: pd.DataFrame,
    selected: str | None = None,
    compared: str | None = None,
    subset: pd.DataFrame | None = None,
    subset_size: int | None = None,
) -> go.Figure:
    """`frame` from `table_frame`; `subset` (model_id, column, accuracy) switches to subset mode."""
    fig = go.Figure()
    if frame.empty:
        fig.add_annotation(text="no evaluations in this run", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
        fig.update_layout(xaxis={"visible": False}, yaxis={"visible": False}, template="plotly_white", height=200)
        return fig
    columns = [c for c in ["clean"] + sorted(set(frame["column"]) - {"clean"}, key=lambda c: list(dict.fromkeys(frame["column"])).index(c))]
    pruned = frame[frame["method"] != "dense"]
    dense = frame[frame["method"] == "dense"]
    rows = sorted(pruned["row"].unique()) or sorted(frame["row"].unique())
    n_rows = len(rows)
    if subset is not None and not subset.empty:
        sub = subset.rename(columns={"accuracy": "subset_accuracy"})
        pruned = pruned.merge(sub, on=["model_id", "column"], how="left")
        dense = dense.merge(sub, on=["model_id", "column"], how="left")
    else:
        subset = None

    bars: dict[str, list] = {k: [] for k in ("x", "base", "y", "width", "color", "line", "custom", "hover")}
    diff: dict[str, list] = {k: [] for k in ("x", "base", "y", "width", "color")}
    labels: dict[str, list] = {"x": [], "y": [], "text": []}
    dense_lines: dict[str, list] = {"x": [], "y": []}
    for k, col in enumerate(columns):
        cells = pruned[pruned["column"] == col]
        ranking = cells.groupby("row")["accuracy"].max().sort_values(ascending=False)
        for rank, row in enumerate(ranking.index):
            g = cells[cells["row"] == row].sort_values(["sparsity", "model_id"])
            y0 = n_rows - 1 - rank + 0.06
            width = BAR_SPACE / max(len(g), 1)
            for i, r in enumerate(g.itertuples()):
                shown = r.subset_accuracy if subset is not None and pd.notna(getattr(r, "subset_accuracy", None)) else r.accuracy
                bars["x"].append(k + CELL_PAD + width * (i + 0.5))
                bars["base"].append(y0)
                bars["y"].append(HEIGHT_FRACTION * shown)
                bars["width"].append(width * 0.85)
                bars["color"].append(method_color(r.method))
                bars["line"].append(2.5 if r.model_id == selected else 1.5 if r.model_id == compared else 0)
                bars["custom"].append([r.model_id, r.corruption, int(r.severity)])
                text = f"{r.model_id}<br>{col}: accuracy {r.accuracy:.3f}<br>sparsity {r.sparsity:.2f}"
                if subset is not None and pd.notna(getattr(r, "subset_accuracy", None)):
                    d = r.subset_accuracy - r.accuracy
                    text += f"<br>selection ({subset_size}): {r.subset_accuracy:.3f} ({d:+.3f})"
                    diff["x"].append(k + CELL_PAD + width * (i + 0.5))
                    diff["base"].append(y0 + HEIGHT_FRACTION * min(r.accuracy, r.subset_accuracy))
                    diff["y"].append(HEIGHT_FRACTION * abs(d))
                    diff["width"].append(width * 0.85)
                    diff["color"].append(GREEN if d >= 0 else RED)
                bars["hover"].append(text)
            labels["x"].append(k + CELL_PAD)
            labels["y"].append(y0 + 0.86)
            labels["text"].append(short_label(g.iloc[0]))
            arch = g["arch"].iloc[0]
            for d in dense[(dense["column"] == col) & (dense["arch"] == arch)].itertuples():
                dense_lines["x"] += [k + CELL_PAD, k + CELL_PAD + BAR_SPACE, None]
                yd = y0 + HEIGHT_FRACTION * d.accuracy
                dense_lines["y"] += [yd, yd, None]

    fig.add_trace(go.Bar(
        x=bars["x"], y=bars["y"], base=bars["base"], width=bars["width"], customdata=bars["custom"],
        marker={"color": bars["color"], "line": {"width": bars["line"], "color": "black"}},
        hovertext=bars["hover"], hoverinfo="text", name="accuracy", showlegend=False,
    ))
    if diff["x"]:
        fig.add_trace(go.Bar(x=diff["x"], y=diff["y"], base=diff["base"], width=diff["width"], marker={"color": diff["color"]}, hoverinfo="skip", showlegend=False, name="difference"))
    fig.add_trace(go.Scatter(x=dense_lines["x"], y=dense_lines["y"], mode="lines", line={"color": "#222", "dash": "dash", "width": 1}, hoverinfo="skip", showlegend=False, name="dense"))
    fig.add_trace(go.Scatter(x=labels["x"], y=labels["y"], mode="text", text=labels["text"], textposition="middle right", textfont={"size": 8, "color": "#444"}, hoverinfo="skip", showlegend=False))
    for m in sorted(set(pruned["method"])):
        fig.add_trace(go.Bar(x=[None], y=[None], marker={"color": method_color(m)}, name=m, showlegend=True))
    shapes = [
        {"type": "rect", "x0": k + 0.02, "x1": k + 0.98, "y0": -0.02, "y1": n_rows - 0.02, "line": {"color": "#e5e5e5", "width": 1}, "fillcolor": "rgba(0,0,0,0)", "layer": "below"}
        for k in range(len(columns))
    ]
    fig.update_layout(
        font=FONT, template="plotly_white", barmode="overlay", bargap=0, shapes=shapes, clickmode="event",
        margin={"l": 10, "r": 10, "t": 70, "b": 10}, height=max(260, 46 * n_rows + 110),
        xaxis={"range": [0, len(columns)], "tickvals": [k + 0.5 for k in range(len(columns))], "ticktext": [c.replace("_", " ") for c in columns], "side": "top", "tickangle": -35, "showgrid": False, "zeroline": False, "fixedrange": True},
        yaxis={"range": [-0.05, n_rows], "visible": False, "fixedrange": True},
        legend={"orientation": "h", "y": -0.02, "yanchor": "top", "x": 0, "font": {"size": 10}},
        hoverlabel={"font": {"size": 11}},
    )
    return fig
