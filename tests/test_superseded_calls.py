"""Dash's renderer drops a call still running when the same callback is called again, and its answer
with it: a view must not decide from the input that fired what it may leave as it is, or the dropped
call's change never reaches the page. (The evaluation table's patches: tests/test_evaltable_patch.py.)"""

from __future__ import annotations

from app import ids
from app.state import Combo
from tests.test_evaltable_patch import Client

DENSE = Combo("digits_cnn-dense", "clean", 0).key
CHILD = Combo("digits_cnn-magnitude-global-oneshot-s80-ft1", "clean", 0).key
REFERENCE, SELECTION = (ids.REFERENCE_DROPDOWN, "value"), (ids.SELECTION, "data")


def client(tiny_run, tmp_path, output: str) -> Client:
    c = Client(tiny_run.parent, tmp_path / "dc", output, f"{ids.SELECTION}.data")
    c.values.update({(ids.RUN, "data"): "tiny", REFERENCE: DENSE, (ids.CLASS_DROPDOWN, "value"): 0})
    return c


def test_a_local_brush_leaves_the_figure_only_when_it_shows_the_current_inputs(tiny_run, tmp_path):
    c = client(tiny_run, tmp_path, f"{ids.LOCAL_GRAPH}.figure")
    first = c.post(REFERENCE)
    key = first[ids.LOCAL_DRAWN]["data"]
    assert first[ids.LOCAL_GRAPH]["figure"]["data"] and key
    c.values[(ids.LOCAL_DRAWN, "data")] = key
    c.values[SELECTION] = {"samples": [1, 2, 3], "source": "local"}
    assert c.post(SELECTION) == {}, "brushed here, on the figure of these inputs: the user's box stays"
    c.values[REFERENCE] = CHILD  # its call was dropped: the figure still shows the dense model
    answer = c.post(SELECTION)
    assert answer[ids.LOCAL_GRAPH]["figure"]["data"], "the brush's call draws the new reference"
    assert answer[ids.LOCAL_DRAWN]["data"] not in (None, key)
    c.values[(ids.LOCAL_DRAWN, "data")] = answer[ids.LOCAL_DRAWN]["data"]
    c.values[SELECTION] = {"samples": [4, 5], "source": "global"}
    assert c.post(SELECTION)[ids.LOCAL_GRAPH]["figure"]["data"], "a selection from elsewhere is outlined here"


def test_a_global_brush_sends_the_strips_and_note_of_the_current_inputs(tiny_run, tmp_path):
    c = client(tiny_run, tmp_path, f"{ids.GLOBAL_GRAPH}.figure")
    dense = c.post(REFERENCE)
    c.values.update({REFERENCE: CHILD, (ids.CLASS_DROPDOWN, "value"): 1})
    child = c.post(REFERENCE)  # what the dropped call would have sent
    assert dense[ids.GLOBAL_DENSITY] != child[ids.GLOBAL_DENSITY] and dense[ids.GLOBAL_NOTE] != child[ids.GLOBAL_NOTE]
    c.values[SELECTION] = {"samples": [1, 2, 3], "source": "global"}
    answer = c.post(SELECTION)
    assert answer[ids.GLOBAL_DENSITY] == child[ids.GLOBAL_DENSITY] and answer[ids.GLOBAL_NOTE] == child[ids.GLOBAL_NOTE]
    assert ids.GLOBAL_BOXES not in answer, "the user's boxes stay"
