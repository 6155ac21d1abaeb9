"""Where the reader's memo lives beyond one process: the cache backend.

One host: a diskcache folder that every gunicorn worker and background job shares
(`PRUNESCOPE_CACHE`). Several hosts: Redis (`PRUNESCOPE_CACHE_URL`, else `REDIS_URL`), so
the first look at a run (its correctness matrix, its per-sample tables) is paid once for all
of them. `benchmarks/bench_shared_cache.py` measured Redis against pickle files in a folder
(README, "Two or more hosts"): local files read large values faster, but a folder shared by
hosts is a network filesystem the store would have to make writable; reading a 100 M-row
run's matrix from Redis costs a small part of computing it. An unreachable Redis is a cache
miss (the view computes its data), never an error page.

Values are pickled: Redis, like the diskcache folder, must be reachable only by the team
server's own processes.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import diskcache

CACHE_URL_ENV = "PRUNESCOPE_CACHE_URL"
REDIS_ENV = "REDIS_URL"
PREFIX = "prunescope:memo:"


class Cache(Protocol):
    """What the reader needs of a cache (diskcache.Cache has exactly this)."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any, expire: float | None = None) -> bool: ...

    def __contains__(self, key: str) -> bool: ...


class RedisCache:
    """The reader's memo in Redis, shared by every host that reaches the server."""

    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_connect_timeout=2)
        self.errors = (redis.ConnectionError, redis.TimeoutError)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            raw = self.client.get(PREFIX + key)
        except self.errors:
            return default
        return default if raw is None else pickle.loads(raw)

    def set(self, key: str, value: Any, expire: float | None = None) -> bool:
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            return bool(self.client.set(PREFIX + key, data, ex=int(expire) if expire else None))
        except self.errors:
            return False

    def __contains__(self, key: str) -> bool:
        try:
            return bool(self.client.exists(PREFIX + key))
        except self.errors:
            return False


def shared_cache(cache_dir: str | Path | None, env: Mapping[str, str] = os.environ) -> Cache | None:
    """The cache the environment asks for: Redis with a URL, else the diskcache folder `cache_dir`
    (None: no shared cache, memo in this process only)."""
    url = env.get(CACHE_URL_ENV) or env.get(REDIS_ENV)
    if url:
        return RedisCache(url)
    return diskcache.Cache(str(cache_dir)) if cache_dir is not None else None
