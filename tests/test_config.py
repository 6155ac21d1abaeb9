"""Config validation: unknown keys and names are errors that list the known ones."""

from __future__ import annotations

import pytest

from pipeline.config import load_config, parse_config
from pipeline.errors import PruneScopeError
from tests.conftest import tiny_config


def test_demo_config_parses():
    cfg = load_config("configs/demo.toml")
    assert cfg.name == "demo" and cfg.dataset.name == "digits"
    assert {p.method for p in cfg.prune} == {"random", "magnitude", "taylor", "filter", "channel", "mpt"}
    assert sorted({p.sparsity for p in cfg.prune}) == [0.1, 0.3, 0.5, 0.7, 0.9]
    assert {p.finetune_epochs for p in cfg.prune} == {0, 1, 2}
    assert {p.schedule for p in cfg.prune if p.method == "magnitude"} == {"oneshot", "iterative"}
    assert sorted(p.sparsity for p in cfg.prune if p.method == "mpt") == [0.5, 0.9]


def test_grid_expansion():
    cfg = parse_config(tiny_config())
    assert len(cfg.prune) == 2 * 2 * 2
    ids = {p.model_id("digits_cnn") for p in cfg.prune}
    assert "digits_cnn-magnitude-global-oneshot-s50-ft1" in ids


@pytest.mark.parametrize(
    "change,match",
    [
        ({"colour": "red"}, r"unknown key\(s\) \['colour'\].*known keys"),
        ({"dataset": {"name": "imagenet"}}, "unknown dataset 'imagenet'.*cifar10, digits, imagefolder, mnist"),
        ({"models": [{"arch": "gpt"}]}, "unknown architecture 'gpt'.*digits_cnn"),
        ({"models": [{"arch": "lenet5", "import": "a:b"}]}, "exactly one of"),
        ({"prune": [{"method": "psychic", "sparsity": 0.5}]}, "unknown pruning method 'psychic'.*magnitude"),
        ({"prune": [{"method": "random", "sparsity": 1.5}]}, "outside"),
        ({"prune": [{"method": "random", "sparsity": 0.5, "schedule": "oneshot", "steps": 3}]}, "steps"),
        ({"train": {"epochs": "ten"}}, "wrong type"),
        ({"evaluation": {"severities": [0, 6]}}, "severities"),
        ({"name": "../escape"}, "run name"),
        ({"prune": [{"method": "mpt", "sparsity": 0.5, "finetune_epochs": 2}]}, "random initialisation"),
        ({"prune": [{"method": "mpt", "sparsity": 0.5, "init": "ones"}]}, "unknown mpt init"),
        ({"prune": [{"method": "magnitude", "sparsity": 0.5, "taylor_batches": 4}]}, "only taylor reads"),
        ({"prune": [{"method": "taylor", "sparsity": 0.5, "last_layer_dense": True}]}, "only mpt reads"),
        (
            {"models": [{"arch": "lenet5"}, {"arch": "lenet5", "id": "x", "parent": "y", "checkpoint": "a.pt"}]},
            "parent 'y'",
        ),
        ({"models": [{"arch": "lenet5"}, {"arch": "lenet5", "id": "x", "parent": "lenet5"}]}, "no checkpoint"),
    ],
)
def test_bad_configs(change, match):
    with pytest.raises(PruneScopeError, match=f"(?s){match}"):
        parse_config(tiny_config(**change))


def test_a_method_key_applies_to_the_methods_of_its_entry_that_read_it():
    cfg = parse_config(tiny_config(prune=[{"method": ["magnitude", "taylor"], "sparsity": 0.5, "taylor_batches": 2}]))
    assert {p.taylor_batches for p in cfg.prune} == {2}


def test_bad_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(PruneScopeError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(PruneScopeError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
