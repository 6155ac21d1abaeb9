"""The pruning suite inside real runs: MPT from random init, models pruned elsewhere, the API."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from torch import nn

from pipeline import store
from pipeline.config import parse_config
from pipeline.errors import PruneScopeError
from pipeline.models import build_model
from pipeline.runner import build_run
from tests.conftest import tiny_config


@pytest.fixture(scope="module")
def mpt_run(tmp_path_factory) -> Path:
    cfg = tiny_config(
        dataset={"name": "digits"},
        train={"epochs": 1},
        mpt={"epochs": 10},
        prune=[
            {"method": "mpt", "sparsity": 0.5},
            {"method": "mpt", "sparsity": 0.5, "scope": "layer", "last_layer_dense": True},
        ],
    )
    return build_run(parse_config(cfg), tmp_path_factory.mktemp("mpt")).run_dir


def test_mpt_from_random_init_learns_digits(mpt_run):
    models = pq.read_table(mpt_run / store.MODELS).to_pandas().set_index("model_id")
    row = models.loc["digits_cnn-mpt-global-oneshot-s50-ft0"]
    assert row["init"] == "random" and row["method"] == "mpt"
    assert row["clean_accuracy"] >= 0.85, row["clean_accuracy"]
    assert abs(row["sparsity"] - 0.5) < 1e-3


def test_mpt_weights_are_binary_per_layer(mpt_run):
    state = torch.load(mpt_run / "checkpoints" / "digits_cnn-mpt-global-oneshot-s50-ft0.pt", weights_only=True)
    for name in ("0", "2", "6", "8"):
        values = torch.unique(state[f"{name}.weight"].abs())
        assert len(values) == 2 and values[0] == 0, (name, values[:5])  # {−α, 0, +α}
        assert bool((state[f"{name}.bias"] == 0).all())


def test_mpt_last_layer_dense_keeps_a_trained_head(mpt_run):
    state = torch.load(mpt_run / "checkpoints" / "digits_cnn-mpt-layer-oneshot-s50-ft0-lld.pt", weights_only=True)
    assert len(torch.unique(state["8.weight"])) > 100  # a real dense head
    for name in ("0", "2", "6"):
        w = state[f"{name}.weight"]
        assert abs(float((w == 0).float().mean()) - 0.5) < 1e-3  # per-layer scope


def test_model_pruned_elsewhere_and_user_import(tmp_path, user_nets):
    torch.manual_seed(0)
    dense = build_model(None, "usernets:make", {}, 1, (8, 8), 10)
    torch.save(dense.state_dict(), tmp_path / "dense.pt")
    with torch.no_grad():
        w = dense[1].weight
        w[w.abs() < w.abs().median()] = 0  # "our lab's pruning": half of the first layer
    torch.save(dense.state_dict(), tmp_path / "ours.pt")
    cfg = tiny_config(
        models=[
            {"id": "mlp", "import": "usernets:make", "checkpoint": str(tmp_path / "dense.pt")},
            {
                "id": "mlp-ours",
                "import": "usernets:make",
                "checkpoint": str(tmp_path / "ours.pt"),
                "parent": "mlp",
                "method": "lab_prune",
            },
        ],
        prune=[],
    )
    run = build_run(parse_config(cfg), tmp_path / "store").run_dir
    assert store.validate_run(run) == []
    models = pq.read_table(run / store.MODELS).to_pandas().set_index("model_id")
    assert models.loc["mlp-ours", "parent_id"] == "mlp"  # user ids are kept as written
    assert models.loc["mlp-ours", "method"] == "lab_prune" and models.loc["mlp-ours", "init"] == "external"
    n_first, n_all = 64 * 32, 64 * 32 + 32 * 10
    assert models.loc["mlp-ours", "sparsity"] == pytest.approx((n_first // 2) / n_all, abs=2 / n_all)


def test_checkpoint_that_does_not_fit_is_a_clear_error(tmp_path):
    torch.save(build_model("lenet5", None, {}, 1, (8, 8), 10).state_dict(), tmp_path / "lenet.pt")
    cfg = tiny_config(models=[{"arch": "digits_cnn", "checkpoint": str(tmp_path / "lenet.pt")}], prune=[])
    with pytest.raises(PruneScopeError, match="does not fit the architecture"):
        build_run(parse_config(cfg), tmp_path / "store")


def test_analyze_api_for_notebook_models(tmp_path):
    import pipeline

    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    pruned = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    pruned.load_state_dict(net.state_dict())
    with torch.no_grad():
        pruned[1].weight[:, ::2] = 0
    run = pipeline.analyze(
        {"net": net, "half": pruned}, store=tmp_path, run="nb", parent="net", test_limit=50, device="cpu"
    )
    assert store.validate_run(run) == []
    models = pq.read_table(run / store.MODELS).to_pandas().set_index("model_id")
    assert set(models.index) == {"net", "half"}
    assert models.loc["half", "sparsity"] == pytest.approx(512 / (1024 + 160))
    again = pipeline.analyze(
        {"net": net, "half": pruned}, store=tmp_path, run="nb", parent="net", test_limit=50, device="cpu"
    )
    assert again == run  # same weights: the run is resumed, not refused
    with pytest.raises(PruneScopeError, match="not an nn.Module"):
        pipeline.analyze({"x": np.zeros(3)}, store=tmp_path, run="nb2")
