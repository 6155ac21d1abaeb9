"""Per-sample geometry of the last layer (shared/DESIGN.md §1).

Given features X (N×m, the input of the final nn.Linear), its weight W (C×m) and bias b (C),
and labels y (N), every sample gets its angle to every class direction, its feature length,
its margin (paper eq. 5 by default: the distance to the nearest of its true class's
hyperplanes, no bias, negated when the prediction is wrong; or the bias-aware signed
distance to the true class's region), the prediction, its confidence and its
cross-entropy loss.

The work is one matrix product X·Wᵀ plus a few element-wise passes over it, on the device the
features are on: in row chunks that stay in cache on a CPU, over whole evaluation sets on a
GPU. No Python loop runs over samples or classes.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

from pipeline.store import MARGIN_DEFINITIONS, MARGIN_EQ5

CHUNK_ROWS = 4096  # rows of X per product: a few MiB, still in cache when their norms are taken
CACHE_ELEMENTS = 1 << 17  # products per pass of the element-wise work: half a MiB, in L2
# A CPU block holds at least one full element-wise pass: with few classes, a pass of 4096 rows is so
# small that each operation's fixed cost (about as much as its work at C = 10) would dominate.
# On a GPU, kernel launches cost more than memory traffic: a pass covers up to 2^26 products
# (256 MiB, two scratch buffers of it), i.e. every row of a CIFAR evaluation set in one go.
GPU_ELEMENTS = 1 << 26
EXP_FLOOR = -80.0
RAD_TO_DEG = 180.0 / math.pi


@dataclass(frozen=True)
class HeadGeometry:
    """What the metrics need from the head alone (C classes), as tensors on one device."""

    inv_row_norm: torch.Tensor  # (C,) 1/‖W_j‖ (inf for a zero row)
    inv_dist: torch.Tensor  # (C, C) 1/‖W_i − W_j‖, 0 where j is no boundary of i
    tied: torch.Tensor | None  # (C, C) bool, W_i == W_j for i != j; None when no rows tie


def head_geometry(weight: torch.Tensor) -> HeadGeometry:
    """Distances between class directions; identical rows (e.g. pruned-away rows) are no boundary.

    Computed in float64 with numpy: C×C is small, and torch would wake its thread team for every
    one of these tiny operations (costly on a loaded machine)."""
    w = weight.detach().cpu().numpy().astype(np.float64)
    gram = w @ w.T
    sq = np.diagonal(gram)
    dist = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * gram, 0.0))
    _, group = np.unique(w, axis=0, return_inverse=True)
    group = group.reshape(-1)
    skip = group[:, None] == group[None, :]
    with np.errstate(divide="ignore"):
        inv_dist = np.where(skip, 0.0, 1.0 / dist)
        inv_row_norm = 1.0 / np.sqrt(sq)
    tied = skip & ~np.eye(len(w), dtype=bool)

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).to(weight.device, weight.dtype if a.dtype != bool else torch.bool)

    return HeadGeometry(tensor(inv_row_norm), tensor(inv_dist), tensor(tied) if tied.any() else None)


def sample_metrics(
    features: torch.Tensor | np.ndarray,
    weight: torch.Tensor | np.ndarray,
    bias: torch.Tensor | np.ndarray | None,
    labels: torch.Tensor | np.ndarray,
    margin: str = MARGIN_EQ5,
    geometry: HeadGeometry | None = None,
) -> dict[str, np.ndarray]:
    """Geometry and prediction metrics of each sample, as numpy arrays.

    Shapes: features (N, m), weight (C, m), bias (C,) or None, labels (N,) in 0..C-1.
    `margin` is "eq5" (paper eq. 5: min over j ≠ y of |(W_y − W_j)·X| / ‖W_y − W_j‖, times −1
    when the prediction is wrong) or "signed" (min over j ≠ y of
    ((W_y − W_j)·X + b_y − b_j) / ‖W_y − W_j‖). Returns float32 `angles` (N, C) in degrees,
    float32 `angle`, `length`, `margin`, `confidence`, `loss` (N,), int64 `pred` (N,), bool
    `correct` and `zero_feature` (N,). A zero feature vector gives NaN angles (and
    `zero_feature`); a sample whose class has no boundary left (C = 1, or every other row
    identical to its own) gets a NaN margin. `geometry` is `head_geometry(weight)` where the caller
    keeps it for several calls with one head (computing it waits for the device to finish).
    """
    return host_metrics(*device_metrics(features, weight, bias, labels, margin, geometry))


def device_metrics(
    features: torch.Tensor | np.ndarray,
    weight: torch.Tensor | np.ndarray,
    bias: torch.Tensor | np.ndarray | None,
    labels: torch.Tensor | np.ndarray,
    margin: str = MARGIN_EQ5,
    geometry: HeadGeometry | None = None,
) -> tuple[dict[str, torch.Tensor], np.ndarray]:
    """`sample_metrics`'s work, its tensors left on the features' device (a GPU caller copies them
    without waiting), and the labels as checked (int64, on the host): `host_metrics` finishes."""
    if margin not in MARGIN_DEFINITIONS:
        raise ValueError(f"unknown margin definition {margin!r}: use one of {', '.join(MARGIN_DEFINITIONS)}")
    x = torch.as_tensor(features).to(torch.float32)
    w = torch.as_tensor(weight).to(device=x.device, dtype=torch.float32)
    n, c = x.shape[0], w.shape[0]
    b = torch.zeros(c, device=x.device) if bias is None else torch.as_tensor(bias).to(x.device, torch.float32)
    y_np = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels).astype(np.int64, copy=False)
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"features {tuple(x.shape)} and weight {tuple(w.shape)} do not match (N, m) and (C, m)")
    if y_np.shape != (n,) or b.shape != (c,):
        raise ValueError(f"labels {tuple(y_np.shape)} or bias {tuple(b.shape)} do not match N={n}, C={c}")
    if n and (int(y_np.min()) < 0 or int(y_np.max()) >= c):  # numpy: no torch thread team woken for two numbers
        raise ValueError(f"labels must lie in 0..{c - 1}")
    y = torch.from_numpy(np.array(y_np))  # a copy: pinned below, and never a read-only array
    y = y.pin_memory().to(x.device, non_blocking=True) if x.is_cuda else y
    head = geometry if geometry is not None else head_geometry(w)
    f32 = {"dtype": torch.float32, "device": x.device}
    out = {
        "angles": torch.empty((n, c), **f32),
        **{k: torch.empty(n, **f32) for k in ("angle", "length", "margin", "confidence", "loss")},
        "pred": torch.empty(n, dtype=torch.int64, device=x.device),
    }
    rows, product_rows, elements = block_sizes(x.device.type, c)
    workers = min(torch.get_num_threads(), -(-n // rows)) if x.device.type == "cpu" else 1
    if workers > 1:  # as many blocks for each worker, so that none waits for the other's last one
        rows = -(-n // (-(-n // (rows * workers)) * workers))
    blocks = [(lo, min(lo + rows, n)) for lo in range(0, n, rows)]
    work = partial(_block, x, w, b, y, head, margin == MARGIN_EQ5, out, product_rows, elements)
    if workers > 1:  # one single-threaded stream of blocks per core: no thread barrier per operation
        with ThreadPoolExecutor(workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            list(pool.map(work, blocks))
    else:
        for block in blocks:
            work(block)
    return out, y_np


def host_metrics(out: dict[str, torch.Tensor], labels: np.ndarray) -> dict[str, np.ndarray]:
    """`sample_metrics`'s arrays from `device_metrics`' tensors (copied to the host where they are
    not there yet) and labels."""
    host = {k: v.cpu().numpy() for k, v in out.items()}
    host["correct"] = host["pred"] == labels
    host["zero_feature"] = host["length"] == 0
    return host


def block_sizes(device_type: str, c: int) -> tuple[int, int, int]:
    """Rows of X per block, per product and products per element-wise pass: cache-sized on a CPU,
    as large as memory allows on a GPU (where each pass is a kernel launch)."""
    if device_type == "cpu":
        return max(CHUNK_ROWS, CACHE_ELEMENTS // max(c, 1)), CHUNK_ROWS, CACHE_ELEMENTS
    rows = max(1, GPU_ELEMENTS // max(c, 1))
    return rows, rows, GPU_ELEMENTS


def _finish(out: dict[str, torch.Tensor], y: torch.Tensor, eq5: bool) -> None:
    """The per-sample steps left by _chunk, once per block: no boundary gives a NaN margin, eq. 5
    negates it for a wrong prediction, and confidence and loss come from Σ exp(z − max z) and z_y − max z."""
    out["margin"].masked_fill_(torch.isinf(out["margin"]), math.nan)
    if eq5:
        out["margin"].copy_(torch.where(out["pred"] == y, out["margin"], out["margin"].neg()))
    sumexp = out["confidence"]
    out["loss"].neg_().add_(torch.log(sumexp))
    sumexp.reciprocal_()


@torch.no_grad()
def _block(
    x: torch.Tensor,
    w: torch.Tensor,
    b: torch.Tensor,
    y: torch.Tensor,
    head: HeadGeometry,
    eq5: bool,
    out: dict[str, torch.Tensor],
    product_rows: int,
    elements: int,
    block: tuple[int, int],
) -> None:
    """Every metric of the rows lo..hi, `product_rows` rows per product, `elements` products per
    element-wise pass: X is read once (each slice's product, then its norms while still in cache)."""
    lo, hi = block
    for start in range(lo, hi, product_rows):
        rows = slice(start, min(start + product_rows, hi))
        torch.mm(x[rows], w.T, out=out["angles"][rows])  # W_j·X, turned into angles in place by _chunk
        torch.linalg.vector_norm(x[rows], dim=1, out=out["length"][rows])
    step = max(1, min(hi - lo, elements // max(w.shape[0], 1)))
    scratch = (
        torch.empty((step, w.shape[0]), dtype=x.dtype, device=x.device),
        torch.empty((step, w.shape[0]), dtype=x.dtype, device=x.device),
    )
    for sub in range(lo, hi, step):
        rows = slice(sub, min(sub + step, hi))
        _chunk(b, y[rows], head, eq5, {k: v[rows] for k, v in out.items()}, scratch)
    _finish({k: v[lo:hi] for k, v in out.items()}, y[lo:hi], eq5)


def _chunk(
    b: torch.Tensor,
    y: torch.Tensor,
    head: HeadGeometry,
    eq5: bool,
    out: dict[str, torch.Tensor],
    scratch: tuple[torch.Tensor, torch.Tensor],
) -> None:
    """Turn the products W_j·X in `out["angles"]` into every metric of these rows, in place.

    The rows are few enough to stay in cache across the passes (eq. 5 margin when `eq5`, else the signed one);
    `scratch` holds two buffers of at least as many rows.
    """
    dots = out["angles"]
    n = len(y)
    gap, inv_dist = scratch[0][:n], scratch[1][:n]
    col = y[:, None]
    d_true = dots.gather(1, col)
    torch.index_select(head.inv_dist, 0, y, out=inv_dist)
    if eq5:  # |(W_y − W_j)·X| / ‖W_y − W_j‖ from the products before the bias enters
        torch.sub(d_true, dots, out=gap).abs_()
    else:  # ((W_y − W_j)·X + b_y − b_j) / ‖W_y − W_j‖
        torch.sub(d_true + b[col], dots, out=gap).sub_(b)
    _boundary_min(gap, inv_dist, y, col, head, out["margin"])

    logits = torch.add(dots, b, out=gap)
    torch.gather(logits, 1, col, out=out["loss"][:, None])
    zmax, pred = logits.max(1)
    out["pred"].copy_(pred)
    out["loss"].sub_(zmax)  # z_y − max z: log p_y before the normaliser (finished in _finish)
    # exp(z − max) below e^-80 adds nothing to a float32 sum that is at least 1; the clamp keeps exp off denormals
    torch.sum(logits.sub_(zmax[:, None]).clamp_min_(EXP_FLOOR).exp_(), 1, out=out["confidence"])  # Σ exp(z − max)

    angles = dots.mul_((1.0 / out["length"])[:, None]).mul_(head.inv_row_norm)
    angles.clamp_(-1.0, 1.0).acos_().mul_(RAD_TO_DEG)
    torch.gather(angles, 1, col, out=out["angle"][:, None])


def _boundary_min(
    gap: torch.Tensor, inv_dist: torch.Tensor, y: torch.Tensor, col: torch.Tensor, head: HeadGeometry, out: torch.Tensor
) -> None:
    """out = min over the boundaries j of the true class of gap_j / ‖W_y − W_j‖ (inf when it has none).

    `inv_dist` holds the rows 1/‖W_y − W_j‖ of each sample's class.
    """
    ratio = gap.mul_(inv_dist)
    ratio.scatter_(1, col, math.inf)
    if head.tied is not None:
        ratio.masked_fill_(head.tied[y], math.inf)
    torch.amin(ratio, 1, out=out)
