"""View: the samples (R4), as the model saw them, with label, predictions and metrics; where the
run has attribution maps of a sample, the reference's and the compared model's side by side over it."""

from __future__ import annotations

import base64
import html as html_text
import json
import math

import dash
import numpy as np
import pandas as pd
from dash import Input, Output, State, dcc, html

from app import ids
from app.figures.attribution import method_label, overlay_png
from app.reader import StoreError, StoreReader
from app.snapshot import Context, Part, section, to_html
from app.state import Combo, selected_ids
from app.views.common import card, element, labelled, message
from pipeline import store

HELP = (
    "The images of the selection (or, with none, of the class in focus) as the reference model saw them: "
    "label, predictions and metrics; sorted by how much they moved. Where the run has attribution maps of a "
    "sample (the same samples for every model), the reference's (left) and the compared model's (right) map over "
    "the image, vermillion for evidence for the class, blue against; ρ and IoU compare the two."
)
MAX_IMAGES = 48  # cards shown at once
SNAPSHOT_IMAGES = (
    3_000_000  # bytes of PNGs a snapshot embeds: the class in focus first, then the samples that moved most
)
SNAPSHOT_CANDIDATES = 5000  # samples a snapshot considers for an image, before the byte budget
SORTS = {
    "margin": "|Δ margin|",
    "angle": "|Δ angle|",
    "length": "|Δ length|",
    "ref_margin": "margin (low first)",
    "map_drift": "map drift (low ρ first)",
}
NO_MAPS = "no attributions in this run"


def layout(methods: tuple[list[dict], str | None] | None = None) -> html.Div:
    """The view; `methods` (method_options) the attribution methods the page opens with, and the first."""
    options, first = methods or ([], None)
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
    method = labelled(
        "maps",
        "The attribution method whose maps the cards show (the run's [attribution] methods)",
        dcc.Dropdown(
            id=ids.SAMPLES_ATTR_METHOD,
            options=options,
            value=first,
            placeholder=NO_MAPS,
            style={"width": "170px"},
        ),
    )
    return card(
        "Samples",
        HELP,
        [
            html.Div(id=ids.SAMPLES_COUNT, className="note"),
            dcc.Loading(
                [
                    html.Div(  # focusable, so that the arrow keys scroll the gallery
                        id=ids.SAMPLES_GRID,
                        className="sample-grid",
                        tabIndex="0",
                        role="region",
                        **{"aria-label": "Samples gallery: the arrow keys scroll it"},
                    ),
                    dcc.Store(id=ids.SAMPLES_HTML),
                ],
                type="dot",
            ),
        ],
        [sort, method],
    )


def rows(
    reader: StoreReader,
    run: str,
    ref: Combo,
    cmp: Combo | None,
    sort: str,
    maps: "Maps | None" = None,
    chosen: set[int] | None = None,
    label: int | None = None,
) -> pd.DataFrame:
    """One row per sample with the reference's (and the compared model's, suffix _cmp) prediction
    and metrics, in the order of `sort` (with no compared model: reference margin, low first);
    with `maps`, the samples that have maps come first (by map drift, low ρ first, for that sort).
    Only the `chosen` samples, or only those of class `label`, when given: the gallery shows a
    few dozen of them, so they are picked before the two sets are aligned and sorted."""
    cols = ["sample_id", "label", "pred", "correct", "angle", "length", "margin"]
    a = reader.samples(run, ref.model_id, ref.corruption, ref.severity)
    keep = a["sample_id"].isin(chosen) if chosen else (a["label"] == label if label is not None else None)
    df = a.loc[keep, cols] if keep is not None else a[cols]
    if cmp is not None:  # both sorted by sample id (StoreReader.samples): aligned by position, not a merge
        b = reader.samples(run, cmp.model_id, cmp.corruption, cmp.severity)
        _, mine, theirs = np.intersect1d(
            df["sample_id"].to_numpy(), b["sample_id"].to_numpy(), assume_unique=True, return_indices=True
        )
        df = pd.DataFrame(
            {c: df[c].to_numpy()[mine] for c in cols} | {f"{c}_cmp": b[c].to_numpy()[theirs] for c in cols[2:]}
        )
    if cmp is not None and sort in ("margin", "angle", "length"):
        key = -np.abs(df[f"{sort}_cmp"].to_numpy() - df[sort].to_numpy())  # in the stored precision: same ties
    else:
        key = df["margin"].to_numpy()
    df = df.iloc[np.argsort(key, kind="stable")]
    if maps is not None and maps.ids:
        rho = df["sample_id"].map(lambda s: maps.drift.get(int(s), (np.nan,))[0])
        first = df["sample_id"].isin(maps.ids)
        df = df.assign(_key=np.where(first, rho.fillna(2.0) if sort == "map_drift" else -1.0, np.inf))
        df = df.sort_values("_key", kind="stable").drop(columns="_key")
    return df


