"""Post Dash callback requests the way the browser's renderer does, from the app's own
`/_dash-dependencies`: used by the app benchmark (in process), the load test and the shared
cache's benchmark and test (over HTTP, background callbacks polled as the renderer polls them)."""

from __future__ import annotations

import json
import re
import time
from typing import Callable, Collection, Iterator

import requests

from app.views.common import DRAWN_KEYS

Post = Callable[[str, bytes], tuple[int, bytes]]  # (path, JSON body) -> HTTP status, response body


def parse_outputs(key: str) -> list[dict]:
    """The outputs of a callback from its output key ("id.prop" or "..id.prop...id.prop..")."""
    parts = key[2:-2].split("...") if key.startswith("..") else [key]
    out = []
    for p in parts:
        cid, prop = p.rsplit(".", 1)
        out.append({"id": cid, "property": prop.split("@")[0]})
    return out


def components(layout: object) -> Iterator[dict]:
    """The props of every component in the app's `/_dash-layout` JSON, those nested in any prop too."""
    stack = [layout]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict) and isinstance(node.get("props"), dict):
            yield node["props"]
            stack.extend(v for v in node["props"].values() if isinstance(v, (list, dict)))


def initial_state(layout: object) -> dict[tuple[str, str], object]:
    """Every control's starting `value`, every store's `data` and the tabs' `active_tab`, from the
    app's `/_dash-layout` JSON: what the renderer sends before anyone touches the page."""
    state: dict[tuple[str, str], object] = {}
    for props in components(layout):
        if isinstance(props.get("id"), str):
            state.update({(props["id"], k): props[k] for k in ("value", "data", "active_tab") if k in props})
    return state


# the keys of what a view has drawn, which the renderer keeps and sends back: with them the server
# patches the evaluation table, leaves the local geometry as it is after a brush of its own and sends
# nothing for a model-level view whose inputs did not change while its tab was hidden
DRAWN = tuple((key, "data") for key in sorted(DRAWN_KEYS))


class Driver:
    """Fires every callback that one of the changed properties feeds, with the current state; the
    outputs named in `keep` come back into the state from the answers, as the renderer keeps them
    (e.g. the evaluation table's drawn structure, which tells the server a Patch will do)."""

    def __init__(self, dependencies: list[dict], post: Post, keep: Collection[tuple[str, str]] = ()) -> None:
        self.callbacks = [d for d in dependencies if not d.get("clientside_function")]
        self.post = post
        self.keep = set(keep)
        self.state: dict[tuple[str, str], object] = {}
        self.took: dict[str, float] = {}  # seconds of each callback (by output key) of the last fire
        self.received = 0  # bytes of the answers of the last fire

    def fire(self, changed: list[tuple[str, str]], page_load: bool = False) -> tuple[float, float]:
        """Seconds summed over the triggered callbacks (one worker) and the longest one (enough
        workers to run them in parallel); with `page_load`, without those the renderer leaves out as a
        page loads (prevent_initial_call: the layout opens with what they would answer)."""
        total, longest = 0.0, 0.0
        self.took, self.received = {}, 0
        for spec in self.callbacks:
            trig = [f"{i['id']}.{i['property']}" for i in spec["inputs"] if (i["id"], i["property"]) in changed]
            if not trig or (page_load and spec.get("prevent_initial_call")):
                continue
            key = spec["output"]
            payload = {
                "output": key,
                "outputs": parse_outputs(key) if key.startswith("..") else parse_outputs(key)[0],
                "inputs": [
                    {"id": i["id"], "property": i["property"], "value": self.state.get((i["id"], i["property"]))}
                    for i in spec["inputs"]
                ],
                "state": [
                    {"id": s["id"], "property": s["property"], "value": self.state.get((s["id"], s["property"]))}
                    for s in spec.get("state", [])
                ],
                "changedPropIds": trig,
            }
            t = time.perf_counter()
            status, body = self.post("/_dash-update-component", json.dumps(payload, default=str).encode())
            took = self.took[key] = time.perf_counter() - t
            total, longest, self.received = total + took, max(longest, took), self.received + len(body)
            if status not in (200, 204):
                raise RuntimeError(f"{key}: HTTP {status}")
            if status == 200 and self.keep:
                for cid, props in json.loads(body).get("response", {}).items():
                    self.state.update({(cid, p): v for p, v in props.items() if (cid, p) in self.keep})
        return total, longest


def callback_spec(dependencies: list[dict], output: str, trigger: str) -> dict:
    """The callback whose output key names `output` and that `trigger` (an "id.prop") feeds."""
    return next(
        d
        for d in dependencies
        if output in d["output"] and trigger in [f"{i['id']}.{i['property']}" for i in d["inputs"]]
    )


def end_id(index_html: str) -> str:
    """The page load's signed token (the renderer echoes it so the server can check job handles)."""
    config = re.search(r'<script id="_dash-config" type="application/json">(.*?)</script>', index_html, re.S)
    return json.loads(config.group(1))["end_id"]


def call(
    session: requests.Session, url: str, spec: dict, values: dict, trigger: str, token: str, timeout: float = 600
) -> dict:
    """Post one callback as the renderer does, with `values` for its inputs and state; a background
    callback is polled (its job handles echoed) until it answers. Returns the response's outputs
    ({} for no update)."""
    key = spec["output"]
    payload = {
        "output": key,
        "outputs": parse_outputs(key) if key.startswith("..") else parse_outputs(key)[0],
        "inputs": [{**i, "value": values.get((i["id"], i["property"]))} for i in spec["inputs"]],
        "state": [{**s, "value": values.get((s["id"], s["property"]))} for s in spec.get("state", [])],
        "changedPropIds": [trigger],
    }
    params = {"endId": token}
    deadline = time.monotonic() + timeout
    while True:
        res = session.post(url + "/_dash-update-component", params=params, json=payload, timeout=timeout)
        if res.status_code == 204:
            return {}
        res.raise_for_status()
        data = res.json()
        if "response" in data:
            return data["response"]
        if "cacheKey" in data:  # a background job started: poll it with its handles
            params.update(cacheKey=data["cacheKey"], job=data["job"])
        if time.monotonic() > deadline:
            raise TimeoutError(f"{key}: no answer within {timeout} s")
        time.sleep(0.2)
