"""The CLI end to end in subprocesses: clear errors without tracebacks, and resume after SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline import store
from pipeline.cli import override_execution
from pipeline.config import execution_config, load_config, parse_config
from pipeline.errors import PruneScopeError
from pipeline.plan import plan_run
from pipeline.units import finished
from tests.conftest import tiny_config, write_toml

REPO = Path(__file__).resolve().parents[1]


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def assert_clean_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ") and "fix: " in proc.stderr
    for f in fragments:
        assert f in proc.stderr, proc.stderr


def test_bad_inputs_are_clear_errors(tmp_path):
    missing = write_toml(
        tiny_config(dataset={"name": "mnist", "root": str(tmp_path / "no-mnist")}), tmp_path / "a.toml"
    )
    assert_clean_error(cli("run", str(missing), "--store", str(tmp_path / "s")), "no-mnist", "does not exist")
    unknown = write_toml(tiny_config(models=[{"arch": "transformer9000"}]), tmp_path / "b.toml")
    assert_clean_error(cli("run", str(unknown), "--store", str(tmp_path / "s")), "unknown architecture", "digits_cnn")
    assert_clean_error(cli("report", str(tmp_path)), "is not a PruneScope run")


def test_validate_exit_codes(tiny_run, tmp_path):
    ok = cli("validate", str(tiny_run))
    assert ok.returncode == 0 and "valid" in ok.stdout
    bad = cli("validate", str(tmp_path))
    assert bad.returncode == 1 and "not a PruneScope run" in bad.stdout


def test_report_and_ls(tiny_run):
    rep = cli("report", str(tiny_run))
    assert rep.returncode == 0, rep.stderr
    assert "digits_cnn-dense" in rep.stdout and "clean" in rep.stdout
    ls = cli("ls", "--store", str(tiny_run.parent))
    assert "tiny" in ls.stdout and "9 models" in ls.stdout


def test_resume_after_sigkill_equals_uninterrupted_run(tiny_run, tmp_path):
    config = write_toml(tiny_config(), tmp_path / "tiny.toml")
    store_dir = tmp_path / "store"
    units = store_dir / "tiny" / store.UNITS_DIR
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", str(config), "--store", str(store_dir)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 900  # a loaded machine is slow to import torch and train; only a hang waits this long
    while time.monotonic() < deadline and len(list(units.glob("model-*.json"))) < 3 and proc.poll() is None:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    run = store_dir / "tiny"
    plan = plan_run(parse_config(tiny_config()))
    todo = plan.todo(lambda unit: finished(run, unit))
    assert 3 <= len(plan.units) - len(todo) < len(plan.units), "the kill must land in the middle of the run"
    assert not (run / store.MODELS).exists()

    resumed = cli("run", str(config), "--store", str(store_dir))
    assert resumed.returncode == 0, resumed.stderr
    assert f"({len(todo)} units computed, {len(plan.units) - len(todo)} reused)" in resumed.stdout
    assert store.validate_run(run) == []
    assert not list(run.rglob(".*.tmp"))
    for name in (store.MODELS, store.EVALUATIONS, store.HEADS, store.IMAGES):
        assert pq.read_table(run / name).equals(pq.read_table(tiny_run / name)), name
    order = [("model_id", "ascending"), ("sample_id", "ascending")]
    a = store.samples_dataset(run).to_table().sort_by(order).to_pandas()
    b = store.samples_dataset(tiny_run).to_table().sort_by(order).to_pandas()
    pd.testing.assert_frame_equal(a, b)  # NaN robustness compares equal here, unlike Table.equals


def test_existing_run_with_other_config_is_kept(tiny_run, tmp_path):
    store_dir = tmp_path / "store"
    first = write_toml(tiny_config(prune=[]), tmp_path / "one.toml")
    assert cli("run", str(first), "--store", str(store_dir)).returncode == 0
    before = (store_dir / "tiny" / store.MODELS).read_bytes()
    other = write_toml(tiny_config(prune=[], seed=1), tmp_path / "two.toml")
    assert_clean_error(cli("run", str(other), "--store", str(store_dir)), "different config", "--force")
    assert (store_dir / "tiny" / store.MODELS).read_bytes() == before
    assert cli("run", str(other), "--store", str(store_dir), "--force").returncode == 0


def test_command_line_execution_settings_override_the_configs():
    demo = load_config("configs/demo.toml").execution
    assert (demo.executor, demo.workers) == ("processes", 2)
    assert override_execution(demo, {"executor": "serial"}) == execution_config("serial", threads=1)
    assert override_execution(demo, {"executor": "dask"}) == execution_config("dask", workers=2, threads=1)
    assert override_execution(demo, {"workers": 4}) == execution_config("dask", workers=4, threads=1)
    assert override_execution(demo, {"scheduler": "tcp://h:8786"}).workers is None
    processes = override_execution(execution_config("dask", scheduler="tcp://h:8786"), {"executor": "processes"})
    assert (processes.executor, processes.workers, processes.scheduler) == ("processes", None, None)
    with pytest.raises(PruneScopeError, match="apply to the dask and processes executors only"):
        override_execution(demo, {"executor": "serial", "workers": 2})
