"""Screenshots of every view at 1440×900 for the README: `python scripts/screenshots.py STORE RUN docs/`;
`... --models` shoots only the model map (both placements) and the model-similarity map at 1280 px;
`... --classes SEARCH` shoots a run of many classes: the page, then local and global geometry
compared with the combination the compared dropdown finds for SEARCH (issue 14).

Starts the dashboard on a free loopback port, drives headless Chromium through the main
interactions (a compared model, a box selection) and saves one PNG per view, and the top of
the page in comparison mode at 1280×800, 1440×900 and 1920×1080 (and the evaluation table at
1280 and 1920 px); then exports a snapshot of
the same comparison and shoots it from file:// with a selection linking its plots.
"""

from __future__ import annotations

import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.serving import make_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app import ids  # noqa: E402
from app.export import build_snapshot  # noqa: E402
from app.main import create_app  # noqa: E402
from app.reader import StoreReader  # noqa: E402
from scripts.render_png import chrome_options  # noqa: E402
from scripts.table_points import click  # noqa: E402

COMPARE = ("digits_cnn-random-global-oneshot-s50-ft0", "clean")  # a model whose geometry moved


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settle(driver, seconds: float = 1.5) -> None:
    """Wait until no Dash request is pending, then let plotly finish drawing."""
    WebDriverWait(driver, 60, 0.2).until(
        lambda d: d.execute_script("const s = window.store && window.store.getState(); return !!s && !s.isLoading;")
    )
    deadline = time.time() + seconds
    while time.time() < deadline:
        time.sleep(0.1)


def shoot(driver, element_id: str, out: Path) -> None:
    """The view's card; a table that scrolls in its box (the evaluation table's) shown whole, every row."""
    el = driver.find_element("css selector", f"#{element_id}")
    card = el.find_element("xpath", "./ancestor::div[contains(@class,'view-card')]")
    driver.execute_script(
        "arguments[0].querySelectorAll('.table-scroll').forEach(b => b.style.maxHeight = 'none');", card
    )
    driver.execute_script(
        "window.scrollTo({top: window.scrollY + arguments[0].getBoundingClientRect().top - 70, behavior: 'instant'});",
        card,
    )
    settle(driver, 1.0)
    card.screenshot(str(out))
    driver.execute_script("arguments[0].querySelectorAll('.table-scroll').forEach(b => b.style.maxHeight = '');", card)
    print(out)


def open_tab(driver, tab_id: str) -> None:
    """Click one of the views' tabs (ids.TAB_PAPER, ids.TAB_MODELS) as a user does; returns once it is shown."""
    link = WebDriverWait(driver, 60, 0.1).until(lambda d: d.find_element("css selector", f"#{tab_id} .nav-link"))
    driver.execute_script(
        "window.scrollTo({top: window.scrollY + arguments[0].getBoundingClientRect().top - 150, behavior: 'instant'});",
        link,
    )
    link.click()
    WebDriverWait(driver, 30, 0.1).until(lambda _: "active" in link.get_attribute("class").split())


def model_views(driver, outdir: Path) -> None:
    """The model map by accuracy vs robustness with a compared model, by provenance, and the
    similarity map (issue 16), at 1280 px, the narrowest width the page is laid out for."""
    driver.set_window_size(1280, 900)
    open_tab(driver, ids.TAB_MODELS)
    WebDriverWait(driver, 120, 0.2).until(
        lambda d: d.find_elements("css selector", f"#{ids.SIMILARITY_GRAPH} .scatterlayer .point")
    )
    trace, index = driver.execute_script(
        f"const el = document.querySelector('#{ids.MODELMAP_GRAPH} .js-plotly-plot');"
        "for (const [k, t] of el.data.entries()) {"
        "  const i = (t.customdata || []).findIndex(c => c[0] === arguments[0]); if (i >= 0) return [k, i]; }",
        COMPARE[0],
    )
    traces = driver.find_elements("css selector", f"#{ids.MODELMAP_GRAPH} .scatterlayer .trace")
    node = traces[trace].find_elements("css selector", ".point")[index]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", node)
    ActionChains(driver).move_to_element(node).click().perform()  # the node sets the compared model
    WebDriverWait(driver, 60, 0.2).until(
        lambda d: d.find_element("css selector", f"#{ids.COMPARED_DROPDOWN}").text.startswith(COMPARE[0])
    )
    settle(driver, 2)
    shoot(driver, ids.MODELMAP_GRAPH, outdir / "view_model_map.png")
    shoot(driver, ids.SIMILARITY_GRAPH, outdir / "view_model_similarity.png")
    driver.find_element("css selector", f"#{ids.MODELMAP_PLACEMENT} input[value=provenance]").click()
    settle(driver, 2)
    shoot(driver, ids.MODELMAP_GRAPH, outdir / "view_model_map_provenance.png")


