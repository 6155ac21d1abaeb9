"""Per-sample geometry of the last layer (shared/DESIGN.md §1).

Given features X (N×m, the input of the final nn.Linear), its weight W (C×m) and bias b (C),
and labels y (N), every sample gets its angle to every class direction, its feature length,
its margin (paper eq. 5 by default: the distance to the nearest of its true class's
hyperplanes, no bias, negated when the prediction is wrong; or the bias-aware signed
distance to the true class's region), the prediction, its confidence and its
cross-entropy loss.

The work is one matrix product X·Wᵀ plus a few element-wise passes over it, in row chunks
that stay in cache, on the device the features are on (so on a GPU it is nearly free). No
Python loop runs over samples or classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from pipeline.store import MARGIN_DEFINITIONS, MARGIN_EQ5

CHUNK_ROWS = 4096
RAD_TO_DEG = 180.0 / math.pi


@dataclass(frozen=True)
class HeadGeometry:
    """What the metrics need from the head alone (C classes), as tensors on one device."""

    inv_row_norm: torch.Tensor  # (C,) 1/‖W_j‖ (inf for a zero row)
    inv_dist: torch.Tensor  # (C, C) 1/‖W_i − W_j‖, 0 where j is no boundary of i
    tied: torch.Tensor | None  # (C, C) bool, W_i == W_j for i != j; None when no rows tie


def head_geometry(weight: torch.Tensor) -> HeadGeometry:
    """Distances between class directions; identical rows (e.g. pruned-away rows) are no boundary."""
    w = weight.detach().to(torch.float64)
    gram = w @ w.T
    sq = torch.diagonal(gram)
    dist = (sq[:, None] + sq[None, :] - 2.0 * gram).clamp_min_(0.0).sqrt_()
    _, group = torch.unique(w, dim=0, return_inverse=True)
    skip = group[:, None] == group[None, :]
    inv_dist = torch.where(skip, torch.zeros_like(dist), 1.0 / dist).to(weight.dtype)
    eye = torch.eye(len(w), dtype=torch.bool, device=w.device)
    tied = skip & ~eye
    return HeadGeometry((1.0 / sq.sqrt()).to(weight.dtype), inv_dist, tied if bool(tied.any()) else None)


def sample_metrics(
    features: torch.Tensor | np.ndarray,
    weight: torch.Tensor | np.ndarray,
    bias: torch.Tensor | np.ndarray | None,
    labels: torch.Tensor | np.ndarray,
    margin: str = MARGIN_EQ5,
) -> dict[str, np.ndarray]:
    """Geometry and prediction metrics of each sample, as numpy arrays.

    Shapes: features (N, m), weight (C, m), bias (C,) or None, labels (N,) in 0..C-1.
    `margin` is "eq5" (paper eq. 5: min over j ≠ y of |(W_y − W_j)·X| / ‖W_y − W_j‖, times −1
    when the prediction is wrong) or "signed" (min over j ≠ y of
    ((W_y − W_j)·X + b_y − b_j) / ‖W_y − W_j‖). Returns float32 `angles` (N, C) in degrees,
    float32 `angle`, `length`, `margin`, `confidence`, `loss` (N,), int64 `pred` (N,), bool
    `correct` and `zero_feature` (N,). A zero feature vector gives NaN angles (and
    `zero_feature`); a sample whose class has no boundary left (C = 1, or every other row
    identical to its own) gets a NaN margin.
    """
    if margin not in MARGIN_DEFINITIONS:
        raise ValueError(f"unknown margin definition {margin!r}: use one of {', '.join(MARGIN_DEFINITIONS)}")
    x = torch.as_tensor(features).to(torch.float32)
    w = torch.as_tensor(weight).to(device=x.device, dtype=torch.float32)
    n, c = x.shape[0], w.shape[0]
    b = torch.zeros(c, device=x.device) if bias is None else torch.as_tensor(bias).to(x.device, torch.float32)
    y = torch.as_tensor(labels).to(device=x.device, dtype=torch.int64)
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"features {tuple(x.shape)} and weight {tuple(w.shape)} do not match (N, m) and (C, m)")
    if y.shape != (n,) or b.shape != (c,):
        raise ValueError(f"labels {tuple(y.shape)} or bias {tuple(b.shape)} do not match N={n}, C={c}")
    if n and (int(y.min()) < 0 or int(y.max()) >= c):
        raise ValueError(f"labels must lie in 0..{c - 1}")
    head = head_geometry(w)
    wt = w.T.contiguous()
    f32 = {"dtype": torch.float32, "device": x.device}
    out = {
        "angles": torch.empty((n, c), **f32),
        **{k: torch.empty(n, **f32) for k in ("angle", "length", "margin", "confidence", "loss")},
        "pred": torch.empty(n, dtype=torch.int64, device=x.device),
    }
    for lo in range(0, n, CHUNK_ROWS):
        hi = min(lo + CHUNK_ROWS, n)
        _chunk(x[lo:hi], wt, b, y[lo:hi], head, margin == MARGIN_EQ5, {k: v[lo:hi] for k, v in out.items()})
    out = {k: v.cpu().numpy() for k, v in out.items()}
    out["correct"] = out["pred"] == y.cpu().numpy()
    out["zero_feature"] = out["length"] == 0
    return out


@torch.no_grad()
def _chunk(
    x: torch.Tensor,
    wt: torch.Tensor,
    b: torch.Tensor,
    y: torch.Tensor,
    head: HeadGeometry,
    eq5: bool,
    out: dict[str, torch.Tensor],
) -> None:
    """Fill the rows of `out` for one chunk of samples (the eq. 5 margin when `eq5`, else the signed one)."""
    dots = x @ wt  # (n, C): W_j·X
    length = torch.linalg.vector_norm(x, dim=1, out=out["length"])
    angles = torch.mul(dots, (1.0 / length)[:, None], out=out["angles"])
    angles.mul_(head.inv_row_norm).clamp_(-1.0, 1.0).acos_().mul_(RAD_TO_DEG)

    col = y[:, None]
    if eq5:  # |(W_y − W_j)·X| / ‖W_y − W_j‖ from the products before the bias enters
        _boundary_min(dots.gather(1, col).sub(dots).abs_(), y, col, head, out["margin"])
    logits = dots.add_(b)
    z_true = logits.gather(1, col)
    if not eq5:  # ((W_y − W_j)·X + b_y − b_j) / ‖W_y − W_j‖
        _boundary_min(z_true - logits, y, col, head, out["margin"])
    torch.gather(angles, 1, col, out=out["angle"][:, None])

    zmax, pred = logits.max(1)
    out["pred"].copy_(pred)
    if eq5:  # negated when the prediction is wrong
        out["margin"].copy_(torch.where(pred == y, out["margin"], out["margin"].neg()))
    sumexp = logits.sub_(zmax[:, None]).exp_().sum(1)
    torch.reciprocal(sumexp, out=out["confidence"])
    torch.sub(sumexp.log_(), z_true[:, 0] - zmax, out=out["loss"])


def _boundary_min(gap: torch.Tensor, y: torch.Tensor, col: torch.Tensor, head: HeadGeometry, out: torch.Tensor) -> None:
    """out = min over the boundaries j of the true class of gap_j / ‖W_y − W_j‖ (NaN when it has none)."""
    ratio = gap.mul_(head.inv_dist[y])
    ratio.scatter_(1, col, math.inf)
    if head.tied is not None:
        ratio.masked_fill_(head.tied[y], math.inf)
    torch.amin(ratio, 1, out=out)
    out.masked_fill_(torch.isinf(out), math.nan)
