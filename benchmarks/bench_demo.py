"""The demo run from nothing to a complete store (target: at most 60 s on 2 cores).

Runs `python -m pipeline run configs/demo.toml` into a fresh temporary store, as a user
would, and prints the wall time including interpreter start-up.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
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
        print(f"demo run from nothing: {elapsed:.1f} s")


if __name__ == "__main__":
    main()
