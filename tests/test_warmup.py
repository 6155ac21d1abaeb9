"""Work ahead of requests (app.warmup): the first page's table on the first request served; the idle-time
imports, nothing before the first request, nothing while requests run."""

from __future__ import annotations

import sys

import pytest
from flask import Flask

from app.main import create_app
from app.reader import StoreError, StoreReader
from app.views import evaltable
from app.warmup import IdleImports, idle, warm_on_first_request

NOT_YET_S = 0.3  # how long a test gives the thread to do what it must not


@pytest.mark.parametrize(
    "in_flight, last, now, expected",
    [(0, 0.0, 2.0, True), (0, 0.0, 1.9, False), (1, 0.0, 10.0, False), (0, 5.0, 7.0, True)],
)
def test_idle_needs_no_request_in_flight_for_the_quiet_period(in_flight, last, now, expected):
    assert idle(in_flight, last, now, 2.0) is expected


@pytest.fixture
def probe(tmp_path, monkeypatch) -> str:
    """A module not imported yet."""
    (tmp_path / "prunescope_warmup_probe.py").write_text("LOADED = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "prunescope_warmup_probe"
    sys.modules.pop("prunescope_warmup_probe", None)


def test_imports_once_the_first_request_is_done_and_the_server_is_quiet(probe):
    server = Flask(__name__)
    warm = IdleImports(server, [probe, "no_such_module_here"], quiet=0.05)
    assert not warm.done.wait(NOT_YET_S), "nothing served yet: a local server waits for the first page"
    with server.test_request_context("/"):
        server.preprocess_request()
        assert warm.in_flight == 1
        assert not warm.done.wait(NOT_YET_S), "a request in flight: the page is still loading"
        assert probe not in sys.modules
    assert warm.done.wait(10) and sys.modules[probe].LOADED, "a missing module is left to its view"
    assert warm.in_flight == 0


def test_a_request_refused_before_it_was_counted_is_not_uncounted(probe):
    server = Flask(__name__)
    server.before_request(lambda: ("refused", 401))  # as the guard and the login answer first
    warm = IdleImports(server, [probe], quiet=60)
    assert server.test_client().get("/").status_code == 401
    assert warm.in_flight == 0 and not warm.served.is_set()


def test_warms_once_on_the_first_request_served():
    server = Flask(__name__)
    server.before_request(lambda: ("refused", 401) if server.config.get("refuse") else None)  # as the guard
    runs: list[int] = []
    done = warm_on_first_request(server, lambda: runs.append(1))
    server.add_url_rule("/", view_func=lambda: "page")
    assert not done.wait(NOT_YET_S) and runs == [], "nothing served yet: nothing warmed"
    server.config["refuse"] = True
    assert server.test_client().get("/").status_code == 401
    assert not done.wait(NOT_YET_S), "a refused request warms nothing"
    server.config["refuse"] = False
    client = server.test_client()
    assert client.get("/").status_code == 200 and client.get("/").status_code == 200
    assert done.wait(10) and runs == [1]


def test_a_request_the_guard_refuses_warms_nothing(tiny_run, tmp_path):
    """The warm-up runs after the guard (app.main): a request without a login starts no work."""
    from tests.test_server import ALICE

    app = create_app(tiny_run.parent, "tiny", tmp_path / "dc", users=ALICE)
    assert app.server.test_client().get("/").status_code == 401
    assert not app.server.extensions["prunescope.warm"].wait(NOT_YET_S)


def test_the_first_page_request_computes_the_tables_structure(tiny_run, tmp_path):
    """The table's callback then finds what a page load asks for first ready (app.views.evaltable.warm)."""
    app = create_app(tiny_run.parent, "tiny", tmp_path / "dc")
    reader = StoreReader(tiny_run.parent, tmp_path / "dc")  # another worker: the shared cache has it
    structure = f"derived:evaltable-structure:{evaltable.SEVERITY}:{evaltable.MODE}"
    assert not reader._memoised("tiny", structure)
    assert app.server.test_client().get("/").status_code == 200
    assert app.server.extensions["prunescope.warm"].wait(30)
    assert reader._memoised("tiny", structure)


def test_warming_a_run_that_cannot_be_read_leaves_the_message_to_the_table(tmp_path):
    """The warm-up swallows the error and keeps nothing: the table's own call still meets it and says it."""
    run = tmp_path / "store" / "broken"
    run.mkdir(parents=True)
    (run / "run.json").write_text("{not json")
    reader = StoreReader(tmp_path / "store", tmp_path / "dc")
    evaltable.warm(reader, "broken")
    with pytest.raises(StoreError) as exc:
        evaltable._table(reader, "broken", evaltable.SEVERITY, None, None, None, None, evaltable.MODE)
    assert "run.json" in f"{exc.value.problem} {exc.value.fix}"


def test_the_idle_imports_wait_longer_than_the_run_wide_views_wait_for_the_browser():
    """The run-wide views are asked for up to IDLE_WAIT_MS after the first views' answers; an import
    started in that gap would hold the interpreter while their callbacks run."""
    from app.main import IDLE_WAIT_MS
    from app.warmup import QUIET_S

    assert QUIET_S * 1000 >= IDLE_WAIT_MS + 500
