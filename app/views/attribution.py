"""View: attribution drift against sparsity, one panel per attribution method. Each pruned
model's maps against its parent's (Spearman, top-10 % IoU); a box over the points selects those
samples in every view (the gallery then shows their maps side by side)."""

from __future__ import annotations

import dash
from dash import Input, Output, State, dcc, html

from app import ids
from app.figures.attribution import DRIFT_METRICS, drift_vs_sparsity
from app.figures.local import empty_figure
from app.reader import StoreError, StoreReader
from app.snapshot import Context, Part, fig, section
from app.state import make_selection
from app.views.common import MODELS_TAB, card, draw_while_shown, graph, labelled
from app.views.local import points_to_ids

HELP = (
    "How far each pruned model's attribution maps moved from its parent's, per attribution method: "
    "the Spearman rank correlation of the two maps of a sample, or the overlap (IoU) of their top 10 % pixels "
    "(1: the same map). Grey points are samples, lines the mean of each pruning variant over sparsity; "
    "a box or lasso over points selects those samples everywhere."
)
TITLE = "Attribution drift vs sparsity"


def layout() -> html.Div:
    metric = labelled(
        "drift",
        "Which comparison of a model's map with its parent's",
        dcc.Dropdown(
            id=ids.ATTR_METRIC,
            options=[{"label": v, "value": k} for k, v in DRIFT_METRICS.items()],
            value="spearman",
            clearable=False,
            style={"width": "230px"},
        ),
    )
    body = [graph(ids.ATTR_DRIFT, 360, {"displayModeBar": False}), dcc.Store(id=ids.ATTR_DRAWN)]
    return card(TITLE, HELP, body, [metric])


def draw_figure(reader: StoreReader, run: str, metric: str) -> dict:
    """The drift figure of a run, or a figure that says why there is none."""
    try:
        return drift_vs_sparsity(reader.attribution_drift(run), metric if metric in DRIFT_METRICS else "spearman")
    except StoreError as exc:
        return empty_figure(f"{exc.problem} — {exc.fix}")


def register(app: dash.Dash, reader: StoreReader) -> None:
    @app.callback(
        Output(ids.ATTR_DRIFT, "figure"),
        Output(ids.ATTR_DRAWN, "data"),
        Input(ids.RUN, "data"),
        Input(ids.ATTR_METRIC, "value"),
        MODELS_TAB,
        State(ids.ATTR_DRAWN, "data"),
    )
    def draw(run, metric, tab, drawn):
        key = draw_while_shown(tab, drawn, reader, run, metric)
        return (draw_figure(reader, run, metric) if run else empty_figure("no run")), key

    @app.callback(
        Output(ids.SELECTION, "data", allow_duplicate=True),
        Input(ids.ATTR_DRIFT, "selectedData"),
        prevent_initial_call=True,
    )
    def select(selected):
        """The samples in the box or lasso (the variants' means carry no sample id: left out)."""
        if not selected or not selected.get("points"):
            return None if selected is not None else dash.no_update
        return make_selection(points_to_ids(selected["points"]), "attribution")


def snapshot(ctx: Context) -> Part:
    """The Spearman drift, as the view first draws it; its sample points select like the geometry plots."""
    figure = draw_figure(ctx.reader, ctx.run, "spearman")
    return Part(section(TITLE, HELP, fig("attribution")), {"attribution": figure}, linked=("attribution",))
