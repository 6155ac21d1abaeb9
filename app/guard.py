"""Refuse, before any callback runs, a request whose fields look like paths.

The reader already checks every run name and model id against the store's own listing; this
guard answers 400 to what can never be a name (`../`, absolute paths, NUL, an id that breaks
the store's naming rule) so such a request touches no file at all.
"""

from __future__ import annotations

from typing import Any, Iterator

import dash
import flask
from dash.exceptions import DependencyException

from app import ids
from pipeline.store import SAFE_ID

NAME_FIELDS = {ids.RUN, ids.RUN_DROPDOWN, ids.REFERENCE_DROPDOWN, ids.COMPARED_DROPDOWN, ids.COMBINATIONS}
TRAVERSAL = ("../", "..\\", "\x00")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _name_ok(value: str) -> bool:
    """A run name, model id or combination key "model|corruption|severity"."""
    return all(SAFE_ID.match(part) for part in value.split("|"))


def refusal(body: Any) -> str | None:
    """Why a callback request must be refused, or None when it may go on."""
    if not isinstance(body, dict) or not isinstance(body.get("output"), str):
        return "not a Dash callback request"
    fields = [f for key in ("inputs", "state") for f in (body.get(key) or [])]
    for field in fields:
        items = field if isinstance(field, list) else [field]  # pattern-matching inputs come as lists
        for item in items:
            if not isinstance(item, dict):
                return "malformed callback field"
            strings = list(_strings(item.get("value")))
            if any(t in s for s in strings for t in TRAVERSAL):
                return f"path-like value in {item.get('id')!r}"
            if item.get("id") in NAME_FIELDS and not all(_name_ok(s) for s in strings):
                return f"{item.get('id')!r} is not a run name or model id"
    return None


def install(app: dash.Dash) -> None:
    """Check every callback request before Dash (or anything else) acts on it."""

    @app.server.before_request
    def guard():
        path = flask.request.path
        if "\x00" in path or ".." in path.split("/"):
            return flask.Response("refused: path traversal", status=400, mimetype="text/plain")
        if path.endswith("/_dash-update-component") and flask.request.method == "POST":
            why = refusal(flask.request.get_json(silent=True))
            if why:
                return flask.Response(f"refused: {why}", status=400, mimetype="text/plain")
        return None

    @app.server.errorhandler(DependencyException)
    def unknown_component_file(_):
        return flask.Response("no such file", status=404, mimetype="text/plain")
