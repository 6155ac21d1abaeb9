"""Reading and writing a run: atomic writes, run.json, Parquet tables, the list of runs."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from pipeline.store.errors import PruneScopeError
from pipeline.store.layout import CLEAN, RUN_JSON, SAFE_ID, SAMPLES_DIR, samples_path
from pipeline.store.schema import SCHEMA_VERSION


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


def remove_run(run_dir: Path) -> None:
    """Delete a run folder (used by `run --force`), refusing anything that is not a run."""
    read_run_json(run_dir)
    shutil.rmtree(run_dir)


def clean_samples(run_dir: Path, model_ids: list[str], columns: list[str]) -> pa.Table:
    """The clean rows of the given models (model_id added), opening only their clean files."""
    files = [str(p) for p in (samples_path(run_dir, m, CLEAN, 0) for m in model_ids) if p.is_file()]
    if not files:
        return pa.table({c: pa.array([], pa.float32()) for c in ["model_id", *columns]})
    ds = pads.dataset(files, format="parquet", partitioning="hive", partition_base_dir=str(Path(run_dir) / SAMPLES_DIR))
    return ds.to_table(columns=["model_id", *columns])
