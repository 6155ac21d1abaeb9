"""Metrics kernel cost relative to the matrix product X·Wᵀ alone (target: at most 2×).

N = 100,000 samples, m = 512 features, C ∈ {10, 100, 1000} classes, float32 on the CPU
(`--device cuda`: on a GPU, each timing ending with a synchronisation).
The machine is shared, so the two sides are timed in the same process, alternately (product, kernel,
product, kernel, ...): each pair sees the same load, and the ratio reported is the median over the pairs.
Prints one line per C (median times and the median ratio) and the README table row.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from pipeline.metrics import sample_metrics
from pipeline.training import resolve_device


def timed(fn, device: torch.device) -> float:
    t = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t


def paired(fn_a, fn_b, repeats: int, device: torch.device) -> tuple[float, float, float]:
    """Median time of a, of b, and median of the ratios b/a over alternating pairs (after one warm-up each)."""
    timed(fn_a, device), timed(fn_b, device)
    pairs = [(timed(fn_a, device), timed(fn_b, device)) for _ in range(repeats)]
    return (
        statistics.median(a for a, _ in pairs),
        statistics.median(b for _, b in pairs),
        statistics.median(b / a for a, b in pairs),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--m", type=int, default=512)
    ap.add_argument("--classes", type=int, nargs="+", default=[10, 100, 1000])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    args = ap.parse_args()
    device = resolve_device(args.device)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.n, args.m, generator=gen).to(device)
    load = os.getloadavg()[0]
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"torch threads={torch.get_num_threads()}"
    print(f"metrics kernel, N={args.n}, m={args.m}, {device.type}, {where}, load average {load:.1f}")
    print(f"{'C':>6} {'X·Wᵀ ms':>10} {'metrics ms':>11} {'ratio':>6}")
    ratios = []
    for c in args.classes:
        w = torch.randn(c, args.m, generator=gen).to(device)
        b = torch.randn(c, generator=gen).to(device)
        y = torch.randint(0, c, (args.n,), generator=gen).to(device)
        t_mm, t_metrics, ratio = paired(lambda: x @ w.T, lambda: sample_metrics(x, w, b, y), args.repeats, device)
        ratios.append(f"C={c}: {ratio:.2f}×")
        print(f"{c:>6} {t_mm * 1e3:>10.1f} {t_metrics * 1e3:>11.1f} {ratio:>6.2f}", flush=True)
    print(
        f"| `bench_metrics --device {device.type}`: metrics / X·Wᵀ, N={args.n:,}, m={args.m}, median of "
        f"{args.repeats} alternating pairs ({where}, load average {load:.0f}) | {', '.join(ratios)} | ≤ 2× |"
    )


if __name__ == "__main__":
    main()
