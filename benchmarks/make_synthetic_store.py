"""Write a contract-valid run of any size without training anything (for app benchmarks).

    python -m benchmarks.make_synthetic_store STORE --models 20 --evalsets 50 --samples 10000 --classes 10

models × evaluation sets × samples per-sample rows; geometry is random but shaped like the
real thing (the true class's angle is smallest for most samples; the margin is positive
exactly for the correct ones), so every view has something to draw. Above
`--full-angles-max-classes` classes (the pipeline's default, 100) the corrupted sets keep the
`--nearest-k` nearest classes, as the pipeline writes them (docs/store.md); the bytes per row
of each form are printed.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from pipeline import store
from pipeline.corruptions import CORRUPTION_NAMES, SEVERITIES

METHODS = ("magnitude", "random", "taylor", "filter", "channel", "mpt")


def evalsets(count: int) -> list[tuple[str, int]]:
    sets = [(store.CLEAN, 0)] + [(c, s) for c in CORRUPTION_NAMES for s in SEVERITIES]
    return sets[:count]


def sample_table(
    rng: np.random.Generator, n: int, c: int, difficulty: float, k: int | None = None
) -> tuple[pa.Table, dict]:
    """One evaluation set's rows: every angle, or (`k`) the k nearest classes and their angles."""
    labels = np.arange(n) % c
    angles = rng.normal(90, 6, (n, c)).astype(np.float32)
    angles[np.arange(n), labels] = rng.normal(60 + 20 * difficulty, 8, n)
    pred = angles.argmin(1)
    correct = pred == labels
    margin = np.abs(rng.normal(2, 1.5, n)).astype(np.float32) * np.where(correct, 1, -1)
    length = rng.gamma(8, 2.5 * (1 - difficulty / 2), n).astype(np.float32)
    table = pa.table(
        {
            "corruption": pa.array([""] * n, pa.string()),
            "severity": np.zeros(n, np.int8),
            "sample_id": np.arange(n, dtype=np.int32),
            "label": labels.astype(np.int16),
            "pred": pred.astype(np.int16),
            "correct": correct,
            "confidence": rng.uniform(0.3, 1, n).astype(np.float32),
            "loss": rng.exponential(0.5, n).astype(np.float32),
            "length": length,
            "margin": margin,
            "angle": angles[np.arange(n), labels],
            **store.angle_columns(angles, k),
            "robustness": np.full(n, np.nan, np.float32),
            "zero_feature": np.zeros(n, bool),
        },
        schema=store.samples_schema(c, k),
    )
    summary = {
        "n": n,
        "accuracy": float(correct.mean()),
        "mean_angle": float(table.column("angle").to_numpy().mean()),
        "mean_length": float(length.mean()),
        "mean_margin": float(margin.mean()),
        "correct_bits": store.pack_correct(np.arange(n), correct),
    }
    return table, summary


