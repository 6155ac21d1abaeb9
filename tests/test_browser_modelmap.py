"""Browser tier for the model map and the model-similarity map (issue 16): a click sets the compared
model (or the reference, with "a click sets: reference"), the rings follow the evaluation table's
choice, and a lasso in the similarity map highlights its models in the table and the map.
Waits on conditions, never sleeps."""

from __future__ import annotations

import shutil

import pytest
from selenium.webdriver.common.action_chains import ActionChains

from app import ids
from app.main import create_app
from scripts.screenshots import open_tab
from tests import evaltable_shapes as table_shapes
from tests.conftest import free_port
from tests.foreign_runs import DAMAGES
from tests.test_browser import figure_data, wait

pytestmark = pytest.mark.browser

NODES = """
const el = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
if (!el || !el._fullData) return null;
const out = {};
el._fullData.forEach(t => { if (t.mode === 'markers') out[t.name] = {
  ids: t.customdata ? Array.from(t.customdata, c => c[0]) : [],
  opacity: t.marker.opacity ? Array.from(t.marker.opacity) : [],
  x: Array.from(t.x), y: Array.from(t.y) }; });
return out;
"""


@pytest.fixture
def duo(dash_duo, browser_store, tmp_path):
    dash_duo.start_server(create_app(browser_store, "tiny", cache_dir=tmp_path / "dc"), port=free_port())
    dash_duo.driver.set_window_size(1280, 900)
    return dash_duo


def nodes(duo, graph_id: str) -> dict:
    return duo.driver.execute_script(NODES, graph_id) or {}


def scroll_to(duo, element) -> None:
    duo.driver.execute_script(
        "window.scrollTo({top: window.scrollY + arguments[0].getBoundingClientRect().top - 150, behavior: 'instant'});",
        element,
    )


def click_model(duo, graph_id: str, model_id: str) -> None:
    """Click the marker of `model_id` as a user does (its drawn point in the graph)."""
    index = duo.driver.execute_script(
        f"const el = document.querySelector('#{graph_id} .js-plotly-plot');"
        "for (const [k, t] of el.data.entries()) { if (t.mode !== 'markers' || !t.customdata) continue;"
        "  const i = Array.from(t.customdata, c => c[0]).indexOf(arguments[0]);"
        "  if (i >= 0) return [k, i]; } return null;",
        model_id,
    )
    assert index is not None, model_id
    trace = duo.driver.find_elements("css selector", f"#{graph_id} .scatterlayer .trace")[index[0]]
    point = trace.find_elements("css selector", ".point")[index[1]]
    scroll_to(duo, point)
    ActionChains(duo.driver).move_to_element(point).click().perform()


def test_model_map_click_sets_compared_then_reference_and_rings_follow(duo):
    open_tab(duo.driver, ids.TAB_MODELS)
    wait(duo, lambda: len(nodes(duo, ids.MODELMAP_GRAPH)) >= 3)
    drawn = nodes(duo, ids.MODELMAP_GRAPH)
    assert set(drawn) >= {"dense", "random", "magnitude", "reference"}
    dense = drawn["dense"]["ids"][0]
    assert drawn["reference"]["x"] == drawn["dense"]["x"], "the default reference (dense) is ringed"
    target = drawn["magnitude"]["ids"][-1]
    click_model(duo, ids.MODELMAP_GRAPH, target)
    wait(duo, lambda: duo.find_element(f"#{ids.COMPARED_DROPDOWN}").text.startswith(target))
    wait(duo, lambda: "compared" in nodes(duo, ids.MODELMAP_GRAPH))
    ringed = nodes(duo, ids.MODELMAP_GRAPH)
    assert ringed["compared"]["x"] == [ringed["magnitude"]["x"][-1]]
    outlined = table_shapes.drawn_in(table_shapes.drawn(duo.driver), "outline compared")
    assert outlined == {target}, "the evaluation table outlines the model the map picked"
    duo.find_element(f"#{ids.CLICK_TARGET} input[value=reference]").click()
    other = drawn["random"]["ids"][0]
    click_model(duo, ids.MODELMAP_GRAPH, other)
    wait(duo, lambda: duo.find_element(f"#{ids.REFERENCE_DROPDOWN}").text.startswith(other))
    assert duo.find_element(f"#{ids.COMPARED_DROPDOWN}").text.startswith(target)
    assert not duo.find_element(f"#{ids.REFERENCE_DROPDOWN}").text.startswith(dense)
    duo.find_element(f"#{ids.MODELMAP_PLACEMENT} input[value=provenance]").click()
    wait(duo, lambda: any(t.get("mode") == "lines" and t["n"] > 0 for t in figure_data(duo, ids.MODELMAP_GRAPH)))
    assert duo.get_logs() == []


