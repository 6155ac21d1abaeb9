"""View: per-layer sensitivity (issue #16), a heatmap of layer × sparsity from the models that prune
one layer alone. A click on a cell compares that model (compared) with its dense parent (reference)."""

from __future__ import annotations

import dash
from dash import Input, Output, State, dcc, html

from app import ids
from app.figures.local import empty_figure
from app.figures.sensitivity import sensitivity_heatmap
from app.reader import StoreError, StoreReader
from app.snapshot import Context, Part, fig, section
from app.state import Combo
from app.views.common import MODELS_TAB, card, draw_while_shown, graph, labelled
from pipeline.store import CLEAN, SENSITIVITY_METRICS

HELP = (
    "Per-layer sensitivity: each prunable layer pruned alone at each sparsity ([[sensitivity]] in the config), "
    "coloured by the change from the dense model on the clean test set: accuracy, mean margin or the number of "
    "samples whose prediction flipped. Click a cell to compare that model with its dense model."
)


def layout() -> html.Div:
    metric = labelled(
        "colour",
        "What the colour shows: the change in clean accuracy or mean margin, or the flipped predictions",
        dcc.Dropdown(
            id=ids.SENS_METRIC,
            options=[{"label": v, "value": k} for k, v in SENSITIVITY_METRICS.items()],
            value="delta_accuracy",
            clearable=False,
            style={"width": "190px"},
        ),
    )
    method = labelled(
        "method",
        "The pruning method of the sensitivity study",
        dcc.Dropdown(id=ids.SENS_METHOD, options=[], value=None, clearable=False, style={"width": "130px"}),
    )
    return card(
        "Per-layer sensitivity",
        HELP,
        [
            html.Div(id=ids.SENS_NOTE, className="note"),
            dcc.Loading(graph(ids.SENS_GRAPH, 300, {"displayModeBar": False}), type="dot"),
            dcc.Store(id=ids.SENS_DRAWN),
        ],
        [metric, method],
    )


def clicked_pair(reader: StoreReader, run: str, click: dict | None) -> tuple[Combo, Combo] | None:
    """The (reference, compared) a click on a cell sets: the cell's model's dense parent and the
    model, both on the clean set (None for a click on an empty cell)."""
    point = (click or {}).get("points", [{}])[0]
    model_id = point.get("customdata")
    if not isinstance(model_id, str) or not model_id:
        return None
    reader.check_model(run, model_id)
    parent = reader.models(run).set_index("model_id").loc[model_id, "parent_id"]
    if not isinstance(parent, str):
        return None
    return Combo(parent, CLEAN, 0), Combo(model_id, CLEAN, 0)


def register(app: dash.Dash, reader: StoreReader) -> None:
    @app.callback(
        Output(ids.SENS_GRAPH, "figure"),
        Output(ids.SENS_METHOD, "options"),
        Output(ids.SENS_METHOD, "value"),
        Output(ids.SENS_NOTE, "children"),
        Output(ids.SENS_DRAWN, "data"),
        Input(ids.RUN, "data"),
        Input(ids.SENS_METRIC, "value"),
        Input(ids.SENS_METHOD, "value"),
        Input(ids.COMPARED_DROPDOWN, "value"),
        MODELS_TAB,
        State(ids.SENS_DRAWN, "data"),
    )
    def draw(run, metric, method, cmp_key, tab, drawn):
        key = draw_while_shown(tab, drawn, reader, run, metric, method, cmp_key)
        if not run:
            return empty_figure("no run selected"), [], None, "", key
        try:
            table = reader.sensitivity(run)
        except StoreError as exc:
            return empty_figure(f"{exc.problem} — {exc.fix}"), [], None, "", None
        methods = list(dict.fromkeys(table["method"])) if not table.empty else []
        method = method if method in methods else (methods[0] if methods else None)
        cmp = Combo.parse(cmp_key)
        figure = sensitivity_heatmap(table, metric or "delta_accuracy", method, cmp.model_id if cmp else None)
        shown = table[table["model_id"] == (cmp.model_id if cmp else None)]
        note = "click a cell to compare its model with the dense model" if methods else ""
        if not shown.empty:
            note = f"compared: layer {shown['layer'].iloc[0]} alone at sparsity {shown['target_sparsity'].iloc[0]:g}"
        return figure, [{"label": m, "value": m} for m in methods], method, note, key


def snapshot(ctx: Context) -> Part:
    """The heatmap of Δ clean accuracy, the compared model outlined (nothing for a run without a study)."""
    table = ctx.reader.sensitivity(ctx.run)
    if table.empty:
        return Part("")
    figure = sensitivity_heatmap(table, "delta_accuracy", None, ctx.cmp.model_id if ctx.cmp else None)
    return Part(section("Per-layer sensitivity", HELP, fig("sensitivity")), {"sensitivity": figure})
