"""The gate every request passes before Dash (or anything else) acts on it, cheapest check first:

1. the loopback rule: with no users configured (and no --no-auth), a request that came through a
   listener other than loopback is refused (403), whatever started the app;
2. the body cap (413, from the Content-Length header, for everyone; `PRUNESCOPE_MAX_BODY_MB`);
3. credentials (401, or 429 while a client backs off), before the body is read;
4. a path-like URL (400);
5. a callback request's body: JSON, a callback of this app with the inputs it declares, each value of
   the type its component holds (`FIELDS`, or the options the layout gives it), no path-like string;
   anything else is a 400, never a 500.

The reader checks every run name and model id against the store's own listing as well; this gate
answers what can never be a name or a value before any callback, or any file, is touched.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import dash
import flask
from dash.exceptions import DependencyException
from werkzeug.exceptions import BadRequest

from app import ids
from app.auth import HOW_TO, HashedBasicAuth, served_locally
from app.state import Combo
from pipeline.store import SAFE_ID, PruneScopeError

MAX_BODY_ENV = "PRUNESCOPE_MAX_BODY_MB"
# the largest request the page sends: a box over all 40,000 points of the local view (10 classes of 4,000
# drawn), 6.3 MB as measured in headless Chromium (a run of 40,000 samples a set, 158 bytes a point)
DEFAULT_MAX_BODY_MB = 8.0
TRAVERSAL = ("../", "..\\", "\x00")
MAX_CLASSES = 100_000  # a class index beyond any data set's class count
MAX_ITEMS = 1_000_000  # sample ids in a selection

Spec = Callable[[Any], bool]


def max_body_bytes(env: Mapping[str, str] = os.environ) -> int:
    """The request body cap in bytes, from `PRUNESCOPE_MAX_BODY_MB` (default 8)."""
    raw = env.get(MAX_BODY_ENV, "").strip()
    try:
        mb = float(raw) if raw else DEFAULT_MAX_BODY_MB
    except ValueError:
        mb = math.nan
    if not mb > 0 or math.isinf(mb):
        raise PruneScopeError(f"{MAX_BODY_ENV}={raw!r} is not a positive number of megabytes", f"e.g. {MAX_BODY_ENV}=8")
    return int(mb * 1_000_000)


# ---------------------------------------------------------------- value types


def _is_int(v: Any, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def name(v: Any) -> bool:
    """a run name or model id"""
    return isinstance(v, str) and SAFE_ID.match(v) is not None


def combo_key(v: Any) -> bool:
    """a combination key model|evaluation set (`digits_cnn-dense|fog-3`)"""
    combo = Combo.parse(v)
    return combo is not None and name(combo.model_id) and name(combo.corruption) and combo.severity < 100


def markup(v: Any) -> bool:
    """HTML that the page's own callback made (the samples gallery's cards, read only in the browser)"""
    return isinstance(v, str) and len(v) <= 50_000_000


def search_text(v: Any) -> bool:
    """a short search text"""
    return isinstance(v, str) and len(v) <= 200


def _is_int_text(s: str) -> bool:
    return s.isascii() and s.isdigit() and len(s) <= 2


def class_index(v: Any) -> bool:
    """a class index"""
    return _is_int(v, 0, MAX_CLASSES)


def count(v: Any) -> bool:
    """a click count"""
    return _is_int(v, 0, 2**53)


def nullable(spec: Spec) -> Spec:
    """`spec`, or null."""

    def check(v: Any) -> bool:
        return v is None or spec(v)

    check.__doc__ = f"{spec.__doc__} or null"
    return check


def list_of(spec: Spec, limit: int) -> Spec:
    """A list of at most `limit` values that each pass `spec`."""

    def check(v: Any) -> bool:
        return isinstance(v, list) and len(v) <= limit and all(spec(x) for x in v)

    check.__doc__ = f"a list of {spec.__doc__}"
    return check


def record(doc: str, **fields: Spec) -> Spec:
    """A JSON object whose named fields (where present) pass their specs; other keys are let through."""

    def check(v: Any) -> bool:
        return isinstance(v, dict) and all(k not in v or spec(v[k]) for k, spec in fields.items())

    check.__doc__ = doc
    return check


def sample_id(v: Any) -> bool:
    """a sample id"""
    return _is_int(v, 0, 2**53)


def selection(v: Any) -> bool:
    """a selection {samples: [sample ids], source: view}"""
    return (
        isinstance(v, dict)
        and nullable(list_of(sample_id, MAX_ITEMS))(v.get("samples"))
        and isinstance(v.get("source", ""), str)
    )


def percentile_range(v: Any) -> bool:
    """two numbers [low, high]"""
    return isinstance(v, list) and len(v) == 2 and all(_is_number(x) for x in v)


def _clicked_combination(v: Any) -> bool:
    """[model id, evaluation set, severity] (the severity a number or its digits: the table's customdata
    is one string array)"""
    return (
        isinstance(v, list)
        and len(v) == 3
        and name(v[0])
        and name(v[1])
        and (_is_int(v[2], 0, 5) or (isinstance(v[2], str) and _is_int_text(v[2])))
    )


def _point(customdata: Spec) -> Spec:
    index = nullable(lambda v: _is_int(v, 0, 2**31))
    index.__doc__ = "an index"
    return record(
        "a plotly point",
        customdata=customdata,
        curveNumber=index,
        pointNumber=index,
        pointIndex=index,
    )


def plot_event(customdata: Spec) -> Spec:
    """A plotly click or selection event: {points: [{customdata, curveNumber, pointIndex, ...}]}."""
    return record("a plotly event {points: [...]}", points=list_of(_point(customdata), MAX_ITEMS))


def _box(v: Any) -> bool:
    """a box selection"""
    return isinstance(v, dict) and all(k not in v or _is_number(v[k]) for k in ("x0", "x1", "y0", "y1"))


def _flag(v: Any) -> bool:
    """true or false"""
    return isinstance(v, bool)


def _view_tab(v: Any) -> bool:
    """one of the views' tabs (tab-paper, tab-models)"""
    return isinstance(v, str) and v in (ids.TAB_PAPER, ids.TAB_MODELS)


