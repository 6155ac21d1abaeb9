"""Where long callbacks run: Dash's own background callback managers.

`DiskcacheManager` (subprocesses, results in a diskcache folder every gunicorn worker shares)
by default; with `REDIS_URL` set, a `CeleryManager` with Redis as broker and result backend,
and `python -m celery -A app:celery_app worker` (from the repository root) running on any host
that reaches the same Redis.

A Celery worker can die in the middle of a job (killed, its host rebooted). Dash would then
poll a job that never ends: a spinner forever. So every worker keeps a heartbeat key in Redis
while it runs, and every job another while it is executing; the web side's manager
(`WatchedCeleryManager`) turns a started job whose heartbeat stopped, or a queued job with no
worker alive at all, into a job error that the callback's `on_error` shows as a one-line
message (`job_error_message`). The next job goes to whichever worker is alive then.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dash
import diskcache

from app.cache import REDIS_ENV
from pipeline.store import PruneScopeError

RESULT_EXPIRY_S = 3600
HEARTBEAT_S = 1.0  # how often a worker (and a running job) refreshes its key
ALIVE_TTL_S = 6  # a key not refreshed for this long means its process is gone
WORKER_ALIVE = "prunescope:worker-alive"  # refreshed by every live worker: no key, no worker
JOB_ALIVE = "prunescope:job-alive:"  # + task id, refreshed while the job executes
JOB_TAKEN = "prunescope:job-taken:"  # + task id, set once a worker starts the job (Celery stores STARTED just after)
WORKER_COMMAND = "python -m celery -A app:celery_app worker"
LOST_JOB = PruneScopeError(
    "the background worker running this job stopped before it finished (killed, or its host went down)",
    f"try again: a live worker takes the next job (start one from the repository root: {WORKER_COMMAND})",
)
NO_WORKER = PruneScopeError(
    "no background worker is running, so this job cannot start",
    f"start one from the repository root ({WORKER_COMMAND}, with the web server's REDIS_URL and PRUNESCOPE_STORE), "
    "then try again",
)
JOB_FAILED = PruneScopeError("the background job failed", "see the worker's log, then try again")


def manager(cache_dir: str | Path, env: Mapping[str, str] = os.environ) -> dash.DiskcacheManager | dash.CeleryManager:
    """The background callback manager the environment asks for."""
    url = env.get(REDIS_ENV)
    if url:
        try:
            from celery import Celery
        except ImportError:
            raise PruneScopeError(
                f"{REDIS_ENV} is set but celery is not installed",
                f"pip install 'celery[redis]' in the environment, "
                f"or unset {REDIS_ENV} to run background work in subprocesses",
            ) from None
        celery_app = Celery("prunescope", broker=url, backend=url)
        celery_app.conf.update(
            task_track_started=True,  # STARTED (with the worker's pid) tells a lost job from a queued one
            worker_prefetch_multiplier=1,  # a worker holds no queued job it is not running
            result_expires=RESULT_EXPIRY_S,
            broker_connection_retry_on_startup=True,
        )
        return WatchedCeleryManager(celery_app, url)
    return dash.DiskcacheManager(diskcache.Cache(str(Path(cache_dir) / "background")), expire=RESULT_EXPIRY_S)


def job_error_message(exc: Exception) -> str:
    """The one-line message for a background job that ended without a result (never a traceback)."""
    text = str(exc)
    known = next((e for e in (LOST_JOB, NO_WORKER) if e.problem in text), JOB_FAILED)
    return f"{known.problem} — {known.fix}"


class WatchedCeleryManager(dash.CeleryManager):
    """Dash's CeleryManager, plus heartbeats: a job whose worker died ends with a message."""

    def __init__(self, celery_app: Any, url: str) -> None:
        import redis
        from celery import signals

        super().__init__(celery_app, expire=RESULT_EXPIRY_S)
        self.redis = redis.Redis.from_url(url)
        self._beats: dict[str, threading.Event] = {}
        signals.worker_ready.connect(self._worker_ready, weak=False)
        signals.task_prerun.connect(self._job_started, weak=False)
        signals.task_postrun.connect(self._job_finished, weak=False)

    # ------------------------------------------------------------ worker side

    def _beat(self, key: str, stop: threading.Event) -> None:
        """Refresh `key` (with its time to live) until `stop` is set, then delete it."""
        self.redis.set(key, os.getpid(), ex=ALIVE_TTL_S)

        def loop() -> None:
            while not stop.wait(HEARTBEAT_S):
                self.redis.set(key, os.getpid(), ex=ALIVE_TTL_S)
            self.redis.delete(key)

        threading.Thread(target=loop, name=f"heartbeat {key}", daemon=True).start()

    def _worker_ready(self, sender: Any = None, **_: Any) -> None:
        self._beat(WORKER_ALIVE, threading.Event())  # for the worker's life

    def _job_started(self, task_id: str, task: Any, **_: Any) -> None:
        if task.app is self.handle:  # runs before Celery stores STARTED: a started job always had a beat
            self.redis.set(JOB_TAKEN + task_id, os.getpid(), ex=RESULT_EXPIRY_S)  # a kill before STARTED is stored
            self._beats[task_id] = stop = threading.Event()
            self._beat(JOB_ALIVE + task_id, stop)

    def _job_finished(self, task_id: str, **_: Any) -> None:
        stop = self._beats.pop(task_id, None)
        if stop is not None:
            stop.set()

    # ------------------------------------------------------------ web side

    def lost(self, job: str) -> PruneScopeError | None:
        """Why `job` will never give a result, or None while it may still."""
        state = self.get_task(job).state
        taken = state == "STARTED" or (state == "PENDING" and self.redis.exists(JOB_TAKEN + job))
        if taken and not self.redis.exists(JOB_ALIVE + job):
            return LOST_JOB
        if state == "PENDING" and not self.redis.exists(WORKER_ALIVE):
            return NO_WORKER
        return None

    def get_result(self, key: str, job: str | None) -> Any:
        result = super().get_result(key, job)
        if result is self.UNDEFINED and job:
            problem = self.lost(job)
            if problem is not None:
                return {"background_callback_error": {"msg": str(problem), "tb": ""}}
        return result
