"""The team server on a real Redis: background jobs on Celery workers (export, cancel, a worker
killed mid-job, the first brush) behind gunicorn. Every process is started here on a free
loopback port and stopped after; tests wait on conditions, never sleep."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest
import redis
import requests
from selenium import webdriver
from selenium.webdriver.support.ui import WebDriverWait

from app import background, ids
from app.cache import RedisCache, shared_cache
from app.reader import StoreReader
from benchmarks.dash_client import call, callback_spec, end_id
from scripts.render_png import chrome_options
from tests.conftest import free_port, without_bits
from tests.services import celery_worker, gunicorn, redis_server, stop, team_env

REF = "digits_cnn-dense"
SELECTION = {"samples": [0, 1, 2, 3], "source": "test"}


@pytest.fixture
def redis_url(tmp_path):
    with redis_server(tmp_path) as url:
        yield url


@pytest.fixture
def browser(tmp_path):
    driver = webdriver.Chrome(options=chrome_options())
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path / "dl")})
    yield driver
    driver.quit()


def until(driver, condition, timeout: float = 60):
    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda _: condition())


def test_redis_server_fixture_is_real_and_throwaway(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.set("k", b"v")
    assert client.get("k") == b"v" and client.config_get("save")["save"] == ""


def test_the_shared_memo_round_trips_and_an_unreachable_redis_is_a_miss(redis_url):
    import numpy as np

    memo = shared_cache(None, {"PRUNESCOPE_CACHE_URL": redis_url})
    assert isinstance(memo, RedisCache) and "k" not in memo
    memo.set("k", {"matrix": np.arange(5)}, expire=60)
    assert "k" in memo and memo.get("k")["matrix"].tolist() == [0, 1, 2, 3, 4]
    down = RedisCache(f"redis://127.0.0.1:{free_port()}/0")
    assert down.get("k", "miss") == "miss" and "k" not in down and down.set("k", 1) is False


def test_a_job_without_a_live_worker_is_reported_not_awaited(redis_url, tmp_path):
    manager = background.manager(tmp_path, {"REDIS_URL": redis_url})
    client = redis.Redis.from_url(redis_url)
    assert manager.lost("queued") is background.NO_WORKER, "queued, and no worker alive to take it"
    client.set(background.WORKER_ALIVE, 1)
    assert manager.lost("queued") is None, "queued behind a live worker: wait"
    manager.handle.backend.store_result("running", {"pid": 1}, "STARTED")
    client.set(background.JOB_ALIVE + "running", 1)
    assert manager.lost("running") is None
    client.delete(background.JOB_ALIVE + "running")
    assert manager.lost("running") is background.LOST_JOB, "started, and its heartbeat stopped"
    client.set(background.JOB_TAKEN + "taken", 1)
    client.delete(background.WORKER_ALIVE)
    assert manager.lost("taken") is background.LOST_JOB, "its worker died before Celery stored STARTED"
    error = manager.get_result("no-result-yet", "running")["background_callback_error"]
    assert background.job_error_message(Exception(error["msg"])).startswith(background.LOST_JOB.problem)
    assert background.job_error_message(ValueError("boom")).startswith(background.JOB_FAILED.problem)


def test_two_hosts_pay_the_first_look_at_a_run_once(tiny_run, tmp_path, redis_url):
    store = tmp_path / "store"
    without_bits(Path(shutil.copytree(tiny_run, store / "tiny")))  # the first brush scans the samples
    hosts = [  # two gunicorn servers standing in for two hosts: each its own diskcache folder, one Redis
        team_env(
            PRUNESCOPE_STORE=str(store),
            PRUNESCOPE_RUN="tiny",
            PRUNESCOPE_CACHE=str(tmp_path / f"host{i}"),
            PRUNESCOPE_CACHE_URL=redis_url,
        )
        for i in (1, 2)
    ]
    with gunicorn(hosts[0], tmp_path / "a.log", workers=1) as a, gunicorn(hosts[1], tmp_path / "b.log", workers=1) as b:
        session = requests.Session()
        deps = session.get(a + "/_dash-dependencies", timeout=30).json()
        draw = callback_spec(deps, f"{ids.EVAL_TABLE}.figure", f"{ids.SELECTION}.data")
        prepare = callback_spec(deps, f"{ids.EVAL_TABLE}.figure", f"{ids.EVAL_PREPARE}.data")
        values = {
            (ids.RUN, "data"): "tiny",
            (ids.EVAL_SEVERITY, "value"): 3,
            (ids.EVAL_MODE, "value"): "auto",
            (ids.SELECTION, "data"): SELECTION,
            (ids.EVAL_PREPARE, "data"): "tiny",
        }
        token_a, token_b = end_id(session.get(a, timeout=30).text), end_id(session.get(b, timeout=30).text)
        first = call(session, a, draw, values, f"{ids.SELECTION}.data", token_a)
        assert first[ids.EVAL_PREPARE]["data"] == "tiny", "host A's first brush: the run's matrix must be computed"
        table = call(session, a, prepare, values, f"{ids.EVAL_PREPARE}.data", token_a)[ids.EVAL_TABLE]["figure"]
        assert len(table["data"]) > 1, "the selection's accuracy is drawn"

        shutil.rmtree(store / "tiny" / "samples")  # a host that had to scan the run now could not
        second = call(session, b, draw, values, f"{ids.SELECTION}.data", token_b)
        assert ids.EVAL_PREPARE not in second, "host B draws the selection at once: the matrix is shared"
        assert second[ids.EVAL_TABLE]["figure"] == table
        assert not list((tmp_path / "host2").glob("*.db")), "host B's own cache folder was never needed"


@pytest.mark.browser
def test_jobs_run_on_celery_workers_and_a_killed_worker_gives_a_message(
    browser_store, tmp_path, redis_url, browser, monkeypatch
):
    cache, store = tmp_path / "dc", tmp_path / "store"
    without_bits(Path(shutil.copytree(browser_store / "tiny", store / "tiny")))  # the first brush needs a job
    env = team_env(PRUNESCOPE_STORE=str(store), PRUNESCOPE_RUN="tiny", PRUNESCOPE_CACHE=str(cache))
    env["REDIS_URL"] = redis_url
    gate, downloads = tmp_path / "gate", tmp_path / "dl"
    client = redis.Redis.from_url(redis_url)
    driver = browser
    with gunicorn(env, tmp_path / "gunicorn.log") as url:
        gated = {**env, "PRUNESCOPE_TEST_GATE": str(gate)}
        with celery_worker(gated, tmp_path / "gated.log", app="tests.gated_worker:celery_app") as doomed:
            driver.get(url)
            until(driver, lambda: driver.find_elements("css selector", f"#{ids.LOCAL_GRAPH} .js-plotly-plot"))
            button, cancel = driver.find_element("id", ids.EXPORT_BUTTON), driver.find_element("id", ids.EXPORT_CANCEL)
            status = driver.find_element("id", ids.EXPORT_STATUS)

            button.click()  # a job that waits at the gate, cancelled from the page
            until(driver, lambda: cancel.is_displayed() and client.keys(background.JOB_ALIVE + "*"))
            cancel.click()
            until(driver, lambda: not cancel.is_displayed() and button.is_enabled())
            assert status.text == "" and not list(downloads.glob("*.html"))
            until(driver, lambda: not client.keys(background.JOB_ALIVE + "*"))  # the job itself was stopped

            button.click()  # the next job is running when its worker is killed with its pool
            until(driver, lambda: cancel.is_displayed() and client.keys(background.JOB_ALIVE + "*"))
            stop(doomed, signal.SIGKILL)
            until(driver, lambda: "worker running this job stopped" in status.text)
            assert button.is_enabled() and not cancel.is_displayed()
            assert not driver.find_element("id", ids.EXPORT_PROGRESS).is_displayed()

        gate.touch()
        with celery_worker(env, tmp_path / "worker.log"):  # a new worker, the README's command
            button.click()
            until(driver, lambda: "MB" in status.text and list(downloads.glob("*.html")))  # Chromium renames it last
            saved = list(downloads.glob("*.html"))
            assert [p.name for p in saved] == [f"prunescope-tiny-{REF}.html"]
            until(driver, lambda: "</html>" in saved[0].read_text(encoding="utf-8")[-200:])
            assert REF in saved[0].read_text(encoding="utf-8")
            assert "Task background_callback_" in (tmp_path / "worker.log").read_text(), "the worker ran the job"

            monkeypatch.setenv("REDIS_URL", redis_url)
            reader = StoreReader(store, cache)  # the first brush: its job fills the shared cache (Redis)
            assert not reader.correctness_ready("tiny")
            driver.execute_script(
                "window.dash_clientside.set_props(arguments[0], {data: arguments[1]});", ids.SELECTION, SELECTION
            )
            until(driver, lambda: reader.correctness_ready("tiny"))
            note = driver.find_element("id", ids.EVAL_NOTE)
            until(driver, lambda: note.text == "")
            assert (tmp_path / "worker.log").read_text().count("succeeded") >= 2
    assert not list((cache / "background").glob("*")), "no job ran in a web worker's subprocess"
