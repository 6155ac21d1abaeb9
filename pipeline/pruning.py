"""Pruning methods: one registered class each, with one `compute_mask` (like torch.nn.utils.prune).

A method scores the weights of the prunable layers; `compute_mask` removes the lowest-scored
fraction `amount`, either over all layers at once (`scope="global"`) or in each layer
(`scope="layer"`). Unstructured methods score single weights; structured ones score groups
(whole output channels for `filter`, whole input channels for `channel`) and `amount` is
then the fraction of groups removed. The masks are applied with `torch.nn.utils.prune`, so
a pruned model is an ordinary PyTorch model once `make_permanent` has folded them in.

`mpt` (multi-prize lottery tickets) is not a mask on a trained model but a training
procedure from random initialisation; it lives in `pipeline.mpt` and is registered here
only by name, so configs and the store treat all methods alike.
"""

from __future__ import annotations

import fnmatch
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterable, Sequence

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from pipeline.errors import PruneScopeError
from pipeline.models import prunable_layers
from pipeline.registry import Registry
from pipeline.store.methods import METHODS, MethodFacts

SCOPES = ("global", "layer")


@dataclass
class PruneContext:
    """What a method may need beyond the weights.

    `generator` seeds random choices; `model`, `params` (the leaf parameters behind each
    pruned weight) and `batches` (training batches of normalised images and labels) serve
    data-driven methods such as `taylor`.
    """

    generator: torch.Generator
    model: nn.Module | None = None
    params: Sequence[torch.Tensor] = ()
    batches: Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]] | None = None


class PruningMethod(ABC):
    """Base class: subclasses define `importance`; `compute_mask` is shared.

    Args:
        amount: fraction of the weights to remove, in [0, 1).
        scope: "global" (one threshold over all layers) or "layer" (the fraction in each layer).
    """

    name: ClassVar[str]
    facts: ClassVar[MethodFacts]  # label, short label and colour (torch-free, in pipeline.store.methods)
    config_keys: ClassVar[tuple[str, ...]] = ()  # the [[prune]] keys only this method reads
    group_dim: ClassVar[int | None] = None  # None: single weights; 0: output channels; 1: input channels
    trains_from_scratch: ClassVar[bool] = False

    def __init__(self, amount: float, scope: str = "global") -> None:
        if not 0.0 <= float(amount) < 1.0:
            raise PruneScopeError(
                f"sparsity {amount} is outside [0, 1)", "give the fraction of weights to remove, e.g. 0.5"
            )
        if scope not in SCOPES:
            raise PruneScopeError(f"unknown pruning scope {scope!r}", f"use one of: {', '.join(SCOPES)}")
        self.amount = float(amount)
        self.scope = scope

    @abstractmethod
    def importance(self, weights: Sequence[torch.Tensor], ctx: PruneContext) -> list[torch.Tensor]:
        """One score tensor per weight: of the weight's shape, or (groups,) for structured
        methods; low scores are removed first."""

    def compute_mask(
        self, weights: Sequence[torch.Tensor], ctx: PruneContext, default_masks: Sequence[torch.Tensor] | None = None
    ) -> list[torch.Tensor]:
        """Binary keep-masks (1 keep, 0 remove), one per weight, of the weights' shapes.

        Weights (or groups) already removed by `default_masks` are removed first, so
        iterative pruning only ever adds zeros. The number removed is `round(amount · n)`
        over all layers (global) or in each layer (layer), as `torch.nn.utils.prune` counts
        it; n counts weights, or groups for structured methods.
        """
        masks = (
            [torch.ones_like(w) for w in weights]
            if default_masks is None
            else [m.detach().clone() for m in default_masks]
        )
        units = masks if self.group_dim is None else [group_alive(m, self.group_dim) for m in masks]
        scores = [
            s.detach().to(torch.float32).reshape(u.shape).masked_fill(u == 0, -torch.inf)
            for s, u in zip(self.importance(weights, ctx), units)
        ]
        keep = [u.clone() for u in units]
        if self.scope == "global":
            flat = torch.cat([s.reshape(-1) for s in scores])
            drop = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
            drop[_lowest(flat, round(self.amount * flat.numel()))] = True
            offset = 0
            for k in keep:
                k.view(-1)[drop[offset : offset + k.numel()]] = 0
                offset += k.numel()
        else:
            for s, k in zip(scores, keep):
                k.view(-1)[_lowest(s.reshape(-1), round(self.amount * s.numel()))] = 0
        if self.group_dim is None:
            return keep
        return [m * _broadcast(k, m.ndim, self.group_dim) for m, k in zip(masks, keep)]


def group_alive(mask: torch.Tensor, dim: int) -> torch.Tensor:
    """(groups,) 1 where a group along `dim` still has a kept weight, 0 where it is all removed."""
    other = [d for d in range(mask.ndim) if d != dim]
    return (mask.amax(dim=other) > 0).to(mask.dtype)


def _broadcast(keep: torch.Tensor, ndim: int, dim: int) -> torch.Tensor:
    shape = [1] * ndim
    shape[dim] = -1
    return keep.view(shape)


