"""View: the samples (R4), as the model saw them, with label, predictions and metrics."""

from __future__ import annotations

import base64
import html as html_text
import math

import dash
import pandas as pd
from dash import Input, Output, State, dcc, html

from app import ids
from app.reader import StoreError, StoreReader
from app.snapshot import Context, Part, section, to_html
from app.state import Combo, selected_ids
from app.views.common import card, labelled, message

HELP = (
    "The images of the selection (or, with none, of the class in focus) as the reference model saw them: "
    "label, predictions and metrics; sorted by how much they moved."
)
MAX_IMAGES = 48  # cards shown at once
SNAPSHOT_IMAGES = (
    3_000_000  # bytes of PNGs a snapshot embeds: the class in focus first, then the samples that moved most
)
SNAPSHOT_CANDIDATES = 5000  # samples a snapshot considers for an image, before the byte budget
SORTS = {"margin": "|Δ margin|", "angle": "|Δ angle|", "length": "|Δ length|", "ref_margin": "margin (low first)"}


def layout() -> html.Div:
    sort = labelled(
        "sort by",
        "Order of the images: by how far a metric moved between reference and compared, or by the reference margin",
        dcc.Dropdown(
            id=ids.SAMPLES_SORT,
            options=[{"label": v, "value": k} for k, v in SORTS.items()],
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


def rows(reader: StoreReader, run: str, ref: Combo, cmp: Combo | None, sort: str) -> pd.DataFrame:
    """One row per sample with the reference's (and the compared model's, suffix _cmp) prediction
    and metrics, in the order of `sort` (with no compared model: reference margin, low first)."""
    cols = ["sample_id", "label", "pred", "correct", "angle", "length", "margin"]
    df = reader.samples(run, ref.model_id, ref.corruption, ref.severity)[cols]
    if cmp is not None:
        b = reader.samples(run, cmp.model_id, cmp.corruption, cmp.severity)
        df = df.merge(b[cols[:1] + cols[2:]], on="sample_id", suffixes=("", "_cmp"))
    if cmp is not None and sort in ("margin", "angle", "length"):
        return (
            df.assign(_key=-(df[f"{sort}_cmp"] - df[sort]).abs())
            .sort_values("_key", kind="stable")
            .drop(columns="_key")
        )
    return df.sort_values("margin", kind="stable")


def _number(value: float, digits: int, sign: bool = False) -> str:
    """A metric for a card; a missing one (a zero feature vector has no angle) as a dash."""
    if value is None or math.isnan(value):
        return "–"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _metrics(row: tuple, suffix: str) -> str:
    angle, length, margin = (getattr(row, f"{k}{suffix}") for k in ("angle", "length", "margin"))
    return f"∠{_number(angle, 0)}° ‖x‖{_number(length, 1)} m{_number(margin, 2, sign=True)}"


def sample_card(row: tuple, names: list[str], compared: bool, png: bytes | None) -> html.Div:
    """One sample: its image (or a placeholder), label, predictions (wrong ones marked) and metrics."""
    sid = int(row.sample_id)
    image = (
        html.Img(
            src="data:image/png;base64," + base64.b64encode(png).decode(), className="sample-img", title=f"sample {sid}"
        )
        if png is not None
        else html.Div("image not embedded", className="sample-img noimg")
    )
    preds = [html.Span(f"ref: {names[int(row.pred)]}", className="ok" if row.correct else "bad")]
    metrics = [html.Div(_metrics(row, ""), className="metrics")]
    if compared:
        preds.append(html.Span(f" cmp: {names[int(row.pred_cmp)]}", className="ok" if row.correct_cmp else "bad"))
        metrics.append(html.Div(_metrics(row, "_cmp"), className="metrics cmp"))
    caption = html.Div(f"#{sid} · label {names[int(row.label)]}", className="caption")
    return html.Div([image, caption, html.Div(preds), *metrics], className="sample-card", **{"data-sample-id": sid})


def _seen(ref: Combo, corrupted: bool) -> str:
    if corrupted:
        return f" ({ref.evalset} images)"
    return " (clean images: the corrupted set is not cached in this run)" if ref.corruption != "clean" else ""


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
            df = rows(reader, run, ref, cmp, sort)
            df = df[df["sample_id"].isin(chosen)] if chosen else df[df["label"] == int(focus or 0)]
            shown = df.head(MAX_IMAGES)
            pngs, corrupted = reader.images(run, shown["sample_id"].tolist(), ref.corruption, ref.severity)
        except StoreError as exc:
            return message(exc.problem, exc.fix), ""
        cards = [sample_card(r, names, cmp is not None, pngs.get(int(r.sample_id))) for r in shown.itertuples()]
        what = "selected" if chosen else f"of class {names[int(focus or 0)]}"
        return cards, f"{len(shown)} of {len(df)} samples {what}{_seen(ref, corrupted)}"


def snapshot(ctx: Context) -> Part:
    """Every sample's card, most moved first; images for the class in focus first, then the
    samples that moved most, within a byte budget. The script shows the cards of the selection."""
    df = rows(ctx.reader, ctx.run, ctx.ref, ctx.cmp, "margin")
    first = pd.concat([df[df["label"] == ctx.focus], df[df["label"] != ctx.focus]])
    candidates = first["sample_id"].head(SNAPSHOT_CANDIDATES).tolist()
    pngs, corrupted = ctx.reader.images(ctx.run, candidates, ctx.ref.corruption, ctx.ref.severity)
    budget, embedded = SNAPSHOT_IMAGES, {}
    for sid in candidates:
        png = pngs.get(int(sid))
        if png is not None and len(png) <= budget:
            budget -= len(png)
            embedded[int(sid)] = png
    cards = {
        int(r.sample_id): to_html(sample_card(r, ctx.names, ctx.cmp is not None, embedded.get(int(r.sample_id))))
        for r in df.itertuples()
    }
    note = f"{len(embedded)} of {len(df)} sample images embedded{_seen(ctx.ref, corrupted)}"
    body = (
        '<div id="samples-count" class="note"></div><div id="samples-grid" class="sample-grid"></div>'
        f'<div class="note">{html_text.escape(note)}</div>'
    )
    data = {
        "order": [[sid, int(label)] for sid, label in zip(df["sample_id"], df["label"])],
        "cards": cards,
        "max": MAX_IMAGES,
        "focus": ctx.focus,
        "focusName": ctx.names[ctx.focus],
    }
    return Part(section("Samples", HELP, body, "right"), data=data)
