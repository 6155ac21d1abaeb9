"""The team server against hostile requests, through real HTTP on loopback: credentials before any work,
a capped body, 400 (never 500) for malformed or mistyped callbacks, logins that cost the same whether
the user exists or not and back off when repeated, and the loopback rule enforced by the app itself."""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from werkzeug.security import generate_password_hash
from werkzeug.serving import make_server

from app import ids
from app.auth import Backoff, is_loopback
from app.guard import FIELDS, MAX_BODY_ENV, max_body_bytes, specs
from app.main import create_app
from pipeline.errors import PruneScopeError
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[1]
FAST = {"alice": generate_password_hash("s3cret", method="pbkdf2:sha256:1000")}
CLASS_CALLBACK = "..samples-html.data...samples-count.children.."  # reads the class, selection and sort


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    source: str = "127.0.0.1",
) -> tuple[int, dict[str, str], bytes, float]:
    """(status, headers, body, seconds) of one request from the loopback address `source`."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60, source_address=(source, 0))
    try:
        start = time.perf_counter()
        conn.request(method, path, body=body, headers=headers or {})
        res = conn.getresponse()
        data = res.read()
        return res.status, dict(res.getheaders()), data, time.perf_counter() - start
    finally:
        conn.close()


def serve(app, host: str = "127.0.0.1") -> Iterator[int]:
    port = free_port()
    server = make_server(host, port, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        server.shutdown()
        thread.join(timeout=30)


@dataclass
class Live:
    """A served app: its port and its callbacks' declared inputs and state."""

    port: int
    callbacks: dict[str, dict]

    def post(self, body: object, headers: dict[str, str], **kw) -> tuple[int, dict[str, str], bytes, float]:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return request(
            self.port, "POST", "/_dash-update-component", raw, {"Content-Type": "application/json", **headers}, **kw
        )

    def body(self, values: dict[tuple[str, str], object], output: str = CLASS_CALLBACK) -> dict:
        """The request of callback `output`, as the renderer posts it, its fields' values from `values`."""
        declared = self.callbacks[output]
        outputs = [{"id": o.split(".")[0], "property": o.split(".")[1]} for o in output.strip(".").split("...")]

        def field(d: dict) -> dict:
            return {"id": d["id"], "property": d["property"], "value": values.get((d["id"], d["property"]))}

        return {
            "output": output,
            "outputs": outputs if output.startswith("..") else outputs[0],
            "inputs": [field(d) for d in declared["inputs"]],
            "state": [field(d) for d in declared["state"]],
            "changedPropIds": [],
        }

    def callback(self, values: dict[tuple[str, str], object], output: str = CLASS_CALLBACK, **kw):
        return self.post(self.body(values, output), basic("alice", "s3cret"), **kw)

    def reading(self, field: tuple[str, str]) -> str:
        """The first callback that reads `field`."""
        return next(
            k
            for k, cb in self.callbacks.items()
            if field in {(d["id"], d["property"]) for d in cb["inputs"] + cb["state"]}
        )


def live_app(app) -> Iterator[Live]:
    callbacks = {k: {"inputs": v["inputs"], "state": v["state"]} for k, v in app.callback_map.items()}
    for port in serve(app):
        yield Live(port, callbacks)


@pytest.fixture
def live(tiny_run, tmp_path) -> Iterator[Live]:
    """The app with one user, served by werkzeug on a free loopback port; a body cap of 200 kB, a
    backoff whose first wait (60 s) outlasts the test."""
    app = create_app(
        tiny_run.parent, "tiny", cache_dir=tmp_path / "dc", users=FAST, max_body=200_000, backoff=Backoff(first=60.0)
    )
    yield from live_app(app)


VALID = {
    (ids.RUN, "data"): "tiny",
    (ids.SELECTION, "data"): {"samples": [1, 2, 3], "source": "local"},
    (ids.REFERENCE_DROPDOWN, "value"): "digits_cnn-dense|clean",
    (ids.COMPARED_DROPDOWN, "value"): None,
    (ids.CLASS_DROPDOWN, "value"): 3,
    (ids.SAMPLES_SORT, "value"): "margin",
    (ids.EVAL_SEVERITY, "value"): 3,
    (ids.EVAL_MODE, "value"): "auto",
    (ids.LOCAL_DIFF_METRIC, "value"): "margin",
    (ids.LOCAL_DIFF_RANGE, "value"): [0, 100],
}


