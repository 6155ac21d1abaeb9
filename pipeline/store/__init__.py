"""The store contract (docs/store.md, shared/DESIGN.md §3) as a torch-free package.

The meeting point of the pipeline (which writes runs) and the app (which reads them), and
the only pipeline code the app imports; it imports neither torch nor dash. A store is a
folder of runs; a run is a folder holding `run.json`, three tables, hive-partitioned
per-sample and feature tables, the gallery images and the checkpoints.

- `layout`: file and folder names, safe ids, `EvalSet`;
- `schema`: every column, declared once;
- `io`: atomic writes, reading run.json and tables;
- `validate`: a run folder against the contract;
- `stats`: the statistics the report and the app share (Table 1, margin changes);
- `errors`: `PruneScopeError`, the one-line errors users see;
- `methods`: each pruning method's label, short label and colour (the pipeline's registry
  requires an entry; the dashboard names and colours methods with it).

`from pipeline import store` then `store.<name>` reaches the common names below.
"""

from pipeline.store.errors import Problem, PruneScopeError
from pipeline.store.io import (
    SamplesIndex,
    atomic_path,
    clean_samples,
    conform,
    list_runs,
    load,
    read_run_json,
    read_samples,
    read_table,
    remove_run,
    remove_stale_temporaries,
    run_meta,
    samples_dataset,
    write_json,
    write_table,
)
from pipeline.store.layout import (
    CHECKPOINTS_DIR,
    CLEAN,
    CLEAN_SET,
    CORRUPTED_DIR,
    EVALUATIONS,
    FEATURES_DIR,
    HEADS,
    IMAGES,
    MODELS,
    RUN_JSON,
    SAFE_ID,
    SAMPLES_DIR,
    UNITS_DIR,
    EvalSet,
    check_id,
    checkpoint_path,
    corrupted_path,
    evalset_name,
    features_path,
    partition_dir,
    samples_path,
)
from pipeline.store.schema import (
    EVALUATIONS_SCHEMA,
    HEADS_SCHEMA,
    IMAGES_SCHEMA,
    INIT_UNTRAINED,
    MARGIN_DEFINITIONS,
    MARGIN_EQ5,
    MARGIN_LABELS,
    MARGIN_SIGNED,
    MODELS_SCHEMA,
    RUN_JSON_KEYS,
    RUN_JSON_OPTIONAL,
    SCHEMA_VERSION,
    TABLES,
    Column,
    TableSpec,
    features_schema,
    margin_definition,
    margin_label,
    samples_schema,
)
from pipeline.store.stats import (
    KINDS,
    model_kinds,
    pearson,
    pooled,
    random_angle_stats,
    relative_margin_change,
    run_angle_summary,
    run_table1,
    table1,
    trim,
)
from pipeline.store.validate import check_run, validate_run
from pipeline.store.write import write_run

__all__ = [
    "CHECKPOINTS_DIR",
    "CLEAN",
    "CLEAN_SET",
    "CORRUPTED_DIR",
    "EVALUATIONS",
    "EVALUATIONS_SCHEMA",
    "FEATURES_DIR",
    "HEADS",
    "HEADS_SCHEMA",
    "IMAGES",
    "IMAGES_SCHEMA",
    "INIT_UNTRAINED",
    "KINDS",
    "MARGIN_DEFINITIONS",
    "MARGIN_EQ5",
    "MARGIN_LABELS",
    "MARGIN_SIGNED",
    "MODELS",
    "MODELS_SCHEMA",
    "RUN_JSON",
    "RUN_JSON_KEYS",
    "RUN_JSON_OPTIONAL",
    "SAFE_ID",
    "SAMPLES_DIR",
    "SCHEMA_VERSION",
    "TABLES",
    "UNITS_DIR",
    "Column",
    "Problem",
    "SamplesIndex",
    "check_run",
    "conform",
    "load",
    "read_samples",
    "run_meta",
    "EvalSet",
    "PruneScopeError",
    "TableSpec",
    "atomic_path",
    "check_id",
    "checkpoint_path",
    "clean_samples",
    "corrupted_path",
    "evalset_name",
    "features_path",
    "features_schema",
    "list_runs",
    "margin_definition",
    "margin_label",
    "partition_dir",
    "model_kinds",
    "pearson",
    "pooled",
    "random_angle_stats",
    "read_run_json",
    "read_table",
    "relative_margin_change",
    "remove_run",
    "remove_stale_temporaries",
    "run_angle_summary",
    "run_table1",
    "samples_dataset",
    "samples_path",
    "samples_schema",
    "table1",
    "trim",
    "validate_run",
    "write_json",
    "write_run",
    "write_table",
]
