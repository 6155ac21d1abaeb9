"""View: global geometry (R2, R3). A box over the axes brushes them and sets the shared selection."""

from __future__ import annotations

import dash
from dash import Input, Output, State, dcc, html

from app import ids
from app.figures.local import empty_figure
from app.figures.parallel import (
    axis_ranges,
    box_constraints,
    brushed,
    density_strips,
    dimensions,
    parallel_coordinates,
    rank_axes,
)
from app.reader import StoreError, StoreReader
from app.state import Combo, make_selection, selected_ids
from app.views.common import card, graph
from pipeline import store

HELP = (
    "Samples of the class in focus as lines through one axis per class (the angle to that class "
    "direction: small means the sample looks like that class), then length and margin. Grey "
    "correct, red wrong, blue selected. Drag a box over one or more axes to brush them (shift "
    "adds a box; double-click clears); the strips on top compare the reference (grey) and "
    "compared (yellow) distributions."
)


def layout() -> html.Div:
    return card(
        "Global geometry",
        HELP,
        [
            html.Div(id=ids.GLOBAL_NOTE, className="note"),
            graph(ids.GLOBAL_DENSITY, 90, {"displayModeBar": False, "staticPlot": True}),
            dcc.Loading(graph(ids.GLOBAL_GRAPH, 380, {"displayModeBar": False}), type="dot"),
            dcc.Store(id=ids.GLOBAL_BOXES, data=[]),
        ],
    )


def _frames(reader: StoreReader, run: str, ref: Combo, cmp: Combo | None, focus: int):
    names = reader.meta(run)["class_names"]
    a = reader.samples(run, ref.model_id, ref.corruption, ref.severity, with_angles=True, labels=[focus])
    b = (
        reader.samples(run, cmp.model_id, cmp.corruption, cmp.severity, with_angles=True, labels=[focus])
        if cmp
        else None
    )
    dims = dimensions(rank_axes(a, b, focus, len(names)), names)
    return names, a, b, dims


def _boxes(relayout: object) -> list[dict] | None:
    """The box brushes of a relayout event (None when the event is about something else)."""
    if not isinstance(relayout, dict) or not isinstance(relayout.get("selections"), list):
        return None
    return [b for b in relayout["selections"] if isinstance(b, dict) and b.get("type") == "rect"]


def register(app: dash.Dash, reader: StoreReader) -> None:
    @app.callback(
        Output(ids.GLOBAL_GRAPH, "figure"),
        Output(ids.GLOBAL_DENSITY, "figure"),
        Output(ids.GLOBAL_NOTE, "children"),
        Output(ids.GLOBAL_BOXES, "data"),
        Input(ids.REFERENCE_DROPDOWN, "value"),
        Input(ids.COMPARED_DROPDOWN, "value"),
        Input(ids.CLASS_DROPDOWN, "value"),
        Input(ids.SELECTION, "data"),
        State(ids.RUN, "data"),
        State(ids.GLOBAL_BOXES, "data"),
    )
    def draw(ref_key, cmp_key, focus, selection, run, boxes):
        ref, cmp = Combo.parse(ref_key), Combo.parse(cmp_key)
        if not run or ref is None or focus is None:
            return empty_figure("pick a reference combination"), empty_figure("", height=90), "", []
        try:
            names, a, b, dims = _frames(reader, run, ref, cmp, int(focus))
            margin_label = store.margin_label(reader.meta(run))
        except StoreError as exc:
            return empty_figure(f"{exc.problem} — {exc.fix}"), empty_figure("", height=90), "", []
        title = f"{ref.model_id} · {ref.evalset}"
        if dash.ctx.triggered_id == ids.SELECTION and (selection or {}).get("source") == "global":
            return (
                parallel_coordinates(a, dims, title, selected_ids(selection), boxes),
                dash.no_update,
                dash.no_update,
                dash.no_update,
            )
        note = (
            f"class {names[int(focus)]}: {len(dims) - 2} of {len(names)} class axes "
            f"(most confused{', most changed' if cmp else ''})"
            if len(dims) - 2 < len(names)
            else f"class {names[int(focus)]}"
        ) + f" · last axis: {margin_label}"
        return parallel_coordinates(a, dims, title, selected_ids(selection)), density_strips(a, b, dims), note, []

    @app.callback(
        Output(ids.SELECTION, "data", allow_duplicate=True),
        Output(ids.GLOBAL_BOXES, "data", allow_duplicate=True),
        Input(ids.GLOBAL_GRAPH, "relayoutData"),
        State(ids.REFERENCE_DROPDOWN, "value"),
        State(ids.COMPARED_DROPDOWN, "value"),
        State(ids.CLASS_DROPDOWN, "value"),
        State(ids.RUN, "data"),
        prevent_initial_call=True,
    )
    def brush(relayout, ref_key, cmp_key, focus, run):
        boxes = _boxes(relayout)
        ref, cmp = Combo.parse(ref_key), Combo.parse(cmp_key)
        if boxes is None or ref is None or focus is None:
            return dash.no_update, dash.no_update
        if not boxes:
            return None, []
        try:
            _, a, _, dims = _frames(reader, run, ref, cmp, int(focus))
        except StoreError:
            return dash.no_update, dash.no_update
        constraints = box_constraints(boxes, axis_ranges(a, dims))
        if not constraints:  # boxes between the axes brush nothing
            return dash.no_update, boxes
        return make_selection(brushed(a, dims, constraints), "global"), boxes
