"""Where things are in a store: file and folder names, safe ids, and the evaluation-set type."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.store.errors import PruneScopeError

RUN_JSON = "run.json"
MODELS = "models.parquet"
EVALUATIONS = "evaluations.parquet"
HEADS = "heads.parquet"
IMAGES = "images.parquet"
SAMPLES_DIR = "samples"
FEATURES_DIR = "features"
ATTRIBUTIONS_DIR = "attributions"
CHECKPOINTS_DIR = "checkpoints"
UNITS_DIR = "_units"  # completion records of units of work (pipeline-private, for resume)
CORRUPTED_DIR = "corrupted"  # generated corrupted test sets, <set>.npy (cache; the gallery shows them)
CLEAN = "clean"

SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$")


@dataclass(frozen=True, order=True)
class EvalSet:
    """One evaluation set: the clean test set (severity 0) or a corruption at a severity.

    `name` is its form in file names and keys (`clean`, `fog-3`), `label` its form on screen
    (`clean`, `fog s3`); `parse` reads `name` back.
    """

    corruption: str
    severity: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", 0 if self.corruption == CLEAN else int(self.severity))

    @property
    def is_clean(self) -> bool:
        return self.corruption == CLEAN

    @property
    def name(self) -> str:
        return CLEAN if self.is_clean else f"{self.corruption}-{self.severity}"

    @property
    def label(self) -> str:
        return CLEAN if self.is_clean else f"{self.corruption} s{self.severity}"

    @classmethod
    def parse(cls, name: str) -> "EvalSet":
        """The set of a `name` (`clean`, `fog-3`); a clear error for anything else."""
        if name == CLEAN:
            return cls(CLEAN)
        corruption, _, severity = str(name).rpartition("-")
        if not corruption or not severity.isdigit():
            raise PruneScopeError(f"{name!r} is not an evaluation set", "write clean or <corruption>-<severity>")
        return cls(corruption, int(severity))


CLEAN_SET = EvalSet(CLEAN)


def check_id(value: str, what: str = "model id") -> str:
    """A model id or run name safe to use as a single path component."""
    if not isinstance(value, str) or not SAFE_ID.match(value) or value in (".", ".."):
        raise PruneScopeError(
            f"{what} {value!r} is not allowed", "use letters, digits and _ . + - (at most 128, no slashes)"
        )
    return value


def evalset_name(corruption: str, severity: int) -> str:
    """File-name form of an evaluation set: `clean` or `<corruption>-<severity>`."""
    return EvalSet(corruption, severity).name


def partition_dir(run_dir: Path, folder: str, model_id: str) -> Path:
    """A model's hive partition folder (`samples/model_id=<id>`, `features/model_id=<id>`)."""
    return Path(run_dir) / folder / f"model_id={model_id}"


def samples_path(run_dir: Path, model_id: str, corruption: str, severity: int) -> Path:
    """Where the pipeline writes one evaluation set's samples (readers accept any file name)."""
    return partition_dir(run_dir, SAMPLES_DIR, model_id) / f"{evalset_name(corruption, severity)}.parquet"


def features_path(run_dir: Path, model_id: str, corruption: str, severity: int) -> Path:
    return partition_dir(run_dir, FEATURES_DIR, model_id) / f"{evalset_name(corruption, severity)}.parquet"


def attributions_path(run_dir: Path, model_id: str, corruption: str, severity: int) -> Path:
    """Where the pipeline writes one model's attribution maps of one evaluation set."""
    return partition_dir(run_dir, ATTRIBUTIONS_DIR, model_id) / f"{evalset_name(corruption, severity)}.parquet"


def checkpoint_path(run_dir: Path, model_id: str) -> Path:
    return Path(run_dir) / CHECKPOINTS_DIR / f"{model_id}.pt"


def corrupted_path(run_dir: Path, evalset: EvalSet) -> Path:
    """The pipeline's cache of a generated corrupted test set (uint8 images, sample-id order)."""
    return Path(run_dir) / CORRUPTED_DIR / f"{evalset.name}.npy"
