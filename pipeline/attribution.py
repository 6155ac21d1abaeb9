"""Attribution maps with Captum: which pixels a model's score for a class rests on.

Each method is a registered function `(model, inputs, baseline, targets, settings) -> maps`,
with `inputs` a normalised batch (N, C, H, W), `baseline` the black image normalised the same
way (1, C, H, W), `targets` the class each map explains; the maps are (N, H, W) float32 (summed
over channels, Grad-CAM upsampled to the image). Captum computes them; we only choose the
settings and the layer. The samples to map are chosen once per run (`select_samples`), so every
model has maps of the same samples and each map can be compared with its parent's.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from pipeline.config import AttributionConfig
from pipeline.errors import PruneScopeError
from pipeline.registry import Registry

AttributionFn = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor, AttributionConfig], np.ndarray]
ATTRIBUTIONS: Registry[AttributionFn] = Registry("attribution method")
register_attribution = ATTRIBUTIONS.register


def _channels_summed(attr: torch.Tensor) -> np.ndarray:
    return attr.detach().sum(dim=1).cpu().numpy().astype(np.float32)


@register_attribution("occlusion")
def occlusion(
    model: nn.Module, inputs: torch.Tensor, baseline: torch.Tensor, targets: torch.Tensor, cfg: AttributionConfig
) -> np.ndarray:
    """Captum's Occlusion: the drop of the target score when a `window`² patch (all channels) is
    replaced by black, averaged over the patches covering each pixel."""
    from captum.attr import Occlusion

    c, h, w = inputs.shape[1:]
    win = (c, min(cfg.window, h), min(cfg.window, w))
    attr = Occlusion(model).attribute(
        inputs,
        sliding_window_shapes=win,
        strides=(c, cfg.stride, cfg.stride),
        baselines=baseline,
        target=targets,
        perturbations_per_eval=cfg.perturbations_per_eval,
    )
    return _channels_summed(attr)


@register_attribution("integrated_gradients")
def integrated_gradients(
    model: nn.Module, inputs: torch.Tensor, baseline: torch.Tensor, targets: torch.Tensor, cfg: AttributionConfig
) -> np.ndarray:
    """Captum's IntegratedGradients from the black image, `n_steps` Gauss-Legendre steps."""
    from captum.attr import IntegratedGradients

    attr = IntegratedGradients(model).attribute(
        inputs,
        baselines=baseline.expand_as(inputs),
        target=targets,
        n_steps=cfg.n_steps,
        internal_batch_size=cfg.internal_batch_size,
    )
    return _channels_summed(attr)


@register_attribution("gradcam")
def gradcam(
    model: nn.Module, inputs: torch.Tensor, baseline: torch.Tensor, targets: torch.Tensor, cfg: AttributionConfig
) -> np.ndarray:
    """Captum's LayerGradCam on the last convolutional layer (ReLU of the weighted activations),
    upsampled bilinearly to the image with LayerAttribution.interpolate."""
    from captum.attr import LayerAttribution, LayerGradCam

    _, layer = last_conv(model)
    attr = LayerGradCam(model, layer).attribute(inputs, target=targets, relu_attributions=True)
    up = LayerAttribution.interpolate(attr, tuple(inputs.shape[2:]), interpolate_mode="bilinear")
    return _channels_summed(up)


def last_conv(model: nn.Module, name: str = "the model") -> tuple[str, nn.Conv2d]:
    """The last nn.Conv2d of `model` (in module order): where Grad-CAM looks."""
    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise PruneScopeError(
            f"{name} has no nn.Conv2d layer, so Grad-CAM has no layer to attribute to",
            'drop "gradcam" from [attribution] methods (occlusion and integrated_gradients work on any model)',
        )
    return convs[-1]


def without_inplace(model: nn.Module) -> nn.Module:
    """`model` with its in-place activations made out-of-place (same function): Grad-CAM's
    hook on a layer's output needs that output unchanged by a following in-place ReLU."""
    for m in model.modules():
        if hasattr(m, "inplace") and m.inplace:
            m.inplace = False
    return model


def compute_maps(
    model: nn.Module,
    method: str,
    inputs: torch.Tensor,
    baseline: torch.Tensor,
    targets: torch.Tensor,
    cfg: AttributionConfig,
) -> np.ndarray:
    """The (N, H, W) maps of one method for a batch, gradients enabled whatever the caller's mode."""
    with torch.enable_grad():
        return ATTRIBUTIONS.get(method)(without_inplace(model.eval()), inputs, baseline, targets, cfg)


def select_samples(
    labels: np.ndarray,
    preds: dict[str, np.ndarray],
    losses: dict[str, np.ndarray],
    parents: dict[str, str],
    cfg: AttributionConfig,
) -> list[int]:
    """The run's samples to map: the `top_flips` whose prediction changes most between the pruned
    models and their parents (most models flipped first, then the largest summed |Δ loss|), plus
    the first `per_class` samples of every class. `preds`/`losses`: per model, by sample id;
    `parents`: child -> parent model id."""
    n = len(labels)
    flips, moved = np.zeros(n), np.zeros(n)
    for child, parent in parents.items():
        flips += preds[child] != preds[parent]
        moved += np.abs(np.nan_to_num(losses[child] - losses[parent]))
    chosen: set[int] = set()
    if parents and cfg.top_flips:
        order = np.lexsort((np.arange(n), -moved, -flips))  # last key first: flips, then moved, then id
        chosen.update(int(i) for i in order[: cfg.top_flips])
    for cls in np.unique(labels):
        chosen.update(int(i) for i in np.flatnonzero(labels == cls)[: cfg.per_class])
    return sorted(chosen)
