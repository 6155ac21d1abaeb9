"""Training, fine-tuning and feature extraction on uint8 image arrays.

Images stay uint8 (N, H, W, C) in memory and are normalised per batch, so a CIFAR-sized
training set costs its uint8 size, not four times that.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from pipeline.config import FinetuneConfig, TrainConfig
from pipeline.datasets import ImageDataset
from pipeline.errors import PruneScopeError


@dataclass(frozen=True)
class Normalizer:
    """Per-channel (x/255 − mean) / std, turning uint8 NHWC into float NCHW on a device."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __call__(self, images: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
        # contiguous NCHW: a permuted (channels-last strided) input of a few channels hung oneDNN's
        # convolutions (resnet18_cifar at width 0.03 after a wider one, torch 2.14 on CPU)
        x = torch.as_tensor(images)
        if device.type == "cuda":  # from pinned memory the copy is queued, not waited for: the GPU stays fed
            x = x.pin_memory().to(device, non_blocking=True)
        x = x.to(device).permute(0, 3, 1, 2)
        x = x.to(torch.float32, memory_format=torch.contiguous_format).div_(255.0)
        mean, std = _channel_stats(self.mean, self.std, device)
        return x.sub_(mean).div_(std)


@lru_cache(maxsize=16)
def _channel_stats(mean: tuple[float, ...], std: tuple[float, ...], device: torch.device) -> tuple[torch.Tensor, ...]:
    """Mean and std as (1, C, 1, 1) tensors on `device`, made once (each new one is a copy the GPU waits for),
    as normal tensors even when first asked for in inference mode: autograd may use them later."""
    with torch.inference_mode(False):
        return tuple(torch.tensor(v, device=device).view(1, -1, 1, 1) for v in (mean, std))


