"""View: global geometry (R2, R3). Brush an axis range to set the shared selection."""

from __future__ import annotations

import re

import dash
from dash import Input, Output, State, dcc, html

from app import ids
from app.figures.local import empty_figure
from app.figures.parallel import brushed, density_strips, dimensions, parallel_coordinates, rank_axes
from app.reader import StoreError, StoreReader
from app.state import Combo, make_selection, selected_ids
from app.views.common import card

HELP = (
    "Samples of the class in focus as lines through one axis per class (the angle to that class "
    "direction: small means the sample looks like that class), then length and margin. Grey "
    "correct, red wrong. Drag along an axis to brush; the strips on top compare the reference "
    "(grey) and compared (yellow) distributions."
)
CONSTRAINTS = "global-constraints"
DIM_RE = re.compile(r"dimensions\[(\d+)\]\.constraintrange")


def layout() -> html.Div:
    return card("Global geometry", HELP, [
        html.Div(id=ids.GLOBAL_NOTE, className="note"),
        dcc.Graph(id=ids.GLOBAL_DENSITY, config={"displayModeBar": False, "staticPlot": True}),
        dcc.Loading(dcc.Graph(id=ids.GLOBAL_GRAPH, config={"displayModeBar": False}), type="dot"),
        dcc.Store(id=CONSTRAINTS, data={}),
    ])


def _frames(reader: StoreReader, run: str, ref: Combo, cmp: Combo | None, focus: int):
    names = reader.meta(run)["class_names"]
    a = reader.samples(run, ref.model_id, ref.corruption, ref.severity, with_angles=True, labels=[focus])
    b = reader.samples(run, cmp.model_id, cmp.corruption, cmp.severity, with_angles=True, labels=[focus]) if cmp else None
    dims = dimensions(rank_axes(a, b, focus, len(names)), names)
    return names, a, b, dims


def register(app: dash.Dash, reader: StoreReader) -> None:
    @app.callback(
        Output(ids.GLOBAL_GRAPH, "figure"), Output(ids.GLOBAL_DENSITY, "figure"), Output(ids.GLOBAL_NOTE, "children"), Output(CONSTRAINTS, "data"),
        Input(ids.REFERENCE_DROPDOWN, "value"), Input(ids.COMPARED_DROPDOWN, "value"), Input(ids.CLASS_DROPDOWN, "value"), Input(ids.SELECTION, "data"),
        State(ids.RUN, "data"),
    )
    def draw(ref_key, cmp_key, focus, selection, run):
        if dash.ctx.triggered_id == ids.SELECTION and (selection or {}).get("source") == "global":
            return dash.no_update, dash.no_update, dash.no_update, dash.no_update  # keep the user's brushes
        ref, cmp = Combo.parse(ref_key), Combo.parse(cmp_key)
        if not run or ref is None or focus is None:
            return empty_figure("pick a reference combination"), empty_figure("", height=90), "", {}
        try:
            names, a, b, dims = _frames(reader, run, ref, cmp, int(focus))
        except StoreError as exc:
            return empty_figure(f"{exc.problem} — {exc.fix}"), empty_figure("", height=90), "", {}
        note = f"class {names[int(focus)]}: {len(dims) - 2} of {len(names)} class axes (most confused{', most changed' if cmp else ''})" if len(dims) - 2 < len(names) else f"class {names[int(focus)]}"
        title = f"{ref.model_id} · {ref.evalset}"
        return parallel_coordinates(a, dims, title, selected_ids(selection)), density_strips(a, b, dims), note, {}

    @app.callback(
        Output(ids.SELECTION, "data", allow_duplicate=True), Output(CONSTRAINTS, "data", allow_duplicate=True),
        Input(ids.GLOBAL_GRAPH, "restyleData"),
        State(CONSTRAINTS, "data"), State(ids.REFERENCE_DROPDOWN, "value"), State(ids.COMPARED_DROPDOWN, "value"), State(ids.CLASS_DROPDOWN, "value"), State(ids.RUN, "data"),
        prevent_initial_call=True,
    )
    def brush(restyle, constraints, ref_key, cmp_key, focus, run):
        if not restyle or not isinstance(restyle, list) or not isinstance(restyle[0], dict):
            return dash.no_update, dash.no_update
        constraints = dict(constraints or {})
        for key, value in restyle[0].items():
            m = DIM_RE.fullmatch(key)
            if m:
                rng = value[0] if isinstance(value, list) and value and isinstance(value[0], list) and len(value) == 1 and isinstance(value[0][0], list) else value
                constraints[m.group(1)] = rng if rng else None
        constraints = {k: v for k, v in constraints.items() if v}
        ref, cmp = Combo.parse(ref_key), Combo.parse(cmp_key)
        if ref is None or focus is None:
            return dash.no_update, constraints
        if not constraints:
            return None, constraints
        try:
            _, a, _, dims = _frames(reader, run, ref, cmp, int(focus))
        except StoreError:
            return dash.no_update, constraints
        return make_selection(brushed(a, dims, constraints), "global"), constraints
