"""The demo run from nothing to a complete store (target: at most 60 s on 2 cores).

Runs `python -m pipeline run configs/demo.toml` into a fresh temporary store, as a user
would, and prints the wall time including interpreter start-up.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as store:
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "pipeline", "run", "configs/demo.toml", "--store", store],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        elapsed = time.perf_counter() - t
        if proc.returncode != 0:
            sys.exit(proc.stderr)
        check = subprocess.run(
            [sys.executable, "-m", "pipeline", "validate", f"{store}/demo"], cwd=REPO, capture_output=True, text=True
        )
        print(proc.stdout.strip())
        print(check.stdout.strip())
        print(
            f"demo run from nothing: {elapsed:.1f} s "
            f"(load average {load:.1f} at start, {os.getloadavg()[0]:.1f} at the end)"
        )
        print(
            "| `bench_demo`: demo run from nothing to a valid store (56 models × 96 evaluation sets), "
            f"load average {load:.0f} on {os.cpu_count()} cores | {elapsed:.1f} s | ≤ 60 s (about a minute) |"
        )


if __name__ == "__main__":
    main()