def test_similarity_lasso_highlights_models_in_the_table_and_the_map(duo):
    open_tab(duo.driver, ids.TAB_MODELS)
    wait(duo, lambda: len(nodes(duo, ids.SIMILARITY_GRAPH)) >= 3)
    wait(duo, lambda: "models on clean" in duo.find_element(f"#{ids.SIMILARITY_NOTE}").text)
    plot = duo.find_element(f"#{ids.SIMILARITY_GRAPH} .nsewdrag")
    scroll_to(duo, plot)
    w, h = plot.size["width"], plot.size["height"]
    drag = ActionChains(duo.driver).move_to_element(plot).move_by_offset(-w // 2 + 3, -h // 2 + 3).click_and_hold()
    for dx, dy in [(w // 2, 0)] * 1 + [(0, (h - 6) // 8)] * 8 + [(-w // 2 + 1, 0)] + [(0, -(h - 6) // 8)] * 7:
        drag = drag.move_by_offset(dx, dy)  # a lasso around the left half, in steps as a hand draws it
    drag.release().perform()
    wait(
        duo, lambda: table_shapes.drawn_in(table_shapes.drawn(duo.driver), "veil")
    )  # a veil over the bars of the models left out
    table = table_shapes.drawn(duo.driver)
    faded = table_shapes.drawn_in(table, "veil")
    chosen = set(table["ids"]) - faded
    assert chosen and faded, "some models highlighted, the others faded"
    wait(
        duo,
        lambda: any(min(t["opacity"] or [1]) < 1 for t in nodes(duo, ids.MODELMAP_GRAPH).values()),
    )
    on_map = nodes(duo, ids.MODELMAP_GRAPH)
    lit = {m for t in on_map.values() for m, o in zip(t["ids"], t["opacity"]) if o == 1}
    assert chosen <= lit and not (faded & lit), "the map highlights the same models as the table"
    duo.find_element(f"#{ids.CLEAR_SELECTION}").click()
    wait(duo, lambda: not table_shapes.drawn_in(table_shapes.drawn(duo.driver), "veil"))
    assert duo.get_logs() == []


def test_similarity_by_cka_and_a_click_compares(duo):
    open_tab(duo.driver, ids.TAB_MODELS)
    wait(duo, lambda: len(nodes(duo, ids.SIMILARITY_GRAPH)) >= 3)
    duo.select_dcc_dropdown(f"#{ids.SIMILARITY_MEASURE}", "linear CKA")
    wait(
        duo,
        lambda: (
            "CKA"
            in (
                duo.driver.execute_script(
                    f"const el = document.querySelector('#{ids.SIMILARITY_GRAPH} .js-plotly-plot');"
                    "return el && el.layout && el.layout.title ? el.layout.title.text : '';"
                )
                or ""
            )
        ),
    )
    drawn = nodes(duo, ids.SIMILARITY_GRAPH)
    points = [(m, x, y) for t in drawn.values() for m, x, y in zip(t["ids"], t["x"], t["y"])]
    target = max(  # the model farthest from the others: no other marker covers it
        points, key=lambda p: min((p[1] - q[1]) ** 2 + (p[2] - q[2]) ** 2 for q in points if q[0] != p[0])
    )[0]
    click_model(duo, ids.SIMILARITY_GRAPH, target)
    wait(duo, lambda: duo.find_element(f"#{ids.COMPARED_DROPDOWN}").text.startswith(target))
    assert duo.get_logs() == []


def test_similarity_of_a_run_with_malformed_stored_predictions_draws_and_says_so(dash_duo, browser_store, tmp_path):
    """A stored prediction out of range: the map draws from the samples, and its note names the array."""
    shutil.copytree(browser_store / "tiny", tmp_path / "store" / "tiny")
    damage, phrase, _ = DAMAGES["stored predictions of a class out of range"]
    damage(tmp_path / "store" / "tiny")
    dash_duo.start_server(create_app(tmp_path / "store", "tiny", cache_dir=tmp_path / "dc"), port=free_port())
    dash_duo.driver.set_window_size(1280, 900)
    open_tab(dash_duo.driver, ids.TAB_MODELS)
    wait(dash_duo, lambda: len(nodes(dash_duo, ids.SIMILARITY_GRAPH)) >= 3)
    wait(dash_duo, lambda: phrase in dash_duo.find_element(f"#{ids.SIMILARITY_NOTE}").text)
    note = dash_duo.find_element(f"#{ids.SIMILARITY_NOTE}").text
    assert "models on clean" in note and "come from the samples" in note and len(note) < 400, note
