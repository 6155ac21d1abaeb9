"""The team server's processes for tests and benchmarks, each on a free loopback port and
stopped on exit: redis-server (no persistence), gunicorn (`app:server`) and Celery workers
(`python -m celery -A app:celery_app worker`), run with the same commands as the README's."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the virtualenv's scripts (gunicorn)
TEAM_VARIABLES = ("PRUNESCOPE_", "REDIS_URL")


def wait_for(condition: Callable[[], bool], timeout: float, what: str, log: Path | None = None) -> None:
    """Poll `condition` until it holds; fail naming `what` (and the process's log) after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout} s" + (f"; its log:\n{log.read_text()}" if log else ""))
        time.sleep(0.1)


def team_env(**variables: str) -> dict[str, str]:
    """This process's environment without any team-server setting, plus `variables`."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith(TEAM_VARIABLES)}, **variables}


@contextmanager
def process(cmd: list[str], env: Mapping[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """`cmd` in its own session (so a test can kill it with its children), output to `log`;
    SIGTERM then SIGKILL to the whole group on exit."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=dict(env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Signal `proc`'s process group and wait for it (SIGKILL after 30 s)."""
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A throwaway redis-server on a free loopback port, nothing saved to disk; yields its URL."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not installed: run bash scripts/install-system.sh (as CI does)")
    import redis

    port = free_port()
    cmd = [exe, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(folder)]
    with process(cmd, os.environ, folder / "redis.log") as proc:
        client = redis.Redis(port=port)

        def up() -> bool:
            assert proc.poll() is None, (folder / "redis.log").read_text()
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        wait_for(up, 30, "redis-server answers PING", folder / "redis.log")
        yield f"redis://127.0.0.1:{port}/0"


@contextmanager
def gunicorn(env: Mapping[str, str], log: Path, workers: int = 2) -> Iterator[str]:
    """`gunicorn -w WORKERS -b 127.0.0.1:PORT app:server` with `env`; yields its URL once it serves."""
    url = f"http://127.0.0.1:{free_port()}"
    cmd = [str(BIN / "gunicorn"), "-w", str(workers), "-b", url.removeprefix("http://"), "app:server"]
    with process(cmd, env, log) as proc:

        def serving() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                return requests.get(url + "/_dash-layout", timeout=30).status_code in (200, 401)
            except (requests.ConnectionError, requests.Timeout):  # bound, but its workers still loading
                return False

        wait_for(serving, 90, "gunicorn serves", log)
        yield url


@contextmanager
def celery_worker(env: Mapping[str, str], log: Path, app: str = "app:celery_app") -> Iterator[subprocess.Popen]:
    """`python -m celery -A APP worker` with `env` from the repository root (so that the app's own
    packages import, as with gunicorn), yielded once ready (it logs "ready.")."""
    cmd = [sys.executable, "-m", "celery", "-A", app, "worker", "--concurrency", "1", "--loglevel", "INFO"]
    with process(cmd, env, log) as proc:

        def ready() -> bool:
            assert proc.poll() is None, log.read_text()
            return " ready." in log.read_text()

        wait_for(ready, 90, "the Celery worker is ready", log)
        yield proc
