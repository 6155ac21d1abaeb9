"""Corruption throughput: images per second for each corruption on 32×32 RGB, and the peer.

Our suite runs all five severities of every corruption on N real 32×32 photo patches
(scikit-learn's sample images; N = 10,000 is the size of CIFAR-10-C: 950,000 images in
all). With `--peer-python`, the same images go through the `imagecorruptions` package
(`pip install -r benchmarks/requirements-peer.txt` into that interpreter's environment),
one image at a time as its API takes them; it uses ImageNet-C constants, so compare speed
only. Targets: all 19 × 5 for 10,000 images within 10 minutes; at least 5× the peer.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_sample_images

from pipeline.corruptions import CORRUPTION_NAMES, SEVERITIES, corrupt

PEER_SCRIPT = """
import json, sys, time, numpy as np
from imagecorruptions import corrupt
x = np.load(sys.argv[1]); names = json.loads(sys.argv[2]); out = {}
for name in names:
    t = time.perf_counter()
    try:
        for s in range(1, 6):
            for img in x:
                corrupt(img, corruption_name=name, severity=s)
        out[name] = len(x) * 5 / (time.perf_counter() - t)
    except Exception as exc:
        out[name] = f"fails: {type(exc).__name__}: {str(exc).splitlines()[0][:60]}"
print(json.dumps(out))
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
    total = 0.0
    for name in CORRUPTION_NAMES:
        t = time.perf_counter()
        for s in SEVERITIES:
            for lo in range(0, args.n, args.chunk):
                corrupt(x[lo : lo + args.chunk], name, s, ids[lo : lo + args.chunk])
        elapsed = time.perf_counter() - t
        total += elapsed
        ours[name] = args.n * len(SEVERITIES) / elapsed
        print(f"  {name:18s} {ours[name]:9.0f} img/s", flush=True)
    peer: dict[str, float | str] = {}
    if args.peer_python:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "x.npy"
            np.save(path, x[: args.peer_n])
            res = subprocess.run(
                [args.peer_python, "-c", PEER_SCRIPT, str(path), json.dumps(list(CORRUPTION_NAMES))],
                capture_output=True,
                text=True,
            )
            peer = (
                json.loads(res.stdout)
                if res.returncode == 0
                else {n: f"peer did not run: {res.stderr.strip()[-80:]}" for n in CORRUPTION_NAMES}
            )
    print(f"\n{'corruption':18s} {'ours img/s':>11s} {'peer img/s':>11s} {'speed-up':>9s}")
    for name in CORRUPTION_NAMES:
        p = peer.get(name, "-")
        ratio = f"{ours[name] / p:8.1f}x" if isinstance(p, float) else ""
        ps = f"{p:11.0f}" if isinstance(p, float) else f"  {p}"
        print(f"{name:18s} {ours[name]:11.0f} {ps} {ratio}")
    ratios = [ours[n] / p for n, p in peer.items() if isinstance(p, float)]
    if ratios:
        print(f"\nmedian speed-up over the {len(ratios)} corruptions both run: {float(np.median(ratios)):.1f}x")
    print(f"\nall 19 x 5 on {args.n} images ({args.n * 95:,} images): {total:.1f} s")


if __name__ == "__main__":
    main()
