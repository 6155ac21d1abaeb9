"""The views' tabs (issue 14): the model-level views (model map, similarity, sensitivity, PIE, attribution
drift) draw only while their tab is shown. Their callbacks, posted as the renderer posts them (Flask test
client), answer "no update" with the first tab shown, and draw when the models tab opens."""

from __future__ import annotations

import pytest

from app import ids
from app.main import create_app
from app.state import Combo
from benchmarks.dash_client import initial_state, parse_outputs

TAB = (ids.VIEW_TABS, "active_tab")
MODEL_VIEWS = {ids.MODELMAP_GRAPH, ids.SIMILARITY_GRAPH, ids.SENS_GRAPH, ids.PIE_GRAPH, ids.ATTR_DRIFT}
COMPARED = Combo("digits_cnn-magnitude-global-oneshot-s80-ft1", "clean", 0).key


class Client:
    """Every callback of the app that reads the shown tab, posted with the page's state."""

    def __init__(self, store_dir, cache_dir) -> None:
        self.client = create_app(store_dir, "tiny", cache_dir).server.test_client()
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


@pytest.fixture
def client(tiny_run, tmp_path) -> Client:
    return Client(tiny_run.parent, tmp_path / "dc")


def test_the_page_opens_on_the_first_tab_and_every_model_view_reads_the_tab(client):
    assert client.values[TAB] == ids.TAB_PAPER
    drawn = {o["id"] for spec in client.gated for o in parse_outputs(spec["output"])}
    assert MODEL_VIEWS <= drawn
    assert not drawn & {ids.EVAL_TABLE, ids.LOCAL_GRAPH, ids.GLOBAL_GRAPH, ids.SAMPLES_GRID, ids.ROBUST_MARGIN}


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
