"""View: global geometry (R2, R3). A box over the axes brushes them and sets the shared selection."""

from __future__ import annotations

import html as html_text

import dash
import pandas as pd
from dash import Input, Output, State, dcc, html

from app import ids
from app.figures import Figure
from app.figures.local import empty_figure
from app.figures.parallel import (
    axis_positions,
    axis_ranges,
    box_constraints,
    brushed,
    density_strips,
    dimensions,
    line_frame,
    parallel_coordinates,
    rank_axes,
    shown_lines,
)
from app.reader import StoreError, StoreReader
from app.snapshot import Context, Part, fig, section
from app.state import Combo, make_selection, selected_ids
from app.views.common import card, graph
from pipeline import store

HELP = (
    "Samples of the class in focus as lines through one axis per class (the angle to that class "
    "direction: small means the sample looks like that class), then length and margin. Grey "
    "correct, red wrong; with a compared combination, each sample's reference line grey and its "
    "compared line yellow; blue selected. Drag a box over one or more axes to brush them (shift "
    "adds a box; double-click clears): a sample is brushed when one of its lines passes every "
    "box. The strips on top compare the reference (grey) and compared (yellow) distributions."
)


def layout() -> html.Div:
    return card(
        "Global geometry",
        HELP,
        [
            html.Div(id=ids.GLOBAL_NOTE, className="note"),
            graph(ids.GLOBAL_DENSITY, 96, {"displayModeBar": False, "staticPlot": True}),
            dcc.Loading(graph(ids.GLOBAL_GRAPH, 380, {"displayModeBar": False}), type="dot"),
            dcc.Store(id=ids.GLOBAL_BOXES, data=[]),
        ],
    )


def _frames(
    reader: StoreReader, run: str, ref: Combo, cmp: Combo | None, focus: int
) -> tuple[list[str], pd.DataFrame, pd.DataFrame | None, list[tuple[str, str]]]:
    """Class names, the class in focus on the reference (and compared) model, and the axes."""
    names = reader.meta(run)["class_names"]
    a = reader.samples(run, ref.model_id, ref.corruption, ref.severity, with_angles=True, labels=[focus])
    b = (
        reader.samples(run, cmp.model_id, cmp.corruption, cmp.severity, with_angles=True, labels=[focus])
        if cmp
        else None
    )
    dims = dimensions(rank_axes(a, b, focus, len(names)), names)
    return names, a, b, dims


def _note(names: list[str], focus: int, dims: list, compared: bool, nearest_k: int | None = None) -> str:
    """Which class and axes are shown; with `nearest_k`, that corrupted sets hold the angles of their
    k nearest classes only (docs/store.md), so a line leaves a gap on the other axes."""
    name = names[focus]
    note = name if name.lower().startswith("class") else f"class {name}"  # never "class class 10"
    if len(dims) - 2 < len(names):
        note += f": {len(dims) - 2} of {len(names)} class axes (most confused{', most changed' if compared else ''})"
    if nearest_k is not None:
        note += f"; corrupted sets keep each sample's {nearest_k} nearest classes: a gap is an angle beyond them"
    return note


def figures(
    reader: StoreReader,
    run: str,
    ref: Combo,
    cmp: Combo | None,
    focus: int,
    selection: set[int] | None,
    boxes=None,
    margin_label: str = "margin",
) -> tuple[Figure, Figure, str]:
    """The parallel coordinates, their density strips and the note above them; the title names
    the last axis after the run's margin definition (`margin_label`)."""
    names, a, b, dims = _frames(reader, run, ref, cmp, focus)
    title = (
        f"{ref.model_id} · {ref.evalset}"
        + (f" vs {cmp.model_id} · {cmp.evalset}" if cmp else "")
        + f" · last axis: {margin_label}"
    )
    return (
        parallel_coordinates(a, dims, title, selection, boxes, compared=b),
        density_strips(a, b, dims),
        _note(names, focus, dims, cmp is not None, _nearest_k(reader.meta(run), ref, cmp)),
    )


def _nearest_k(meta: dict, ref: Combo, cmp: Combo | None) -> int | None:
    """k when a shown set is corrupted and the run keeps only the k nearest classes of its rows."""
    stored = store.angles_stored(meta)
    corrupted = any(c is not None and c.corruption != store.CLEAN for c in (ref, cmp))
    return stored["k"] if corrupted and stored["full"] == store.ANGLES_CLEAN else None


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
            return empty_figure("pick a reference combination"), empty_figure("", height=96), "", []
        own = dash.ctx.triggered_id == ids.SELECTION and (selection or {}).get("source") == "global"
        try:
            margin_label = store.margin_label(reader.meta(run))
            lines, strips, note = figures(
                reader, run, ref, cmp, int(focus), selected_ids(selection), boxes if own else None, margin_label
            )
        except StoreError as exc:
            return empty_figure(f"{exc.problem} — {exc.fix}"), empty_figure("", height=96), "", []
        # A brush from here keeps the user's boxes; the strips and the note are sent all the same: the
        # renderer drops a call still running when this callback is called again, and it may have been
        # the one to change them.
        return lines, strips, note, dash.no_update if own else []

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
            _, a, b, dims = _frames(reader, run, ref, cmp, int(focus))
        except StoreError:
            return dash.no_update, dash.no_update
        lines = line_frame(a, b)
        constraints = box_constraints(boxes, axis_ranges(lines, dims))
        if not constraints:  # boxes between the axes brush nothing
            return dash.no_update, boxes
        return make_selection(brushed(lines, dims, constraints), "global"), boxes


def snapshot(ctx: Context) -> Part:
    """The parallel coordinates of the class in focus, with every drawn line's position on each
    axis (0 bottom, 1 top) and its trace, for the linking script to brush and repaint."""
    lines_fig, strips, note = figures(
        ctx.reader, ctx.run, ctx.ref, ctx.cmp, ctx.focus, None, margin_label=ctx.margin_label
    )
    _, a, b, dims = _frames(ctx.reader, ctx.run, ctx.ref, ctx.cmp, ctx.focus)
    lines = line_frame(a, b)
    shown = shown_lines(lines)
    data = {
        "ids": shown["sample_id"].astype(int).tolist(),
        "group": shown["group"].astype(int).tolist(),
        "positions": axis_positions(shown, dims, axis_ranges(lines, dims)),
    }
    body = f'<div class="note">{html_text.escape(note)}</div>{fig("density")}{fig("global")}'
    return Part(section("Global geometry", HELP, body, "left"), {"global": lines_fig, "density": strips}, data=data)
