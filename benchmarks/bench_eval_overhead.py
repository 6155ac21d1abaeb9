"""Evaluation overhead: (forward + metrics + write) / forward alone (target: at most 1.10).

`vgg16_cifar` (10 classes) on random 32×32 RGB input, as the evaluation unit runs it: the
forward pass with the feature hook, the metrics kernel, and the Parquet write of the
per-sample table. Prints both times and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from pipeline import store
from pipeline.metrics import sample_metrics
from pipeline.models import build_model, final_linear
from pipeline.training import Normalizer, extract, resolve_device


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    device = resolve_device(args.device)
    torch.manual_seed(0)
    model = build_model("vgg16_cifar", None, {}, 3, (32, 32), 10)
    norm = Normalizer((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    images = np.random.default_rng(0).integers(0, 256, (args.n, 32, 32, 3), dtype=np.uint8)
    labels = np.random.default_rng(1).integers(0, 10, args.n)
    _, head = final_linear(model, norm(images[:2], torch.device("cpu")))
    model.to(device).eval()

    def forward_only() -> None:  # the pipeline's own forward pass (its memory layout and feature hook)
        extract(model, head, images, norm, device, args.batch_size)
        if device.type == "cuda":
            torch.cuda.synchronize()

    def full(out: Path) -> None:
        feats = extract(model, head, images, norm, device, args.batch_size)
        m = sample_metrics(feats, head.weight.detach(), head.bias.detach(), torch.as_tensor(labels))
        n, c = m["angles"].shape
        cols = {k: m[k] for k in ("confidence", "loss", "length", "margin", "angle", "correct", "zero_feature")}
        cols["angles"] = pa.FixedSizeListArray.from_arrays(m["angles"].reshape(-1), c)
        cols["sample_id"] = np.arange(n, dtype=np.int32)
        store.write_table(pa.table(cols), out)

    forward_only()
    with tempfile.TemporaryDirectory() as tmp:
        t_fwd, t_full = [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            forward_only()
            t_fwd.append(time.perf_counter() - t)
            t = time.perf_counter()
            full(Path(tmp) / "samples.parquet")
            t_full.append(time.perf_counter() - t)
    fwd, tot = statistics.median(t_fwd), statistics.median(t_full)
    print(f"vgg16_cifar, {args.n} images of 32x32x3, batch {args.batch_size}, device {device}")
    print(f"forward alone: {fwd:.3f} s; forward + metrics + write: {tot:.3f} s; ratio {tot / fwd:.3f}")


if __name__ == "__main__":
    main()