def write_synthetic_run(
    store_dir: Path,
    name: str,
    models: int,
    n_evalsets: int,
    samples: int,
    classes: int,
    seed: int = 0,
    bits: bool = True,
    full_angles_max_classes: int = store.ANGLES_FULL_MAX_CLASSES,
    nearest_k: int = store.ANGLES_NEAREST_K,
    file_per_model: bool = False,
) -> Path:
    """The run; `bits=False` leaves out evaluations' correct_bits, as another tool's run may;
    `file_per_model` writes each model's samples as one file of a row group per evaluation set
    (any file may hold several sets: docs/store.md) instead of a file per set."""
    rng = np.random.default_rng(seed)
    angles = (
        {"full": store.ANGLES_ALL}
        if classes <= full_angles_max_classes
        else {"full": store.ANGLES_CLEAN, "k": min(nearest_k, classes), "max_classes": full_angles_max_classes}
    )
    run = Path(store_dir) / name
    run.mkdir(parents=True, exist_ok=True)
    store.write_json(
        {
            "schema_version": store.SCHEMA_VERSION,
            "dataset": "synthetic",
            "num_classes": classes,
            "class_names": [f"class {i}" for i in range(classes)],
            "image_shape": [8, 8, 1],
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "config": {"synthetic": True},
            "prunable_layers": {},
            "angles": angles,
        },
        run / store.RUN_JSON,
    )
    sets = evalsets(n_evalsets)
    model_rows, eval_rows, heads = [], [], []
    for m in range(models):
        mid = (
            "net-dense"
            if m == 0
            else f"net-{METHODS[(m - 1) % len(METHODS)]}-s{10 * (1 + (m - 1) // len(METHODS)) % 100 or 90}-{m}"
        )
        sparsity = 0.0 if m == 0 else min(0.95, 0.1 * (1 + (m - 1) // len(METHODS)))
        clean_acc, parts, margins = None, [], {}
        for k, (corr, sev) in enumerate(sets):
            k = angles.get("k") if corr != store.CLEAN else None
            table, summary = sample_table(rng, samples, classes, min(0.9, sparsity / 2 + sev / 10), k)
            table = table.set_column(0, "corruption", pa.array([corr] * samples, pa.string())).set_column(
                1, "severity", pa.array(np.full(samples, sev, np.int8))
            )
            if file_per_model:
                parts.append(table)
            elif corr == store.CLEAN:
                clean = table  # written last, with the summary of the margin changes as the pipeline writes it
            else:
                store.write_samples(table, store.samples_path(run, mid, corr, sev))
                margins[(corr, sev)] = table.select(["sample_id", "margin"])
            eval_rows.append(
                {
                    "model_id": mid,
                    "corruption": corr,
                    "severity": sev,
                    **summary,
                    **({} if bits else {"correct_bits": None}),
                    "preds": (
                        store.pack_preds(np.arange(samples), table.column("pred").to_numpy())
                        if store.stores_preds(corr)
                        else None
                    ),
                }
            )
            if corr == store.CLEAN:
                clean_acc = summary["accuracy"]
        if parts:
            write_row_groups(parts, store.samples_path(run, mid, "all", 0).with_name("samples.parquet"))
        else:
            clean = store.with_margin_change(clean, list(margins.values()), list(margins))
            store.write_samples(clean, store.samples_path(run, mid, store.CLEAN, 0))
        model_rows.append(
            {
                "model_id": mid,
                "arch": "net",
                "method": "dense" if m == 0 else METHODS[(m - 1) % len(METHODS)],
                "scope": None if m == 0 else "global",
                "schedule": None if m == 0 else "oneshot",
                "steps": 0 if m == 0 else 1,
                "finetune_epochs": 0,
                "target_sparsity": sparsity,
                "sparsity": sparsity,
                "params_total": 100_000,
                "params_nonzero": int(100_000 * (1 - sparsity)),
                "parent_id": None if m == 0 else "net-dense",
                "clean_accuracy": clean_acc,
                "seed": seed,
                "checkpoint": None,
                "init": "trained" if m == 0 else "parent",
                "channel_sparsity": None,
            }
        )
        w = rng.normal(size=(classes, 64)).astype(np.float32)
        heads.append(
            pa.table(
                {
                    "model_id": [mid] * classes,
                    "class_index": pa.array(np.arange(classes), pa.int32()),
                    "weight": pa.array(list(w), pa.list_(pa.float32())),
                    "bias": pa.array(np.zeros(classes, np.float32)),
                },
                schema=store.HEADS_SCHEMA,
            )
        )
    store.write_table(pa.Table.from_pylist(model_rows, schema=store.MODELS_SCHEMA), run / store.MODELS)
    store.write_table(pa.Table.from_pylist(eval_rows, schema=store.EVALUATIONS_SCHEMA), run / store.EVALUATIONS)
    store.write_table(pa.concat_tables(heads), run / store.HEADS)
    pngs = []
    for i in range(samples):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(buf, format="PNG")
        pngs.append(buf.getvalue())
    store.write_table(
        pa.table(
            {
                "sample_id": np.arange(samples, dtype=np.int32),
                "label": (np.arange(samples) % classes).astype(np.int16),
                "png": pa.array(pngs, pa.binary()),
            },
            schema=store.IMAGES_SCHEMA,
        ),
        run / store.IMAGES,
    )
    return run


def write_row_groups(tables: list[pa.Table], path: Path) -> None:
    """One Parquet file of a row group per table, written as store.write_table writes (atomic, zstd, checksums)."""
    with (
        store.atomic_path(path) as tmp,
        pq.ParquetWriter(tmp, tables[0].schema, compression="zstd", write_page_checksum=True) as writer,
    ):
        for table in tables:
            writer.write_table(table, row_group_size=table.num_rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("store")
    ap.add_argument("--name", default="synthetic")
    ap.add_argument("--models", type=int, default=20)
    ap.add_argument("--evalsets", type=int, default=50)
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument(
        "--no-bits", action="store_true", help="no correct_bits in evaluations.parquet (another tool's run)"
    )
    ap.add_argument("--full-angles-max-classes", type=int, default=store.ANGLES_FULL_MAX_CLASSES)
    ap.add_argument("--nearest-k", type=int, default=store.ANGLES_NEAREST_K)
    ap.add_argument(
        "--file-per-model", action="store_true", help="one samples file per model, a row group per evaluation set"
    )
    args = ap.parse_args()
    t = time.perf_counter()
    run = write_synthetic_run(
        Path(args.store),
        args.name,
        args.models,
        args.evalsets,
        args.samples,
        args.classes,
        full_angles_max_classes=args.full_angles_max_classes,
        nearest_k=args.nearest_k,
        bits=not args.no_bits,
        file_per_model=args.file_per_model,
    )
    rows = args.models * min(args.evalsets, 96) * args.samples
    problems = store.validate_run(run)
    print(
        f"{run}: {rows:,} sample rows in {time.perf_counter() - t:.1f} s; "
        f"validate: {'ok' if not problems else problems[:3]}"
    )
    if args.file_per_model:  # no file per set to tell clean rows from corrupted ones
        size = sum(p.stat().st_size for p in (run / store.SAMPLES_DIR).glob("*/*.parquet"))
        print(f"bytes per row at {args.classes} classes: {size / rows:.0f} (one file per model)")
    else:
        print(bytes_per_row(run, args.classes, args.samples))
    if args.classes > store.ANGLES_FULL_MAX_CLASSES and not args.file_per_model:
        print(class_read(run, args.classes))


def bytes_per_row(run: Path, classes: int, samples: int) -> str:
    """The samples files' bytes per row on disk (Parquet, zstd), clean and corrupted, and what one
    corrupted set would take with every angle (the form below the class threshold)."""
    sizes: dict[bool, list[int]] = {True: [], False: []}
    for path in (run / store.SAMPLES_DIR).glob("*/*.parquet"):
        sizes[path.stem == store.CLEAN].append(path.stat().st_size)
    per_row = {clean: sum(v) / (len(v) * samples) if v else float("nan") for clean, v in sizes.items()}
    table, _ = sample_table(np.random.default_rng(1), samples, classes, 0.5)  # one set with every angle
    with tempfile.TemporaryDirectory() as tmp:
        store.write_samples(table, Path(tmp) / "full.parquet")
        full = (Path(tmp) / "full.parquet").stat().st_size / samples
    total = sum(sizes[True]) + sum(sizes[False])
    rows = (len(sizes[True]) + len(sizes[False])) * samples
    study = (per_row[True] + 95 * per_row[False]) / 96  # a paper-sized study: clean and 95 corrupted sets
    return (
        f"bytes per row at {classes} classes: clean {per_row[True]:.0f}, corrupted {per_row[False]:.0f}, "
        f"this run's rows {total / rows:.0f}, 1 clean + 95 corrupted sets {study:.0f} "
        f"(every angle on every row: {full:.0f})"
    )


def class_read(run: Path, classes: int, repeats: int = 20) -> str:
    """Median time to read one class's clean rows with every angle (what global geometry reads),
    from the clean file as written (grouped by label, docs/store.md "Row order") and from the same
    rows in one row group in sample order (another tool's file)."""
    model = sorted((run / store.SAMPLES_DIR).iterdir())[0]
    grouped = model / f"{store.CLEAN}.parquet"
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        flat = Path(tmp) / store.SAMPLES_DIR / model.name / grouped.name
        store.write_table(store.read_table(grouped).sort_by("sample_id"), flat)
        for name, root in (("grouped by label", run), ("sample order, one row group", Path(tmp))):
            index = store.SamplesIndex(root, model.name.split("=", 1)[1], {store.CLEAN_SET})
            took = []
            for label in range(0, classes, max(1, classes // repeats))[:repeats]:
                t = time.perf_counter()
                store.read_samples(index, store.CLEAN_SET, ["sample_id", "label", "angles"], classes, [label])
                took.append(time.perf_counter() - t)
            times[name] = sorted(took)[len(took) // 2]
    return "one class's clean rows with every angle, median of {} reads: {}".format(
        repeats, ", ".join(f"{name} {t * 1e3:.1f} ms" for name, t in times.items())
    )


if __name__ == "__main__":
    main()
