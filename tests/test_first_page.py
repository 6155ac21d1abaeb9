"""The page opens with the class list and the gallery's attribution methods that their callbacks would
answer (app.main.FirstPage): those callbacks are not called on a page load, so the views that read
these controls are asked for with the evaluation table (tests/test_browser.py times the order)."""

from __future__ import annotations

import pytest

from app import ids
from tests.test_evaltable_patch import Client

CONTROLS = {  # the control, the input whose change calls its callback
    "class list": (ids.CLASS_DROPDOWN, ids.REFERENCE_DROPDOWN, "value"),
    "attribution methods": (ids.SAMPLES_ATTR_METHOD, ids.RUN, "data"),
}


@pytest.mark.parametrize("store", ["tiny_run", "attribution_store"])
@pytest.mark.parametrize("control", CONTROLS)
def test_the_layout_opens_with_what_the_callback_answers(store, control, request, tmp_path):
    run_dir = request.getfixturevalue(store)
    store_dir = run_dir.parent if store == "tiny_run" else run_dir
    target, *trigger = CONTROLS[control]
    output = f"..{target}.options...{target}.value.."
    client = Client(store_dir, tmp_path / "dc", output, ".".join(trigger))
    answer = client.post(tuple(trigger))[target]
    assert answer["options"] or (store, control) == ("tiny_run", "attribution methods"), "options to open with"
    opened = props(client.client.get("/_dash-layout").get_json(), target)
    assert (opened["options"], opened.get("value")) == (answer["options"], answer["value"])


def props(layout: object, cid: str) -> dict:
    """The props of the component `cid` in the app's /_dash-layout JSON."""
    stack = [layout]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict) and isinstance(node.get("props"), dict):
            if node["props"].get("id") == cid:
                return node["props"]
            stack.extend(v for v in node["props"].values() if isinstance(v, (list, dict)))
    raise AssertionError(f"{cid} is not in the layout")
