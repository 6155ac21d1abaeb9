"""Shared fixtures: a tiny run config and a run built once per test session."""

from __future__ import annotations

import copy
import json
import shutil
import socket
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

TINY_CONFIG: dict[str, Any] = {
    "name": "tiny",
    "seed": 0,
    "device": "cpu",
    "dataset": {"name": "digits", "train_limit": 400, "test_limit": 120},
    "models": [{"arch": "digits_cnn"}],
    "train": {"epochs": 3, "batch_size": 64, "lr": 0.05},
    "finetune": {"lr": 0.01, "gamma": 0.9},
    "prune": [{"method": ["random", "magnitude"], "sparsity": [0.5, 0.8], "finetune_epochs": [0, 1]}],
    "evaluation": {"batch_size": 256},
}


def tiny_config(**overrides: Any) -> dict[str, Any]:
    """A deep copy of the tiny config with top-level keys replaced."""
    cfg = copy.deepcopy(TINY_CONFIG)
    cfg.update(overrides)
    return cfg


def assert_same_store(run: Path, reference: Path) -> None:
    """Two builds of one config hold the same store: valid, no temporaries, equal contract tables
    and sample rows (however the builds were split into units or spread over processes)."""
    from pipeline import store

    assert store.validate_run(run) == []
    assert not list(run.rglob(".*.tmp"))
    for name in (store.MODELS, store.EVALUATIONS, store.HEADS, store.IMAGES):
        assert pq.read_table(run / name).equals(pq.read_table(reference / name)), name
    order = [(k, "ascending") for k in ("model_id", "corruption", "severity", "sample_id")]
    a = store.samples_dataset(run).to_table().sort_by(order).to_pandas()
    b = store.samples_dataset(reference).to_table().sort_by(order).to_pandas()
    pd.testing.assert_frame_equal(a, b)  # NaN robustness compares equal here


def write_toml(cfg: dict[str, Any], path: Path) -> Path:
    """Serialise a (flat enough) config dict as TOML for CLI tests."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + "}"
        return repr(v)

    lines = [
        f"{k} = {value(v)}"
        for k, v in cfg.items()
        if not isinstance(v, (dict, list)) or (isinstance(v, list) and not (v and isinstance(v[0], dict)))
    ]
    for k, v in cfg.items():
        if isinstance(v, dict):
            lines.append(f"[{k}]")
            lines += [f"{kk} = {value(vv)}" for kk, vv in v.items()]
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            for entry in v:
                lines.append(f"[[{k}]]")
                lines += [f"{kk} = {value(vv)}" for kk, vv in entry.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def user_nets(tmp_path, monkeypatch) -> str:
    """An importable user module `usernets` with `make(width=32)`: an MLP for 8×8 digits."""
    (tmp_path / "usernets.py").write_text(
        "from torch import nn\n"
        "def make(width=32):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(64, width), nn.ReLU(), nn.Linear(width, 10))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "usernets"
    import sys

    sys.modules.pop("usernets", None)


def free_port() -> int:
    """A loopback port free now: servers started by tests never collide with another test run on the machine."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pytest_setup_options():
    """Headless Debian Chromium for dash[testing]'s browser tier (as root: no sandbox)."""
    from scripts.render_png import chrome_options

    return chrome_options()


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete run of the tiny config, built once (about two seconds)."""
    from pipeline.config import parse_config
    from pipeline.runner import build_run

    store_dir = tmp_path_factory.mktemp("store")
    return build_run(parse_config(tiny_config()), store_dir).run_dir


@pytest.fixture(scope="session")
def browser_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small run ("tiny") with two corrupted sets, built once for the browser tests."""
    from pipeline.config import parse_config
    from pipeline.runner import build_run

    store_dir = tmp_path_factory.mktemp("browser-store")
    build_run(
        parse_config(tiny_config(evaluation={"corruptions": ["gaussian_noise", "fog"], "severities": [3]})), store_dir
    )
    return store_dir


def without_bits(run_dir: Path) -> Path:
    """The run as another tool may write it: evaluations.parquet without correct_bits, so the
    dashboard's first brush has to scan the samples (in a background job where one can run)."""
    import pyarrow.parquet as pq

    from pipeline import store

    evals = pq.read_table(run_dir / store.EVALUATIONS)
    pq.write_table(evals.drop_columns(["correct_bits"]), run_dir / store.EVALUATIONS)
    return run_dir


HOSTILE_NAMES = ["<!--<script>", "</script><script>document.title='pwned'</script>", "a&b>c"]


