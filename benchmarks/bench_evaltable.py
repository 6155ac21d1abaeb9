"""Where a brush's time goes in the evaluation table's callback: the selection's accuracy in every
cell (of it, the pick of the selected samples' rows in the run's correctness matrix), the parts a
brush sets (table_parts) and the JSON of the Patch the browser gets, against drawing and sending the
whole figure.

python -m benchmarks.bench_evaltable STORE RUN [--repeats 15] [--severity 3]
In process, one thread, a fresh cache; the table's structure is built once first (as the page's
first draw does), then each brush selects 300 random samples.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time

from plotly.io.json import to_json_plotly

from app.figures.evaltable import SUBSET, table_parts
from app.reader import StoreReader
from app.views import evaltable as view


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("store")
    ap.add_argument("run")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--severity", default="3", help="1 to 5, or mean")
    args = ap.parse_args()
    severity = args.severity if args.severity == "mean" else int(args.severity)
    rng = random.Random(0)
    print(f"load average at the start: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as cache:
        reader = StoreReader(args.store, cache)
        reader.correctness(args.run)
        n = int(reader.evaluations(args.run)["n"].max())
        t = time.perf_counter()
        table = view._structure(reader, args.run, severity, "auto")
        print(
            f"the table's structure (once per run version, severity and mode): {(time.perf_counter() - t) * 1e3:.0f} ms"
        )
        if table is None:
            print("no pruned models: nothing to brush")
            return
        names = ("accuracy per cell", "  of it the pick", "parts", "Patch JSON", "whole figure", "whole figure JSON")
        took: dict[str, list[float]] = {k: [] for k in names}
        patch_kb, whole_kb = [], []
        for _ in range(args.repeats):
            selection = {"samples": sorted(rng.sample(range(n), min(n, 300))), "source": "local"}
            t0 = time.perf_counter()
            subset, size = view._subset(reader, args.run, severity, selection)
            t1 = time.perf_counter()
            reader.subset_accuracy(args.run, selection["samples"])
            t2 = time.perf_counter()
            patch = view._patch(table_parts(table, {SUBSET}, subset=subset, subset_size=size))
            t3 = time.perf_counter()
            patch_json = to_json_plotly(patch)
            t4 = time.perf_counter()
            whole, _ = view._table(reader, args.run, severity, selection, None, None)
            t5 = time.perf_counter()
            whole_json = to_json_plotly(whole)
            t6 = time.perf_counter()
            for key, seconds in zip(took, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5)):
                took[key].append(seconds)
            patch_kb.append(len(patch_json) / 1e3)
            whole_kb.append(len(whole_json) / 1e3)
    print(f"{len(table.cells):,} bars; a brush, {args.repeats} times (ms, median and worst):")
    for key, values in took.items():
        print(f"  {key:18s} {statistics.median(values) * 1e3:7.1f} {max(values) * 1e3:7.1f}")
    print(f"Patch JSON {statistics.median(patch_kb):.0f} kB; the whole figure's {statistics.median(whole_kb):.0f} kB")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
