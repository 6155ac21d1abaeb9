"""Evaluation overhead: an evaluation unit's time / its forward passes alone (target: at most 1.10).

`vgg16_cifar` (10 classes) on random 32×32 RGB input: `--sets` evaluation sets of `--n`
images each, evaluated as a unit of the pipeline evaluates them (pipeline.units.evaluate_sets:
the forward pass with the feature hook, the metrics kernel, each set's samples table written to
Parquet on the writer thread while the next set computes), against the same forward passes
through `extract` alone. Prints both times and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from pipeline import store
from pipeline.models import build_model, final_linear
from pipeline.training import Normalizer, extract, resolve_device
from pipeline.units import evaluate_sets, samples_table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=2048, help="images per evaluation set")
    ap.add_argument("--sets", type=int, default=4, help="evaluation sets in the unit")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    device = resolve_device(args.device)
    torch.manual_seed(0)
    model = build_model("vgg16_cifar", None, {}, 3, (32, 32), 10)
    norm = Normalizer((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    rng = np.random.default_rng(0)
    sets = [("noise", s) for s in range(1, args.sets + 1)]
    images = {es: rng.integers(0, 256, (args.n, 32, 32, 3), dtype=np.uint8) for es in sets}
    labels = np.random.default_rng(1).integers(0, 10, args.n)
    _, head = final_linear(model, norm(images[sets[0]][:2], torch.device("cpu")))
    model.to(device).eval()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def forward_only() -> None:  # the pipeline's own forward pass (its memory layout and feature hook)
        for es in sets:
            extract(model, head, images[es], norm, device, args.batch_size)
        sync()

    def unit(out: Path) -> None:
        def publish(corruption: str, severity: int, m: dict[str, np.ndarray], feats: torch.Tensor) -> None:
            store.write_table(
                samples_table(corruption, severity, labels, m, None), out / f"{corruption}-{severity}.parquet"
            )

        evaluate_sets(
            model, head, sets, lambda c, s: images[(c, s)], labels, norm, device, args.batch_size, "eq5", publish
        )
        sync()

    forward_only()
    with tempfile.TemporaryDirectory() as tmp:
        t_fwd, t_full = [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            forward_only()
            t_fwd.append(time.perf_counter() - t)
            t = time.perf_counter()
            unit(Path(tmp))
            t_full.append(time.perf_counter() - t)
    fwd, tot = statistics.median(t_fwd), statistics.median(t_full)
    print(f"vgg16_cifar, {args.sets} sets of {args.n} images of 32x32x3, batch {args.batch_size}, device {device}")
    print(
        f"forward alone: {fwd:.3f} s; evaluation unit (forward + metrics + write): {tot:.3f} s; ratio {tot / fwd:.3f}"
    )


if __name__ == "__main__":
    main()
