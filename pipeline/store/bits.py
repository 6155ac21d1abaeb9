"""Per-evaluation correctness as bitsets: evaluations.parquet's optional `correct_bits`.

A selection's accuracy in every evaluation is a column pick in a bit matrix (one row per
evaluation, one bit per sample id). The pipeline writes each evaluation's row with it, so the
dashboard's first brush reads one column of one file instead of scanning every samples file.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def pack_correct(sample_ids: np.ndarray, correct: np.ndarray) -> bytes:
    """Bit i (most significant bit first, numpy's packbits order) is 1 when sample i is
    classified correctly; ids without a row are 0. Shapes: (n,) ids ≥ 0 and (n,) booleans."""
    ids = np.asarray(sample_ids, dtype=np.int64)
    if ids.size and ids.min() < 0:
        raise ValueError("sample ids must be non-negative")
    row = np.zeros(int(ids.max()) + 1 if ids.size else 0, dtype=bool)
    row[ids] = np.asarray(correct, dtype=bool)
    return np.packbits(row).tobytes()


def bit_matrix(rows: Sequence[bytes]) -> np.ndarray:
    """The packed rows as one (evaluations × bytes) uint8 matrix, shorter rows padded with zeros."""
    width = max((len(r) for r in rows), default=0)
    matrix = np.zeros((len(rows), width), dtype=np.uint8)
    for i, r in enumerate(rows):
        matrix[i, : len(r)] = np.frombuffer(r, dtype=np.uint8)
    return matrix


def count_correct(bits: bytes) -> int:
    """How many samples a bitset marks correct."""
    return int(np.unpackbits(np.frombuffer(bits, dtype=np.uint8)).sum())
