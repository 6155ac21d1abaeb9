"""The runner's seams: the plan's dependencies, executors (one contract for every registered
one), the run lock outside the run folder, concurrent generation of a corrupted set, and unit
failures that name the unit and its model."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import pipeline.units as units
from pipeline import config, store
from pipeline.config import parse_config
from pipeline.corruptions import CorruptionOptions, corrupt
from pipeline.datasets import load_dataset
from pipeline.executors import EXECUTORS
from pipeline.plan import EVAL, IMAGES, MODEL, ROBUSTNESS, Unit, eval_groups, plan_run, unit_key
from pipeline.runner import build_run, lock_path, run_lock
from pipeline.units import RUNNERS, UnitFailed, finished
from tests.conftest import assert_same_store, tiny_config, write_toml

REPO = Path(__file__).resolve().parents[1]


def test_plan_orders_units_after_their_dependencies():
    cfg = parse_config(
        tiny_config(
            prune=[{"method": ["magnitude", "mpt"], "sparsity": 0.5}],
            evaluation={"corruptions": ["fog"], "severities": [1, 2]},
        )
    )
    plan = plan_run(cfg)
    keys = [u.key for u in plan.units]
    assert len(keys) == len(set(keys))
    position = {k: i for i, k in enumerate(keys)}
    for unit in plan.units:
        assert all(position[d] < position[unit.key] for d in unit.deps), unit.key
    by_key = {u.key: u for u in plan.units}
    dense, pruned, mpt = (p.model_id for p in plan.models)
    assert by_key[unit_key(MODEL, dense)].deps == ()
    assert by_key[unit_key(MODEL, pruned)].deps == (unit_key(MODEL, dense),)
    assert by_key[unit_key(MODEL, mpt)].deps == (), "mpt trains from scratch: it does not wait for its parent"
    assert by_key[unit_key(EVAL, pruned, [("fog", 2)])].deps == (unit_key(MODEL, pruned),)
    assert set(by_key[unit_key(ROBUSTNESS, dense)].deps) == {
        unit_key(EVAL, dense, [es]) for es in [(store.CLEAN, 0), ("fog", 1), ("fog", 2)]
    }
    assert len(plan.units) == 1 + 3 + 3 * 3 + 3

    # A rerun unit reruns everything downstream of it; finished dependencies are dropped.
    todo = plan.todo(lambda u: u.key != unit_key(EVAL, dense, [("fog", 1)]))
    assert [u.key for u in todo] == [unit_key(EVAL, dense, [("fog", 1)]), unit_key(ROBUSTNESS, dense)]
    assert todo[0].deps == () and todo[1].deps == (todo[0].key,)
    assert plan.todo(lambda u: True) == []

    # Given the test set's size, a model's corrupted sets share units of about unit_rows rows.
    grouped = {u.key: u for u in plan_run(cfg, num_test=120).units if u.kind == EVAL and u.model_id == dense}
    assert list(grouped) == [f"eval:{dense}:clean", f"eval:{dense}:fog-1..fog-2"]
    assert grouped[f"eval:{dense}:fog-1..fog-2"].evalsets == (("fog", 1), ("fog", 2))


def test_eval_groups_keep_clean_alone_and_size_corrupted_units_by_rows():
    clean = (store.CLEAN, 0)
    sets = [clean] + [(c, s) for c in ("fog", "snow") for s in (1, 2, 3)]
    assert eval_groups(sets, None, 100) == [(clean,)] + [(es,) for es in sets[1:]], "size unknown: a set a unit"
    assert eval_groups(sets, 10, 100) == [(clean,), tuple(sets[1:])]
    assert eval_groups(sets, 40, 100) == [(clean,), tuple(sets[1:3]), tuple(sets[3:5]), tuple(sets[5:7])]
    assert eval_groups(sets, 30, 100) == [(clean,), tuple(sets[1:4]), tuple(sets[4:7])], "even sizes, not 3 + 3 + 0"
    assert eval_groups(sets, 1000, 100) == [(clean,)] + [(es,) for es in sets[1:]], "a set larger than a unit"
    assert eval_groups([clean], 10, 100) == [(clean,)]


def test_grouped_evaluation_writes_the_store_of_a_set_per_unit_and_resumes_set_by_set(tmp_path, monkeypatch):
    ev = {"corruptions": ["fog", "contrast"], "severities": [1, 2], "batch_size": 64}
    base = tiny_config(prune=[{"method": "magnitude", "sparsity": 0.5}], evaluation=ev)
    per_set = build_run(parse_config(tiny_config(**{**base, "evaluation": {**ev, "unit_rows": 1}})), tmp_path / "a")
    grouped = build_run(parse_config(base), tmp_path / "b")
    assert (per_set.units_done, grouped.units_done) == (1 + 2 + 2 * 5 + 2, 1 + 2 + 2 * 2 + 2)
    assert_same_store(grouped.run_dir, per_set.run_dir)

    # A unit stopped half-way evaluates, when run again, only the sets without a samples file.
    model = "digits_cnn-dense"
    kept, lost = (store.samples_path(grouped.run_dir, model, *es) for es in (("fog", 1), ("contrast", 2)))
    stamp = kept.stat().st_mtime_ns
    lost.unlink()
    evaluated = []
    real = units.evaluate_sets
    monkeypatch.setattr(units, "evaluate_sets", lambda *a, **k: evaluated.append(list(a[2])) or real(*a, **k))
    resumed = build_run(parse_config(base), tmp_path / "b")
    assert resumed.units_done == 2 and evaluated == [[("contrast", 2)]], "the unit and the model's robustness"
    assert kept.stat().st_mtime_ns == stamp
    assert_same_store(resumed.run_dir, per_set.run_dir)


def _fake_units() -> list[Unit]:
    return [
        Unit(IMAGES),
        Unit("a", deps=()),
        Unit("b", deps=("a",)),
        Unit("c", deps=("a", "b")),
        Unit("d", deps=()),
    ]


def _record_order(log: str, unit: Unit) -> None:
    with open(log, "a") as f:
        f.write(unit.key + "\n")


def _fail_on_b(log: str, unit: Unit) -> None:
    if unit.key == "b":
        raise UnitFailed("unit b failed", "fix b")
    _record_order(log, unit)


class _Progress:
    def __init__(self) -> None:
        self.done: list[str] = []

    def started(self, unit: Unit) -> None:
        pass

    def finished(self, unit: Unit) -> None:
        self.done.append(unit.key)


EXECUTOR_OPTIONS = {"dask": {"workers": 2}, "processes": {"workers": 2}}  # 2 worker processes


def test_config_accepts_exactly_the_registered_executors():
    assert sorted(config.EXECUTORS) == sorted(EXECUTORS.names())


@pytest.mark.parametrize("name", EXECUTORS.names())
def test_executor_contract(name, tmp_path):
    """Every unit runs once, after its dependencies; each is reported finished; a failing unit
    stops the run with its error and nothing that depends on it runs."""
    executor = EXECUTORS.get(name)(**EXECUTOR_OPTIONS.get(name, {}))
    log, progress = tmp_path / "order.txt", _Progress()
    units = _fake_units()
    executor.run(units, functools.partial(_record_order, str(log)), progress)  # picklable: processes spawn
    order = log.read_text().split()
    assert sorted(order) == sorted(u.key for u in units) and sorted(progress.done) == sorted(order)
    for unit in units:
        assert all(order.index(d) < order.index(unit.key) for d in unit.deps)

    log.unlink()
    with pytest.raises(UnitFailed, match="unit b failed"):
        executor.run(units, functools.partial(_fail_on_b, str(log)), _Progress())
    assert "c" not in log.read_text().split()


def _spawned_workers(pid: int) -> list[int]:
    """The worker processes a process has spawned (not its multiprocessing resource tracker)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    workers = []
    for child in children:
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                workers.append(int(child))
        except OSError:
            continue
    return workers


