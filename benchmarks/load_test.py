"""Load test of the team server: N concurrent users against gunicorn on loopback.

    python -m benchmarks.load_test [--store cache/store] [--run demo] [--users 20] [--workers 4]
                                   [--duration 60] [--think 2.0]

Starts gunicorn (`app:server`, basic auth on, WORKERS workers) on a free loopback port, then
each simulated user loads the page (index, layout, dependencies, the first round of
callbacks) and drives the main interactions (select a model, change the evaluation set, brush
a selection, compare two models) with the callback requests the browser sends, pausing a
random think time (uniform 0.5×–1.5× THINK seconds) between interactions as a person does.
Bounded in time and in requests; it stops the server and itself. Prints request latency
percentiles, errors and throughput. Target: 20 users, p95 ≤ 500 ms, 0 errors.
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from werkzeug.security import generate_password_hash

from app import ids
from app.reader import StoreReader
from app.state import Combo
from benchmarks.dash_client import DRAWN, Driver

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "load-test"
INITIAL_STATE = {
    (ids.EVAL_SEVERITY, "value"): 3,
    (ids.CLASS_DROPDOWN, "value"): 0,
    (ids.LOCAL_DIFF_METRIC, "value"): "margin",
    (ids.LOCAL_DIFF_RANGE, "value"): [0, 100],
    (ids.SAMPLES_SORT, "value"): "margin",
    (ids.COMBINATIONS, "data"): [],
    (ids.VIEW_TABS, "active_tab"): ids.TAB_PAPER,
}


class Recorder:
    """Latencies and errors of every request, from every user thread."""

    def __init__(self, max_requests: int) -> None:
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.max_requests = max_requests

    def add(self, seconds: float, error: str | None) -> None:
        with self.lock:
            self.latencies.append(seconds)
            if error:
                self.errors.append(error)

    @property
    def full(self) -> bool:
        return len(self.latencies) >= self.max_requests


def start_server(store: str, run: str, workers: int, cache: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "PRUNESCOPE_STORE": store,
        "PRUNESCOPE_RUN": run,
        "PRUNESCOPE_CACHE": cache,
        "PRUNESCOPE_USERS": f"load:{generate_password_hash(PASSWORD)}",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            str(workers),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "app:server",
        ],
        cwd=REPO,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited with {proc.returncode}")
        try:
            if requests.get(url + "/", auth=("load", PASSWORD), timeout=5).status_code == 200:
                return proc, url
        except requests.ConnectionError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("gunicorn did not answer within 120 s")


def user(
    url: str, names: dict, rec: Recorder, stop: float, think: float, seed: int, every_step_first: bool = False
) -> None:
    """One person: load the page, then interact until the time is up (with `every_step_first`,
    each kind of interaction once first, as the warm-up visitor does)."""
    rng = random.Random(seed)
    session = requests.Session()
    session.headers["Authorization"] = "Basic " + base64.b64encode(f"load:{PASSWORD}".encode()).decode()

    def timed(method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        t = time.perf_counter()
        try:
            res = session.request(
                method,
                url + path,
                data=body,
                headers={"Content-Type": "application/json"} if body else None,
                timeout=30,
            )
            status, content, error = (
                res.status_code,
                res.content,
                (None if res.status_code in (200, 204) else f"{path}: HTTP {res.status_code}"),
            )
        except requests.RequestException as exc:
            status, content, error = 599, b"", f"{path}: {type(exc).__name__}"
        rec.add(time.perf_counter() - t, error)
        return status, content

    timed("GET", "/")
    timed("GET", "/_dash-layout")
    deps = session.get(url + "/_dash-dependencies", timeout=30).json()
    drv = Driver(deps, lambda path, body: timed("POST", path, body), keep=DRAWN)
    drv.state.update(INITIAL_STATE)
    drv.state[(ids.RUN, "data")] = names["run"]
    drv.state[(ids.REFERENCE_DROPDOWN, "value")] = Combo(names["models"][0], "clean", 0).key

    def combo() -> str:
        corruption, severity = rng.choice(names["sets"])
        return Combo(rng.choice(names["models"]), corruption, severity).key

    steps = {
        "select model": lambda: (
            {(ids.REFERENCE_DROPDOWN, "value"): combo(), (ids.COMPARED_DROPDOWN, "value"): None},
            (ids.REFERENCE_DROPDOWN, "value"),
        ),
        "change evaluation set": lambda: (
            {(ids.REFERENCE_DROPDOWN, "value"): combo()},
            (ids.REFERENCE_DROPDOWN, "value"),
        ),
        "brush": lambda: (
            {
                (ids.SELECTION, "data"): {
                    "samples": sorted(rng.sample(range(names["n"]), min(names["n"], 200))),
                    "source": "local",
                }
            },
            (ids.SELECTION, "data"),
        ),
        "compare": lambda: (
            {(ids.COMPARED_DROPDOWN, "value"): combo(), (ids.CLASS_DROPDOWN, "value"): rng.randrange(names["classes"])},
            (ids.COMPARED_DROPDOWN, "value"),
        ),
    }
    try:
        drv.fire([(ids.RUN, "data"), (ids.REFERENCE_DROPDOWN, "value")])  # the page's first round of callbacks
        for step in steps.values() if every_step_first else ():
            update, changed = step()
            drv.state.update(update)
            drv.fire([changed])
        while time.monotonic() < stop and not rec.full:
            time.sleep(rng.uniform(0.5, 1.5) * think)
            update, changed = rng.choice(list(steps.values()))()
            drv.state.update(update)
            drv.fire([changed])
    except RuntimeError:
        pass  # an error answer is already recorded


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered))) - 1))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", default=str(REPO / "cache" / "store"))
    ap.add_argument("--run", default="demo")
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of load after the warm-up")
    ap.add_argument(
        "--think", type=float, default=2.0, help="mean seconds a user pauses between interactions (0: stress)"
    )
    ap.add_argument("--max-requests", type=int, default=50_000)
    args = ap.parse_args()

    reader = StoreReader(args.store)
    ev = reader.evaluations(args.run)
    names = {
        "run": args.run,
        "models": reader.models(args.run)["model_id"].tolist(),
        "n": int(ev["n"].max()),
        "sets": sorted({(c, int(s)) for c, s in zip(ev["corruption"], ev["severity"])}),
        "classes": len(reader.meta(args.run)["class_names"]),
    }
    with tempfile.TemporaryDirectory() as cache:
        proc, url = start_server(args.store, args.run, args.workers, cache)
        try:
            warm = Recorder(args.max_requests)
            user(
                url, names, warm, time.monotonic(), 0.0, seed=-1, every_step_first=True
            )  # fills the shared cache, as the first visitor does
            StoreReader(args.store, cache).correctness(
                args.run
            )  # and what that visitor's first brush computes in a background job
            rec = Recorder(args.max_requests)
            stop = time.monotonic() + args.duration
            t0 = time.monotonic()
            threads = [
                threading.Thread(target=user, args=(url, names, rec, stop, args.think, i), daemon=True)
                for i in range(args.users)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=args.duration + 120)
            wall = time.monotonic() - t0
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    lat = rec.latencies
    print(
        f"{args.users} users, {args.workers} gunicorn workers, think time {args.think:.1f} s, "
        f"{wall:.0f} s, run {args.run} ({os.cpu_count()} cores)"
    )
    print(f"requests {len(lat)}  errors {len(rec.errors)}  throughput {len(lat) / wall:.1f} req/s")
    if lat:
        print(
            f"latency ms: p50 {statistics.median(lat) * 1e3:.0f}  p95 {percentile(lat, 0.95) * 1e3:.0f}  "
            f"p99 {percentile(lat, 0.99) * 1e3:.0f}  max {max(lat) * 1e3:.0f}"
        )
    for e in sorted(set(rec.errors))[:10]:
        print("error:", e)
    return 0 if lat and not rec.errors else 1


if __name__ == "__main__":
    sys.exit(main())
