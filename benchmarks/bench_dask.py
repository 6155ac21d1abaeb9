"""Executors compared: the demo config serial vs on worker processes and on a local Dask
cluster, the executors' cost per unit, and a run that loses a worker mid-way.

`python -m benchmarks.bench_dask [--config configs/demo.toml] [--workers 2] [--units 2000] [--config-only]`
prints, for the config: the serial build time, the `--executor processes --workers N` and
`--workers N` (Dask) build times (all through the CLI, as a user runs them) and whether each
store equals the serial one value for value; the scheduling cost per unit (no-op units: serial,
a process pool, a local Dask cluster); and a build of the tiny test config whose Dask worker is
SIGKILLed while it runs a unit.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from pipeline import store
from pipeline.config import execution_config, load_config, parse_config
from pipeline.executors import DaskExecutor, ProcessesExecutor, SerialExecutor, local_cluster_settings
from pipeline.plan import Unit
from pipeline.runner import build_run

REPO = Path(__file__).resolve().parents[1]


def same_store(a: Path, b: Path) -> bool:
    """The contract tables and every sample row equal, value for value."""
    for name in (store.MODELS, store.EVALUATIONS, store.HEADS, store.IMAGES):
        if not pq.read_table(a / name).equals(pq.read_table(b / name)):
            return False
    order = [
        ("model_id", "ascending"),
        ("corruption", "ascending"),
        ("severity", "ascending"),
        ("sample_id", "ascending"),
    ]
    x = store.samples_dataset(a).to_table().sort_by(order).to_pandas()
    y = store.samples_dataset(b).to_table().sort_by(order).to_pandas()
    try:
        pd.testing.assert_frame_equal(x, y, check_exact=True)
    except AssertionError:
        return False
    return True


def timed_cli(config: str, store_dir: Path, *extra: str) -> float:
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", config, "--store", str(store_dir), *extra],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        sys.exit(proc.stderr)
    return time.perf_counter() - t


class _Count:
    def __init__(self) -> None:
        self.n = 0

    def started(self, unit: Unit) -> None:
        pass

    def finished(self, unit: Unit) -> None:
        self.n += 1


def _noop(unit: Unit) -> None:
    """A unit that does nothing: what is left is the executor's own cost."""


def overhead(units: int, workers: int) -> tuple[float, float, float]:
    """Seconds for `units` no-op units (a chain of dependencies every 10th unit): serial; on a
    running local cluster of `workers` processes (scheduling and result traffic only); and the
    cluster's start."""
    from distributed import LocalCluster

    graph = [Unit(f"u{i}", deps=(f"u{i - 1}",) if i % 10 else ()) for i in range(units)]
    t = time.perf_counter()
    SerialExecutor().run(graph, _noop, _Count())
    serial = time.perf_counter() - t
    local_cluster_settings()
    t = time.perf_counter()
    with LocalCluster(n_workers=workers, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as cluster:
        start = time.perf_counter() - t
        executor = DaskExecutor(scheduler=cluster.scheduler_address)
        executor.run(graph[:1], _noop, _Count())  # the workers import this module once
        t = time.perf_counter()
        executor.run(graph, _noop, _Count())
        return serial, time.perf_counter() - t, start


def pool_overhead(units: int, workers: int) -> tuple[float, float]:
    """The no-op graph of `overhead` on the processes executor: seconds beyond the pool's start,
    and the start (a pool running one unit: spawning the workers, which import this module)."""
    graph = [Unit(f"u{i}", deps=(f"u{i - 1}",) if i % 10 else ()) for i in range(units)]
    times = []
    for part in (graph[:1], graph):
        t = time.perf_counter()
        ProcessesExecutor(workers).run(part, _noop, _Count())
        times.append(time.perf_counter() - t)
    return times[1] - times[0], times[0]


def worker_kill(workdir: Path, workers: int) -> tuple[float, float, bool]:
    """The tiny test config serial, then on a local cluster losing a worker mid-unit."""
    from distributed import Client, LocalCluster

    from tests.conftest import tiny_config

    cfg = parse_config(tiny_config())
    t = time.perf_counter()
    build_run(cfg, workdir / "serial")
    serial = time.perf_counter() - t
    local_cluster_settings()
    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        pids = client.run(os.getpid)
        dcfg = replace(cfg, execution=execution_config("dask", scheduler=cluster.scheduler_address))
        t = time.perf_counter()
        thread = threading.Thread(target=build_run, args=(dcfg, workdir / "dask"))
        thread.start()
        killed = False
        while not killed and thread.is_alive():
            busy = [w for w, keys in client.processing().items() if any(k.startswith("model-") for k in keys)]
            if busy:
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed = True
            time.sleep(0.01)
        thread.join()
        elapsed = time.perf_counter() - t
    return serial, elapsed, killed and same_store(workdir / "serial" / "tiny", workdir / "dask" / "tiny")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="configs/demo.toml")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--units", type=int, default=2000, help="no-op units for the overhead measurement")
    parser.add_argument("--skip-config", action="store_true", help="only the overhead and the worker-kill run")
    parser.add_argument("--config-only", action="store_true", help="only the config, serial vs --workers")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        if not args.skip_config:
            name = load_config(args.config).name
            serial = timed_cli(args.config, tmp_path / "serial", "--executor", "serial")
            print(f"{args.config}: serial {serial:.1f} s (load average {os.getloadavg()[0]:.1f})", flush=True)
            workers = ("--workers", str(args.workers))
            for executor in ("processes", "dask"):
                took = timed_cli(args.config, tmp_path / executor, "--executor", executor, *workers)
                equal = same_store(tmp_path / "serial" / name, tmp_path / executor / name)
                print(
                    f"{args.config}: serial {serial:.1f} s, {executor} --workers {args.workers} {took:.1f} s, "
                    f"store equal to the serial one: {equal} (load average {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
        if not args.config_only:
            serial, dask_s, start = overhead(args.units, args.workers)
            pool, pool_start = pool_overhead(args.units, args.workers)
            print(
                f"{args.units} no-op units: serial {serial * 1e3 / args.units:.3f} ms/unit; "
                f"processes {args.workers} workers {pool * 1e3 / args.units:.2f} ms/unit (the pool's start: "
                f"{pool_start:.1f} s); "
                f"Dask {args.workers} workers {dask_s * 1e3 / args.units:.2f} ms/unit "
                f"(the cluster's start: {start:.1f} s)"
            )
            serial, dask_s, ok = worker_kill(tmp_path / "kill", args.workers)
            print(
                f"tiny config (28 units): serial {serial:.1f} s; {args.workers} Dask workers, one SIGKILLed mid-unit: "
                f"{dask_s:.1f} s, store equal to the serial one: {ok}"
            )
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
