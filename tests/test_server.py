"""The team server: basic auth, the loopback rule, the request guard, gunicorn with workers."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from werkzeug.security import generate_password_hash

from app import background, ids
from app.auth import check_bind, is_loopback, load_users, parse_users
from app.guard import refusal, specs
from app.main import create_app
from pipeline.errors import PruneScopeError
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[1]
ALICE = {"alice": generate_password_hash("s3cret", method="pbkdf2:sha256:1000")}


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def callback_body(run: object, ref: object = None) -> str:
    """The evaluation table's callback request, as the renderer posts it."""
    return json.dumps(
        {
            "output": (
                f"..{ids.EVAL_TABLE}.figure...{ids.EVAL_PREPARE}.data...{ids.EVAL_DRAWN}.data..."
                f"{ids.TABLE_ANSWERED}.data.."
            ),
            "outputs": [
                {"id": ids.EVAL_TABLE, "property": "figure"},
                {"id": ids.EVAL_PREPARE, "property": "data"},
                {"id": ids.EVAL_DRAWN, "property": "data"},
                {"id": ids.TABLE_ANSWERED, "property": "data"},
            ],
            "inputs": [
                {"id": ids.RUN, "property": "data", "value": run},
                {"id": ids.EVAL_SEVERITY, "property": "value", "value": 3},
                {"id": ids.SELECTION, "property": "data", "value": None},
                {"id": ids.REFERENCE_DROPDOWN, "property": "value", "value": ref},
                {"id": ids.COMPARED_DROPDOWN, "property": "value", "value": None},
                {"id": ids.MODEL_HIGHLIGHT, "property": "data", "value": None},
                {"id": ids.EVAL_MODE, "property": "value", "value": "auto"},
            ],
            "changedPropIds": [f"{ids.RUN}.data"],
            "state": [
                {"id": ids.EVAL_DRAWN, "property": "data", "value": None},
                {"id": ids.TABLE_ANSWERED, "property": "data", "value": False},
            ],
        }
    )


# ---------------------------------------------------------------- settings


def test_users_from_file_and_environment(tmp_path):
    f = tmp_path / "users.txt"
    f.write_text(f"# lab members\nalice:{ALICE['alice']}\n\n")
    bob = generate_password_hash("pw", method="pbkdf2:sha256:1000")
    users = load_users({"PRUNESCOPE_AUTH_FILE": str(f), "PRUNESCOPE_USERS": f"bob:{bob}"})
    assert users == {"alice": ALICE["alice"], "bob": bob}
    assert load_users({}) == {}
    with pytest.raises(PruneScopeError, match="not a file"):
        load_users({"PRUNESCOPE_AUTH_FILE": str(tmp_path / "missing.txt")})
    with pytest.raises(PruneScopeError, match="not `user:hash`"):
        parse_users("alice:plaintext-password")


@pytest.mark.parametrize(
    "bind, local",
    [
        ("127.0.0.1", True),
        ("127.0.0.1:8050", True),
        ("localhost:80", True),
        ("[::1]:8050", True),
        ("::1", True),
        ("unix:/tmp/p.sock", True),
        ("0.0.0.0:8050", False),
        ("0.0.0.0", False),
        ("[::]:8050", False),
        (":8050", False),
        ("192.168.1.5:8050", False),
        ("example.org:80", False),
    ],
)
def test_loopback_detection(bind, local):
    assert is_loopback(bind) is local


def test_exposed_bind_needs_users_or_an_explicit_no_auth():
    check_bind(["127.0.0.1:8050"], {}, no_auth=False)
    check_bind(["0.0.0.0:8050"], ALICE, no_auth=False)
    check_bind(["0.0.0.0:8050"], {}, no_auth=True)
    with pytest.raises(PruneScopeError, match="without authentication") as err:
        check_bind(["127.0.0.1:1", "0.0.0.0:8050"], {}, no_auth=False)
    assert "PRUNESCOPE_AUTH_FILE" in err.value.fix and "--no-auth" in err.value.fix


