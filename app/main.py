"""Build the Dash app over a store: the page layout, the shared state, every view's callbacks."""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from html import escape as html_escape
from pathlib import Path
from typing import TypeVar

import dash
import dash_bootstrap_components as dbc
import flask
from dash import Input, Output, State, dcc, html

from app import background, guard, ids
from app.auth import Backoff, HashedBasicAuth
from app.reader import StoreError, StoreReader
from app.state import Combo, selected_ids
from app.views import (
    attribution,
    combinations,
    dimension,
    evaltable,
    export,
    global_,
    local,
    modelmap,
    pie,
    problems,
    robustness,
    samples,
    sensitivity,
    similarity,
    views,
)
from app.views.common import callback_error, message
from app.warmup import IdleImports, warm_on_first_request

REPO = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def create_app(
    store_dir: str | Path,
    run: str | None = None,
    cache_dir: str | Path | None = None,
    users: Mapping[str, str] | None = None,
    no_auth: bool = False,
    max_body: int | None = None,
    backoff: Backoff | None = None,
) -> dash.Dash:
    """The dashboard over `store_dir`, opening on `run` (default: the first run); with
    `users` ({user: password hash}) every request needs HTTP basic auth. Without users it serves
    only requests that come through a loopback listener, unless `no_auth` (an authenticating proxy
    in front). Request bodies over `max_body` bytes (default: app.guard's setting) are refused;
    failed logins back off by `backoff` (default: app.auth.Backoff())."""
    cache_dir = Path(cache_dir) if cache_dir is not None else REPO / "cache" / "diskcache"
    reader = StoreReader(store_dir, cache_dir)
    runs = reader.runs()
    start = run if run in runs else (runs[0] if runs else None)
    app = PruneScopeDash(
        __name__,
        title="PruneScope",
        assets_folder=str(REPO / "assets"),  # Bootstrap's CSS is served from assets/: no CDN, no internet
        background_callback_manager=background.manager(cache_dir),
        on_error=callback_error,  # a failing callback shows its message in its view, never a 500
    )
    # the similarity map's MDS, once the first page is served (benchmarks wait on its `done`)
    app.server.extensions["prunescope.idle_imports"] = IdleImports(app.server, ["sklearn.manifold"])
    auth = HashedBasicAuth(app, users, backoff) if users else None
    page = Page(reader, runs, start, str(store_dir))
    app.layout = page()

    @app.server.before_request
    def open_fresh() -> None:
        """Each page load gets the page of the run as it is now (Page). A plain layout for Dash, not a
        function: Dash would also embed a function's whole layout in every index page, to check callbacks."""
        if flask.request.path.endswith("/_dash-layout"):
            app.layout = page()

    for view in views():
        view.register(app, reader)
    register_shell(app)
    guard.install(app, auth, no_auth=no_auth, max_body=max_body, class_count=lambda r: _class_count(reader, r))
    if start is not None:  # after the guard: a refused request warms nothing (app.warmup)
        app.server.extensions["prunescope.warm"] = warm_on_first_request(
            app.server, lambda: evaltable.warm(reader, start)
        )
    gc.freeze()  # what lives as long as the app (modules, layout, callbacks) leaves the collector's full passes:
    return app  # a full pass in a callback was about 100 ms on one worker at 10 M rows


# Dash's own copy (deps/polyfill@…) or, with serve_locally=False, unpkg's (@babel/polyfill@…)
POLYFILL = re.compile(r'<script src="[^"]*(?:/deps/|/@babel/)polyfill@[^"]*"></script>\s*')
# assets/plotly-bundle.min.js as Dash lists it among the page's scripts (its /assets/ URL and ?m= stamp)
PLOTLY_BUNDLE = re.compile(r'<script src="(?P<url>[^"]*/plotly-bundle\.min\.js(?:\?[^"]*)?)"></script>\s*')
# dcc.Graph loads plotly.js from window._dashPlotlyJSURL when window.Plotly is not there yet; dash-renderer
# points it at plotly.py's full plotly.js, so the page pins it to the bundle (a setter that keeps it)
PLOTLY_URL = (
    '<script>Object.defineProperty(window, "_dashPlotlyJSURL", {{get: () => {url}, set: () => {{}}}});</script>'
)


