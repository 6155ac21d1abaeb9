"""The views' tabs (issue 14): the model-level views (model map, similarity, sensitivity, PIE, attribution
drift) draw only while their tab is shown. Their callbacks, posted as the renderer posts them (Flask test
client), answer "no update" with the first tab shown, and draw when the models tab opens; opening it again
draws only the views whose inputs changed since the figure on screen was drawn (the key that came with it)."""

from __future__ import annotations

import os
import shutil

import pytest

from app import ids
from app.main import create_app
from app.state import Combo
from benchmarks.dash_client import initial_state, parse_outputs

TAB = (ids.VIEW_TABS, "active_tab")
MODEL_VIEWS = {ids.MODELMAP_GRAPH, ids.SIMILARITY_GRAPH, ids.SENS_GRAPH, ids.PIE_GRAPH, ids.ATTR_DRIFT}
DRAWN = {ids.MODELMAP_DRAWN, ids.SIMILARITY_DRAWN, ids.SENS_DRAWN, ids.PIE_DRAWN, ids.ATTR_DRAWN}
COMPARED = Combo("digits_cnn-magnitude-global-oneshot-s80-ft1", "clean", 0).key


class Client:
    """Every callback of the app that reads the shown tab, posted with the page's state."""

    def __init__(self, store_dir, cache_dir) -> None:
        self.app = create_app(store_dir, "tiny", cache_dir)
        self.client = self.app.server.test_client()
        deps = self.client.get("/_dash-dependencies").get_json()
        self.gated = [d for d in deps if f"{TAB[0]}.{TAB[1]}" in [f"{i['id']}.{i['property']}" for i in d["inputs"]]]
        self.values = initial_state(self.client.get("/_dash-layout").get_json())
        self.values[(ids.RUN, "data")] = "tiny"
        self.values[(ids.REFERENCE_DROPDOWN, "value")] = Combo("digits_cnn-dense", "clean", 0).key
        self.values[(ids.COMPARED_DROPDOWN, "value")] = COMPARED

    def post(self, spec: dict, changed: tuple[str, str]):
        def field(d: dict) -> dict:
            return {"id": d["id"], "property": d["property"], "value": self.values.get((d["id"], d["property"]))}

        key = spec["output"]
        return self.client.post(
            "/_dash-update-component",
            json={
                "output": key,
                "outputs": parse_outputs(key) if key.startswith("..") else parse_outputs(key)[0],
                "inputs": [field(i) for i in spec["inputs"]],
                "state": [field(s) for s in spec["state"]],
                "changedPropIds": [f"{changed[0]}.{changed[1]}"],
            },
        )

    def open(self, tab: str, keep: bool = True) -> dict[str, dict]:
        """Show `tab`: every gated callback posted, as the renderer does; the figures each view sent
        ({graph id: figure}; a view that sent none is left out). With `keep`, the keys of what the views
        drew come back into the page's state, as the renderer keeps them; without, their answers are
        dropped (the renderer dropped the calls)."""
        self.values[TAB] = tab
        figures = {}
        for spec in self.gated:
            res = self.post(spec, TAB)
            assert res.status_code in (200, 204), (spec["output"], res.data[:300])
            if res.status_code == 204:
                continue
            outputs = res.get_json()["response"]
            figures.update({cid: props["figure"] for cid, props in outputs.items() if "figure" in props})
            if keep:
                self.values.update({(cid, "data"): props["data"] for cid, props in outputs.items() if cid in DRAWN})
        return figures


@pytest.fixture
def client(tiny_run, tmp_path) -> Client:
    return Client(tiny_run.parent, tmp_path / "dc")


def test_the_page_opens_on_the_first_tab_and_every_model_view_reads_the_tab(client):
    assert client.values[TAB] == ids.TAB_PAPER
    drawn = {o["id"] for spec in client.gated for o in parse_outputs(spec["output"])}
    assert MODEL_VIEWS <= drawn
    assert not drawn & {
        ids.EVAL_TABLE,
        ids.LOCAL_GRAPH,
        ids.GLOBAL_GRAPH,
        ids.SAMPLES_GRID,
        ids.SAMPLES_HTML,
        ids.ROBUST_MARGIN,
    }


@pytest.mark.parametrize("changed", [(ids.REFERENCE_DROPDOWN, "value"), (ids.COMPARED_DROPDOWN, "value")])
def test_with_the_first_tab_shown_the_model_views_do_no_work(client, changed):
    reading = [
        s for s in client.gated if f"{changed[0]}.{changed[1]}" in [f"{i['id']}.{i['property']}" for i in s["inputs"]]
    ]
    assert len(reading) >= 2, "the model map and the similarity map follow the reference and the compared"
    client.values[changed] = Combo("digits_cnn-random-global-oneshot-s50-ft0", "clean", 0).key
    for spec in reading:
        res = client.post(spec, changed)
        assert res.status_code == 204 and not res.data, (spec["output"], res.data[:200])


