"""Corruption throughput: images per second for each corruption on 32×32 RGB, and the peer.

Our suite runs all five severities of every corruption on N real 32×32 photo patches
(scikit-learn's sample images; N = 10,000 is the size of CIFAR-10-C: 950,000 images in
all). With `--peer-python`, the same images go through the `imagecorruptions` package
(`pip install -r benchmarks/requirements-peer.txt` into that interpreter's environment),
one image at a time as its API takes them; it uses ImageNet-C constants, so compare speed
only. The peer runs alongside in its own interpreter and times each corruption right after ours,
so both sides of a ratio see the same load on a shared machine. Targets: all 19 × 5 for 10,000
images within 10 minutes; at least 5× the peer. With `--processes P` (no peer), the 95
corruption × severity jobs run in P worker processes at once instead: the wall time of a
machine's cores generating CIFAR-10-C together (the corruptions are numpy, scipy and Pillow
code on the CPU; a GPU does not take part).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from pipeline.corruptions import CORRUPTION_NAMES, SEVERITIES, corrupt

REPO = Path(__file__).resolve().parents[1]
CIFAR_TEST = 10_000  # CIFAR-10-C: every corruption and severity of the 10,000 test images

PEER_SCRIPT = """
import json, sys, time, numpy as np
from imagecorruptions import corrupt
x = np.load(sys.argv[1])
print("ready", flush=True)
for line in sys.stdin:
    name = line.strip()
    t = time.perf_counter()
    try:
        for s in range(1, 6):
            for img in x:
                corrupt(img, corruption_name=name, severity=s)
        out = len(x) * 5 / (time.perf_counter() - t)
    except Exception as exc:
        out = f"fails: {type(exc).__name__}: {str(exc).splitlines()[0][:60]}"
    print(json.dumps(out), flush=True)
