"""The memo shared by several hosts: which backend, and what the second host saves.

    python -m benchmarks.bench_shared_cache [--models 10] [--evalsets 20] [--samples 20000] [--repeats 3]

1. Backends: write and read a value of the sizes the memo holds (a per-sample table, up to a
   100 M-row run's correctness matrix), as the reader does (pickle), through Redis (a
   redis-server on loopback), through pickle files in a folder (what a cache "in the store
   folder" on a shared filesystem does: write a temporary file, rename; read it back) and
   through a diskcache folder (the one-host cache). Median of REPEATS, in ms.
2. Two hosts: a synthetic run, a redis-server and two gunicorn servers (standing in for two
   hosts, each with its own diskcache folder) sharing the memo through Redis, and a third
   server that does not share. Times the first brush on each (the table with the selection's
   accuracy: the run's correctness matrix, computed by a background job where it is missing).

Everything runs on loopback and stops by itself. Loopback Redis and a local disk stand in for
the network and a shared filesystem: both hosts-apart paths add the network's time to both.
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import tempfile
import time
from pathlib import Path

import diskcache
import numpy as np
import requests

from app import ids
from app.cache import RedisCache
from benchmarks.dash_client import call, callback_spec, end_id
from benchmarks.make_synthetic_store import write_synthetic_run
from tests.services import gunicorn, redis_server, team_env

SIZES_MB = (0.01, 1, 12, 64)  # a small memo, a per-sample table, a 100 M-row matrix, a large table


class FolderCache:
    """Pickle files in a folder, written atomically: the shared-filesystem alternative to Redis."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def set(self, key: str, value: object, expire: float | None = None) -> None:
        tmp = self.folder / f".{key}.{os.getpid()}"
        tmp.write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        tmp.replace(self.folder / key)

    def get(self, key: str, default: object = None) -> object:
        path = self.folder / key
        return pickle.loads(path.read_bytes()) if path.exists() else default


def time_backend(cache, size_mb: float, repeats: int) -> tuple[float, float]:
    """Median ms to set and to get a value of `size_mb`."""
    value = np.random.default_rng(0).integers(0, 255, int(size_mb * 1e6), dtype=np.uint8)
    sets, gets = [], []
    for i in range(repeats):
        t = time.perf_counter()
        cache.set(f"bench{i}", value, expire=600)
        sets.append(time.perf_counter() - t)
        t = time.perf_counter()
        got = cache.get(f"bench{i}")
        gets.append(time.perf_counter() - t)
        assert got.shape == value.shape
    return statistics.median(sets) * 1e3, statistics.median(gets) * 1e3


def first_brush(url: str, run: str) -> float:
    """Seconds from a brush to the table with the selection's accuracy, as the browser gets it."""
    session = requests.Session()
    deps = session.get(url + "/_dash-dependencies", timeout=60).json()
    draw = callback_spec(deps, f"{ids.EVAL_TABLE}.figure", f"{ids.SELECTION}.data")
    prepare = callback_spec(deps, f"{ids.EVAL_TABLE}.figure", f"{ids.EVAL_PREPARE}.data")
    values = {
        (ids.RUN, "data"): run,
        (ids.EVAL_SEVERITY, "value"): 3,
        (ids.SELECTION, "data"): {"samples": list(range(0, 2000, 7)), "source": "benchmark"},
        (ids.EVAL_PREPARE, "data"): run,
    }
    token = end_id(session.get(url, timeout=60).text)
    t = time.perf_counter()
    out = call(session, url, draw, values, f"{ids.SELECTION}.data", token)
    if ids.EVAL_PREPARE in out:  # the matrix is missing: the background job computes it
        call(session, url, prepare, values, f"{ids.EVAL_PREPARE}.data", token)
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=int, default=10)
    ap.add_argument("--evalsets", type=int, default=20)
    ap.add_argument("--samples", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "redis").mkdir()
        with redis_server(tmp / "redis") as url:
            backends = {
                "redis": RedisCache(url),
                "folder": FolderCache(tmp / "folder"),
                "diskcache": diskcache.Cache(str(tmp / "dc")),
            }
            print(f"backend write / read, median of {args.repeats} (ms)")
            print(f"{'value':>9s} " + " ".join(f"{name:>19s}" for name in backends))
            for size in SIZES_MB:
                cells = [time_backend(cache, size, args.repeats) for cache in backends.values()]
                print(f"{size:7.2f}MB " + " ".join(f"{w:9.1f} / {r:7.1f}" for w, r in cells))
            backends["redis"].client.flushdb()  # the second part starts from an empty server

            store = tmp / "store"
            write_synthetic_run(store, "synthetic", args.models, args.evalsets, args.samples, 10)
            rows = args.models * args.evalsets * args.samples
            env = {"PRUNESCOPE_STORE": str(store), "PRUNESCOPE_RUN": "synthetic"}
            shared = [team_env(**env, PRUNESCOPE_CACHE=str(tmp / f"host{i}"), PRUNESCOPE_CACHE_URL=url) for i in (1, 2)]
            alone = team_env(**env, PRUNESCOPE_CACHE=str(tmp / "host3"))
            with (
                gunicorn(shared[0], tmp / "a.log", workers=1) as a,
                gunicorn(shared[1], tmp / "b.log", workers=1) as b,
                gunicorn(alone, tmp / "c.log", workers=1) as c,
            ):
                first_a = first_brush(a, "synthetic")
                first_b = first_brush(b, "synthetic")
                first_c = first_brush(c, "synthetic")
    print(
        f"\nfirst brush on a {rows:,}-row synthetic run ({args.models} models x {args.evalsets} sets x {args.samples})"
    )
    print(f"host A (computes the correctness matrix, shares it through Redis): {first_a:6.2f} s")
    print(f"host B (same Redis: reads A's matrix):                            {first_b:6.2f} s")
    print(f"host C (its own diskcache only: pays the first look again):       {first_c:6.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
