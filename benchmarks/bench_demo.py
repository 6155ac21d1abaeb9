"""The demo from nothing to a served dashboard (target: at most 60 s on 2 cores).

    python -m benchmarks.bench_demo [--no-browser]

Does what `make dashboard` does on a fresh clone (its virtualenv already cached): starts
`python app.py` on an empty store, which builds the demo run (configs/demo.toml) and then
serves it; the clock stops when a headless Chromium (already running, as a user's browser
would be) has drawn every view of the first page. Prints the wall time of each stage, the CPU
seconds of the app process and the build it ran (user + sys), and the load average, since on
a shared machine the wall time grows with the load.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_seconds(pid: int) -> float:
    """User + sys CPU seconds of a live process and of the children it has waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _wait_served(url: str, app: subprocess.Popen) -> None:
    while True:
        if app.poll() is not None:
            sys.exit(f"app.py exited with {app.returncode} before serving")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--no-browser", action="store_true", help="stop when the server answers, without Chromium")
    args = ap.parse_args()
    driver = None
    if not args.no_browser:
        from selenium import webdriver

        from scripts.render_png import chrome_options

        driver = webdriver.Chrome(options=chrome_options())
        driver.get("about:blank")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as store:
        t = time.perf_counter()
        app = subprocess.Popen(
            [sys.executable, "app.py", "--store", store, "--port", str(port)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            _wait_served(url, app)
            served = time.perf_counter() - t
            drawn = None
            if driver is not None:
                from benchmarks.bench_app import wait_drawn

                wait_drawn(driver, url)
                drawn = time.perf_counter() - t
            cpu = _cpu_seconds(app.pid)
        finally:
            app.terminate()
            app.wait()
            if driver is not None:
                driver.quit()
        check = subprocess.run(
            [sys.executable, "-m", "pipeline", "validate", f"{store}/demo"], cwd=REPO, capture_output=True, text=True
        )
    print(check.stdout.strip())
    end = os.getloadavg()
    total = drawn if drawn is not None else served
    print(
        f"demo from nothing: served after {served:.1f} s"
        + (f", first page drawn after {drawn:.1f} s" if drawn is not None else "")
        + f"; app + build {cpu:.1f} CPU s (user + sys); load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}"
        f" (1 / 5 / 15 min) at start, {end[0]:.1f} at the end, {os.cpu_count()} cores"
    )
    print(
        "| `bench_demo`: the demo from nothing to a served dashboard (`python app.py` on an empty store builds "
        "configs/demo.toml, serves it, and a headless Chromium draws the first page), "
        f"load average {load[0]:.1f} on {os.cpu_count()} cores | {total:.1f} s ({cpu:.0f} CPU s) | ≤ 60 s |"
    )


if __name__ == "__main__":
    main()
