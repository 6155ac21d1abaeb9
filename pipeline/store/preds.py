"""Per-evaluation predictions as arrays: evaluations.parquet's optional `preds`.

The model similarity view compares every model's predicted class of every sample on one
evaluation set. The pipeline writes each clean evaluation's row with its predictions, so the
view reads one column of one small file instead of one samples file per model (1.2 s at 100
million rows). Only the clean set gets them: on every set they would add two bytes per sample
row to a table every view reads, and the other sets fall back to the samples (docs/store.md).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.store.bits import KEYS, by_sample_id
from pipeline.store.layout import CLEAN

NO_PRED = -1  # an id without a row in the samples
FIX = "rewrite preds from the samples (pipeline.store.pack_preds), or drop the column"


def stores_preds(corruption: str) -> bool:
    """Whether the pipeline stores an evaluation's predictions in evaluations.parquet."""
    return corruption == CLEAN


def pack_preds(sample_ids: np.ndarray, preds: np.ndarray) -> np.ndarray | None:
    """Entry i is the predicted class of sample i, -1 for ids without a row (int16, as the
    samples' `pred`). None where the ids are so sparse that the array would dwarf the samples."""
    return by_sample_id(sample_ids, preds, NO_PRED, np.int16)


def unpack_preds(
    evals: pa.Table, num_classes: int
) -> tuple[dict[tuple[str, str, int], np.ndarray], dict[tuple[str, str, int], str]]:
    """The stored predictions of the rows of `evals` (model_id, corruption, severity, n, preds)
    that have them, by (model_id, corruption, severity), and what is wrong with the others'
    (a class out of range, a count of predictions other than `n`): those are read from the samples."""
    keys = list(zip(*(evals.column(k).to_pylist() for k in KEYS)))
    col = evals.column("preds").combine_chunks()
    lengths = pc.fill_null(pc.list_value_length(col), 0).to_numpy()
    flat = pc.fill_null(col.flatten(), NO_PRED).to_numpy(zero_copy_only=False).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    valid = col.is_valid().to_numpy(zero_copy_only=False)
    stored, wrong = {}, {}
    for i, (key, n) in enumerate(zip(keys, evals.column("n").to_pylist())):
        if not valid[i]:
            continue
        row = flat[starts[i] : starts[i + 1]]
        bad = (row < NO_PRED) | (row >= num_classes)
        count = int((row >= 0).sum())
        if bad.any():
            wrong[key] = f"preds holds class {int(row[bad][0])}, not one of -1 to {num_classes - 1}"
        elif n is not None and count != n:
            wrong[key] = f"preds holds {count} predictions, n says {n}"
        else:
            stored[key] = row.astype(np.int16)
    return stored, wrong
