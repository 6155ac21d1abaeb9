"""View: the evaluation table (R1). Click a bar to pick that model and evaluation set.

With a selection, the cells show the selection's accuracy, a pick of its samples' rows in the
run's correctness matrix. Computing that matrix is a scan of the whole run (seconds at tens of
millions of rows), so the first time a run needs it, a background job computes it into the
shared cache while the table says so, and then draws the table with the selection.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Collection

import dash
import pandas as pd
from dash import Input, Output, Patch, State, dcc, html

from app import ids
from app.background import job_error_message
from app.figures.evaltable import (
    MODES,
    OPACITY,
    OUTLINE,
    PARTS,
    SUBSET,
    Table,
    draw_table,
    table_columns,
    table_parts,
    table_rows,
    table_structure,
    with_parts,
)
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


LOG = logging.getLogger(__name__)
SEVERITY, MODE = 3, "auto"  # what the table shows when the page opens


def layout() -> html.Div:
    severity = labelled(
        "severity",
        "Severity of the corrupted columns (1 mild … 5 strong), or their mean",
        dcc.Dropdown(
            id=ids.EVAL_SEVERITY,
            options=[{"label": str(s), "value": s} for s in range(1, 6)] + [{"label": "mean", "value": "mean"}],
            value=SEVERITY,
            clearable=False,
            style={"width": "90px"},
        ),
    )
    mode = labelled(
        "cells",
        "bars: one bar per sparsity with its numbers; numbers: one line per sparsity; auto: bars where "
        "their numbers fit, else numbers",
        radios(ids.EVAL_MODE, {m: m for m in MODES}, MODE),
    )
    return card(
        "Evaluation table",
        HELP,
        [
            html.Div(id=ids.EVAL_NOTE, className="note"),
            html.Div(  # keyboard: Tab here, the arrow keys move between bars, Enter picks one (assets/keyboard.js);
                dcc.Loading(graph(ids.EVAL_TABLE, 400, {"displayModeBar": False}), type="dot"),
                id=ids.EVAL_KEYS,  # a box of bounded height that scrolls: the views' tabs on the first screen
                className="keyboard-plot table-scroll",
                tabIndex="0",
                role="application",
                **{"aria-label": "Evaluation table: arrow keys move between bars, Enter picks the bar in focus"},
            ),
            dcc.Store(id=ids.EVAL_PREPARE),
            dcc.Store(id=ids.EVAL_DRAWN),
            dcc.Store(id=ids.TABLE_ANSWERED, data=False),
        ],
        [mode, severity],
    )


def warm(reader: StoreReader, run: str) -> None:
    """Compute the structure of the table that a page load asks for first (app.warmup). Whatever goes
    wrong is left to the table's callback, which says what and how to fix it: a traceback here, in each
    worker's log, would only repeat it."""
    try:
        _structure(reader, run, SEVERITY, MODE)
    except Exception:  # noqa: BLE001 (a warm-up: the callback reports the same error to the user)
        LOG.debug("warming the table of %s failed", run, exc_info=True)


def _rows(reader: StoreReader, run: str) -> pd.DataFrame:
    """table_rows of the run, memoised per run version."""
    return reader.derived(run, "evaltable-rows", lambda: table_rows(reader.evaluations(run)))


def _structure(reader: StoreReader, run: str, severity, mode: str) -> Table | None:
    """The table's structure at `severity` in `mode`, memoised per run version: what a brush, a
    highlight or another reference leaves as it is."""
    return reader.derived(
        run,
        f"evaltable-structure:{severity}:{mode}",
        lambda: table_structure(table_columns(_rows(reader, run), severity), mode),
    )


def _subset(reader: StoreReader, run: str, severity, selection) -> tuple[pd.DataFrame | None, int | None]:
    """The selection's accuracy in each of the table's cells (model_id, column, accuracy), and its size."""
    chosen = selected_ids(selection)
    if not chosen:
        return None, None
    sub = reader.subset_accuracy(run, sorted(chosen))  # every evaluation, in the correctness matrix's order
    keys = ["model_id", "corruption", "severity"]
    shown = reader.derived(  # which of them the table shows (its main models), memoised: no merge per brush
        run,
        "evaltable-matrix-rows",
        lambda: pd.MultiIndex.from_frame(sub[keys]).isin(pd.MultiIndex.from_frame(_rows(reader, run)[keys])),
    )
    return table_columns(sub[shown], severity)[["model_id", "column", "accuracy"]], len(chosen)


def _parts(
    reader: StoreReader,
    run: str,
    table: Table,
    severity,
    selection,
    ref: Combo | None,
    cmp: Combo | None,
    highlight,
    parts: Collection[str] = PARTS,
) -> list:
    """table_parts of `parts` for the view's inputs (the selection's accuracy only where asked for)."""
    subset, size = _subset(reader, run, severity, selection) if SUBSET in parts else (None, None)
    models = (ref.model_id if ref else None, cmp.model_id if cmp else None)
    return table_parts(table, parts, *models, subset, size, highlighted_models(highlight))


def _drawn(table: Table, selection, ref: Combo | None, cmp: Combo | None, highlight) -> str:
    """What a figure of `table` shows: its structure key, then a digest of each part's inputs (in
    PARTS' order). It travels with the figure in the same answer: when the renderer drops a call, it
    drops both, so the key always says what is on screen, and a patch sets just the parts that differ."""
    inputs = {
        SUBSET: sorted(selected_ids(selection) or []),
        OUTLINE: [ref.model_id if ref else None, cmp.model_id if cmp else None],
        OPACITY: sorted(highlighted_models(highlight) or []),
    }
    digests = (hashlib.sha256(json.dumps(inputs[p]).encode()).hexdigest()[:8] for p in PARTS)
    return ".".join([table.key, *digests])


