"""View: the selected combinations (model × evaluation set), and the reference / compared choice."""

from __future__ import annotations

import dash
import numpy as np
import pandas as pd
from dash import Input, Output, State, dcc, html

from app import ids
from app.reader import StoreError, StoreReader
from app.snapshot import Context, Part, section, to_html
from app.state import Combo
from app.views import sensitivity
from app.views.common import card, element, labelled, message, radios
from pipeline.store.methods import facts

HELP = (
    "The reference every view shows and one to compare with it. Each dropdown lists up to 60 combinations "
    "near the other one (its model on other evaluation sets, other models on its set); typing searches every "
    "model × evaluation-set combination of the run (e.g. 'magnitude fog s3'). A click on a bar "
    "of the evaluation table (or a model of the model map, the similarity map or accuracy vs sparsity) "
    "sets the one chosen under 'a click sets'. Below: the combinations picked so far, with their details."
)
HELP_SNAPSHOT = "The reference (grey) and compared (yellow) combinations of this snapshot, with their details"
# dcc.Dropdown indexes every substring of each option's value and label when its options change (the
# 295 combinations next to a reference at 200 models × 96 sets: 0.23 s of the page's main thread, at
# each page load and each new reference), so a dropdown lists this many before anything is typed
LISTED = 60
MAX_OPTIONS = 300  # options a search lists at most (typing searches every combination)
CLICK_TARGETS = {"compared": "compared", "reference": "reference"}
# the graphs whose click picks a combination (customdata: [model, corruption, severity] or a model id)
CLICKABLE = (ids.EVAL_TABLE, ids.ROBUST_SWEETSPOT, ids.MODELMAP_GRAPH, ids.SIMILARITY_GRAPH)


def layout(initial: Combo | None = None, options: list[dict] | None = None) -> html.Div:
    """With `initial`, the reference starts set, so the views draw in the page's first round;
    `options` are the dropdowns' first options (every combination next to the reference)."""
    ref = labelled(
        "reference",
        "The combination every view shows (grey)",
        dcc.Dropdown(
            id=ids.REFERENCE_DROPDOWN,
            clearable=False,
            options=options or [],
            value=initial.key if initial else None,
            optionHeight=40,
        ),
    )
    cmp = labelled(
        "compared",
        "A second combination to compare with the reference (yellow); clear it for single-model views",
        dcc.Dropdown(
            id=ids.COMPARED_DROPDOWN,
            clearable=True,
            options=options or [],
            placeholder="none: single model (pick or type to search)",
            optionHeight=40,
        ),
    )
    target = labelled(
        "a click sets",
        "What a click on a bar of the evaluation table (or a model of the model map, the similarity map or "
        "accuracy vs sparsity) sets",
        radios(ids.CLICK_TARGET, CLICK_TARGETS, "compared"),
    )
    return card(
        "Selected combinations",
        HELP,
        [ref, cmp, target, html.Div(id=ids.COMBO_TABLE, className="combo-table")],
    )


def combo_frame(evals: pd.DataFrame) -> pd.DataFrame:
    """Every (model, evaluation set) of the run once, with its dropdown key, label and lower-case
    label (what a search matches): built once per run version (reader.derived), not per request."""
    combos = evals[["model_id", "corruption", "severity"]].drop_duplicates(ignore_index=True)
    listed = [Combo(str(m), str(c), int(v)) for m, c, v in combos.itertuples(index=False)]
    label = [f"{c.model_id} · {c.evalset}" for c in listed]
    return combos.assign(key=[c.key for c in listed], label=label, text=[t.lower() for t in label])


def run_combos(reader: StoreReader, run: str) -> pd.DataFrame:
    """combo_frame of the run, memoised per run version."""
    return reader.derived(run, "combos", lambda: combo_frame(reader.evaluations(run)))


