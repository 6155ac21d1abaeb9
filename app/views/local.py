"""View: local geometry (R2, R3). Box or lasso select points to set the shared selection."""

from __future__ import annotations

import math

import dash
import numpy as np
import pandas as pd
from dash import Input, Output, State, dcc, html

from app import ids
from app.figures import Figure
from app.figures.local import (
    MAX_CLASSES,
    RANK_CHANGE,
    RANK_CONFUSION,
    RANKINGS,
    class_ranking,
    classes_to_show,
    comparison,
    empty_figure,
    small_multiples,
    trajectories,
)
from app.reader import StoreError, StoreReader
from app.snapshot import Context, Part, fig, section
from app.state import Combo, make_selection, selected_ids
from app.views.common import card, drawn_key, graph, labelled, radios
from pipeline import store

HELP = (
    "Per class: angle between each sample's feature and the class direction (x; small is good) "
    "against feature length (y; long is confident). Grey correct, red wrong; top: angle density, "
    "right: length density, corner: margin density (right of the dotted 0 is correct; its values on the "
    "top axis). Every class on the same axes. With a compared "
    "combination: each sample's move from reference (grey) to compared (yellow)."
)


def class_options(names: list[str], ranking: pd.DataFrame | None = None) -> list[dict]:
    """The class dropdown's options: by class index, or in the pre-selection's order with each
    class's accuracy on the reference and, with a comparison, its flips (samples right → wrong or
    wrong → right) in its label."""
    if ranking is None:
        return [{"label": f"{i}: {n}", "value": i} for i, n in enumerate(names)]
    options = []
    columns = (ranking[c].tolist() for c in ("class", "accuracy", "flips"))  # Python numbers: 2.4x faster
    for c, acc, flips in zip(*columns):  # 1000 classes: a list drawn again on every new reference or comparison
        flipped = "" if math.isnan(flips) else f" ({int(flips)} flips)"
        right = "no samples" if math.isnan(acc) else f"{acc:.0%} right"
        options.append({"label": f"{c}: {names[c]}{flipped} · {right}", "value": int(c)})
    return options


def ranking(reader: StoreReader, run: str, ref: Combo, cmp: Combo | None, by: str) -> pd.DataFrame:
    """The pre-selection's ranking of the run's classes (app.figures.local.class_ranking), memoised
    per run version: the class list, the small multiples and the export ask for it on each change."""

    def rank() -> pd.DataFrame:
        a = reader.samples(run, ref.model_id, ref.corruption, ref.severity)
        b = reader.samples(run, cmp.model_id, cmp.corruption, cmp.severity) if cmp else None
        return class_ranking(a, b, by, reader.meta(run)["num_classes"])

    return reader.derived(run, f"class_ranking {ref.key} {cmp.key if cmp else None} {by}", rank)


def flips_per_class(reader: StoreReader, run: str, ref: Combo, cmp: Combo) -> pd.Series:
    """Per class, the samples whose correctness differs between reference and compared."""
    return ranking(reader, run, ref, cmp, RANK_CHANGE).set_index("class")["flips"].sort_index()


def default_class(flips: pd.Series) -> int:
    """The class with the most flips (the lowest such class on a tie, class 0 without any)."""
    return int(flips.idxmax()) if len(flips) and flips.max() > 0 else 0


def single(reader: StoreReader, run: str, ref: Combo, focus: int, chosen: set[int] | None) -> Figure:
    """The reference's small multiples (the class in focus, then the first classes of the
    pre-selection ranked by confusion), the margin densities' axis named after the run's margin definition."""
    meta = reader.meta(run)
    names = meta["class_names"]
    df = reader.samples(run, ref.model_id, ref.corruption, ref.severity)
    ranked = ranking(reader, run, ref, None, RANK_CONFUSION)["class"].tolist() if len(names) > MAX_CLASSES else []
    return small_multiples(
        df, names, classes_to_show(ranked, focus, len(names)), chosen, margin_label=store.margin_label(meta)
    )


