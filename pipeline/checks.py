"""Checks of a finished run's models that the numbers alone would hide: features that are
NaN, a model at chance, a model far below the accuracy it reports. Torch-free."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from pipeline.errors import PruneScopeError
from pipeline.store.stats import CHANCE_MARGIN, at_chance, chance_level

# A model trained elsewhere is flagged when PruneScope measures a clean accuracy more than
# this far (absolute) below the one it reports: the usual cause is another preprocessing
# (normalization) or another train/test split than the one it was trained with.
REPORTED_GAP = 0.05


def model_warnings(
    models: list[dict[str, Any]], evaluations: Iterable[dict[str, Any]], labels: np.ndarray
) -> list[str]:
    """One line per problem: NaN features, accuracy at chance, accuracy far below the reported one.

    `models` are model records with `clean_accuracy` (and `reported_accuracy` when known),
    `evaluations` rows of evaluations.parquet, `labels` the test labels.
    """
    notes = []
    nan_sets: dict[str, list[str]] = {}
    for ev in evaluations:
        if ev["n"] and not math.isfinite(ev["mean_length"]):
            name = ev["corruption"] if ev["corruption"] == "clean" else f"{ev['corruption']}-{ev['severity']}"
            nan_sets.setdefault(ev["model_id"], []).append(name)
    level = chance_level(labels)
    for rec in models:
        mid, acc = rec["model_id"], rec.get("clean_accuracy", float("nan"))
        if mid in nan_sets:
            sets = nan_sets[mid]
            notes.append(
                f"model {mid}: its features are NaN or infinite on {len(sets)} evaluation set(s) ({', '.join(sets[:3])}"
                f"{', ...' if len(sets) > 3 else ''}), so its geometry is undefined: check its weights and inputs"
            )
        elif at_chance(acc, labels):
            notes.append(
                f"model {mid}: clean accuracy {acc:.3f} is at chance (the most frequent class is {level:.3f} of the "
                f"test set, +{CHANCE_MARGIN}): it predicts (almost) one class; Table 1 leaves it out"
            )
        reported = rec.get("reported_accuracy")
        if reported is not None and math.isfinite(acc) and reported - acc > REPORTED_GAP:
            notes.append(
                f"model {mid}: clean accuracy {acc:.3f} here, but {reported:.3f} where it was trained: "
                "its preprocessing or test split differs from PruneScope's ([dataset] normalization, "
                "options; see README, Data sets)"
            )
    return notes


def check_store_dir(path: Path) -> Path:
    """A store folder given by the user: refused when it names a file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise PruneScopeError(
            f"store {path} is a file, not a folder", "give --store a folder (it is created if missing)"
        )
    return path
