"""`write_run`: a valid run from DataFrames, for evaluations made outside PruneScope."""

from __future__ import annotations

import datetime as dt
from dataclasses import astuple
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import pyarrow as pa

from pipeline.store.bits import KEYS, pack_correct
from pipeline.store.errors import PruneScopeError
from pipeline.store.io import conform, remove_run, write_json, write_samples, write_table
from pipeline.store.layout import CLEAN_SET, RUN_JSON, EvalSet, check_id, samples_path
from pipeline.store.preds import pack_preds, stores_preds
from pipeline.store.schema import (
    ANGLE_FORM_COLUMNS,
    EVALUATIONS_TABLE,
    HEADS_TABLE,
    IMAGES_TABLE,
    MODELS_TABLE,
    SAMPLES_TABLE,
    SCHEMA_VERSION,
    TableSpec,
)
from pipeline.store.stats import with_margin_change
from pipeline.store.validate import check_run


def write_run(
    run_dir: str | Path,
    models: pd.DataFrame,
    samples: pd.DataFrame,
    heads: pd.DataFrame,
    class_names: Sequence[str],
    evaluations: pd.DataFrame | None = None,
    images: pd.DataFrame | None = None,
    dataset: str = "external",
    overwrite: bool = False,
    **meta: Any,
) -> Path:
    """Write a run folder that the dashboard, `report` and `validate` read, and check it.

    `models`, `samples` (with a model_id column), `heads` and `images` hold the columns of
    docs/store.md; any safely castable dtype is accepted and optional columns may be left
    out. Without `evaluations`, they are computed from `samples`. Extra keyword arguments go
    into run.json. Returns the run folder; raises PruneScopeError naming the first problem.
    """
    run_dir = Path(run_dir)
    check_id(run_dir.name, "run name")
    if run_dir.exists():
        if not overwrite:
            raise PruneScopeError(f"{run_dir} exists", "pass overwrite=True to replace it, or pick another folder")
        remove_run(run_dir)
    num_classes = len(class_names)
    if evaluations is None:
        evaluations = summarise(samples)
    elif not {"correct_bits", "preds"} <= set(evaluations.columns):  # the arrays come from the samples at hand
        computed = summarise(samples)
        for name in {"correct_bits", "preds"} - set(evaluations.columns):
            given = dict(zip(computed[KEYS].itertuples(index=False, name=None), computed[name]))
            keys = zip(evaluations["model_id"], evaluations["corruption"], evaluations["severity"])
            evaluations = evaluations.assign(**{name: [given.get((m, c, int(s))) for m, c, s in keys]})
    tables = [(models, MODELS_TABLE, {}), (evaluations, EVALUATIONS_TABLE, {}), (heads, HEADS_TABLE, {})]
    if images is not None:
        tables.append((images, IMAGES_TABLE, {}))
    conformed = [(_conform(df, spec, sizes), spec) for df, spec, sizes in tables]
    if "model_id" not in samples.columns:
        raise PruneScopeError("samples has no model_id column", "add the model_id of every row")
    forms = [c for c in ANGLE_FORM_COLUMNS if c not in samples.columns]  # angle columns not written (nor all-null ones)
    parts, sets = [], {}
    for (model_id, corruption, severity), rows in samples.groupby(["model_id", "corruption", "severity"], sort=True):
        es = EvalSet(str(corruption), int(severity))
        empty = [c for c in ANGLE_FORM_COLUMNS if c in rows.columns and rows[c].isna().all()]
        table = _conform(rows.drop(columns=["model_id"]), SAMPLES_TABLE, {"num_classes": num_classes}, forms + empty)
        sets.setdefault(str(model_id), {})[es] = len(parts)
        parts.append((samples_path(run_dir, check_id(str(model_id)), es.corruption, es.severity), table))
    for where in sets.values():  # Fig. 10's summary in each clean file's footer, as the pipeline writes it
        if CLEAN_SET in where:
            corrupted = [es for es in where if es != CLEAN_SET]
            path, clean = parts[where[CLEAN_SET]]
            margins = [parts[where[es]][1].select(["sample_id", "margin"]) for es in corrupted]
            parts[where[CLEAN_SET]] = (path, with_margin_change(clean, margins, [astuple(es) for es in corrupted]))
    for table, spec in conformed:
        write_table(table, run_dir / spec.path)
    for path, table in parts:
        write_samples(table, path)
    write_json(
        {
            "schema_version": SCHEMA_VERSION,
            "dataset": dataset,
            "num_classes": num_classes,
            "class_names": [str(c) for c in class_names],
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            **meta,
        },
        run_dir / RUN_JSON,
    )
    errors = [p for p in check_run(run_dir) if p.error]
    if errors:
        raise PruneScopeError(f"the run written to {run_dir} is not valid: {errors[0].problem}", errors[0].fix)
    return run_dir


def summarise(samples: pd.DataFrame) -> pd.DataFrame:
    """evaluations.parquet's rows from per-sample rows: n, accuracy, mean angle, length, margin,
    the correctness bitset and (clean sets) the predictions."""
    groups = samples.groupby(["model_id", "corruption", "severity"], sort=True)
    out = groups.agg(
        n=("sample_id", "size"),
        accuracy=("correct", "mean"),
        mean_angle=("angle", "mean"),
        mean_length=("length", "mean"),
        mean_margin=("margin", "mean"),
    )
    out["correct_bits"] = [  # none where `correct` has a gap: the count would not match the accuracy
        None if g["correct"].isna().any() else pack_correct(g["sample_id"].to_numpy(), g["correct"].to_numpy())
        for _, g in groups
    ]
    out["preds"] = [  # the clean sets' predictions, as the pipeline stores them; none where `pred` has a gap
        pack_preds(g["sample_id"].to_numpy(), g["pred"].to_numpy())
        if stores_preds(str(c)) and "pred" in g and g["pred"].notna().all()
        else None
        for (_, c, _), g in groups
    ]
    return out.reset_index()


def _conform(df: pd.DataFrame, spec: TableSpec, sizes: dict[str, int], leave_out: Sequence[str] = ()) -> pa.Table:
    """`df` as the contract's kinds; the columns in `leave_out` are not written (not even as defaults)."""
    table = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
    return conform(table, spec, [c for c in spec.names if c not in leave_out], sizes, where=spec.path)[0]
