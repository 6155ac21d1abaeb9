"""Bad input (issue #13): every case is refused up front with one `error:` line and a `fix:`
line, a non-zero exit and no traceback; the CLI cases run in subprocesses."""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from torch import nn

from pipeline import store
from pipeline.config import parse_config
from pipeline.datasets import DATASETS, OPTION_RULES, loader_options
from pipeline.errors import PruneScopeError
from pipeline.models import build_model
from tests.conftest import tiny_config, write_toml

REPO = Path(__file__).resolve().parents[1]

SMALL = {"name": "digits", "train_limit": 100, "test_limit": 40}

# (config change, what the message names): each is refused by parse_config before anything runs.
BAD_CONFIGS = [
    ({"prune": [{"method": "random", "sparsity": ["abc"]}]}, "sparsity.*wrong type"),
    ({"prune": [{"method": "random", "sparsity": [[0.5]]}]}, "sparsity.*wrong type"),
    ({"prune": [{"method": "random", "sparsity": 0.5, "steps": ["3"], "schedule": "iterative"}]}, "steps.*wrong type"),
    ({"prune": [{"method": "random", "sparsity": 0.5, "finetune_epochs": [1.5]}]}, "finetune_epochs.*wrong type"),
    ({"prune": [{"method": "random", "sparsity": 0.5, "exclude": [1]}]}, "exclude.*layer name patterns"),
    ({"prune": [{"method": "random", "sparsity": []}]}, "empty list"),
    ({"prune": [{"method": "random", "sparsity": True}]}, "sparsity.*wrong type"),
    ({"train": {"lr": -1}}, r"\[train\].lr = -1 must be positive"),
    ({"train": {"batch_size": 0}}, r"\[train\].batch_size = 0 must be at least 1"),
    ({"train": {"epochs": -3}}, r"\[train\].epochs = -3 must be 0 or more"),
    ({"finetune": {"gamma": 0}}, r"\[finetune\].gamma"),
    ({"mpt": {"momentum": 1.5}}, r"\[mpt\].momentum"),
    ({"evaluation": {"batch_size": 0}}, r"\[evaluation\].batch_size = 0 must be at least 1"),
    ({"evaluation": {"severities": [True]}}, "severities.*integers 1 to 5"),
    ({"evaluation": {"corruptions": ["fog", "fog"]}}, "fog more than once.*counted twice"),
    ({"evaluation": {"corruptions": ["fog"], "severities": [3, 3]}}, "severities lists 3 more than once"),
    ({"evaluation": {"corruptions": [3]}}, "corruptions.*must be names"),
    ({"models": [{"arch": "lenet5", "kwargs": {"width": 64}}]}, "does not take kwargs.*takes no kwargs"),
    ({"models": [{"arch": "digits_cnn", "kwargs": {"width": 64}}]}, "does not take kwargs.*its kwargs: pool_first"),
    ({"dataset": {**SMALL, "train_limit": -5}}, "train_limit = -5 must be at least 1"),
    ({"dataset": {**SMALL, "test_limit": 0}}, "test_limit = 0 must be at least 1"),
    ({"dataset": {**SMALL, "options": {"colour": 1}}}, "not options of data set 'digits'.*test_fraction"),
    ({"dataset": {**SMALL, "options": {"test_fraction": 2}}}, "test_fraction = 2 must be a fraction"),
    ({"dataset": {**SMALL, "options": {"split_seed": "a"}}}, "split_seed = 'a'"),
    ({"dataset": {"name": "mnist", "options": {"image_size": 28}}}, "'mnist' takes no options"),
    ({"dataset": {"name": "imagefolder", "options": {"image_size": 0}}}, "image_size = 0 must be a whole number"),
    ({"dataset": {"name": "imagefolder", "options": {"image_size": "big"}}}, "image_size = 'big'"),
    ({"dataset": {**SMALL, "normalization": "imagenet"}}, "unknown normalization 'imagenet'"),
    ({"dataset": {**SMALL, "normalization": {"mean": [0.5], "std": [0]}}}, "std.*must be positive"),
    ({"models": [{"arch": "digits_cnn", "reported_accuracy": 97}]}, "reported_accuracy = 97 is not a fraction"),
]


