"""The study recipes of configs/: each parses, holds the seed paper's settings, and runs end to end
(shrunk with `--set`) on tiny data written in the real on-disk formats; and `--set` itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline import store
from pipeline.cli import main
from pipeline.config import apply_overrides, load_config
from pipeline.corruptions import CORRUPTION_NAMES
from pipeline.datasets import load_dataset
from pipeline.errors import PruneScopeError
from pipeline.plan import plan_run
from pipeline.units import RunContext
from tests.test_corruptions import write_official
from tests.test_datasets import make_cifar, make_mnist

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RECIPES = ("paper_cifar10", "paper_mnist", "structured_cifar10", "sweetspot_cifar10")


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.toml")), ids=lambda p: p.name)
def test_every_config_parses_and_plans(path, tmp_path):
    cfg = load_config(path)
    layers = RunContext(cfg, tmp_path).layer_names if cfg.sensitivity else None  # built models' layers
    plan = plan_run(cfg, layers)
    assert plan.models and plan.evalsets[0] == ("clean", 0)


def test_recipes_hold_the_papers_settings():
    paper = load_config(CONFIGS / "paper_cifar10.toml")
    assert paper.dataset.name == "cifar10"
    assert [m.arch for m in paper.models] == ["vgg16_cifar", "resnet18_cifar", "alexnet_cifar"]
    assert paper.train.epochs == 200
    assert {s.method for s in paper.prune} == {"random", "magnitude", "taylor", "mpt"}
    mag = {(s.sparsity, s.finetune_epochs) for s in paper.prune if s.method == "magnitude"}
    assert {(r, 0) for r in (0.1, 0.3, 0.5, 0.7)} <= mag and any(r == 0.99 and ft > 0 for r, ft in mag)
    assert 0.95 in {s.sparsity for s in paper.prune if s.method == "mpt"}
    assert set(paper.evaluation.corruptions) == set(CORRUPTION_NAMES) and len(CORRUPTION_NAMES) == 19
    assert paper.evaluation.severities == (1, 2, 3, 4, 5)

    mnist = load_config(CONFIGS / "paper_mnist.toml")
    assert (mnist.dataset.name, [m.arch for m in mnist.models]) == ("mnist", ["lenet5"])
    assert {(s.method, s.sparsity) for s in mnist.prune} == {(s.method, s.sparsity) for s in paper.prune}
    assert mnist.evaluation.corruptions == paper.evaluation.corruptions

    structured = load_config(CONFIGS / "structured_cifar10.toml")
    assert {s.method for s in structured.prune} == {"magnitude", "filter", "channel"}
    assert {s.schedule for s in structured.prune} == {"oneshot", "iterative"}
    assert structured.finetune.lr == 0.01 and max(s.finetune_epochs for s in structured.prune) == 50

    sweet = load_config(CONFIGS / "sweetspot_cifar10.toml")
    assert len({s.sparsity for s in sweet.prune}) >= 20 and len(sweet.models) == 3


# Each recipe shrunk to seconds: one training epoch, tiny networks (width 1/8), one sparsity per
# [[prune]] table, two corruptions at one severity. The recipe's models, methods, schedules and
# fine-tuning switches are all kept.
SMALL = ["device=cpu", "train.epochs=1", "train.batch_size=32", "finetune.batch_size=32", "evaluation.batch_size=64"]
SHRINK = {
    "paper_cifar10": [
        "models.kwargs={ width = 0.125 }",
        "mpt.epochs=1",
        "mpt.batch_size=32",
        "prune.1.sparsity=[0.5]",
        "prune.1.finetune_epochs=[0, 1]",
        "prune.2.finetune_epochs=1",
        "prune.3.sparsity=[0.95]",
        'evaluation.corruptions=["gaussian_noise", "fog"]',
        "evaluation.severities=[3]",
    ],
    "paper_mnist": [
        "mpt.epochs=1",
        "prune.1.sparsity=[0.5]",
        "prune.1.finetune_epochs=[0, 1]",
        "prune.2.finetune_epochs=1",
        "prune.3.sparsity=[0.95]",
        'evaluation.corruptions=["gaussian_noise", "fog"]',
        "evaluation.severities=[3]",
    ],
    "structured_cifar10": [
        "models.kwargs={ width = 0.125 }",
        "prune.sparsity=[0.5]",
        "prune.1.finetune_epochs=[0, 1]",
        "prune.2.steps=2",
        "prune.2.finetune_epochs=1",
    ],
    "sweetspot_cifar10": [
        "models.kwargs={ width = 0.125 }",
        "prune.sparsity=[0.5, 0.95]",
        "prune.finetune_epochs=[0, 1]",
        'evaluation.corruptions=["fog"]',
        "evaluation.severities=[1]",
    ],
}


def _run(recipe: str, data: Path, store_dir: Path, *extra: str) -> Path:
    sets = [f"dataset.root={data}", *SMALL, *SHRINK[recipe]]
    args = ["run", str(CONFIGS / f"{recipe}.toml"), "--store", str(store_dir), "--threads", "1", *extra]
    assert main(args + [a for s in sets for a in ("--set", s)]) == 0
    name = load_config(CONFIGS / f"{recipe}.toml").name
    return store_dir / name


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_runs_end_to_end_on_tiny_data(recipe, tmp_path, capsys):
    extra: tuple[str, ...] = ()
    if recipe == "paper_mnist":
        make_mnist(tmp_path / "data", n_train=40, n_test=12)
    else:
        make_cifar(tmp_path / "data", per_batch=8)
    if recipe == "paper_cifar10":  # the official CIFAR-10-C layout, read instead of generated
        test = load_dataset("cifar10", tmp_path / "data")
        write_official(tmp_path / "c10c", test.test_images, test.test_labels, ["gaussian_noise", "fog"])
        extra = ("--corrupted-root", str(tmp_path / "c10c"))
    run = _run(recipe, tmp_path / "data", tmp_path / "store", *extra)
    assert main(["validate", str(run)]) == 0
    assert "valid (store contract v1)" in capsys.readouterr().out
    cfg = load_config(CONFIGS / f"{recipe}.toml", extra[1] if extra else None, [f"dataset.root={tmp_path / 'data'}"])
    shrunk = plan_run(load_config(CONFIGS / f"{recipe}.toml", None, SMALL + SHRINK[recipe]))
    written = sorted(store.read_table(run / store.MODELS, ["model_id"]).column("model_id").to_pylist())
    assert written == sorted(m.model_id for m in shrunk.models)
    assert {m.base.arch for m in shrunk.models} == {m.arch for m in cfg.models}
    assert {m.spec.method for m in shrunk.models if m.spec} == {s.method for s in cfg.prune}
    if recipe == "paper_cifar10":
        assert main(["paper", str(run)]) == 0
        assert "The paper's claims on run paper-cifar10" in capsys.readouterr().out


def test_set_overrides_dotted_keys_and_entries(tmp_path):
    raw = {"name": "r", "train": {"epochs": 9}, "prune": [{"method": "random"}, {"method": "mpt"}]}
    out = apply_overrides(
        raw,
        [
            "train.epochs=1",
            "finetune.lr=1e-3",
            "prune.sparsity=[0.5, 0.9]",
            "prune.2.sparsity=0.95",
            "device=cpu",
            "evaluation.corruptions=all",
            f"dataset.root={Path('rel/data')}",
        ],
    )
    assert out["train"] == {"epochs": 1} and out["finetune"] == {"lr": 1e-3} and out["device"] == "cpu"
    assert [p["sparsity"] for p in out["prune"]] == [[0.5, 0.9], 0.95]
    assert out["evaluation"]["corruptions"] == "all"
    assert out["dataset"]["root"] == str(Path.cwd() / "rel" / "data")  # relative to the cwd, not the config
    assert raw["train"] == {"epochs": 9} and "sparsity" not in raw["prune"][0]  # the input is not changed


@pytest.mark.parametrize(
    "item,message",
    [
        ("train.epochz=1", "--set train.epochz: [train] has no key 'epochz'"),
        ("trian.epochs=1", "--set trian.epochs: the config has no key 'trian'"),
        ("prune.9.sparsity=0.5", "--set prune.9.sparsity: [[prune]] has no entry #9"),
        ("train.epochs=[1", "--set train.epochs: '[1' is not a TOML value"),
        ("train.epochs.x=1", "--set train.epochs.x: train.epochs is a value, not a table"),
        ("train.epochs", "--set 'train.epochs' is not KEY=VALUE"),
        ("train.lr=-1", "[train].lr = -1 must be positive"),
    ],
)
def test_bad_set_is_one_clear_line(item, message, capsys):
    with pytest.raises(PruneScopeError) as info:
        load_config(CONFIGS / "paper_cifar10.toml", None, [item])
    assert message in info.value.problem and "\n" not in info.value.problem
    assert main(["run", str(CONFIGS / "paper_cifar10.toml"), "--set", item]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and "Traceback" not in err


def test_set_changes_the_fingerprint():
    base = load_config(CONFIGS / "paper_mnist.toml")
    assert load_config(CONFIGS / "paper_mnist.toml", None, ["train.epochs=20"]).fingerprint() == base.fingerprint()
    assert load_config(CONFIGS / "paper_mnist.toml", None, ["train.epochs=1"]).fingerprint() != base.fingerprint()
    assert np.isclose(load_config(CONFIGS / "paper_mnist.toml", None, ["finetune.lr=0.5"]).finetune.lr, 0.5)
