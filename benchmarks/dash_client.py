"""Post Dash callback requests the way the browser's renderer does, from the app's own
`/_dash-dependencies`: used by the app benchmark (in process) and the load test (over HTTP)."""

from __future__ import annotations

import json
import time
from typing import Callable

Post = Callable[[str, bytes], int]  # (path, JSON body) -> HTTP status


def parse_outputs(key: str) -> list[dict]:
    """The outputs of a callback from its output key ("id.prop" or "..id.prop...id.prop..")."""
    parts = key[2:-2].split("...") if key.startswith("..") else [key]
    out = []
    for p in parts:
        cid, prop = p.rsplit(".", 1)
        out.append({"id": cid, "property": prop.split("@")[0]})
    return out


class Driver:
    """Fires every callback that one of the changed properties feeds, with the current state."""

    def __init__(self, dependencies: list[dict], post: Post) -> None:
        self.callbacks = [d for d in dependencies if not d.get("clientside_function")]
        self.post = post
        self.state: dict[tuple[str, str], object] = {}

    def fire(self, changed: list[tuple[str, str]]) -> tuple[float, float]:
        """Seconds summed over the triggered callbacks (one worker) and the longest one (enough
        workers to run them in parallel)."""
        total, longest = 0.0, 0.0
        for spec in self.callbacks:
            trig = [f"{i['id']}.{i['property']}" for i in spec["inputs"] if (i["id"], i["property"]) in changed]
            if not trig:
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
            status = self.post("/_dash-update-component", json.dumps(payload, default=str).encode())
            took = time.perf_counter() - t
            total, longest = total + took, max(longest, took)
            if status not in (200, 204):
                raise RuntimeError(f"{key}: HTTP {status}")
        return total, longest