@pytest.mark.parametrize("change,match", BAD_CONFIGS)
def test_bad_config_values_are_refused_up_front(change, match):
    with pytest.raises(PruneScopeError, match=f"(?s){match}") as info:
        parse_config(tiny_config(**change))
    assert info.value.fix


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_loader_option_has_a_validation_rule(name):
    for option in loader_options(name):
        assert option in OPTION_RULES, f"{name}: option {option!r} has no rule in OPTION_RULES"


def cli(*args: str, cwd: Path = REPO, stdin=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args], cwd=cwd, capture_output=True, text=True, timeout=600, env=env
    )


def assert_clean_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exactly one `error:` line and one `fix:` line on stderr, exit 2, no traceback."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("  fix: "), proc.stderr
    for f in fragments:
        assert f in proc.stderr, proc.stderr


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims width × height (no pixel data needed to trip Pillow's bomb check)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_bad_inputs_through_the_cli(tmp_path):
    """Each case is a real `python -m pipeline` process (4 at a time)."""
    (tmp_path / "netsmod.py").write_text(
        "from torch import nn\n"
        "def broken():\n"
        "    raise ValueError('width must be even')\n"
        "def wrong_input():\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(100, 10))\n"
    )
    (tmp_path / "text.pt").write_text("these are not weights\n")
    torch.save(build_model("digits_cnn", None, {}, 1, (8, 8), 10), tmp_path / "whole.pt")
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump(_RunsCode(), f)
    folder = tmp_path / "images"
    for split in ("train", "test"):
        (folder / split / "a").mkdir(parents=True)
        _png_header_only(folder / split / "a" / "huge.png", 20000, 20000)
    (tmp_path / "a-file").write_text("not a store")
    base = {"dataset": SMALL, "prune": []}

    def model(**entry):
        return {**base, "models": [{"arch": "digits_cnn", **entry}]}

    cases = {
        "sparsity-abc": ({"prune": [{"method": "random", "sparsity": ["abc"]}]}, ["sparsity"]),
        "sparsity-nested": ({"prune": [{"method": "random", "sparsity": [[0.5]]}]}, ["sparsity"]),
        "steps-string": ({"prune": [{"method": "random", "sparsity": 0.5, "steps": ["3"]}]}, ["steps"]),
        "finetune-float": ({"prune": [{"method": "random", "sparsity": 0.5, "finetune_epochs": [1.5]}]}, ["finetune"]),
        "exclude-int": ({"prune": [{"method": "random", "sparsity": 0.5, "exclude": [1]}]}, ["exclude"]),
        "lr": ({"train": {"lr": -1}}, ["lr = -1"]),
        "epochs": ({"train": {"epochs": -3}}, ["epochs = -3"]),
        "train-batch": ({"train": {"batch_size": 0}}, ["batch_size = 0"]),
        "eval-batch": ({"evaluation": {"batch_size": 0}}, ["batch_size = 0"]),
        "severities": ({"evaluation": {"corruptions": ["fog"], "severities": [True]}}, ["severities"]),
        "twice": ({"evaluation": {"corruptions": ["fog", "fog"]}}, ["more than once"]),
        "kwargs": ({"models": [{"arch": "digits_cnn", "kwargs": {"depth": 3}}]}, ["does not take kwargs"]),
        "digits-options": ({"dataset": {**SMALL, "options": {"test_size": 0.2}}}, ["test_fraction"]),
        "train-limit": ({"dataset": {**SMALL, "train_limit": -5}}, ["train_limit"]),
        "test-limit": ({"dataset": {**SMALL, "test_limit": 0}}, ["test_limit"]),
        "image-size-0": ({"dataset": {"name": "imagefolder", "root": str(folder), "options": {"image_size": 0}}}, []),
        "image-size-big": (
            {"dataset": {"name": "imagefolder", "root": str(folder), "options": {"image_size": "big"}}},
            ["image_size"],
        ),
        "bomb": ({**base, "dataset": {"name": "imagefolder", "root": str(folder)}}, ["huge.png", "pixels"]),
        "text-checkpoint": (model(checkpoint="text.pt"), ["text.pt", "not a PyTorch"]),
        "whole-module": (model(checkpoint="whole.pt"), ["torch.save(model)", "state_dict()"]),
        "pickled-code": (model(checkpoint="evil.pt"), ["pickled Python objects"]),
        "factory-raises": (
            {**base, "models": [{"id": "b", "import": "netsmod:broken"}]},
            ["netsmod:broken() raised ValueError: width must be even"],
        ),
        "shape-mismatch": (
            {**base, "models": [{"id": "w", "import": "netsmod:wrong_input"}]},
            ["fails on a batch", "(2, 1, 8, 8)"],
        ),
        "store-is-file": (base, ["a-file is a file"]),
    }

    def run(name: str):
        change, fragments = cases[name]
        config = write_toml(tiny_config(**change), tmp_path / f"{name}.toml")
        store_dir = tmp_path / ("a-file" if name == "store-is-file" else f"store-{name}")
        return name, cli("run", str(config), "--store", str(store_dir)), fragments

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(run, cases))
    for name, proc, fragments in results:
        assert_clean_error(proc, *fragments)
        assert not (tmp_path / f"store-{name}" / "tiny" / store.RUN_JSON).exists(), f"{name} left a run behind"
    assert not (REPO / "pwned").exists() and not (tmp_path / "pwned").exists()
    assert_clean_error(cli("ls", "--store", str(tmp_path / "a-file")), "is a file")


