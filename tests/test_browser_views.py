"""Browser tier: the dashboard as a researcher reads it (issue 17). Numbers where they are
needed, no dead ends, the page fits the screen, the main controls work from the keyboard.
Waits on conditions, never sleeps."""

from __future__ import annotations

import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.keys import Keys

from app import ids
from app.main import create_app
from app.reader import StoreReader
from app.state import Combo
from app.views.local import flips_per_class
from tests import evaltable_shapes as table_shapes
from tests.conftest import HOSTILE_NAMES, free_port
from tests.test_browser import figure_data, settled, wait

pytestmark = pytest.mark.browser
REF, CMP = Combo("digits_cnn-dense", "clean", 0), Combo("digits_cnn-magnitude-global-oneshot-s80-ft1", "clean", 0)
OVERFLOW = """
const page = document.documentElement;
const wide = Array.from(document.querySelectorAll('.view-card, .dash-spreadsheet-container'))
  .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => (e.id || e.className) + ' ' + e.scrollWidth);
return {page: page.scrollWidth - page.clientWidth, wide: wide};
"""
TEXTS = (  # every text a plot draws at its points, with its bounding box; each line of a multi-line text
    "return Array.from(document.querySelectorAll('#' + arguments[0] + ' .textpoint text'))"
    ".flatMap(t => t.querySelector('tspan.line') ? Array.from(t.querySelectorAll('tspan.line')) : [t])"
    ".filter(t => t.textContent.trim()).map(t => [t.textContent, t.getBoundingClientRect().toJSON()]);"
)
LAYOUT = "const el = document.querySelector('#' + arguments[0] + ' .js-plotly-plot'); return el && el.layout;"
OPTIONS = (  # the open dropdown's options (radio items: "a click sets", "placed by", "cells", "rank classes by" too)
    "return Array.from(document.querySelectorAll('[role=option]'))"
    f".filter(o => !o.closest('#{ids.CLICK_TARGET}, #{ids.MODELMAP_PLACEMENT}, #{ids.EVAL_MODE}, #{ids.CLASS_RANK}'))"
    ".map(o => o.textContent);"
)


@pytest.fixture
def duo(dash_duo, browser_store, tmp_path):
    dash_duo.start_server(create_app(browser_store, "tiny", cache_dir=tmp_path / "dc"), port=free_port())
    dash_duo.driver.set_window_size(1440, 900)
    return dash_duo


def value_of(duo, dropdown_id: str) -> str:
    return duo.find_element(f"#{dropdown_id}").text


def pick_by_keyboard(duo, dropdown_id: str, search: str) -> None:
    """Focus the dropdown and open it with Enter, type to search, Enter to pick the one match."""
    duo.driver.execute_script("arguments[0].focus();", duo.find_element(f"#{dropdown_id}"))
    duo.driver.switch_to.active_element.send_keys(Keys.ENTER)  # open it, as a keyboard user would
    wait(duo, lambda: duo.driver.execute_script(OPTIONS))
    duo.driver.switch_to.active_element.send_keys(search)
    wait(duo, lambda: len(duo.driver.execute_script(OPTIONS)) == 1)  # the one combination that matches
    duo.driver.switch_to.active_element.send_keys(Keys.ENTER)


def test_no_horizontal_overflow_at_common_widths(duo):
    wait(duo, lambda: settled(duo))
    for width in (1280, 1440, 1920):
        duo.driver.set_window_size(width, 900)
        wait(duo, lambda: duo.driver.execute_script("return window.innerWidth") == width)
        fits = lambda: (lambda f: f["page"] <= 0 and f["wide"] == [])(duo.driver.execute_script(OVERFLOW))  # noqa: E731
        try:  # the graphs follow the window's width a moment after it changes
            wait(duo, fits, timeout=20)
        except TimeoutException:
            pytest.fail(f"at {width} px: {duo.driver.execute_script(OVERFLOW)}")
    cells = duo.driver.find_elements("css selector", f"#{ids.ROBUST_TABLE1} td[data-dash-column=model]")
    assert cells and cells[0].get_attribute("title") or cells[0].text, "model ids are shown (full id on hover)"
    assert duo.get_logs() == []


