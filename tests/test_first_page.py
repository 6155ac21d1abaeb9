"""The page opens with the combinations, the class list and the gallery's attribution methods that their
callbacks would answer (app.main.first_page), built for each page load: those callbacks are not called
on a page load, so the views that read these controls are asked for with the evaluation table
(tests/test_browser.py times the order)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from app import ids
from app.main import create_app
from app.state import Combo
from benchmarks.dash_client import components
from tests.foreign_runs import DAMAGES, DENSE
from tests.test_evaltable_patch import Client

REPO = Path(__file__).resolve().parents[1]
CONTROLS = {  # the control, the input whose change calls its callback
    "class list": (ids.CLASS_DROPDOWN, ids.REFERENCE_DROPDOWN, "value"),
    "attribution methods": (ids.SAMPLES_ATTR_METHOD, ids.RUN, "data"),
}


def opened(client: Client, cid: str) -> dict:
    """The props `cid` has as a page loads now."""
    return next(p for p in components(client.client.get("/_dash-layout").get_json()) if p.get("id") == cid)


@pytest.fixture
def damaged(tiny_run, tmp_path):
    """A copy of the tiny run without the reference's samples: the page still opens on the reference."""
    run = tmp_path / "damaged" / "tiny"
    shutil.copytree(tiny_run, run)
    DAMAGES["missing samples partition"][0](run)
    return run.parent


@pytest.mark.parametrize("store", ["tiny_run", "attribution_store", "damaged"])
@pytest.mark.parametrize("control", CONTROLS)
def test_the_layout_opens_with_what_the_callback_answers(store, control, request, tmp_path):
    store_dir = request.getfixturevalue(store)
    store_dir = store_dir.parent if store == "tiny_run" else store_dir
    target, *trigger = CONTROLS[control]
    client = Client(store_dir, tmp_path / "dc", f"..{target}.options...{target}.value..", ".".join(trigger))
    answer = client.post(tuple(trigger))[target]
    expected = {"tiny_run": control == "class list", "attribution_store": True, "damaged": False}[store]
    assert bool(answer["options"]) == expected, answer
    now = opened(client, target)
    assert (now["options"], now.get("value")) == (answer["options"], answer["value"])
    assert opened(client, ids.REFERENCE_DROPDOWN)["value"] == Combo(DENSE, "clean", 0).key, "the reference opens"


def test_each_page_load_opens_with_the_run_as_it_is_now(tiny_run, tmp_path):
    """A run rewritten while the app runs (its dense model now wrong, far from the boundary, on every
    sample of the class ranked last) opens with that class first in the class list on the next page
    load, not with the list the app started with."""
    run = tmp_path / "store" / "tiny"
    shutil.copytree(tiny_run, run)
    client = Client(run.parent, tmp_path / "dc", f"..{ids.CLASS_DROPDOWN}.options...{ids.CLASS_DROPDOWN}.value..")
    before = [o["value"] for o in opened(client, ids.CLASS_DROPDOWN)["options"]]
    last = before[-1]
    path = run / "samples" / f"model_id={DENSE}" / "clean.parquet"
    table = pq.read_table(path)
    hit = pc.equal(table["label"], last)  # wrong, with the lowest margins: first by confusion, ties or not
    for name, value in (("correct", False), ("margin", -1e3)):
        at, field = table.schema.get_field_index(name), table.schema.field(name)
        table = table.set_column(at, field, pc.if_else(hit, value, table[name]).cast(field.type))
    pq.write_table(table, path)
    stamp = run / "evaluations.parquet"  # the pipeline rewrites it with a set's samples: a new run version
    os.utime(stamp, ns=(stamp.stat().st_atime_ns, stamp.stat().st_mtime_ns + 10**9))
    after = [o["value"] for o in opened(client, ids.CLASS_DROPDOWN)["options"]]
    assert before[0] != last and after[0] == last, (before, after)


def test_the_page_loads_regenerator_runtime_not_dashs_polyfill(tiny_run, tmp_path):
    """app.main.PruneScopeDash leaves Dash's @babel/polyfill out of the index page (0.2 s of each first
    page) and serves the one part Dash's async components call, regeneratorRuntime; the browser tier
    renders those components (dropdowns, graphs, tables) on this page."""
    client = create_app(tiny_run.parent, "tiny", tmp_path / "dc").server.test_client()
    page = client.get("/").get_data(as_text=True)
    scripts = re.findall(r'<script src="([^"]+)"', page)
    assert scripts and not [s for s in scripts if "polyfill" in s], scripts
    runtime = [s for s in scripts if "/assets/regenerator-runtime.js" in s]
    assert len(runtime) == 1 and scripts.index(runtime[0]) < next(
        i for i, s in enumerate(scripts) if "dash_renderer" in s
    ), "the runtime loads before the renderer asks for a lazy component"
    source = client.get(runtime[0]).get_data(as_text=True)
    assert source.startswith("/* regenerator-runtime v0.14.1 (npm), vendored by scripts/vendor_regenerator_runtime.sh")
    assert "regeneratorRuntime = runtime" in source


def test_the_page_preloads_plotly_js_and_leaves_running_it_to_the_first_graph(tiny_run, tmp_path):
    """plotly.js among the page's scripts held the renderer's start, the layout and every callback
    request by its evaluation (0.24 s at 100 M rows); app.main.PruneScopeDash preloads it instead and
    pins the URL dcc.Graph's loader reads (window._dashPlotlyJSURL) to the bundle, not to plotly.py's
    full plotly.js, which dash-renderer would set. assets/plotly-setup.js, a script of the page, sets up
    plotly.js when it arrives (the browser tier draws every view through it)."""
    client = create_app(tiny_run.parent, "tiny", tmp_path / "dc").server.test_client()
    page = client.get("/").get_data(as_text=True)
    scripts = re.findall(r'<script src="([^"]+)"', page)
    assert not [s for s in scripts if "plotly-bundle" in s], scripts
    assert any("/assets/plotly-setup.js" in s for s in scripts), scripts
    (preload,) = re.findall(r'<link rel="preload" as="script" href="([^"]+)">', page)
    assert preload.startswith("/assets/plotly-bundle.min.js?m="), preload
    pinned = re.search(r'Object.defineProperty\(window, "_dashPlotlyJSURL", \{get: \(\) => "([^"]+)"', page)
    assert pinned and pinned[1] == preload, "dcc.Graph's loader fetches the preloaded bundle, nothing else"
    assert page.index(pinned[0]) < page.index("dash_renderer"), "pinned before dash-renderer sets it"
    source = client.get(preload).get_data(as_text=True)
    assert source.startswith("/* plotly.js v") and "partial bundle for PruneScope" in source.splitlines()[0]


def test_the_app_imports_pil_before_any_callback_runs():
    """plotly's JSON encoder asks sys.modules for PIL.Image in every callback's answer; a callback that
    imported PIL itself (the gallery's PNGs) left it half initialised there for a moment, and a view
    answering beside it on a cold server's first page got a 500 (AttributeError: partially initialized
    module 'PIL.Image', seen in one page load of two). The app imports PIL when it is imported."""
    code = "import sys, app.main; m = sys.modules.get('PIL.Image'); print(m is not None and hasattr(m, 'Image'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True", out.stderr
