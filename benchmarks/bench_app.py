"""Server time of the dashboard's main interactions, against reading the whole run with pandas.

    python -m benchmarks.bench_app STORE RUN [--repeats 20] [--browser [--page-loads 5]] [--duckdb-python PY]

Each interaction posts the real callback requests that the browser sends (Flask test client,
one worker, a fresh diskcache, a different model or evaluation set each time, so reads are
cold) and sums the server time of every callback it triggers: select a model, change the
evaluation set, brush a selection, compare two models, change the class in focus, rank the
classes (the pre-selection of a run of many classes). The run's correctness matrix, which the
first brush reads from evaluations' correct_bits (or computes in a background job for a run
without them), is made once beforehand and timed apart. The baseline does the same work the
naive way: pandas reads every per-sample file of the run, then filters; with --duckdb-python
(an interpreter with `duckdb`: `pip install -r benchmarks/requirements-peer.txt` in its own
environment), DuckDB runs the same query on the same Parquet files (hive partitions and
row-group statistics let it skip what the filter rules out). Also: the server time of the
first request on a cold server (the run's first views: indexes, tables), the slowest callback
of each interaction, the server time of opening the models tab (its views draw only while it is
shown: the first time, and after another model was selected), and the peak resident memory of
the process serving the app, before the baselines run. With --browser, also the time from
opening the page in a running, idle headless Chromium until the evaluation table (the top of the page),
until every view of the first page is drawn (FIRST_VIEWS: the table, the local and global geometry,
the robustness plots and the gallery, as issue 14 timed it) and until the rest of the first tab,
further down (Fig. 3, Table 1), is drawn too (median and worst of several loads: one load varies
by a few tenths of a second on 2 cores, and by seconds when other work shares them).
Targets (issue 14): p95 ≤ 100 ms per interaction in parallel and ≤ 150 ms on one worker;
≥ 20× faster than pandas; first page ≤ 2.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd

from app import ids
from app.figures.local import RANK_CHANGE, RANK_CONFUSION
from app.main import create_app
from app.reader import SCALAR_COLUMNS, StoreReader
from app.state import Combo
from benchmarks.dash_client import DRAWN, Driver, initial_state
from pipeline import store


def interactions(reader, run: str, rng: random.Random):
    models = reader.models(run)["model_id"].tolist()
    ev = reader.evaluations(run)
    sets = sorted({(c, int(s)) for c, s in zip(ev["corruption"], ev["severity"])})
    classes = len(reader.meta(run)["class_names"])

    def combo() -> str:
        c, s = rng.choice(sets)
        return Combo(rng.choice(models), c, s).key

    def sample_ids() -> list[int]:
        n = int(ev["n"].max())
        return sorted(rng.sample(range(n), min(n, 300)))

    return {
        "select model": lambda st: [
            st.update({(ids.REFERENCE_DROPDOWN, "value"): combo(), (ids.COMPARED_DROPDOWN, "value"): None}),
            [(ids.REFERENCE_DROPDOWN, "value")],
        ][1],
        "change evaluation set": lambda st: [
            st.update({(ids.REFERENCE_DROPDOWN, "value"): combo()}),
            [(ids.REFERENCE_DROPDOWN, "value")],
        ][1],
        "brush": lambda st: [
            st.update({(ids.SELECTION, "data"): {"samples": sample_ids(), "source": "local"}}),
            [(ids.SELECTION, "data")],
        ][1],
        "compare": lambda st: [
            st.update(
                {(ids.COMPARED_DROPDOWN, "value"): combo(), (ids.CLASS_DROPDOWN, "value"): rng.randrange(classes)}
            ),
            [(ids.COMPARED_DROPDOWN, "value")],
        ][1],
        "change class": lambda st: [
            st.update({(ids.CLASS_DROPDOWN, "value"): rng.randrange(classes)}),
            [(ids.CLASS_DROPDOWN, "value")],
        ][1],
        "rank classes": lambda st: [
            st.update({(ids.CLASS_RANK, "value"): rng.choice([RANK_CHANGE, RANK_CONFUSION])}),
            [(ids.CLASS_RANK, "value")],
        ][1],
    }


Opening = tuple[float, float, int]  # seconds on one worker, seconds with callbacks in parallel, bytes sent


def open_models_tab(drv: Driver, select_model) -> tuple[Opening, Opening, Opening, tuple[str, float]]:
    """Server time of opening the models tab: the first time (its views' first draw on this run), again
    after going back to the first tab with nothing changed, and again after selecting another model
    there; (one worker, in parallel, bytes of the answers) each, and the slowest callback of the first opening."""
    tab = (ids.VIEW_TABS, "active_tab")

    def reopen() -> Opening:
        drv.state[tab] = ids.TAB_PAPER
        drv.fire([tab])
        drv.state[tab] = ids.TAB_MODELS
        return (*drv.fire([tab]), drv.received)

    drv.state[tab] = ids.TAB_MODELS
    first = (*drv.fire([tab]), drv.received)
    slowest = max(drv.took.items(), key=lambda kv: kv[1])
    unchanged = reopen()
    drv.state[tab] = ids.TAB_PAPER
    drv.fire([tab])
    drv.fire(select_model(drv.state))
    changed = reopen()
    drv.state[tab] = ids.TAB_PAPER
    drv.fire([tab])
    return first, unchanged, changed, slowest


def percentile(values, q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered))) - 1))]


WHOLE_RUN_MAX_BYTES = 2 * 2**30  # above this many bytes of samples files, reading them all would not fit in memory


def baseline_columns(run_dir: Path) -> list[str]:
    """What a view of one evaluation set reads: the scalars, and the angles where every row holds them."""
    every_angle = store.angles_stored(store.read_run_json(run_dir))["full"] == store.ANGLES_ALL
    return [*SCALAR_COLUMNS, *(["angles"] if every_angle else [])]


def pandas_baseline(run_dir: Path, model_id: str, corruption: str, severity: int, pushdown: bool = False) -> float:
    """The naive way: read every per-sample file of the run with pandas, then filter; with
    `pushdown`, the way a careful pandas user would: pyarrow filters on the partition and the key
    columns, so only the matching files and row groups are read."""
    t = time.perf_counter()
    keys = [("model_id", "==", model_id), ("corruption", "==", corruption), ("severity", "==", severity)]
    df = pd.read_parquet(
        run_dir / store.SAMPLES_DIR,
        columns=["model_id", "corruption", "severity", *baseline_columns(run_dir)],
        filters=keys if pushdown else None,
    )
    part = df[(df["model_id"] == model_id) & (df["corruption"] == corruption) & (df["severity"] == severity)]
    assert len(part)
    return time.perf_counter() - t


DUCKDB_QUERY = """
import duckdb, json, sys, time
run, columns, model_id, corruption, severity = json.loads(sys.argv[1])
con = duckdb.connect()
t = time.perf_counter()
con.execute(  # the rows land in a DuckDB table: what a user would query next
    f"CREATE TEMP TABLE part AS SELECT {', '.join(columns)} FROM read_parquet(?, hive_partitioning = true, "
    "union_by_name = true) WHERE model_id = ? AND corruption = ? AND severity = ?",
    [run + '/samples/*/*.parquet', model_id, corruption, severity],
)
assert con.execute("SELECT count(*) FROM part").fetchone()[0]
print(time.perf_counter() - t)
"""


def duckdb_peer(python: str, run_dir: Path, model_id: str, corruption: str, severity: int) -> float:
    """The same query as the pandas baseline, by DuckDB on the same files, in the peer's interpreter
    (DuckDB is a benchmark peer, never a dependency of the app); seconds, interpreter start left out."""
    args = json.dumps([str(run_dir), baseline_columns(run_dir), model_id, corruption, severity])
    out = subprocess.run([python, "-c", DUCKDB_QUERY, args], capture_output=True, text=True, check=True, timeout=3600)
    return float(out.stdout.split()[-1])


DRAWN_WATCH = """
window.__drawn = {};
const views = %s;  // id -> what shows it drawn: a plot with data, an image, a table cell
const shows = {plot: (el) => (g => g && g.data && g.data.length)(el.querySelector('.js-plotly-plot')),
               img: (el) => el.querySelector('img'), cell: (el) => el.querySelector('td')};
function check() {
  for (const [id, kind] of Object.entries(views)) {
    if (window.__drawn[id] !== undefined) continue;
    const el = document.getElementById(id);
    if (el && shows[kind](el)) window.__drawn[id] = performance.timeOrigin + performance.now();
  }
  if (Object.keys(window.__drawn).length === Object.keys(views).length) observer.disconnect();
}
const observer = new MutationObserver(check);
observer.observe(document, {childList: true, subtree: true});
"""
# The first page's views as issue 14 timed them (the table, the geometry and the robustness plots, the
# gallery), then the rest of the first tab, further down: Fig. 3 and Table 1 (`--browser` reports both).
FIRST_VIEWS = {
    ids.EVAL_TABLE: "plot",
    ids.LOCAL_GRAPH: "plot",
    ids.GLOBAL_GRAPH: "plot",
    ids.ROBUST_MARGIN: "plot",
    ids.ROBUST_SWEETSPOT: "plot",
    ids.SAMPLES_GRID: "img",
}
REST_OF_TAB = {ids.DIM_GRAPH: "plot", ids.ROBUST_TABLE1: "cell"}


def wait_drawn(driver, url: str, views: dict[str, str] = FIRST_VIEWS) -> tuple[float, float, float]:
    """Open `url` in a running Chromium and wait until `views` (FIRST_VIEWS, and any others) are drawn;
    returns the seconds until the evaluation table (the top of the page), until the first page's views
    (FIRST_VIEWS) and until all of `views` were drawn. The page notes the DOM change after which each
    view shows (a MutationObserver): polling from here would wait for the page's busy main thread and
    see it late."""
    from selenium.webdriver.support.ui import WebDriverWait

    views = FIRST_VIEWS | views
    script = driver.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument", {"source": DRAWN_WATCH % json.dumps(views)}
    )
    try:
        t = time.time()
        driver.get(url)
        drawn = WebDriverWait(driver, 120, 0.2).until(
            lambda d: (lambda at: at if len(at) == len(views) else None)(d.execute_script("return window.__drawn"))
        )
    finally:
        driver.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]})
    first = max(drawn[v] for v in FIRST_VIEWS)
    return drawn[ids.EVAL_TABLE] / 1e3 - t, first / 1e3 - t, max(drawn.values()) / 1e3 - t


def process_tree_cpu(root: int) -> float | None:
    """CPU seconds used so far by process `root` and its descendants, with their children that ended
    (Linux /proc; None elsewhere): it only grows as the processes run."""
    tick = os.sysconf("SC_CLK_TCK")
    parents, cpu = {}, {}
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents[pid], cpu[pid] = int(fields[1]), sum(int(f) for f in fields[11:15]) / tick
    tree, frontier = {root}, [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier and pid not in tree]
        tree.update(frontier)
    return sum(cpu.get(pid, 0.0) for pid in tree)


def browser_idle(driver, quiet_s: float = 0.3, most_s: float = 10.0) -> float:
    """Wait until the browser behind `driver` (its chromedriver and every process under it) has used
    less than 10 ms of CPU in `quiet_s`, as a user's browser is when they open a page; the seconds
    waited (`most_s` at most: it says so). A fresh headless Chromium goes on starting for about a
    second after its first page (0.66–0.82 CPU s on this machine, mostly a renderer process setting
    up), and a page opened at once shared the 2 cores with it: 0.3–0.46 s longer to every view in
    alternated loads. Without /proc, a second."""
    t = time.perf_counter()
    root = driver.service.process.pid
    history = [(t, process_tree_cpu(root))]
    if history[0][1] is None:
        time.sleep(1.0)
        return time.perf_counter() - t
    while time.perf_counter() - t < most_s:
        time.sleep(0.1)
        now = (time.perf_counter(), process_tree_cpu(root))
        if now[1] is None:
            continue
        history.append(now)
        start = next((h for h in reversed(history) if now[0] - h[0] >= quiet_s), None)
        if start is not None and 0 <= now[1] - start[1] < 0.01:
            return time.perf_counter() - t
    print(f"the browser was still busy after {most_s:.0f} s: its first page is timed anyway")
    return time.perf_counter() - t


def first_page(store_dir: str, run: str) -> tuple[float, float, float]:
    """Seconds until the evaluation table, the first page's views and the whole first tab are drawn
    (wait_drawn), on a cold server in a fresh headless Chromium, already running and idle (browser_idle)."""
    import socket
    import threading

    from selenium import webdriver
    from werkzeug.serving import make_server

    from scripts.render_png import chrome_options

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as cache:
        server = make_server("127.0.0.1", port, create_app(store_dir, run, cache).server, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        driver = webdriver.Chrome(options=chrome_options())
        try:
            driver.get("about:blank")  # the browser is already running when a user opens the page,
            browser_idle(driver)  # and done starting
            return wait_drawn(driver, f"http://127.0.0.1:{port}/", FIRST_VIEWS | REST_OF_TAB)
        finally:
            driver.quit()
            server.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("store")
    ap.add_argument("run")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--browser", action="store_true")
    ap.add_argument("--page-loads", type=int, default=5, help="first-page loads to time with --browser")
    ap.add_argument("--duckdb-python", help="an interpreter with duckdb: time DuckDB on the same query too")
    args = ap.parse_args()
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as cache:
        app = create_app(args.store, args.run, cache)
        reader = StoreReader(args.store)
        run_dir = reader.run_dir(args.run)
        rows = sum(int(n) for n in reader.evaluations(args.run)["n"])
        client = app.server.test_client()
        drv = Driver(
            client.get("/_dash-dependencies").get_json(),
            lambda path, body: (lambda r: (r.status_code, r.data))(
                client.post(path, data=body, content_type="application/json")
            ),
            keep=DRAWN,  # what the views drew comes back, as from the browser
        )
        t = time.perf_counter()
        drv.state.update(initial_state(client.get("/_dash-layout").get_json()))  # per page load (app.main.Page)
        layout_s = time.perf_counter() - t
        drv.state[(ids.RUN, "data")] = args.run
        drv.state[(ids.EVAL_SEVERITY, "value")] = 3
        drv.state[(ids.CLASS_DROPDOWN, "value")] = 0
        first = reader.models(args.run)["model_id"].iloc[0]
        drv.state[(ids.REFERENCE_DROPDOWN, "value")] = Combo(first, "clean", 0).key
        first_sum, first_max = drv.fire([(ids.RUN, "data")], page_load=True)
        t = time.perf_counter()
        StoreReader(args.store, cache).correctness(args.run)  # what the first brush waits for, once per run
        index_s = time.perf_counter() - t
        bits = store.load(run_dir, store.TABLES["evaluations"], ["correct_bits"]).column("correct_bits")
        source = (
            "evaluations' correct_bits" if bits.null_count == 0 else "a scan of the samples: the run has no bitsets"
        )
        results, slowest = {}, {}
        for name, step in interactions(reader, args.run, rng).items():
            runs, took = [], []
            for _ in range(args.repeats):
                runs.append(drv.fire(step(drv.state)))
                took.append(drv.took)
            results[name] = [(statistics.median(v), percentile(v, 0.95)) for v in zip(*runs)]
            medians = {k: statistics.median(t.get(k, 0.0) for t in took) for k in took[0]}
            slowest[name] = max(medians.items(), key=lambda kv: kv[1])
        warm = app.server.extensions["prunescope.idle_imports"].done.wait(120)  # as in the idle after a first page
        tab = open_models_tab(drv, interactions(reader, args.run, rng)["select model"])
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ev = reader.evaluations(args.run)
    some = ev.iloc[len(ev) // 2]
    query = (some["model_id"], some["corruption"], int(some["severity"]))
    duck = duckdb_peer(args.duckdb_python, run_dir, *query) if args.duckdb_python else None
    paths = list((run_dir / store.SAMPLES_DIR).glob("*/*.parquet"))
    files, size = len(paths), sum(p.stat().st_size for p in paths)
    pushdown = pandas_baseline(run_dir, *query, pushdown=True)
    whole = pandas_baseline(run_dir, *query) if size <= WHOLE_RUN_MAX_BYTES else None
    baseline = whole if whole is not None else pushdown
    print(f"run {args.run}: {rows:,} sample rows in {files:,} files; {args.repeats} interactions each, cold cache")
    print(
        f"first request on a cold server (the run's first views): {first_sum * 1e3:.0f} ms on one worker, "
        f"{first_max * 1e3:.0f} ms in parallel (the page's layout before them: {layout_s * 1e3:.0f} ms)"
    )
    print(
        f"{'interaction':24s} {'sum p50':>8s} {'sum p95':>8s} {'max p50':>8s} {'max p95':>8s} {'pandas/sum p95':>15s}"
        f"  (pandas: {'the whole run' if whole is not None else 'filters pushed down'})"
        "  (ms; sum: one worker, max: callbacks in parallel)"
    )
    for name, ((s50, s95), (m50, m95)) in results.items():
        print(f"{name:24s} {s50 * 1e3:8.1f} {s95 * 1e3:8.1f} {m50 * 1e3:8.1f} {m95 * 1e3:8.1f} {baseline / s95:14.1f}x")
    for name, (key, took) in slowest.items():
        print(f"slowest callback of {name}: {key.strip('.').split('.')[0]} {took * 1e3:.0f} ms (median)")
    print(
        "opening the models tab (model map, similarity, sensitivity, PIE, attribution drift; they draw only while "
        f"shown; scikit-learn {'imported while the server was idle' if warm else 'not imported yet'}): "
        f"first {tab[0][0] * 1e3:.0f} ms on one worker ({tab[0][1] * 1e3:.0f} ms in parallel, "
        f"{tab[0][2] / 1e3:.0f} kB sent), again with nothing changed {tab[1][0] * 1e3:.0f} ms "
        f"({tab[1][1] * 1e3:.0f} ms, {tab[1][2] / 1e3:.0f} kB), after another model was selected "
        f"{tab[2][0] * 1e3:.0f} ms ({tab[2][1] * 1e3:.0f} ms, {tab[2][2] / 1e3:.0f} kB); "
        f"slowest callback {tab[3][0].strip('.').split('.')[0]} {tab[3][1] * 1e3:.0f} ms (first)"
    )
    print(f"peak resident memory of the process serving the app (before the baselines): {rss_mb:,.0f} MB")
    if whole is not None:
        print(f"pandas baseline (read the whole run's samples, then filter): {whole * 1e3:.0f} ms")
    else:
        print(f"pandas, the whole run: not run ({size / 2**30:.1f} GB of Parquet would not fit in memory)")
    print(f"pandas with filters pushed down to pyarrow (partition and row-group pruning): {pushdown * 1e3:.0f} ms")
    if duck is not None:
        print(f"DuckDB on the same files, same query (the peer's interpreter): {duck * 1e3:.0f} ms")
    print(f"correctness matrix for selections (the first brush's wait, once per run, from {source}): {index_s:.2f} s")
    if args.browser:
        tables, loads, tabs = (
            sorted(v) for v in zip(*(first_page(args.store, args.run) for _ in range(args.page_loads)))
        )
        print(
            f"first page ready (every view drawn, headless Chromium, fresh browser and server cache each time): "
            f"median {statistics.median(loads):.2f} s, worst {loads[-1]:.2f} s of {len(loads)} loads; "
            f"the evaluation table (top of the page) drawn after median {statistics.median(tables):.2f} s, "
            f"worst {tables[-1]:.2f} s; the whole first tab (Fig. 3 and Table 1, further down, too) after "
            f"median {statistics.median(tabs):.2f} s, worst {tabs[-1]:.2f} s"
        )


if __name__ == "__main__":
    main()