def main() -> None:
    store, run, outdir = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    outdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = make_server("127.0.0.1", port, create_app(store, run).server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    driver = webdriver.Chrome(options=chrome_options())
    driver.set_window_size(1440, 900)
    if "--classes" in sys.argv[4:]:
        try:
            driver.get(f"http://127.0.0.1:{port}/")
            many_classes(driver, outdir, sys.argv[sys.argv.index("--classes") + 1])
        finally:
            driver.quit()
            server.shutdown()
        return
    if "--models" in sys.argv[4:]:
        try:
            driver.get(f"http://127.0.0.1:{port}/")
            model_views(driver, outdir)
        finally:
            driver.quit()
            server.shutdown()
        return
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        WebDriverWait(driver, 60, 0.2).until(lambda d: d.find_elements("css selector", f"#{ids.SAMPLES_GRID} img"))
        settle(driver, 3)
        driver.save_screenshot(str(outdir / "dashboard_1440x900.png"))
        for view, name in (
            (ids.EVAL_TABLE, "evaluation_table"),
            (ids.COMBO_TABLE, "combinations"),
            (ids.LOCAL_GRAPH, "local_geometry"),
            (ids.GLOBAL_GRAPH, "global_geometry"),
            (ids.SAMPLES_GRID, "samples"),
            (ids.ROBUST_MARGIN, "robustness_margin"),
            (ids.ROBUST_SWEETSPOT, "robustness_sweetspot"),
            (ids.ROBUST_TABLE1, "robustness_table1"),
            (ids.DIM_GRAPH, "dimension"),
        ):
            shoot(driver, view, outdir / f"view_{name}.png")
        index = driver.execute_script(
            f"return document.querySelector('#{ids.EVAL_TABLE} .js-plotly-plot').data[0].customdata"
            ".findIndex(c => c[0] === arguments[0] && c[1] === arguments[1]);",
            COMPARE[0],
            COMPARE[1],
        )
        driver.execute_script("window.scrollTo({top: 0, behavior: 'instant'});")
        click(driver, index)  # the bar of COMPARE: it becomes the compared combination
        settle(driver, 3)
        shoot(driver, ids.LOCAL_GRAPH, outdir / "view_local_comparison.png")
        shoot(driver, ids.GLOBAL_GRAPH, outdir / "view_global_comparison.png")
        shoot(driver, ids.SAMPLES_GRID, outdir / "view_samples_comparison.png")
        attribution(driver, outdir)
        for width, height in ((1280, 800), (1440, 900), (1920, 1080)):
            driver.set_window_size(width, height)
            driver.execute_script("window.scrollTo({top: 0, behavior: 'instant'});")
            settle(driver, 2)
            driver.save_screenshot(str(outdir / f"comparison_{width}x{height}.png"))
            if width != 1440:  # the table's numbers at the narrowest and the widest window
                shoot(driver, ids.EVAL_TABLE, outdir / f"view_evaluation_table_{width}.png")
        driver.set_window_size(1440, 900)
        snapshot(driver, store, run, outdir / "snapshot_demo.png")
        driver.get(f"http://127.0.0.1:{port}/")
        model_views(driver, outdir)
    finally:
        driver.quit()
        server.shutdown()


def many_classes(driver, outdir: Path, search: str) -> None:
    """A run of many classes: the page, then the class pre-selection, local and global geometry
    after comparing with the combination found for `search` (typed into the compared dropdown)."""
    WebDriverWait(driver, 120, 0.2).until(lambda d: d.find_elements("css selector", f"#{ids.SAMPLES_GRID} img"))
    settle(driver, 3)
    driver.save_screenshot(str(outdir / "many_classes_1440x900.png"))
    shoot(driver, ids.LOCAL_GRAPH, outdir / "view_many_classes_small_multiples.png")
    box = driver.find_element("css selector", f"#{ids.COMPARED_DROPDOWN}")
    driver.execute_script("arguments[0].focus();", box)
    driver.switch_to.active_element.send_keys(Keys.ENTER)
    driver.switch_to.active_element.send_keys(search)
    WebDriverWait(driver, 60, 0.2).until(
        lambda d: d.execute_script(
            "return Array.from(document.querySelectorAll('[role=option]'))"
            ".some(o => o.textContent.includes(arguments[0]));",
            search.split()[0],
        )
    )
    driver.switch_to.active_element.send_keys(Keys.ENTER)
    WebDriverWait(driver, 60, 0.2).until(lambda d: "flips" in d.find_element("id", ids.CLASS_DROPDOWN).text)
    settle(driver, 3)
    shoot(driver, ids.LOCAL_GRAPH, outdir / "view_many_classes_local.png")
    shoot(driver, ids.GLOBAL_GRAPH, outdir / "view_many_classes_global.png")
    driver.execute_script(  # a click where the radio may sit under the sticky header
        "arguments[0].click();", driver.find_element("css selector", f"#{ids.CLASS_RANK} input[value=confusion]")
    )
    settle(driver, 3)
    driver.execute_script("window.scrollTo({top: 0, behavior: 'instant'});")
    settle(driver, 1)
    driver.save_screenshot(str(outdir / "many_classes_compared_1440x900.png"))


def attribution(driver, outdir: Path) -> None:
    """The attribution drift view (models tab); a box over its first panel selects the mapped samples,
    and the gallery (first tab) then shows each one's map in the reference and the compared model."""
    open_tab(driver, ids.TAB_MODELS)
    WebDriverWait(driver, 60, 0.2).until(
        lambda d: d.find_elements("css selector", f'#{ids.ATTR_DRIFT} .nsewdrag[data-subplot="xy"]')
    )
    settle(driver, 2)
    shoot(driver, ids.ATTR_DRIFT, outdir / "view_attribution_drift.png")
    plot = driver.find_element("css selector", f'#{ids.ATTR_DRIFT} .nsewdrag[data-subplot="xy"]')
    driver.execute_script(
        "window.scrollTo({top: window.scrollY + arguments[0].getBoundingClientRect().top - 120, behavior: 'instant'});",
        plot,
    )
    w, h = plot.size["width"], plot.size["height"]
    drag = ActionChains(driver).move_to_element(plot).move_by_offset(-w // 2 + 2, -h // 2 + 2).click_and_hold()
    for _ in range(10):
        drag = drag.move_by_offset(w // 10 - 1, h // 10 - 1)
    drag.release().perform()
    WebDriverWait(driver, 60, 0.2).until(
        lambda d: "selected (attribution)" in d.find_element("id", ids.SELECTION_BADGE).text
    )
    open_tab(driver, ids.TAB_PAPER)
    settle(driver, 2)
    shoot(driver, ids.SAMPLES_GRID, outdir / "view_samples_attribution.png")
    driver.find_element("id", ids.CLEAR_SELECTION).click()
    settle(driver, 2)


def snapshot(driver, store: str, run: str, out: Path) -> None:
    """The exported snapshot of dense vs COMPARE, opened from disk, with a box selection in the
    trajectories outlining the same samples in the other plots and filling the gallery."""
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "snapshot.html"
        page.write_text(build_snapshot(StoreReader(store), run, "digits_cnn-dense", COMPARE[0]), encoding="utf-8")
        driver.get(page.as_uri())
        WebDriverWait(driver, 60, 0.2).until(
            lambda d: d.execute_script(
                "const g = document.getElementById('fig-global'); return g && g.data && g.querySelector('.main-svg');"
            )
        )
        plot = driver.find_element("css selector", '#fig-trajectories .nsewdrag[data-subplot="xy"]')
        driver.execute_script(
            "window.scrollTo({top: window.scrollY + arguments[0].getBoundingClientRect().top - 120, "
            "behavior: 'instant'});",
            plot,
        )
        w, h = plot.size["width"], plot.size["height"]
        drag = ActionChains(driver).move_to_element(plot).move_by_offset(-w // 2 + 2, -h // 2 + 2).click_and_hold()
        for _ in range(10):
            drag = drag.move_by_offset(w // 20, (h - 4) // 10)
        drag.release().perform()
        WebDriverWait(driver, 30, 0.2).until(lambda d: "selected" in d.find_element("id", "selection-status").text)
        card = driver.find_element("id", "card-trajectories")
        driver.execute_script(
            "window.scrollTo({top: window.scrollY + arguments[0].getBoundingClientRect().top - 40, "
            "behavior: 'instant'});",
            card,
        )
        time.sleep(1.0)  # let plotly finish drawing the outlines
        driver.save_screenshot(str(out))
        print(out)


if __name__ == "__main__":
    main()
