"""View: the "export snapshot" control. Builds the same HTML file as `python -m app.export`
for the reference and compared combinations in view, as a background callback (progress,
cancel), and hands it to the browser as a download."""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, dcc, html

from app import ids
from app.background import job_error_message
from app.export import PERCENT, build_snapshot, snapshot_filename
from app.reader import StoreError, StoreReader
from app.state import Combo

HELP = (
    "Download a self-contained HTML snapshot of the reference and compared combinations "
    "(opens without a server; selections stay linked)"
)
HIDDEN, SHOWN = {"display": "none"}, {"display": "inline-block"}
BAR = {"width": "90px", "height": "10px"}


def layout() -> html.Div:
    return html.Div(
        [
            dbc.Button("export snapshot", id=ids.EXPORT_BUTTON, size="sm", color="primary", outline=True, title=HELP),
            dbc.Progress(
                id=ids.EXPORT_PROGRESS, value=0, max=PERCENT, striped=True, animated=True, style={**HIDDEN, **BAR}
            ),
            dbc.Button("cancel", id=ids.EXPORT_CANCEL, size="sm", color="link", style=HIDDEN),
            html.Span(id=ids.EXPORT_STATUS, className="note"),
            dcc.Download(id=ids.EXPORT_DOWNLOAD),
        ],
        className="export-controls",
        title=HELP,
    )


def register(app: dash.Dash, reader: StoreReader) -> None:
    store_dir, cache_dir = reader.store_dir, reader.cache_dir

    @app.callback(
        Output(ids.EXPORT_DOWNLOAD, "data"),
        Output(ids.EXPORT_STATUS, "children"),
        Input(ids.EXPORT_BUTTON, "n_clicks"),
        State(ids.RUN, "data"),
        State(ids.REFERENCE_DROPDOWN, "value"),
        State(ids.COMPARED_DROPDOWN, "value"),
        State(ids.CLASS_DROPDOWN, "value"),
        background=True,
        running=[
            (Output(ids.EXPORT_BUTTON, "disabled"), True, False),
            (Output(ids.EXPORT_CANCEL, "style"), SHOWN, HIDDEN),
            (
                Output(ids.EXPORT_PROGRESS, "style"),
                {**BAR, "display": "flex"},
                {**HIDDEN, **BAR},
            ),  # Bootstrap's bar needs its flex box
        ],
        progress=[Output(ids.EXPORT_PROGRESS, "value")],
        cancel=[Input(ids.EXPORT_CANCEL, "n_clicks")],
        prevent_initial_call=True,
        on_error=lambda exc: (dash.no_update, job_error_message(exc)),  # e.g. its Celery worker died
    )
    def export(set_progress, _, run, ref_key, cmp_key, focus):
        ref, cmp = Combo.parse(ref_key), Combo.parse(cmp_key)
        if not run or ref is None:
            return dash.no_update, "pick a reference first"
        if cmp is not None and (cmp.corruption, cmp.severity) != (ref.corruption, ref.severity):
            return (
                dash.no_update,
                "a snapshot compares two models on one evaluation set: pick the compared model on the reference's set",
            )
        worker_reader = StoreReader(store_dir, cache_dir)  # this runs in its own process: its own cache handle
        try:
            text = build_snapshot(
                worker_reader,
                run,
                ref.model_id,
                cmp.model_id if cmp else None,
                ref.corruption,
                ref.severity,
                int(focus) if focus is not None else None,
                progress=lambda done, total: set_progress((done,)),
            )
        except StoreError as exc:
            return dash.no_update, f"{exc.problem} — {exc.fix}"
        name = snapshot_filename(run, ref.model_id, cmp.model_id if cmp else None)
        return dcc.send_string(text, name, type="text/html"), f"{name} ({len(text.encode()) / 1e6:.1f} MB)"
