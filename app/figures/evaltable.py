"""The evaluation table (R1): methods × evaluation sets, each cell a bar chart of accuracy over sparsity.

Drawn as one figure on a shared canvas: column k spans x ∈ [k, k+1), and within each column
the method variants are stacked by their best accuracy in that column (best on top), so a
method's vertical position is its rank there. The dense model is a dashed line in every cell
of its architecture; the selected model's bars are outlined; with a sample subset, bars show
the subset's accuracy and a green (better) or red (worse) segment marks the difference from
the whole test set.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

from app.figures import Figure, figure
from app.figures.style import BLUE, FONT, RED
from app.figures.sweetspot import variant_labels
from pipeline.store import main_models
from pipeline.store.methods import facts

FADED = 0.25  # opacity of the bars outside a brushed group of models
CELL_PAD = 0.08
BAR_SPACE = 0.84
# a row is one unit high: sparsity labels at the bottom, bars (their height the accuracy), the row's label on top
SPARSITY_Y = 0.1
BAR_BOTTOM = 0.2
HEIGHT_FRACTION = 0.62
LABEL_Y = 0.9
ROW_PX = 62
FULL_LABEL_CHARS = 1100  # full method names when a column is about this many characters (at 8 px) over the columns


def short_labels(df: pd.DataFrame) -> pd.Series:
    """Cells' compact labels: method (its short label), iterative steps, fine-tuning epochs (vectorised)."""
    method = df["method"].astype(str).map(lambda m: facts(m).short)
    iterative = df["schedule"].eq("iterative")
    ft = df["finetune_epochs"].fillna(0).astype(int)
    return (
        method
        + (" it" + df["steps"].fillna(0).astype(int).astype(str)).where(iterative, "")
        + (" ft" + ft.astype(str)).where(ft.gt(0), "")
    )


def table_frame(evals: pd.DataFrame, severity: int | str) -> pd.DataFrame:
    """One accuracy per (model, column): clean, and each corruption at `severity` (or their mean);
    the run's main models only (store.main_models: no single-layer models, no other seeds)."""
    evals = evals[main_models(evals)]
    if evals.empty:
        return evals.assign(row=pd.Series(dtype=str), column=pd.Series(dtype=str))
    ev = evals.assign(row=evals["arch"].astype(str) + " · " + variant_labels(evals))
    clean = ev[ev["corruption"] == "clean"]
    corrupted = ev[ev["corruption"] != "clean"]
    if severity == "mean":
        keys = ["model_id", "corruption"]
        agg = corrupted.groupby(keys, as_index=False, sort=False).agg(
            {"accuracy": "mean", **{c: "first" for c in ev.columns if c not in keys + ["accuracy"]}}
        )
        agg["severity"] = 0
        corrupted = agg
    else:
        corrupted = corrupted[corrupted["severity"] == int(severity)]
    out = pd.concat([clean, corrupted], ignore_index=True)
    out["column"] = out["corruption"]
    return out


def layout_cells(
    frame: pd.DataFrame, columns: list[str], selected: str | None, compared: str | None
) -> tuple[pd.DataFrame, int]:
    """Every pruned model's bar: position, size and outline, vectorised; and the number of rows."""
    pruned = frame[frame["method"] != "dense"].copy()
    n_rows = max(pruned["row"].nunique(), 1)
    pruned["k"] = pruned["column"].map({c: k for k, c in enumerate(columns)})
    best = pruned.groupby(["column", "row"])["accuracy"].transform("max")
    pruned["best"] = best
    cell_rank = pruned.drop_duplicates(["column", "row"]).assign(
        rank=lambda d: d.groupby("column")["best"].rank(method="first", ascending=False) - 1
    )
    pruned = pruned.merge(cell_rank[["column", "row", "rank"]], on=["column", "row"])
    pruned = pruned.sort_values(["k", "rank", "sparsity", "model_id"], kind="stable", ignore_index=True)
    pruned["i"] = pruned.groupby(["column", "row"]).cumcount()
    slot = BAR_SPACE / pruned.groupby(["column", "row"])["model_id"].transform("size")
    pruned["x"] = pruned["k"] + CELL_PAD + slot * (pruned["i"] + 0.5)
    pruned["width"] = slot * 0.85
    pruned["base"] = n_rows - 1 - pruned["rank"] + BAR_BOTTOM
    pruned["outline"] = np.where(
        pruned["model_id"] == selected, 2.5, np.where(pruned["model_id"] == compared, 1.5, 0.0)
    )
    return pruned, n_rows


