"""View: the selected combinations (model × evaluation set), and the reference / compared choice."""

from __future__ import annotations

import dash
import pandas as pd
from dash import Input, Output, State, dcc, html

from app import ids
from app.reader import StoreError, StoreReader
from app.state import Combo
from app.views.common import card, labelled, message

HELP = (
    "The model × evaluation-set combinations you picked in the evaluation table, with their details; "
    "choose the reference and the one to compare with it."
)


def layout(initial: Combo | None = None) -> html.Div:
    """With `initial`, the reference starts set, so the views draw in the page's first round."""
    keys = [initial.key] if initial else []
    ref = labelled(
        "reference",
        "The combination every view shows (grey)",
        dcc.Dropdown(
            id=ids.REFERENCE_DROPDOWN, clearable=False, options=_options(keys), value=initial.key if initial else None
        ),
    )
    cmp = labelled(
        "compared",
        "A second combination to compare with the reference (yellow); clear it for single-model views",
        dcc.Dropdown(id=ids.COMPARED_DROPDOWN, clearable=True, placeholder="none: single model"),
    )
    return card("Selected combinations", HELP, [ref, cmp, html.Div(id=ids.COMBO_TABLE, className="combo-table")])


def _options(keys: list[str]) -> list[dict[str, str]]:
    return [{"label": f"{c.model_id} · {c.evalset}", "value": k} for k in keys if (c := Combo.parse(k))]


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
        State(ids.COMBINATIONS, "data"),
        State(ids.REFERENCE_DROPDOWN, "value"),
        State(ids.COMPARED_DROPDOWN, "value"),
        prevent_initial_call=True,  # the layout starts with the run's default combination
    )
    def combos(run, table_click, sweet_click, current, ref_key, cmp_key):
        """The one owner of the combinations: a new run resets them; a click in the evaluation
        table (or the accuracy-vs-sparsity plot) adds one, as the reference when there is
        none, else as the compared one. Options and values change together, so a dropdown
        never holds a value it has no option for."""
        keep = dash.no_update
        try:
            if dash.ctx.triggered_id in (None, ids.RUN):
                combo = default_combo(reader, run) if run else None
                keys = [combo.key] if combo else []
                return keys, *(_options(keys),) * 2, (combo.key if combo else None), None, None
            click = table_click if dash.ctx.triggered_id == ids.EVAL_TABLE else sweet_click
            combo = _clicked(reader, run, click)
        except StoreError:
            return keep, keep, keep, keep, keep, keep
        if combo is None:
            return keep, keep, keep, keep, keep, keep
        keys = list(dict.fromkeys([*(current or []), combo.key]))[-12:]
        if ref_key not in keys:
            return keys, _options(keys), _options(keys), combo.key, keep, keep
        return keys, _options(keys), _options(keys), keep, combo.key, keep

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
            models = reader.models(run).set_index("model_id")
            evals = reader.evaluations(run)
        except StoreError as exc:
            return message(exc.problem, exc.fix)
        items = []
        for key in combos or []:
            combo = Combo.parse(key)
            if combo is None or combo.model_id not in models.index:
                continue
            m = models.loc[combo.model_id]
            ev = evals[
                (evals["model_id"] == combo.model_id)
                & (evals["corruption"] == combo.corruption)
                & (evals["severity"] == combo.severity)
            ]
            role = "reference" if key == ref_key else "compared" if key == cmp_key else ""
            schedule = (
                ""
                if pd.isna(m["scope"])
                else f" · {m['scope']}, {m['schedule']}"
                + (f" ×{int(m['steps'])}" if m["schedule"] == "iterative" else "")
            )
            items.append(
                html.Li(
                    [
                        html.Div(
                            [
                                html.Span(role, className=f"role role-{role}") if role else None,
                                html.Span(combo.model_id, className="mono"),
                            ]
                        ),
                        html.Div(
                            f"{m['arch']} · {m['method']}{schedule} · sparsity {m['sparsity']:.2f}"
                            f" · fine-tune {int(m['finetune_epochs'])} ep"
                            f" · init {m.get('init', '–')} · {combo.evalset}: accuracy {ev['accuracy'].iloc[0]:.3f}"
                            if not ev.empty
                            else "",
                            className="combo-meta",
                        ),
                    ],
                    className=f"combo-item {role}",
                )
            )
        return html.Ul(items, className="combo-list")
