"""Browser tier for snapshots: the file opens offline and stays linked; the dashboard's button
downloads the same file. Waits on conditions, never sleeps."""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.support.ui import WebDriverWait

from app import ids
from app.export import build_snapshot
from app.main import create_app
from app.reader import StoreReader
from scripts.render_png import chrome_options
from tests.conftest import HOSTILE_NAMES, free_port

pytestmark = pytest.mark.browser
REF, CMP = "digits_cnn-dense", "digits_cnn-magnitude-global-oneshot-s80-ft1"
FIGURES = ("evaltable", "local", "trajectories", "global", "density", "margin", "sweetspot")


@pytest.fixture
def offline_browser():
    options = chrome_options()
    options.set_capability("goog:loggingPrefs", {"browser": "SEVERE"})
    driver = webdriver.Chrome(options=options)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0},
    )
    yield driver
    driver.quit()


def until(driver, condition, timeout: float = 30):
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda _: condition())


SELECTED_LINES = (  # one gap ends each line
    "const x = document.getElementById('fig-global').data[2].x; "
    "return Array.from(x || []).filter(v => v === null || Number.isNaN(v)).length;"
)
LINE_IDS = "return JSON.parse(document.getElementById('snapshot-data').textContent).views.global.ids;"
DRAWN = (
    "return arguments[0].every(k => { const d = document.getElementById('fig-' + k); "
    "return d && d.data && d.data.length > 0 && d.querySelector('.main-svg'); });"
)


