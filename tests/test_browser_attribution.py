"""Browser tier for the attribution maps (issue 15): the gallery shows the reference's and the
compared model's maps side by side; the drift view draws, and a box over its points selects
samples whose maps the gallery then shows. Waits on conditions, never sleeps."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.action_chains import ActionChains

from app import ids
from app.main import create_app
from scripts.screenshots import open_tab
from tests.conftest import free_port
from tests.test_browser import figure_data, wait
from tests.test_browser_views import pick_by_keyboard

pytestmark = pytest.mark.browser
CHILD = "digits_cnn-magnitude-global-oneshot-s90-ft0"
PAIRS = (  # per card with maps, how many map images it shows
    f"return Array.from(document.querySelectorAll('#{ids.SAMPLES_GRID} .map-pair'))"
    ".map(p => p.querySelectorAll('img.map-img').length);"
)


@pytest.fixture
def duo(dash_duo, attribution_store, tmp_path):
    dash_duo.start_server(create_app(attribution_store, "tiny", cache_dir=tmp_path / "dc"), port=free_port())
    dash_duo.driver.set_window_size(1440, 900)
    return dash_duo


def test_the_gallery_shows_both_maps_and_a_box_in_the_drift_view_selects_their_samples(duo):
    wait(duo, lambda: duo.find_element(f"#{ids.SAMPLES_ATTR_METHOD}").text == "occlusion")
    wait(duo, lambda: duo.driver.execute_script(PAIRS) == [1], timeout=60)  # no compared model: the reference's map
    pick_by_keyboard(duo, ids.COMPARED_DROPDOWN, "s90")
    wait(duo, lambda: duo.driver.execute_script(PAIRS) == [2], timeout=60)  # the class in focus has one mapped sample
    assert "ρ" in duo.find_element(f"#{ids.SAMPLES_GRID} .maps").text

    open_tab(duo.driver, ids.TAB_MODELS)
    wait(duo, lambda: any(t["name"] == "samples" and t["n"] > 0 for t in figure_data(duo, ids.ATTR_DRIFT)), 60)
    plot = duo.find_element(f'#{ids.ATTR_DRIFT} .nsewdrag[data-subplot="xy"]')
    duo.driver.execute_script(
        "window.scrollTo({top: window.scrollY + arguments[0].getBoundingClientRect().top - 120, behavior: 'instant'});",
        plot,
    )
    w, h = plot.size["width"], plot.size["height"]
    drag = ActionChains(duo.driver).move_to_element(plot).move_by_offset(-w // 2 + 2, -h // 2 + 2).click_and_hold()
    for _ in range(10):  # the whole first panel: every sample's occlusion drift
        drag = drag.move_by_offset(w // 10 - 1, h // 10 - 1)
    drag.release().perform()
    wait(duo, lambda: "selected (attribution)" in duo.find_element(f"#{ids.SELECTION_BADGE}").text)
    wait(duo, lambda: (lambda p: len(p) > 3 and set(p) == {2})(duo.driver.execute_script(PAIRS)), timeout=60)
    open_tab(duo.driver, ids.TAB_PAPER)  # the gallery
    assert "with maps" in duo.find_element(f"#{ids.SAMPLES_COUNT}").text
    assert duo.get_logs() == []
