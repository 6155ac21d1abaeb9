"""View: pruning-identified exemplars (PIE, Hooker et al. 2019) of the compared model's population.

A sample is a PIE when the modal prediction of the pruned models (the compared model and its other
seeds) differs from that of the dense models they were pruned from; with one seed per model it is a
flip between the compared model and its parent, and the view says so. Selecting them (all, or one
class's with a click on its bar) feeds the gallery and the geometry views as a brush does."""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, dcc, html

from app import ids
from app.figures.local import empty_figure
from app.figures.sensitivity import pie_per_class
from app.reader import StoreError, StoreReader
from app.state import Combo, make_selection
from app.views.common import MODELS_TAB, card, draw_while_shown, graph

HELP = (
    "Pruning-identified exemplars of the compared model (clean test set): samples whose modal prediction over "
    "the compared model's seeds differs from that over the dense models they were pruned from (Hooker et al. "
    "2019). With one seed per model: the samples whose prediction flipped. Select them all, or click a class's "
    "bar to select its PIE: the gallery and the geometry views follow."
)
SOURCE = "PIE"


def layout() -> html.Div:
    button = dbc.Button("select the PIE", id=ids.PIE_SELECT, size="sm", color="primary", outline=True, disabled=True)
    return card(
        "Pruning-identified exemplars",
        HELP,
        [
            html.Div(id=ids.PIE_NOTE, className="note"),
            dcc.Loading(graph(ids.PIE_GRAPH, 260, {"displayModeBar": False}), type="dot"),
            dcc.Store(id=ids.PIE_DRAWN),
        ],
        [button],
    )


def _pie(reader: StoreReader, run: str, cmp_key: str | None):
    """The PIE of the compared model, or the message saying why there are none to show."""
    cmp = Combo.parse(cmp_key)
    if cmp is None:
        return None, "pick a pruned model as the compared combination: its PIE are shown here"
    parent = reader.models(run).set_index("model_id")["parent_id"].get(cmp.model_id)
    if not isinstance(parent, str):
        return None, f"{cmp.model_id} is not pruned from a model of this run: compare a pruned model for its PIE"
    return reader.pie(run, cmp.model_id), ""


def register(app: dash.Dash, reader: StoreReader) -> None:
    @app.callback(
        Output(ids.PIE_GRAPH, "figure"),
        Output(ids.PIE_NOTE, "children"),
        Output(ids.PIE_SELECT, "disabled"),
        Output(ids.PIE_SELECT, "children"),
        Output(ids.PIE_DRAWN, "data"),
        Input(ids.RUN, "data"),
        Input(ids.COMPARED_DROPDOWN, "value"),
        MODELS_TAB,
        State(ids.PIE_DRAWN, "data"),
    )
    def draw(run, cmp_key, tab, drawn):
        key = draw_while_shown(tab, drawn, reader, run, cmp_key)
        if not run:
            return empty_figure("no run selected"), "", True, "select the PIE", key
        try:
            result, why = _pie(reader, run, cmp_key)
            if result is None:
                return empty_figure(why), why, True, "select the PIE", key
            names = reader.meta(run)["class_names"]
        except StoreError as exc:
            return empty_figure(f"{exc.problem} — {exc.fix}"), "", True, "select the PIE", None
        what = "flips" if result.mode == "flips" else "PIE"
        figure = pie_per_class(result.per_class(len(names)), names, f"{what} per class ({result.count} in all)")
        return figure, result.note, result.count == 0, f"select the {result.count} {what}", key

    @app.callback(
        Output(ids.SELECTION, "data", allow_duplicate=True),
        Input(ids.PIE_SELECT, "n_clicks"),
        Input(ids.PIE_GRAPH, "clickData"),
        State(ids.RUN, "data"),
        State(ids.COMPARED_DROPDOWN, "value"),
        prevent_initial_call=True,
    )
    def select(_, click, run, cmp_key):
        """All the PIE (button), or those of the clicked class, as the selection every view follows."""
        if not run:
            return dash.no_update
        result, _why = _pie(reader, run, cmp_key)
        if result is None:
            return dash.no_update
        chosen = result.samples[result.samples["pie"]]
        if dash.ctx.triggered_id == ids.PIE_GRAPH:
            point = (click or {}).get("points", [{}])[0]
            if not isinstance(point.get("customdata"), int):
                return dash.no_update
            chosen = chosen[chosen["label"] == point["customdata"]]
        return make_selection(chosen["sample_id"].tolist(), SOURCE)
