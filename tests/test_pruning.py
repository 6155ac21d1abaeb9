"""Every registered pruning method held to one contract, and magnitude against torch's own."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn.utils import prune as torch_prune

from pipeline.datasets import load_dataset
from pipeline.errors import PruneScopeError
from pipeline.models import build_model
from pipeline.pruning import PRUNERS, PruneContext, apply_masks, current_masks, make_permanent, select_layers, sparsity
from pipeline.training import Normalizer, finetune
from pipeline.config import FinetuneConfig


def small_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("lenet5", None, {}, 1, (8, 8), 10)


def masks_for(method: str, scope: str, amount: float, seed: int = 0, model=None):
    model = model or small_model()
    layers = select_layers(model)
    pruner = PRUNERS.get(method)(amount, scope)
    return model, layers, pruner.compute_mask([m.weight for _, m in layers], PruneContext(torch.Generator().manual_seed(seed)))


@pytest.mark.parametrize("method", PRUNERS.names())
@pytest.mark.parametrize("scope", ["global", "layer"])
@pytest.mark.parametrize("amount", [0.1, 0.5, 0.93])
def test_contract_sparsity_binary_deterministic(method, scope, amount):
    model, layers, masks = masks_for(method, scope, amount)
    for mask, (_, m) in zip(masks, layers):
        assert mask.shape == m.weight.shape
        assert set(mask.unique().tolist()) <= {0.0, 1.0}
    if scope == "global":
        n = sum(m.numel() for m in masks)
        assert abs(sum(int((m == 0).sum()) for m in masks) - amount * n) <= 1
    else:
        for mask in masks:
            assert abs(int((mask == 0).sum()) - amount * mask.numel()) <= 1
    _, _, again = masks_for(method, scope, amount)
    assert all(torch.equal(a, b) for a, b in zip(masks, again))
    apply_masks(layers, masks)
    make_permanent(model)
    n_w = sum(m.weight.numel() for _, m in layers)
    assert abs(sparsity(model) - amount) <= 1.5 / n_w + 1e-9


@pytest.mark.parametrize("method", PRUNERS.names())
def test_zeros_survive_finetuning_and_iterating(method):
    data = load_dataset("digits", train_limit=128)
    model = small_model()
    layers = select_layers(model)
    gen = torch.Generator().manual_seed(0)
    masks = PRUNERS.get(method)(0.5, "global").compute_mask([m.weight for _, m in layers], PruneContext(gen))
    apply_masks(layers, masks)
    norm = Normalizer((0.5,), (0.3,))
    finetune(model, data.train_images, data.train_labels, norm, torch.device("cpu"), FinetuneConfig(lr=0.1), 1, 0, "ft")
    second = PRUNERS.get(method)(0.75, "global").compute_mask([m.weight for _, m in layers], PruneContext(gen), current_masks(layers))
    assert all(bool((b[a == 0] == 0).all()) for a, b in zip(masks, second))  # iterating only adds zeros
    apply_masks(layers, second)
    make_permanent(model)
    for (_, m), mask in zip(layers, second):
        assert bool((m.weight[mask == 0] == 0).all())
    assert not any(torch_prune.is_pruned(m) for _, m in layers)


def test_magnitude_global_equals_torch_global_unstructured():
    ours, layers, masks = masks_for("magnitude", "global", 0.6)
    ref = small_model()
    params = [(m, "weight") for _, m in select_layers(ref)]
    torch_prune.global_unstructured(params, pruning_method=torch_prune.L1Unstructured, amount=0.6)
    for mask, (module, _) in zip(masks, params):
        assert torch.equal(mask, module.weight_mask)


def test_magnitude_layer_equals_torch_l1_unstructured():
    ours, layers, masks = masks_for("magnitude", "layer", 0.37)
    ref = small_model()
    for mask, (_, module) in zip(masks, select_layers(ref)):
        torch_prune.l1_unstructured(module, "weight", amount=0.37)
        assert torch.equal(mask, module.weight_mask)


def test_exclude_patterns_and_bad_arguments():
    model = small_model()
    names = [n for n, _ in select_layers(model, exclude=["0"])]
    assert "0" not in names and names
    with pytest.raises(PruneScopeError, match="no prunable layer"):
        select_layers(model, exclude=["*"])
    with pytest.raises(PruneScopeError, match="outside"):
        PRUNERS.get("magnitude")(1.5)
    with pytest.raises(PruneScopeError, match="unknown pruning scope"):
        PRUNERS.get("magnitude")(0.5, "sideways")
    with pytest.raises(PruneScopeError, match="use one of"):
        PRUNERS.get("optimal_brain_surgeon")


def test_random_masks_differ_by_seed():
    _, _, a = masks_for("random", "global", 0.5, seed=1)
    _, _, b = masks_for("random", "global", 0.5, seed=2)
    assert not all(torch.equal(x, y) for x, y in zip(a, b))
    assert np.isclose(sum(int((m == 0).sum()) for m in a), sum(int((m == 0).sum()) for m in b))
