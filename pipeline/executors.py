"""Executors: they only schedule. Given units in dependency order and a function that runs one
unit, an executor runs every unit after its dependencies and reports each one it finishes.

The units' results do not depend on where or in which order they run (pipeline/units.py),
so every executor writes the same store.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import uuid
from abc import ABC, abstractmethod
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Protocol, Sequence

from pipeline.config import ExecutionConfig
from pipeline.errors import PruneScopeError
from pipeline.plan import Unit
from pipeline.registry import Registry
from pipeline.units import UnitFailed, describe


class Progress(Protocol):
    """What an executor reports: a unit started (where the executor knows it), a unit finished."""

    def started(self, unit: Unit) -> None: ...

    def finished(self, unit: Unit) -> None: ...


class Executor(ABC):
    """Runs a graph of units: `work(unit)` does one unit; `progress` hears of each one finished.

    The first unit to raise stops the run: no new unit starts and the error propagates; what
    was finished is kept, so running again resumes.
    """

    @classmethod
    @abstractmethod
    def from_config(cls, execution: ExecutionConfig, device: str) -> Executor:
        """The executor for a run's [execution] table and its device setting."""

    @abstractmethod
    def run(self, units: Sequence[Unit], work: Callable[[Unit], None], progress: Progress) -> None: ...


EXECUTORS: Registry[type[Executor]] = Registry("executor")


@EXECUTORS.register("serial")
class SerialExecutor(Executor):
    """Every unit in this process, one after the other, in plan order."""

    @classmethod
    def from_config(cls, execution: ExecutionConfig, device: str) -> SerialExecutor:
        return cls()

    def run(self, units: Sequence[Unit], work: Callable[[Unit], None], progress: Progress) -> None:
        for unit in units:
            progress.started(unit)
            work(unit)
            progress.finished(unit)


@EXECUTORS.register("processes")
class ProcessesExecutor(Executor):
    """Units on a pool of local worker processes (spawned, never forked after CUDA), each unit
    handed to the pool as soon as its dependencies are finished, in plan order.

    The cheap way to use the cores of one machine: a unit costs about 3 ms to hand over
    (bench_dask.pool_overhead), against about 17 ms on Dask (benchmarks/bench_dask.py), which matters for runs of many
    small units such as the demo. Unlike Dask it does not retry: a worker that dies stops the
    run, and running it again resumes the finished units."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1

    @classmethod
    def from_config(cls, execution: ExecutionConfig, device: str) -> ProcessesExecutor:
        return cls(execution.workers)

    def run(self, units: Sequence[Unit], work: Callable[[Unit], None], progress: Progress) -> None:
        if not units:
            return
        waiting = {u.key: set(u.deps) for u in units}
        dependents: dict[str, list[Unit]] = {}
        for unit in units:
            for dep in unit.deps:
                dependents.setdefault(dep, []).append(unit)
        order = {u.key: i for i, u in enumerate(units)}
        ready = [u for u in units if not u.deps]
        running: dict[Future, Unit] = {}
        pool = ProcessPoolExecutor(min(self.workers, len(units)), mp_context=multiprocessing.get_context("spawn"))
        try:
            while ready or running:
                for unit in ready:
                    running[pool.submit(work, unit)] = unit
                ready = []
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: order[running[f].key]):
                    unit = running.pop(future)
                    future.result()
                    progress.finished(unit)
                    for child in dependents.get(unit.key, []):
                        waiting[child.key].discard(unit.key)
                        if not waiting[child.key]:
                            ready.append(child)
        except BrokenProcessPool as exc:
            pool.shutdown(cancel_futures=True)
            lost = ", ".join(u.key for u in running.values())
            raise PruneScopeError(
                f"a worker process died while running {lost}: {exc}",
                "give the run more memory or fewer workers; run the same command again to resume",
            ) from None
        except BaseException:
            pool.shutdown(cancel_futures=True)  # nothing new starts after a failure
            raise
        pool.shutdown(wait=False)  # the idle workers exit (about 2 s) while the run is assembled


def local_cluster_settings() -> None:
    """Dask settings for a cluster started in this process: workers are spawned (never forked
    after CUDA), and the nanny sets no thread limits (OMP_NUM_THREADS=1, ...) in its own process
    environment, which for a LocalCluster is this one's: every later subprocess would inherit them
    and compute with another thread count. Units set their torch threads themselves."""
    import dask

    dask.config.set(
        {
            "distributed.worker.multiprocessing-method": "spawn",
            "distributed.nanny.pre-spawn-environ": {"MALLOC_TRIM_THRESHOLD_": 65536},
        }
    )


def _after(work: Callable[[Unit], None], unit: Unit, *dependencies: None) -> None:
    """Run `unit` on a Dask worker; the dependencies' results (None) only order it after them."""
    work(unit)


