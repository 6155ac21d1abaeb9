"""The store contract v1 (shared/DESIGN.md §3): layout, schemas, atomic writes, validation.

This module is the meeting point of the pipeline (which writes runs) and the app (which
reads them); it imports neither torch nor dash. A store is a folder of runs; a run is a
folder holding `run.json`, three tables, hive-partitioned per-sample and feature tables,
the gallery images and the checkpoints.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from pipeline.errors import PruneScopeError

SCHEMA_VERSION = 1
RUN_JSON = "run.json"
MODELS = "models.parquet"
EVALUATIONS = "evaluations.parquet"
HEADS = "heads.parquet"
IMAGES = "images.parquet"
SAMPLES_DIR = "samples"
FEATURES_DIR = "features"
CHECKPOINTS_DIR = "checkpoints"
UNITS_DIR = "_units"  # completion records of units of work (pipeline-private, for resume)
CORRUPTED_DIR = "corrupted"  # generated corrupted test sets, <set>.npy (cache; the gallery shows them)
CLEAN = "clean"

SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$")

RUN_JSON_KEYS = (
    "schema_version",
    "dataset",
    "num_classes",
    "class_names",
    "image_shape",
    "created",
    "config",
    "prunable_layers",
)

MODELS_SCHEMA = pa.schema(
    [
        ("model_id", pa.string()),
        ("arch", pa.string()),
        ("method", pa.string()),
        ("scope", pa.string()),
        ("schedule", pa.string()),
        ("steps", pa.int32()),
        ("finetune_epochs", pa.int32()),
        ("target_sparsity", pa.float64()),
        ("sparsity", pa.float64()),
        ("params_total", pa.int64()),
        ("params_nonzero", pa.int64()),
        ("parent_id", pa.string()),
        ("clean_accuracy", pa.float64()),
        ("seed", pa.int64()),
        ("checkpoint", pa.string()),
        ("init", pa.string()),
        ("channel_sparsity", pa.float64()),
    ]
)
EVALUATIONS_SCHEMA = pa.schema(
    [
        ("model_id", pa.string()),
        ("corruption", pa.string()),
        ("severity", pa.int8()),
        ("n", pa.int64()),
        ("accuracy", pa.float64()),
        ("mean_angle", pa.float64()),
        ("mean_length", pa.float64()),
        ("mean_margin", pa.float64()),
    ]
)
HEADS_SCHEMA = pa.schema(
    [("model_id", pa.string()), ("class_index", pa.int32()), ("weight", pa.list_(pa.float32())), ("bias", pa.float32())]
)
IMAGES_SCHEMA = pa.schema([("sample_id", pa.int32()), ("label", pa.int16()), ("png", pa.binary())])


def samples_schema(num_classes: int) -> pa.Schema:
    """Columns of one per-sample file (model_id comes from the hive partition folder)."""
    return pa.schema(
        [
            ("corruption", pa.string()),
            ("severity", pa.int8()),
            ("sample_id", pa.int32()),
            ("label", pa.int16()),
            ("pred", pa.int16()),
            ("correct", pa.bool_()),
            ("confidence", pa.float32()),
            ("loss", pa.float32()),
            ("length", pa.float32()),
            ("margin", pa.float32()),
            ("angle", pa.float32()),
            ("angles", pa.list_(pa.float32(), num_classes)),
            ("robustness", pa.float32()),
            ("zero_feature", pa.bool_()),
        ]
    )


def features_schema(dim: int) -> pa.Schema:
    return pa.schema(
        [
            ("sample_id", pa.int32()),
            ("corruption", pa.string()),
            ("severity", pa.int8()),
            ("feature", pa.list_(pa.float32(), dim)),
        ]
    )


def check_id(value: str, what: str = "model id") -> str:
    """A model id or run name safe to use as a single path component."""
    if not isinstance(value, str) or not SAFE_ID.match(value) or value in (".", ".."):
        raise PruneScopeError(
            f"{what} {value!r} is not allowed", "use letters, digits and _ . + - (at most 128, no slashes)"
        )
    return value


def evalset_name(corruption: str, severity: int) -> str:
    """File-name form of an evaluation set: `clean` or `<corruption>-<severity>`."""
    return CLEAN if corruption == CLEAN else f"{corruption}-{severity}"


def samples_path(run_dir: Path, model_id: str, corruption: str, severity: int) -> Path:
    return run_dir / SAMPLES_DIR / f"model_id={model_id}" / f"{evalset_name(corruption, severity)}.parquet"


def features_path(run_dir: Path, model_id: str, corruption: str, severity: int) -> Path:
    return run_dir / FEATURES_DIR / f"model_id={model_id}" / f"{evalset_name(corruption, severity)}.parquet"


def checkpoint_path(run_dir: Path, model_id: str) -> Path:
    return run_dir / CHECKPOINTS_DIR / f"{model_id}.pt"


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_table(table: pa.Table, path: Path) -> None:
    """Write a Parquet file atomically."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def write_json(obj: Any, path: Path) -> None:
    """Write a JSON file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str))


def remove_stale_temporaries(run_dir: Path) -> int:
    """Delete temporaries left by a killed writer; returns how many were removed."""
    count = 0
    for tmp in run_dir.rglob(".*.tmp"):
        tmp.unlink(missing_ok=True)
        count += 1
    return count


def read_run_json(run_dir: Path) -> dict[str, Any]:
    """The run's metadata, after checking that the folder is a run this version can read."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise PruneScopeError(f"run folder {run_dir} does not exist", "list the runs with `python -m pipeline ls`")
    path = run_dir / RUN_JSON
    if not path.is_file():
        raise PruneScopeError(
            f"{run_dir} is not a PruneScope run (no {RUN_JSON})",
            "point to a run folder inside the store (`python -m pipeline ls`)",
        )
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PruneScopeError(
            f"{path} is not valid JSON: {exc}",
            "restore it, or rebuild the run with `python -m pipeline run CONFIG --force`",
        ) from None
    if not isinstance(meta, dict):
        raise PruneScopeError(
            f"{path} does not hold a JSON object", "rebuild the run with `python -m pipeline run CONFIG --force`"
        )
    version = meta.get("schema_version")
    if not isinstance(version, int):
        raise PruneScopeError(
            f"{path} has no integer schema_version", "rebuild the run with `python -m pipeline run CONFIG --force`"
        )
    if version > SCHEMA_VERSION:
        raise PruneScopeError(
            f"run {run_dir.name} uses store schema {version}, newer than this PruneScope reads ({SCHEMA_VERSION})",
            "upgrade PruneScope (git pull && pip install -r requirements.txt)",
        )
    if version < 1:
        raise PruneScopeError(
            f"run {run_dir.name} has schema_version {version}",
            "rebuild the run with `python -m pipeline run CONFIG --force`",
        )
    return meta


