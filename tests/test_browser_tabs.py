"""Browser tier for the views' tabs (issue 14): a page load draws the paper's views and leaves the
model-level views undrawn; opening the models tab draws them; a model-map click there compares, and
back on the first tab the local geometry shows the comparison at its full width (it was redrawn while
hidden); opening the models tab again redraws none of the views whose inputs did not change. On a run
of as many models as the demo, the tab bar is on the first screen: the evaluation table scrolls in a
box of bounded height, where hovering and clicking a bar still work. Waits on conditions, never sleeps."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from app import ids
from app.main import create_app
from scripts.screenshots import open_tab
from tests import evaltable_shapes as table_shapes
from tests.conftest import free_port
from tests.test_browser import settled, wait
from tests.test_browser_modelmap import click_model, nodes

pytestmark = pytest.mark.browser
MODEL_VIEWS = {ids.MODELMAP_GRAPH, ids.SIMILARITY_GRAPH, ids.SENS_GRAPH, ids.PIE_GRAPH, ids.ATTR_DRIFT}
DRAWN = """
const el = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
return !!el && ((el.data || []).length > 0 || ((el.layout || {}).annotations || []).length > 0);
"""
WIDTH = """
const el = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
return [el._fullLayout.width, el.getBoundingClientRect().width];
"""
HOVER = """
const el = document.querySelector('#' + arguments[0] + ' .hoverlayer');
return el ? el.textContent : '';
"""
MARK = "arguments[0].forEach(id => { document.querySelector('#' + id + ' .js-plotly-plot').data.marked = true; });"
MARKED = "return !!document.querySelector('#' + arguments[0] + ' .js-plotly-plot').data.marked;"
COMPARISON = f"""
const el = document.querySelector('#{ids.LOCAL_GRAPH} .js-plotly-plot');
return !!el && !!el.layout && (el.layout.annotations || []).some(a => (a.text || '').includes('right → wrong'));
"""


TOPS = f"""
const tabs = document.getElementById('{ids.VIEW_TABS}').getBoundingClientRect();
const box = document.getElementById('{ids.EVAL_KEYS}');
const plot = box.querySelector('.js-plotly-plot');
return {{inner: window.innerHeight, scrolled: window.scrollY, tabsBottom: tabs.bottom, boxHeight: box.clientHeight,
         boxScrolls: box.scrollHeight, plotHeight: plot.getBoundingClientRect().height,
         figure: plot._fullLayout ? plot._fullLayout.height : 0}};
"""
BOX = f"""
const box = document.getElementById('{ids.EVAL_KEYS}');
if (arguments[0]) box.scrollTop = box.scrollHeight;
const frame = box.getBoundingClientRect();
return [box.scrollTop, frame.top, frame.bottom];
"""


def lowest_bar(driver) -> tuple[int, str, float]:
    """The table box scrolled to its bottom: the bar of its last row in sight (index, model) and the scroll."""
    scrolled, top, bottom = driver.execute_script(BOX, True)
    table = table_shapes.drawn(driver)
    sight = [(y, i) for i, (_, y) in enumerate(table["screen"]) if top < y < bottom]
    index = max(sight)[1] if sight else -1
    return index, table["ids"][index] if sight else None, scrolled


@pytest.fixture(scope="module")
def many_models(tmp_path_factory):
    """A run of 70 models, as many as the demo: its evaluation table is taller than a laptop's window."""
    from benchmarks.make_synthetic_store import write_synthetic_run

    store_dir = tmp_path_factory.mktemp("many-models")
    write_synthetic_run(store_dir, "many", models=70, n_evalsets=1, samples=20, classes=10, file_per_model=True)
    return store_dir


def test_the_tab_bar_is_on_the_first_screen_and_the_scrolled_table_still_hovers_and_clicks(
    dash_duo, many_models, tmp_path
):
    dash_duo.start_server(create_app(many_models, "many", cache_dir=tmp_path / "dc"), port=free_port())
    for width, height in ((1440, 900), (1280, 720)):
        dash_duo.driver.set_window_size(width, height)
        wait(dash_duo, lambda: table_shapes.count(table_shapes.drawn(dash_duo.driver), "fill") > 50, 60)
        wait(dash_duo, lambda: dash_duo.driver.execute_script(TOPS)["figure"] > 0)
        at = dash_duo.driver.execute_script(TOPS)
        assert at["scrolled"] == 0 and at["tabsBottom"] <= at["inner"], (width, height, at)
        assert at["plotHeight"] == pytest.approx(at["figure"], abs=1), "the table's whole figure, in its box"
        assert at["figure"] > at["inner"] - 200 and at["boxScrolls"] > at["boxHeight"], "a table that scrolls"
    wait(dash_duo, lambda: dash_duo._wait_for_callbacks())  # the new size's redraw done: it would drop a hover
    wait(dash_duo, lambda: not dash_duo.driver.find_elements("css selector", ".dash-graph--pending"))
    index, model, scrolled = lowest_bar(dash_duo.driver)
    assert index >= 0 and model and scrolled > 0, "a bar of the table's last row, scrolled into sight"
    nudge = iter(range(1000))

    def hovered() -> bool:  # the bar found again each time (a redraw moves it), and a move every time
        table_shapes.point_to(dash_duo.driver, index, nudge=next(nudge) % 2)
        return model in dash_duo.driver.execute_script(HOVER, ids.EVAL_TABLE)

    wait(dash_duo, hovered)
    ActionChains(dash_duo.driver).click().perform()
    wait(dash_duo, lambda: model in dash_duo.find_element(f"#{ids.COMPARED_DROPDOWN}").text)

    dash_duo.driver.execute_script(f"const b = document.getElementById('{ids.EVAL_KEYS}'); b.scrollTop = 0; b.focus();")
    keys = dash_duo.driver.switch_to.active_element
    for _ in range(12):  # from the keyboard, down the column: the box scrolls the bar in focus into sight
        keys.send_keys(Keys.ARROW_DOWN)
    wait(dash_duo, lambda: dash_duo.driver.execute_script(BOX, False)[0] > 0)
    scrolled, top, bottom = dash_duo.driver.execute_script(BOX, False)
    focus = int(dash_duo.driver.execute_script(f"return document.getElementById('{ids.EVAL_KEYS}').dataset.point;"))
    assert top <= table_shapes.drawn(dash_duo.driver)["screen"][focus][1] <= bottom, (
        "the bar in focus is in the box's sight"
    )
    assert dash_duo.get_logs() == []


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
    wait(duo, lambda: duo._wait_for_callbacks())

    duo.driver.execute_script(MARK, list(MODEL_VIEWS))  # a figure set anew replaces the graph's data, and the mark
    open_tab(duo.driver, ids.TAB_MODELS)
    duo.driver.find_element("css selector", f"#{ids.MODELMAP_PLACEMENT} input[value=provenance]").click()
    wait(duo, lambda: not duo.driver.execute_script(MARKED, ids.MODELMAP_GRAPH), 60)  # called after the tab's calls
    wait(duo, lambda: duo._wait_for_callbacks())
    kept = {g: duo.driver.execute_script(MARKED, g) for g in MODEL_VIEWS - {ids.MODELMAP_GRAPH}}
    assert all(kept.values()), f"nothing they show changed since they were drawn: no figure sent, {kept}"
    assert duo.get_logs() == []
