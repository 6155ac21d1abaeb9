"""Small layout helpers shared by the views: cards with a title and hover help."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import Input, dcc, html
from dash.exceptions import PreventUpdate

from app import ids
from app.figures.local import empty_figure
from app.reader import StoreError, StoreReader
from pipeline.store import PruneScopeError

LOG = logging.getLogger("prunescope.app")


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


def radios(component_id: str, options: dict[str, str], value: str) -> dcc.RadioItems:
    """An inline radio group (value → label), styled alike in every view."""
    return dcc.RadioItems(
        id=component_id,
        options=[{"label": f" {label}", "value": key} for key, label in options.items()],
        value=value,
        inline=True,
        inputClassName="radio-input",
        labelClassName="radio-label",
    )


def element(tag: str, children: Any = None, **props: Any) -> dict:
    """A `dash.html` element as the JSON the renderer receives for one ({type, namespace, props}),
    for views that return hundreds of them a call (the samples gallery): a dash component costs
    about 50 µs to build and as much again to go through plotly's JSON encoder; this dict neither.
    app.snapshot.to_html renders both."""
    return {
        "type": tag,
        "namespace": "dash_html_components",
        "props": {"children": children, **{k: v for k, v in props.items() if v is not None}},
    }


def message(text: str, fix: str | None = None) -> html.Div:
    """An in-page message (never a Dash error dialog)."""
    return html.Div([html.Strong(text), html.Div(f"Fix: {fix}") if fix else None], className="store-message")


def graph(graph_id: str, height: int, config: dict) -> dcc.Graph:
    """A graph that starts blank at its usual height: dcc.Graph's default figure is a full empty
    plot whose axes plotly lays out and measures before the first callback replaces it."""
    blank = {"data": [], "layout": {"height": height, "xaxis": {"visible": False}, "yaxis": {"visible": False}}}
    return dcc.Graph(id=graph_id, figure=blank, config=config)


def drawn_key(*inputs: object) -> str:
    """A short digest of the inputs a figure was drawn for (hex digits, as app.guard checks it)."""
    return hashlib.sha256(json.dumps(inputs, default=str).encode()).hexdigest()[:16]


MODELS_TAB = Input(ids.VIEW_TABS, "active_tab")  # an input of every model-level view's drawing callback
# the stores of the keys of what a view's figure shows: a failed call empties its key, so the next one draws anew
DRAWN_KEYS = frozenset(
    (
        ids.EVAL_DRAWN,
        ids.LOCAL_DRAWN,
        ids.MODELMAP_DRAWN,
        ids.SIMILARITY_DRAWN,
        ids.SENS_DRAWN,
        ids.PIE_DRAWN,
        ids.ATTR_DRAWN,
    )
)


def draw_while_shown(active_tab: str | None, drawn: str | None, reader: StoreReader, run: str | None, *inputs) -> str:
    """The key of a model-level view's drawing from `run` (its version) and its other `inputs`, which the
    callback sends with the figure, in the same answer. No update (nothing read, nothing sent, no graph for
    the browser to draw) while the view's tab is hidden, nor when the shown figure was drawn from these same
    inputs (`drawn`, the key that came with it): opening the tab again with nothing changed costs nothing,
    and a change made while it was hidden draws it anew. The renderer drops a call that is still running
    when the same callback is called again, and its answer, key included: the key says what is on screen."""
    if active_tab != ids.TAB_MODELS:
        raise PreventUpdate
    try:
        version = reader.version(run) if run else None
    except StoreError:
        version = None
    key = drawn_key(run, version, *inputs)
    if key == drawn:
        raise PreventUpdate
    return key


def callback_error(exc: Exception) -> Any:
    """The app's one answer to a callback that fails (dash's `on_error`): never a 500.

    Each output of the failed callback shows the message where the view draws: a figure
    becomes an empty plot with the message, children become the message, a key of what a figure
    shows (DRAWN_KEYS) is emptied; other properties keep their value. A StoreError carries its own
    message and fix; anything else is logged with its traceback and named in one line.
    """
    if isinstance(exc, PruneScopeError):
        text, fix = exc.problem, exc.fix
    else:
        LOG.error("callback failed", exc_info=exc)
        text, fix = f"this view could not be drawn: {type(exc).__name__}: {exc}", "python -m pipeline validate RUN_DIR"

    def shown(spec: Any) -> Any:
        prop = spec.get("property") if isinstance(spec, dict) else None
        if prop == "figure":
            return empty_figure(f"{text} — {fix}" if fix else text)
        if prop == "children":
            return message(text, fix)
        if prop == "data" and spec.get("id") in DRAWN_KEYS:
            return None
        return dash.no_update

    outputs = dash.ctx.outputs_list
    if isinstance(outputs, dict):
        return shown(outputs)
    if isinstance(outputs, list) and all(isinstance(o, dict) for o in outputs):
        return [shown(o) for o in outputs]
    return None  # pattern-matching outputs: dash keeps every value
