"""The evaluation table (R1): methods × evaluation sets, each cell the accuracy over sparsity.

Drawn as one figure on a shared canvas: column k spans x ∈ [k, k+1), and within each column
the method variants are stacked by their best accuracy in that column (best on top), so a
method's vertical position is its rank there. A cell is drawn in one of two modes:

- bars: one bar per sparsity, its accuracy written above it and its sparsity under it;
- numbers: one line per sparsity, "sparsity accuracy" over a horizontal bar of that accuracy,
  for tables whose bars would be too narrow to carry their numbers. A cell's lines are one text
  (plotly spaces lines 1.3 font sizes apart, LINE_PX): at 200 models × 20 columns a text per line
  cost 3.3 s of drawing in the dashboard, plotly measuring each text it places.

"auto" picks bars when every bar keeps room for its labels in a 1280 px window, numbers
otherwise, and row labels break onto two lines where one does not fit: every number stays
readable without a hover. The dense model is a dashed line in every cell of its architecture;
the selected models' bar slots are outlined; with a sample subset, bars show the subset's accuracy
and a blue (better) or red (worse) segment marks the difference from the whole test set.

The bars are a few SVG paths (layout shapes: one a method colour, the difference segments, the
outlines, a veil over the faded models), not a bar trace: at 200 models × 20 columns a bar trace is
4,000 SVG elements, which doubled the table's drawing and slowed every later restyle of the page.
Hover, click and the keyboard use trace 0, an invisible point (mode "none") at each bar's slot.

A brush, a highlight or another reference changes the bars' heights, texts and outlines, not the
table's structure: `table_structure` (memoised by the view) draws what stays, `table_parts` what
those inputs set, for the whole figure (`draw_table`) and for a partial update (a dash Patch) alike.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from app.figures import Figure, encode, figure
from app.figures.style import BLUE, FONT, RED
from app.figures.sweetspot import variant_labels
from pipeline.store import main_models
from pipeline.store.methods import facts

FADED = 0.25  # opacity of the bars outside a brushed group of models
CELL_PAD = 0.08
BAR_SPACE = 0.84
MODES = ("auto", "bars", "numbers")
PLOT_PX = 780  # the table's plot width in a 1280 px window: the width every label must fit in
BAR_PITCH_PX = 18  # room per bar for its labels side by side ("100" in 8 px digits is 16 px)
CHAR_PX = 5.2  # an 8 px character (digits are the widest), rounded up
LINE_PX = 8 * 1.3  # one line of 8 px text: plotly's line spacing within a multi-line text
BAR_PX = 40  # the height of a bar of accuracy 1 in bars mode
TEXT = {"size": 8, "color": "#333"}
LEGEND_ROW_PX = 19  # a row of the legend's items (10 px text)


def scopes(df: pd.DataFrame) -> pd.Series:
    """Each pruned model's scope ("global", "layer"), where the pruned models of `df` were pruned in
    more than one; else "" (a run of one scope keeps its labels short)."""
    scope = df["scope"].astype(object).where(df["scope"].notna() & df["method"].ne("dense"), "")
    return scope.astype(str) if scope[scope.ne("")].nunique() > 1 else pd.Series("", index=df.index)


def _extras(df: pd.DataFrame) -> pd.Series:
    """What distinguishes a method's variants, compactly: scope (where the run has several),
    iterative steps and fine-tuning epochs."""
    iterative = df["schedule"].eq("iterative")
    ft = df["finetune_epochs"].fillna(0).astype(int)
    steps = ("it" + df["steps"].fillna(0).astype(int).astype(str)).where(iterative, "")
    tuned = ("ft" + ft.astype(str)).where(ft.gt(0), "")
    return (scopes(df) + " " + steps + " " + tuned).str.split().str.join(" ")


def row_labels(df: pd.DataFrame, n_columns: int) -> tuple[pd.Series, int]:
    """The rows' labels and their number of lines: the full method name where it fits a column of a
    1280 px window, else its short label; on one line where that fits, else the variant on a second."""
    room = (1 - CELL_PAD - 0.03) * PLOT_PX / max(n_columns, 1)
    method, extras = df["method"].astype(str), _extras(df)
    full, short = method.map(lambda m: facts(m).label), method.map(lambda m: facts(m).short)
    two_lines = 2 if extras.ne("").any() else 1
    candidates = [((full + " " + extras).str.strip(), 1), ((short + " " + extras).str.strip(), 1)]
    candidates += [((full + "<br>" + extras).str.removesuffix("<br>"), two_lines)]
    candidates += [((short + "<br>" + extras).str.removesuffix("<br>"), two_lines)]
    for text, lines in candidates:
        if text.str.split("<br>").map(lambda ls: max(map(len, ls))).max() * CHAR_PX <= room:
            return text, lines
    return candidates[-1]


def cell_mode(n_columns: int, bars_per_cell: int, mode: str = "auto") -> str:
    """ "bars" or "numbers": "auto" draws bars when each keeps room for its labels at 1280 px."""
    if mode in ("bars", "numbers"):
        return mode
    return "bars" if n_columns * bars_per_cell * BAR_PITCH_PX <= BAR_SPACE * PLOT_PX else "numbers"


def table_frame(evals: pd.DataFrame, severity: int | str) -> pd.DataFrame:
    """One accuracy per (model, column): clean, and each corruption at `severity` (or their mean);
    the run's main models only (store.main_models: no single-layer models, no other seeds)."""
    return table_columns(table_rows(evals), severity)


