"""Attribution maps per second, per method, on this machine's CPU (and its GPU when it has one).

    python -m benchmarks.bench_attribution [--samples 16] [--repeats 3] [--threads N]

Times `pipeline.attribution.compute_maps` (Captum) on a batch of random images for two cases:
the demo's model (digits_cnn, 8×8×1) with the demo's settings (configs/demo.toml [attribution]),
and lenet5 on CIFAR-sized images (32×32×3) with the default settings. The weights are random: the
time does not depend on them. Prints one Markdown row per case and device (the README's table),
the best of `repeats` runs after one warm-up.
"""

from __future__ import annotations

import argparse
import time
import tomllib
from pathlib import Path

import torch

from pipeline.attribution import ATTRIBUTIONS, compute_maps
from pipeline.config import AttributionConfig
from pipeline.models import build_model

REPO = Path(__file__).resolve().parents[1]


def demo_settings() -> AttributionConfig:
    """The [attribution] table of configs/demo.toml (the defaults where it has none)."""
    table = tomllib.loads((REPO / "configs" / "demo.toml").read_text()).get("attribution", {})
    return AttributionConfig(**{k: tuple(v) if k == "methods" else v for k, v in table.items()})


def maps_per_second(
    arch: str, shape: tuple[int, int, int], cfg: AttributionConfig, method: str, n: int, repeats: int, device: str
) -> float:
    """Best-of-`repeats` maps per second of one method on `n` random images of `shape` (H, W, C)."""
    h, w, c = shape
    torch.manual_seed(0)
    model = build_model(arch, None, {}, c, (h, w), 10).to(device).eval()
    x = torch.randn(n, c, h, w, device=device)
    base = torch.zeros(1, c, h, w, device=device)
    targets = torch.randint(0, 10, (n,), device=device)
    compute_maps(model, method, x, base, targets, cfg)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        compute_maps(model, method, x, base, targets, cfg)
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return n / best


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=16, help="images per call (the demo maps at most 16 per model)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--device", choices=("all", "cpu", "cuda"), default="all", help="all: the CPU and any GPU")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    demo = demo_settings()
    cases = [
        ("digits_cnn 8×8×1, demo settings", "digits_cnn", (8, 8, 1), demo),
        ("lenet5 32×32×3, default settings", "lenet5", (32, 32, 3), AttributionConfig()),
    ]
    devices = [d for d in ("cpu", "cuda") if args.device in ("all", d) and (d == "cpu" or torch.cuda.is_available())]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, {args.samples} images per call")
    if args.device != "cpu" and not torch.cuda.is_available():
        print("GPU: none on this machine, not measured")
    print("| model, settings | device | " + " | ".join(ATTRIBUTIONS.names()) + " |")
    print("|---|---|" + "---|" * len(ATTRIBUTIONS.names()))
    for label, arch, shape, cfg in cases:
        for device in devices:
            rates = [
                maps_per_second(arch, shape, cfg, m, args.samples, args.repeats, device) for m in ATTRIBUTIONS.names()
            ]
            print(f"| {label} | {device} | " + " | ".join(f"{r:,.0f} maps/s" for r in rates) + " |", flush=True)


if __name__ == "__main__":
    main()
