"""View: the evaluation table (R1). Click a bar to pick that model and evaluation set.

With a selection, the cells show the selection's accuracy, a column pick in the run's
correctness matrix. Computing that matrix is a scan of the whole run (seconds at tens of
millions of rows), so the first time a run needs it, a background job computes it into the
shared cache while the table says so, and then draws the table with the selection.
"""

from __future__ import annotations

import dash
import pandas as pd
from dash import Input, Output, Patch, State, dcc, html

from app import ids
from app.background import job_error_message
from app.figures.evaltable import MODES, bar_models, evaluation_table, outlines, table_columns, table_rows
from app.figures.local import empty_figure
from app.reader import StoreError, StoreReader
from app.snapshot import Context, Part, fig, section
from app.state import Combo, highlighted_models, selected_ids
from app.views.common import card, graph, labelled, radios

HELP = (
    "Accuracy of every pruned model on the clean test set and on each corruption: one bar per "
    "sparsity, methods ranked by their best accuracy in each column (best on top); dashed line: "
    "the dense model. Click a bar (or Tab to the table, move with the arrow keys, Enter) to set the combination "
    "chosen under 'a click sets'."
)


def layout() -> html.Div:
    severity = labelled(
        "severity",
        "Severity of the corrupted columns (1 mild … 5 strong), or their mean",
        dcc.Dropdown(
            id=ids.EVAL_SEVERITY,
            options=[{"label": str(s), "value": s} for s in range(1, 6)] + [{"label": "mean", "value": "mean"}],
            value=3,
            clearable=False,
            style={"width": "90px"},
        ),
    )
    mode = labelled(
        "cells",
        "bars: one bar per sparsity with its numbers; numbers: one line per sparsity; auto: bars where "
        "their numbers fit, else numbers",
        radios(ids.EVAL_MODE, {m: m for m in MODES}, "auto"),
    )
    return card(
        "Evaluation table",
        HELP,
        [
            html.Div(id=ids.EVAL_NOTE, className="note"),
            html.Div(  # keyboard: Tab here, the arrow keys move between bars, Enter picks one (assets/keyboard.js)
                dcc.Loading(graph(ids.EVAL_TABLE, 400, {"displayModeBar": False}), type="dot"),
                id=ids.EVAL_KEYS,
                className="keyboard-plot",
                tabIndex="0",
                role="application",
                **{"aria-label": "Evaluation table: arrow keys move between bars, Enter picks the bar in focus"},
            ),
            dcc.Store(id=ids.EVAL_PREPARE),
        ],
        [mode, severity],
    )


def _rows(reader: StoreReader, run: str) -> pd.DataFrame:
    """table_rows of the run, memoised per run version."""
    return reader.derived(run, "evaltable-rows", lambda: table_rows(reader.evaluations(run)))


def _table(
    reader: StoreReader,
    run: str,
    severity,
    selection,
    ref: Combo | None,
    cmp: Combo | None,
    highlight=None,
    mode: str = "auto",
) -> dict:
    """The table, with the selection's accuracy when there is a selection, and a brushed group of
    models (`ids.MODEL_HIGHLIGHT`) opaque while the others fade; `mode` the cells' drawing."""
    rows = _rows(reader, run)
    frame = table_columns(rows, severity)
    chosen = selected_ids(selection)
    subset = None
    if chosen:
        sub = reader.subset_accuracy(run, sorted(chosen))
        sub = sub.merge(rows.drop(columns=["accuracy"]), on=["model_id", "corruption", "severity"])
        subset = table_columns(sub, severity)[["model_id", "column", "accuracy"]]
    return evaluation_table(
        frame,
        ref.model_id if ref else None,
        cmp.model_id if cmp else None,
        subset,
        len(chosen) if chosen else None,
        highlighted_models(highlight),
        mode,
    )


def _job_failed(exc: Exception) -> object:
    """The note says why the selection's accuracy did not come (e.g. its Celery worker died)."""
    dash.set_props(ids.EVAL_NOTE, {"children": job_error_message(exc)})
    return dash.no_update


def register(app: dash.Dash, reader: StoreReader) -> None:
    store_dir, cache_dir = reader.store_dir, reader.cache_dir

    @app.callback(
        Output(ids.EVAL_TABLE, "figure"),
        Output(ids.EVAL_PREPARE, "data"),
        Input(ids.RUN, "data"),
        Input(ids.EVAL_SEVERITY, "value"),
        Input(ids.SELECTION, "data"),
        Input(ids.REFERENCE_DROPDOWN, "value"),
        Input(ids.COMPARED_DROPDOWN, "value"),
        Input(ids.MODEL_HIGHLIGHT, "data"),
        Input(ids.EVAL_MODE, "value"),
    )
    def draw(run, severity, selection, ref_key, cmp_key, highlight, mode):
        if not run:
            return empty_figure("no run selected"), dash.no_update
        ref, cmp = Combo.parse(ref_key), Combo.parse(cmp_key)
        try:
            if dash.ctx.triggered_id in (ids.REFERENCE_DROPDOWN, ids.COMPARED_DROPDOWN):
                patch = Patch()  # only the highlight changed: send the outline widths, not the figure
                bars = reader.derived(
                    run,
                    f"evaltable-bars:{severity}",
                    lambda: bar_models(table_columns(_rows(reader, run), severity)),
                )
                patch["data"][0]["marker"]["line"]["width"] = outlines(
                    bars, ref.model_id if ref else None, cmp.model_id if cmp else None
                ).tolist()
                return patch, dash.no_update
            if selected_ids(selection) and not reader.correctness_ready(run):
                table = _table(reader, run, severity, None, ref, cmp, highlight, mode)
                return table, run  # the background job draws it with the selection
            return _table(reader, run, severity, selection, ref, cmp, highlight, mode), dash.no_update
        except StoreError as exc:
            return empty_figure(f"{exc.problem} — {exc.fix}"), dash.no_update

    @app.callback(
        Output(ids.EVAL_TABLE, "figure", allow_duplicate=True),
        Input(ids.EVAL_PREPARE, "data"),
        State(ids.EVAL_SEVERITY, "value"),
        State(ids.SELECTION, "data"),
        State(ids.REFERENCE_DROPDOWN, "value"),
        State(ids.COMPARED_DROPDOWN, "value"),
        State(ids.MODEL_HIGHLIGHT, "data"),
        State(ids.EVAL_MODE, "value"),
        background=True,
        prevent_initial_call=True,
        running=[
            (
                Output(ids.EVAL_NOTE, "children"),
                "computing the selection's accuracy on every evaluation set (once per run)…",
                "",
            )
        ],
        on_error=_job_failed,
    )
    def prepare(run, severity, selection, ref_key, cmp_key, highlight, mode):
        try:  # its own process: its own reader and cache handle; the matrix lands in the shared cache
            return _table(
                StoreReader(store_dir, cache_dir),
                run,
                severity,
                selection,
                Combo.parse(ref_key),
                Combo.parse(cmp_key),
                highlight,
                mode,
            )
        except StoreError:
            return dash.no_update


def snapshot(ctx: Context) -> Part:
    """The table at the snapshot's severity (3 for a clean comparison), reference and compared outlined."""
    figure = _table(ctx.reader, ctx.run, ctx.ref.severity or 3, None, ctx.ref, ctx.cmp)
    return Part(section("Evaluation table", HELP, fig("evaltable")), {"evaltable": figure})
