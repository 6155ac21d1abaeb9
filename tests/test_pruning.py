"""Every registered pruning method held to one contract, and magnitude against torch's own."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
import torch
from torch.nn.utils import prune as torch_prune

from pipeline.config import FinetuneConfig, PruneSpec
from pipeline.datasets import load_dataset
from pipeline.errors import PruneScopeError
from pipeline.models import build_model, prunable_layers
from pipeline.pruning import (
    PRUNERS,
    PruneContext,
    apply_masks,
    current_masks,
    default_exclusions,
    group_alive,
    make_permanent,
    register_pruner,
    select_layers,
)
from pipeline.store.methods import METHODS, facts
from pipeline.training import Normalizer, finetune


def small_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("lenet5", None, {}, 1, (8, 8), 10)


DIGITS = load_dataset("digits", train_limit=128)
NORM = Normalizer((0.5,), (0.3,))


def context(model, layers, seed: int = 0) -> PruneContext:
    """The full context every method may use: generator, model, leaf parameters, batches."""

    def batches():
        for lo in range(0, 128, 64):
            yield (
                NORM(DIGITS.train_images[lo : lo + 64], torch.device("cpu")),
                torch.as_tensor(DIGITS.train_labels[lo : lo + 64]),
            )

    params = [getattr(m, "weight_orig", m.weight) for _, m in layers]
    return PruneContext(torch.Generator().manual_seed(seed), model, params, batches)


def masks_for(method: str, scope: str, amount: float, seed: int = 0, model=None):
    model = model or small_model()
    cls = PRUNERS.get(method)
    layers = select_layers(model, default_exclusions([n for n, _ in prunable_layers(model)], cls))
    pruner = cls(amount, scope)
    return model, layers, pruner.compute_mask([m.weight for _, m in layers], context(model, layers, seed))


def removed_units(mask: torch.Tensor, group_dim: int | None) -> tuple[int, int]:
    """(removed, total) weights, or groups for a structured method."""
    if group_dim is None:
        return int((mask == 0).sum()), mask.numel()
    alive = group_alive(mask, group_dim)
    return int((alive == 0).sum()), alive.numel()


@pytest.mark.parametrize("method", PRUNERS.names())
@pytest.mark.parametrize("scope", ["global", "layer"])
@pytest.mark.parametrize("amount", [0.1, 0.5, 0.93])
def test_contract_sparsity_binary_deterministic(method, scope, amount):
    assert facts(method) is METHODS[method]  # the label and colour the dashboard shows
    model, layers, masks = masks_for(method, scope, amount)
    group_dim = PRUNERS.get(method).group_dim
    for mask, (_, m) in zip(masks, layers):
        assert mask.shape == m.weight.shape
        assert set(mask.unique().tolist()) <= {0.0, 1.0}
    counts = [removed_units(m, group_dim) for m in masks]
    if scope == "global":
        assert abs(sum(r for r, _ in counts) - amount * sum(n for _, n in counts)) <= 1
    else:
        for removed, total in counts:
            assert abs(removed - amount * total) <= 1
    _, _, again = masks_for(method, scope, amount)
    assert all(torch.equal(a, b) for a, b in zip(masks, again))
    apply_masks(layers, masks)
    make_permanent(model)
    if group_dim is None:
        n_w = sum(m.weight.numel() for _, m in layers)
        zeros = sum(int((m.weight == 0).sum()) for _, m in layers)
        assert abs(zeros - amount * n_w) <= 1


@pytest.mark.parametrize("method", PRUNERS.names())
def test_zeros_survive_finetuning_and_iterating(method):
    model = small_model()
    cls = PRUNERS.get(method)
    layers = select_layers(model, default_exclusions([n for n, _ in prunable_layers(model)], cls))
    masks = cls(0.5, "global").compute_mask([m.weight for _, m in layers], context(model, layers))
    apply_masks(layers, masks)
    finetune(
        model, DIGITS.train_images, DIGITS.train_labels, NORM, torch.device("cpu"), FinetuneConfig(lr=0.1), 1, 0, "ft"
    )
    second = cls(0.75, "global").compute_mask(
        [m.weight for _, m in layers], context(model, layers), current_masks(layers)
    )
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


@pytest.mark.parametrize("method", PRUNERS.names())
def test_contract_a_method_carries_its_facts_and_config_keys(method):
    cls = PRUNERS.get(method)
    assert cls.facts is METHODS[method] is facts(method)  # what the dashboard shows, torch-free
    assert cls.facts.label and cls.facts.short and re.fullmatch("#[0-9A-Fa-f]{6}", cls.facts.color)
    assert set(cls.config_keys) <= {f.name for f in dataclasses.fields(PruneSpec)}, "its keys are [[prune]] keys"


def test_registry_holds_the_six_methods():
    assert PRUNERS.names() == ["channel", "filter", "magnitude", "mpt", "random", "taylor"]


def test_a_method_without_facts_cannot_register():
    with pytest.raises(ValueError, match="no entry in pipeline.store.methods.METHODS"):
        register_pruner("unlisted")


def test_structured_masks_remove_whole_channels():
    for method, dim in (("filter", 0), ("channel", 1)):
        _, layers, masks = masks_for(method, "layer", 0.5)
        for mask in masks:
            other = [d for d in range(mask.ndim) if d != dim]
            per_group = mask.amin(dim=other), mask.amax(dim=other)
            assert torch.equal(*per_group)  # each group is all kept or all removed
    names = [n for n, _ in prunable_layers(small_model())]
    assert default_exclusions(names, PRUNERS.get("filter")) == ["11"]  # the classifier's outputs are classes
    assert default_exclusions(names, PRUNERS.get("channel")) == ["0"]  # the image channels


def test_taylor_ranks_like_the_measured_loss_change():
    """(g·w)² ranks single weights like |L(w without w_i) − L(w)| measured by removing each one."""
    from scipy.stats import spearmanr

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 12), torch.nn.Tanh(), torch.nn.Linear(12, 10))
    x = NORM(DIGITS.train_images[:128], torch.device("cpu"))
    y = torch.as_tensor(DIGITS.train_labels[:128])
    loss_fn = torch.nn.CrossEntropyLoss(reduction="sum")
    layers = select_layers(model)
    ctx = PruneContext(torch.Generator(), model, [m.weight for _, m in layers], lambda: [(x, y)])
    scores = PRUNERS.get("taylor")(0.5).importance([m.weight for _, m in layers], ctx)
    w = layers[0][1].weight
    with torch.no_grad():
        base = float(loss_fn(model(x), y))
        picks = torch.randperm(w.numel(), generator=torch.Generator().manual_seed(0))[:150]
        measured = []
        for i in picks.tolist():
            old = w.view(-1)[i].item()
            w.view(-1)[i] = 0.0
            measured.append(abs(float(loss_fn(model(x), y)) - base))
            w.view(-1)[i] = old
    rho = spearmanr(scores[0].reshape(-1)[picks].numpy(), np.asarray(measured)).statistic
    assert rho > 0.9, rho


def test_normalizer_gives_contiguous_nchw_floats():
    """Convolutions get plain NCHW memory: a channels-last strided input of a few channels hung
    oneDNN (resnet18_cifar at width 0.03 built after a wider one)."""
    images = np.arange(2 * 4 * 5 * 3, dtype=np.uint8).reshape(2, 4, 5, 3)
    x = Normalizer((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))(images, torch.device("cpu"))
    assert x.shape == (2, 3, 4, 5) and x.is_contiguous()
    assert torch.allclose(x[1, 2], (torch.as_tensor(images[1, :, :, 2]).float() / 255 - 0.5) / 0.25)