def test_evaluation_table_numbers_are_drawn_and_do_not_overlap_at_1280_px(duo):
    wait(duo, lambda: settled(duo))
    duo.driver.set_window_size(1280, 800)
    wait(duo, lambda: duo.driver.execute_script("return window.innerWidth") == 1280)
    for mode, wanted in (("auto", "sparsity labels"), ("numbers", "values"), ("bars", "sparsity labels")):
        duo.driver.execute_script(
            f"document.querySelector('#{ids.EVAL_MODE} input[value=' + arguments[0] + ']').click();", mode
        )
        wait(duo, lambda: any(t.get("name") == wanted for t in figure_data(duo, ids.EVAL_TABLE)))
        wait(duo, lambda: settled(duo))
        plot_box = f"return document.querySelector('#{ids.EVAL_TABLE} .main-svg').getBoundingClientRect().toJSON();"

        def inside() -> bool:  # the relayout after a mode switch has finished: every text within the plot
            plot = duo.driver.execute_script(plot_box)
            rects = duo.driver.execute_script(TEXTS, ids.EVAL_TABLE)
            return all(plot["left"] <= r["left"] and r["right"] <= plot["right"] for _, r in rects)

        try:
            wait(duo, inside, timeout=10)
        except TimeoutException:
            pytest.fail(f"{mode}: a label drawn outside the plot")
        texts = duo.driver.execute_script(TEXTS, ids.EVAL_TABLE)
        drawn = [t for t, _ in texts]
        bars = table_shapes.count(
            table_shapes.drawn(duo.driver), "fill"
        )  # the bars drawn (a model on an evaluation set each)
        if wanted == "values":
            lines = [t for t in drawn if t.split(" ")[0] in ("50", "80") and t.split(" ")[-1].isdigit()]
            assert len(lines) == bars > 10, "a line 'sparsity accuracy' for every bar"
        else:
            assert {"50", "80"} <= set(drawn), "a sparsity under every bar"
            assert sum(t.isdigit() for t in drawn) == 2 * bars > 20, "and its accuracy above it"
        assert any(t.startswith("magnitude") for t in drawn), drawn  # full method names: the columns have room
        assert overlapping(texts) == [], mode
    assert duo.get_logs() == []


def overlapping(texts: list) -> list[tuple[str, str]]:
    """Pairs of drawn texts whose bounding boxes overlap (by more than half a pixel)."""
    hits = []
    for i, (a, r) in enumerate(texts):
        for b, q in texts[i + 1 :]:
            if min(r["right"], q["right"]) - max(r["left"], q["left"]) > 0.5 and (
                min(r["bottom"], q["bottom"]) - max(r["top"], q["top"]) > 0.5
            ):
                hits.append((a, b))
    return hits


def test_compared_dropdown_lists_combinations_before_any_click_and_a_keyboard_pick_compares(duo):
    wait(duo, lambda: settled(duo))
    assert value_of(duo, ids.REFERENCE_DROPDOWN).startswith("digits_cnn-dense")
    duo.find_element(f"#{ids.COMPARED_DROPDOWN}").click()
    listed = duo.driver.execute_script(OPTIONS)
    assert len(listed) >= 9 and any("magnitude" in o and "clean" in o for o in listed), listed
    duo.driver.switch_to.active_element.send_keys(Keys.ESCAPE)
    pick_by_keyboard(duo, ids.COMPARED_DROPDOWN, "magnitude-global-oneshot-s80-ft1 · clean")
    wait(duo, lambda: "compared" in duo.find_element(f"#{ids.COMBO_TABLE}").text)
    wait(
        duo,
        lambda: any(
            "right → wrong" in a.get("text", "")
            for a in (duo.driver.execute_script(LAYOUT, ids.LOCAL_GRAPH) or {}).get("annotations", [])
        ),
    )
    assert duo.get_logs() == []


def test_a_comparison_focuses_the_class_with_most_flips_and_draws_compared_lines(duo, browser_store):
    wait(duo, lambda: settled(duo))
    pick_by_keyboard(duo, ids.COMPARED_DROPDOWN, "magnitude-global-oneshot-s80-ft1 · clean")
    flips = flips_per_class(StoreReader(browser_store), "tiny", REF, CMP)
    most = int(flips.idxmax())
    assert flips.max() > 0
    wait(duo, lambda: value_of(duo, ids.CLASS_DROPDOWN).startswith(f"{most}: "))
    assert f"({int(flips[most])} flips)" in value_of(duo, ids.CLASS_DROPDOWN)
    wait(
        duo,
        lambda: any(t.get("name") == "compared" and t["n"] > 0 for t in figure_data(duo, ids.GLOBAL_GRAPH)),
    )
    reference = next(t for t in figure_data(duo, ids.GLOBAL_GRAPH) if t.get("name") == "reference")
    assert reference["n"] > 0
    strips = duo.driver.execute_script(LAYOUT, ids.GLOBAL_DENSITY)
    assert "compared" in strips["annotations"][0]["text"], "the density strips say what they show"
    ticks = duo.driver.execute_script(
        f"return Array.from(document.querySelectorAll('#{ids.GLOBAL_GRAPH} g[class$=tick] text'))"
        ".map(t => parseFloat(getComputedStyle(t).fontSize));"
    )
    assert ticks and min(ticks) >= 10, "readable axis ticks"
    assert duo.get_logs() == []