def table_rows(evals: pd.DataFrame) -> pd.DataFrame:
    """The run's main models' evaluations with their table `row` (what does not depend on the
    severity or a selection: the view memoises it per run version)."""
    evals = evals[main_models(evals)]
    if evals.empty:
        return evals.assign(row=pd.Series(dtype=str))
    scope = scopes(evals)  # a layer-wise and a global run of one method are two rows
    return evals.assign(
        row=evals["arch"].astype(str) + " · " + variant_labels(evals) + (", " + scope).where(scope.ne(""), "")
    )


def table_columns(ev: pd.DataFrame, severity: int | str) -> pd.DataFrame:
    """table_frame from table_rows' frame: the clean column and each corruption at `severity`."""
    if ev.empty:
        return ev.assign(column=pd.Series(dtype=str))
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


def layout_cells(frame: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, int]:
    """Every pruned model's bar: position and size, vectorised; and the number of rows."""
    pruned = frame[frame["method"] != "dense"].copy()
    n_rows = max(pruned["row"].nunique(), 1)
    pruned["k"] = pruned["column"].map({c: k for k, c in enumerate(columns)})
    best = pruned.groupby(["column", "row"])["accuracy"].transform("max")
    pruned["best"] = best
    cell_rank = pruned.drop_duplicates(["column", "row"]).assign(
        # a cell without any finite accuracy goes last: every cell has a rank, its bars stay together
        rank=lambda d: d.groupby("column")["best"].rank(method="first", ascending=False, na_option="bottom") - 1
    )
    pruned = pruned.merge(cell_rank[["column", "row", "rank"]], on=["column", "row"])
    pruned = pruned.sort_values(["k", "rank", "sparsity", "model_id"], kind="stable", ignore_index=True)
    pruned["i"] = pruned.groupby(["column", "row"]).cumcount()
    pruned["cell"] = pruned.groupby(["k", "rank"], sort=False).ngroup()  # 0, 1, …: the bars are in cell order
    slot = BAR_SPACE / pruned.groupby(["column", "row"])["model_id"].transform("size")
    pruned["x"] = pruned["k"] + CELL_PAD + slot * (pruned["i"] + 0.5)
    pruned["width"] = slot * 0.85
    pruned["floor"] = n_rows - 1 - pruned["rank"]  # the bottom of the cell's row
    return pruned, n_rows


def _legend_rows(widths: list[int], room: int) -> int:
    """The rows a horizontal legend of items of these widths (px) takes in `room` px: it wraps item by item."""
    rows, used = 1, 0
    for width in widths:
        if used and used + width > room:
            rows, used = rows + 1, 0
        used += width
    return rows


