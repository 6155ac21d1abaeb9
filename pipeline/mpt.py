"""Multi-prize lottery tickets by biprop (Diffenderfer & Kailkhura, 2021).

Start from a randomly initialised network, freeze its weights and learn one score per
weight. The forward pass keeps the top-k weights by |score| (per layer, or above one global
threshold), binarised to sign(w)·α with α per layer the mean |w| of the kept weights; the
backward pass is straight-through, scaled by |w|, through the absolute value of the scores.
Only the scores (and affine BatchNorm parameters) are trained.

Note: the published code's `prune_rate` is the fraction *kept*; `sparsity` here is always
the fraction *removed*.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import nn

from pipeline.config import MptConfig
from pipeline.training import Normalizer, fit


class _BinarySubnet(torch.autograd.Function):
    """α·mask forward; gradient g·|w| to the (absolute) scores, as biprop's GetQuantnet_binary."""

    @staticmethod
    def forward(ctx, scores_abs: torch.Tensor, weight_abs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        alpha = (weight_abs * mask).sum() / mask.sum().clamp_min(1.0)
        ctx.save_for_backward(weight_abs)
        return alpha * mask

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (weight_abs,) = ctx.saved_tensors
        return grad * weight_abs, None, None


class Biprop:
    """Attaches scores to `layers` and recomputes their binarised weights before every forward."""

    def __init__(self, model: nn.Module, layers: Sequence[tuple[str, nn.Module]], sparsity: float, scope: str) -> None:
        self.layers = [m for _, m in layers]
        self.keep = 1.0 - sparsity
        self.scope = scope
        self.scores: list[nn.Parameter] = []
        for m in self.layers:
            w = m.weight.detach().clone()
            del m._parameters["weight"]
            m.register_buffer("weight_frozen", w)
            scores = nn.Parameter(torch.empty_like(w))
            nn.init.kaiming_uniform_(scores, a=math.sqrt(5))
            m.register_parameter("weight_scores", scores)
            self.scores.append(scores)
            m.weight = w  # plain attribute, replaced before every forward
        self._hook = model.register_forward_pre_hook(lambda mod, args: self.refresh())

    @torch.no_grad()
    def masks(self) -> list[torch.Tensor]:
        """Keep-masks of the current scores: top-k of |score| per layer, or over all layers."""
        if self.scope == "global":
            flat = torch.cat([s.detach().abs().reshape(-1) for s in self.scores])
            k = max(1, round(self.keep * flat.numel()))
            threshold = torch.topk(flat, k, largest=True).values.min()
            return [(s.detach().abs() >= threshold).to(s.dtype) for s in self.scores]
        masks = []
        for s in self.scores:
            k = max(1, round(self.keep * s.numel()))
            mask = torch.zeros(s.numel(), device=s.device, dtype=s.dtype)
            mask[torch.topk(s.detach().abs().reshape(-1), k, largest=True).indices] = 1
            masks.append(mask.view_as(s))
        return masks

    def refresh(self) -> None:
        for m, s, mask in zip(self.layers, self.scores, self.masks()):
            w = m.weight_frozen
            m.weight = torch.sign(w) * _BinarySubnet.apply(s.abs(), w.abs(), mask)

    @torch.no_grad()
    def finalize(self) -> None:
        """Turn the layers back into plain layers whose weights are the binarised subnetwork."""
        self.refresh()
        self._hook.remove()
        for m in self.layers:
            w = m.weight.detach().clone()
            del m.weight
            del m._buffers["weight_frozen"]
            del m._parameters["weight_scores"]
            m.weight = nn.Parameter(w)


def random_init(layers: Sequence[tuple[str, nn.Module]], init: str, gen: torch.Generator) -> None:
    """Kaiming-normal (fan-in, ReLU) weights, or their signed-constant version; biases zero."""
    for _, m in layers:
        w = m.weight
        fan_in = w[0].numel()
        std = math.sqrt(2.0 / fan_in)
        with torch.no_grad():
            normal = torch.randn(w.shape, generator=gen) * std
            w.copy_(normal if init == "kaiming_normal" else torch.sign(normal) * std)
            if m.bias is not None:
                m.bias.zero_()


def train_mpt(
    model: nn.Module,
    layers: Sequence[tuple[str, nn.Module]],
    head: nn.Module | None,
    sparsity: float,
    scope: str,
    init: str,
    images: np.ndarray,
    labels: np.ndarray,
    norm: Normalizer,
    device: torch.device,
    cfg: MptConfig,
    seed: int,
    desc: str,
) -> None:
    """Find and binarise a multi-prize ticket of `model` in place; `layers` are pruned and
    binarised, `head` (when `last_layer_dense`) is trained as an ordinary dense layer."""
    gen = torch.Generator().manual_seed(seed)
    random_init(layers if head is None else [*layers, ("head", head)], init, gen)
    for p in model.parameters():
        p.requires_grad_(False)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
            m.weight.requires_grad_(True)
            m.bias.requires_grad_(True)
    if head is not None:
        for p in head.parameters():
            p.requires_grad_(True)
    torch.manual_seed(seed)
    biprop = Biprop(model, layers, sparsity, scope)
    model.to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(trainable, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1))
    fit(model, images, labels, norm, device, cfg.epochs, opt, sched, cfg.batch_size, seed, "none", desc)
    biprop.finalize()
    for p in model.parameters():
        p.requires_grad_(True)
