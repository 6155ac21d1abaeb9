"""Pruning methods: one registered class each, with one `compute_mask` (like torch.nn.utils.prune).

A method scores the weights of the prunable layers; `compute_mask` removes the lowest-scored
fraction `amount`, either over all layers at once (`scope="global"`) or in each layer
(`scope="layer"`). The masks are applied with `torch.nn.utils.prune`, so a pruned model is
an ordinary PyTorch model once `make_permanent` has folded them into the weights.
"""

from __future__ import annotations

import fnmatch
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Sequence

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from pipeline.errors import PruneScopeError
from pipeline.models import prunable_layers
from pipeline.registry import Registry

SCOPES = ("global", "layer")


@dataclass
class PruneContext:
    """What a method may need beyond the weights: a seeded generator (and later, data)."""

    generator: torch.Generator


class PruningMethod(ABC):
    """Base class: subclasses define `importance`; `compute_mask` is shared.

    Args:
        amount: fraction of the weights to remove, in [0, 1).
        scope: "global" (one threshold over all layers) or "layer" (the fraction in each layer).
    """

    name: ClassVar[str]

    def __init__(self, amount: float, scope: str = "global") -> None:
        if not 0.0 <= float(amount) < 1.0:
            raise PruneScopeError(f"sparsity {amount} is outside [0, 1)", "give the fraction of weights to remove, e.g. 0.5")
        if scope not in SCOPES:
            raise PruneScopeError(f"unknown pruning scope {scope!r}", f"use one of: {', '.join(SCOPES)}")
        self.amount = float(amount)
        self.scope = scope

    @abstractmethod
    def importance(self, weights: Sequence[torch.Tensor], ctx: PruneContext) -> list[torch.Tensor]:
        """One score tensor per weight, of the weight's shape; low scores are removed first."""

    def compute_mask(
        self, weights: Sequence[torch.Tensor], ctx: PruneContext, default_masks: Sequence[torch.Tensor] | None = None
    ) -> list[torch.Tensor]:
        """Binary keep-masks (1 keep, 0 remove), one per weight, of the weights' shapes.

        Weights already removed by `default_masks` are removed first, so iterative pruning
        only ever adds zeros. The number removed is `round(amount · n)` over all weights
        (global) or in each weight (layer), as `torch.nn.utils.prune` counts it.
        """
        masks = [torch.ones_like(w) for w in weights] if default_masks is None else [m.detach().clone() for m in default_masks]
        scores = [s.detach().to(torch.float32).masked_fill(m == 0, -torch.inf) for s, m in zip(self.importance(weights, ctx), masks)]
        if self.scope == "global":
            flat = torch.cat([s.reshape(-1) for s in scores])
            drop = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
            drop[_lowest(flat, round(self.amount * flat.numel()))] = True
            offset = 0
            for mask in masks:
                mask.view(-1)[drop[offset : offset + mask.numel()]] = 0
                offset += mask.numel()
        else:
            for s, mask in zip(scores, masks):
                mask.view(-1)[_lowest(s.reshape(-1), round(self.amount * s.numel()))] = 0
        return masks


def _lowest(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the k lowest scores (topk, as torch.nn.utils.prune selects them)."""
    if k == 0:
        return torch.empty(0, dtype=torch.long, device=scores.device)
    return torch.topk(scores, k=k, largest=False).indices


PRUNERS: Registry[type[PruningMethod]] = Registry("pruning method")


def register_pruner(name: str):
    """Class decorator: register a PruningMethod subclass under `name`."""

    def deco(cls: type[PruningMethod]) -> type[PruningMethod]:
        cls.name = name
        return PRUNERS.register(name)(cls)

    return deco


@register_pruner("random")
class RandomPruning(PruningMethod):
    """Remove a uniformly random fraction of the weights (seeded)."""

    def importance(self, weights: Sequence[torch.Tensor], ctx: PruneContext) -> list[torch.Tensor]:
        return [torch.rand(w.shape, generator=ctx.generator).to(w.device) for w in weights]


@register_pruner("magnitude")
class MagnitudePruning(PruningMethod):
    """Remove the weights of smallest |w| (L1 unstructured)."""

    def importance(self, weights: Sequence[torch.Tensor], ctx: PruneContext) -> list[torch.Tensor]:
        return [w.detach().abs() for w in weights]


def select_layers(model: nn.Module, exclude: Sequence[str] = ()) -> list[tuple[str, nn.Module]]:
    """The prunable layers (Conv2d, Linear) whose names match none of the `exclude` patterns."""
    layers = [(n, m) for n, m in prunable_layers(model) if not any(fnmatch.fnmatchcase(n, p) for p in exclude)]
    if not layers:
        raise PruneScopeError(f"no prunable layer is left after exclude={list(exclude)}", "loosen the exclude patterns")
    return layers


def current_masks(layers: Sequence[tuple[str, nn.Module]]) -> list[torch.Tensor]:
    """The masks already applied to `layers` (all ones where a layer is not pruned yet)."""
    return [m.weight_mask.detach().clone() if hasattr(m, "weight_mask") else torch.ones_like(m.weight) for _, m in layers]


def apply_masks(layers: Sequence[tuple[str, nn.Module]], masks: Sequence[torch.Tensor]) -> None:
    """Attach masks through torch.nn.utils.prune (re-parametrising `weight`), replacing older ones."""
    for (_, module), mask in zip(layers, masks):
        if torch_prune.is_pruned(module):
            torch_prune.remove(module, "weight")
        torch_prune.custom_from_mask(module, "weight", mask)


def make_permanent(model: nn.Module) -> None:
    """Fold every pruning mask into its weight, leaving a plain model with exact zeros."""
    for module in model.modules():
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, torch_prune.BasePruningMethod):
                torch_prune.remove(module, hook._tensor_name)


def sparsity(model: nn.Module) -> float:
    """Fraction of zero weights over all prunable layers of the model (measured, not requested)."""
    weights = [m.weight.detach() for _, m in prunable_layers(model)]
    total = sum(w.numel() for w in weights)
    return float(sum(int((w == 0).sum()) for w in weights) / total) if total else 0.0