def list_runs(store: Path) -> list[str]:
    """Names of the run folders in a store (folders with a run.json), sorted."""
    store = Path(store)
    if not store.is_dir():
        return []
    return sorted(p.name for p in store.iterdir() if p.is_dir() and (p / RUN_JSON).is_file() and SAFE_ID.match(p.name))


def read_table(path: Path, columns: list[str] | None = None) -> pa.Table:
    """Read one Parquet file, turning a missing or corrupt file into a clear error."""
    if not path.is_file():
        raise PruneScopeError(f"{path} is missing", "finish the run with `python -m pipeline run CONFIG` (it resumes)")
    try:
        return pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError) as exc:
        raise PruneScopeError(
            f"{path} is not a readable Parquet file: {exc}",
            "delete it and resume the run with `python -m pipeline run CONFIG`",
        ) from None


def samples_dataset(run_dir: Path) -> pads.Dataset:
    """The per-sample table of a run as one pyarrow dataset (model_id from the partition folders)."""
    return pads.dataset(run_dir / SAMPLES_DIR, format="parquet", partitioning="hive")


def _check_schema(table: pa.Table, expected: pa.Schema, name: str, problems: list[str]) -> None:
    for field in expected:
        if field.name not in table.schema.names:
            problems.append(f"{name}: column {field.name!r} is missing")
        elif not table.schema.field(field.name).type.equals(field.type):
            problems.append(
                f"{name}: column {field.name!r} is {table.schema.field(field.name).type}, expected {field.type}"
            )