def make_normalizer(data: ImageDataset, normalization: str | dict[str, tuple[float, ...]]) -> Normalizer:
    """The run's input normalisation: the training set's per-channel statistics ("train"),
    none beyond x/255 ("none"), or the given mean and std (one per image channel)."""
    channels = data.image_shape[2]
    if normalization == "train":
        mean, std = data.channel_stats()
        return Normalizer(tuple(mean), tuple(std))
    if normalization == "none":
        return Normalizer((0.0,) * channels, (1.0,) * channels)
    assert isinstance(normalization, dict)
    if len(normalization["mean"]) != channels:
        raise PruneScopeError(
            f"[dataset] normalization has {len(normalization['mean'])} values per statistic "
            f"but the {data.name} images have {channels} channel(s)",
            "give one mean and one std per image channel",
        )
    return Normalizer(tuple(normalization["mean"]), tuple(normalization["std"]))


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when it is available, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _augment(x: torch.Tensor, mode: str, gen: torch.Generator) -> torch.Tensor:
    """Random crop (zero padding of 1/8 of the size) and, for `crop_flip`, horizontal flips."""
    if mode == "none":
        return x
    n, _, h, w = x.shape
    pad = max(1, h // 8)
    padded = nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    rows = (dy[:, None] + torch.arange(h)[None, :]).to(x.device)
    cols = (dx[:, None] + torch.arange(w)[None, :]).to(x.device)
    out = padded[
        torch.arange(n, device=x.device)[:, None, None, None],
        torch.arange(x.shape[1], device=x.device)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]
    if mode == "crop_flip":
        flip = (torch.rand(n, generator=gen) < 0.5).to(x.device)
        out = torch.where(flip[:, None, None, None], out.flip(3), out)
    return out


def batches(n: int, batch_size: int, gen: torch.Generator | None) -> Iterator[torch.Tensor]:
    """Index batches over n samples, shuffled when a generator is given."""
    order = torch.randperm(n, generator=gen) if gen is not None else torch.arange(n)
    for lo in range(0, n, batch_size):
        yield order[lo : lo + batch_size]


def fit(
    model: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    norm: Normalizer,
    device: torch.device,
    epochs: int,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    batch_size: int,
    seed: int,
    augment: str = "none",
    desc: str = "train",
) -> list[dict[str, float]]:
    """Train for `epochs` with cross-entropy; one tqdm bar per epoch showing loss and accuracy."""
    gen = torch.Generator().manual_seed(seed)
    x_all = torch.as_tensor(images)
    y_all = torch.as_tensor(labels, dtype=torch.int64)
    loss_fn = nn.CrossEntropyLoss()
    history = []
    model.to(device).train()
    for epoch in range(epochs):
        total, correct, loss_sum = 0, 0, 0.0
        bar = tqdm(
            list(batches(len(y_all), batch_size, gen)),
            desc=f"{desc} {epoch + 1}/{epochs}",
            leave=False,
            unit="batch",
            disable=None,
        )
        for idx in bar:
            x = _augment(norm(x_all[idx], device), augment, gen)
            y = y_all[idx].to(device)
            optimizer.zero_grad(set_to_none=True)
            out = model(x)
            loss = loss_fn(out, y)
            loss.backward()
            optimizer.step()
            total += len(y)
            correct += int((out.argmax(1) == y).sum())
            loss_sum += float(loss.detach()) * len(y)
            bar.set_postfix(loss=f"{loss_sum / total:.3f}", acc=f"{correct / total:.3f}")
        if scheduler is not None:
            scheduler.step()
        history.append({"loss": loss_sum / max(total, 1), "accuracy": correct / max(total, 1)})
    model.eval()
    return history


def train_dense(
    model: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    norm: Normalizer,
    device: torch.device,
    cfg: TrainConfig,
    seed: int,
    desc: str,
) -> list[dict[str, float]]:
    """Seeded SGD with momentum and the configured learning-rate schedule."""
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    epochs = max(cfg.epochs, 1)
    sched: torch.optim.lr_scheduler.LRScheduler | None = {
        "cosine": lambda: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs),
        "step": lambda: torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, epochs // 3), gamma=0.1),
        "exponential": lambda: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9),
        "constant": lambda: None,
    }[cfg.lr_schedule]()
    return fit(model, images, labels, norm, device, cfg.epochs, opt, sched, cfg.batch_size, seed, cfg.augment, desc)


def finetune(
    model: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    norm: Normalizer,
    device: torch.device,
    cfg: FinetuneConfig,
    epochs: int,
    seed: int,
    desc: str,
) -> list[dict[str, float]]:
    """SGD + ExponentialLR (seeds/001); pruning masks stay attached, so pruned weights stay zero."""
    opt = torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad],
        lr=cfg.lr,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
    )
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.gamma)
    return fit(model, images, labels, norm, device, epochs, opt, sched, cfg.batch_size, seed, "none", desc)


@torch.inference_mode()
def extract(
    model: nn.Module, head: nn.Linear, images: np.ndarray, norm: Normalizer, device: torch.device, batch_size: int
) -> torch.Tensor:
    """Features X = input of the final nn.Linear for every image (captured by a forward hook), (N, m).

    Convolutions run channels-last (NHWC): on the CPU about twice as fast as NCHW for small
    images, and still the same features at any batch size. The model is handed back in its
    default layout, so what runs it next (attribution maps) computes the same whichever units
    ran before it in the process."""
    captured: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda mod, inp, out: captured.append(inp[0].detach().flatten(1)))
    with torch.inference_mode(False):  # weights converted in inference mode could never be trained or attributed
        model.to(device, memory_format=torch.channels_last).eval()
    try:
        x_all = torch.as_tensor(images)
        for lo in range(0, len(x_all), batch_size):
            model(norm(x_all[lo : lo + batch_size], device).contiguous(memory_format=torch.channels_last))
    finally:
        hook.remove()
        with torch.inference_mode(False):
            model.to(memory_format=torch.contiguous_format)
    if not captured:
        return torch.empty((0, head.in_features), device=device)
    return torch.cat(captured)
