"""Browser tier: the dashboard on a run of 1000 classes (issue 14). The class pre-selection ranks
them, the small multiples and parallel coordinates show a few, every view draws. Waits on
conditions, never sleeps."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.keys import Keys

from app import ids
from app.figures.local import MAX_CLASSES, RANK_CHANGE, RANK_CONFUSION
from app.figures.parallel import MAX_AXES
from app.main import create_app
from app.reader import StoreReader
from app.state import Combo
from app.views.local import ranking
from tests.conftest import MANY_CLASSES, free_port
from tests.test_browser import figure_data, wait
from tests.test_browser_views import LAYOUT, OPTIONS, pick_by_keyboard, value_of

pytestmark = pytest.mark.browser


@pytest.fixture
def duo(dash_duo, many_classes_store, tmp_path):
    dash_duo.start_server(create_app(many_classes_store, "many", cache_dir=tmp_path / "dc"), port=free_port())
    dash_duo.driver.set_window_size(1440, 900)
    return dash_duo


def drawn(duo) -> bool:
    """Every view of the page has drawn data and no callback is in flight."""
    has = lambda graph, test: any(test(t) for t in figure_data(duo, graph))  # noqa: E731
    return (
        has(ids.EVAL_TABLE, lambda t: t.get("type") == "bar" and t["n"] > 0)
        and has(ids.LOCAL_GRAPH, lambda t: t.get("mode") == "markers" and t["n"] > 0)
        and has(ids.GLOBAL_GRAPH, lambda t: t.get("mode") == "lines" and t["n"] > 0)
        and has(ids.ROBUST_MARGIN, lambda t: t.get("fill") == "tozeroy")
        and len(figure_data(duo, ids.ROBUST_SWEETSPOT)) > 0
        and has(ids.DIM_GRAPH, lambda t: t.get("fill") == "toself")
        and len(duo.driver.find_elements("css selector", f"#{ids.SAMPLES_GRID} img")) > 0
        and duo._wait_for_callbacks()
    )


def small_multiples(duo) -> list[str]:
    """The class titles of the local geometry's small multiples."""
    layout = duo.driver.execute_script(LAYOUT, ids.LOCAL_GRAPH) or {}
    return [a["text"] for a in layout.get("annotations", []) if "<b>" in a.get("text", "")]


def test_a_1000_class_run_ranks_its_classes_and_draws_every_view(duo, many_classes_store):
    wait(duo, lambda: drawn(duo), timeout=60)
    reader = StoreReader(many_classes_store)
    models = reader.models("many").set_index("method")["model_id"]
    ref, cmp = Combo(models["dense"], "clean", 0), Combo(models["magnitude"], "gaussian_noise", 3)
    assert len(small_multiples(duo)) == MAX_CLASSES, "a few classes, not 1000 small multiples"
    wait(duo, lambda: "right" in value_of(duo, ids.CLASS_DROPDOWN)), "ranked, with accuracies, from the first page"
    ticks = duo.driver.execute_script(LAYOUT, ids.GLOBAL_GRAPH)["xaxis"]["ticktext"]
    assert len(ticks) == MAX_AXES + 2, "the k most relevant angle axes, then length and margin"

    pick_by_keyboard(duo, ids.COMPARED_DROPDOWN, "magnitude-global-oneshot-s50-ft0 · gaussian_noise s3")
    top = ranking(reader, "many", ref, cmp, RANK_CHANGE).iloc[0]
    assert top["flips"] > 0
    wait(duo, lambda: value_of(duo, ids.CLASS_DROPDOWN).startswith(f"{int(top['class'])}: "))
    assert f"({int(top['flips'])} flips)" in value_of(duo, ids.CLASS_DROPDOWN)
    wait(duo, lambda: any(t.get("name") == "compared" and t["n"] > 0 for t in figure_data(duo, ids.GLOBAL_GRAPH)))
    wait(duo, lambda: "nearest classes" in duo.find_element(f"#{ids.GLOBAL_NOTE}").text)

    duo.find_element(f"#{ids.CLASS_RANK} input[value={RANK_CONFUSION}]").click()
    confused = ranking(reader, "many", ref, cmp, RANK_CONFUSION).iloc[0]
    wait(duo, lambda: value_of(duo, ids.CLASS_DROPDOWN).startswith(f"{int(confused['class'])}: "))
    duo.driver.execute_script("arguments[0].focus();", duo.find_element(f"#{ids.CLASS_DROPDOWN}"))
    duo.driver.switch_to.active_element.send_keys(Keys.ENTER)
    wait(duo, lambda: duo.driver.execute_script(OPTIONS))
    first = duo.driver.execute_script(OPTIONS)
    assert first[0].startswith(f"{int(confused['class'])}: ") and len(first) < MANY_CLASSES, "ranked; drawn as scrolled"
    duo.driver.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait(duo, lambda: duo._wait_for_callbacks())
    assert duo.get_logs() == []