# ---------------------------------------------------------------- credentials first, a capped body


def test_body_cap_answers_413_to_everyone_before_reading(live):
    huge = {"Content-Type": "application/json", "Content-Length": str(48_000_000)}
    for headers in (huge, {**huge, **basic("alice", "s3cret")}):
        with socket.create_connection(("127.0.0.1", live.port), timeout=30) as s:
            head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            s.sendall(f"POST /_dash-update-component HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode() + b"{")
            answer = b""
            while b"PRUNESCOPE_MAX_BODY_MB" not in answer and (chunk := s.recv(4096)):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 413 ") and b"PRUNESCOPE_MAX_BODY_MB" in answer, answer


def test_max_body_setting():
    assert max_body_bytes({}) == 8_000_000 and max_body_bytes({MAX_BODY_ENV: "0.5"}) == 500_000
    for bad in ("0", "-1", "abc", "inf", "nan"):
        with pytest.raises(PruneScopeError, match=MAX_BODY_ENV):
            max_body_bytes({MAX_BODY_ENV: bad})


DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    "body",
    [DEEP, b'{"output":"x","inputs":5}', b"not json at all", b'{"output":"x"', b"\xff\xfe", b"[]", b"null"],
    ids=["nested-100k", "inputs-5", "text", "truncated", "not-utf8", "list", "null"],
)
def test_malformed_callback_bodies_answer_400_after_credentials(live, body):
    assert live.post(body, {})[0] == 401, "no credentials: refused before the body is read"
    assert live.post(body, basic("alice", "wrong"))[0] == 401
    status, _, text, _ = live.post(body, basic("alice", "s3cret"))
    assert status == 400 and b"Traceback" not in text and text.startswith(b"refused"), text[:300]


def test_unauthenticated_body_is_never_parsed(tiny_run, tmp_path, monkeypatch):
    import flask

    parsed: list[int] = []
    original = flask.Request.get_json
    monkeypatch.setattr(flask.Request, "get_json", lambda self, *a, **k: parsed.append(1) or original(self, *a, **k))
    for live in live_app(create_app(tiny_run.parent, "tiny", cache_dir=tmp_path / "dc", users=FAST)):
        body = live.body(VALID)
        for headers in ({}, basic("alice", "wrong"), basic("mallory", "s3cret"), {"Authorization": "Basic %%"}):
            assert live.post(body, headers)[0] == 401
        assert parsed == []
        assert live.callback(VALID)[0] == 200 and parsed


# ---------------------------------------------------------------- callback fields of the wrong type


def test_valid_callback_is_answered(live):
    status, _, text, _ = live.callback(VALID)
    assert status == 200 and b"sample-card" in text, text[:300]


@pytest.mark.parametrize(
    "field, value",
    [
        ((ids.CLASS_DROPDOWN, "value"), "abc"),
        ((ids.CLASS_DROPDOWN, "value"), 10**9),
        ((ids.CLASS_DROPDOWN, "value"), -1),
        ((ids.CLASS_DROPDOWN, "value"), True),
        ((ids.CLASS_DROPDOWN, "value"), [3]),
        ((ids.SELECTION, "data"), "1,2,3"),
        ((ids.SELECTION, "data"), {"samples": ["1", "2"], "source": "local"}),
        ((ids.SELECTION, "data"), {"samples": [1.5], "source": "local"}),
        ((ids.SELECTION, "data"), {"samples": 5, "source": "local"}),
        ((ids.SAMPLES_SORT, "value"), "abc"),
        ((ids.REFERENCE_DROPDOWN, "value"), {"a": 1}),
        ((ids.REFERENCE_DROPDOWN, "value"), "digits_cnn-dense|fog-x"),
        ((ids.RUN, "data"), 5),
        ((ids.RUN, "data"), ["tiny"]),
    ],
)
def test_mistyped_fields_answer_400(live, field, value):
    status, _, text, _ = live.callback({**VALID, field: value})
    assert status == 400 and f"{field[0]}.{field[1]} must be".encode() in text, text[:300]


def test_a_class_the_run_does_not_have_answers_400(live):
    reading = [k for k, cb in live.callbacks.items() if any(d["id"] == ids.CLASS_DROPDOWN for d in cb["inputs"])]
    assert len(reading) >= 3
    compared = {**VALID, (ids.COMPARED_DROPDOWN, "value"): "digits_cnn-random-global-oneshot-s50-ft0|clean"}
    for output in reading:
        assert live.callback({**compared, (ids.CLASS_DROPDOWN, "value"): 9}, output=output)[0] == 200
        status, _, text, _ = live.callback({**compared, (ids.CLASS_DROPDOWN, "value"): 10}, output=output)
        assert status == 400 and b"must be a class of run 'tiny' (0..9)" in text, (output, text[:300])


@pytest.mark.parametrize("value", ["abc", 9, "3", None])
def test_mistyped_severity_answers_400(live, value):
    output = live.reading((ids.EVAL_SEVERITY, "value"))
    assert live.callback(VALID, output=output)[0] == 200
    status, _, text, _ = live.callback({**VALID, (ids.EVAL_SEVERITY, "value"): value}, output=output)
    assert status == 400 and b"eval-severity.value must be one of" in text, text[:300]


@pytest.mark.parametrize("value", [["a", "b"], [0], [0, 100, 5], "0-100", [0, float("nan")], None])
def test_mistyped_range_answers_400(live, value):
    output = live.reading((ids.LOCAL_DIFF_RANGE, "value"))
    assert live.callback(VALID, output=output)[0] == 200
    status, _, text, _ = live.callback({**VALID, (ids.LOCAL_DIFF_RANGE, "value"): value}, output=output)
    assert status == 400 and b"local-diff-range.value must be" in text, text[:300]


@pytest.mark.parametrize(
    "field, value",
    [
        ((ids.LOCAL_GRAPH, "selectedData"), {"points": [{"customdata": "abc"}]}),
        ((ids.LOCAL_GRAPH, "selectedData"), {"points": "all"}),
        ((ids.LOCAL_GRAPH, "selectedData"), {"points": [{"curveNumber": "0", "pointIndex": 1}]}),
        ((ids.EVAL_TABLE, "clickData"), {"points": [{"customdata": ["digits_cnn-dense", "clean", "abc"]}]}),
        ((ids.ROBUST_SWEETSPOT, "clickData"), {"points": [{"customdata": ["x"]}]}),
        ((ids.GLOBAL_GRAPH, "relayoutData"), {"selections": [{"type": "rect", "x0": "a"}]}),
        ((ids.MODELMAP_GRAPH, "clickData"), {"points": [{"customdata": ["../run", "clean", 0]}]}),
        ((ids.SIMILARITY_GRAPH, "selectedData"), {"points": [{"customdata": "digits_cnn-dense"}]}),
        ((ids.MODEL_HIGHLIGHT, "data"), {"models": ["a b"], "source": "similarity"}),
    ],
)
def test_plot_events_of_the_wrong_type_answer_400(live, field, value):
    status, _, text, _ = live.callback({**VALID, field: value}, output=live.reading(field))
    assert status == 400 and f"{field[0]}.{field[1]} must be".encode() in text, text[:300]


@pytest.mark.parametrize(
    "change",
    [
        {"output": "no-such.figure"},
        {"output": f"{ids.SAMPLES_GRID}.data-cards"},  # a clientside callback: it has no server function
        {"inputs": []},
        {"inputs": [{"id": "x", "property": "y", "value": 1}] * 5},
        {"outputs": 5},
        {"outputs": [{"id": ids.SAMPLES_GRID, "property": "children"}]},
        {"changedPropIds": [5]},
        {"state": "x"},
    ],
    ids=["output", "clientside", "no-inputs", "foreign-inputs", "outputs", "too-few-outputs", "changed", "state"],
)
def test_callback_request_shape_is_checked(live, change):
    status, _, text, _ = live.post({**live.body(VALID), **change}, basic("alice", "s3cret"))
    assert status == 400 and text.startswith(b"refused"), text[:300]


def test_a_background_poll_is_not_type_checked_and_runs_nothing(live):
    """The renderer polls a background job with every value null; Dash answers from the job (none here)."""
    background = live.reading((ids.EVAL_PREPARE, "data"))
    nulls = live.body({}, output=background)
    assert live.post(nulls, basic("alice", "s3cret"))[0] == 400, "not a poll: the values are checked"
    status, _, text, _ = request(
        live.port,
        "POST",
        "/_dash-update-component?cacheKey=forged&job=1",
        json.dumps(nulls).encode(),
        {"Content-Type": "application/json", **basic("alice", "s3cret")},
    )
    assert status < 500 and not text.startswith(b"refused"), (status, text[:300])
    mistyped = live.body({**VALID, (ids.CLASS_DROPDOWN, "value"): "abc"})
    status, _, text, _ = request(
        live.port,
        "POST",
        "/_dash-update-component?cacheKey=forged",
        json.dumps(mistyped).encode(),
        {"Content-Type": "application/json", **basic("alice", "s3cret")},
    )
    assert status == 400, "a callback that is not a background job is checked, poll or not"


def test_every_field_a_callback_reads_has_a_type(tiny_run, tmp_path):
    """The registry of field types covers every callback the server runs: a new input needs its type (or
    fixed options). A clientside callback's inputs (the first views' figures that app.main's
    FIRST_VIEWS_DRAWN waits for) never reach the server: the guard refuses a request for it."""
    app = create_app(tiny_run.parent, "tiny", cache_dir=tmp_path / "dc")
    app.server.test_client().get("/")  # Dash adds the callbacks that cancel background jobs on the first request
    types = specs(app)

    def fields(callbacks) -> set[tuple[str, str]]:
        return {(d["id"], d["property"]) for cb in callbacks for d in cb["inputs"] + cb["state"]}

    served = [cb for cb in app.callback_map.values() if "callback" in cb]
    assert len(served) < len(app.callback_map), "the page's clientside callbacks are in the map, left out here"
    assert fields(served) - set(types) == set()
    assert set(FIELDS) <= fields(app.callback_map.values()), "no type for a field nothing reads"


# ---------------------------------------------------------------- logins


def test_unknown_user_costs_as_much_as_a_wrong_password(tiny_run, tmp_path):
    users = {"alice": generate_password_hash("s3cret", method="pbkdf2:sha256:100000")}
    app = create_app(tiny_run.parent, "tiny", cache_dir=tmp_path / "dc", users=users)
    for port in serve(app):
        known, unknown = [], []
        for i in range(6):  # each try from its own loopback address: no backoff
            for user, times in (("alice", known), (f"nobody{i}", unknown)):
                status, _, _, seconds = request(
                    port, "GET", "/", headers=basic(user, f"guess{i}"), source=f"127.0.0.{10 + i}"
                )
                assert status == 401
                times.append(seconds)
    fastest_known, fastest_unknown = min(known), min(unknown)
    assert fastest_unknown > 0.5 * fastest_known, (known, unknown)
    assert statistics.median(unknown) > 0.5 * statistics.median(known), (known, unknown)


def test_repeated_failures_from_one_client_back_off(live):
    for _ in range(5):
        assert request(live.port, "GET", "/", headers=basic("alice", "wrong"), source="127.0.0.2")[0] == 401
    status, headers, text, _ = request(live.port, "GET", "/", headers=basic("alice", "wrong"), source="127.0.0.2")
    assert status == 401  # the 6th failure starts the wait
    status, headers, text, _ = request(live.port, "GET", "/", headers=basic("alice", "s3cret"), source="127.0.0.2")
    assert status == 429 and int(headers["Retry-After"]) >= 1 and b"too many failed logins" in text
    assert request(live.port, "GET", "/", headers=basic("alice", "wrong"), source="127.0.0.3")[0] == 401, (
        "other clients"
    )
    assert request(live.port, "GET", "/", headers=basic("alice", "s3cret"), source="127.0.0.3")[0] == 200
    status, _, _, _ = request(live.port, "GET", "/", headers=basic("alice", "s3cret"), source="127.0.0.2")
    assert status == 200, "credentials this process already verified are never held back"
    assert request(live.port, "GET", "/", source="127.0.0.2")[0] == 401, "no credentials: the login prompt"


def test_backoff_doubles_is_capped_and_bounded():
    now = [0.0]
    b = Backoff(free=2, first=1.0, cap=4.0, max_clients=3, clock=lambda: now[0])
    waits = []
    for _ in range(6):
        b.failed("a")
        waits.append(b.wait("a"))
    assert waits == [0, 0, 1, 2, 4, 4]
    now[0] = 3.0
    assert b.wait("a") == 1.0
    b.succeeded("a")
    assert b.wait("a") == 0
    for c in "bcde":
        for _ in range(4):
            b.failed(c)
    assert b.wait("b") == 0 and b.wait("e") > 0, "only the last 3 clients are remembered"


# ---------------------------------------------------------------- the loopback rule, whatever starts the app


def test_fd_binds_are_looked_up():
    with socket.socket() as exposed, socket.socket() as local:
        exposed.bind(("0.0.0.0", 0))
        local.bind(("127.0.0.1", 0))
        assert not is_loopback(f"fd://{exposed.fileno()}")
        assert is_loopback(f"fd://{local.fileno()}")
    assert not is_loopback("fd://999999") and not is_loopback("fd://x")


def test_app_refuses_a_non_loopback_listener_without_auth(tiny_run, tmp_path):
    app = create_app(tiny_run.parent, "tiny", cache_dir=tmp_path / "dc")
    for port in serve(app, host="0.0.0.0"):
        status, _, text, _ = request(port, "GET", "/")
        assert status == 403 and b"refusing to serve on 0.0.0.0 without authentication" in text
        status, _, text, _ = request(
            port, "POST", "/_dash-update-component", b"{}", {"Content-Type": "application/json"}
        )
        assert status == 403
    for port in serve(create_app(tiny_run.parent, "tiny", cache_dir=tmp_path / "dc", no_auth=True), host="0.0.0.0"):
        assert request(port, "GET", "/")[0] == 200
    for port in serve(create_app(tiny_run.parent, "tiny", cache_dir=tmp_path / "dc", users=FAST), host="0.0.0.0"):
        assert request(port, "GET", "/")[0] == 401
        assert request(port, "GET", "/", headers=basic("alice", "s3cret"))[0] == 200
    for port in serve(app):
        assert request(port, "GET", "/")[0] == 200


@pytest.mark.parametrize("how", ["other-config", "other-directory"])
def test_gunicorn_started_another_way_still_refuses_an_exposed_bind(tiny_run, tmp_path, how):
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PRUNESCOPE_")},
        "PRUNESCOPE_STORE": str(tiny_run.parent),
        "PRUNESCOPE_CACHE": str(tmp_path / "dc"),
        "PYTHONPATH": str(REPO),
    }
    cmd = [sys.executable, "-m", "gunicorn", "-w", "1", "-b", f"0.0.0.0:{port}"]
    if how == "other-config":
        (tmp_path / "other.py").write_text("timeout = 120\n")
        cmd += ["-c", str(tmp_path / "other.py")]
        cwd = REPO
    else:
        cmd += ["--timeout", "120"]
        cwd = tmp_path  # no gunicorn.conf.py here
    log = tmp_path / "gunicorn.log"
    with log.open("w") as out:
        proc = subprocess.Popen([*cmd, "app:server"], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                status, _, text, _ = request(port, "GET", "/")
                break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        assert status == 403 and b"refusing to serve on 0.0.0.0 without authentication" in text, text[:300]
        assert b"PRUNESCOPE_AUTH_FILE" in text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