def test_corrupt_run_json_is_fixed_by_force(tmp_path):
    config = write_toml(tiny_config(dataset=SMALL, prune=[], train={"epochs": 1}), tmp_path / "c.toml")
    store_dir = tmp_path / "store"
    assert cli("run", str(config), "--store", str(store_dir)).returncode == 0
    (store_dir / "tiny" / store.RUN_JSON).write_text("{ not json")
    assert_clean_error(cli("run", str(config), "--store", str(store_dir)), "not valid JSON", "--force")
    rebuilt = cli("run", str(config), "--store", str(store_dir), "--force")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert store.validate_run(store_dir / "tiny") == []


def test_report_into_a_closed_pipe_exits_quietly(tiny_run):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        f"'{sys.executable}' -m pipeline report '{tiny_run}' | head -n 1",
        shell=True,
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        executable="/bin/bash",
    )
    assert proc.stdout.startswith("run tiny")
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def test_progress_bars_write_no_escape_codes_into_logs(tmp_path):
    config = write_toml(tiny_config(dataset=SMALL, prune=[], train={"epochs": 2}), tmp_path / "p.toml")
    proc = cli("run", str(config), "--store", str(tmp_path / "store"))
    assert proc.returncode == 0, proc.stderr
    assert "\x1b[" not in proc.stderr and "\r" not in proc.stderr, repr(proc.stderr[:300])


def test_disk_full_is_a_clear_message_and_the_run_resumes(tmp_path):
    """ENOSPC while writing the models table (injected): a clear message; the next run finishes."""
    config = write_toml(tiny_config(dataset=SMALL, prune=[], train={"epochs": 1}), tmp_path / "d.toml")
    store_dir = tmp_path / "store"
    script = (
        "import errno, sys, pyarrow.parquet as pq\n"
        "write = pq.write_table\n"
        "def full(table, where, **kw):\n"
        "    if 'models.parquet' in str(where):\n"
        "        raise OSError(errno.ENOSPC, 'No space left on device')\n"
        "    return write(table, where, **kw)\n"
        "pq.write_table = full\n"
        "from pipeline.cli import main\n"
        f"sys.exit(main(['run', {str(config)!r}, '--store', {str(store_dir)!r}]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert_clean_error(proc, "disk is full", "run the same command again")
    resumed = cli("run", str(config), "--store", str(store_dir))
    assert resumed.returncode == 0, resumed.stderr
    assert store.validate_run(store_dir / "tiny") == []


def test_every_loader_rejects_a_bad_option_before_reading(tmp_path):
    with pytest.raises(PruneScopeError, match="image_size = 0"):
        from pipeline.datasets import load_dataset

        load_dataset("imagefolder", tmp_path, image_size=0)


def test_factory_error_names_the_factory():
    def make():
        raise RuntimeError("boom")

    with pytest.raises(PruneScopeError, match="make\\(\\) raised RuntimeError: boom"):
        build_model(None, None, {}, 1, (8, 8), 10, factory=make)
    assert isinstance(build_model(None, None, {}, 1, (8, 8), 10, factory=lambda: nn.Linear(2, 2)), nn.Module)