def _lowest(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the k lowest scores (topk, as torch.nn.utils.prune selects them)."""
    if k == 0:
        return torch.empty(0, dtype=torch.long, device=scores.device)
    return torch.topk(scores, k=k, largest=False).indices


PRUNERS: Registry[type[PruningMethod]] = Registry("pruning method")


def register_pruner(name: str):
    """Class decorator: register a PruningMethod subclass under `name`. Its facts (label and colour)
    are its entry in `pipeline.store.methods.METHODS` (torch-free, so the dashboard reads them too);
    the [[prune]] keys it alone reads are its `config_keys`."""
    if name not in METHODS:
        raise ValueError(
            f"pruning method {name!r} has no entry in pipeline.store.methods.METHODS (its label and colour)"
        )

    def deco(cls: type[PruningMethod]) -> type[PruningMethod]:
        cls.name = name
        cls.facts = METHODS[name]
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


@register_pruner("taylor")
class TaylorPruning(PruningMethod):
    """First-order Taylor (Molchanov et al.): remove the weights whose removal changes the loss least.

    Score (∂L/∂w · w)² per weight, summed over the training batches of `ctx.batches`
    (`taylor_batches` of them).
    """

    config_keys = ("taylor_batches",)

    def importance(self, weights: Sequence[torch.Tensor], ctx: PruneContext) -> list[torch.Tensor]:
        if ctx.model is None or ctx.batches is None or len(ctx.params) != len(weights):
            raise ValueError("taylor pruning needs the model, its parameters and training batches in the context")
        scores = [torch.zeros_like(w) for w in weights]
        loss_fn = nn.CrossEntropyLoss()
        ctx.model.eval()
        for x, y in ctx.batches():
            grads = torch.autograd.grad(loss_fn(ctx.model(x), y), list(ctx.params))
            for s, g, w in zip(scores, grads, weights):
                s += (g * w.detach()) ** 2
        return scores


class _L1Groups(PruningMethod):
    """Structured pruning by the L1 norm of each group.

    With global scope each layer's norms are divided by that layer's mean norm before they
    compete: raw norms grow with fan-in and shrink with the initialisation scale, and
    comparing them directly removes whole layers first (the reason torch.nn.utils.prune
    offers no global structured pruning).
    """

    def importance(self, weights: Sequence[torch.Tensor], ctx: PruneContext) -> list[torch.Tensor]:
        assert self.group_dim is not None
        out = []
        for w in weights:
            other = [d for d in range(w.ndim) if d != self.group_dim]
            l1 = w.detach().abs().sum(dim=other)
            out.append(l1 / l1.mean().clamp_min(1e-12) if self.scope == "global" else l1)
        return out


@register_pruner("filter")
class FilterPruning(_L1Groups):
    """Remove whole output channels (conv filters, linear output units) of smallest L1 norm.

    The final layer's outputs are the classes, so the default layer selection leaves the
    classifier out for this method.
    """

    group_dim = 0


@register_pruner("channel")
class ChannelPruning(_L1Groups):
    """Remove whole input channels ("connection sparsity") of smallest L1 norm.

    The first layer's inputs are the image channels, so the default layer selection leaves
    the first layer out for this method.
    """

    group_dim = 1


@register_pruner("mpt")
class MultiPrizeTicket(PruningMethod):
    """Multi-prize lottery ticket (biprop): trained from random initialisation, see `pipeline.mpt`.

    As a mask on given weights it keeps the largest |score|; the scores are learnt by
    `pipeline.mpt.train_mpt`, and `importance` returns them from `ctx.params`.
    """

    trains_from_scratch = True
    config_keys = ("init", "last_layer_dense")

    def importance(self, weights: Sequence[torch.Tensor], ctx: PruneContext) -> list[torch.Tensor]:
        if len(ctx.params) != len(weights):
            raise ValueError("mpt masks need the learnt scores as ctx.params")
        return [s.detach().abs() for s in ctx.params]


def default_exclusions(names: Sequence[str], method: type[PruningMethod]) -> list[str]:
    """Layers (of the prunable layer `names`, in module order) a structured method leaves out
    by default: the classifier's outputs for `filter`, the image channels of the first layer for `channel`."""
    names = list(names)
    if method.group_dim == 0:
        return names[-1:]
    if method.group_dim == 1:
        return names[:1]
    return []


def select_layers(model: nn.Module, exclude: Sequence[str] = ()) -> list[tuple[str, nn.Module]]:
    """The prunable layers (Conv2d, Linear) whose names match none of the `exclude` patterns."""
    layers = [(n, m) for n, m in prunable_layers(model) if not any(fnmatch.fnmatchcase(n, p) for p in exclude)]
    if not layers:
        raise PruneScopeError(f"no prunable layer is left after exclude={list(exclude)}", "loosen the exclude patterns")
    return layers


def current_masks(layers: Sequence[tuple[str, nn.Module]]) -> list[torch.Tensor]:
    """The masks already applied to `layers` (all ones where a layer is not pruned yet)."""
    return [
        m.weight_mask.detach().clone() if hasattr(m, "weight_mask") else torch.ones_like(m.weight) for _, m in layers
    ]


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
    return measure(model)["sparsity"]


def measure(model: nn.Module, parent: nn.Module | None = None) -> dict[str, Any]:
    """Sparsity and parameter counts of `model`, measured on its weights.

    Sparsity is the fraction of prunable weights (Conv2d, Linear) that are zero. With a
    `parent` that has more prunable weights (a structurally pruned model: channels physically
    removed, a narrower net), the removed weights count as zeros: sparsity is
    1 − nonzero(model) / prunable weights of the parent, and `params_total` is the parent's.
    """
    weights = [m.weight.detach() for _, m in prunable_layers(model)]
    total = sum(w.numel() for w in weights)
    nonzero = sum(int((w != 0).sum()) for w in weights)
    params = list(model.parameters())
    out = {
        "sparsity": 1.0 - nonzero / total if total else 0.0,
        "params_total": sum(p.numel() for p in params),
        "params_nonzero": sum(int((p != 0).sum()) for p in params),
    }
    if parent is not None:
        parent_total = sum(m.weight.numel() for _, m in prunable_layers(parent))
        if parent_total > total:
            out["sparsity"] = 1.0 - nonzero / parent_total
            out["params_total"] = max(out["params_total"], sum(p.numel() for p in parent.parameters()))
    return out
