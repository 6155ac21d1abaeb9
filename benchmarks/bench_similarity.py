"""Time `run_similarity` (the similarity view's read: every model's predictions on one evaluation
set) in a fresh process, from evaluations.parquet's stored `preds` and from the samples files (the
same run as another tool may write it: a folder of links to the run's files whose
evaluations.parquet has no `preds`), and check that both give the same numbers; then the bytes
`preds` adds to evaluations.parquet on the clean sets and, were it stored there, on every set.

    python -m benchmarks.bench_similarity RUN_DIR [--set clean] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import store

CHILD = """
import json, sys, time
import numpy as np
from pipeline.store import EvalSet
from pipeline.store.similarity import run_similarity
start = time.perf_counter()
sim = run_similarity(sys.argv[1], EvalSet.parse(sys.argv[2]))
took = time.perf_counter() - start
print(json.dumps({"s": took, "models": len(sim.model_ids), "n": sim.n, "sum": float(np.nansum(sim.agreement))}))
"""


def time_once(run_dir: Path, evalset: str) -> dict:
    """One fresh process's run_similarity: seconds, models, samples and a checksum of the agreement."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(run_dir), evalset], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def without_preds(run_dir: Path, into: Path) -> Path:
    """A run folder of links to `run_dir`'s files whose evaluations.parquet has no `preds`."""
    out = into / run_dir.name
    out.mkdir()
    for entry in run_dir.iterdir():
        if entry.name != store.EVALUATIONS:
            (out / entry.name).symlink_to(entry.resolve())
    table = pq.read_table(run_dir / store.EVALUATIONS)
    pq.write_table(table.drop_columns([c for c in ["preds"] if c in table.column_names]), out / store.EVALUATIONS)
    return out


def column_bytes(path: Path, column: str) -> int:
    """Compressed bytes of one column of a Parquet file, from its footer."""
    meta = pq.ParquetFile(path).metadata
    leaves = [k for k in range(meta.num_columns) if meta.schema.column(k).path.split(".")[0] == column]
    return sum(meta.row_group(g).column(k).total_compressed_size for g in range(meta.num_row_groups) for k in leaves)


def preds_bytes(models: int, sets: int, n: int, classes: int, seed: int = 0) -> int:
    """Bytes of a `preds` column of `models` × `sets` arrays of n predictions of 80-95 % accuracy on
    labels in random order (real data: synthetic runs' labels repeat 0, 1, ..., C − 1 and compress
    better), written as the store writes tables."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    rows = []
    for _ in range(models * sets):
        wrong = rng.random(n) > rng.uniform(0.8, 0.95)
        rows.append(np.where(wrong, rng.integers(0, classes, n), labels).astype(np.int16))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "preds.parquet"
        store.write_table(pa.table({"preds": pa.array(rows, pa.list_(pa.int16()))}), path)
        return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--set", default=store.CLEAN, help="the evaluation set (clean, fog-3, ...)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    stored = pq.read_table(args.run_dir / store.EVALUATIONS)
    has = "preds" in stored.column_names and stored.column("preds").null_count < stored.num_rows
    with tempfile.TemporaryDirectory() as tmp:
        bare = without_preds(args.run_dir, Path(tmp))
        runs = {"from the samples files": [time_once(bare, args.set) for _ in range(args.repeat)]}
        if has:
            runs["from evaluations.parquet's preds"] = [time_once(args.run_dir, args.set) for _ in range(args.repeat)]
    answers = {json.dumps({k: v for k, v in r.items() if k != "s"}) for rs in runs.values() for r in rs}
    first = next(iter(runs.values()))[0]
    print(f"run_similarity of {args.run_dir.name} on {args.set}: {first['models']} models × {first['n']} samples")
    for name, rs in runs.items():
        secs = [r["s"] for r in rs]
        print(
            f"  {name}: first {secs[0] * 1e3:.0f} ms, median {statistics.median(secs) * 1e3:.0f} ms (fresh processes)"
        )
    print("  same numbers: " + ("yes" if len(answers) == 1 else f"NO ({answers})"))
    if not has:
        print("  (the run stores no preds)")
    path = args.run_dir / store.EVALUATIONS
    models = len(set(stored.column("model_id").to_pylist()))
    sets = stored.num_rows // max(models, 1)
    classes = json.loads((args.run_dir / store.RUN_JSON).read_text())["num_classes"]
    print(
        f"evaluations.parquet: {path.stat().st_size / 1e6:.2f} MB, "
        f"its preds {column_bytes(path, 'preds') / 1e6:.2f} MB; "
        f"real predictions at this shape ({models} models × {sets} sets × {first['n']} samples): "
        f"clean sets {preds_bytes(models, 1, first['n'], classes) / 1e6:.2f} MB, every set about "
        f"{preds_bytes(min(models, 20), sets, first['n'], classes) * models / min(models, 20) / 1e6:.0f} MB"
    )


if __name__ == "__main__":
    main()