class Maps:
    """One attribution method's maps of the reference and the compared model, as overlay PNGs,
    with their drift (Spearman ρ, top-10 % IoU) per sample."""

    def __init__(self, reader: StoreReader, run: str, ref: Combo, cmp: Combo | None, method: str) -> None:
        self.method = method
        self.ref = reader.attribution_maps(run, ref.model_id, method, ref.corruption, ref.severity)
        self.cmp = reader.attribution_maps(run, cmp.model_id, method, cmp.corruption, cmp.severity) if cmp else None
        self.ids = set(int(i) for i in self.ref["sample_id"])
        self.clean_only = ref.corruption != store.CLEAN and set(self.ref["corruption"]) == {store.CLEAN}
        self.drift: dict[int, tuple[float, float]] = {}
        if self.cmp is not None and not self.cmp.empty:
            both = self.ref.merge(self.cmp, on="sample_id", suffixes=("", "_cmp"))
            if not both.empty:
                rho, iou = store.map_drift(
                    np.stack([m.ravel() for m in both["map"]]), np.stack([m.ravel() for m in both["map_cmp"]])
                )
                self.drift = {int(s): (float(r), float(i)) for s, r, i in zip(both["sample_id"], rho, iou)}

    def panel(self, sid: int, png: bytes | None) -> dict | None:
        """The sample's two maps over its image, or None when it has none."""
        if sid not in self.ids:
            return None
        imgs = []
        for who, df in (("ref", self.ref), ("cmp", self.cmp)):
            if df is None:
                continue
            hit = df[df["sample_id"] == sid]
            if hit.empty:
                imgs.append(element("Div", "no map", className="map-img noimg"))
                continue
            src = "data:image/png;base64," + base64.b64encode(overlay_png(png, hit["map"].iloc[0])).decode()
            imgs.append(element("Img", src=src, className="map-img", title=f"{who}: {method_label(self.method)}"))
        rho, iou = self.drift.get(sid, (np.nan, np.nan))
        drift = f" ρ {_number(rho, 2)} · IoU {_number(iou, 2)}" if self.cmp is not None else ""
        note = method_label(self.method) + drift
        return element(
            "Div",
            [element("Div", imgs, className="map-pair"), element("Div", note, className="metrics")],
            className="maps",
        )


def _number(value: float, digits: int, sign: bool = False) -> str:
    """A metric for a card; a missing one (a zero feature vector has no angle) as a dash."""
    if value is None or math.isnan(value):
        return "–"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _metrics(row: tuple, suffix: str) -> str:
    angle, length, margin = (getattr(row, f"{k}{suffix}") for k in ("angle", "length", "margin"))
    return f"∠{_number(angle, 0)}° ‖x‖{_number(length, 1)} m{_number(margin, 2, sign=True)}"


def sample_card(
    row: tuple, names: list[str], compared: bool, png: bytes | None, maps: list[dict] | None = None
) -> dict:
    """One sample: its image (or a placeholder), label, predictions (wrong ones marked) and metrics,
    then its attribution `maps` panels (Maps.panel) when it has any."""
    sid = int(row.sample_id)
    image = (
        element(
            "Img",
            src="data:image/png;base64," + base64.b64encode(png).decode(),
            className="sample-img",
            title=f"sample {sid}",
        )
        if png is not None
        else element("Div", "image not embedded", className="sample-img noimg")
    )
    preds = [element("Span", f"ref: {names[int(row.pred)]}", className="ok" if row.correct else "bad")]
    metrics = [element("Div", _metrics(row, ""), className="metrics")]
    if compared:
        preds.append(element("Span", f" cmp: {names[int(row.pred_cmp)]}", className="ok" if row.correct_cmp else "bad"))
        metrics.append(element("Div", _metrics(row, "_cmp"), className="metrics cmp"))
    caption = element("Div", f"#{sid} · label {names[int(row.label)]}", className="caption")
    return element(
        "Div",
        [image, caption, element("Div", preds), *metrics, *(maps or [])],
        className="sample-card",
        **{"data-sample-id": sid},
    )


def _seen(ref: Combo, corrupted: bool) -> str:
    if corrupted:
        return f" ({ref.evalset} images)"
    return " (clean images: the corrupted set is not cached in this run)" if ref.corruption != "clean" else ""


def method_options(reader: StoreReader, run: str | None) -> tuple[list[dict], str | None]:
    """The run's attribution methods as dropdown options, and the first as the value."""
    methods = reader.attribution_methods(run) if run else []
    return [{"label": method_label(m), "value": m} for m in methods], (methods[0] if methods else None)


def _card(r: tuple, names: list[str], cmp: Combo | None, png: bytes | None, maps: list["Maps"]) -> dict:
    panels = [m.panel(int(r.sample_id), png) for m in maps]
    return sample_card(r, names, cmp is not None, png, [p for p in panels if p is not None])


