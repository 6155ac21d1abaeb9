"""Screenshots of the per-layer sensitivity and PIE views at 1280×900 for the README:
`python scripts/screenshots_sensitivity.py STORE RUN docs/screenshots COMPARED`.

Compares COMPARED (a model with several seeds), selects its PIE and shoots the PIE view and the
gallery that follows the selection; then clicks the heatmap cell of the single-layer model that
flipped most predictions (which compares it with its dense model) and shoots the heatmap.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.serving import make_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app import ids  # noqa: E402
from app.main import create_app  # noqa: E402
from app.reader import StoreReader  # noqa: E402
from scripts.render_png import chrome_options  # noqa: E402
from scripts.screenshots import free_port, open_tab, settle, shoot  # noqa: E402

# The centre of heatmap cell (row, column) in the viewport's pixels, for a real mouse click.
CELL = """
const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
const area = gd.querySelector('.nsewdrag').getBoundingClientRect();
return [Math.round(area.left + xa.l2p(arguments[2])), Math.round(area.top + ya.l2p(arguments[1]))];
"""

RADIOS = (ids.CLICK_TARGET, ids.MODELMAP_PLACEMENT, ids.EVAL_MODE, ids.CLASS_RANK)  # radio items have the option role
OPTIONS = (  # the first option of the open dropdown
    "return Array.from(document.querySelectorAll('[role=option]'))"
    f".filter(o => !o.closest('{', '.join('#' + r for r in RADIOS)}')).slice(0, 1).map(o => o.textContent);"
)


def click_cell(driver, graph_id: str, model_id: str) -> None:
    """Click the heatmap cell whose customdata is `model_id`."""
    cells = driver.execute_script(f"return document.querySelector('#{graph_id} .js-plotly-plot').data[0].customdata;")
    row, col = next((i, j) for i, r in enumerate(cells) for j, c in enumerate(r) if c == model_id)
    plot = driver.find_element("css selector", f"#{graph_id} .nsewdrag")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", plot)
    x, y = driver.execute_script(CELL, graph_id, row, col)
    actions = ActionBuilder(driver)
    actions.pointer_action.move_to_location(x, y).click()
    actions.perform()


def pick_option(driver, dropdown_id: str, label: str) -> None:
    """Open the dropdown from the keyboard, type `label` and pick it once it is the first option
    (the search lists every option holding each word, e.g. a model's other seeds after it)."""
    driver.execute_script("arguments[0].focus();", driver.find_element("css selector", f"#{dropdown_id}"))
    driver.switch_to.active_element.send_keys(Keys.ENTER)
    WebDriverWait(driver, 30, 0.2).until(lambda d: d.execute_script(OPTIONS))
    driver.switch_to.active_element.send_keys(label)
    WebDriverWait(driver, 30, 0.2).until(lambda d: d.execute_script(OPTIONS) == [label])
    driver.switch_to.active_element.send_keys(Keys.ENTER)


def main() -> None:
    store, run, outdir, compared = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4]
    outdir.mkdir(parents=True, exist_ok=True)
    table = StoreReader(store).sensitivity(run)
    most = str(table.sort_values("flips", ascending=False)["model_id"].iloc[0])
    port = free_port()
    server = make_server("127.0.0.1", port, create_app(store, run).server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    driver = webdriver.Chrome(options=chrome_options())
    driver.set_window_size(1280, 900)
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        open_tab(driver, ids.TAB_MODELS)
        WebDriverWait(driver, 60, 0.2).until(lambda d: d.find_elements("css selector", f"#{ids.SENS_GRAPH} .hm"))
        settle(driver, 2)
        pick_option(driver, ids.COMPARED_DROPDOWN, f"{compared} · clean")
        WebDriverWait(driver, 60, 0.2).until(
            lambda d: "modal prediction" in d.find_element("css selector", f"#{ids.PIE_NOTE}").text
        )
        driver.find_element("css selector", f"#{ids.PIE_SELECT}").click()
        WebDriverWait(driver, 60, 0.2).until(
            lambda d: "(PIE)" in d.find_element("css selector", f"#{ids.SELECTION_BADGE}").text
        )
        settle(driver, 2)
        shoot(driver, ids.PIE_GRAPH, outdir / "view_pie.png")
        open_tab(driver, ids.TAB_PAPER)
        settle(driver, 2)
        shoot(driver, ids.SAMPLES_GRID, outdir / "view_pie_samples.png")
        open_tab(driver, ids.TAB_MODELS)
        click_cell(driver, ids.SENS_GRAPH, most)
        WebDriverWait(driver, 60, 0.2).until(
            lambda d: most in d.find_element("css selector", f"#{ids.COMPARED_DROPDOWN}").text
        )
        settle(driver, 2)
        shoot(driver, ids.SENS_GRAPH, outdir / "view_sensitivity.png")
    finally:
        driver.quit()
        server.shutdown()


if __name__ == "__main__":
    main()
