"""Bring your own model (issue #13): the README walk-through as written, models pruned with
torch.nn.utils.prune (state_dicts and live modules), structured pruning, and the warnings."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from torch import nn
from torch.nn.utils import prune

import pipeline
from pipeline import store
from pipeline.errors import PruneScopeError
from pipeline.store import run_table1

REPO = Path(__file__).resolve().parents[1]


def readme_section(title: str) -> str:
    text = (REPO / "README.md").read_text()
    start = text.index(f"### {title}\n")
    return text[start : text.index("\n### ", start + 1)]


def test_readme_bring_your_own_model_walkthrough(tmp_path):
    section = readme_section("Bring your own model")
    blocks = re.findall(r"```(\w+)\n(.*?)```", section, re.S)
    files = {m.group(1): body for _, body in blocks if (m := re.match(r"# file: (\S+)\n", body))}
    assert set(files) == {"byo/mynets.py", "byo/train_elsewhere.py", "byo/byo.toml"}
    for name, body in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(body)
    commands = next(body for lang, body in blocks if lang == "bash").strip().splitlines()
    assert commands == [
        "cd byo && python train_elsewhere.py && cd ..",
        "python -m pipeline run byo/byo.toml",
        "python -m pipeline report cache/store/byo",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
        proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr
        return proc

    trained = run([sys.executable, "train_elsewhere.py"], tmp_path / "byo")
    reported = float(trained.stdout.split()[-1])
    store_dir = tmp_path / "cache" / "store"
    built = run([sys.executable, "-m", "pipeline", "run", "byo/byo.toml", "--store", str(store_dir)], tmp_path)
    assert "warning" not in built.stderr, built.stderr  # accuracy as reported, nothing at chance
    report = run([sys.executable, "-m", "pipeline", "report", str(store_dir / "byo")], tmp_path)
    assert "Table 1" in report.stdout and "mlp-narrow" in report.stdout

    run_dir = store_dir / "byo"
    assert store.validate_run(run_dir) == []
    models = pq.read_table(run_dir / store.MODELS).to_pandas().set_index("model_id")
    assert set(models.index) == {"mlp", "mlp-l1", "mlp-narrow", "mlp-magnitude-global-oneshot-s80-ft0"}
    assert models.loc["mlp", "clean_accuracy"] == pytest.approx(reported, abs=6e-4)  # printed to 3 places
    assert models.loc["mlp-l1", "method"] == "torch_l1" and models.loc["mlp-l1", "parent_id"] == "mlp"

    # masks folded in exactly as prune.remove does; sparsity measured from the masks
    state = torch.load(tmp_path / "byo" / "mlp_l1.pt", weights_only=True)
    sys.path.insert(0, str(tmp_path / "byo"))
    try:
        from mynets import make
    finally:
        sys.path.remove(str(tmp_path / "byo"))
        sys.modules.pop("mynets", None)
    live = make()
    for i in (1, 3):
        prune.identity(live[i], "weight")
    live.load_state_dict(state)
    for i in (1, 3):
        prune.remove(live[i], "weight")
    saved = torch.load(run_dir / models.loc["mlp-l1", "checkpoint"], weights_only=True)
    for key, value in live.state_dict().items():
        assert torch.equal(saved[key], value), key
    masks = [state["1.weight_mask"], state["3.weight_mask"]]
    from_masks = sum(int((m == 0).sum()) for m in masks) / sum(m.numel() for m in masks)
    assert models.loc["mlp-l1", "sparsity"] == pytest.approx(from_masks) == pytest.approx(0.760, abs=5e-4)

    # structured: against the parent's prunable weights (64·64 + 64·10), parent's parameter count
    assert models.loc["mlp-narrow", "sparsity"] == pytest.approx(1 - (64 * 16 + 16 * 10) / (64 * 64 + 64 * 10))
    assert models.loc["mlp-narrow", "params_total"] == models.loc["mlp", "params_total"]
    assert models.loc["mlp-narrow", "params_nonzero"] < models.loc["mlp", "params_nonzero"] / 3


def mlp(width: int = 16) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, width), nn.ReLU(), nn.Linear(width, 10))


def test_analyze_takes_live_pruned_modules_with_a_label(tmp_path):
    torch.manual_seed(0)
    dense = mlp()
    pruned = mlp()
    pruned.load_state_dict(dense.state_dict())
    prune.l1_unstructured(pruned[1], "weight", amount=0.5)  # hooks attached, not removed
    mask = pruned[1].weight_mask.clone()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = pipeline.analyze(
            {"dense": dense, "pruned": pruned},
            parent="dense",
            method="torch_l1",
            dataset_options={"split_seed": 0, "test_fraction": 0.3},
            store=tmp_path,
            run="live",
            test_limit=40,
            device="cpu",
        )
    assert prune.is_pruned(pruned[1]) and torch.equal(pruned[1].weight_mask, mask)  # the caller's model is untouched
    models = pq.read_table(run / store.MODELS).to_pandas().set_index("model_id")
    assert set(models.index) == {"dense", "pruned"} and models.loc["pruned", "method"] == "torch_l1"
    total = 64 * 16 + 16 * 10
    assert models.loc["pruned", "sparsity"] == pytest.approx(int((mask == 0).sum()) / total)


def test_failed_load_leaves_no_run_and_the_hint_says_overwrite(tmp_path):
    wrong = nn.Sequential(nn.Flatten(), nn.Linear(100, 10))  # digits are 8×8 = 64 inputs
    with pytest.raises(PruneScopeError, match="fails on a batch"):
        pipeline.analyze({"wrong": wrong}, store=tmp_path, run="broken", test_limit=20, device="cpu")
    assert store.list_runs(tmp_path) == []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipeline.analyze({"m": mlp()}, store=tmp_path, run="nb", test_limit=20, device="cpu")
        with pytest.raises(PruneScopeError) as info:
            pipeline.analyze({"m": mlp()}, store=tmp_path, run="nb", test_limit=20, device="cpu")
        assert "overwrite=True" in info.value.fix and "--force" not in info.value.fix
        pipeline.analyze({"m": mlp()}, store=tmp_path, run="nb", test_limit=20, device="cpu", overwrite=True)


def test_chance_nan_and_overclaimed_models_are_flagged(tmp_path):
    torch.manual_seed(0)
    collapsed = mlp()
    with torch.no_grad():
        collapsed[3].bias[3] = 1e4  # predicts class 3 for everything
    broken = mlp()
    with torch.no_grad():
        broken[1].weight.fill_(float("nan"))
    claims = mlp()
    with pytest.warns(UserWarning) as record:
        run = pipeline.analyze(
            {"collapsed": collapsed, "broken": broken, "claims": claims},
            store=tmp_path,
            run="flags",
            test_limit=60,
            corruptions=["fog"],
            severities=[3],
            reported_accuracy={"claims": 0.95},
            device="cpu",
        )
    notes = [str(w.message) for w in record]
    assert any("model collapsed" in n and "at chance" in n and "Table 1 leaves it out" in n for n in notes), notes
    assert any("model broken" in n and "NaN" in n for n in notes), notes
    assert any("model claims" in n and "0.950 where it was trained" in n for n in notes), notes
    assert any("broken" in p.problem and "NaN" in p.problem for p in store.check_run(run))
    t1 = run_table1(run)
    assert t1.loc["collapsed", "note"].startswith("at chance") and t1.loc[["collapsed"], "angle"].isna().all()
    report = subprocess.run(
        [sys.executable, "-m", "pipeline", "report", str(run)], cwd=REPO, capture_output=True, text=True
    )
    assert "at chance" in report.stdout and "Warnings:" in report.stdout
