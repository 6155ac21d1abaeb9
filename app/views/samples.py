"""View: the samples (R4), as the model saw them, with label, predictions and metrics."""

from __future__ import annotations

import base64

import dash
from dash import Input, Output, State, dcc, html

from app import ids
from app.reader import StoreError, StoreReader
from app.state import Combo, selected_ids
from app.views.common import card, labelled, message

HELP = (
    "The images of the selection (or, with none, of the class in focus) as the reference model saw them: "
    "label, predictions and metrics; sorted by how much they moved."
)
MAX_IMAGES = 48


def layout() -> html.Div:
    sort = labelled(
        "sort by",
        "Order of the images: by how far a metric moved between reference and compared, or by the reference margin",
        dcc.Dropdown(
            id=ids.SAMPLES_SORT,
            options=[
                {"label": "|Δ margin|", "value": "margin"},
                {"label": "|Δ angle|", "value": "angle"},
                {"label": "|Δ length|", "value": "length"},
                {"label": "margin (low first)", "value": "ref_margin"},
            ],
            value="margin",
            clearable=False,
            style={"width": "160px"},
        ),
    )
    return card(
        "Samples",
        HELP,
        [
            html.Div(id=ids.SAMPLES_COUNT, className="note"),
            dcc.Loading(html.Div(id=ids.SAMPLES_GRID, className="sample-grid"), type="dot"),
        ],
        [sort],
    )


def _metrics_line(row: tuple, suffix: str) -> str:
    angle, length, margin = (getattr(row, f"{k}{suffix}") for k in ("angle", "length", "margin"))
    return f"∠{angle:.0f}° ‖x‖{length:.1f} m{margin:+.2f}"


def register(app: dash.Dash, reader: StoreReader) -> None:
    @app.callback(
        Output(ids.SAMPLES_GRID, "children"),
        Output(ids.SAMPLES_COUNT, "children"),
        Input(ids.SELECTION, "data"),
        Input(ids.REFERENCE_DROPDOWN, "value"),
        Input(ids.COMPARED_DROPDOWN, "value"),
        Input(ids.CLASS_DROPDOWN, "value"),
        Input(ids.SAMPLES_SORT, "value"),
        State(ids.RUN, "data"),
    )
    def draw(selection, ref_key, cmp_key, focus, sort, run):
        ref, cmp = Combo.parse(ref_key), Combo.parse(cmp_key)
        if not run or ref is None:
            return [], "pick a reference combination"
        try:
            names = reader.meta(run)["class_names"]
            chosen = selected_ids(selection)
            a = reader.samples(run, ref.model_id, ref.corruption, ref.severity)
            a = a[a["sample_id"].isin(chosen)] if chosen else a[a["label"] == int(focus or 0)]
            if cmp is not None:
                b = reader.samples(run, cmp.model_id, cmp.corruption, cmp.severity)
                df = a.merge(
                    b[["sample_id", "pred", "correct", "angle", "length", "margin"]],
                    on="sample_id",
                    suffixes=("", "_cmp"),
                )
            else:
                df = a.copy()
            if cmp is not None and sort in ("margin", "angle", "length"):
                df = df.assign(_key=-(df[f"{sort}_cmp"] - df[sort]).abs()).sort_values("_key", kind="stable")
            else:
                df = df.sort_values("margin", kind="stable")
            total = len(df)
            shown = df.head(MAX_IMAGES)
            pngs, corrupted = reader.images(run, shown["sample_id"].tolist(), ref.corruption, ref.severity)
        except StoreError as exc:
            return message(exc.problem, exc.fix), ""
        cards = []
        for r in shown.itertuples(index=False):
            sid = int(r.sample_id)
            src = "data:image/png;base64," + base64.b64encode(pngs[sid]).decode() if sid in pngs else ""
            body = [
                html.Img(src=src, className="sample-img", title=f"sample {sid}"),
                html.Div(f"#{sid} · label {names[int(r.label)]}", className="caption"),
            ]
            if cmp is None:
                body.append(html.Div(f"ref: {names[int(r.pred)]}", className="ok" if r.correct else "bad"))
            else:
                body.append(
                    html.Div(
                        [
                            html.Span(f"ref: {names[int(r.pred)]}", className="ok" if r.correct else "bad"),
                            html.Span(f" cmp: {names[int(r.pred_cmp)]}", className="ok" if r.correct_cmp else "bad"),
                        ]
                    )
                )
            body.append(html.Div(_metrics_line(r, ""), className="metrics"))
            if cmp is not None:
                body.append(html.Div(_metrics_line(r, "_cmp"), className="metrics cmp"))
            cards.append(html.Div(body, className="sample-card"))
        what = "selected" if chosen else f"of class {names[int(focus or 0)]}"
        seen = (
            f" ({ref.evalset} images)"
            if corrupted
            else (" (clean images: the corrupted set is not cached in this run)" if ref.corruption != "clean" else "")
        )
        return cards, f"{min(total, MAX_IMAGES)} of {total} samples {what}{seen}"