def compare(
    reader: StoreReader,
    run: str,
    ref: Combo,
    cmp: Combo,
    focus: int,
    chosen: set[int] | None,
    metric: str = "margin",
    pct: list[float] | None = None,
) -> Figure:
    """The trajectories of the class in focus, only the samples whose |Δ metric| is within the
    percentile range `pct`."""
    names = reader.meta(run)["class_names"]
    a, b = (reader.samples(run, c.model_id, c.corruption, c.severity) for c in (ref, cmp))  # the class list's
    moves = trajectories(a[a["label"] == focus], b[b["label"] == focus])  # frames: no file read of their own
    if len(moves) and pct and list(pct) != [0, 100]:
        delta = moves[f"d_{metric}"].abs()
        lo, hi = np.nanpercentile(delta, pct[0]), np.nanpercentile(delta, pct[1])
        moves = moves[(delta >= lo) & (delta <= hi)]
    return comparison(moves, names[focus], chosen)


def first_classes(reader: StoreReader, run: str, ref: Combo | None) -> list[dict]:
    """The class list as the page opens on `ref` with nothing compared: what `classes` would answer, so
    that the page asks for the local and global geometry and the gallery at once, not after that answer."""
    names = reader.meta(run)["class_names"]
    return class_options(names, ranking(reader, run, ref, None, RANK_CHANGE) if ref else None)


def layout(classes: list[dict] | None = None) -> html.Div:
    """The view; `classes` (first_classes) the class list the page opens with, class 0 in focus."""
    controls = [
        labelled(
            "class",
            "The class in focus (comparison and global geometry show it)",
            dcc.Dropdown(
                id=ids.CLASS_DROPDOWN,
                clearable=False,
                style={"width": "260px"},
                options=classes or [],
                value=0 if classes else None,
            ),
        ),
        labelled(
            "rank classes by",
            "The class list (type to search it) and the small multiples start with the classes to look at: "
            "by confusion, the lowest accuracy on the reference; by change, the most flips between the compared "
            "combinations (confusion without a comparison)",
            radios(ids.CLASS_RANK, RANKINGS, RANK_CHANGE),
        ),
        labelled(
            "metric difference",
            "Show only samples whose angle, length or margin moved by an amount "
            "in the chosen percentile range (comparison mode)",
            dcc.Dropdown(
                id=ids.LOCAL_DIFF_METRIC,
                options=["angle", "length", "margin"],
                value="margin",
                clearable=False,
                style={"width": "110px"},
            ),
        ),
        labelled(
            "percentiles",
            "Percentile range of |Δ metric| between reference and compared",
            html.Div(
                dcc.RangeSlider(
                    id=ids.LOCAL_DIFF_RANGE,
                    min=0,
                    max=100,
                    step=5,
                    value=[0, 100],
                    marks={0: "0", 50: "50", 100: "100"},
                    tooltip={"placement": "bottom"},
                ),
                className="percentile-slider",
            ),
        ),
    ]
    return card(
        "Local geometry",
        HELP,
        [
            dcc.Loading(
                graph(ids.LOCAL_GRAPH, 710, {"displaylogo": False, "modeBarButtonsToRemove": ["toImage"]}), type="dot"
            ),
            dcc.Store(id=ids.LOCAL_DRAWN),
        ],
        controls,
    )


