"""Fig. 10's margin-change density of one model on a cold reader (a fresh one: nothing memoised but
the run's evaluations table, which the first page reads anyway): from the summary in the model's
clean file's footer (`prunescope.margin_change`), against the same summary computed from the
margins of every evaluation file of the model (what the reader did before the footer, and does for
a run without it). With --demo RUN, what writing the summary adds to the pipeline's robustness
unit of each model of a built run: reading its corrupted sets' margins and summarising them.

    python -m benchmarks.bench_margin --models 10 --evalsets 96 --samples 2000
    python -m benchmarks.bench_margin --demo cache/store/demo
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from app.reader import StoreReader
from benchmarks.make_synthetic_store import write_synthetic_run
from pipeline import store


def cold(store_dir: Path, run: str, model_id: str, from_files: bool) -> tuple[float, dict]:
    """Seconds for one model's summary on a fresh reader, from the footer or from the files."""
    reader = StoreReader(store_dir)
    reader.evaluations(run)
    t = time.perf_counter()
    if from_files:
        summary = store.margin_change_summary(reader.margin_changes(run, model_id))
    else:
        summary = reader.margin_change(run, model_id)
    return time.perf_counter() - t, summary


def reader_times(models: int, evalsets: int, samples: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        write_synthetic_run(Path(tmp), "syn", models, evalsets, samples, 10)
        ids = list(StoreReader(tmp).models("syn")["model_id"])
        footer, files = [], []
        for model_id in ids:
            a, stored = cold(Path(tmp), "syn", model_id, from_files=False)
            b, computed = cold(Path(tmp), "syn", model_id, from_files=True)
            assert stored["n"] == computed["n"] and stored["median"] == computed["median"]
            footer.append(a)
            files.append(b)
    rows = models * evalsets * samples
    f, s = statistics.median(footer), statistics.median(files)
    print(
        f"margin change of one model, cold reader, {rows:,} rows ({models} models x {evalsets} sets x {samples:,}), "
        f"median of {models} models (load average {os.getloadavg()[0]:.1f}): "
        f"from the footer {1000 * f:.1f} ms, from the {evalsets} files {1000 * s:.1f} ms ({s / f:.0f}x)"
    )


def unit_cost(run_dir: Path) -> None:
    """The robustness unit's added work on every model of a built run: read + summarise."""
    ev = store.load(run_dir, store.TABLES["evaluations"], ["model_id", "corruption", "severity"]).to_pandas()
    total, count = 0.0, 0
    for model_id, mine in ev.groupby("model_id"):
        sets = [(c, int(s)) for c, s in zip(mine["corruption"], mine["severity"]) if c != store.CLEAN]
        if not sets:
            continue
        clean = store.read_table(store.samples_path(run_dir, model_id, store.CLEAN, 0))
        t = time.perf_counter()
        store.with_margin_change(clean, store.read_margins(run_dir, model_id, sets), sets)
        total += time.perf_counter() - t
        count += 1
    print(
        f"robustness unit, writing the margin change summary: {count} models, {total:.2f} CPU s in all, "
        f"{1000 * total / max(count, 1):.1f} ms a model (load average {os.getloadavg()[0]:.1f})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", type=int, default=10)
    ap.add_argument("--evalsets", type=int, default=96)
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--demo", type=Path, help="a built run: time the robustness unit's added work on it instead")
    args = ap.parse_args()
    if args.demo:
        unit_cost(args.demo)
    else:
        reader_times(args.models, args.evalsets, args.samples)


if __name__ == "__main__":
    main()
