"""Browser tier: the real app in headless Chromium (dash[testing]); waits on conditions, never sleeps."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import flask
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.support.ui import WebDriverWait

from app import ids, plotlyjs
from app.figures.local import SCATTER_U, SCATTER_V
from app.main import create_app
from tests.conftest import free_port, without_bits
from tests.evaltable_shapes import bars_drawn, click, count, drawn

pytestmark = pytest.mark.browser


@pytest.fixture(params=["scatter", "scattergl"])
def local_kind(request, monkeypatch) -> str:
    """The local geometry's marker traces in SVG (the tiny run's few points) or in WebGL, whose
    selected points reach dcc.Graph without their customdata (it copies it from the figure)."""
    if request.param == "scattergl":
        monkeypatch.setattr("app.figures.local.WEBGL_FROM", 1)
    return request.param


@pytest.fixture
def dash_app(dash_duo, browser_store, tmp_path):
    dash_duo.start_server(create_app(browser_store, "tiny", cache_dir=tmp_path / "dc"), port=free_port())
    dash_duo.driver.set_window_size(1440, 900)
    return dash_duo


TRACES = """
const el = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
if (!el || !el.data) return [];
const size = a => !a ? 0 : (a.length !== undefined ? a.length : \
(a._inputArray && a._inputArray.length !== undefined ? a._inputArray.length : 0));
return el.data.map(t => ({type: t.type, name: t.name, mode: t.mode, fill: t.fill, n: size(t.x)}));
"""


def figure_data(duo, graph_id: str) -> list[dict]:
    """Each trace of a drawn graph: type, name, mode, fill and its number of points (n)."""
    return duo.driver.execute_script(TRACES, graph_id) or []


def wait(duo, condition, timeout: float = 30):
    return WebDriverWait(duo.driver, timeout, poll_frequency=0.1).until(lambda _: condition())


def views_drawn(duo) -> bool:
    table = drawn(duo.driver)
    local = figure_data(duo, ids.LOCAL_GRAPH)
    glob = figure_data(duo, ids.GLOBAL_GRAPH)
    margin = figure_data(duo, ids.ROBUST_MARGIN)
    sweet = figure_data(duo, ids.ROBUST_SWEETSPOT)
    dims = figure_data(duo, ids.DIM_GRAPH)
    images = duo.driver.find_elements("css selector", f"#{ids.SAMPLES_GRID} img")
    return (
        count(table, "fill") > 10
        and any(t.get("mode") == "markers" and t["n"] > 0 for t in local)
        and any(t.get("mode") == "lines" and t["n"] > 0 for t in glob)
        and any(t.get("fill") == "tozeroy" for t in margin)
        and len(sweet) > 3
        and any(t.get("fill") == "toself" for t in dims)  # Fig. 3's random-vector band
        and sum(t.get("mode") == "markers" for t in dims) >= 4  # dense and pruned, own and other classes
        and len(images) > 0
    )


def settled(duo) -> bool:
    """Every view drawn and no callback in flight (dash's own redux request queue is empty)."""
    return views_drawn(duo) and duo._wait_for_callbacks()


def test_every_view_draws_data_without_console_errors(dash_app):
    wait(dash_app, lambda: views_drawn(dash_app))
    rows = dash_app.driver.find_elements("css selector", f"#{ids.ROBUST_TABLE1} td")
    assert rows, "Table 1 has rows"
    assert "digits_cnn-dense" in dash_app.find_element(f"#{ids.COMBO_TABLE}").text
    assert dash_app.get_logs() == []


SLOW_TABLE_S = 1.5  # the table's first answer, made as slow as at 100 M rows (with the page's other calls)


def test_a_page_load_asks_for_the_first_views_with_the_table_and_the_run_wide_views_after_them(
    dash_duo, browser_store, tmp_path
):
    """The problems panel, Table 1 and the dimension view (drawn on a new run only) start once every
    view of the first page has answered (here the sweet spot answers after the table, held until the
    table has answered) and the browser has drawn them (ids.FIRST_VIEWS_DRAWN): at 100 M rows the
    table, at the top, waited 1.7 s for a 0.4 s answer while they ran beside it, and their 0.5 s of
    server work beside the first views' drawing held up the page by 0.3 s. The geometry
    views, the gallery and the robustness figures are asked for with the table, not after another
    answer: the layout opens with the class list and the attribution methods that `classes` and
    `methods` would answer (app.main.FirstPage), so those are not called on a page load. The table's
    answer is made slow here, as at 100 M rows: on this tiny run it would come first anyway."""
    app = create_app(browser_store, "tiny", cache_dir=tmp_path / "dc")
    seen: list[tuple[str, str]] = []  # ("start" or "end", the callback's output key), in the server's order
    answered = threading.Event()  # set after the table's first answer: what comes then may go at once
    table_done = threading.Event()  # the table's first answer has been sent
    run_wide = threading.Event()  # a run-wide view asked the server
    late = f"{ids.ROBUST_SWEETSPOT}.figure"  # a first view answered after the table: the run-wide views wait for it

    @app.server.before_request
    def started() -> None:
        if flask.request.path == "/_dash-update-component":
            output = flask.request.get_json()["output"]
            seen.append(("start", output))
            if f"{ids.EVAL_TABLE}.figure" in output and not answered.is_set():
                answered.wait(SLOW_TABLE_S)  # nothing sets it: a slow table, whatever else the page asks
                answered.set()
            elif output == late and not table_done.is_set():
                table_done.wait(2 * SLOW_TABLE_S)
                run_wide.wait(SLOW_TABLE_S)  # answered only when they have started, or after a while: never first
            if any(f"{view}." in output for view in (ids.RUN_PROBLEMS, ids.ROBUST_TABLE1, ids.DIM_GRAPH)):
                run_wide.set()

    @app.server.after_request
    def ended(response):
        if flask.request.path == "/_dash-update-component":
            output = flask.request.get_json()["output"]
            seen.append(("end", output))
            if f"{ids.EVAL_TABLE}.figure" in output:
                table_done.set()
        return response

    dash_duo.start_server(app, port=free_port())
    wait(
        dash_duo,
        lambda: settled(dash_duo) and dash_duo.driver.find_elements("css selector", f"#{ids.ROBUST_TABLE1} td"),
    )
    table = next(i for i, (event, key) in enumerate(seen) if event == "end" and f"{ids.EVAL_TABLE}.figure" in key)

    def first_start(view: str) -> int:
        at = next((i for i, (event, key) in enumerate(seen) if event == "start" and f"{view}." in key), None)
        assert at is not None, f"{view} never asked the server (refused by the guard?): {seen}"
        return at

    first_views = (ids.LOCAL_GRAPH, ids.GLOBAL_GRAPH, ids.SAMPLES_HTML, ids.ROBUST_MARGIN, ids.ROBUST_SWEETSPOT)
    for view in first_views:
        assert first_start(view) < table, (view, seen)
    answers = [next(i for i, (event, key) in enumerate(seen) if event == "end" and f"{v}." in key) for v in first_views]
    assert answers[-1] > table, "the held first view answers after the table"
    for view in (ids.RUN_PROBLEMS, ids.ROBUST_TABLE1, ids.DIM_GRAPH):
        assert first_start(view) > max(table, *answers), (view, seen)
    for control in (ids.CLASS_DROPDOWN, ids.SAMPLES_ATTR_METHOD):
        assert not any(f"{control}.options" in key for _, key in seen), (control, seen)
    assert dash_duo.get_logs() == []


# How often each graph is drawn with its data: a graph's placeholder (the layout's figure, no traces),
# drawn before its answer comes, does not count (the run-wide views answer after the first page is drawn)
PLOT_COUNT = """
window.plotsDrawn = {};
document.addEventListener('DOMContentLoaded', () => new MutationObserver(() =>
  document.querySelectorAll('.js-plotly-plot').forEach(gd => {
    if (gd.countsPlots || !gd.on) return;
    gd.countsPlots = true;
    const id = gd.parentElement.id;
    gd.on('plotly_afterplot', () => {
      if (gd.data.length) window.plotsDrawn[id] = (window.plotsDrawn[id] || 0) + 1;
    });
  })).observe(document, {childList: true, subtree: true}));
"""
FIRST_TAB = (ids.EVAL_TABLE, ids.LOCAL_GRAPH, ids.GLOBAL_GRAPH, ids.ROBUST_MARGIN, ids.ROBUST_SWEETSPOT, ids.DIM_GRAPH)


def test_each_view_of_the_first_page_is_drawn_once(dash_app):
    """dcc.Graph resizes a graph after drawing it, and plotly.js draws a graph again on every resize
    of the same size: assets/plotly-setup.js answers those at once (each view used to be drawn twice)."""
    dash_app.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PLOT_COUNT})
    dash_app.driver.get(dash_app.server_url)
    wait(dash_app, lambda: settled(dash_app))
    wait(dash_app, lambda: not dash_app.driver.find_elements("css selector", ".dash-graph--pending"))
    drawn = dash_app.driver.execute_script("return window.plotsDrawn")
    assert {view: drawn.get(view) for view in FIRST_TAB} == dict.fromkeys(FIRST_TAB, 1), drawn
    width = dash_app.driver.execute_script(
        f"return document.querySelector('#{ids.LOCAL_GRAPH} .main-svg').width.baseVal.value"
    )
    dash_app.driver.set_window_size(1100, 900)  # a resize that changes the box still redraws
    wait(
        dash_app,
        lambda: (
            dash_app.driver.execute_script(
                f"return document.querySelector('#{ids.LOCAL_GRAPH} .main-svg').width.baseVal.value"
            )
            < width - 100
        ),
    )
    assert dash_app.driver.execute_script("return window.plotsDrawn")[ids.LOCAL_GRAPH] == 2


