"""Common corruptions (CIFAR-10-C, Hendrycks & Dietterich): the canonical names and the registry.

A corruption is a function `(images uint8 (N, H, W, C), severity 1..5, sample_ids (N,)) ->
uint8 images of the same shape`, deterministic for a given (sample id, corruption,
severity). The generators register here with `@register_corruption` (the corruption-suite
issue); the evaluation runner looks them up by name.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from pipeline.registry import Registry

CORRUPTION_NAMES: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur", "gaussian_blur",
    "snow", "frost", "fog", "brightness", "spatter",
    "contrast", "elastic_transform", "pixelate", "jpeg_compression", "saturate",
)
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

Corruption = Callable[[np.ndarray, int, np.ndarray], np.ndarray]
CORRUPTIONS: Registry[Corruption] = Registry("corruption")
register_corruption = CORRUPTIONS.register
