"""Where long callbacks run: Dash's own background callback managers.

`DiskcacheManager` (subprocesses, results in a diskcache folder every gunicorn worker shares)
by default; `CeleryManager` when `REDIS_URL` is set, with Redis as broker and result backend
and `celery -A app:celery_app worker` running beside the web workers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import dash
import diskcache

from pipeline.store import PruneScopeError

REDIS_ENV = "REDIS_URL"
RESULT_EXPIRY_S = 3600


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
        return dash.CeleryManager(Celery("prunescope", broker=url, backend=url), expire=RESULT_EXPIRY_S)
    return dash.DiskcacheManager(diskcache.Cache(str(Path(cache_dir) / "background")), expire=RESULT_EXPIRY_S)