def test_plotly_js_is_the_bundle_fetched_with_the_page_and_run_when_the_first_graph_asks(dash_app):
    """The index page preloads assets/plotly-bundle.min.js and dcc.Graph's loader runs it (app.main.
    PruneScopeDash): fetched once, with nothing of plotly.py's full plotly.js, and set up on arrival
    (assets/plotly-setup.js; test_each_view_of_the_first_page_is_drawn_once holds what its resize does):
    WebGL at the screen's pixel ratio (1 here), not plotly's default 2."""
    wait(dash_app, lambda: settled(dash_app))
    fetched = dash_app.driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    scripts = [url.split("?")[0].rsplit("/", 1)[-1] for url in fetched]
    assert scripts.count("plotly-bundle.min.js") == 1 and "plotly.min.js" not in scripts, scripts
    assert dash_app.driver.execute_script("return window.Plotly.version") == plotlyjs.contents()[0]
    assert dash_app.driver.execute_script("return window._dashPlotlyJSURL").startswith("/assets/plotly-bundle.min.js")
    ratio = f"return [window.devicePixelRatio, document.querySelector('#{ids.LOCAL_GRAPH} .js-plotly-plot')._context]"
    screen, context = dash_app.driver.execute_script(ratio)
    assert screen == 1 and context["plotGlPixelRatio"] == 1, context
    assert dash_app.get_logs() == []