OUTLINES = (("selected", 2.5), ("compared", 1.5))  # the slots' outline widths: the selected model's, the compared one's
NOTHING = "M0,0"  # the path of a shape that draws nothing (no rectangle to draw)


def rects(x0: np.ndarray, x1: np.ndarray, y0: np.ndarray, y1: np.ndarray) -> str:
    """Rectangles as one SVG path in data coordinates (a layout shape's `path`); NOTHING for none.
    Four decimals: under 0.1 px for the table's columns (x) and rows (y). One %-format of all of
    them: twice as fast as a string a rectangle (a brush redraws 4,000 at 100 M rows)."""
    if not len(x0):
        return NOTHING
    return ("M%.4f,%.4fH%.4fV%.4fH%.4fZ" * len(x0)) % tuple(np.column_stack([x0, y0, x1, y1, x0]).ravel().tolist())


def _columns(frame: pd.DataFrame) -> list[str]:
    order = list(dict.fromkeys(frame["column"]))
    return ["clean"] + [c for c in order if c != "clean"] if "clean" in order else order


def _empty() -> Figure:
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


def _pct(values: np.ndarray | pd.Series) -> np.ndarray:
    """Percentages as whole-number texts; "–" where a value is missing (NaN)."""
    values = np.asarray(values, dtype=float)
    finite = np.isfinite(values)
    out = np.full(len(values), "–", dtype=object)
    out[finite] = np.round(values[finite] * 100).astype(int).astype(str)
    return out.astype(str)


