"""Checking a run folder against the contract."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.store.errors import PruneScopeError
from pipeline.store.io import read_run_json, read_table
from pipeline.store.layout import EVALUATIONS, HEADS, IMAGES, MODELS, SAFE_ID, SAMPLES_DIR, samples_path
from pipeline.store.schema import (
    EVALUATIONS_SCHEMA,
    HEADS_SCHEMA,
    IMAGES_SCHEMA,
    MODELS_SCHEMA,
    RUN_JSON_KEYS,
    samples_schema,
)


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