def outline_widths(frame: pd.DataFrame, selected: str | None, compared: str | None) -> list[float]:
    """Only the bars' outline widths, in the figure's bar order (for highlight-only updates)."""
    if frame.empty:
        return []
    cells, _ = layout_cells(frame, _columns(frame), selected, compared)
    return cells["outline"].tolist()


def _columns(frame: pd.DataFrame) -> list[str]:
    order = list(dict.fromkeys(frame["column"]))
    return ["clean"] + [c for c in order if c != "clean"] if "clean" in order else order


def evaluation_table(
    frame: pd.DataFrame,
    selected: str | None = None,
    compared: str | None = None,
    subset: pd.DataFrame | None = None,
    subset_size: int | None = None,
    highlighted: Collection[str] | None = None,
) -> Figure:
    """`frame` from `table_frame`; `subset` (model_id, column, accuracy) switches to subset mode;
    with `highlighted` (model ids, a group brushed in the similarity map) the other bars fade."""
    if frame.empty or (frame["method"] != "dense").sum() == 0:
        return figure(
            {
                "data": [],
                "layout": {
                    "annotations": [
                        {
                            "text": "no evaluations of pruned models in this run",
                            "showarrow": False,
                            "x": 0.5,
                            "y": 0.5,
                            "xref": "paper",
                            "yref": "paper",
                        }
                    ],
                    "xaxis": {"visible": False},
                    "yaxis": {"visible": False},
                    "height": 200,
                },
            }
        )
    columns = _columns(frame)
    cells, n_rows = layout_cells(frame, columns, selected, compared)
    acc = cells["accuracy"].to_numpy()
    shown = acc
    hover = (
        cells["model_id"]
        + "<br>"
        + cells["column"]
        + ": accuracy "
        + cells["accuracy"].map("{:.3f}".format)
        + "<br>sparsity "
        + cells["sparsity"].map("{:.2f}".format)
    )
    extra = []
    if subset is not None and not subset.empty:
        sub = cells[["model_id", "column"]].merge(subset, on=["model_id", "column"], how="left")["accuracy"].to_numpy()
        has = ~np.isnan(sub)
        shown = np.where(has, sub, acc)
        diff = np.where(has, sub - acc, 0.0)
        hover = hover + pd.Series(
            np.where(
                has,
                [f"<br>selection ({subset_size}): {v:.3f} ({d:+.3f})" for v, d in zip(np.nan_to_num(sub), diff)],
                "",
            ),
            index=cells.index,
        )
        d = cells[has]
        extra.append(
            {
                "type": "bar",
                "x": d["x"].to_numpy(),
                "y": HEIGHT_FRACTION * np.abs(diff[has]),
                "base": (d["base"] + HEIGHT_FRACTION * np.minimum(acc[has], sub[has])).to_numpy(),
                "width": d["width"].to_numpy(),
                "marker": {"color": np.where(diff[has] >= 0, BLUE, RED)},
                "hoverinfo": "skip",
                "showlegend": False,
                "name": "difference",
            }
        )
    traces = [
        {  # trace 0: the accuracy bars, the trace highlight patches address
            "type": "bar",
            "x": cells["x"].to_numpy(),
            "y": HEIGHT_FRACTION * shown,
            "base": cells["base"].to_numpy(),
            "width": cells["width"].to_numpy(),
            "customdata": np.column_stack([cells["model_id"], cells["corruption"], cells["severity"].astype(int)]),
            "marker": {
                "color": cells["method"].map(lambda m: facts(m).color).to_numpy(),
                "opacity": np.ones(len(cells))
                if highlighted is None
                else np.where(cells["model_id"].isin(list(highlighted)), 1.0, FADED),
                "line": {"width": cells["outline"].to_numpy(), "color": "black"},
            },
            "hovertext": hover.to_numpy(),
            "hoverinfo": "text",
            "text": (shown * 100).round().astype(int).astype(str),
            "textposition": "auto",  # inside the bar, above a bar too short to hold it
            "insidetextanchor": "end",
            "textangle": 0,
            "textfont": {"size": 8},
            "name": "accuracy",
            "showlegend": False,
        },
        *extra,
    ]
    first = cells.drop_duplicates(["column", "row"])
    full = first["row"].str.split(" · ", n=1).str[-1]
    roomy = full.str.len().max() * len(columns) <= FULL_LABEL_CHARS / 8
    traces.append(
        {
            "type": "scatter",
            "x": cells["x"].to_numpy(),
            "y": (cells["base"] - BAR_BOTTOM + SPARSITY_Y).to_numpy(),
            "mode": "text",
            "text": (cells["sparsity"] * 100).round().astype(int).astype(str).to_numpy(),
            "textposition": "middle center",
            "textfont": {"size": 8, "color": "#555"},
            "hoverinfo": "skip",
            "showlegend": False,
            "name": "sparsity labels",
        }
    )
    traces.append(
        {
            "type": "scatter",
            "x": (first["k"] + CELL_PAD).to_numpy(),
            "y": (first["base"] - BAR_BOTTOM + LABEL_Y).to_numpy(),
            "mode": "text",
            "text": (full if roomy else short_labels(first)).to_numpy(),
            "hovertext": first["row"].to_numpy(),
            "hoverinfo": "text",
            "name": "row labels",
            "textposition": "middle right",
            "textfont": {"size": 9, "color": "#333"},
            "showlegend": False,
        }
    )
    dense = frame[frame["method"] == "dense"][["arch", "column", "accuracy"]].rename(columns={"accuracy": "dense_acc"})
    lines = first.merge(dense, on=["arch", "column"])
    if not lines.empty:
        y = (lines["base"] + HEIGHT_FRACTION * lines["dense_acc"]).to_numpy()
        x0 = (lines["k"] + CELL_PAD).to_numpy()
        traces.append(
            {
                "type": "scatter",
                "x": np.column_stack([x0, x0 + BAR_SPACE, np.full(len(x0), np.nan)]).ravel(),
                "y": np.column_stack([y, y, np.full(len(y), np.nan)]).ravel(),
                "mode": "lines",
                "line": {"color": "#222", "dash": "dash", "width": 1},
                "hoverinfo": "skip",
                "showlegend": False,
                "name": "dense",
            }
        )
    traces += [
        {
            "type": "bar",
            "x": [None],
            "y": [None],
            "marker": {"color": facts(m).color},
            "name": facts(m).label,
            "showlegend": True,
        }
        for m in sorted(set(cells["method"]))
    ]
    shapes = [
        {
            "type": "rect",
            "x0": k + 0.02,
            "x1": k + 0.98,
            "y0": -0.02,
            "y1": n_rows - 0.02,
            "line": {"color": "#e5e5e5", "width": 1},
            "fillcolor": "rgba(0,0,0,0)",
            "layer": "below",
        }
        for k in range(len(columns))
    ]
    return figure(
        {
            "data": traces,
            "layout": {
                "font": FONT,
                "barmode": "overlay",
                "bargap": 0,
                "shapes": shapes,
                "clickmode": "event",
                "margin": {"l": 10, "r": 10, "t": 70, "b": 48},
                "height": max(260, ROW_PX * n_rows + 150),
                "uniformtext": {"mode": "hide", "minsize": 7},  # accuracy values only on bars wide enough
                "annotations": [
                    {
                        "text": "bar: accuracy (%, written where it fits) · under it: sparsity (% removed)"
                        " · dashed: dense",
                        "showarrow": False,
                        "xref": "paper",
                        "yref": "paper",
                        "x": 0,
                        "y": 0,
                        "xanchor": "left",
                        "yanchor": "top",
                        "yshift": -26,
                        "font": {"size": 10, "color": "#555"},
                    }
                ],
                "xaxis": {
                    "range": [0, len(columns)],
                    "tickvals": [k + 0.5 for k in range(len(columns))],
                    "ticktext": [c.replace("_", " ") for c in columns],
                    "side": "top",
                    "tickangle": -35,
                    "showgrid": False,
                    "zeroline": False,
                    "fixedrange": True,
                },
                "yaxis": {"range": [-0.05, n_rows], "visible": False, "fixedrange": True},
                "legend": {"orientation": "h", "y": -0.02, "yanchor": "top", "x": 0, "font": {"size": 10}},
                "hoverlabel": {"font": {"size": 11}},
            },
        }
    )