def combo_options(
    combos: pd.DataFrame, anchor: Combo | None, search: str | None = None, keep: tuple[str | None, ...] = ()
) -> list[dict[str, str]]:
    """Dropdown options among every (model, evaluation set) of the run (`combos`, a combo_frame):
    with a `search`, the combinations whose label holds every word of it (MAX_OPTIONS at most);
    without, LISTED: the `anchor`, other models on its evaluation set and its model on other sets,
    about half each where both have that many, those nearest the anchor in the run's order (models of
    its method and sparsity, sets of its corruption). The values in `keep` stay listed."""
    if search and search.strip():
        hit = np.ones(len(combos), bool)
        for word in search.lower().split():
            hit &= combos["text"].str.contains(word, regex=False).to_numpy()
        listed = combos[hit].head(MAX_OPTIONS)
    elif anchor is not None:
        same_set = ((combos["corruption"] == anchor.corruption) & (combos["severity"] == anchor.severity)).to_numpy()
        same_model = (combos["model_id"] == anchor.model_id).to_numpy()
        anchors = np.flatnonzero(same_set & same_model)
        models, sets = np.flatnonzero(same_set & ~same_model), np.flatnonzero(same_model & ~same_set)
        room, at = LISTED - len(anchors), (anchors[0] if len(anchors) else 0)
        n_models = min(len(models), max(room // 2, room - len(sets)))
        near = [anchors, _around(models, at, n_models), _around(sets, at, room - n_models)]
        listed = combos.iloc[np.sort(np.concatenate(near))]
    else:
        listed = combos[(combos["corruption"] == "clean").to_numpy()].head(LISTED)
    labels = dict(zip(listed["key"], listed["label"]))
    extra = [k for k in keep if k and k not in labels]
    if extra:
        known = combos[combos["key"].isin(extra)]
        labels.update(zip(known["key"], known["label"]))
    return [{"label": label, "value": key} for key, label in labels.items()]


def _around(rows: np.ndarray, at: int, n: int) -> np.ndarray:
    """`n` of `rows` (ascending row positions) nearest row `at` in order: a window around it."""
    start = int(np.clip(np.searchsorted(rows, at) - n // 2, 0, max(len(rows) - n, 0)))
    return rows[start : start + n]


def _clicked(reader: StoreReader, run: str, click: dict | None) -> Combo | None:
    """The combination under a click (evaluation table: model, set; sweet spot: model, clean)."""
    point = (click or {}).get("points", [{}])[0]
    data = point.get("customdata")
    if isinstance(data, str):
        data = [data, "clean", 0]
    if not isinstance(data, list) or len(data) != 3:
        return None
    model_id, corruption, severity = str(data[0]), str(data[1]), int(data[2])
    reader.check_model(run, model_id)
    reader.check_evalset(run, model_id, corruption, severity)
    return Combo(model_id, corruption, severity)


def default_combo(reader: StoreReader, run: str) -> Combo | None:
    """The first dense model on the clean set (or the first model) of a run."""
    models = reader.models(run)
    if models.empty:
        return None
    dense = models[models["method"] == "dense"]
    return Combo(str((dense if not dense.empty else models)["model_id"].iloc[0]), "clean", 0)


def register(app: dash.Dash, reader: StoreReader) -> None:
    @app.callback(
        Output(ids.COMBINATIONS, "data"),
        Output(ids.REFERENCE_DROPDOWN, "options"),
        Output(ids.COMPARED_DROPDOWN, "options"),
        Output(ids.REFERENCE_DROPDOWN, "value"),
        Output(ids.COMPARED_DROPDOWN, "value"),
        Output(ids.SELECTION, "data"),
        Input(ids.RUN, "data"),
        Input(ids.EVAL_TABLE, "clickData"),
        Input(ids.ROBUST_SWEETSPOT, "clickData"),
        Input(ids.SENS_GRAPH, "clickData"),
        Input(ids.MODELMAP_GRAPH, "clickData"),
        Input(ids.SIMILARITY_GRAPH, "clickData"),
        Input(ids.REFERENCE_DROPDOWN, "value"),
        Input(ids.COMPARED_DROPDOWN, "value"),
        Input(ids.REFERENCE_DROPDOWN, "search_value"),
        Input(ids.COMPARED_DROPDOWN, "search_value"),
        State(ids.COMBINATIONS, "data"),
        State(ids.CLICK_TARGET, "value"),
        prevent_initial_call=True,  # the layout starts with the run's default combination
    )
    def combos(
        run,
        table_click,
        sweet_click,
        sens_click,
        map_click,
        similar_click,
        ref_key,
        cmp_key,
        ref_search,
        cmp_search,
        current,
        target,
    ):
        """The one owner of the combinations: a new run resets them (the previous run's choice
        goes); a click in the evaluation table (or a CLICKABLE graph) sets the compared one,
        or the reference with "a click sets: reference" (or when there is none); a click on a
        sensitivity cell sets both (its model's dense parent and the model). Options and
        values change together, so a dropdown never holds a value it has no option for."""
        keep = dash.no_update
        trigger = dash.ctx.triggered_id
        new_ref, new_cmp, selection = keep, keep, keep
        try:
            if trigger in (None, ids.RUN):
                combo = default_combo(reader, run) if run else None
                ref_key, cmp_key = (combo.key if combo else None), None
                new_ref, new_cmp, selection, current = ref_key, None, None, []
            elif trigger in CLICKABLE:
                clicks = dict(zip(CLICKABLE, (table_click, sweet_click, map_click, similar_click)))
                combo = _clicked(reader, run, clicks[trigger])
                if combo is None:
                    return keep, keep, keep, keep, keep, keep
                if target == "reference" or Combo.parse(ref_key) is None:
                    ref_key = new_ref = combo.key
                else:
                    cmp_key = new_cmp = combo.key
            elif trigger == ids.SENS_GRAPH:  # a sensitivity cell: that model compared with its dense model
                pair = sensitivity.clicked_pair(reader, run, sens_click)
                if pair is None:
                    return keep, keep, keep, keep, keep, keep
                ref_key, cmp_key = new_ref, new_cmp = pair[0].key, pair[1].key
            combos = (
                run_combos(reader, run)
                if run
                else combo_frame(pd.DataFrame(columns=["model_id", "corruption", "severity"]))
            )
        except StoreError:
            return keep, keep, keep, keep, keep, keep
        ref, cmp = Combo.parse(ref_key), Combo.parse(cmp_key)
        keys = list(dict.fromkeys([*(current or []), *(k.key for k in (ref, cmp) if k)]))[-12:]
        ref_options = combo_options(combos, cmp or ref, ref_search, (ref_key,))
        cmp_options = combo_options(combos, ref, cmp_search, (cmp_key,))
        return keys, ref_options, cmp_options, new_ref, new_cmp, selection

    @app.callback(
        Output(ids.COMBO_TABLE, "children"),
        Input(ids.COMBINATIONS, "data"),
        Input(ids.REFERENCE_DROPDOWN, "value"),
        Input(ids.COMPARED_DROPDOWN, "value"),
        Input(ids.RUN, "data"),
    )
    def details(combos, ref_key, cmp_key, run):
        if not run:
            return message("no run to show")
        try:
            return details_list(reader, run, combos or [], ref_key, cmp_key)
        except StoreError as exc:
            return message(exc.problem, exc.fix)


def _accuracy(evals: pd.DataFrame) -> dict[tuple[str, str, int], float]:
    """Each evaluation's accuracy by (model id, corruption, severity)."""
    keys = zip(evals["model_id"], evals["corruption"], evals["severity"].astype(int))
    return dict(zip(keys, evals["accuracy"]))


def details_list(reader: StoreReader, run: str, keys: list[str], ref_key: str | None, cmp_key: str | None) -> dict:
    """The picked combinations with their model's facts and accuracy, reference and compared marked
    (elements, app.views.common.element: the list is drawn again on every reference change)."""
    models = reader.derived(run, "models-by-id", lambda: reader.models(run).set_index("model_id"))
    accuracy = reader.derived(run, "accuracy-by-evaluation", lambda: _accuracy(reader.evaluations(run)))
    items = []
    for key in keys:
        combo = Combo.parse(key)
        if combo is None or combo.model_id not in models.index:
            continue
        m = models.loc[combo.model_id]
        acc = accuracy.get((combo.model_id, combo.corruption, combo.severity))
        role = "reference" if key == ref_key else "compared" if key == cmp_key else ""
        schedule = (
            ""
            if pd.isna(m["scope"])
            else f" · {m['scope']}, {m['schedule']}" + (f" ×{int(m['steps'])}" if m["schedule"] == "iterative" else "")
        )
        items.append(
            element(
                "Li",
                [
                    element(
                        "Div",
                        [
                            element("Span", role, className=f"role role-{role}") if role else None,
                            element("Span", combo.model_id, className="mono"),
                        ],
                    ),
                    element(
                        "Div",
                        f"{m['arch']} · {facts(str(m['method'])).label}{schedule} · sparsity {m['sparsity']:.2f}"
                        f" · fine-tune {int(m['finetune_epochs'])} ep"
                        f" · init {m.get('init', '–')} · {combo.evalset}: accuracy {acc:.3f}"
                        if acc is not None
                        else "",
                        className="combo-meta",
                    ),
                ],
                className=f"combo-item {role}",
            )
        )
    return element("Ul", items, className="combo-list")


def snapshot(ctx: Context) -> Part:
    """The reference and compared combinations with their details, as the dashboard lists them."""
    keys = [c.key for c in (ctx.ref, ctx.cmp) if c]
    ul = details_list(ctx.reader, ctx.run, keys, ctx.ref.key, ctx.cmp.key if ctx.cmp else None)
    return Part(section("Compared combinations", HELP_SNAPSHOT, to_html(ul)))
