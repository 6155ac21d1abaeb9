"""Work done ahead of the requests that need it: the first page's table, and imports a later view needs.

The evaluation table at the top of the page is what a page load waits for first. Its structure
(0.2 s at 100 M rows) is computed in a thread as the server begins its first request, while the
browser spends about a second loading the page's scripts, so the table's callback finds it ready
(StoreReader's memo lets one thread compute a table while the others wait for it). It starts on
the first request, not at start: gunicorn --preload builds the app in a master process whose
threads a fork would not carry into its workers, and whose locks held mid-work would stay held.

Imports that a later view needs are done while the server is idle.

The models tab's similarity map imports scikit-learn's MDS (about 2 s). Imported in a thread at
start, it held the GIL while the first page's callbacks ran and doubled their server time; imported
by the view, it adds 2 s to the tab's first opening. So a background thread imports it once the
server has served a request and none has been in flight for `quiet` seconds since: after the
first page's waves of callbacks, while the user looks at the page. The last wave, the run-wide
views, waits for the browser to be idle after drawing the first views, up to 2 s after their
answers (app.main.IDLE_WAIT_MS): `quiet` is longer, or the import would hold the interpreter
while their 0.5 s of Python runs.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable, Sequence

from flask import Flask, g

QUIET_S = 3.0  # idle this long after the first page's requests (> app.main.IDLE_WAIT_MS): the user looks at it
POLL_S = 0.1  # how often the thread looks whether the server is idle, once it has served a request


def idle(in_flight: int, last_activity: float, now: float, quiet: float) -> bool:
    """Whether a server with `in_flight` requests, the last one begun or ended at `last_activity`,
    has been idle for `quiet` seconds at `now` (monotonic seconds)."""
    return in_flight == 0 and now - last_activity >= quiet


class IdleImports:
    """Counts the requests `server` serves and imports `modules` in a daemon thread once it has
    served one and been idle for `quiet` seconds since; `done` is set when they are imported (or
    failed to: the view that needs one then imports it itself and says why)."""

    def __init__(self, server: Flask, modules: Sequence[str], quiet: float = QUIET_S) -> None:
        self.modules, self.quiet = tuple(modules), quiet
        self.in_flight, self.last_activity = 0, time.monotonic()
        self.lock, self.served, self.done = threading.Lock(), threading.Event(), threading.Event()
        server.before_request(self._begin)
        server.teardown_request(self._end)
        threading.Thread(target=self._run, name="idle-imports", daemon=True).start()

    def _begin(self) -> None:
        g.idle_imports_counted = True
        with self.lock:
            self.in_flight += 1
            self.last_activity = time.monotonic()
        self.served.set()

    def _end(self, _exc: BaseException | None) -> None:
        if not g.pop("idle_imports_counted", False):  # an earlier before_request answered (a refused request)
            return
        with self.lock:
            self.in_flight -= 1
            self.last_activity = time.monotonic()

    def _run(self) -> None:
        self.served.wait()
        while True:
            with self.lock:
                ready = idle(self.in_flight, self.last_activity, time.monotonic(), self.quiet)
            if ready:
                break
            time.sleep(POLL_S)
        for name in self.modules:
            try:
                importlib.import_module(name)
            except ImportError:
                continue
        self.done.set()


def warm_on_first_request(server: Flask, warm: Callable[[], None]) -> threading.Event:
    """Run `warm` once, in a daemon thread, when `server` begins its first request; the event is set
    when it is done."""
    done, lock, started = threading.Event(), threading.Lock(), []

    def run() -> None:
        try:
            warm()
        finally:
            done.set()

    def begin() -> None:
        with lock:
            if started:
                return
            started.append(True)
        threading.Thread(target=run, name="warm-first-page", daemon=True).start()

    server.before_request(begin)
    return done