@pytest.fixture(scope="session")
def hostile_store(tiny_run, tmp_path_factory) -> Path:
    """A copy of the tiny run whose first class names are HTML that would end or swallow a script block."""
    store_dir = tmp_path_factory.mktemp("hostile")
    shutil.copytree(tiny_run, store_dir / "tiny")
    meta_path = store_dir / "tiny" / "run.json"
    meta = json.loads(meta_path.read_text())
    meta["class_names"][: len(HOSTILE_NAMES)] = HOSTILE_NAMES
    meta_path.write_text(json.dumps(meta))
    return store_dir


@pytest.fixture(scope="session")
def two_run_store(tmp_path_factory: pytest.TempPathFactory, browser_store: Path) -> Path:
    """The browser store's "tiny" run and a small second run ("other") whose models have other ids."""
    import shutil

    from pipeline.config import parse_config
    from pipeline.runner import build_run

    store_dir = tmp_path_factory.mktemp("two-runs")
    shutil.copytree(browser_store / "tiny", store_dir / "tiny")
    cfg = tiny_config(
        name="other",
        dataset={"name": "digits", "train_limit": 200, "test_limit": 60},
        models=[{"arch": "digits_cnn", "id": "other-net"}],
        train={"epochs": 1, "batch_size": 64, "lr": 0.05},
        prune=[{"method": "magnitude", "sparsity": 0.5}],
    )
    build_run(parse_config(cfg), store_dir)
    return store_dir


SENSITIVITY_CONFIG: dict[str, Any] = {
    "name": "sens",
    "dataset": {"name": "digits", "train_limit": 300, "test_limit": 90},
    "models": [{"arch": "digits_cnn", "seeds": [0, 1, 2]}],
    "train": {"epochs": 2, "batch_size": 64, "lr": 0.05},
    "prune": [{"method": "magnitude", "sparsity": 0.7, "seeds": [0, 1, 2]}, {"method": "random", "sparsity": 0.5}],
    "sensitivity": [{"method": "magnitude", "sparsity": [0.5, 0.9]}],
    "evaluation": {"batch_size": 256, "corruptions": ["fog"], "severities": [3]},
}


@pytest.fixture(scope="session")
def sensitivity_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with run "sens": three seeds of the dense and of one pruned model, one model of one
    seed, and a per-layer sensitivity study (clean only) of the seed-0 dense model."""
    from pipeline.config import parse_config
    from pipeline.runner import build_run

    store_dir = tmp_path_factory.mktemp("sensitivity-store")
    build_run(parse_config(tiny_config(**SENSITIVITY_CONFIG)), store_dir)
    return store_dir


ATTRIBUTION = {"methods": ["occlusion", "integrated_gradients", "gradcam"], "per_class": 1, "top_flips": 4}


@pytest.fixture(scope="session")
def attribution_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small run ("tiny") with attribution maps of every method for a dense model and two pruned children."""
    from pipeline.config import parse_config
    from pipeline.runner import build_run

    store_dir = tmp_path_factory.mktemp("attribution-store")
    cfg = tiny_config(
        prune=[{"method": "magnitude", "sparsity": [0.5, 0.9]}], attribution=ATTRIBUTION, execution={"threads": 1}
    )
    build_run(parse_config(cfg), store_dir)
    return store_dir


MANY_CLASSES = 1000  # issue 14: a run of 1000 classes, end to end


def write_imagefolder(root: Path, classes: int, per_class: dict[str, int], size: int = 8) -> Path:
    """An imagefolder of `classes` tiny grey classes (`per_class` images in each split), each class a
    fixed random pattern plus noise, so that a model can learn a little of it."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    patterns = rng.integers(0, 256, (classes, size, size))
    for split, n in per_class.items():
        for c in range(classes):
            folder = root / split / f"c{c:04d}"
            folder.mkdir(parents=True)
            for i in range(n):
                noisy = np.clip(patterns[c] + rng.normal(0, 24, (size, size)), 0, 255).astype(np.uint8)
                Image.fromarray(noisy).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="session")
def many_classes_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with one run ("many") of an imagefolder of 1000 tiny classes: one dense and one pruned
    digits_cnn, clean and one corruption, so corrupted rows keep their k nearest classes."""
    from pipeline.config import parse_config
    from pipeline.runner import build_run

    folder = write_imagefolder(tmp_path_factory.mktemp("folder"), MANY_CLASSES, {"train": 1, "test": 2})
    store_dir = tmp_path_factory.mktemp("many-store")
    cfg = tiny_config(
        name="many",
        dataset={"name": "imagefolder", "root": str(folder)},
        train={"epochs": 1, "batch_size": 256, "lr": 0.05},
        prune=[{"method": ["magnitude"], "sparsity": [0.5], "finetune_epochs": [0]}],
        evaluation={"corruptions": ["gaussian_noise"], "severities": [3], "nearest_k": 5},
    )
    build_run(parse_config(cfg), store_dir)
    return store_dir