def test_opening_the_models_tab_draws_them_from_the_current_state(client):
    client.values[TAB] = ids.TAB_MODELS
    for spec in client.gated:
        res = client.post(spec, TAB)
        assert res.status_code == 200, (spec["output"], res.data[:300])
        outputs = res.get_json()["response"]
        if ids.MODELMAP_GRAPH in outputs:
            names = {t.get("name") for t in outputs[ids.MODELMAP_GRAPH]["figure"]["data"]}
            assert {"reference", "compared"} <= names, "the current reference and compared are ringed"
        if ids.PIE_NOTE in outputs:
            assert outputs[ids.PIE_SELECT]["children"].startswith("select the"), "the compared model's PIE"
    client.values[(ids.COMPARED_DROPDOWN, "value")] = None  # while it is shown, the views follow every change
    pie = next(s for s in client.gated if ids.PIE_GRAPH in s["output"])
    res = client.post(pie, (ids.COMPARED_DROPDOWN, "value"))
    assert res.status_code == 200 and "pick a pruned model" in res.get_json()["response"][ids.PIE_NOTE]["children"]


def test_the_tab_is_a_checked_input(client):
    spec = client.gated[0]
    for value in ("tab-other", None, ["tab-models"]):
        client.values[TAB] = value
        res = client.post(spec, TAB)
        assert res.status_code == 400 and b"view-tabs.active_tab must be one of the views' tabs" in res.data


def test_opening_the_tab_again_draws_only_what_changed_while_it_was_hidden(client):
    assert set(client.open(ids.TAB_MODELS)) == MODEL_VIEWS
    assert {client.values[(d, "data")] for d in DRAWN} != {None}, "each figure came with the key of what it shows"
    assert client.open(ids.TAB_PAPER) == {}
    assert client.open(ids.TAB_MODELS) == {}, "nothing changed since they were drawn: no figure sent"
    client.open(ids.TAB_PAPER)
    client.values[(ids.REFERENCE_DROPDOWN, "value")] = Combo("digits_cnn-random-global-oneshot-s50-ft0", "clean", 0).key
    redrawn = client.open(ids.TAB_MODELS)
    assert set(redrawn) == {ids.MODELMAP_GRAPH, ids.SIMILARITY_GRAPH}, "the views that show the reference"
    names = {t.get("name") for t in redrawn[ids.MODELMAP_GRAPH]["data"]}
    assert "reference" in names and "compared" in names
    client.open(ids.TAB_PAPER)
    client.values[(ids.COMPARED_DROPDOWN, "value")] = None
    client.values[(ids.MODEL_HIGHLIGHT, "data")] = {"models": ["digits_cnn-dense"], "source": "similarity"}
    assert set(client.open(ids.TAB_MODELS)) == MODEL_VIEWS - {ids.ATTR_DRIFT}, "the compared, the highlight"


def test_a_dropped_call_is_drawn_when_the_tab_opens_again(client):
    """The renderer drops a call still running when the same callback is called again, and its answer
    with it: here the views' calls for a new compared model, dropped when the user went back to the first
    tab at once. What the views show is the old compared model's, and the next opening must draw the new."""
    client.open(ids.TAB_MODELS)
    assert client.open(ids.TAB_PAPER) == {} and client.open(ids.TAB_MODELS) == {}
    client.values[(ids.COMPARED_DROPDOWN, "value")] = None
    assert ids.PIE_GRAPH in client.open(ids.TAB_MODELS, keep=False), "the calls whose answers the renderer drops"
    client.open(ids.TAB_PAPER)
    redrawn = client.open(ids.TAB_MODELS)
    assert set(redrawn) == MODEL_VIEWS - {ids.ATTR_DRIFT}, "every view that shows the compared model"
    assert client.open(ids.TAB_PAPER) == {} and client.open(ids.TAB_MODELS) == {}


def test_a_new_version_of_the_run_is_drawn_when_the_tab_opens_again(tiny_run, tmp_path):
    shutil.copytree(tiny_run, tmp_path / "store" / "tiny")
    client = Client(tmp_path / "store", tmp_path / "dc")
    client.open(ids.TAB_MODELS)
    client.open(ids.TAB_PAPER)
    models = tmp_path / "store" / "tiny" / "models.parquet"
    assert models.exists()
    stamp = models.stat().st_mtime_ns + 10**9
    os.utime(models, ns=(stamp, stamp))  # the run resumed: more models, or the same ones anew
    assert set(client.open(ids.TAB_MODELS)) == MODEL_VIEWS


def test_a_view_that_failed_draws_again_when_its_inputs_come_back(client, monkeypatch):
    """A failing call shows its message (app.views.common.callback_error) and empties the key of what
    the view shows: the figure on screen is the message, whatever inputs come next."""
    from app.views import modelmap

    client.open(ids.TAB_MODELS)
    good = client.values[(ids.MODELMAP_DRAWN, "data")]
    placement = (ids.MODELMAP_PLACEMENT, "value")
    spec = next(s for s in client.gated if ids.MODELMAP_GRAPH in s["output"])
    real = modelmap.draw
    monkeypatch.setattr(modelmap, "draw", lambda *a: 1 / 0)
    client.values[placement] = "provenance"
    answer = client.post(spec, placement).get_json()["response"]
    assert (
        "could not be drawn" in str(answer[ids.MODELMAP_GRAPH]["figure"]) and answer[ids.MODELMAP_DRAWN]["data"] is None
    )
    client.values[(ids.MODELMAP_DRAWN, "data")] = None
    monkeypatch.setattr(modelmap, "draw", real)
    client.values[placement] = "robustness"
    answer = client.post(spec, placement).get_json()["response"]
    assert answer[ids.MODELMAP_GRAPH]["figure"]["data"] and answer[ids.MODELMAP_DRAWN]["data"] == good
