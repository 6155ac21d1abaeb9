"""View: local geometry (R2, R3). Box or lasso select points to set the shared selection."""

from __future__ import annotations

import dash
import numpy as np
from dash import Input, Output, State, dcc, html

from app import ids
from app.figures import decode_array
from app.figures.local import classes_to_show, comparison, empty_figure, small_multiples, trajectories
from app.reader import StoreError, StoreReader
from app.state import Combo, make_selection, selected_ids
from app.views.common import card, graph, labelled
from pipeline import store

HELP = (
    "Per class: angle between each sample's feature and the class direction (x; small is good) "
    "against feature length (y; long is confident). Grey correct, red wrong; top: angle density, "
    "right: length density, corner: margin density (right of 0 is correct). With a compared "
    "combination: each sample's move from reference (grey) to compared (yellow)."
)


def class_options(names: list[str]) -> list[dict]:
    return [{"label": f"{i}: {n}", "value": i} for i, n in enumerate(names)]


def layout(class_names: list[str] | None = None) -> html.Div:
    controls = [
        labelled(
            "class",
            "The class in focus (comparison and global geometry show it)",
            dcc.Dropdown(
                id=ids.CLASS_DROPDOWN,
                clearable=False,
                style={"width": "140px"},
                options=class_options(class_names or []),
                value=0 if class_names else None,
            ),
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
        html.Div(
            dcc.RangeSlider(
                id=ids.LOCAL_DIFF_RANGE,
                min=0,
                max=100,
                step=5,
                value=[0, 100],
                marks={0: "0", 50: "50", 100: "100 %ile"},
                tooltip={"placement": "bottom"},
            ),
            style={"width": "220px"},
            title="Percentile range of |Δ metric| between reference and compared",
        ),
    ]
    return card(
        "Local geometry",
        HELP,
        [
            dcc.Loading(
                graph(ids.LOCAL_GRAPH, 710, {"displaylogo": False, "modeBarButtonsToRemove": ["toImage"]}), type="dot"
            )
        ],
        controls,
    )


def register(app: dash.Dash, reader: StoreReader) -> None:
    @app.callback(
        Output(ids.CLASS_DROPDOWN, "options"),
        Output(ids.CLASS_DROPDOWN, "value"),
        Input(ids.RUN, "data"),
        prevent_initial_call=True,
    )
    def classes(run):
        if not run:
            return [], None
        try:
            names = reader.meta(run)["class_names"]
        except StoreError:
            return [], None
        return class_options(names), 0

    @app.callback(
        Output(ids.LOCAL_GRAPH, "figure"),
        Input(ids.REFERENCE_DROPDOWN, "value"),
        Input(ids.COMPARED_DROPDOWN, "value"),
        Input(ids.CLASS_DROPDOWN, "value"),
        Input(ids.SELECTION, "data"),
        Input(ids.LOCAL_DIFF_METRIC, "value"),
        Input(ids.LOCAL_DIFF_RANGE, "value"),
        State(ids.RUN, "data"),
    )
    def draw(ref_key, cmp_key, focus, selection, metric, pct, run):
        if dash.ctx.triggered_id == ids.SELECTION and (selection or {}).get("source") == "local":
            return dash.no_update  # the selection came from here: keep the user's box on screen
        ref, cmp = Combo.parse(ref_key), Combo.parse(cmp_key)
        if not run or ref is None:
            return empty_figure("pick a reference combination in the evaluation table")
        try:
            meta = reader.meta(run)
            names = meta["class_names"]
            chosen = selected_ids(selection)
            focus = int(focus or 0)
            if cmp is None:
                df = reader.samples(run, ref.model_id, ref.corruption, ref.severity)
                shown = classes_to_show(df, focus, len(names))
                return small_multiples(df, names, shown, chosen, margin_label=store.margin_label(meta))
            a = reader.samples(run, ref.model_id, ref.corruption, ref.severity, labels=[focus])
            b = reader.samples(run, cmp.model_id, cmp.corruption, cmp.severity, labels=[focus])
            moves = trajectories(a, b)
            if len(moves) and pct and list(pct) != [0, 100]:
                delta = moves[f"d_{metric}"].abs()
                lo, hi = np.nanpercentile(delta, pct[0]), np.nanpercentile(delta, pct[1])
                moves = moves[(delta >= lo) & (delta <= hi)]
            return comparison(moves, names[focus], chosen)
        except StoreError as exc:
            return empty_figure(f"{exc.problem} — {exc.fix}")

    @app.callback(
        Output(ids.SELECTION, "data", allow_duplicate=True),
        Input(ids.LOCAL_GRAPH, "selectedData"),
        State(ids.LOCAL_GRAPH, "figure"),
        prevent_initial_call=True,
    )
    def select(selected, figure):
        if not selected or not selected.get("points"):
            return None if selected is not None else dash.no_update
        return make_selection(points_to_ids(selected["points"], figure), "local")


def points_to_ids(points: list[dict], figure: dict | None) -> list[int]:
    """Sample ids of selected points: their customdata, or (WebGL traces do not send it) the
    customdata of their trace at their index in the figure we drew."""
    data = (figure or {}).get("data", [])
    out = []
    for p in points:
        if "customdata" in p:
            out.append(int(p["customdata"]))
            continue
        curve, index = p.get("curveNumber"), p.get("pointIndex", p.get("pointNumber"))
        if curve is None or index is None or curve >= len(data):
            continue
        custom = decode_array(data[curve].get("customdata"))
        if custom is not None and index < len(custom):
            out.append(int(custom[index]))
    return out