class PruneScopeDash(dash.Dash):
    """Dash whose index page does not wait for code its first drawing does not need.

    - Dash's @babel/polyfill (core-js 2 for old browsers: 0.2 s of each first page on 2 cores) is left
      out. The part Dash's scripts use, regeneratorRuntime, is assets/regenerator-runtime.js
      (scripts/vendor_regenerator_runtime.sh), which every page loads.
    - plotly.js (assets/plotly-bundle.min.js) is fetched at once (a preload) but run when the first
      graph asks for it, through dcc.Graph's own loader: run with the page's scripts, it held the
      renderer's start, the layout and every callback request by its 0.24 s of evaluation; run then,
      it fills the wait for the first views' answers. assets/plotly-setup.js sets it up on arrival.
    """

    def interpolate_index(self, **kwargs: str) -> str:
        scripts = POLYFILL.sub("", kwargs.get("scripts", ""))
        bundle = PLOTLY_BUNDLE.search(scripts)
        if bundle is not None:
            url = bundle["url"]
            scripts = PLOTLY_URL.format(url=json.dumps(url).replace("<", "\\u003c")) + scripts.replace(
                bundle.group(0), ""
            )
            preload = f'<link rel="preload" as="script" href="{html_escape(url)}">'
            kwargs["metas"] = kwargs.get("metas", "") + preload
        kwargs["scripts"] = scripts
        return super().interpolate_index(**kwargs)


def _class_count(reader: StoreReader, run: str) -> int | None:
    """How many classes `run` has (None when it cannot be read: the views show the store's message)."""
    try:
        return len(reader.meta(run)["class_names"])
    except (StoreError, KeyError, TypeError):
        return None


class Page:
    """The page as it opens on `run` now (create_app sets it for each page load): a run resumed or rewritten
    since the app started opens with its current combinations, class ranking and attribution methods.
    Built again only for another version of the run (StoreReader.version): at 1000 classes, building it
    cost 20–30 ms of each page load, before the page could ask for any view."""

    def __init__(self, reader: StoreReader, runs: list[str], run: str | None, store_dir: str) -> None:
        self.reader, self.runs, self.run, self.store_dir = reader, runs, run, store_dir
        self.built: tuple[str | None, html.Div] | None = None  # (the run version it shows, the page)

    def __call__(self) -> html.Div:
        built = self.built
        try:
            version = self.reader.version(self.run) if self.run else ""
        except StoreError:
            version = None
        if built is not None and version is not None and built[0] == version:
            return built[1]
        first = first_page(self.reader, self.run)
        page = layout(self.runs, self.run, self.store_dir, first)
        self.built = (version, page) if first.complete else None  # a part the store failed to give: try again
        return page


def first_page(reader: StoreReader, run: str | None) -> FirstPage:
    """What the controls open with on `run`, each part as its callback would answer it; a part the store
    cannot give opens empty, as from its callback, and the views that read it show the store's message."""
    if run is None:
        return FirstPage()
    failed: list[StoreError] = []

    def part(default: T, make: Callable[[], T]) -> T:
        try:
            return make()
        except StoreError as exc:
            failed.append(exc)
            return default

    initial = part(None, lambda: combinations.default_combo(reader, run))
    return FirstPage(
        initial,
        part(None, lambda: combinations.combo_options(combinations.run_combos(reader, run), initial)),
        part([], lambda: local.first_classes(reader, run, initial)),
        part(([], None), lambda: samples.method_options(reader, run)),
        complete=not failed,
    )


@dataclass(frozen=True)
class FirstPage:
    """What the page's controls open with on its run, as their callbacks would answer it: the views
    that depend on them are asked for at once, with the evaluation table, not one answer later."""

    initial: Combo | None = None  # the reference combination (combinations.default_combo)
    options: list[dict] | None = None  # the combinations' dropdown options
    classes: list[dict] | None = None  # the class list (local.first_classes)
    methods: tuple[list[dict], str | None] = field(default_factory=lambda: ([], None))  # the gallery's, and the first
    complete: bool = True  # every part read (else some opened empty)


