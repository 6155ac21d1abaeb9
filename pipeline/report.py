"""Terminal report of a run: accuracy per model and evaluation set, and Table 1 when corrupted sets exist."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.dataset as pads

from pipeline import store
from pipeline.stats import pearson


def table1(run_dir: Path) -> pd.DataFrame:
    """Pearson correlation, per model, of per-sample robustness with clean angle, length and margin."""
    models = store.read_table(run_dir / store.MODELS, columns=["model_id"]).column("model_id").to_pylist()
    files = [
        str(p) for p in (store.samples_path(run_dir, m, store.CLEAN, 0) for m in models) if p.is_file()
    ]  # open only the clean files
    if not files:
        return pd.DataFrame(columns=["angle", "length", "margin"], dtype=float)
    ds = pads.dataset(files, format="parquet", partitioning="hive", partition_base_dir=str(run_dir / store.SAMPLES_DIR))
    df = ds.to_table(columns=["model_id", "angle", "length", "margin", "robustness"]).to_pandas()
    rows = {}
    for model_id, g in df.groupby("model_id", sort=True):
        rows[model_id] = {
            m: pearson(g["robustness"].to_numpy(), g[m].to_numpy()) for m in ("angle", "length", "margin")
        }
    return pd.DataFrame.from_dict(rows, orient="index", columns=["angle", "length", "margin"])


def render_report(run_dir: Path) -> str:
    """Accuracy table (models × evaluation sets) and, with corrupted sets, Table 1."""
    meta = store.read_run_json(run_dir)
    models = store.read_table(run_dir / store.MODELS).to_pandas()
    evals = store.read_table(run_dir / store.EVALUATIONS).to_pandas()
    evals["set"] = [store.evalset_name(c, s) for c, s in zip(evals["corruption"], evals["severity"])]
    acc = evals.pivot(index="model_id", columns="set", values="accuracy")
    cols = ["clean"] + sorted(c for c in acc.columns if c != "clean")
    acc = acc[cols].reindex(models["model_id"])
    info = models.set_index("model_id")[["method", "sparsity"]]
    out = [f"run {run_dir.name}: {meta['dataset']}, {meta['num_classes']} classes, {len(models)} models", ""]
    if len(cols) > 6:
        acc = pd.DataFrame({"clean": acc["clean"], "corrupted (mean)": acc[cols[1:]].mean(axis=1)})
    out.append(info.join(acc).to_string(float_format=lambda v: f"{v:.3f}"))
    if len(cols) > 1:
        out += [
            "",
            "Table 1: Pearson correlation of per-sample robustness with clean geometry",
            table1(run_dir).to_string(float_format=lambda v: f"{v:+.3f}"),
        ]
    return "\n".join(out)
