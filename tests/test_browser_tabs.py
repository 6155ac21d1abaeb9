"""Browser tier for the views' tabs (issue 14): a page load draws the paper's views and leaves the
model-level views undrawn; opening the models tab draws them; a model-map click there compares, and
back on the first tab the local geometry shows the comparison at its full width (it was redrawn while
hidden). Waits on conditions, never sleeps."""

from __future__ import annotations

import pytest

from app import ids
from app.main import create_app
from scripts.screenshots import open_tab
from tests.conftest import free_port
from tests.test_browser import settled, wait
from tests.test_browser_modelmap import click_model, nodes

pytestmark = pytest.mark.browser
MODEL_VIEWS = (ids.MODELMAP_GRAPH, ids.SIMILARITY_GRAPH, ids.SENS_GRAPH, ids.PIE_GRAPH, ids.ATTR_DRIFT)
DRAWN = """
const el = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
return !!el && ((el.data || []).length > 0 || ((el.layout || {}).annotations || []).length > 0);
"""
WIDTH = """
const el = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
return [el._fullLayout.width, el.getBoundingClientRect().width];
"""
COMPARISON = f"""
const el = document.querySelector('#{ids.LOCAL_GRAPH} .js-plotly-plot');
return !!el && !!el.layout && (el.layout.annotations || []).some(a => (a.text || '').includes('right → wrong'));
"""


@pytest.fixture
def duo(dash_duo, browser_store, tmp_path):
    dash_duo.start_server(create_app(browser_store, "tiny", cache_dir=tmp_path / "dc"), port=free_port())
    dash_duo.driver.set_window_size(1440, 900)
    return dash_duo


def drawn(duo, graph_id: str) -> bool:
    return duo.driver.execute_script(DRAWN, graph_id)


def test_model_views_draw_when_their_tab_opens_and_a_map_click_compares_on_the_first_tab(duo):
    wait(duo, lambda: settled(duo), 60)  # the paper's views drawn, no callback in flight
    assert not any(drawn(duo, g) for g in MODEL_VIEWS), "the model-level views wait for their tab"
    assert duo.driver.execute_script(f"return document.getElementById('{ids.PIE_NOTE}').textContent;") == ""
    width, shown = duo.driver.execute_script(WIDTH, ids.LOCAL_GRAPH)
    assert width == pytest.approx(shown, abs=1) and width > 1000, "the local geometry spans the page"

    open_tab(duo.driver, ids.TAB_MODELS)
    wait(duo, lambda: all(drawn(duo, g) for g in MODEL_VIEWS))
    wait(duo, lambda: len(nodes(duo, ids.MODELMAP_GRAPH)) >= 3)
    wait(duo, lambda: "pick a pruned model" in duo.find_element(f"#{ids.PIE_NOTE}").text)
    target = nodes(duo, ids.MODELMAP_GRAPH)["magnitude"]["ids"][-1]
    click_model(duo, ids.MODELMAP_GRAPH, target)
    wait(duo, lambda: duo.find_element(f"#{ids.COMPARED_DROPDOWN}").text.startswith(target))
    wait(duo, lambda: "compared" in nodes(duo, ids.MODELMAP_GRAPH), 60)  # the map follows while shown
    wait(duo, lambda: duo.driver.execute_script(COMPARISON), 60)  # the local geometry redrawn while hidden

    open_tab(duo.driver, ids.TAB_PAPER)
    wait(duo, lambda: (lambda w: w[0] == pytest.approx(w[1], abs=1))(duo.driver.execute_script(WIDTH, ids.LOCAL_GRAPH)))
    assert duo.driver.execute_script(WIDTH, ids.LOCAL_GRAPH)[1] == pytest.approx(shown, abs=1), "its full width"
    assert duo.get_logs() == []
