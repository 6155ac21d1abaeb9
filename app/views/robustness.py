"""View: robustness. Relative margin change (Fig. 10), Table 1, and accuracy vs sparsity."""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
import numpy as np
from dash import Input, Output, dash_table, html
from dash.dash_table.Format import Format, Scheme, Sign

from app import ids
from app.figures import Figure
from app.figures.local import empty_figure
from app.figures.robustness import margin_change
from app.figures.sweetspot import sweet_spot_curves, sweet_spot_figure
from app.reader import StoreError, StoreReader
from app.snapshot import Context, Part, fig, section, to_html
from app.state import Combo
from app.views.common import card, graph
from pipeline import store

HELP_MARGIN = (
    "How much each sample's margin shrinks under every corruption and severity, "
    "relative to its clean margin (0.5 % trimmed each side): a curve further left means a more robust model."
)
HELP_TABLE = (
    "Table 1: Pearson correlation, per model, between a sample's robustness "
    "(share of its corrupted versions classified correctly) and its clean angle, length and margin."
)
HELP_SWEET = (
    "Clean accuracy against measured sparsity for every pruning variant: "
    "where does pruning stop being free? Click a point to compare that model."
)


METRICS = ("angle", "length", "margin")


def table1_columns(margin_label: str, notes: bool = True) -> list[dict]:
    """Table 1's columns, the margin one named after the run's definition, correlations with three
    decimals; the note column only where a row has a note (`notes`), so the ids get its room."""
    number = {"type": "numeric", "format": Format(precision=3, scheme=Scheme.fixed, sign=Sign.positive)}
    return (
        [{"name": "model", "id": "model"}]
        + [{"name": c, "id": c, **number} for c in ("angle", "length")]
        + [{"name": margin_label, "id": "margin", **number}]
        + ([{"name": "note", "id": "note"}] if notes else [])
    )


def layout() -> html.Div:
    table = dash_table.DataTable(
        id=ids.ROBUST_TABLE1,
        columns=table1_columns("margin"),
        page_size=12,
        sort_action="native",
        style_table={"overflowX": "auto", "maxWidth": "100%"},
        style_cell={"fontSize": 11, "padding": "2px 6px", "fontFamily": "inherit"},
        style_cell_conditional=[  # ids wrap, hyphens first; full id on hover
            {"if": {"column_id": "model"}, "whiteSpace": "normal", "wordBreak": "break-word", "textAlign": "left"},
            {"if": {"column_id": "note"}, "whiteSpace": "normal", "textAlign": "left"},  # a note wraps too
        ],
        style_header={"fontWeight": "bold", "whiteSpace": "normal", "height": "auto"},  # "margin (eq. 5)" wraps
        style_data_conditional=[{"if": {"state": "selected"}, "backgroundColor": "#eef"}],
        tooltip_delay=300,
        tooltip_duration=None,
    )
    return dbc.Row(
        [
            dbc.Col(
                card(
                    "Margin change under corruption",
                    HELP_MARGIN,
                    [graph(ids.ROBUST_MARGIN, 420, {"displayModeBar": False})],
                ),
                lg=5,
            ),
            dbc.Col(
                card("Accuracy vs sparsity", HELP_SWEET, [graph(ids.ROBUST_SWEETSPOT, 420, {"displayModeBar": False})]),
                lg=4,
            ),
            dbc.Col(card("Robustness correlations (Table 1)", HELP_TABLE, [table]), lg=3),
        ],
        className="g-2",
    )


def margin_figure(reader: StoreReader, run: str, ref: Combo | None, cmp: Combo | None, margin_label: str) -> Figure:
    """The margin change densities of the reference and compared models."""
    curves = [(c.model_id, reader.margin_change(run, c.model_id)) for c in dict.fromkeys(c for c in (ref, cmp) if c)]
    if ref and cmp and ref.model_id == cmp.model_id:
        curves = curves[:1]
    return margin_change(curves, margin_label)


def sweet_figure(reader: StoreReader, run: str, ref: Combo | None) -> Figure:
    """Clean accuracy vs sparsity, the reference model ringed (the curves kept per run version)."""
    curves = reader.derived(run, "sweet-spot-curves", lambda: sweet_spot_curves(reader.models(run)))
    return sweet_spot_figure(
        curves, "clean accuracy vs sparsity", ref.model_id if ref else None, legend_below=True, height=420
    )