def test_snapshot_opens_offline_every_figure_draws_and_a_selection_links_them(browser_store, tmp_path, offline_browser):
    driver = offline_browser
    out = tmp_path / "snap.html"
    out.write_text(build_snapshot(StoreReader(browser_store), "tiny", REF, CMP, "fog", 3), encoding="utf-8")
    driver.set_window_size(1440, 900)
    driver.get(out.as_uri())
    until(driver, lambda: driver.execute_script(DRAWN, list(FIGURES)))
    fetched = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name);")
    assert all(u.startswith(("file:", "data:")) for u in fetched), fetched
    assert driver.find_elements("css selector", "#samples-grid img"), "the gallery shows the class in focus"

    subplot = driver.execute_script(
        "const t = document.getElementById('fig-trajectories').data.find(t => t.mode === 'markers'); "
        "return (t.xaxis || 'x') + (t.yaxis || 'y');"
    )
    plot = driver.find_element("css selector", f'#fig-trajectories .nsewdrag[data-subplot="{subplot}"]')
    driver.execute_script(
        "window.scrollTo({top: window.scrollY + arguments[0].getBoundingClientRect().top - 150, behavior: 'instant'});",
        plot,
    )
    w, h = plot.size["width"], plot.size["height"]
    drag = ActionChains(driver).move_to_element(plot).move_by_offset(-w // 2 + 2, -h // 2 + 2).click_and_hold()
    for _ in range(10):  # the whole "all samples" panel, in steps as a hand would drag
        drag = drag.move_by_offset((w - 4) // 10, (h - 4) // 10)
    drag.release().perform()

    until(driver, lambda: "selected" in driver.find_element("id", "selection-status").text)
    chosen = set(driver.execute_script("return window.prunescopeSnapshot.selected();"))
    assert chosen
    in_focus = set(driver.execute_script(LINE_IDS))
    until(driver, lambda: driver.execute_script(SELECTED_LINES) == 2 * len(chosen & in_focus) > 0)  # ref and cmp
    outlined = driver.execute_script(
        "const d = document.getElementById('fig-local'); const out = [];"
        "d.data.forEach(t => { const w = t.marker && t.marker.line && t.marker.line.width; const ids = t.customdata;"
        "  if (Array.isArray(w)) w.forEach((v, i) => { if (v > 0) out.push(i); }); });"
        "return out.length;"
    )
    assert outlined == len(chosen), "the local geometry outlines exactly the selected samples"
    cards = {
        int(c.get_attribute("data-sample-id"))
        for c in driver.find_elements("css selector", "#samples-grid .sample-card")
    }
    assert cards and cards <= chosen
    assert "selected" in driver.find_element("id", "samples-count").text

    driver.find_element("id", "clear-selection").click()
    until(driver, lambda: driver.find_element("id", "selection-status").text == "no selection")
    assert driver.execute_script(SELECTED_LINES) == 0

    plot = driver.find_element("css selector", "#fig-global .nsewdrag")  # a box over the last (margin) axis brushes it
    driver.execute_script(
        "window.scrollTo({top: window.scrollY + arguments[0].getBoundingClientRect().top - 150, behavior: 'instant'});",
        plot,
    )
    axes = driver.execute_script(
        "return JSON.parse(document.getElementById('snapshot-data').textContent).views.global.positions.length;"
    )
    w, h = plot.size["width"], plot.size["height"]
    drag = (
        ActionChains(driver)
        .move_to_element(plot)
        .move_by_offset(int(w * ((axes - 0.5) / axes - 0.5)) - 12, -h // 2 + 2)
        .click_and_hold()
    )
    for _ in range(6):  # top to bottom of the plot: past both ends of the axis
        drag = drag.move_by_offset(4, (h - 4) // 6)
    drag.release().perform()
    until(driver, lambda: "(global geometry)" in driver.find_element("id", "selection-status").text)
    brushed = set(driver.execute_script("return window.prunescopeSnapshot.selected();"))
    assert brushed == in_focus, "a box over the whole margin axis brushes every line"
    until(driver, lambda: driver.execute_script(SELECTED_LINES) == 2 * len(in_focus))
    assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []


def test_export_button_downloads_the_snapshot_in_the_background(dash_duo, browser_store, tmp_path):
    app = create_app(browser_store, "tiny", cache_dir=tmp_path / "dc")
    spec = next(v for k, v in app.callback_map.items() if k.startswith(f"..{ids.EXPORT_DOWNLOAD}.data"))
    assert spec.get("background") and spec["background"].get("cancel"), "a background callback that can be cancelled"
    dash_duo.start_server(app, port=free_port())
    downloads = Path(dash_duo.download_path)
    dash_duo.driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    dash_duo.wait_for_element(f"#{ids.LOCAL_GRAPH} .js-plotly-plot", timeout=30)
    dash_duo.find_element(f"#{ids.EXPORT_BUTTON}").click()
    WebDriverWait(dash_duo.driver, 90, 0.2).until(lambda _: [p for p in downloads.glob("*.html")])
    saved = next(downloads.glob("*.html"))
    assert saved.name == f"prunescope-tiny-{REF}.html"
    until(
        dash_duo.driver,
        lambda: saved.stat().st_size > 1_000_000 and "</html>" in saved.read_text(encoding="utf-8")[-200:],
    )
    assert REF in saved.read_text(encoding="utf-8")
    dash_duo.wait_for_contains_text(f"#{ids.EXPORT_STATUS}", "MB", timeout=30)
    assert dash_duo.find_element(f"#{ids.EXPORT_CANCEL}").value_of_css_property("display") == "none"
    assert dash_duo.get_logs() == []


def test_export_can_be_cancelled(dash_duo, browser_store, tmp_path, monkeypatch):
    import time

    import app.views.export as export_view

    gate = tmp_path / "gate"
    real = export_view.build_snapshot

    def gated(*args, **kwargs):  # the job (a forked process) waits until the test opens the gate
        while not gate.exists():
            time.sleep(0.05)
        return real(*args, **kwargs)

    monkeypatch.setattr(export_view, "build_snapshot", gated)
    dash_duo.start_server(create_app(browser_store, "tiny", cache_dir=tmp_path / "dc"), port=free_port())
    downloads = Path(dash_duo.download_path)
    dash_duo.driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    dash_duo.wait_for_element(f"#{ids.LOCAL_GRAPH} .js-plotly-plot", timeout=30)
    dash_duo.find_element(f"#{ids.EXPORT_BUTTON}").click()
    cancel = dash_duo.find_element(f"#{ids.EXPORT_CANCEL}")
    until(dash_duo.driver, lambda: cancel.is_displayed())  # while the job runs: cancel shown, export disabled
    assert not dash_duo.find_element(f"#{ids.EXPORT_BUTTON}").is_enabled()
    bar = dash_duo.find_element(f"#{ids.EXPORT_PROGRESS}")
    assert bar.is_displayed() and bar.value_of_css_property("display") == "flex"
    cancel.click()
    until(
        dash_duo.driver,
        lambda: not cancel.is_displayed() and dash_duo.find_element(f"#{ids.EXPORT_BUTTON}").is_enabled(),
    )
    assert dash_duo.find_element(f"#{ids.EXPORT_STATUS}").text == "" and not list(downloads.glob("*.html"))
    gate.touch()
    dash_duo.find_element(f"#{ids.EXPORT_BUTTON}").click()  # after a cancel, the next export still works
    dash_duo.wait_for_contains_text(f"#{ids.EXPORT_STATUS}", "MB", timeout=60)
    WebDriverWait(dash_duo.driver, 30, 0.2).until(lambda _: list(downloads.glob("*.html")))
    assert [p.name for p in downloads.glob("*.html*")] == [f"prunescope-tiny-{REF}.html"]


def test_snapshot_with_html_class_names_still_draws(hostile_store, tmp_path, offline_browser):
    driver = offline_browser
    out = tmp_path / "hostile.html"
    out.write_text(build_snapshot(StoreReader(hostile_store), "tiny", REF, CMP, focus=0), encoding="utf-8")
    driver.get(out.as_uri())
    drawn = [f for f in FIGURES if f != "margin"]  # the tiny run has no corrupted sets to draw a margin change of
    until(driver, lambda: driver.execute_script(DRAWN, drawn))
    names = driver.execute_script("return JSON.parse(document.getElementById('snapshot-data').textContent).classNames;")
    assert names[: len(HOSTILE_NAMES)] == HOSTILE_NAMES
    assert driver.title.startswith("PruneScope") and driver.find_elements("css selector", "#samples-grid img")
    assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
