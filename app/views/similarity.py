"""View: model similarity (issue 16). The models placed by an MDS embedding of their prediction
agreement (or the linear CKA of their last-layer features) on one evaluation set; lasso or box
a group of models to highlight it in the evaluation table and the model map ("clear selection"
in the header clears it). A click on a model sets the reference or the compared model, as in the model map.
The numbers come from `pipeline.store.similarity`, as `python -m pipeline report --similarity`
prints them."""

from __future__ import annotations

import dash
from dash import Input, Output, State, dcc, html

from app import ids
from app.figures.local import empty_figure
from app.figures.modelmap import map_frame, similarity_map
from app.reader import StoreError, StoreReader
from app.state import Combo
from app.views.common import MODELS_TAB, card, draw_while_shown, graph, labelled
from pipeline.store import CLEAN, EvalSet
from pipeline.store.similarity import MEASURES

HELP = (
    "Models placed so that models which predict alike sit close: MDS of 1 − prediction agreement (the share "
    "of samples two models give the same class) or 1 − linear CKA of their last-layer features, on one "
    "evaluation set. Lasso or box a group to highlight it in the evaluation table and the model map; "
    "'clear selection' (top) clears it. A click sets the reference or the compared model."
)


def layout() -> html.Div:
    measure = labelled(
        "by",
        "Prediction agreement, or linear CKA of the last-layer features (models with stored features)",
        dcc.Dropdown(
            id=ids.SIMILARITY_MEASURE,
            options=[{"label": "agreement", "value": "agreement"}, {"label": "linear CKA", "value": "cka"}],
            value="agreement",
            clearable=False,
            style={"width": "130px"},
        ),
    )
    evalset = labelled(
        "on",
        "The evaluation set the models are compared on (sets every model was evaluated on)",
        dcc.Dropdown(
            id=ids.SIMILARITY_SET,
            options=[{"label": "clean", "value": CLEAN}],
            value=CLEAN,
            clearable=False,
            style={"width": "150px"},
        ),
    )
    return card(
        "Model similarity",
        HELP,
        [
            html.Div(id=ids.SIMILARITY_NOTE, className="note"),
            dcc.Loading(graph(ids.SIMILARITY_GRAPH, 460, {"displaylogo": False}), type="dot"),
            dcc.Store(id=ids.SIMILARITY_DRAWN),
        ],
        [measure, evalset],
    )


def shared_sets(reader: StoreReader, run: str) -> list[EvalSet]:
    """The evaluation sets every model of the run was evaluated on, clean first."""
    ev = reader.evaluations(run)
    count = ev.groupby(["corruption", "severity"])["model_id"].nunique()
    full = count[count == ev["model_id"].nunique()].index
    return sorted((EvalSet(str(c), int(s)) for c, s in full), key=lambda e: (e.corruption != CLEAN, e.name))


def register(app: dash.Dash, reader: StoreReader) -> None:
    @app.callback(
        Output(ids.SIMILARITY_SET, "options"),
        Output(ids.SIMILARITY_SET, "value"),
        Input(ids.RUN, "data"),
    )
    def sets(run):
        if not run:
            return [{"label": "clean", "value": CLEAN}], CLEAN
        try:
            found = shared_sets(reader, run)
        except StoreError:
            return dash.no_update, dash.no_update
        return [{"label": s.label, "value": s.name} for s in found], found[0].name if found else None

    @app.callback(
        Output(ids.SIMILARITY_GRAPH, "figure"),
        Output(ids.SIMILARITY_NOTE, "children"),
        Output(ids.SIMILARITY_DRAWN, "data"),
        Input(ids.RUN, "data"),
        Input(ids.SIMILARITY_MEASURE, "value"),
        Input(ids.SIMILARITY_SET, "value"),
        Input(ids.REFERENCE_DROPDOWN, "value"),
        Input(ids.COMPARED_DROPDOWN, "value"),
        Input(ids.CLEAR_SELECTION, "n_clicks"),
        MODELS_TAB,
        State(ids.SIMILARITY_DRAWN, "data"),
    )
    def draw(run, measure, set_name, ref_key, cmp_key, cleared, tab, drawn):
        key = draw_while_shown(tab, drawn, reader, run, measure, set_name, ref_key, cmp_key, cleared)
        if not run or not set_name:
            return empty_figure("no run or evaluation set selected"), "", key
        ref, cmp = Combo.parse(ref_key), Combo.parse(cmp_key)
        try:
            evalset = EvalSet.parse(set_name)
            sim = reader.similarity(run, evalset.corruption, evalset.severity)
            embedding = reader.similarity_embedding(run, evalset.corruption, evalset.severity, measure)
            frame = reader.derived(
                run, "map_frame:hover", lambda: map_frame(reader.models(run), reader.evaluations(run))
            )
        except StoreError as exc:
            return empty_figure(f"{exc.problem} — {exc.fix}"), "", None
        if embedding.empty:
            return empty_figure(" · ".join([*sim.warnings, *sim.notes]) or f"no model has {MEASURES[measure]}"), "", key
        figure = similarity_map(
            frame,
            embedding,
            MEASURES[measure],
            ref.model_id if ref else None,
            cmp.model_id if cmp else None,
        )
        figure["layout"]["uirevision"] = f"{run}|{measure}|{set_name}"
        figure["layout"]["selectionrevision"] = f"{run}|{measure}|{set_name}|{cleared or 0}"  # "clear" drops the lasso
        notes = [*sim.warnings, *(sim.notes if measure == "cka" else [])]
        samples = sim.cka_n if measure == "cka" else sim.n
        return figure, " · ".join([f"{len(embedding)} models on {evalset.label}, {samples} samples", *notes]), key

    @app.callback(
        Output(ids.MODEL_HIGHLIGHT, "data"),
        Input(ids.SIMILARITY_GRAPH, "selectedData"),
        Input(ids.RUN, "data"),
        Input(ids.CLEAR_SELECTION, "n_clicks"),
        State(ids.MODEL_HIGHLIGHT, "data"),
        prevent_initial_call=True,
    )
    def brush(selected, run, cleared, current):
        """The one owner of the highlighted group: a lasso or box in the similarity map sets it; an
        empty selection (double-click), "clear selection" or another run clears it."""
        if dash.ctx.triggered_id in (ids.RUN, ids.CLEAR_SELECTION):
            return None
        points = (selected or {}).get("points") or []
        models = sorted({str(p["customdata"][0]) for p in points if isinstance(p.get("customdata"), list)})
        new = {"models": models, "source": "similarity"} if models else None
        return dash.no_update if new == current else new
