"""Browser tier for the store contract: another tool's run draws every view, and a damaged run
opens with its problems panel; no 500 and no console error in either."""

from __future__ import annotations

import shutil

import pytest

from app import ids
from app.main import create_app
from tests.conftest import free_port
from tests.foreign_runs import DAMAGES, write_foreign_run
from tests.test_browser import figure_data, wait

pytestmark = pytest.mark.browser


def every_view_drawn(duo) -> bool:
    graphs = [ids.EVAL_TABLE, ids.LOCAL_GRAPH, ids.GLOBAL_GRAPH, ids.ROBUST_MARGIN, ids.ROBUST_SWEETSPOT]
    images = duo.driver.find_elements("css selector", f"#{ids.SAMPLES_GRID} img")
    return all(any(t["n"] > 0 for t in figure_data(duo, g)) for g in graphs) and len(images) > 0


def test_a_run_written_from_the_docs_draws_every_view(dash_duo, tmp_path):
    write_foreign_run(tmp_path / "store" / "toy")
    dash_duo.start_server(create_app(tmp_path / "store", "toy", cache_dir=tmp_path / "dc"), port=free_port())
    wait(dash_duo, lambda: every_view_drawn(dash_duo) and dash_duo._wait_for_callbacks())
    assert dash_duo.find_element(f"#{ids.RUN_PROBLEMS}").text == ""
    assert "could not be" not in dash_duo.driver.page_source
    assert dash_duo.get_logs() == []


def test_a_damaged_run_opens_with_its_problems_panel(dash_duo, tiny_run, tmp_path):
    run = tmp_path / "store" / "tiny"
    shutil.copytree(tiny_run, run)
    damage, phrase, _ = DAMAGES["truncated samples file"]
    damage(run)
    dash_duo.start_server(create_app(run.parent, "tiny", cache_dir=tmp_path / "dc"), port=free_port())
    wait(dash_duo, lambda: phrase in dash_duo.find_element(f"#{ids.RUN_PROBLEMS}").text)
    wait(dash_duo, lambda: any(t["n"] > 0 for t in figure_data(dash_duo, ids.EVAL_TABLE)))
    wait(dash_duo, lambda: dash_duo._wait_for_callbacks())
    assert "Fix:" in dash_duo.find_element(f"#{ids.RUN_PROBLEMS}").text
    assert dash_duo.get_logs() == []