def table1_rows(reader: StoreReader, run: str) -> list[dict]:
    """The rows of Table 1 (NaN as None)."""
    return [
        {
            "model": r.model_id,
            **{k: None if np.isnan(getattr(r, k)) else round(float(getattr(r, k)), 3) for k in METRICS},
            "note": getattr(r, "note", "") or "",
        }
        for r in reader.table1(run).itertuples()
    ]


def figures(
    reader: StoreReader, run: str, ref: Combo | None, cmp: Combo | None, margin_label: str = "margin"
) -> tuple[Figure, Figure, list[dict]]:
    """The margin change densities, accuracy vs sparsity and the rows of Table 1 (NaN as None);
    `margin_label` names the run's margin definition."""
    return margin_figure(reader, run, ref, cmp, margin_label), sweet_figure(reader, run, ref), table1_rows(reader, run)


def table1_html(table: list[dict], highlight: set[str], margin_label: str = "margin") -> html.Table:
    """Table 1 as plain HTML (the snapshot's), the reference and compared rows highlighted."""
    notes = any(row.get("note") for row in table)
    head = html.Thead(html.Tr([html.Th(c["name"]) for c in table1_columns(margin_label, notes)]))
    body = html.Tbody(
        [
            html.Tr(
                [html.Td(row["model"])]
                + [html.Td("" if row[k] is None else f"{row[k]:+.3f}") for k in METRICS]
                + ([html.Td(row.get("note", ""))] if notes else []),
                className="hl" if row["model"] in highlight else None,
            )
            for row in table
        ]
    )
    return html.Table([head, body], className="t1")


def register(app: dash.Dash, reader: StoreReader) -> None:
    """Three callbacks, so that a new reference redraws only what shows it: the densities (reference
    and compared), accuracy vs sparsity (the reference ringed), and Table 1 (once per run). A page load
    asks for the first two with the evaluation table, as for the geometry views: the browser draws the
    first answers while the server computes these (after the table's drawing they came 0.3–0.5 s late)."""

    @app.callback(
        Output(ids.ROBUST_MARGIN, "figure"),
        Input(ids.RUN, "data"),
        Input(ids.REFERENCE_DROPDOWN, "value"),
        Input(ids.COMPARED_DROPDOWN, "value"),
    )
    def draw_margin(run, ref_key, cmp_key):
        if not run:
            return empty_figure("no run")
        try:
            margin_label = store.margin_label(reader.meta(run))
            return margin_figure(reader, run, Combo.parse(ref_key), Combo.parse(cmp_key), margin_label)
        except StoreError as exc:
            return empty_figure(f"{exc.problem} — {exc.fix}")

    @app.callback(
        Output(ids.ROBUST_SWEETSPOT, "figure"),
        Input(ids.RUN, "data"),
        Input(ids.REFERENCE_DROPDOWN, "value"),
    )
    def draw_sweet(run, ref_key):
        if not run:
            return empty_figure("no run")
        try:
            return sweet_figure(reader, run, Combo.parse(ref_key))
        except StoreError as exc:
            return empty_figure(f"{exc.problem} — {exc.fix}")

    @app.callback(
        Output(ids.ROBUST_TABLE1, "data"),
        Output(ids.ROBUST_TABLE1, "tooltip_data"),
        Output(ids.ROBUST_TABLE1, "columns"),
        Input(ids.RUN, "data"),
        Input(ids.FIRST_VIEWS_DRAWN, "data"),  # a page load draws its first views first (app.main.register_shell)
    )
    def draw_table(run, _after_first_views):
        if not run:
            return [], [], dash.no_update
        try:
            margin_label = store.margin_label(reader.meta(run))
            table = table1_rows(reader, run)
        except StoreError:
            return [], [], dash.no_update  # the densities' figure says why
        notes = any(row["note"] for row in table)
        return table, [{"model": row["model"]} for row in table], table1_columns(margin_label, notes)


def snapshot(ctx: Context) -> Part:
    """The margin change densities, accuracy vs sparsity and Table 1, as in the dashboard."""
    margin, sweet, table = figures(ctx.reader, ctx.run, ctx.ref, ctx.cmp, ctx.margin_label)
    highlight = {c.model_id for c in (ctx.ref, ctx.cmp) if c}
    body = (
        section("Margin change under corruption", HELP_MARGIN, fig("margin"), "third")
        + section("Accuracy vs sparsity", HELP_SWEET, fig("sweetspot"), "third")
        + section(
            "Robustness correlations (Table 1)",
            HELP_TABLE,
            to_html(table1_html(table, highlight, ctx.margin_label)),
            "third",
        )
    )
    return Part(body, {"margin": margin, "sweetspot": sweet})