def test_box_selection_drives_samples_global_and_table(local_kind, dash_app):
    wait(dash_app, lambda: settled(dash_app))
    assert {t["type"] for t in figure_data(dash_app, ids.LOCAL_GRAPH) if t.get("mode") == "markers"} == {local_kind}
    before = dash_app.find_element(f"#{ids.SAMPLES_COUNT}").text
    plot = dash_app.find_element(f'#{ids.LOCAL_GRAPH} .nsewdrag[data-subplot="xy"]')  # the small multiples' one plot
    # the class in focus, the first small multiple: the top left cell's scatter, in pixels from the plot's centre
    box = dash_app.driver.execute_script(
        f"const fl = document.querySelector('#{ids.LOCAL_GRAPH} .js-plotly-plot')._fullLayout;"
        "const x = (v) => fl.xaxis.l2p(v) - fl.xaxis._length / 2, top = Math.round(fl.yaxis.range[1]) - 1;"
        "const y = (v) => fl.yaxis.l2p(top + v) - fl.yaxis._length / 2;"
        "return [x(arguments[0]), y(arguments[3]), x(arguments[1]), y(arguments[2])];",
        *SCATTER_U,
        *SCATTER_V,
    )
    in_view = "const r = arguments[0].getBoundingClientRect(); return r.top >= 0 && r.top + 400 <= window.innerHeight;"
    dash_app.driver.execute_script(
        "window.scrollTo({top: window.scrollY + arguments[0].getBoundingClientRect().top - 120, behavior: 'instant'});",
        plot,
    )  # Bootstrap makes scrolling smooth: jump
    wait(dash_app, lambda: dash_app.driver.execute_script(in_view, plot))
    left, top, right, bottom = (round(v) for v in box)
    drag = ActionChains(dash_app.driver).move_to_element(plot).move_by_offset(left + 2, top + 2).click_and_hold()
    for _ in range(8):  # plotly follows the pointer: move in steps, as a hand would
        drag = drag.move_by_offset((right - left - 4) // 8, (bottom - top - 4) // 8)
    drag.release().perform()
    wait(dash_app, lambda: "selected (local)" in dash_app.find_element(f"#{ids.SELECTION_BADGE}").text)
    wait(
        dash_app,
        lambda: (
            "selected" in dash_app.find_element(f"#{ids.SAMPLES_COUNT}").text
            and dash_app.find_element(f"#{ids.SAMPLES_COUNT}").text != before
        ),
    )
    wait(
        dash_app,
        lambda: count(drawn(dash_app.driver), "difference") > 0,  # the bars show the selection's accuracy
    )
    wait(
        dash_app,
        lambda: any(t.get("name") == "selected" and t["n"] > 0 for t in figure_data(dash_app, ids.GLOBAL_GRAPH)),
    )
    dash_app.find_element(f"#{ids.CLEAR_SELECTION}").click()
    wait(dash_app, lambda: dash_app.find_element(f"#{ids.SELECTION_BADGE}").text == "no selection")
    assert dash_app.get_logs() == []


def test_box_over_an_axis_in_global_geometry_drives_the_other_views(dash_app):
    wait(dash_app, lambda: settled(dash_app))
    plot = dash_app.find_element(f"#{ids.GLOBAL_GRAPH} .nsewdrag")
    dash_app.driver.execute_script(
        "window.scrollTo({top: window.scrollY + arguments[0].getBoundingClientRect().top - 200, behavior: 'instant'});",
        plot,
    )
    axes = dash_app.driver.execute_script(
        f"return document.querySelector('#{ids.GLOBAL_GRAPH} .js-plotly-plot').layout.xaxis.ticktext.length;"
    )
    w, h = plot.size["width"], plot.size["height"]
    margin_axis = int(w * ((axes - 0.5) / axes - 0.5))  # from the plot's centre to the last (margin) axis
    drag = (
        ActionChains(dash_app.driver)
        .move_to_element(plot)
        .move_by_offset(margin_axis - 12, -int(h * 0.45))
        .click_and_hold()
    )
    for _ in range(6):
        drag = drag.move_by_offset(4, int(h * 0.1))
    drag.release().perform()
    wait(dash_app, lambda: "selected (global)" in dash_app.find_element(f"#{ids.SELECTION_BADGE}").text)
    wait(dash_app, lambda: "selected" in dash_app.find_element(f"#{ids.SAMPLES_COUNT}").text)
    wait(
        dash_app,
        lambda: count(drawn(dash_app.driver), "difference") > 0,  # the bars show the selection's accuracy
    )
    wait(
        dash_app,
        lambda: any(t.get("name") == "selected" and t["n"] > 0 for t in figure_data(dash_app, ids.GLOBAL_GRAPH)),
    )
    boxes = dash_app.driver.execute_script(
        f"return document.querySelector('#{ids.GLOBAL_GRAPH} .js-plotly-plot').layout.selections || [];"
    )
    assert len(boxes) == 1, "the redrawn figure keeps the user's box"
    assert dash_app.get_logs() == []


def test_a_first_brush_waits_for_the_background_job_and_the_next_is_patched(dash_duo, browser_store, tmp_path):
    """A run without correct_bits: the first brush's accuracy comes from the background job (`prepare`),
    the next brush from a Patch of the drawn table; both change the bars the page shows."""
    store = tmp_path / "store"
    without_bits(Path(shutil.copytree(browser_store / "tiny", store / "tiny")))
    dash_duo.start_server(create_app(store, "tiny", cache_dir=tmp_path / "dc"), port=free_port())
    dash_duo.driver.set_window_size(1440, 900)
    wait(dash_duo, lambda: settled(dash_duo))
    lengths = lambda: bars_drawn(drawn(dash_duo.driver))  # noqa: E731

    def brush(samples: list[int]) -> None:
        selection = {"samples": samples, "source": "local"}
        dash_duo.driver.execute_script(
            "window.dash_clientside.set_props(arguments[0], {data: arguments[1]});", ids.SELECTION, selection
        )

    whole = lengths()
    brush(list(range(0, 60, 2)))
    wait(
        dash_duo,
        lambda: count(drawn(dash_duo.driver), "difference") > 0,
        timeout=60,
    )
    first = lengths()
    assert first and whole and first != whole, "the bars show the selection's accuracy"
    brush(list(range(1, 60, 2)))
    wait(dash_duo, lambda: lengths() not in (first, whole))
    wait(dash_duo, lambda: dash_duo._wait_for_callbacks())
    assert dash_duo.get_logs() == []


def test_clicking_a_bar_compares_and_draws_trajectories(dash_app):
    wait(dash_app, lambda: settled(dash_app))
    bars = len(drawn(dash_app.driver)["ids"])
    assert bars > 10
    click(dash_app.driver, bars // 2)
    wait(dash_app, lambda: "compared" in dash_app.find_element(f"#{ids.COMBO_TABLE}").text)
    wait(
        dash_app,
        lambda: any(
            "right → wrong" in a.get("text", "")
            for a in dash_app.driver.execute_script(
                f"const el = document.querySelector('#{ids.LOCAL_GRAPH} .js-plotly-plot'); "
                "return el && el.layout ? el.layout.annotations || [] : [];"
            )
        ),
    )
    lines = [t for t in figure_data(dash_app, ids.LOCAL_GRAPH) if t.get("mode") == "lines"]
    assert lines and any(t["n"] >= 3 for t in lines)
    assert dash_app.get_logs() == []


def test_empty_store_shows_a_message(dash_duo, tmp_path):
    dash_duo.start_server(create_app(tmp_path / "empty-store", cache_dir=tmp_path / "dc"), port=free_port())
    dash_duo.wait_for_contains_text(".store-message", "has no runs yet", timeout=20)
    assert dash_duo.get_logs() == []