def register(app: dash.Dash, reader: StoreReader) -> None:
    @app.callback(
        Output(ids.SAMPLES_ATTR_METHOD, "options"),
        Output(ids.SAMPLES_ATTR_METHOD, "value"),
        Input(ids.RUN, "data"),
        prevent_initial_call=True,  # the page opens with the run's (app.main.first_page): the gallery asks at once
    )
    def methods(run):
        try:
            return method_options(reader, run)
        except StoreError:
            return [], None

    app.clientside_callback(  # the cards' HTML into the grid as it is: one DOM update (its length: an output)
        f"""function (markup) {{
            const grid = document.getElementById({json.dumps(ids.SAMPLES_GRID)});
            if (grid) grid.innerHTML = markup || "";
            return (markup || "").length;
        }}""",
        Output(ids.SAMPLES_GRID, "data-cards"),
        Input(ids.SAMPLES_HTML, "data"),
    )

    @app.callback(
        Output(ids.SAMPLES_HTML, "data"),
        Output(ids.SAMPLES_COUNT, "children"),
        Input(ids.SELECTION, "data"),
        Input(ids.REFERENCE_DROPDOWN, "value"),
        Input(ids.COMPARED_DROPDOWN, "value"),
        Input(ids.CLASS_DROPDOWN, "value"),
        Input(ids.SAMPLES_SORT, "value"),
        Input(ids.SAMPLES_ATTR_METHOD, "value"),
        State(ids.RUN, "data"),
    )
    def draw(selection, ref_key, cmp_key, focus, sort, method, run):
        """The cards as HTML (the snapshot's markup, escaped by to_html): the browser puts them into the grid
        as they are. As Dash components, the renderer made and then watched about 300 components for 48
        cards, which at 100 M rows cost the first page about 0.6 s and every later answer its share."""
        ref, cmp = Combo.parse(ref_key), Combo.parse(cmp_key)
        if not run or ref is None:
            return "", "pick a reference combination"
        try:
            names = reader.meta(run)["class_names"]
            chosen = selected_ids(selection)
            maps = Maps(reader, run, ref, cmp, method) if method in reader.attribution_methods(run) else None
            df = rows(reader, run, ref, cmp, sort, maps, chosen, None if chosen else int(focus or 0))
            shown = df.head(MAX_IMAGES)
            pngs, corrupted = reader.images(run, shown["sample_id"].tolist(), ref.corruption, ref.severity)
        except StoreError as exc:
            return to_html(message(exc.problem, exc.fix)), ""
        cards = [_card(r, names, cmp, pngs.get(int(r.sample_id)), [maps] if maps else []) for r in shown.itertuples()]
        what = "selected" if chosen else f"of class {names[int(focus or 0)]}"
        mapped = ""
        if maps:
            mapped = f"; {len(set(shown['sample_id']) & maps.ids)} with maps"
            mapped += " (of the clean images: the run maps no corrupted set)" if maps.clean_only else ""
        return to_html(cards), f"{len(shown)} of {len(df)} samples {what}{mapped}{_seen(ref, corrupted)}"


def snapshot(ctx: Context) -> Part:
    """Every sample's card, most moved first; images (and the attribution maps of every method) for
    the samples with maps first, then the class in focus, then the samples that moved most, within a
    byte budget. The script shows the cards of the selection."""
    maps = [Maps(ctx.reader, ctx.run, ctx.ref, ctx.cmp, m) for m in ctx.reader.attribution_methods(ctx.run)]
    df = rows(ctx.reader, ctx.run, ctx.ref, ctx.cmp, "margin", maps[0] if maps else None)
    mapped = df["sample_id"].isin(set().union(*(m.ids for m in maps)))
    first = pd.concat([df[mapped], df[~mapped & (df["label"] == ctx.focus)], df[~mapped & (df["label"] != ctx.focus)]])
    candidates = first["sample_id"].head(SNAPSHOT_CANDIDATES).tolist()
    pngs, corrupted = ctx.reader.images(ctx.run, candidates, ctx.ref.corruption, ctx.ref.severity)
    budget, embedded = SNAPSHOT_IMAGES, {}
    for sid in candidates:
        png = pngs.get(int(sid))
        if png is not None and len(png) <= budget:
            budget -= len(png)
            embedded[int(sid)] = png
    cards = {
        int(r.sample_id): to_html(
            _card(r, ctx.names, ctx.cmp, embedded.get(int(r.sample_id)), maps if int(r.sample_id) in embedded else [])
        )
        for r in df.itertuples()
    }
    with_maps = sum(1 for sid in embedded if any(sid in m.ids for m in maps))
    note = f"{len(embedded)} of {len(df)} sample images embedded{_seen(ctx.ref, corrupted)}" + (
        f", {with_maps} with their attribution maps ({', '.join(method_label(m.method) for m in maps)})" if maps else ""
    )
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