def validate_run(run_dir: Path) -> list[str]:
    """Check a run folder against the contract; returns the problems found (empty when valid).

    Written for runs made by any tool: it needs only the files of the contract.
    """
    run_dir = Path(run_dir)
    try:
        meta = read_run_json(run_dir)
    except PruneScopeError as exc:
        return [str(exc.problem)]
    problems = [f"run.json: key {k!r} is missing" for k in RUN_JSON_KEYS if k not in meta]
    num_classes = meta.get("num_classes")
    if not isinstance(num_classes, int) or num_classes < 1:
        return problems + ["run.json: num_classes must be a positive integer"]
    if len(meta.get("class_names", [])) != num_classes:
        problems.append("run.json: class_names does not have num_classes entries")

    tables: dict[str, pa.Table] = {}
    for name, schema in (
        (MODELS, MODELS_SCHEMA),
        (EVALUATIONS, EVALUATIONS_SCHEMA),
        (HEADS, HEADS_SCHEMA),
        (IMAGES, IMAGES_SCHEMA),
    ):
        try:
            tables[name] = read_table(run_dir / name)
        except PruneScopeError as exc:
            problems.append(exc.problem)
            continue
        _check_schema(tables[name], schema, name, problems)
    if MODELS not in tables or problems:
        return problems

    models = tables[MODELS].column("model_id").to_pylist()
    if len(set(models)) != len(models):
        problems.append("models.parquet: model_id is not unique")
    for mid in models:
        if not SAFE_ID.match(str(mid)):
            problems.append(f"models.parquet: model_id {mid!r} is not a safe identifier")
    known = set(models)
    for parent in tables[MODELS].column("parent_id").to_pylist():
        if parent is not None and parent not in known:
            problems.append(f"models.parquet: parent_id {parent!r} is not a model of the run")
    for ckpt in tables[MODELS].column("checkpoint").to_pylist():
        if ckpt and not (run_dir / ckpt).is_file():
            problems.append(f"checkpoint {ckpt} is missing")

    evals = tables[EVALUATIONS]
    for mid in set(evals.column("model_id").to_pylist()) - known:
        problems.append(f"evaluations.parquet: model_id {mid!r} is not in models.parquet")
    heads = tables[HEADS]
    for mid in known:
        rows = [i for i, m in enumerate(heads.column("model_id").to_pylist()) if m == mid]
        if len(rows) != num_classes:
            problems.append(f"heads.parquet: model {mid!r} has {len(rows)} class rows, expected {num_classes}")

    samples_root = run_dir / SAMPLES_DIR
    if not samples_root.is_dir():
        return problems + ["samples/ is missing"]
    expected = samples_schema(num_classes)
    for part in sorted(samples_root.iterdir()):
        if not part.is_dir() or not part.name.startswith("model_id="):
            problems.append(f"samples/{part.name} is not a model_id=<id> partition")
            continue
        mid = part.name.split("=", 1)[1]
        if mid not in known:
            problems.append(f"samples/{part.name}: model {mid!r} is not in models.parquet")
        for f in sorted(part.glob("*.parquet")):
            try:
                schema = pq.read_schema(f)
            except (pa.ArrowException, OSError) as exc:
                problems.append(f"samples/{part.name}/{f.name} is not readable Parquet: {exc}")
                continue
            _check_schema(schema.empty_table(), expected, f"samples/{part.name}/{f.name}", problems)
    have_eval = {
        (m, c, int(s))
        for m, c, s in zip(*(evals.column(k).to_pylist() for k in ("model_id", "corruption", "severity")))
    }
    for m, c, s in sorted(have_eval):
        if not samples_path(run_dir, m, c, s).is_file():
            problems.append(f"evaluation ({m}, {c}, {s}) has no samples file")
    return problems


def remove_run(run_dir: Path) -> None:
    """Delete a run folder (used by `run --force`), refusing anything that is not a run."""
    read_run_json(run_dir)
    shutil.rmtree(run_dir)
