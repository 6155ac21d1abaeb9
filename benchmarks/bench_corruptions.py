"""Corruption throughput: images per second for each corruption on 32×32 RGB, and the peer.

Our suite runs all five severities of every corruption on N real 32×32 photo patches
(scikit-learn's sample images; N = 10,000 is the size of CIFAR-10-C: 950,000 images in
all). With `--peer-python`, the same images go through the `imagecorruptions` package
(`pip install -r benchmarks/requirements-peer.txt` into that interpreter's environment),
one image at a time as its API takes them; it uses ImageNet-C constants, so compare speed
only. The peer runs alongside in its own interpreter and times each corruption right after ours,
so both sides of a ratio see the same load on a shared machine. Targets: all 19 × 5 for 10,000
images within 10 minutes; at least 5× the peer.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from sklearn.datasets import load_sample_images

from pipeline.corruptions import CORRUPTION_NAMES, SEVERITIES, corrupt

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
    """n real 32×32 RGB patches (repeating the 520 distinct ones of the two sample photos)."""
    tiles = []
    for img in load_sample_images().images:
        for r in range(img.shape[0] // 32):
            for c in range(img.shape[1] // 32):
                tiles.append(img[r * 32 : (r + 1) * 32, c * 32 : (c + 1) * 32])
    reps = -(-n // len(tiles))
    return np.stack((tiles * reps)[:n]).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=10_000, help="images per severity")
    ap.add_argument("--chunk", type=int, default=2048, help="images per call, as the pipeline batches them")
    ap.add_argument("--peer-python", help="an interpreter with imagecorruptions installed")
    ap.add_argument("--peer-n", type=int, default=200, help="images per severity for the (slow) peer")
    args = ap.parse_args()
    x = photo_patches(args.n)
    ids = np.arange(args.n)
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
            t = time.perf_counter()
            for s in SEVERITIES:
                for lo in range(0, args.n, args.chunk):
                    corrupt(x[lo : lo + args.chunk], name, s, ids[lo : lo + args.chunk])
            elapsed = time.perf_counter() - t
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
