"""View: the curse of dimensionality (the paper's Fig. 3). The angles of the run's models
(untrained, dense, pruned) to their class directions against random vectors of the same dimension."""

from __future__ import annotations

import dash
from dash import Input, Output, html

from app import ids
from app.figures.dimension import angle_dimension
from app.figures.local import empty_figure
from app.reader import StoreError, StoreReader
from app.snapshot import Context, Part, fig, section
from app.views.common import card, graph

HELP = (
    "Fig. 3 of the paper: in high dimensions two random vectors are almost orthogonal (mean 90°, "
    "spread shrinking as the dimension grows). Left: that curve, with the run's models pooled by kind "
    "(untrained, dense, pruned) at the width of their last feature layer: the angle of the clean samples to "
    "their own class direction (filled) and to the other classes' (hollow). Right: every model's angle to its "
    "own class direction over its sparsity, against the random-vector band. An untrained model sits on the "
    "band; training pulls samples toward their class direction. Add an untrained model with [train] epochs = 0."
)


def layout() -> html.Div:
    return card(
        "Angles and the curse of dimensionality (Fig. 3)",
        HELP,
        [graph(ids.DIM_GRAPH, 420, {"displayModeBar": False})],
    )


def register(app: dash.Dash, reader: StoreReader) -> None:
    @app.callback(Output(ids.DIM_GRAPH, "figure"), Input(ids.RUN, "data"), Input(ids.FIRST_VIEWS_DRAWN, "data"))
    def draw(run, _after_first_views):
        if not run:
            return empty_figure("no run")
        try:
            return angle_dimension(reader.angle_summary(run))
        except StoreError as exc:
            return empty_figure(f"{exc.problem} — {exc.fix}")


def snapshot(ctx: Context) -> Part:
    """Fig. 3 as in the dashboard."""
    try:
        figure = angle_dimension(ctx.reader.angle_summary(ctx.run))
    except StoreError as exc:  # as the view: the card says what is missing, the rest of the snapshot stands
        figure = empty_figure(f"{exc.problem} — {exc.fix}")
    return Part(
        section("Angles and the curse of dimensionality (Fig. 3)", HELP, fig("dimension")), {"dimension": figure}
    )
