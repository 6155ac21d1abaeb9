"""The evaluation table's partial updates: a brush, a highlight or new outlines send a dash Patch of the
parts they change (app/figures/evaltable.py `table_parts`), and the patched figure is the figure drawn
from scratch for the same inputs; a new severity or mode, or a drawn table of another structure, gets
the whole figure."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest

from app import ids
from app.figures.evaltable import (
    OPACITY,
    OUTLINE,
    PARTS,
    SUBSET,
    draw_table,
    table_frame,
    table_parts,
    table_structure,
    with_parts,
)
from app.main import create_app
from app.state import Combo
from benchmarks.dash_client import callback_spec, initial_state, parse_outputs
from tests.test_app_unit import evals_frame

PATCH = "__dash_patch_update"


def canonical(fig: Any) -> str:
    """A figure as JSON text, arrays as lists: equal figures, equal texts."""
    return json.dumps(fig, sort_keys=True, default=lambda v: v.tolist())


def frame_of(columns: int) -> pd.DataFrame:
    """The unit tier's table (2 columns: bars) or one of `columns` columns (22: numbers)."""
    evals = evals_frame()
    fog = evals[evals["corruption"] == "fog"]
    return table_frame(pd.concat([evals] + [fog.assign(corruption=f"c{i}") for i in range(columns - 2)]), 3)


INPUTS = [  # (selected, compared, subset accuracy or None, highlighted): each step changes some parts
    ("m-mag-50", None, None, None),
    ("m-mag-50", None, 0.2, None),  # a brush
    ("m-mag-50", None, 0.9, None),  # another brush: better and worse than the whole set swap
    ("m-rand-50", "m-mag-90", 0.9, None),  # new outlines
    ("m-rand-50", "m-mag-90", 0.9, {"m-mag-50"}),  # a highlighted group
    ("m-rand-50", "m-mag-90", 0.5, {"m-mag-50"}),  # a brush covering some cells only
    (None, None, None, None),  # everything cleared
]


def arguments(frame: pd.DataFrame, step: tuple) -> tuple:
    selected, compared, accuracy, highlighted = step
    subset = None
    if accuracy is not None:
        some = frame[frame["method"] != "dense"].iloc[:: 1 if accuracy != 0.5 else 2]
        subset = some[["model_id", "column"]].assign(accuracy=accuracy)
    return selected, compared, subset, 5 if subset is not None else None, highlighted


@pytest.mark.parametrize("columns,numbers", [(2, False), (22, True)])
def test_the_parts_a_change_sets_turn_the_old_figure_into_the_new_one(columns, numbers):
    frame = frame_of(columns)
    table = table_structure(frame)
    assert table is not None and table.numbers is numbers
    for old, new in zip(INPUTS, INPUTS[1:]):
        before, after = arguments(frame, old), arguments(frame, new)
        changed = {SUBSET} if old[2] != new[2] else set()
        changed |= {OUTLINE} if old[:2] != new[:2] else set()
        changed |= {OPACITY} if old[3] != new[3] else set()
        drawn = draw_table(table, *before)
        patched = with_parts(drawn, table_parts(table, changed, *after))
        assert canonical(patched) == canonical(draw_table(table, *after)), (old, new)
        if changed != set(PARTS):  # and the parts left out are needed: without them, another figure
            assert canonical(with_parts(drawn, table_parts(table, set(PARTS) - changed, *after))) != canonical(
                draw_table(table, *after)
            )


def test_the_structure_key_follows_the_structure_not_the_parts():
    frame = frame_of(2)
    table = table_structure(frame)
    assert table_structure(frame.copy()).key == table.key
    assert table_structure(frame, "numbers").key != table.key, "another cell mode, another structure"
    assert table_structure(frame_of(3)).key != table.key, "another column"
    fewer = frame[frame["model_id"] != "m-mag-90"]
    assert table_structure(fewer).key != table.key, "another model"
    assert table_structure(frame.iloc[0:0]) is None


def apply(figure: dict, patch: dict) -> dict:
    """A dash Patch's operations applied to a figure as the renderer applies them (Assign only: the table's)."""
    figure = json.loads(json.dumps(figure))
    for op in patch["operations"]:
        assert op["operation"] == "Assign", op
        *path, last = op["location"]
        node = figure
        for key in path:
            node = node[key]
        node[last] = op["params"]["value"]
    return figure


class Client:
    """One callback (default: the table's) posted as the renderer posts it (Flask test client): the
    values of its inputs and state, which input changed; answers the response's outputs ({}: no update)."""

    def __init__(self, store_dir, cache_dir, output: str = f"{ids.EVAL_TABLE}.figure", trigger: str = "") -> None:
        self.client = create_app(store_dir, "tiny", cache_dir).server.test_client()
        self.spec = callback_spec(
            self.client.get("/_dash-dependencies").get_json(), output, trigger or f"{ids.RUN}.data"
        )
        self.values = initial_state(self.client.get("/_dash-layout").get_json())
        self.values[(ids.RUN, "data")] = "tiny"
        self.values[(ids.REFERENCE_DROPDOWN, "value")] = Combo("digits_cnn-dense", "clean", 0).key

    def post(self, changed: tuple[str, str]) -> dict:
        def field(d: dict) -> dict:
            return {"id": d["id"], "property": d["property"], "value": self.values.get((d["id"], d["property"]))}

        key = self.spec["output"]
        body = {
            "output": key,
            "outputs": parse_outputs(key),
            "inputs": [field(i) for i in self.spec["inputs"]],
            "state": [field(s) for s in self.spec["state"]],
            "changedPropIds": [f"{changed[0]}.{changed[1]}"],
        }
        res = self.client.post("/_dash-update-component", json=body)
        assert res.status_code in (200, 204), res.data[:300]
        return res.get_json()["response"] if res.status_code == 200 else {}