"""


def photo_patches(n: int) -> np.ndarray:
    """n real 32×32 RGB patches: the 520 distinct ones of scikit-learn's two sample photos,
    repeated; where scikit-learn is absent (a GPU machine's bare Python), the six real photos
    of the reference fixture (tests/fixtures/cifar_c_reference.npz), repeated."""
    try:
        from sklearn.datasets import load_sample_images
    except ImportError:
        tiles = list(np.load(REPO / "tests" / "fixtures" / "cifar_c_reference.npz")["images"])
    else:
        tiles = [
            img[r * 32 : (r + 1) * 32, c * 32 : (c + 1) * 32]
            for img in load_sample_images().images
            for r in range(img.shape[0] // 32)
            for c in range(img.shape[1] // 32)
        ]
    reps = -(-n // len(tiles))
    return np.stack((tiles * reps)[:n]).astype(np.uint8)


def run_job(x: np.ndarray, name: str, severity: int, chunk: int) -> float:
    """One corruption at one severity on all of x, in the pipeline's chunks; seconds taken."""
    ids = np.arange(len(x))
    t = time.perf_counter()
    for lo in range(0, len(x), chunk):
        corrupt(x[lo : lo + chunk], name, severity, ids[lo : lo + chunk])
    return time.perf_counter() - t


def parallel(x: np.ndarray, processes: int, chunk: int) -> None:
    """All 19 × 5 jobs on x spread over `processes` workers: wall time and the CIFAR-10-C extrapolation."""
    jobs = [(name, s) for name in CORRUPTION_NAMES for s in SEVERITIES]
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=ctx) as pool:
        list(pool.map(run_job, [x[:8]] * processes, ["brightness"] * processes, [1] * processes, [chunk] * processes))
        t = time.perf_counter()
        busy = sum(pool.map(run_job, [x] * len(jobs), *zip(*jobs), [chunk] * len(jobs)))
        wall = time.perf_counter() - t
    n = len(x)
    print(
        f"all 19 x 5 on {n} images ({n * 95:,} images) in {processes} processes on {os.cpu_count()} CPUs: "
        f"{wall:.1f} s wall ({busy:.1f} s of work, {n * 95 / wall:,.0f} images/s); extrapolated to "
        f"CIFAR-10-C ({CIFAR_TEST * 95:,} images): {wall * CIFAR_TEST / n:.0f} s; load average {os.getloadavg()[0]:.1f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=10_000, help="images per severity")
    ap.add_argument("--chunk", type=int, default=2048, help="images per call, as the pipeline batches them")
    ap.add_argument("--peer-python", help="an interpreter with imagecorruptions installed")
    ap.add_argument("--peer-n", type=int, default=200, help="images per severity for the (slow) peer")
    ap.add_argument("--processes", type=int, default=1, help="run the 95 jobs in this many processes (no peer)")
    args = ap.parse_args()
    x = photo_patches(args.n)
    if args.processes > 1:
        parallel(x, args.processes, args.chunk)
        return
    ours: dict[str, float] = {}
    peer: dict[str, float | str] = {}
    total = 0.0
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        ask = (
            stack.enter_context(peer_process(args.peer_python, x[: args.peer_n], Path(tmp)))
            if args.peer_python
            else None
        )
        for name in CORRUPTION_NAMES:  # ours, then the peer on the same corruption: both under the same load
            elapsed = sum(run_job(x, name, s, args.chunk) for s in SEVERITIES)
            total += elapsed
            ours[name] = args.n * len(SEVERITIES) / elapsed
            if ask is not None:
                peer[name] = ask(name)
            print(f"  {name:18s} {ours[name]:9.0f} img/s  peer: {peer.get(name, '-')}", flush=True)
    print(f"\n{'corruption':18s} {'ours img/s':>11s} {'peer img/s':>11s} {'speed-up':>9s}")
    for name in CORRUPTION_NAMES:
        p = peer.get(name, "-")
        ratio = f"{ours[name] / p:8.1f}x" if isinstance(p, float) else ""
        ps = f"{p:11.0f}" if isinstance(p, float) else f"  {p}"
        print(f"{name:18s} {ours[name]:11.0f} {ps} {ratio}")
    ratios = [ours[n] / p for n, p in peer.items() if isinstance(p, float)]
    median = float(np.median(ratios)) if ratios else float("nan")
    if ratios:
        print(f"\nmedian speed-up over the {len(ratios)} corruptions both run: {median:.1f}x")
    cifar = total * CIFAR_TEST / args.n  # every corruption's cost is linear in the number of images
    print(f"\nall 19 x 5 on {args.n} images ({args.n * 95:,} images): {total:.1f} s, load average {load:.0f} at start")
    print(f"extrapolated to CIFAR-10-C ({CIFAR_TEST * 95:,} images): {cifar:.0f} s")
    print(
        f"| `bench_corruptions --n {args.n}`: all 19 × 5 on {args.n:,} real 32×32 RGB patches, extrapolated "
        f"linearly to CIFAR-10-C's {CIFAR_TEST * 95:,} images (load average {load:.0f}) | {cifar:.0f} s "
        f"({total:.1f} s measured) | ≤ 600 s |"
    )
    if ratios:
        failing = ", ".join(n for n, p in peer.items() if not isinstance(p, float))
        print(
            f"| `bench_corruptions --n {args.n} --peer-n {args.peer_n}`: speed-up over `imagecorruptions` 1.1.2 (same "
            f"images, speed only, each corruption timed on both sides back to back), median over the {len(ratios)} "
            f"corruptions both run | {median:.1f}× ({min(ratios):.1f}× to {max(ratios):.0f}×); the peer fails on "
            f"{failing or 'none'} | ≥ 5× |"
        )


@contextlib.contextmanager
def peer_process(python: str, images: np.ndarray, tmp: Path) -> Iterator[Callable[[str], float | str]]:
    """A running peer interpreter: call the yielded function with a corruption's name to time it there."""
    path = tmp / "x.npy"
    np.save(path, images)
    proc = subprocess.Popen(
        [python, "-c", PEER_SCRIPT, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdin is not None and proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise SystemExit(f"the peer interpreter {python} cannot import imagecorruptions")

    def ask(name: str) -> float | str:
        proc.stdin.write(name + "\n")
        proc.stdin.flush()
        return json.loads(proc.stdout.readline())

    try:
        yield ask
    finally:
        proc.stdin.close()
        proc.wait()


if __name__ == "__main__":
    main()
