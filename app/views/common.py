"""Small layout helpers shared by the views: cards with a title and hover help."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html


def card(title: str, help_text: str, body: list, controls: list | None = None, **kwargs) -> dbc.Card:
    """A view's card: title with a one-line explanation on hover, optional controls, body."""
    header = html.Div(
        [
            html.Span(title, className="view-title", title=help_text),
            html.Span(" ⓘ", className="help", title=help_text),
            html.Div(controls or [], className="view-controls"),
        ],
        className="view-header",
    )
    return dbc.Card([dbc.CardHeader(header), dbc.CardBody(body)], className="view-card", **kwargs)


def labelled(label: str, help_text: str, component) -> html.Div:
    """A control with a label that explains it on hover."""
    return html.Div(
        [html.Label(label, title=help_text, className="control-label"), component], className="control", title=help_text
    )


def message(text: str, fix: str | None = None) -> html.Div:
    """An in-page message (never a Dash error dialog)."""
    return html.Div([html.Strong(text), html.Div(f"Fix: {fix}") if fix else None], className="store-message")


def graph(graph_id: str, height: int, config: dict) -> dcc.Graph:
    """A graph that starts blank at its usual height: dcc.Graph's default figure is a full empty
    plot whose axes plotly lays out and measures before the first callback replaces it."""
    blank = {"data": [], "layout": {"height": height, "xaxis": {"visible": False}, "yaxis": {"visible": False}}}
    return dcc.Graph(id=graph_id, figure=blank, config=config)
