"""Where the reader's memo lives beyond one process: the cache backend.

One host: a diskcache folder that every gunicorn worker and background job shares
(`PRUNESCOPE_CACHE`). Several hosts: Redis (`PRUNESCOPE_CACHE_URL`, else `REDIS_URL`), so
the first look at a run (its correctness matrix, its per-sample tables) is paid once for all
of them. `benchmarks/bench_shared_cache.py` measured Redis against files in a shared folder
for values up to the size of a 100 M-row run's matrix; see the README for its numbers.

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

        self.client = redis.Redis.from_url(url)

    def get(self, key: str, default: Any = None) -> Any:
        raw = self.client.get(PREFIX + key)
        return default if raw is None else pickle.loads(raw)

    def set(self, key: str, value: Any, expire: float | None = None) -> bool:
        return bool(
            self.client.set(
                PREFIX + key, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), ex=int(expire) if expire else None
            )
        )

    def __contains__(self, key: str) -> bool:
        return bool(self.client.exists(PREFIX + key))


def shared_cache(cache_dir: str | Path | None, env: Mapping[str, str] = os.environ) -> Cache | None:
    """The cache the environment asks for: Redis with a URL, else the diskcache folder `cache_dir`
    (None: no shared cache, memo in this process only)."""
    url = env.get(CACHE_URL_ENV) or env.get(REDIS_ENV)
    if url:
        return RedisCache(url)
    return diskcache.Cache(str(cache_dir)) if cache_dir is not None else None
