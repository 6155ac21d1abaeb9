"""Browser tier: the per-layer sensitivity heatmap and the PIE view (issue #16). A real click on a cell
compares its model with the dense model; selecting the PIE feeds the gallery like a brush."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.action_chains import ActionChains

from app import ids
from app.main import create_app
from app.reader import StoreReader
from pipeline import store
from scripts.screenshots import open_tab
from scripts.screenshots_sensitivity import click_cell, pick_option
from tests.conftest import free_port
from tests.test_browser import wait
from tests.test_browser_views import value_of

pytestmark = pytest.mark.browser
SEEDED = "digits_cnn-magnitude-global-oneshot-s70-ft0"  # three seeds, pruned from three dense seeds
HEATMAP = (
    "const el = document.querySelector('#' + arguments[0] + ' .js-plotly-plot'); return el && el.data && el.data[0];"
)


@pytest.fixture
def duo(dash_duo, sensitivity_store, tmp_path):
    dash_duo.start_server(create_app(sensitivity_store, "sens", cache_dir=tmp_path / "dc"), port=free_port())
    dash_duo.driver.set_window_size(1280, 900)
    return dash_duo


def heatmap(duo) -> dict | None:
    return duo.driver.execute_script(HEATMAP, ids.SENS_GRAPH)


def test_a_click_on_a_sensitivity_cell_compares_its_model_with_the_dense_model(duo, sensitivity_store):
    table = StoreReader(sensitivity_store).sensitivity("sens")
    open_tab(duo.driver, ids.TAB_MODELS)
    wait(duo, lambda: (heatmap(duo) or {}).get("type") == "heatmap")
    drawn = heatmap(duo)
    assert drawn["y"] == ["0", "2", "6", "8"] and drawn["x"] == ["50 %", "90 %"]
    target = str(table.sort_values("flips")["model_id"].iloc[-1])
    click_cell(duo.driver, ids.SENS_GRAPH, target)
    wait(duo, lambda: value_of(duo, ids.COMPARED_DROPDOWN).startswith(f"{target} · clean"))
    assert value_of(duo, ids.REFERENCE_DROPDOWN).startswith("digits_cnn-dense · clean")
    wait(duo, lambda: "alone at sparsity" in duo.find_element(f"#{ids.SENS_NOTE}").text)
    layout = duo.driver.execute_script(
        f"return document.querySelector('#{ids.SENS_GRAPH} .js-plotly-plot').layout.shapes;"
    )
    assert len(layout) == 1, "the compared cell is outlined"
    # the metric switch recolours by flipped predictions, with the counts the store computes
    duo.select_dcc_dropdown(f"#{ids.SENS_METRIC}", "flipped predictions")
    wait(duo, lambda: "flipped" in str(heatmap(duo).get("colorbar", {})))
    expected = store.sensitivity_grid(table, "flips").to_numpy().tolist()
    assert heatmap(duo)["z"] == expected
    assert duo.get_logs() == []


def test_selecting_the_pie_of_a_seeded_population_fills_the_gallery(duo, sensitivity_store):
    pie = StoreReader(sensitivity_store).pie("sens", SEEDED)
    assert pie.mode == store.PIE and pie.count > 0
    open_tab(duo.driver, ids.TAB_MODELS)
    wait(duo, lambda: (heatmap(duo) or {}).get("type") == "heatmap")
    pick_option(duo.driver, ids.COMPARED_DROPDOWN, f"{SEEDED} · clean")
    wait(duo, lambda: "modal prediction of 3 pruned models" in duo.find_element(f"#{ids.PIE_NOTE}").text)
    button = duo.find_element(f"#{ids.PIE_SELECT}")
    wait(duo, lambda: button.text == f"select the {pie.count} PIE")
    button.click()
    wait(duo, lambda: f"{pie.count} samples selected (PIE)" in duo.find_element(f"#{ids.SELECTION_BADGE}").text)
    open_tab(duo.driver, ids.TAB_PAPER)  # the gallery
    wait(duo, lambda: f"of {pie.count} samples selected" in duo.find_element(f"#{ids.SAMPLES_COUNT}").text)
    shown = {
        int(e.get_attribute("data-sample-id"))
        for e in duo.driver.find_elements("css selector", f"#{ids.SAMPLES_GRID} .sample-card")
    }
    assert shown and shown <= set(pie.samples.loc[pie.samples["pie"], "sample_id"])
    # a click on a class's bar selects that class's PIE only
    counts = pie.per_class(10)
    most = max(range(10), key=counts.__getitem__)
    open_tab(duo.driver, ids.TAB_MODELS)
    bar = duo.driver.find_elements("css selector", f"#{ids.PIE_GRAPH} .trace.bars .point path")[most]
    ActionChains(duo.driver).move_to_element(bar).click().perform()
    wait(duo, lambda: f"{counts[most]} samples selected (PIE)" in duo.find_element(f"#{ids.SELECTION_BADGE}").text)
    assert duo.get_logs() == []


def test_one_seed_per_model_says_pie_fall_back_to_flips(duo):
    open_tab(duo.driver, ids.TAB_MODELS)
    wait(duo, lambda: (heatmap(duo) or {}).get("type") == "heatmap")
    pick_option(duo.driver, ids.COMPARED_DROPDOWN, "digits_cnn-random-global-oneshot-s50-ft0 · clean")
    wait(duo, lambda: "one seed per model" in duo.find_element(f"#{ids.PIE_NOTE}").text)
    assert "flips" in duo.find_element(f"#{ids.PIE_SELECT}").text
    assert duo.get_logs() == []
