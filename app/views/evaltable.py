"""View: the evaluation table (R1). Click a bar to pick that model and evaluation set."""

from __future__ import annotations

import dash
from dash import Input, Output, Patch, dcc, html

from app import ids
from app.figures.evaltable import evaluation_table, outline_widths, table_frame
from app.figures.local import empty_figure
from app.reader import StoreError, StoreReader
from app.state import Combo, selected_ids
from app.views.common import card, labelled

HELP = (
    "Accuracy of every pruned model on the clean test set and on each corruption: one bar per "
    "sparsity, methods ranked by their best accuracy in each column (best on top); dashed line: "
    "the dense model. Click a bar to pick it (first click: reference, next: compared)."
)


def layout() -> html.Div:
    severity = labelled(
        "severity", "Severity of the corrupted columns (1 mild … 5 strong), or their mean",
        dcc.Dropdown(id=ids.EVAL_SEVERITY, options=[{"label": str(s), "value": s} for s in range(1, 6)] + [{"label": "mean", "value": "mean"}], value=3, clearable=False, style={"width": "90px"}),
    )
    return card("Evaluation table", HELP, [dcc.Loading(dcc.Graph(id=ids.EVAL_TABLE, config={"displayModeBar": False}), type="dot")], [severity])


def register(app: dash.Dash, reader: StoreReader) -> None:
    @app.callback(
        Output(ids.EVAL_TABLE, "figure"),
        Input(ids.RUN, "data"), Input(ids.EVAL_SEVERITY, "value"), Input(ids.SELECTION, "data"),
        Input(ids.REFERENCE_DROPDOWN, "value"), Input(ids.COMPARED_DROPDOWN, "value"),
    )
    def draw(run, severity, selection, ref_key, cmp_key):
        if not run:
            return empty_figure("no run selected")
        ref, cmp = Combo.parse(ref_key), Combo.parse(cmp_key)
        try:
            frame = table_frame(reader.evaluations(run), severity)
            if dash.ctx.triggered_id in (ids.REFERENCE_DROPDOWN, ids.COMPARED_DROPDOWN):
                patch = Patch()  # only the highlight changed: send the outline widths, not the figure
                patch["data"][0]["marker"]["line"]["width"] = outline_widths(frame, ref.model_id if ref else None, cmp.model_id if cmp else None)
                return patch
            chosen = selected_ids(selection)
            subset = None
            if chosen:
                sub = reader.subset_accuracy(run, sorted(chosen))
                sub = sub.merge(reader.evaluations(run).drop(columns=["accuracy"]), on=["model_id", "corruption", "severity"])
                subset = table_frame(sub, severity)[["model_id", "column", "accuracy"]]
            return evaluation_table(frame, ref.model_id if ref else None, cmp.model_id if cmp else None, subset, len(chosen) if chosen else None)
        except StoreError as exc:
            return empty_figure(f"{exc.problem} — {exc.fix}")