def test_app_py_refuses_an_exposed_host_without_auth(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRUNESCOPE_")}
    res = subprocess.run(
        [sys.executable, "app.py", "--host", "0.0.0.0", "--store", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2
    assert "refusing to serve on 0.0.0.0" in res.stderr and "Traceback" not in res.stderr


def test_hash_command_prints_a_line_the_server_accepts():
    res = subprocess.run(
        [sys.executable, "-m", "app.auth", "carol", "--password-stdin"],
        cwd=REPO,
        input="pw\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0
    users = parse_users(res.stdout)
    from werkzeug.security import check_password_hash

    assert check_password_hash(users["carol"], "pw") and not check_password_hash(users["carol"], "wrong")


def test_background_manager_follows_redis_url(tmp_path):
    import dash

    assert isinstance(background.manager(tmp_path, {}), dash.DiskcacheManager)
    try:
        import celery  # noqa: F401
    except ImportError:
        with pytest.raises(PruneScopeError, match="REDIS_URL is set but celery is not installed"):
            background.manager(tmp_path, {"REDIS_URL": "redis://127.0.0.1:6379/0"})
    else:
        assert isinstance(background.manager(tmp_path, {"REDIS_URL": "redis://127.0.0.1:6379/0"}), dash.CeleryManager)


# ---------------------------------------------------------------- auth and the request guard


@pytest.fixture
def guarded(tiny_run, tmp_path):
    return create_app(tiny_run.parent, "tiny", cache_dir=tmp_path / "dc", users=ALICE).server.test_client()


def test_basic_auth_gates_pages_and_callbacks(guarded):
    assert guarded.get("/").status_code == 401
    assert guarded.get("/", headers=basic("alice", "wrong")).status_code == 401
    assert guarded.get("/", headers=basic("mallory", "s3cret")).status_code == 401
    assert guarded.get("/", headers={"Authorization": "Bearer abc"}).status_code == 401
    assert guarded.get("/", headers={"Authorization": "Basic %%%"}).status_code == 401
    page = guarded.get("/", headers=basic("alice", "s3cret"))
    assert page.status_code == 200 and b"PruneScope" in page.data
    assert (
        guarded.post("/_dash-update-component", data=callback_body("tiny"), content_type="application/json").status_code
        == 401
    )
    ok = guarded.post(
        "/_dash-update-component",
        data=callback_body("tiny"),
        content_type="application/json",
        headers=basic("alice", "s3cret"),
    )
    assert ok.status_code == 200 and b'"type":"bar"' in ok.data.replace(b" ", b"")


@pytest.mark.parametrize(
    "run, ref",
    [
        ("../../etc", None),
        ("/etc/passwd", None),
        ("tiny/../../x", None),
        ("tiny\x00", None),
        ("..", None),
        ("tiny", "../../etc/passwd|clean"),
        ("tiny", "digits_cnn-dense|/etc/passwd-0"),
        ("tiny", {"x": ["..\\windows"]}),
    ],
)
def test_path_traversal_is_refused_before_any_file_is_touched(guarded, tiny_run, monkeypatch, run, ref):
    from app.reader import StoreReader

    touched: list[str] = []
    for name in ("runs", "run_dir", "_memo"):
        original = getattr(StoreReader, name)
        monkeypatch.setattr(
            StoreReader, name, lambda self, *a, _o=original, _n=name, **k: touched.append(_n) or _o(self, *a, **k)
        )
    res = guarded.post(
        "/_dash-update-component",
        data=callback_body(run, ref),
        content_type="application/json",
        headers=basic("alice", "s3cret"),
    )
    assert 400 <= res.status_code < 500, res.data[:200]
    assert touched == []


def test_unknown_but_well_formed_names_get_the_page_message(guarded):
    res = guarded.post(
        "/_dash-update-component",
        data=callback_body("no-such-run"),
        content_type="application/json",
        headers=basic("alice", "s3cret"),
    )
    assert res.status_code == 200 and b"there is no run" in res.data


def test_static_routes_do_not_leave_their_folders(guarded):
    auth = basic("alice", "s3cret")
    for path in (
        "/assets/../app.py",
        "/assets/%2e%2e/app.py",
        "/_dash-component-suites/dash/../../../../etc/passwd",
        "/_dash-component-suites/dash/deps/../../../app.py",
    ):
        res = guarded.get(path, headers=auth)
        assert 400 <= res.status_code < 500, path
        assert b"root:" not in res.data and b"def main" not in res.data
    page = guarded.get("/assets//etc/passwd", headers=auth)  # an unknown page: the app's index, as for any page path
    assert b"root:" not in page.data and b"<title>PruneScope</title>" in page.data


def test_guard_rules(tiny_run, tmp_path):
    app = create_app(tiny_run.parent, "tiny", cache_dir=tmp_path / "dc")
    callbacks, types = app.callback_map, specs(app)
    assert refusal(json.loads(callback_body("tiny", "digits_cnn-dense|clean")), callbacks, types) is None
    assert "must be a run name" in refusal(json.loads(callback_body("a b")), callbacks, types)
    assert refusal([], callbacks, types) == "not a Dash callback request"
    body = json.loads(callback_body("tiny"))
    body["inputs"][2]["value"] = {"samples": [1, 2], "source": "../local"}
    assert "path-like" in refusal(body, callbacks, types)


# ---------------------------------------------------------------- gunicorn


def test_gunicorn_with_two_workers_serves_page_and_callbacks(tiny_run, tmp_path):
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PRUNESCOPE_")},
        "PRUNESCOPE_STORE": str(tiny_run.parent),
        "PRUNESCOPE_RUN": "tiny",
        "PRUNESCOPE_CACHE": str(tmp_path / "dc"),
        "PRUNESCOPE_USERS": f"alice:{ALICE['alice']}",
    }
    log = tmp_path / "gunicorn.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "app:server"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                res = requests.get(url + "/", headers=basic("alice", "s3cret"), timeout=30)
                if res.status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):  # bound, but its workers still loading
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        assert b"PruneScope" in res.content
        assert requests.get(url + "/", timeout=5).status_code == 401
        for _ in range(4):  # several requests, so both workers are likely to answer one
            cb = requests.post(
                url + "/_dash-update-component",
                data=callback_body("tiny"),
                headers={**basic("alice", "s3cret"), "Content-Type": "application/json"},
                timeout=30,
            )
            assert cb.status_code == 200 and '"bar"' in cb.text
        assert len(set(re.findall(r"Booting worker with pid: (\d+)", log.read_text()))) == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_gunicorn_refuses_an_exposed_bind_without_auth(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRUNESCOPE_")}
    env["PRUNESCOPE_STORE"] = str(tmp_path)
    res = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-b", f"0.0.0.0:{free_port()}", "app:server"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode != 0
    assert "refusing to serve on 0.0.0.0" in res.stderr and "PRUNESCOPE_AUTH_FILE" in res.stderr