_clicked_model = nullable(_clicked_combination)
_clicked_model.__doc__ = "a combination [model id, evaluation set, severity]"
_sample_point = nullable(sample_id)


def _sample_row(v: Any) -> bool:
    """a sample id, or [sample id, angle, length] (the local geometry's points)"""
    return sample_id(v) or (
        isinstance(v, list) and len(v) == 3 and sample_id(v[0]) and all(x is None or _is_number(x) for x in v[1:])
    )


_sweet_point = nullable(name)
_boxes = list_of(_box, 1000)

# The value each (component id, property) that a callback reads may hold; values the layout offers as
# fixed `options` (a dropdown's choices) need no entry here: `specs()` takes them from the layout.
FIELDS: dict[tuple[str, str], Spec] = {
    (ids.RUN, "data"): nullable(name),
    (ids.RUN_DROPDOWN, "value"): nullable(name),
    (ids.REFERENCE_DROPDOWN, "value"): nullable(combo_key),
    (ids.COMPARED_DROPDOWN, "value"): nullable(combo_key),
    (ids.REFERENCE_DROPDOWN, "search_value"): nullable(search_text),  # typed text, only matched against the listing
    (ids.COMPARED_DROPDOWN, "search_value"): nullable(search_text),
    (ids.COMBINATIONS, "data"): nullable(list_of(combo_key, 1000)),
    (ids.SELECTION, "data"): nullable(selection),
    (ids.CLASS_DROPDOWN, "value"): nullable(class_index),
    (ids.CLEAR_SELECTION, "n_clicks"): nullable(count),
    (ids.EXPORT_BUTTON, "n_clicks"): nullable(count),
    (ids.EXPORT_CANCEL, "n_clicks"): nullable(count),  # Dash's own callback for a background job's cancel
    (ids.EVAL_PREPARE, "data"): nullable(name),
    (ids.EVAL_DRAWN, "data"): nullable(name),  # what the drawn table shows: hex digests joined by dots
    (ids.TABLE_ANSWERED, "data"): nullable(_flag),  # the table has answered once
    (ids.FIRST_VIEWS_DRAWN, "data"): nullable(_flag),  # the first page is drawn: the run-wide views start
    (ids.EVAL_TABLE, "clickData"): nullable(plot_event(_clicked_model)),
    (ids.ROBUST_SWEETSPOT, "clickData"): nullable(plot_event(_sweet_point)),
    (ids.LOCAL_GRAPH, "selectedData"): nullable(plot_event(nullable(_sample_row))),
    (ids.LOCAL_DIFF_RANGE, "value"): percentile_range,
    (ids.LOCAL_DRAWN, "data"): nullable(name),  # the key of what the figure shows (hex digits)
    (ids.GLOBAL_GRAPH, "relayoutData"): nullable(record("a relayout event", selections=_boxes)),
    (ids.GLOBAL_BOXES, "data"): nullable(_boxes),
    (ids.SENS_GRAPH, "clickData"): nullable(plot_event(_sweet_point)),  # a cell's model id
    (ids.SENS_METHOD, "value"): nullable(name),  # the run's methods are its options
    (ids.PIE_SELECT, "n_clicks"): nullable(count),
    (ids.PIE_GRAPH, "clickData"): nullable(plot_event(nullable(class_index))),  # a bar's class
    # model map and model similarity (issue 16): clicks and lassos on models, the brushed group, the set
    (ids.MODELMAP_GRAPH, "clickData"): nullable(plot_event(_clicked_model)),
    (ids.SIMILARITY_GRAPH, "clickData"): nullable(plot_event(_clicked_model)),
    (ids.SIMILARITY_GRAPH, "selectedData"): nullable(plot_event(_clicked_model)),
    (ids.SIMILARITY_SET, "value"): nullable(name),
    (ids.MODEL_HIGHLIGHT, "data"): nullable(
        record("a group of models {models: [model ids], source: view}", models=list_of(name, 100_000), source=name)
    ),
    (ids.SAMPLES_ATTR_METHOD, "value"): nullable(name),  # the run's attribution methods, set per run
    (ids.SAMPLES_HTML, "data"): nullable(markup),
    (ids.ATTR_DRIFT, "selectedData"): nullable(plot_event(_sample_point)),
    (ids.VIEW_TABS, "active_tab"): _view_tab,  # the shown tab: the model-level views draw only in theirs
    **{  # the key of what each model-level view shows (hex digits)
        (drawn, "data"): nullable(name)
        for drawn in (ids.MODELMAP_DRAWN, ids.SIMILARITY_DRAWN, ids.SENS_DRAWN, ids.PIE_DRAWN, ids.ATTR_DRAWN)
    },
}


