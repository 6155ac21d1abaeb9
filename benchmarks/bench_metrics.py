"""Metrics kernel cost relative to the matrix product X·Wᵀ alone (target: at most 2×).

N = 100,000 samples, m = 512 features, C ∈ {10, 100, 1000} classes, float32 on the CPU.
Prints one line per C: the median time of X·Wᵀ, of `sample_metrics`, and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from pipeline.metrics import sample_metrics


def median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--m", type=int, default=512)
    ap.add_argument("--classes", type=int, nargs="+", default=[10, 100, 1000])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.n, args.m, generator=gen)
    print(f"metrics kernel, N={args.n}, m={args.m}, torch threads={torch.get_num_threads()}")
    print(f"{'C':>6} {'X·Wᵀ ms':>10} {'metrics ms':>11} {'ratio':>6}")
    for c in args.classes:
        w = torch.randn(c, args.m, generator=gen)
        b = torch.randn(c, generator=gen)
        y = torch.randint(0, c, (args.n,), generator=gen)
        t_mm = median_time(lambda: x @ w.T, args.repeats)
        t_metrics = median_time(lambda: sample_metrics(x, w, b, y), args.repeats)
        print(f"{c:>6} {t_mm * 1e3:>10.1f} {t_metrics * 1e3:>11.1f} {t_metrics / t_mm:>6.2f}")


if __name__ == "__main__":
    main()