@pytest.fixture
def client(tiny_run, tmp_path) -> Client:
    return Client(tiny_run.parent, tmp_path / "dc")


def locations(patch: dict) -> list[list]:
    """The figure paths a Patch sets."""
    return [op["location"] for op in patch["operations"]]


def test_a_brush_sends_a_patch_that_draws_the_figure_drawn_from_scratch(client):
    first = client.post((ids.RUN, "data"))
    figure, key = first[ids.EVAL_TABLE]["figure"], first[ids.EVAL_DRAWN]["data"]
    assert PATCH not in figure and key, "a new run: the whole table, and the key of what it shows"
    structure = key.split(".")[0]
    client.values[(ids.EVAL_DRAWN, "data")] = key
    assert first[ids.TABLE_ANSWERED]["data"] is True, "the first answer: the page's first views are in"
    client.values[(ids.TABLE_ANSWERED, "data")] = True  # later answers leave it
    steps = [
        ((ids.SELECTION, "data"), {"samples": list(range(0, 60, 3)), "source": "local"}),
        ((ids.SELECTION, "data"), {"samples": list(range(1, 40, 2)), "source": "global"}),
        ((ids.COMPARED_DROPDOWN, "value"), Combo("digits_cnn-magnitude-global-oneshot-s80-ft1", "clean", 0).key),
        ((ids.MODEL_HIGHLIGHT, "data"), {"models": ["digits_cnn-dense"], "source": "similarity"}),
        ((ids.SELECTION, "data"), None),
    ]
    sizes = []
    for changed, value in steps:
        client.values[changed] = value
        answer = client.post(changed)
        patch = answer[ids.EVAL_TABLE]["figure"]
        assert patch.get(PATCH) == PATCH, f"{changed}: a Patch, not the whole figure"
        key = answer[ids.EVAL_DRAWN]["data"]
        assert key.split(".")[0] == structure, "the structure stays; the key says which parts are drawn"
        figure = apply(figure, patch)
        client.values[(ids.EVAL_DRAWN, "data")] = None  # a table of no known structure: drawn from scratch
        scratch = client.post(changed)
        client.values[(ids.EVAL_DRAWN, "data")] = key
        assert PATCH not in scratch[ids.EVAL_TABLE]["figure"] and scratch[ids.EVAL_DRAWN]["data"] == key
        assert canonical(figure) == canonical(scratch[ids.EVAL_TABLE]["figure"]), changed
        sizes.append(len(json.dumps(patch)) / len(json.dumps(scratch[ids.EVAL_TABLE]["figure"])))
        if changed == (ids.COMPARED_DROPDOWN, "value"):
            outlines = [loc for loc in locations(patch) if loc[:2] == ["layout", "shapes"] and loc[-1] == "path"]
            assert len(outlines) == len(locations(patch)) == 2, "the two outlines' paths alone"
    assert max(sizes[:2]) < 0.8, f"a brush sends less than the figure: {sizes}"
    assert client.post((ids.SELECTION, "data")) == {}, "nothing differs from the drawn table: no update"


def test_a_patch_draws_the_right_figure_when_the_renderer_dropped_the_call_before_it(client):
    """The renderer drops a call still running when the same callback is called again, and its answer
    (the figure and the key of what it shows): the next patch sets what differs from what is drawn."""
    first = client.post((ids.RUN, "data"))
    figure, key = first[ids.EVAL_TABLE]["figure"], first[ids.EVAL_DRAWN]["data"]
    client.values[(ids.EVAL_DRAWN, "data")] = key
    highlight, selection = (ids.MODEL_HIGHLIGHT, "data"), (ids.SELECTION, "data")
    compared = (ids.COMPARED_DROPDOWN, "value")
    steps = [  # (the input of the dropped call, its value), then (the input of the call answered, its value)
        ((highlight, {"models": ["digits_cnn-dense"], "source": "similarity"}), (selection, {"samples": [0, 3, 6]})),
        ((selection, {"samples": list(range(1, 40, 2))}), (compared, Combo("digits_cnn-dense", "clean", 0).key)),
        ((compared, None), (highlight, None)),
    ]
    for (dropped, dropped_value), (changed, value) in steps:
        client.values[dropped] = dropped_value
        client.post(dropped)  # its answer never reaches the page
        client.values[changed] = value
        answer = client.post(changed)
        figure = apply(figure, answer[ids.EVAL_TABLE]["figure"])
        key = answer[ids.EVAL_DRAWN]["data"]
        client.values[(ids.EVAL_DRAWN, "data")] = None
        scratch = client.post(changed)[ids.EVAL_TABLE]["figure"]
        client.values[(ids.EVAL_DRAWN, "data")] = key
        assert canonical(figure) == canonical(scratch), f"{dropped} dropped, then {changed}"


def test_a_new_severity_or_mode_draws_the_whole_table(client):
    key = client.post((ids.RUN, "data"))[ids.EVAL_DRAWN]["data"]
    client.values[(ids.EVAL_DRAWN, "data")] = key
    for changed, value in (((ids.EVAL_SEVERITY, "value"), "mean"), ((ids.EVAL_MODE, "value"), "numbers")):
        client.values[changed] = value
        answer = client.post(changed)
        assert PATCH not in answer[ids.EVAL_TABLE]["figure"], changed
        client.values[(ids.EVAL_DRAWN, "data")] = answer[ids.EVAL_DRAWN]["data"]
    assert client.values[(ids.EVAL_DRAWN, "data")] not in (None, key), "numbers: another structure, another key"