def layout_options(layout: Any) -> dict[str, Spec]:
    """For each component of the layout with fixed `options`, a spec: one of those options' values."""
    out: dict[str, Spec] = {}
    if not hasattr(layout, "_traverse"):
        return out
    for component in [layout, *layout._traverse()]:
        cid, options = getattr(component, "id", None), getattr(component, "options", None)
        if isinstance(cid, str) and isinstance(options, list):
            values = [o["value"] if isinstance(o, dict) else o for o in options]

            def check(v: Any, values: list = values) -> bool:
                return any(v == x and type(v) is type(x) for x in values)

            check.__doc__ = "one of " + ", ".join(map(repr, values))
            out[cid] = check
    return out


def specs(app: dash.Dash) -> dict[tuple[str, str], Spec]:
    """The spec of every (id, property) a callback of `app` reads: `FIELDS`, then the layout's options."""
    out = {(cid, "value"): spec for cid, spec in layout_options(app.layout).items()}
    out.update(FIELDS)
    return out


# ---------------------------------------------------------------- callback requests


def _strings(value: Any) -> Iterator[str]:
    """Every string in a JSON value, keys included (iteratively: a deep value cannot overflow the stack)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            yield v
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)


def _fields_refusal(
    key: str, declared: list[dict], got: Any, types: Mapping[tuple[str, str], Spec] | None
) -> str | None:
    if not isinstance(got, list) or len(got) != len(declared):
        return f"its {key} are not the {len(declared)} the callback declares"
    for want, item in zip(declared, got):
        if not isinstance(item, dict) or (item.get("id"), item.get("property")) != (want["id"], want["property"]):
            return f"{key} field {want['id']}.{want['property']} is missing or malformed"
        if types is None:
            continue
        spec = types.get((want["id"], want["property"]))
        if spec is None or not spec(item.get("value")):
            return f"{want['id']}.{want['property']} must be {spec.__doc__ if spec else 'absent'}"
    return None


def _outputs_ok(key: str, outputs: Any) -> bool:
    """Outputs as the renderer sends them: one {id, property} for a callback of one output, else a list of
    as many as its key `..a.b...c.d..` names."""

    def one(o: Any) -> bool:
        return isinstance(o, dict) and isinstance(o.get("id"), str) and isinstance(o.get("property"), str)

    if not key.startswith(".."):
        return one(outputs)
    return isinstance(outputs, list) and len(outputs) == len(key[2:-2].split("...")) and all(map(one, outputs))


def _class_refusal(body: dict, class_count: Callable[[str], int | None]) -> str | None:
    """A class index beyond the classes of the run the same request names."""
    values = {(f["id"], f["property"]): f.get("value") for key in ("inputs", "state") for f in body.get(key, [])}
    run, focus = values.get((ids.RUN, "data")), values.get((ids.CLASS_DROPDOWN, "value"))
    if run is None or focus is None:
        return None
    n = class_count(run)
    if n is not None and focus >= n:
        return f"{ids.CLASS_DROPDOWN}.value must be a class of run {run!r} (0..{n - 1})"
    return None


def refusal(
    body: Any,
    callbacks: Mapping[str, dict],
    types: Mapping[tuple[str, str], Spec],
    poll: bool = False,
    class_count: Callable[[str], int | None] | None = None,
) -> str | None:
    """Why a callback request must be refused, or None when it may go on. A `poll` of a background job
    (the renderer sends its values as null; Dash answers from the job and runs nothing) has its values'
    types unchecked; `class_count(run)` (None for a run it cannot read) bounds a class index."""
    if not isinstance(body, dict) or not isinstance(body.get("output"), str):
        return "not a Dash callback request"
    callback = callbacks.get(body["output"])
    if callback is None or "callback" not in callback:  # a clientside callback runs in the browser only
        return "no such callback"
    checked = None if poll and callback.get("background") else types
    for key in ("inputs", "state"):
        why = _fields_refusal(key, callback[key], body.get(key, []), checked)
        if why:
            return why
    if checked is not None and class_count is not None:
        why = _class_refusal(body, class_count)
        if why:
            return why
    if not _outputs_ok(body["output"], body.get("outputs")):
        return "its outputs are not the callback's"
    changed = body.get("changedPropIds", [])
    if not isinstance(changed, list) or not all(isinstance(c, str) for c in changed):
        return "malformed changedPropIds"
    if any(t in s for s in _strings(body) for t in TRAVERSAL):
        return "path-like value"
    return None


def _text(status: int, text: str) -> flask.Response:
    return flask.Response(text, status=status, mimetype="text/plain")


def install(
    app: dash.Dash,
    auth: HashedBasicAuth | None = None,
    no_auth: bool = False,
    max_body: int | None = None,
    class_count: Callable[[str], int | None] | None = None,
) -> None:
    """Put the gate in front of every request of `app` (call it after the layout and callbacks exist);
    `class_count(run)` bounds the class index a request may name."""
    limit = max_body if max_body is not None else max_body_bytes()
    app.server.config["MAX_CONTENT_LENGTH"] = limit  # a body sent without Content-Length stops there too
    types = specs(app)
    refused: list[str] = []

    def gate():
        request = flask.request
        if auth is None and not no_auth and not served_locally(request.environ):
            where = request.environ.get("SERVER_NAME", "?")
            if not refused:
                refused.append(where)
                app.logger.error("refusing to serve on %s without authentication; fix: %s", where, HOW_TO)
            return _text(403, f"refusing to serve on {where} without authentication\nfix: {HOW_TO}")
        if (request.content_length or 0) > limit:
            return _text(413, f"request body over {limit} bytes (the server's {MAX_BODY_ENV})")
        if auth is not None:
            denied = auth.check()
            if denied is not None:
                return denied
        path = request.path
        if "\x00" in path or ".." in path.split("/"):
            return _text(400, "refused: path traversal")
        if path.endswith("/_dash-update-component") and request.method == "POST":
            try:
                body = request.get_json(force=True)  # cached: Dash reads this same object
            except (BadRequest, RecursionError):
                return _text(400, "refused: the body is not JSON")
            why = refusal(body, app.callback_map, types, "cacheKey" in request.args, class_count)
            if why:
                return _text(400, f"refused: {why}")
        return None

    # first of all, before Dash's first-request setup and app.main's page of the run as it is (both read the store)
    app.server.before_request_funcs.setdefault(None, []).insert(0, gate)

    @app.server.errorhandler(DependencyException)
    def unknown_component_file(_):
        return _text(404, "no such file")