def test_the_toolbar_leaves_the_subplot_titles_and_the_slider_label_fits(duo):
    wait(duo, lambda: settled(duo))
    overlaps = duo.driver.execute_script(
        f"const root = document.querySelector('#{ids.LOCAL_GRAPH}');"
        "const bar = root.querySelector('.modebar').getBoundingClientRect();"
        "return Array.from(root.querySelectorAll('.annotation-text')).filter(t => {"
        "  const r = t.getBoundingClientRect();"
        "  return r.right > bar.left && r.left < bar.right && r.bottom > bar.top && r.top < bar.bottom;"
        "}).map(t => t.textContent);"
    )
    assert overlaps == []
    clipped = duo.driver.execute_script(
        f"const box = document.querySelector('#{ids.LOCAL_DIFF_RANGE}').closest('.control').getBoundingClientRect();"
        f"return Array.from(document.querySelectorAll('#{ids.LOCAL_DIFF_RANGE} *')).filter(e =>"
        "  e.children.length === 0 && e.textContent.trim() && e.getBoundingClientRect().right > box.right + 1"
        ").map(e => e.textContent);"
    )
    assert clipped == []


def test_switching_runs_drops_the_previous_runs_reference(dash_duo, two_run_store, tmp_path):
    dash_duo.start_server(create_app(two_run_store, "tiny", cache_dir=tmp_path / "dc"), port=free_port())
    dash_duo.driver.set_window_size(1440, 900)
    wait(dash_duo, lambda: value_of(dash_duo, ids.REFERENCE_DROPDOWN).startswith("digits_cnn-dense"))
    dash_duo.find_element(f"#{ids.RUN_DROPDOWN}").click()  # two runs: a list without a search box
    other = "return Array.from(document.querySelectorAll('[role=option]')).find(o => o.textContent === 'other');"
    wait(dash_duo, lambda: dash_duo.driver.execute_script(other))
    dash_duo.driver.execute_script(other).click()
    wait(dash_duo, lambda: value_of(dash_duo, ids.REFERENCE_DROPDOWN).startswith("other-net"))
    assert value_of(dash_duo, ids.COMPARED_DROPDOWN).startswith("none")
    wait(dash_duo, lambda: "other-net" in dash_duo.find_element(f"#{ids.COMBO_TABLE}").text)
    assert "digits_cnn-" not in dash_duo.find_element(f"#{ids.COMBO_TABLE}").text  # no model id of "tiny"
    assert dash_duo.get_logs() == []


def test_the_main_controls_are_reachable_with_the_tab_key(duo):
    wait(duo, lambda: settled(duo))
    wanted = {ids.RUN_DROPDOWN, ids.CLEAR_SELECTION, ids.EXPORT_BUTTON, ids.EVAL_SEVERITY, ids.REFERENCE_DROPDOWN}
    wanted |= {ids.COMPARED_DROPDOWN, ids.CLASS_DROPDOWN, ids.LOCAL_DIFF_METRIC, ids.SAMPLES_SORT, ids.EVAL_KEYS}
    wanted |= {ids.EVAL_MODE, ids.CLICK_TARGET, ids.SAMPLES_GRID}
    seen = set()
    duo.driver.execute_script("document.activeElement.blur(); window.scrollTo(0, 0);")
    body = duo.driver.find_element("tag name", "body")
    body.send_keys(Keys.TAB)
    for _ in range(80):
        seen.add(
            duo.driver.execute_script(
                "const a = document.activeElement; const owner = a.closest('[id]'); return owner ? owner.id : a.id;"
            )
        )
        if wanted <= seen:
            break
        duo.driver.switch_to.active_element.send_keys(Keys.TAB)
    assert wanted <= seen, wanted - seen
    outline = duo.driver.execute_script(
        f"const b = document.getElementById('{ids.EXPORT_BUTTON}'); b.focus();"
        "const s = getComputedStyle(b); return s.outlineStyle + ' ' + s.boxShadow;"
    )
    assert outline != "none none", "a focused control shows it"


ACTIVE = "const a = document.activeElement; const owner = a.closest('[id]'); return owner ? owner.id : a.id;"


def tab_to(duo, element_id: str, backwards: bool = False, limit: int = 80) -> None:
    """Press Tab (Shift+Tab) until the focus is in `element_id`: the keyboard's own way there."""
    key = Keys.SHIFT + Keys.TAB if backwards else Keys.TAB
    for _ in range(limit):
        if duo.driver.execute_script(ACTIVE) == element_id:
            return
        duo.driver.switch_to.active_element.send_keys(key)
    pytest.fail(f"Tab never reached #{element_id}")