@EXECUTORS.register("dask")
class DaskExecutor(Executor):
    """Units as dask.distributed futures, each depending on the futures of its dependencies.

    `workers` starts a LocalCluster of that many worker processes (spawned, never forked, so
    CUDA is initialised only inside workers; with dask-cuda installed and a GPU device, a
    LocalCUDACluster with one worker per GPU); `scheduler` connects to a running cluster. Units
    that run a network ask for a `GPU` resource when the run's device is a GPU and the
    cluster's workers declare one (`dask worker --resources GPU=1`); with `device = "auto"` and
    no such worker they run anywhere. A worker that dies mid-unit costs only that unit: the
    scheduler runs it again on another worker. The client holds the run's lock: if it dies, its
    local cluster goes with it and `run` resumes the finished units.
    """

    def __init__(self, workers: int | None = None, scheduler: str | None = None, device: str = "auto") -> None:
        self.workers, self.scheduler, self.device = workers, scheduler, device

    @classmethod
    def from_config(cls, execution: ExecutionConfig, device: str) -> DaskExecutor:
        return cls(execution.workers, execution.scheduler, device)

    def _cluster(self) -> Any:
        from distributed import LocalCluster

        local_cluster_settings()
        options = dict(
            threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR
        )
        if self.device != "cpu":
            try:
                from dask_cuda import LocalCUDACluster
            except ImportError:
                pass
            else:  # one worker per visible GPU
                return LocalCUDACluster(resources={"GPU": 1}, **options)
        return LocalCluster(n_workers=self.workers or 1, processes=True, **options)

    def _gpu_resources(self, client: Any) -> bool:
        workers = client.scheduler_info(n_workers=-1)["workers"].values()
        has_gpu = any(w.get("resources", {}).get("GPU") for w in workers)
        if self.device == "cuda" and not has_gpu:
            raise PruneScopeError(
                'device = "cuda" but no worker of the Dask cluster declares a GPU resource',
                'start one worker per GPU with `dask worker ADDRESS --resources GPU=1`, or use device = "auto"',
            )
        return has_gpu and self.device != "cpu"

    def run(self, units: Sequence[Unit], work: Callable[[Unit], None], progress: Progress) -> None:
        from distributed import Client, as_completed

        if not units:
            return
        cluster = None if self.scheduler else self._cluster()
        try:
            with Client(self.scheduler or cluster, set_as_default=False) as client:
                print(f"Dask dashboard: {client.dashboard_link}", file=sys.stderr, flush=True)
                self._submit_all(client, units, work, progress, as_completed)
        except OSError as exc:
            raise PruneScopeError(
                f"cannot reach the Dask scheduler {self.scheduler}: {exc}",
                "start it (`dask scheduler`) or check the address (tcp://HOST:8786)",
            ) from None
        finally:
            if cluster is not None:
                cluster.close()

    def _submit_all(
        self, client: Any, units: Sequence[Unit], work: Callable[[Unit], None], progress: Progress, as_completed: Any
    ) -> None:
        gpu = self._gpu_resources(client)
        token = uuid.uuid4().hex[:8]
        futures: dict[str, Any] = {}
        unit_of: dict[str, Unit] = {}
        for i, unit in enumerate(units):
            key = f"{unit.kind}-{token}-{i}"  # the dashboard groups tasks by kind
            futures[unit.key] = client.submit(
                _after,
                work,
                unit,
                *(futures[d] for d in unit.deps),
                key=key,
                pure=False,
                resources={"GPU": 1} if gpu and unit.wants_gpu else None,
            )
            unit_of[key] = unit
        try:
            for future in as_completed(list(futures.values()), loop=client.loop):
                unit = unit_of[future.key]
                if future.status == "error":
                    raise _unit_error(unit, future.exception())
                progress.finished(unit)
        finally:
            client.cancel(list(futures.values()))  # nothing new starts after a failure


def _unit_error(unit: Unit, exc: BaseException) -> BaseException:
    """The error to raise for a failed unit: its own (it names the unit) or, when its workers
    died under it, one that names it."""
    if isinstance(exc, PruneScopeError):
        return exc
    return UnitFailed(
        f"{describe(unit)} failed on Dask: {type(exc).__name__}: {exc}",
        "if its workers died, give them more memory; run the same command again to resume",
    )