def test_processes_executor_builds_the_serial_store_and_a_killed_worker_stops_the_run_cleanly(tmp_path):
    cfg = tiny_config(
        prune=[{"method": "magnitude", "sparsity": [0.5, 0.8]}],
        evaluation={"corruptions": ["fog"], "severities": [1, 2], "batch_size": 64},
        execution={"threads": 1},
    )
    serial = build_run(parse_config(cfg), tmp_path / "serial")
    config, store_dir = write_toml(cfg, tmp_path / "tiny.toml"), tmp_path / "store"
    command = [sys.executable, "-m", "pipeline", "run", str(config), "--store", str(store_dir)]
    command += ["--executor", "processes", "--workers", "2"]
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    records = store_dir / "tiny" / store.UNITS_DIR
    deadline = time.monotonic() + 600  # a loaded machine is slow to import torch; only a hang waits this long
    while time.monotonic() < deadline and not list(records.glob("model-*.json")) and proc.poll() is None:
        time.sleep(0.005)
    workers = _spawned_workers(proc.pid)
    assert len(workers) == 2, workers
    os.kill(workers[0], signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2 and "a worker process died" in err and "run the same command again" in err, err
    assert "Traceback" not in err

    resumed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "reused" in resumed.stdout and "(0 reused)" not in resumed.stdout, "the finished units were kept"
    assert_same_store(store_dir / "tiny", serial.run_dir)


@pytest.mark.parametrize("executor", [[], ["--workers", "2"]], ids=["serial", "dask"])
def test_second_force_run_during_a_build_is_refused(executor, tmp_path):
    """The lock lives outside the run folder and is taken before --force deletes anything;
    a second client (any executor) on a run being built is refused."""
    store_dir = tmp_path / "store"
    config = write_toml(tiny_config(prune=[]), tmp_path / "tiny.toml")
    build_run(parse_config(tiny_config(prune=[])), store_dir)
    before = (store_dir / "tiny" / store.MODELS).read_bytes()
    assert store_dir / "tiny" not in lock_path(store_dir, "tiny").parents
    with run_lock(store_dir, "tiny"):  # another process building the run holds this lock
        proc = subprocess.run(
            [sys.executable, "-m", "pipeline", "run", str(config), "--store", str(store_dir), "--force", *executor],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert proc.returncode == 2 and "being built by another process" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert (store_dir / "tiny" / store.MODELS).read_bytes() == before, "nothing of the run was removed"
    assert store.validate_run(store_dir / "tiny") == []


GENERATE = """
import os, sys, time
from pathlib import Path
import pipeline.units as units
from pipeline.config import parse_config
from tests.conftest import tiny_config

run_dir, log, go = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
real = units.corrupt

def counted(*args, **kwargs):
    with open(log, "a") as f:
        f.write("generate\\n")
    return real(*args, **kwargs)

units.corrupt = counted
cfg = parse_config(tiny_config(dataset={"name": "digits", "test_limit": 360}))
ctx = units.RunContext(cfg, run_dir)
ctx.data
(run_dir.parent / f"ready-{os.getpid()}").touch()
while not go.exists():
    time.sleep(0.001)
units.evalset_images(ctx, "glass_blur", 2)
"""


def test_two_processes_generating_one_corrupted_set_end_with_one_correct_file(tmp_path):
    run_dir, log, go = tmp_path / "run", tmp_path / "calls.txt", tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", GENERATE, str(run_dir), str(log), str(go)], cwd=REPO, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    while len(list(tmp_path.glob("ready-*"))) < 2 and all(p.poll() is None for p in procs):
        time.sleep(0.01)
    go.touch()  # both processes are ready: they ask for the set at the same moment
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()
    assert log.read_text().split() == ["generate"], "the second process waited and read the first one's set"
    files = sorted(p.name for p in (run_dir / store.CORRUPTED_DIR).iterdir() if not p.name.startswith("."))
    assert files == ["glass_blur-2.npy"]
    assert not list(run_dir.rglob(".*.tmp"))
    data = load_dataset("digits", None, None, 360)
    expected = corrupt(data.test_images, "glass_blur", 2, np.arange(len(data.test_images)), CorruptionOptions(seed=0))
    np.testing.assert_array_equal(np.load(run_dir / store.CORRUPTED_DIR / "glass_blur-2.npy"), expected)


def test_failing_unit_names_unit_and_model_and_the_run_resumes(tmp_path, monkeypatch):
    cfg = parse_config(tiny_config(prune=[], evaluation={"corruptions": ["fog"], "severities": [1]}))
    real = RUNNERS[EVAL]

    def broken(ctx, unit):
        if unit.evalsets == (("fog", 1),):
            raise RuntimeError("disk on fire")
        return real(ctx, unit)

    monkeypatch.setitem(RUNNERS, EVAL, broken)
    with pytest.raises(UnitFailed) as err:
        build_run(cfg, tmp_path)
    model = "digits_cnn-dense"
    assert f"unit eval:{model}:fog-1 (model {model}, evaluation set fog-1) failed" in err.value.problem
    assert "disk on fire" in err.value.problem
    log = tmp_path / "tiny" / store.UNITS_DIR / f"failed-eval-{model}-fog-1.log"
    assert log.is_file() and "RuntimeError: disk on fire" in log.read_text()
    plan = plan_run(cfg)
    assert finished(tmp_path / "tiny", next(u for u in plan.units if u.kind == MODEL)), "finished units are kept"

    monkeypatch.setitem(RUNNERS, EVAL, real)
    summary = build_run(cfg, tmp_path)
    assert summary.units_done == 2 and summary.units_reused == 3, summary
    assert store.validate_run(summary.run_dir) == []


def test_robustness_reads_correctness_from_the_footer_it_already_has_or_from_the_rows(browser_store):
    """The robustness unit takes each set's correctness from the footer read with its margins; a
    record written before bitsets (no correct_bits) falls back to the file's rows, with the same answer."""
    import json

    import pyarrow.parquet as pq

    from pipeline import store
    from pipeline.units import EVAL_META_KEY, _correct

    run = browser_store / "tiny"  # a run with corrupted sets
    path = next(p for p in (run / "samples").rglob("*.parquet") if p.stem != store.CLEAN)
    model_id, (corruption, severity) = path.parent.name.split("=", 1)[1], path.stem.rsplit("-", 1)
    table = pq.read_table(path)
    n = table.num_rows
    expect = np.zeros(n, bool)
    expect[table.column("sample_id").to_numpy()] = table.column("correct").to_numpy(zero_copy_only=False)
    footer = table.schema.metadata
    record = json.loads(footer[EVAL_META_KEY.encode()])
    assert record["correct_bits"]
    older = {EVAL_META_KEY.encode(): json.dumps({k: v for k, v in record.items() if k != "correct_bits"}).encode()}
    for given in (footer, older, None):
        got = _correct(run, model_id, corruption, int(severity), n, given)
        assert np.array_equal(got, expect) and (~got).any()