def test_the_evaluation_table_gallery_and_brush_reset_work_from_the_keyboard(duo):
    wait(duo, lambda: settled(duo))
    duo.driver.execute_script("document.activeElement.blur(); window.scrollTo(0, 0);")
    duo.driver.find_element("tag name", "body").send_keys(Keys.TAB)
    tab_to(duo, ids.EVAL_KEYS)
    ring = duo.driver.execute_script("return getComputedStyle(document.activeElement).outlineStyle;")
    assert ring != "none", "the table shows that it has the focus"
    point = f"return document.getElementById('{ids.EVAL_KEYS}').dataset.point;"
    custom = (
        f"return document.querySelector('#{ids.EVAL_TABLE} .js-plotly-plot').data[0].customdata[Number(arguments[0])];"
    )
    wait(duo, lambda: duo.driver.execute_script(point) == "0")  # the focus starts on the first bar, its label shown
    wait(duo, lambda: duo.find_elements(f"#{ids.EVAL_TABLE} .hoverlayer .hovertext"))
    keys = duo.driver.switch_to.active_element
    keys.send_keys(Keys.ARROW_RIGHT)
    wait(duo, lambda: duo.driver.execute_script(point) not in (None, "0"))
    first = duo.driver.execute_script(custom, duo.driver.execute_script(point))
    keys.send_keys(Keys.ENTER)  # "a click sets: compared"
    wait(duo, lambda: value_of(duo, ids.COMPARED_DROPDOWN).startswith(f"{first[0]} · {first[1]}"))

    tab_to(duo, ids.CLICK_TARGET)  # "a click sets": the arrow keys move the radio choice to "reference"
    duo.driver.switch_to.active_element.send_keys(Keys.ARROW_RIGHT)
    wait(
        duo,
        lambda: (
            duo.driver.execute_script(f"return document.querySelector('#{ids.CLICK_TARGET} input:checked').value;")
            == "reference"
        ),
    )
    tab_to(duo, ids.EVAL_KEYS, backwards=True)
    keys = duo.driver.switch_to.active_element
    before = duo.driver.execute_script(point)
    keys.send_keys(Keys.ARROW_DOWN)  # the bar under it: the next row of the column
    wait(duo, lambda: duo.driver.execute_script(point) != before)
    second = duo.driver.execute_script(custom, duo.driver.execute_script(point))
    keys.send_keys(Keys.ENTER)
    wait(duo, lambda: value_of(duo, ids.REFERENCE_DROPDOWN).startswith(f"{second[0]} · {second[1]}"))
    assert value_of(duo, ids.COMPARED_DROPDOWN).startswith(f"{first[0]} · {first[1]}")

    tab_to(duo, ids.SAMPLES_GRID)  # the gallery takes the focus, so the arrow keys scroll it
    wait(duo, lambda: duo.find_elements(f"#{ids.SAMPLES_GRID} img"))
    duo.driver.execute_script(  # a selection, as a brush in a geometry view makes it
        f"window.dash_clientside.set_props('{ids.SELECTION}', {{data: {{samples: [0, 1, 2], source: 'local'}}}});"
    )
    wait(duo, lambda: "3 samples selected" in duo.find_element(f"#{ids.SELECTION_BADGE}").text)
    tab_to(duo, ids.CLEAR_SELECTION, backwards=True)
    duo.driver.switch_to.active_element.send_keys(Keys.ENTER)
    wait(duo, lambda: duo.find_element(f"#{ids.SELECTION_BADGE}").text == "no selection")
    assert duo.get_logs() == []


def test_the_gallery_shows_class_names_of_html_as_text(dash_duo, hostile_store, tmp_path):
    """The server sends the gallery's cards as HTML (app.snapshot.to_html escapes every text), which the page
    puts into the grid as it is: class names that are markup show as text and run nothing."""
    dash_duo.start_server(create_app(hostile_store, "tiny", cache_dir=tmp_path / "dc"), port=free_port())
    wait(dash_duo, lambda: dash_duo.driver.find_elements("css selector", f"#{ids.SAMPLES_GRID} .sample-card img"))
    captions = [e.text for e in dash_duo.driver.find_elements("css selector", f"#{ids.SAMPLES_GRID} .caption")]
    assert captions and all(c.endswith(f"label {HOSTILE_NAMES[0]}") for c in captions), captions  # class 0 in focus
    assert not dash_duo.driver.find_elements("css selector", f"#{ids.SAMPLES_GRID} script")
    assert dash_duo.driver.title == "PruneScope"
    assert dash_duo.find_element(f"#{ids.SAMPLES_GRID}").get_attribute("data-cards") != "0"
