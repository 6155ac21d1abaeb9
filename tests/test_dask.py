"""The Dask executor on a LocalCluster of 2 worker processes: a worker SIGKILLed mid-run costs
only its unit and the store equals the serial one; a dying client leaves a resumable run;
GPU resources are asked for only where the cluster has them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline import store
from pipeline.config import execution_config, parse_config
from pipeline.errors import PruneScopeError
from pipeline.executors import DaskExecutor, local_cluster_settings
from pipeline.plan import plan_run
from pipeline.runner import build_run
from pipeline.units import finished
from tests.conftest import assert_same_store, tiny_config, write_toml

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cluster():
    """Two spawned worker processes of one thread each, on loopback."""
    from distributed import Client, LocalCluster

    local_cluster_settings()
    before = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        assert {k: os.environ.get(k) for k in before} == before, "the nanny set thread limits in this process"
        yield cluster, client


def test_worker_killed_mid_run_costs_only_its_unit(cluster, tiny_run, tmp_path):
    """`device = "auto"` on a CPU-only cluster; one worker SIGKILLed while it runs a unit;
    the finished store equals the serial build of the same config (tiny_run)."""
    local, client = cluster
    raw = tiny_config(device="auto")
    cfg = replace(parse_config(raw), execution=execution_config("dask", scheduler=local.scheduler_address))
    pids = client.run(os.getpid)
    result: dict[str, object] = {}

    def build() -> None:
        try:
            result["summary"] = build_run(cfg, tmp_path)
        except BaseException as exc:  # handed to the test thread
            result["error"] = exc

    thread = threading.Thread(target=build)
    thread.start()
    run = tmp_path / "tiny"
    victim = None
    deadline = time.monotonic() + 600
    while victim is None and thread.is_alive() and time.monotonic() < deadline:
        busy = {w: keys for w, keys in client.processing().items() if any(k.startswith("model-") for k in keys)}
        if busy and len(list((run / store.UNITS_DIR).glob("model-*.json"))) >= 1:
            victim = next(iter(busy))
            os.kill(pids[victim], signal.SIGKILL)
        else:
            time.sleep(0.01)
    assert victim is not None, "the kill must land while a worker runs a model unit"
    assert not (run / store.MODELS).exists(), "the run was not finished when the worker died"
    thread.join(timeout=300)
    assert not thread.is_alive()
    assert "error" not in result, result.get("error")
    assert_same_store(run, tiny_run)


def test_client_killed_leaves_a_resumable_run(tiny_run, tmp_path):
    """`run --workers 2` SIGKILLed mid-run; `run` again resumes; equal to the serial build.
    Both CLI runs use the torch thread count tiny_run was built with (CPU floats depend on it)."""
    import torch

    threads = ["--threads", str(torch.get_num_threads())]
    config = write_toml(tiny_config(), tmp_path / "tiny.toml")
    store_dir, log = tmp_path / "store", tmp_path / "stderr.txt"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pipeline",
                "run",
                str(config),
                "--store",
                str(store_dir),
                "--workers",
                "2",
                *threads,
            ],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        units = store_dir / "tiny" / store.UNITS_DIR
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and len(list(units.glob("model-*.json"))) < 2 and proc.poll() is None:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert "Dask dashboard: http://127.0.0.1:" in log.read_text()
    run = store_dir / "tiny"
    plan = plan_run(parse_config(tiny_config()))
    assert 0 < len(plan.todo(lambda u: finished(run, u))) < len(plan.units), "the kill must land mid-run"

    resumed = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", str(config), "--store", str(store_dir), *threads],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert_same_store(run, tiny_run)


class FakeClient:
    def __init__(self, resources: list[dict[str, float]]) -> None:
        self.resources = resources

    def scheduler_info(self, n_workers: int = -1) -> dict:
        return {"workers": {f"w{i}": {"resources": r} for i, r in enumerate(self.resources)}}


@pytest.mark.parametrize(
    "device, resources, expected",
    [
        ("auto", [{}, {}], False),  # a CPU-only cluster: units run anywhere
        ("auto", [{"GPU": 1}, {}], True),
        ("cpu", [{"GPU": 1}], False),
        ("cuda", [{"GPU": 1}], True),
        ("cuda", [{}], PruneScopeError),
    ],
)
def test_gpu_resource_only_where_the_cluster_has_gpus(device, resources, expected):
    executor = DaskExecutor(scheduler="tcp://127.0.0.1:1", device=device)
    if expected is PruneScopeError:
        with pytest.raises(PruneScopeError, match="declares a GPU resource"):
            executor._gpu_resources(FakeClient(resources))
    else:
        assert executor._gpu_resources(FakeClient(resources)) is expected


def test_attribution_units_run_on_dask_as_in_one_process(cluster, attribution_store, tmp_path):
    """The sample choice and every model's maps (after its parent's) on two workers equal the serial run."""
    from pipeline.store.io import attribution_models, read_attributions
    from tests.conftest import ATTRIBUTION

    local, _ = cluster
    raw = tiny_config(prune=[{"method": "magnitude", "sparsity": [0.5, 0.9]}], attribution=ATTRIBUTION)
    cfg = replace(parse_config(raw), execution=execution_config("dask", scheduler=local.scheduler_address, threads=1))
    run = build_run(cfg, tmp_path).run_dir
    reference = attribution_store / "tiny"
    assert attribution_models(run) == attribution_models(reference) and len(attribution_models(run)) == 3
    order = [("method", "ascending"), ("sample_id", "ascending")]
    for mid in attribution_models(run):
        a, b = (read_attributions(r, mid).sort_by(order).to_pandas() for r in (run, reference))
        pd.testing.assert_frame_equal(a, b)


def test_sensitivity_and_seeds_run_on_dask_as_in_one_process(cluster, tmp_path):
    """A config with [[sensitivity]] (models scoped to one layer, clean only) and `seeds` gives on
    two workers the store a serial build gives, value for value."""
    from tests.conftest import SENSITIVITY_CONFIG

    local, _ = cluster
    raw = tiny_config(**{**SENSITIVITY_CONFIG, "sensitivity": [{"method": "magnitude", "sparsity": 0.5}]})
    serial = replace(parse_config(raw), execution=execution_config(threads=1))
    dask = replace(serial, execution=execution_config("dask", scheduler=local.scheduler_address, threads=1))
    reference = build_run(serial, tmp_path / "serial").run_dir
    run = build_run(dask, tmp_path / "dask").run_dir
    models = pq.read_table(run / store.MODELS).to_pandas()
    assert models["scope"].str.startswith("layer:").sum() == 4 and set(models["replicate"]) == {0, 1, 2}
    assert_same_store(run, reference)
