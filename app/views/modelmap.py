"""View: the model map (issue 16). Every model of the run as a node, coloured by method and sized by
sparsity, placed by clean accuracy against robustness or by provenance. A click sets the
reference or the compared model as a click in the evaluation table does (the combinations view
owns both: "a click sets"); the reference and compared are ringed as the table outlines them,
and a group brushed in the similarity map stays opaque here and in the table."""

from __future__ import annotations

import dash
from dash import Input, Output, State, dcc, html

from app import ids
from app.figures.local import empty_figure
from app.figures.modelmap import PLACEMENTS, map_frame, model_map
from app.reader import StoreError, StoreReader
from app.snapshot import Context, Part, fig, section
from app.state import Combo, highlighted_models
from app.views.common import MODELS_TAB, card, draw_while_shown, graph, labelled, radios

HELP = (
    "Every model of the run: colour = pruning method, size = sparsity. Placed by clean accuracy against "
    "robustness (mean accuracy over the corrupted sets), or by provenance (a lane per pruning variant, "
    "target sparsity along it, lines to the model each came from). Hover for a model's details; a click "
    "sets the reference or the compared model (see 'a click sets'); thick ring: reference, thin: compared."
)


def layout() -> html.Div:
    placement = labelled(
        "placed by",
        "Clean accuracy vs robustness, or the provenance of the models",
        radios(ids.MODELMAP_PLACEMENT, PLACEMENTS, "robustness"),
    )
    return card(
        "Model map",
        HELP,
        [
            dcc.Loading(graph(ids.MODELMAP_GRAPH, 460, {"displaylogo": False}), type="dot"),
            dcc.Store(id=ids.MODELMAP_DRAWN),
        ],
        [placement],
    )


def draw(reader: StoreReader, run: str, placement: str, ref: Combo | None, cmp: Combo | None, highlight) -> dict:
    """The map of `run` with the reference and compared ringed and a brushed group highlighted."""
    frame = reader.derived(run, "map_frame:hover", lambda: map_frame(reader.models(run), reader.evaluations(run)))
    return model_map(
        frame,
        placement,
        ref.model_id if ref else None,
        cmp.model_id if cmp else None,
        highlighted_models(highlight),
    )


def register(app: dash.Dash, reader: StoreReader) -> None:
    @app.callback(
        Output(ids.MODELMAP_GRAPH, "figure"),
        Output(ids.MODELMAP_DRAWN, "data"),
        Input(ids.RUN, "data"),
        Input(ids.MODELMAP_PLACEMENT, "value"),
        Input(ids.REFERENCE_DROPDOWN, "value"),
        Input(ids.COMPARED_DROPDOWN, "value"),
        Input(ids.MODEL_HIGHLIGHT, "data"),
        MODELS_TAB,
        State(ids.MODELMAP_DRAWN, "data"),
    )
    def update(run, placement, ref_key, cmp_key, highlight, tab, drawn):
        key = draw_while_shown(tab, drawn, reader, run, placement, ref_key, cmp_key, highlight)
        if not run:
            return empty_figure("no run selected"), key
        try:
            return draw(reader, run, placement, Combo.parse(ref_key), Combo.parse(cmp_key), highlight), key
        except StoreError as exc:
            return empty_figure(f"{exc.problem} — {exc.fix}"), None


def snapshot(ctx: Context) -> Part:
    """The map by accuracy and robustness, the snapshot's reference and compared models ringed."""
    figure = draw(ctx.reader, ctx.run, "robustness", ctx.ref, ctx.cmp, None)
    return Part(section("Model map", HELP, fig("modelmap")), {"modelmap": figure})