def _rgba(color: str, alpha: float) -> str:
    r, g, b = (int(color.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


SUBSET, OUTLINE, OPACITY = "subset", "outline", "opacity"
PARTS = (SUBSET, OUTLINE, OPACITY)  # what a selection, the outlined models and a highlighted group set
# a property's place in a figure, from its root: ("data", 0, "text"), ("layout", "shapes", 3, "path")
Path = tuple[int | str, ...]


@dataclass(frozen=True)
class Table:
    """A table's structure (rows, columns, models, sets, cell mode): its figure without the parts
    (PARTS), and what the parts are placed with. Pure and picklable: the view memoises it per run
    version, severity and mode, so a brush computes and sends only its parts."""

    figure: Figure  # every trace and the layout; trace 0 the bars' hover points, without the parts' properties
    cells: pd.DataFrame  # a row a bar in trace 0's order: model_id, column, accuracy, sparsity, fill, slot x0…y1, cell
    numbers: bool  # cells drawn as numbers, else as bars
    unit: float  # one pixel in row units
    traces: dict[str, int]  # index of each trace in the figure's data, by name
    shapes: dict[str, int]  # index of each part's shape in the layout's shapes: "fill <colour>", "veil", …
    key: str  # the structure's identity: parts update a drawn table of the same key


def table_structure(frame: pd.DataFrame, mode: str = "auto") -> Table | None:
    """The table of `frame` (table_frame) with its cells in `mode` (one of MODES), without its
    parts; None where `frame` has no pruned models."""
    if frame.empty or (frame["method"] != "dense").sum() == 0:
        return None
    columns = _columns(frame)
    cells, n_rows = layout_cells(frame, columns)
    per_cell = int(cells.groupby(["column", "row"]).size().max())
    numbers = cell_mode(len(columns), per_cell, mode) == "numbers"
    first = cells.drop_duplicates(["column", "row"])
    labels, label_lines = row_labels(first, len(columns))
    # a row, in pixels from its bottom: the cell's numbers (bars mode: sparsities, bars, accuracies), then its label
    body_px = 3 + (per_cell * LINE_PX if numbers else LINE_PX + 2 + BAR_PX + LINE_PX + 2)
    row_px = body_px + label_lines * LINE_PX + 4
    unit = 1 / row_px  # one pixel in row units

    hover = (
        cells["model_id"]
        + "<br>"
        + cells["column"]
        + ": accuracy "
        + cells["accuracy"].map(lambda a: "–" if np.isnan(a) else f"{a:.3f}")
        + "<br>sparsity "
        + cells["sparsity"].map("{:.2f}".format)
    )
    colors = cells["method"].map({m: facts(m).color for m in cells["method"].unique()})
    floor = cells["floor"].to_numpy()
    cells["left"] = cells["k"] + CELL_PAD
    cells["line_y"] = floor + (body_px - (cells["i"].to_numpy() + 0.5) * LINE_PX) * unit  # numbers: line i's centre
    cells["bottom"] = floor + (3 + LINE_PX + 2) * unit  # bars: the bars' bottom
    if numbers:  # a bar's slot: a bar of accuracy 1, its line's height
        thick = (LINE_PX - 2) * unit
        cells["x0"], cells["x1"] = cells["left"], cells["left"] + BAR_SPACE
        cells["y0"], cells["y1"] = cells["line_y"] - thick / 2, cells["line_y"] + thick / 2
        cells["fill"] = colors.map({c: _rgba(c, 0.35) for c in colors.unique()})
    else:  # a bar of accuracy 1 and its accuracy's label: an outline frames the bar and its number
        cells["x0"], cells["x1"] = cells["x"] - cells["width"] / 2, cells["x"] + cells["width"] / 2
        cells["y0"], cells["y1"] = cells["bottom"], cells["bottom"] + (BAR_PX + LINE_PX + 2) * unit
        cells["fill"] = colors
    traces = [
        {  # trace 0: a point at each bar's slot for hover, click and the keyboard; the hover's selection line is a part
            "type": "scatter",
            "mode": "none",
            "hoveron": "points",
            "x": ((cells["x0"] + cells["x1"]) / 2).to_numpy(),
            "y": ((cells["y0"] + cells["y1"]) / 2).to_numpy(),
            "customdata": np.column_stack([cells["model_id"], cells["corruption"], cells["severity"].astype(int)]),
            "hovertext": hover.to_numpy(),
            "hoverlabel": {"bgcolor": colors.to_numpy()},
            "name": "accuracy",
            "showlegend": False,
        },
    ]
    text = {"type": "scatter", "mode": "text", "hoverinfo": "skip", "showlegend": False, "textfont": TEXT}
    if numbers:  # a cell's lines "sparsity accuracy" as one text at their centre; the text is a part
        per_line = cells.groupby("cell", sort=False).size().to_numpy()
        centre = first["floor"].to_numpy() + (body_px - per_line * LINE_PX / 2) * unit
        traces.append(text | {"x": (first["k"] + CELL_PAD + 0.02).to_numpy(), "y": centre, "name": "values"})
        traces[-1]["textposition"] = "middle right"
    else:  # the accuracies' text and height are a part
        traces.append(
            text
            | {
                "x": cells["x"].to_numpy(),
                "y": floor + (3 + LINE_PX / 2) * unit,
                "text": _pct(cells["sparsity"]),
                "textposition": "middle center",
                "textfont": TEXT | {"color": "#666"},
                "name": "sparsity labels",
            }
        )
        traces.append(text | {"x": cells["x"].to_numpy(), "textposition": "middle center", "name": "accuracy labels"})
    traces.append(
        text
        | {
            "x": (first["k"] + CELL_PAD).to_numpy(),
            "y": (first["floor"] + (body_px + label_lines * LINE_PX / 2) * unit).to_numpy(),
            "text": labels.to_numpy(),
            "hovertext": first["row"].to_numpy(),
            "hoverinfo": "text",
            "textposition": "middle right",
            "textfont": TEXT | {"color": "#222"},
            "name": "row labels",
        }
    )
    dense = frame[frame["method"] == "dense"][["arch", "column", "accuracy"]].rename(columns={"accuracy": "dense_acc"})
    lines = first.merge(dense, on=["arch", "column"])
    if not lines.empty:
        x0 = (lines["k"] + CELL_PAD).to_numpy()
        gap = np.full(len(x0), np.nan)
        if numbers:  # a vertical line at the dense accuracy through the cell's lines
            x = x0 + BAR_SPACE * lines["dense_acc"].to_numpy()
            y0 = lines["floor"].to_numpy() + (body_px - per_cell * LINE_PX) * unit
            xs, ys = np.column_stack([x, x, gap]), np.column_stack([y0, y0 + per_cell * LINE_PX * unit, gap])
        else:  # a horizontal line at the dense accuracy over the cell's bars
            y = lines["floor"].to_numpy() + (3 + LINE_PX + 2 + BAR_PX * lines["dense_acc"].to_numpy()) * unit
            xs, ys = np.column_stack([x0, x0 + BAR_SPACE, gap]), np.column_stack([y, y, gap])
        traces.append(
            {
                "type": "scatter",
                "x": xs.ravel(),
                "y": ys.ravel(),
                "mode": "lines",
                "line": {"color": "#222", "dash": "dash", "width": 1},
                "hoverinfo": "skip",
                "showlegend": False,
                "name": "dense",
            }
        )
    legend = [facts(m) for m in sorted(set(cells["method"]))]  # one item a method, in the legend's order
    traces += [
        {"type": "bar", "x": [None], "y": [None], "marker": {"color": f.color}, "name": f.label, "showlegend": True}
        for f in legend
    ]
    frames = [
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
    styles = [(f"fill {c}", {"fillcolor": c, "line": {"width": 0}}) for c in dict.fromkeys(cells["fill"])]
    styles += [(f"difference {sign}", {"fillcolor": c, "line": {"width": 0}}) for sign, c in (("+", BLUE), ("-", RED))]
    styles += [("veil", {"fillcolor": f"rgba(255,255,255,{1 - FADED:g})", "line": {"width": 0}})]
    styles += [
        (f"outline {role}", {"fillcolor": "rgba(0,0,0,0)", "line": {"color": "black", "width": w}})
        for role, w in OUTLINES
    ]
    shapes = frames + [
        {"type": "path", "name": name, "path": NOTHING, "layer": "below", **style} for name, style in styles
    ]
    key = (
        "each line: sparsity (% removed), then accuracy (%), over a bar of that accuracy"
        if numbers
        else "bar: accuracy (%, written above it) · under it: sparsity (% removed)"
    )
    # The plot is the rows and 8 px under them, exactly: plotly would otherwise stretch the rows and the texts,
    # placed in pixels, would drift off the bars. The bottom margin holds the legend (rows of methods) and the key.
    legend_rows = _legend_rows([40 + 6 * len(f.label) for f in legend], PLOT_PX)  # an item: its mark, its label
    bottom = 52 + LEGEND_ROW_PX * (legend_rows - 1)
    plot_px = int(np.ceil(row_px * n_rows)) + 8
    height = plot_px + 70 + bottom
    spec = figure(
        {
            "data": traces,
            "layout": {
                "font": FONT,
                "barmode": "overlay",
                "bargap": 0,
                "shapes": shapes,
                "clickmode": "event",
                "margin": {"l": 10, "r": 10, "t": 70, "b": bottom},
                "height": height,
                "annotations": [
                    {
                        "text": key + " · dashed: dense",
                        "showarrow": False,
                        "xref": "paper",
                        "yref": "paper",
                        "x": 0,
                        "y": 0,
                        "xanchor": "left",
                        "yanchor": "top",
                        "yshift": -33 - LEGEND_ROW_PX * (legend_rows - 1),  # under the legend (29 px with one row)
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
                # a row is row_px pixels: the texts, placed in pixels from a point, line up with the bars
                "yaxis": {"range": [n_rows - plot_px / row_px, n_rows], "visible": False, "fixedrange": True},
                # 4 px under the plot (y: a fraction of the plot's height)
                "legend": {
                    "orientation": "h",
                    "y": -4 / plot_px,
                    "yanchor": "top",
                    "x": 0,
                    "font": {"size": 10},
                },
                "hoverlabel": {"font": {"size": 11}},
                "hoverdistance": _reach(cells, len(columns), row_px),
            },
        }
    )
    digest = hashlib.sha256(json.dumps(spec, default=lambda v: v.tolist()).encode()).hexdigest()[:16]
    kept = ["model_id", "column", "accuracy", "sparsity", "fill", "x0", "x1", "y0", "y1", "cell"]
    at = {name: len(frames) + i for i, (name, _) in enumerate(styles)}
    return Table(spec, cells[kept], numbers, unit, {t["name"]: i for i, t in enumerate(traces)}, at, digest)


def _reach(cells: pd.DataFrame, n_columns: int, row_px: float) -> int:
    """How far (px) from a bar's point the mouse still hovers it: the largest slot's half diagonal in a
    wide window (plotly's default, 20 px, misses most of a wide bar). The nearest point is the bar under
    the mouse but at the corners of bars far wider than their row is high."""
    x_px = 1.6 * PLOT_PX / n_columns  # one column at a 1920 px window's plot width
    half = np.hypot((cells["x1"] - cells["x0"]).to_numpy() * x_px, (cells["y1"] - cells["y0"]).to_numpy() * row_px) / 2
    return max(20, int(np.ceil(half.max())))


def table_parts(
    table: Table,
    parts: Collection[str] = PARTS,
    selected: str | None = None,
    compared: str | None = None,
    subset: pd.DataFrame | None = None,
    subset_size: int | None = None,
    highlighted: Collection[str] | None = None,
) -> list[tuple[Path, Any]]:
    """The properties that `parts` (of PARTS) set in `table`'s figure, each as (its path in the
    figure, its value): the selected model's bar slots outlined thick and the compared one's
    thinner (outline); with `highlighted` (a group brushed in the similarity map) a white veil over
    the other bars (opacity); with `subset` (model_id, column, accuracy) the bars at the subset's
    accuracy, a blue (better) or red (worse) segment for the difference from the whole set, and the
    numbers and hover saying so (subset). The one drawing of these: the full figure (draw_table) and
    a partial update of a drawn table with the same key both set them."""
    cells, out = table.cells, []
    if OUTLINE in parts:
        for (role, _), model in zip(OUTLINES, (selected, compared)):
            out.append((_shape(table, f"outline {role}"), _slots(cells, (cells["model_id"] == model).to_numpy())))
    if OPACITY in parts:
        veil = NOTHING if highlighted is None else _slots(cells, ~cells["model_id"].isin(list(highlighted)).to_numpy())
        out.append((_shape(table, "veil"), veil))
    if SUBSET in parts:
        out += _subset_parts(table, subset, subset_size)
    return [(path, encode(value)) for path, value in out]


def _shape(table: Table, name: str) -> Path:
    """The path of the named part shape's SVG path (Table.shapes)."""
    return ("layout", "shapes", table.shapes[name], "path")


def _slots(cells: pd.DataFrame, chosen: np.ndarray) -> str:
    """The slots of the `chosen` bars (a bar of accuracy 1, with its number in bars mode), as one path."""
    return rects(*(cells[k].to_numpy()[chosen] for k in ("x0", "x1", "y0", "y1")))


def _subset_parts(table: Table, subset: pd.DataFrame | None, subset_size: int | None) -> list[tuple[Path, Any]]:
    cells, unit, at = table.cells, table.unit, table.traces
    acc = cells["accuracy"].to_numpy()
    sub = np.full(len(acc), np.nan)
    if subset is not None and not subset.empty:
        sub = cells[["model_id", "column"]].merge(subset, on=["model_id", "column"], how="left")["accuracy"].to_numpy()
    has = ~np.isnan(sub)
    shown = np.where(has, sub, acc)
    diff = np.where(has, sub - acc, 0.0)
    hover = np.full(len(acc), "no value", dtype=object)  # the hover's selection line: its numbers only
    hover[has] = [f"{v:.3f} ({d:+.3f})" for v, d in zip(sub[has].tolist(), diff[has].tolist())]  # floats: 4× faster
    x0, x1, y0, y1 = (cells[k].to_numpy() for k in ("x0", "x1", "y0", "y1"))
    if table.numbers:  # bars grow rightwards from the slot's left; the difference is a thin segment on top
        low = x0 + BAR_SPACE * np.minimum(acc, shown)
        bars, segments = (x0, x0 + BAR_SPACE * shown, y0, y1), (low, low + BAR_SPACE * np.abs(diff), y0, y0 + 3 * unit)
        out = [(("data", at["values"], "text"), cell_texts(cells, shown))]
    else:  # bars grow upwards from the slot's bottom
        low = y0 + BAR_PX * unit * np.minimum(acc, shown)
        bars, segments = (x0, x1, y0, y0 + BAR_PX * unit * shown), (x0, x1, low, low + BAR_PX * unit * np.abs(diff))
        top = np.nan_to_num(np.fmax(acc, shown))  # a bar without an accuracy: its "–" at the bottom
        labels_y = y0 + BAR_PX * unit * top + (LINE_PX / 2 + 1) * unit
        out = [(("data", at["accuracy labels"], "y"), labels_y)]
        out.append((("data", at["accuracy labels"], "text"), _pct(shown)))
    fill, drawn = cells["fill"].to_numpy(), np.isfinite(shown)
    for name in table.shapes:
        if name.startswith("fill "):
            out.append((_shape(table, name), rects(*(v[drawn & (fill == name[5:])] for v in bars))))
    for sign, chosen in (("+", has & (diff > 0)), ("-", has & (diff < 0))):
        out.append((_shape(table, f"difference {sign}"), rects(*(v[chosen] for v in segments))))
    line = f"<br>selection ({subset_size}): %{{text}}" if has.any() else ""  # the hover's, under the bar's own
    out += [
        (("data", 0, "hovertemplate"), "%{hovertext}" + line + "<extra></extra>"),
        (("data", 0, "text"), hover if has.any() else ""),
    ]
    return out


def cell_texts(cells: pd.DataFrame, accuracy: np.ndarray) -> list[str]:
    """Each cell's lines "sparsity accuracy" (%) in one text, its lines in `cells`' order; `accuracy`
    one per row of `cells` (Table.cells, whose rows are in cell order). Plain text: a bold accuracy
    was a second SVG element a line (4,000 more at 200 models × 20 columns)."""
    lines = [f"{s} {a}" for s, a in zip(_pct(cells["sparsity"]).tolist(), _pct(accuracy).tolist())]
    cell = cells["cell"].to_numpy()
    bounds = np.flatnonzero(np.r_[True, cell[1:] != cell[:-1], True]).tolist()
    return ["<br>".join(lines[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def with_parts(fig: Figure, parts: list[tuple[Path, Any]]) -> Figure:
    """`fig` with each part set, copied along each part's path (`fig`, a memoised structure, stays as it is)."""
    out = dict(fig)
    for path, value in parts:
        node = out
        for key in path[:-1]:
            child = node[key]
            node[key] = child = list(child) if isinstance(child, list) else dict(child)
            node = child
        node[path[-1]] = value
    return out


def draw_table(
    table: Table | None,
    selected: str | None = None,
    compared: str | None = None,
    subset: pd.DataFrame | None = None,
    subset_size: int | None = None,
    highlighted: Collection[str] | None = None,
) -> Figure:
    """The whole figure of `table` (table_structure) with every part (table_parts)."""
    if table is None:
        return _empty()
    return with_parts(table.figure, table_parts(table, PARTS, selected, compared, subset, subset_size, highlighted))


def evaluation_table(
    frame: pd.DataFrame,
    selected: str | None = None,
    compared: str | None = None,
    subset: pd.DataFrame | None = None,
    subset_size: int | None = None,
    highlighted: Collection[str] | None = None,
    mode: str = "auto",
) -> Figure:
    """`frame` from `table_frame`; `subset` (model_id, column, accuracy) switches to subset mode;
    with `highlighted` (model ids, a group brushed in the similarity map) the other bars fade;
    `mode` one of MODES."""
    return draw_table(table_structure(frame, mode), selected, compared, subset, subset_size, highlighted)