def _changed(drawn: str | None, now: str) -> set[str] | None:
    """The parts whose inputs differ between the drawn key and `now` (_drawn); None when the drawn
    table has another structure (or none), which a patch cannot turn into this one."""
    old, new = (drawn or "").split("."), now.split(".")
    if len(old) != len(new) or old[0] != new[0]:
        return None
    return {p for p, a, b in zip(PARTS, old[1:], new[1:]) if a != b}


def _table(
    reader: StoreReader,
    run: str,
    severity,
    selection,
    ref: Combo | None,
    cmp: Combo | None,
    highlight=None,
    mode: str = "auto",
) -> tuple[dict, str | None]:
    """The whole table, with the selection's accuracy when there is a selection, and a brushed group of
    models (`ids.MODEL_HIGHLIGHT`) opaque while the others fade; `mode` the cells' drawing. And the
    key of what it shows (_drawn; None for a table without pruned models)."""
    table = _structure(reader, run, severity, mode)
    if table is None:
        return draw_table(None), None
    parts = _parts(reader, run, table, severity, selection, ref, cmp, highlight)
    return with_parts(table.figure, parts), _drawn(table, selection, ref, cmp, highlight)


def _patch(parts: list) -> Patch:
    """The parts (table_parts) as a partial update of the drawn figure: only their properties travel."""
    patch = Patch()
    for path, value in parts:
        node = patch
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return patch


def _job_failed(exc: Exception) -> object:
    """The note says why the selection's accuracy did not come (e.g. its Celery worker died)."""
    dash.set_props(ids.EVAL_NOTE, {"children": job_error_message(exc)})
    return dash.no_update


# the inputs that change only parts of the drawn table, not its structure (any other input draws it whole)
PART_INPUTS = {
    f"{ids.SELECTION}.data",
    f"{ids.REFERENCE_DROPDOWN}.value",
    f"{ids.COMPARED_DROPDOWN}.value",
    f"{ids.MODEL_HIGHLIGHT}.data",
}


def register(app: dash.Dash, reader: StoreReader) -> None:
    store_dir, cache_dir = reader.store_dir, reader.cache_dir

    @app.callback(
        Output(ids.EVAL_TABLE, "figure"),
        Output(ids.EVAL_PREPARE, "data"),
        Output(ids.EVAL_DRAWN, "data"),
        Output(ids.TABLE_ANSWERED, "data"),
        Input(ids.RUN, "data"),
        Input(ids.EVAL_SEVERITY, "value"),
        Input(ids.SELECTION, "data"),
        Input(ids.REFERENCE_DROPDOWN, "value"),
        Input(ids.COMPARED_DROPDOWN, "value"),
        Input(ids.MODEL_HIGHLIGHT, "data"),
        Input(ids.EVAL_MODE, "value"),
        State(ids.EVAL_DRAWN, "data"),
        State(ids.TABLE_ANSWERED, "data"),
    )
    def draw(run, severity, selection, ref_key, cmp_key, highlight, mode, drawn, answered):
        """The table (outputs), and on its first answer ids.TABLE_ANSWERED: with the other first views'
        answers it tells the page that its first views are in (app.main.register_shell), after which the
        run-wide callbacks run (the problems panel, Table 1, the dimension view: 0.5 s of server work
        together at 100 M rows, which beside the first views held them up, the threads sharing one
        interpreter). Only this callback sets it: they never wait for the background job (`prepare`)."""
        once = dash.no_update if answered else True  # once: a page load waits for its first answer
        return (*outputs(run, severity, selection, ref_key, cmp_key, highlight, mode, drawn), once)

    def outputs(run, severity, selection, ref_key, cmp_key, highlight, mode, drawn) -> tuple:
        """A partial update (Patch) of the parts whose inputs differ from the drawn table's (ids.EVAL_DRAWN)
        where only parts' inputs changed and the drawn table has this structure, else the whole table; a
        selection whose accuracy needs the run's correctness matrix, not computed yet, is drawn by the
        background job (`prepare`)."""
        if not run:
            return empty_figure("no run selected"), dash.no_update, None
        ref, cmp = Combo.parse(ref_key), Combo.parse(cmp_key)
        triggered = set(dash.ctx.triggered_prop_ids)
        try:
            table = _structure(reader, run, severity, mode)
            prepare = dash.no_update
            if selected_ids(selection) and not reader.correctness_ready(run):
                selection, prepare = None, run  # the background job draws it with the selection
            now = _drawn(table, selection, ref, cmp, highlight) if table is not None else None
            changed = _changed(drawn, now) if now and triggered and triggered <= PART_INPUTS else None
            if changed is not None:  # the drawn table has this structure: patch the parts that differ
                if not changed:
                    return dash.no_update, prepare, dash.no_update
                parts = _parts(reader, run, table, severity, selection, ref, cmp, highlight, changed)
                return _patch(parts), prepare, now
            figure, key = _table(reader, run, severity, selection, ref, cmp, highlight, mode)
            return figure, prepare, key
        except StoreError as exc:
            return empty_figure(f"{exc.problem} — {exc.fix}"), dash.no_update, None

    @app.callback(
        Output(ids.EVAL_TABLE, "figure", allow_duplicate=True),
        Output(ids.EVAL_DRAWN, "data", allow_duplicate=True),
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
            return dash.no_update, dash.no_update


def snapshot(ctx: Context) -> Part:
    """The table at the snapshot's severity (3 for a clean comparison), reference and compared outlined."""
    figure, _ = _table(ctx.reader, ctx.run, ctx.ref.severity or 3, None, ctx.ref, ctx.cmp)
    return Part(section("Evaluation table", HELP, fig("evaltable")), {"evaltable": figure})
