"""Per-evaluation correctness as bitsets: evaluations.parquet's optional `correct_bits`.

A selection's accuracy in every evaluation is a column pick in a bit matrix (one row per
evaluation, one bit per sample id). The pipeline writes each evaluation's row with it, so the
dashboard's first brush reads one column of one file instead of scanning every samples file.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from pipeline.store.errors import PruneScopeError

KEYS = ["model_id", "corruption", "severity"]
SPARSE_IDS = 64  # ids spread over more than 64 bits per sample: no bitset (readers scan instead)


def by_sample_id(sample_ids: np.ndarray, values: np.ndarray, fill: object, dtype: type) -> np.ndarray | None:
    """A (max id + 1,) array whose entry i is the value of sample i, `fill` for ids without a row;
    shapes: (n,) ids ≥ 0 and (n,) values. None where the ids are so sparse that the array would
    dwarf the samples (more than SPARSE_IDS entries a sample)."""
    ids = np.asarray(sample_ids, dtype=np.int64)
    if ids.size and ids.min() < 0:
        raise PruneScopeError("sample ids must be non-negative", "number the test samples 0, 1, 2, ...")
    width = int(ids.max()) + 1 if ids.size else 0
    if width > SPARSE_IDS * max(ids.size, 1) + 1024:
        return None
    row = np.full(width, fill, dtype=dtype)
    row[ids] = np.asarray(values, dtype=dtype)
    return row


def pack_correct(sample_ids: np.ndarray, correct: np.ndarray) -> bytes | None:
    """Bit i (most significant bit first, numpy's packbits order) is 1 when sample i is
    classified correctly; ids without a row are 0. Shapes: (n,) ids ≥ 0 and (n,) booleans.
    None where the ids are so sparse that the bitset would dwarf the samples."""
    row = by_sample_id(sample_ids, correct, False, bool)
    return None if row is None else np.packbits(row).tobytes()


def bit_matrix(rows: Sequence[bytes], width: int = 0) -> np.ndarray:
    """The packed rows as one (evaluations × bytes) uint8 matrix, padded with zeros to the
    longest row (or `width` bytes)."""
    lengths = {len(r) for r in rows}
    width = max(width, max(lengths, default=0))
    if lengths == {width}:  # rows of one length (one evaluation set size): one copy, not a loop over rows
        return np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), width).copy()
    matrix = np.zeros((len(rows), width), dtype=np.uint8)
    for i, r in enumerate(rows):
        matrix[i, : len(r)] = np.frombuffer(r, dtype=np.uint8)
    return matrix


def count_correct(bits: bytes) -> int:
    """How many samples a bitset marks correct."""
    return int(np.bitwise_count(np.frombuffer(bits, dtype=np.uint8)).sum(dtype=np.int64))


def row_counts(matrix: np.ndarray) -> np.ndarray:
    """Set bits of each row of a packed matrix."""
    return np.bitwise_count(matrix).sum(axis=1, dtype=np.int64) if matrix.size else np.zeros(len(matrix), np.int64)


def scan_bits(rows: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Every evaluation's bit row from per-sample rows (model_id, corruption, severity,
    sample_id, correct): the evaluations' keys and their packed (evaluations × bytes) matrix."""
    keys = rows[KEYS].drop_duplicates(ignore_index=True)
    row = rows.merge(keys.reset_index(), on=KEYS)["index"].to_numpy()
    matrix = np.zeros((len(keys), int(rows["sample_id"].max()) + 1 if len(rows) else 0), dtype=bool)
    matrix[row, rows["sample_id"].to_numpy()] = rows["correct"].to_numpy()
    return keys, np.packbits(matrix, axis=1)
