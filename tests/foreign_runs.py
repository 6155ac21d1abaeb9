"""Runs as another tool writes them from docs/store.md alone (pandas defaults, optional columns
left out, one file per model with any name), and damaged copies of a pipeline run."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

CLASSES = ["cat", "dog", "owl"]
SETS = [("clean", 0), ("fog", 1), ("fog", 2)]
N, DIM = 60, 4


def _geometry(x: np.ndarray, w: np.ndarray, b: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """The per-sample columns of docs/store.md for features x, as plain float64/int64 arrays."""
    logits = x @ w.T + b
    pred = logits.argmax(1)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    length = np.linalg.norm(x, axis=1)
    cos = (x @ w.T) / (length[:, None] * np.linalg.norm(w, axis=1)[None, :])
    angles = np.degrees(np.arccos(np.clip(cos, -1, 1)))
    rows = np.arange(len(x))
    diff = w[labels][:, None, :] - w[None, :, :]  # (N, C, m)
    dist = np.abs(np.einsum("ncm,nm->nc", diff, x)) / np.maximum(np.linalg.norm(diff, axis=2), 1e-12)
    dist[rows, labels] = np.inf
    margin = dist.min(1) * np.where(pred == labels, 1.0, -1.0)
    return {
        "label": labels,
        "pred": pred,
        "correct": pred == labels,
        "confidence": p[rows, pred],
        "loss": -np.log(p[rows, labels]),
        "length": length,
        "margin": margin,
        "angle": angles[rows, labels],
        "angles": list(angles),
    }


def write_foreign_run(run_dir: Path) -> Path:
    """A complete run written with pandas' defaults: int64/float64, list<double> angles, no
    steps/init/channel_sparsity/robustness/zero_feature, one `part-0.parquet` per model."""
    rng = np.random.default_rng(0)
    run_dir.mkdir(parents=True)
    labels = np.arange(N) % len(CLASSES)
    centres = rng.normal(size=(len(CLASSES), DIM)) * 3
    clean = centres[labels] + rng.normal(size=(N, DIM))
    w_dense = centres + rng.normal(size=centres.shape) * 0.1
    w_pruned = np.where(rng.random(w_dense.shape) < 0.5, 0.0, w_dense)
    heads, evaluations, models = [], [], []
    for model_id, w in (("dense", w_dense), ("pruned", w_pruned)):
        b = np.zeros(len(CLASSES))
        rows = []
        for corruption, severity in SETS:
            x = clean + rng.normal(size=clean.shape) * severity
            frame = pd.DataFrame({"corruption": corruption, "severity": severity, "sample_id": np.arange(N)})
            frame = frame.assign(**_geometry(x, w, b, labels))
            rows.append(frame)
            evaluations.append(
                {
                    "model_id": model_id,
                    "corruption": corruption,
                    "severity": severity,
                    "n": N,
                    "accuracy": frame["correct"].mean(),
                    "mean_angle": frame["angle"].mean(),
                    "mean_length": frame["length"].mean(),
                    "mean_margin": frame["margin"].mean(),
                }
            )
        part = run_dir / "samples" / f"model_id={model_id}"
        part.mkdir(parents=True)
        pd.concat(rows, ignore_index=True).to_parquet(part / "part-0.parquet")
        heads += [{"model_id": model_id, "class_index": j, "weight": list(w[j]), "bias": 0.0} for j in range(len(w))]
        models.append(
            {
                "model_id": model_id,
                "arch": "mlp",
                "method": "dense" if model_id == "dense" else "magnitude",
                "scope": None if model_id == "dense" else "global",
                "schedule": None if model_id == "dense" else "oneshot",
                "finetune_epochs": 0,
                "target_sparsity": 0.0 if model_id == "dense" else 0.5,
                "sparsity": float((w == 0).mean()),
                "params_total": w.size,
                "params_nonzero": int((w != 0).sum()),
                "parent_id": None if model_id == "dense" else "dense",
                "clean_accuracy": evaluations[-len(SETS)]["accuracy"],
                "seed": 0,
                "checkpoint": None,
            }
        )
    pd.DataFrame(models).to_parquet(run_dir / "models.parquet")
    pd.DataFrame(evaluations).to_parquet(run_dir / "evaluations.parquet")
    pd.DataFrame(heads).to_parquet(run_dir / "heads.parquet")
    pngs = []
    for i in range(N):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(buf, format="PNG")
        pngs.append(buf.getvalue())
    pd.DataFrame({"sample_id": np.arange(N), "label": labels, "png": pngs}).to_parquet(run_dir / "images.parquet")
    meta = {"schema_version": 1, "dataset": "toy", "num_classes": len(CLASSES), "class_names": CLASSES}
    (run_dir / "run.json").write_text(json.dumps(meta))
    return run_dir


def _edit_run_json(run: Path, edit: Callable[[dict], None]) -> None:
    meta = json.loads((run / "run.json").read_text())
    edit(meta)
    (run / "run.json").write_text(json.dumps(meta))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _angles_as_double(run: Path) -> None:
    for path in (run / "samples").glob("*/*.parquet"):
        table = pq.read_table(path)
        i = table.schema.get_field_index("angles")
        pq.write_table(table.set_column(i, "angles", table.column("angles").cast(pa.list_(pa.float64()))), path)


def _preds_out_of_range(run: Path) -> None:
    table = pq.read_table(run / "evaluations.parquet")
    preds = [None if v is None else [999, *v[1:]] for v in table.column("preds").to_pylist()]
    i = table.schema.get_field_index("preds")
    pq.write_table(table.set_column(i, "preds", pa.array(preds, pa.list_(pa.int16()))), run / "evaluations.parquet")


DENSE = "digits_cnn-dense"

# damage name -> (what it does to a copy of a pipeline run, a phrase of its message or None when the run
# reads cleanly, how many callbacks at least show it: the problems panel and the views that need the file)
DAMAGES: dict[str, tuple[Callable[[Path], None], str | None, int]] = {
    "truncated samples file": (
        lambda r: _truncate(r / "samples" / f"model_id={DENSE}" / "clean.parquet"),
        "clean.parquet: is not a readable samples file",
        3,
    ),
    "missing samples partition": (
        lambda r: shutil.rmtree(r / "samples" / f"model_id={DENSE}"),
        f"the samples of model '{DENSE}' are missing",
        3,
    ),
    "missing images.parquet": (lambda r: (r / "images.parquet").unlink(), "images.parquet is missing", 1),
    "run.json without class_names": (
        lambda r: _edit_run_json(r, lambda m: m.pop("class_names")),
        "class_names is missing",
        1,
    ),
    "3 class names for 10 labels": (
        lambda r: _edit_run_json(r, lambda m: m.update(class_names=m["class_names"][:3])),
        "3 class names for 10 classes",
        1,
    ),
    "angles as list<double>": (_angles_as_double, None, 0),
    "stored predictions of a class out of range": (_preds_out_of_range, "preds holds class 999", 1),
}