def register(app: dash.Dash, reader: StoreReader) -> None:
    @app.callback(
        Output(ids.CLASS_DROPDOWN, "options"),
        Output(ids.CLASS_DROPDOWN, "value"),
        Input(ids.RUN, "data"),
        Input(ids.REFERENCE_DROPDOWN, "value"),
        Input(ids.COMPARED_DROPDOWN, "value"),
        Input(ids.CLASS_RANK, "value"),
        State(ids.CLASS_DROPDOWN, "value"),
        prevent_initial_call=True,  # the page opens with the run's list (first_classes, app.main.first_page)
    )
    def classes(run, ref_key, cmp_key, by, focus):
        """The classes in the pre-selection's order. A new comparison or ranking focuses the first
        class (by change: the most flips); otherwise the class stays."""
        if not run:
            return [], None
        ref, cmp = Combo.parse(ref_key), Combo.parse(cmp_key)
        try:
            names = reader.meta(run)["class_names"]
            keep = focus if isinstance(focus, int) and 0 <= focus < len(names) else 0
            if ref is None:
                return class_options(names), keep
            ranked = ranking(reader, run, ref, cmp, by or RANK_CHANGE)
        except StoreError:
            return [], None
        refocus = cmp is not None or dash.ctx.triggered_id == ids.CLASS_RANK
        return class_options(names, ranked), int(ranked["class"].iloc[0]) if refocus else keep

    @app.callback(
        Output(ids.LOCAL_GRAPH, "figure"),
        Output(ids.LOCAL_DRAWN, "data"),
        Input(ids.REFERENCE_DROPDOWN, "value"),
        Input(ids.COMPARED_DROPDOWN, "value"),
        Input(ids.CLASS_DROPDOWN, "value"),
        Input(ids.SELECTION, "data"),
        Input(ids.LOCAL_DIFF_METRIC, "value"),
        Input(ids.LOCAL_DIFF_RANGE, "value"),
        State(ids.RUN, "data"),
        State(ids.LOCAL_DRAWN, "data"),
    )
    def draw(ref_key, cmp_key, focus, selection, metric, pct, run, drawn):
        """The figure, and the key of what it shows; a selection brushed here leaves a figure of the
        same key as it is (the user's box stays on screen). The key, not the input that fired, says
        so: the renderer drops a call still running when this callback is called again."""
        key = drawn_key(run, ref_key, cmp_key, focus, metric, pct)
        if (selection or {}).get("source") == "local" and drawn == key:
            return dash.no_update, dash.no_update
        ref, cmp = Combo.parse(ref_key), Combo.parse(cmp_key)
        if not run or ref is None:
            return empty_figure("pick a reference combination in the evaluation table"), None
        try:
            chosen, focus = selected_ids(selection), int(focus or 0)
            if cmp is None:
                return single(reader, run, ref, focus, chosen), key
            return compare(reader, run, ref, cmp, focus, chosen, metric, pct), key
        except StoreError as exc:
            return empty_figure(f"{exc.problem} — {exc.fix}"), None

    @app.callback(
        Output(ids.SELECTION, "data", allow_duplicate=True),
        Input(ids.LOCAL_GRAPH, "selectedData"),
        prevent_initial_call=True,
    )
    def select(selected):
        if not selected or not selected.get("points"):
            return None if selected is not None else dash.no_update
        return make_selection(points_to_ids(selected["points"]), "local")


def points_to_ids(points: list[dict]) -> list[int]:
    """Sample ids of selected points: their customdata, the id or a list that starts with it (the
    builders send it as plain lists, so that dcc.Graph gives it for WebGL points too); points of
    traces without it are left out."""
    found = []
    for p in points:
        data = p.get("customdata")
        if isinstance(data, (list, tuple)) and data:
            data = data[0]
        if isinstance(data, int) and not isinstance(data, bool):
            found.append(data)
    return found


def snapshot(ctx: Context) -> Part:
    """The reference's small multiples and, with a compared model, the trajectories of the class in focus."""
    figures = {"local": single(ctx.reader, ctx.run, ctx.ref, ctx.focus, None)}
    body = section("Local geometry of the reference", HELP, fig("local"))
    if ctx.cmp is not None:
        figures["trajectories"] = compare(ctx.reader, ctx.run, ctx.ref, ctx.cmp, ctx.focus, None)
        body += section("Trajectories: reference → compared", HELP, fig("trajectories"), ident="card-trajectories")
    return Part(body, figures, linked=tuple(figures))
