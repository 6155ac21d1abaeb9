"""A 100-model CIFAR-10-C study, projected from per-unit times measured on this machine.

The study: M models (default 100) × 96 evaluation sets (clean + 19 corruptions × 5 severities)
× 10,000 test images, i.e. M × 96 evaluation units, plus the 950,000 corrupted images generated
once per run. Measured here, on the CPU: each architecture's forward pass (images/s, feature hook
included, as `extract` runs it), the CPU side of one unit (metrics kernel + the Parquet write of
10,000 sample rows) and the corruption cost per image (all 19 × 5 on a few real patches,
linear in the number of images). Not measured: a GPU's forward rate (no GPU on this machine),
so the GPU rows take it as a parameter and say so. Training and pruning are not counted (a study
of given checkpoints; recipes vary).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from benchmarks.bench_corruptions import CIFAR_TEST, photo_patches
from pipeline import store
from pipeline.corruptions import CORRUPTION_NAMES, SEVERITIES, corrupt
from pipeline.metrics import sample_metrics
from pipeline.models import build_model, final_linear
from pipeline.training import Normalizer, extract

EVALSETS = 1 + len(CORRUPTION_NAMES) * len(SEVERITIES)


def forward_rate(arch: str, n: int, batch: int) -> tuple[float, int]:
    """Images per second of `arch`'s feature pass on n random 32×32 RGB images, and its feature width."""
    torch.manual_seed(0)
    model = build_model(arch, None, {}, 3, (32, 32), 10)
    norm = Normalizer((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    images = np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    _, head = final_linear(model, norm(images[:2], torch.device("cpu")))
    extract(model, head, images[:batch], norm, torch.device("cpu"), batch)  # warm-up
    t = time.perf_counter()
    extract(model, head, images, norm, torch.device("cpu"), batch)
    return n / (time.perf_counter() - t), head.in_features


def unit_side_seconds(width: int, classes: int = 10) -> float:
    """Metrics kernel and the samples file of one 10,000-image unit (random features of `width`)."""
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.normal(size=(CIFAR_TEST, width)).astype(np.float32))
    w = torch.as_tensor(rng.normal(size=(classes, width)).astype(np.float32))
    y = torch.as_tensor(rng.integers(0, classes, CIFAR_TEST))
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        m = sample_metrics(x, w, torch.zeros(classes), y)
        cols = {k: m[k] for k in ("confidence", "loss", "length", "margin", "angle", "correct", "zero_feature")}
        cols["angles"] = pa.FixedSizeListArray.from_arrays(m["angles"].reshape(-1), classes)
        store.write_table(pa.table(cols), Path(tmp) / "samples.parquet")
        return time.perf_counter() - t


def corruption_seconds_per_image(n: int) -> float:
    """Seconds per corrupted image, averaged over all 19 corruptions × 5 severities on n real patches."""
    x, ids = photo_patches(n), np.arange(n)
    t = time.perf_counter()
    for name in CORRUPTION_NAMES:
        for s in SEVERITIES:
            corrupt(x, name, s, ids)
    return (time.perf_counter() - t) / (n * len(CORRUPTION_NAMES) * len(SEVERITIES))


def hours(seconds: float) -> str:
    return f"{seconds / 3600:,.1f} h"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", type=int, default=100)
    ap.add_argument("--archs", nargs="+", default=["vgg16_cifar", "resnet18_cifar"])
    ap.add_argument("--n", type=int, default=128, help="images for the forward-rate measurement")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--corrupt-n", type=int, default=100, help="patches for the corruption cost")
    ap.add_argument("--gpus", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument(
        "--gpu-rate", type=float, nargs="+", default=[2_000.0, 10_000.0], help="ASSUMED GPU images/s (unmeasured)"
    )
    args = ap.parse_args()
    load = os.getloadavg()[0]
    units = args.models * EVALSETS
    corrupt_total = corruption_seconds_per_image(args.corrupt_n) * CIFAR_TEST * (EVALSETS - 1)
    print(f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, load average {load:.1f}")
    print(f"study: {args.models} models x {EVALSETS} sets x {CIFAR_TEST:,} images = {units:,} evaluation units")
    print(f"corruptions, generated once per run: {corrupt_total:,.0f} s of CPU (measured, extrapolated)")
    rows = []
    for arch in args.archs:
        rate, width = forward_rate(arch, args.n, args.batch)
        side = unit_side_seconds(width)
        cpu_unit = CIFAR_TEST / rate + side
        print(
            f"{arch}: CPU forward {rate:.0f} img/s; one unit on this CPU {cpu_unit:.1f} s "
            f"(forward {CIFAR_TEST / rate:.1f} s + metrics and write {side:.2f} s)"
        )
        cpu_total = corrupt_total + units * cpu_unit
        print(f"  the study on this 2-core CPU: {hours(cpu_total)}")
        gpu = []
        for g in args.gpu_rate:
            per_unit = CIFAR_TEST / g + side  # the CPU side measured here is an upper bound: on a GPU it runs there
            gpu += [
                f"{n} GPU{'s' * (n > 1)} at {g:,.0f} img/s: {hours((corrupt_total + units * per_unit) / n)}"
                for n in args.gpus
            ]
        for line in gpu:
            print(f"  {line}")
        rows.append(
            f"{arch}: CPU {rate:.0f} img/s, {cpu_unit:.0f} s/unit, study {hours(cpu_total)} on this CPU; "
            f"on N GPUs (assumed rates) {'; '.join(gpu)}"
        )
    print(
        f"| `bench_projection`: {args.models}-model CIFAR-10-C study ({units:,} units + corruptions once), from "
        f"per-unit CPU times measured here (load average {load:.0f}); GPU rates assumed, not measured | "
        f"{' / '.join(rows)} | |"
    )


if __name__ == "__main__":
    main()