def layout(runs: list[str], run: str | None, store_dir: str, first: FirstPage | None = None) -> html.Div:
    """The page; `first` (first_page) presets the controls so every view draws at once."""
    first = first or FirstPage()
    header = dbc.Navbar(
        dbc.Container(
            [
                html.Span(
                    [html.B("PruneScope"), html.Span(" what did pruning do to my network?", className="tagline")],
                    className="brand",
                ),
                html.Div(
                    [
                        html.Label(
                            "run",
                            title="A run of the store: one data set, its models and evaluation sets",
                            className="control-label",
                        ),
                        dcc.Dropdown(
                            id=ids.RUN_DROPDOWN, options=runs, value=run, clearable=False, style={"width": "180px"}
                        ),
                        html.Span(
                            id=ids.SELECTION_BADGE,
                            className="selection-badge",
                            title="Samples selected by brushing in the local or global geometry view; "
                            "every view follows it",
                        ),
                        dbc.Button(
                            "clear selection", id=ids.CLEAR_SELECTION, size="sm", color="secondary", outline=True
                        ),
                        export.layout() if run is not None else None,
                    ],
                    className="navbar-controls",
                ),
            ],
            fluid=True,
        ),
        color="light",
        className="mb-2 shadow-sm",
        sticky="top",
    )
    stores = [
        dcc.Store(id=ids.RUN, data=run),
        dcc.Store(id=ids.COMBINATIONS, data=[first.initial.key] if first.initial else []),
        dcc.Store(id=ids.SELECTION, data=None),
        dcc.Store(id=ids.MODEL_HIGHLIGHT, data=None),
        dcc.Store(id=ids.FIRST_VIEWS_DRAWN, data=False),
    ]
    if run is None:
        body = [
            message(
                f"the store {store_dir} has no runs yet",
                "build one: python -m pipeline run configs/demo.toml (or start python app.py, which builds the demo)",
            )
        ]
        return html.Div([header, dbc.Container(body, fluid=True), *stores, _hidden_controls()])
    body = [
        problems.layout(),
        dbc.Row(
            [dbc.Col(evaltable.layout(), lg=8), dbc.Col(combinations.layout(first.initial, first.options), lg=4)],
            className="g-2",
        ),
        view_tabs(
            [
                dbc.Row([dbc.Col(local.layout(first.classes), lg=12)], className="g-2"),
                dbc.Row(
                    [dbc.Col(global_.layout(), lg=7), dbc.Col(samples.layout(first.methods), lg=5)], className="g-2"
                ),
                robustness.layout(),
                dbc.Row([dbc.Col(dimension.layout(), lg=12)], className="g-2 mt-1"),
            ],
            [
                dbc.Row([dbc.Col(modelmap.layout(), lg=7), dbc.Col(similarity.layout(), lg=5)], className="g-2"),
                dbc.Row([dbc.Col(sensitivity.layout(), lg=7), dbc.Col(pie.layout(), lg=5)], className="g-2 mt-1"),
                dbc.Row([dbc.Col(attribution.layout(), lg=12)], className="g-2 mt-1"),
            ],
        ),
    ]
    return html.Div([header, dbc.Container(body, fluid=True), *stores])


def view_tabs(paper: list, models: list) -> dbc.Tabs:
    """The views below the evaluation table, in two tabs: the paper's views (shown first) and the
    model-level views, whose callbacks draw only while their tab is shown (issue 14: a page load draws
    the paper's views alone). Both panes stay mounted; a hidden one is display: none."""
    return dbc.Tabs(
        [
            dbc.Tab(paper, label="geometry and robustness", tab_id=ids.TAB_PAPER, id=ids.TAB_PAPER),
            dbc.Tab(models, label="models", tab_id=ids.TAB_MODELS, id=ids.TAB_MODELS),
        ],
        id=ids.VIEW_TABS,
        active_tab=ids.TAB_PAPER,
        className="view-tabs mt-1 mb-2",
    )


def _hidden_controls() -> html.Div:
    """The views' components, hidden, so that every callback has its inputs on an empty store."""
    return html.Div([view_tabs([v.layout() for v in views()], [])], style={"display": "none"})


# What the first page's views answer once each (the table: its first answer, ids.TABLE_ANSWERED)
FIRST_VIEWS = (
    (ids.TABLE_ANSWERED, "data"),
    (ids.LOCAL_GRAPH, "figure"),
    (ids.GLOBAL_GRAPH, "figure"),
    (ids.SAMPLES_HTML, "data"),
    (ids.ROBUST_MARGIN, "figure"),
    (ids.ROBUST_SWEETSPOT, "figure"),
)
IDLE_WAIT_MS = 2000  # the longest the run-wide views wait for an idle browser (< app.warmup.QUIET_S)
# Dash runs it once every first view has answered (an input that another callback is computing holds it);
# it answers when the browser has drawn them (requestIdleCallback: idle, or after IDLE_WAIT_MS), then never again
FIRST_VIEWS_DRAWN_JS = f"""function () {{
    if (arguments[arguments.length - 1]) return window.dash_clientside.no_update;
    const idle = window.requestIdleCallback || ((then) => window.setTimeout(then, 200));
    return new Promise((resolve) => idle(() => resolve(true), {{timeout: {IDLE_WAIT_MS}}}));
}}"""


def register_shell(app: dash.Dash) -> None:
    # The run-wide views (the problems panel, Table 1, the dimension view) wait for this: beside the first
    # views their server work held those up (threads share one interpreter) and the drawing shared 2 cores
    app.clientside_callback(
        FIRST_VIEWS_DRAWN_JS,
        Output(ids.FIRST_VIEWS_DRAWN, "data"),
        *(Input(component, prop) for component, prop in FIRST_VIEWS),
        State(ids.FIRST_VIEWS_DRAWN, "data"),
    )

    @app.callback(Output(ids.RUN, "data"), Input(ids.RUN_DROPDOWN, "value"), prevent_initial_call=True)
    def choose_run(value):
        return value

    @app.callback(Output(ids.SELECTION_BADGE, "children"), Input(ids.SELECTION, "data"))
    def badge(selection):
        chosen = selected_ids(selection)
        return "no selection" if not chosen else f"{len(chosen)} samples selected ({selection.get('source')})"

    @app.callback(
        Output(ids.SELECTION, "data", allow_duplicate=True),
        Input(ids.CLEAR_SELECTION, "n_clicks"),
        prevent_initial_call=True,
    )
    def clear(_):
        return None
