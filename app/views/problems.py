"""The run's problems: one panel above the views naming each (file, what is wrong, the fix).

Empty for a valid run. A run with errors still opens: each view that needs a damaged file
shows the message in its place (app/views/common.py), the others draw as usual.
"""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, html

from app import ids
from app.reader import StoreError, StoreReader
from pipeline.store import Problem


def layout() -> html.Div:
    return html.Div(id=ids.RUN_PROBLEMS)


def panel(problems: list[Problem]) -> dbc.Alert | None:
    """The errors of a run as one alert (warnings, read with defaults or casts, are left to `validate`)."""
    errors = [p for p in problems if p.error]
    if not errors:
        return None
    items = [
        html.Li(
            [html.Code(p.where), f": {p.what}", html.Div(f"Fix: {p.fix}", className="problem-fix") if p.fix else None]
        )
        for p in errors
    ]
    return dbc.Alert(
        [
            html.Strong(
                f"This run has {len(errors)} problem{'s' * (len(errors) > 1)}; views that need these files say so."
            ),
            html.Ul(items, className="mb-0"),
        ],
        color="danger",
        className="run-problems",
    )


def register(app: dash.Dash, reader: StoreReader) -> None:
    @app.callback(Output(ids.RUN_PROBLEMS, "children"), Input(ids.RUN, "data"), Input(ids.FIRST_VIEWS_DRAWN, "data"))
    def show(run, _after_first_views):  # once the first page is drawn (app.main.register_shell)
        if not run:
            return None
        try:
            return panel(reader.problems(run))
        except StoreError as exc:
            return panel([Problem(run, exc.problem, exc.fix)])
