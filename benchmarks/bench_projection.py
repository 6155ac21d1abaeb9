"""A 100-model CIFAR-10-C study, projected from per-unit times measured on this machine.

The study: M models (default 100) × 96 evaluation sets (clean + 19 corruptions × 5 severities)
× 10,000 test images, i.e. M × 96 evaluation units, plus the 950,000 corrupted images generated
once per run. Measured on `--device` (the CPU by default, `cuda` for a GPU): each architecture's
forward pass (images/s, feature hook included, as `extract` runs it) and one unit as the pipeline
runs it (forward, metrics kernel on the same device, the Parquet write of the sample rows), timed
on `--n` images and scaled to 10,000; on the CPU, the corruption cost per image (all 19 × 5 on a
few real patches, linear in the number of images). With `--device cuda` the "N GPUs" rows divide
the study over N workers at the unit time measured on this GPU; on the CPU they take assumed GPU
rates (`--gpu-rate`) and say so. Training and pruning are not counted (a study of given
checkpoints; recipes vary).
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
from pipeline.training import Normalizer, extract, resolve_device

EVALSETS = 1 + len(CORRUPTION_NAMES) * len(SEVERITIES)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def unit_rates(arch: str, n: int, batch: int, device: torch.device) -> tuple[float, float, int]:
    """On n random 32×32 RGB images: images/s of `arch`'s feature pass alone and of a whole unit
    (feature pass, metrics on the same device, the samples file), and the feature width."""
    torch.manual_seed(0)
    model = build_model(arch, None, {}, 3, (32, 32), 10)
    norm = Normalizer((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    images = np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    labels = torch.as_tensor(np.random.default_rng(1).integers(0, 10, n))
    _, head = final_linear(model, norm(images[:2], torch.device("cpu")))
    model.to(device)

    def unit(out: Path) -> None:
        feats = extract(model, head, images, norm, device, batch)
        m = sample_metrics(feats, head.weight.detach(), head.bias.detach(), labels)
        cols = {k: m[k] for k in ("confidence", "loss", "length", "margin", "angle", "correct", "zero_feature")}
        cols["angles"] = pa.FixedSizeListArray.from_arrays(m["angles"].reshape(-1), m["angles"].shape[1])
        store.write_table(pa.table(cols), out)

    extract(model, head, images[:batch], norm, device, batch)  # warm-up (cuDNN picks its kernels)
    _sync(device)
    t = time.perf_counter()
    extract(model, head, images, norm, device, batch)
    _sync(device)
    forward = n / (time.perf_counter() - t)
    with tempfile.TemporaryDirectory() as tmp:
        unit(Path(tmp) / "warm.parquet")
        t = time.perf_counter()
        unit(Path(tmp) / "samples.parquet")
        whole = n / (time.perf_counter() - t)
    return forward, whole, head.in_features


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
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto: where the units are measured")
    ap.add_argument("--n", type=int, default=128, help="images per measurement (a GPU wants 10,000)")
    ap.add_argument("--batch", type=int, default=64, help="images per forward call (the pipeline's default is 512)")
    ap.add_argument("--corrupt-n", type=int, default=100, help="patches for the corruption cost (CPU)")
    ap.add_argument("--gpus", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument(
        "--gpu-rate", type=float, nargs="+", default=[2_000.0, 10_000.0], help="ASSUMED GPU images/s (CPU runs)"
    )
    args = ap.parse_args()
    device = resolve_device(args.device)
    on_gpu = device.type == "cuda"
    load = os.getloadavg()[0]
    units = args.models * EVALSETS
    corrupt_total = corruption_seconds_per_image(args.corrupt_n) * CIFAR_TEST * (EVALSETS - 1)
    where = torch.cuda.get_device_name(device) if on_gpu else f"{os.cpu_count()} CPUs"
    print(f"{where}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads, load average {load:.1f}")
    print(f"study: {args.models} models x {EVALSETS} sets x {CIFAR_TEST:,} images = {units:,} evaluation units")
    print(f"corruptions, generated once per run: {corrupt_total:,.0f} s of one CPU core (measured, extrapolated)")
    rows = []
    for arch in args.archs:
        forward, whole, _ = unit_rates(arch, args.n, args.batch, device)
        unit_s = CIFAR_TEST / whole
        print(
            f"{arch} on {device.type}: forward {forward:,.0f} img/s; forward + metrics + write {whole:,.0f} img/s "
            f"(overhead {forward / whole:.3f}); one unit of {CIFAR_TEST:,} images {unit_s:.2f} s",
            flush=True,
        )
        if on_gpu:
            studies = [(n, (corrupt_total + units * unit_s) / n) for n in args.gpus]
            gpu = [f"{n} GPU{'s' * (n > 1)}: {hours(t)}" for n, t in studies]
            rows.append(
                f"{arch}: {forward:,.0f} img/s forward, {whole:,.0f} img/s per unit ({unit_s:.2f} s/unit); "
                f"study on {'; '.join(gpu)}"
            )
        else:
            cpu_total = corrupt_total + units * unit_s
            print(f"  the study on this CPU: {hours(cpu_total)}")
            gpu = [
                f"{n} GPU{'s' * (n > 1)} at {g:,.0f} img/s: {hours((corrupt_total + units * CIFAR_TEST / g) / n)}"
                for g in args.gpu_rate
                for n in args.gpus
            ]
            rows.append(
                f"{arch}: CPU {whole:.0f} img/s, {unit_s:.0f} s/unit, study {hours(cpu_total)} on this CPU; "
                f"on N GPUs (assumed rates) {'; '.join(gpu)}"
            )
        for line in gpu:
            print(f"  {line}")
    measured = (
        f"per-unit times measured on {where} ({args.n:,} images, batch {args.batch})"
        if on_gpu
        else f"per-unit CPU times measured here (load average {load:.0f}); GPU rates assumed, not measured"
    )
    print(
        f"| `bench_projection --device {device.type}`: {args.models}-model CIFAR-10-C study ({units:,} units + "
        f"corruptions once, spread over the N workers, each a CPU core), from {measured} | {' / '.join(rows)} | |"
    )


if __name__ == "__main__":
    main()
