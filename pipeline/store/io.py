"""Reading and writing a run: atomic writes, run.json, Parquet tables, the list of runs."""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from pipeline.store.errors import Problem, PruneScopeError
from pipeline.store.layout import (
    ATTRIBUTIONS_DIR,
    CLEAN_SET,
    RUN_JSON,
    SAFE_ID,
    SAMPLES_DIR,
    EvalSet,
    partition_dir,
)
from pipeline.store.schema import (
    ANGLE_FORM_COLUMNS,
    ANGLES_FULL_MAX_CLASSES,
    ATTRIBUTIONS_TABLE,
    EVALUATIONS_TABLE,
    SAMPLES_TABLE,
    SCHEMA_VERSION,
    TableSpec,
)

RESUME = "restore it, or resume the run with `python -m pipeline run CONFIG` (it redoes what is missing)"
PARQUET = pads.ParquetFileFormat(
    default_fragment_scan_options=pads.ParquetFragmentScanOptions(page_checksum_verification=True)
)


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


def write_table(table: pa.Table, path: Path, **options: Any) -> None:
    """Write a Parquet file atomically, with page checksums (a flipped byte is an error on read, not
    wrong data); `options` go to pyarrow's writer (row groups, encodings). By default only string
    columns are dictionary-encoded: on floats and ids a dictionary costs time and bytes (a demo
    samples file: 1.9 -> 1.2 ms to write, 47 -> 34 KB)."""
    options.setdefault(
        "use_dictionary",
        [f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)],
    )
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", write_page_checksum=True, **options)


LABEL_GROUP_BYTES = 1 << 20  # the angles one row group of a file grouped by label holds (about 1 MB)


def write_samples(table: pa.Table, path: Path) -> None:
    """Write a samples file. One whose rows hold every angle of many classes (more than
    ANGLES_FULL_MAX_CLASSES: the clean rows of a many-class run) is grouped by label (docs/store.md,
    "Row order"): sorted by label and sample id, in row groups of about LABEL_GROUP_BYTES of angles,
    floats byte-stream split, so that reading one class decodes the few row groups whose statistics
    hold its label instead of the whole `angles` column. Readers exploit this, never require it.
    A clean file also gets Table 1's numbers of its rows in its footer (stats.with_table1) and, with
    every angle, Fig. 3's (stats.angle_stats), so that the run's Table 1 and angle summary read a
    footer a model instead of its rows."""
    angles = table.schema.field("angles").type if "angles" in table.column_names else None
    width = angles.list_size if angles is not None and pa.types.is_fixed_size_list(angles) else 0
    table = _with_clean_stats(table, width, path)
    if width <= ANGLES_FULL_MAX_CLASSES or "label" not in table.column_names:
        write_table(table, path)
        return
    floats = [
        f.name if pa.types.is_floating(f.type) else f"{f.name}.list.element"
        for f in table.schema
        if pa.types.is_floating(f.type)
        or (pa.types.is_fixed_size_list(f.type) and pa.types.is_floating(f.type.value_type))
    ]
    keys = [("label", "ascending")] + ([("sample_id", "ascending")] if "sample_id" in table.column_names else [])
    write_table(
        table.sort_by(keys),
        path,
        row_group_size=max(1, LABEL_GROUP_BYTES // (4 * width)),
        use_dictionary=[f.name for f in table.schema if f.name not in floats and f.name != "angles"],
        use_byte_stream_split=floats,
    )


def _with_clean_stats(table: pa.Table, width: int, path: Path) -> pa.Table:
    """`table` with the summaries of a clean set's rows in its footer when it is one: Table 1's
    (stats.with_table1) and, when its rows hold every angle (`width` classes), Fig. 3's
    (stats.angle_stats, key ANGLE_STATS_KEY, with the row count it holds for); else as given."""
    from pipeline.store.stats import ANGLE_STATS_KEY, angle_stats, with_table1

    if not table.num_rows or "corruption" not in table.column_names:
        return table
    if not pc.all(pc.equal(table.column("corruption"), CLEAN_SET.corruption)).as_py():
        return table
    table = with_table1(table)
    if not width or not {"label", "angle"} <= set(table.column_names):
        return table
    mat = angle_matrix(table.select(["angles"]), width, str(path))
    stats = angle_stats(table.column("label").to_numpy(), table.column("angle").to_numpy(zero_copy_only=False), mat)
    footer = {**(table.schema.metadata or {}), ANGLE_STATS_KEY.encode(): json.dumps({**stats, "rows": table.num_rows})}
    return table.replace_schema_metadata(footer)


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


def is_run(store: Path, name: str) -> bool:
    """Whether `name` is a run of the store: a folder with a run.json, under a safe name."""
    return isinstance(name, str) and SAFE_ID.match(name) is not None and (Path(store) / name / RUN_JSON).is_file()


def list_runs(store: Path) -> list[str]:
    """Names of the run folders in a store (is_run), sorted."""
    store = Path(store)
    if not store.is_dir():
        return []
    return sorted(p.name for p in store.iterdir() if p.is_dir() and is_run(store, p.name))


def remove_run(run_dir: Path) -> None:
    """Delete a run folder (used by `run --force`), refusing anything that is not a run.

    A run whose run.json is damaged is still a run: rebuilding it is the fix.
    """
    if not (Path(run_dir) / RUN_JSON).is_file():
        read_run_json(run_dir)
    shutil.rmtree(run_dir)


def run_meta(run_dir: Path) -> tuple[dict[str, Any], list[Problem]]:
    """run.json read tolerantly: what the readers need (num_classes, class_names) is always
    there, with the problems found. Raises only when the folder is not a readable run."""
    meta = dict(read_run_json(run_dir))
    problems: list[Problem] = []
    fix = "write num_classes and one class name per class into run.json (docs/store.md)"
    num_classes = meta.get("num_classes")
    names = meta.get("class_names")
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        problems.append(Problem(RUN_JSON, "num_classes is not a positive integer", fix))
        num_classes = len(names) if isinstance(names, list) and names else 0
    if not isinstance(names, list):
        problems.append(Problem(RUN_JSON, "class_names is missing; classes are shown by number", fix))
        names = []
    elif len(names) != num_classes:
        problems.append(
            Problem(
                RUN_JSON, f"{len(names)} class names for {num_classes} classes; missing ones are shown by number", fix
            )
        )
    meta["num_classes"] = num_classes
    meta["class_names"] = [str(n) for n in names[:num_classes]] + [str(j) for j in range(len(names), num_classes)]
    return meta, problems


def read_table(path: Path, columns: list[str] | None = None, filter: pc.Expression | None = None) -> pa.Table:
    """Read one Parquet file (page checksums verified), turning a missing or damaged file into a clear error."""
    path = Path(path)
    if not path.is_file():
        raise PruneScopeError(f"{path} is missing", RESUME)
    try:
        return pads.dataset(path, format=PARQUET).to_table(columns=columns, filter=filter)
    except (pa.ArrowException, OSError) as exc:
        raise PruneScopeError(f"{path} is not a readable Parquet file: {exc}", RESUME) from None


def conform(
    table: pa.Table,
    spec: TableSpec,
    columns: list[str] | None = None,
    sizes: dict[str, int] | None = None,
    where: str = "",
) -> tuple[pa.Table, list[Problem]]:
    """`table` as the contract declares it: the requested columns (default all), cast to their
    kinds where that is safe, optional columns that are missing filled with their defaults.

    Returns the table and the warnings (each cast or default); raises a Problem for a
    required column that is missing or a value that does not cast.
    """
    where = where or spec.path
    out, notes = {}, []
    for name in columns or spec.names:
        col = spec.column(name)
        target = col.arrow_type(sizes)
        if name not in table.column_names:
            if col.required:
                raise Problem(where, f"required column {name!r} is missing", f"add it ({col.kind_name}, docs/store.md)")
            out[name] = (
                pa.nulls(table.num_rows, target)
                if col.default is None
                else pa.repeat(col.default, table.num_rows).cast(target)
            )
            if col.derived:
                continue
            notes.append(
                Problem(
                    where,
                    f"optional column {name!r} is missing; read as {'null' if col.default is None else col.default}",
                    error=False,
                )
            )
            continue
        values = table.column(name)
        if not values.type.equals(target):
            try:
                values = values.cast(target, safe=True)
            except (pa.ArrowException, ValueError) as exc:
                raise Problem(
                    where,
                    f"column {name!r} is {table.column(name).type} and does not cast to {target}: {exc}",
                    f"write it as {col.kind_name} (docs/store.md)",
                ) from None
            if not (pa.types.is_large_string(table.column(name).type) and pa.types.is_string(target)):
                notes.append(
                    Problem(where, f"column {name!r} is {table.column(name).type}; read as {target}", error=False)
                )
        out[name] = values
    return pa.table(out), notes


def load(
    run_dir: Path, spec: TableSpec, columns: list[str] | None = None, sizes: dict[str, int] | None = None
) -> pa.Table:
    """One of the run's single-file tables (models, evaluations, heads, images), conformed."""
    table = read_table(Path(run_dir) / spec.path, columns=_present(Path(run_dir) / spec.path, columns))
    return conform(table, spec, columns, sizes)[0]


def column_has_no_nulls(path: Path, column: str) -> bool:
    """Whether a Parquet file has `column` with no null in any row group, from its footer's
    statistics alone (False when the file, the column or the statistics are missing)."""
    try:
        meta = pq.ParquetFile(path).metadata
        leaves = [k for k in range(meta.num_columns) if meta.schema.column(k).path == column]
        if not leaves:
            return False
        stats = [meta.row_group(i).column(leaves[0]).statistics for i in range(meta.num_row_groups)]
    except (pa.ArrowException, OSError):
        return False
    return all(s is not None and s.has_null_count and s.null_count == 0 for s in stats)


def _present(path: Path, columns: list[str] | None) -> list[str] | None:
    """The requested columns that the file has (the others get their defaults)."""
    if columns is None:
        return None
    try:
        names = set(pq.read_schema(path).names)
    except (pa.ArrowException, OSError):
        return columns  # read_table reports the damage
    return [c for c in columns if c in names]


def samples_listing(part: Path) -> tuple[tuple[str, Path], ...]:
    """The samples files of a partition folder as (stem, path), by name, kept per version of the
    folder (its mtime changes when a file is added, removed or renamed into it): Table 1, the angle
    summary and the similarity each index every model, and at 96 files a model making the paths
    costs more than reading the one footer each needs (4 ms a model with pathlib's glob at load 6)."""
    st = os.stat(part)
    return _samples_listing(str(part), (st.st_ino, st.st_mtime_ns, st.st_size))


@functools.lru_cache(maxsize=1024)
def _samples_listing(part: str, stamp: tuple[int, int, int]) -> tuple[tuple[str, Path], ...]:
    folder = Path(part)
    return tuple((n.removesuffix(".parquet"), folder / n) for n in samples_names(part))


def samples_names(part: str | Path) -> list[str]:
    """The names of a partition folder's samples files (`*.parquet`, hidden files left out), sorted."""
    return sorted(n for n in os.listdir(part) if n.endswith(".parquet") and not n.startswith("."))


class SamplesIndex:
    """Which files of a model's samples partition hold which evaluation sets.

    Files may have any name and hold any number of sets; the sets of a file come from its
    footer's statistics, or from its corruption and severity columns when those do not say.
    A file named after one of the `expected` sets (`clean.parquet`, `fog-3.parquet`) holds
    that set only (docs/store.md), so its footer is not opened: a run of thousands of such
    files indexes in a directory listing. A file that cannot be read is kept aside: asking
    for a set that only it could hold raises its error, and the other sets read normally.
    """

    def __init__(self, run_dir: Path, model_id: str, expected: set[EvalSet] | None = None) -> None:
        part = partition_dir(run_dir, SAMPLES_DIR, model_id)
        self.where = f"{SAMPLES_DIR}/{part.name}"
        if not part.is_dir():
            raise Problem(self.where + "/", f"the samples of model {model_id!r} are missing", RESUME)
        by_name = {es.name: es for es in expected or ()}
        self.files: dict[EvalSet, list[Path]] = {}
        self.groups: dict[tuple[Path, EvalSet], list[int] | None] = {}  # row groups holding only the set; None: all
        self.damaged: list[Problem] = []
        for stem, path in samples_listing(part):
            if stem in by_name:
                self.files.setdefault(by_name[stem], []).append(path)
                self.groups[(path, by_name[stem])] = None
                continue
            try:
                groups = row_groups_of(path)
            except (pa.ArrowException, OSError, KeyError, ValueError) as exc:
                self.damaged.append(damaged(f"{self.where}/{path.name}", exc))
                continue
            for es, rgs in groups.items():
                self.files.setdefault(es, []).append(path)
                if rgs is not None:
                    self.groups[(path, es)] = rgs

    def sets(self) -> list[EvalSet]:
        return sorted(self.files)

    def locate(self, evalset: EvalSet) -> list[Path]:
        """The files holding rows of `evalset`."""
        if evalset not in self.files:
            if self.damaged:
                raise self.damaged[0]
            raise Problem(self.where + "/", f"holds no rows of {evalset.label}", RESUME)
        return self.files[evalset]


def damaged(where: str, exc: Exception) -> Problem:
    return Problem(where, f"is not a readable samples file ({_first(exc)})", RESUME)


def _first(exc: Exception) -> str:
    """The first sentence of an error (Arrow's go on with advice that does not apply here)."""
    return str(exc).split(". ")[0].rstrip(".")


def row_groups_of(path: Path) -> dict[EvalSet, list[int] | None]:
    """The evaluation sets a samples file holds, each with the row groups that hold it alone, from
    the file's footer; where the footer's statistics do not say (a row group of several sets, no
    statistics), the sets come from the file's two key columns, with None for their row groups."""
    meta = pq.read_metadata(path)
    names = meta.schema.to_arrow_schema().names
    if "corruption" not in names or "severity" not in names:
        raise KeyError("it has no corruption and severity columns")
    ci, si = names.index("corruption"), names.index("severity")
    found: dict[EvalSet, list[int] | None] = {}
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        if rg.num_rows == 0:
            continue
        cs, ss = rg.column(ci).statistics, rg.column(si).statistics
        if cs is None or ss is None or not (cs.has_min_max and ss.has_min_max) or cs.min != cs.max or ss.min != ss.max:
            keys = (
                pads.dataset(path, format=PARQUET)
                .to_table(columns=["corruption", "severity"])
                .group_by(["corruption", "severity"])
                .aggregate([])
            )
            return {EvalSet(c, int(s)): None for c, s in zip(*(keys.column(k).to_pylist() for k in keys.column_names))}
        found.setdefault(EvalSet(cs.min if isinstance(cs.min, str) else cs.min.decode(), int(ss.min)), []).append(g)
    return dict(sorted(found.items()))


def read_samples(
    index: SamplesIndex,
    evalset: EvalSet,
    columns: list[str],
    num_classes: int,
    labels: list[int] | None = None,
) -> pa.Table:
    """The rows of one evaluation set of one model, conformed to the contract (the columns asked for)."""
    parts = []
    for path in index.locate(evalset):
        where = f"{index.where}/{path.name}"
        wanted = [c for c in columns if c not in ANGLE_FORM_COLUMNS]
        try:
            groups = index.groups.get((path, evalset), []) if labels is None else []
            table = _read_set(path, groups, evalset, wanted, "angles" in columns, labels)
        except (pa.ArrowException, OSError) as exc:
            raise damaged(where, exc) from None
        out = conform(table, SAMPLES_TABLE, wanted, {"num_classes": num_classes}, where)[0]
        if "angles" in columns:
            mat = angle_matrix(table, num_classes, where)
            out = out.append_column("angles", pa.FixedSizeListArray.from_arrays(mat.reshape(-1), num_classes))
        parts.append(out.select(columns))
    return pa.concat_tables(parts)


def _read_set(
    path: Path, groups: list[int] | None, evalset: EvalSet, wanted: list[str], angles: bool, labels: list[int] | None
) -> pa.Table:
    """The rows of `evalset` (and `labels`) in one file, with the `wanted` columns it has and its
    angle forms: a plain read of a file that holds the set alone (`groups` None) or of the row
    groups that do; else a filtered scan, whose row-group statistics skip what the filter rules
    out (a class of a file grouped by label). Page checksums are verified either way."""
    with pq.ParquetFile(path, page_checksum_verification=True) as pf:
        have = pf.schema_arrow.names
        cols = [c for c in wanted if c in have] + [c for c in ANGLE_FORM_COLUMNS if angles and c in have]
        if groups is None:
            return pf.read(columns=cols)
        if groups:
            return pf.read_row_groups(groups, columns=cols)
    flt = (pc.field("corruption") == evalset.corruption) & (pc.field("severity") == evalset.severity)
    if labels is not None:
        flt = flt & pc.field("label").isin(list(labels))
    return pads.dataset(path, format=PARQUET).to_table(columns=cols, filter=flt)


def angle_matrix(table: pa.Table, num_classes: int, where: str) -> np.ndarray:
    """The angle of every row to every class direction, (rows, C) float32, from whichever form each
    row holds (docs/store.md): all of `angles`, or its `nearest` classes' `nearest_angles`; an angle
    a row does not hold is NaN. Lists of any length and number type are read; a row whose lists do
    not fit (wrong length, a class out of range) keeps only what fits."""
    names = table.column_names
    if "angles" in names and "nearest" not in names:  # every row holds every angle: one reshape
        full = table.column("angles").combine_chunks()
        if pa.types.is_fixed_size_list(full.type) and full.type.list_size == num_classes and not full.null_count:
            values = full.values.slice(full.offset * num_classes, len(full) * num_classes)
            return values.cast(pa.float32()).to_numpy(zero_copy_only=False).reshape(-1, num_classes)
    mat = np.full((table.num_rows, num_classes), np.nan, np.float32)
    if "angles" not in names and not {"nearest", "nearest_angles"} <= set(names):
        raise Problem(
            where,
            "holds neither `angles` nor `nearest` and `nearest_angles`",
            "write the angle to every class (angles) or the k nearest classes with their angles (docs/store.md)",
        )
    try:
        if {"nearest", "nearest_angles"} <= set(names):
            cols, rows = _list_values(table.column("nearest"))
            vals, rows_v = _list_values(table.column("nearest_angles"))
            cols = np.where(np.isfinite(cols), cols, -1).astype(np.int64)
            if len(rows) == len(rows_v) and np.array_equal(rows, rows_v):
                ok = (cols >= 0) & (cols < num_classes)
                mat[rows[ok], cols[ok]] = vals[ok]
        if "angles" in names:
            vals, rows = _list_values(table.column("angles"))
            counts = np.bincount(rows, minlength=table.num_rows)
            full = counts == num_classes
            mat[full] = vals[full[rows]].reshape(-1, num_classes)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise Problem(where, f"its angle columns do not read as lists of numbers: {exc}", "see docs/store.md") from None
    return mat


def angle_columns(angles: np.ndarray, k: int | None) -> dict[str, pa.Array]:
    """The samples' angle columns (docs/store.md): every angle (`k` None), or the k nearest classes,
    smallest angle first, and their angles (a row of NaN angles, a zero feature vector, has classes -1)."""
    n, c = angles.shape
    if k is None:
        return {"angles": pa.FixedSizeListArray.from_arrays(angles.reshape(-1), c)}
    finite = np.where(np.isnan(angles), np.inf, angles)
    order = np.argpartition(finite, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(order, np.argsort(np.take_along_axis(finite, order, axis=1), axis=1), axis=1)
    near = np.take_along_axis(angles, order, axis=1).astype(np.float32)
    order = np.where(np.isnan(near), -1, order).astype(np.int16)
    return {
        "nearest": pa.FixedSizeListArray.from_arrays(order.reshape(-1), k),
        "nearest_angles": pa.FixedSizeListArray.from_arrays(near.reshape(-1), k),
    }


def _list_values(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """The values of a list column as float64 (null values NaN) and the row each belongs to (null rows hold none)."""
    arr = column.combine_chunks()
    if not (pa.types.is_list(arr.type) or pa.types.is_fixed_size_list(arr.type) or pa.types.is_large_list(arr.type)):
        raise TypeError(f"{column.type} is not a list")
    lengths = pc.fill_null(pc.list_value_length(arr), 0).to_numpy().astype(np.int64)
    values = pc.list_flatten(arr).cast(pa.float64()).to_numpy(zero_copy_only=False)
    return values, np.repeat(np.arange(len(arr)), lengths)


def samples_dataset(run_dir: Path, num_classes: int | None = None) -> pads.Dataset:
    """The per-sample table of a run as one pyarrow dataset (model_id from the partition folders);
    with `num_classes`, every file is read as the contract's kinds (casts, optional columns null)."""
    schema = None
    if num_classes is not None:
        schema = SAMPLES_TABLE.schema(num_classes=num_classes).append(pa.field("model_id", pa.string()))
    return pads.dataset(
        Path(run_dir) / SAMPLES_DIR,
        format=PARQUET,
        partitioning=pads.partitioning(pa.schema([("model_id", pa.string())]), flavor="hive"),
        schema=schema,
        exclude_invalid_files=False,
        ignore_prefixes=[".", "_"],
    )


def expected_sets(run_dir: Path) -> dict[str, set[EvalSet]]:
    """Per model, the evaluation sets evaluations.parquet lists (read once per version of the file:
    a view that reads model by model asks for it once per model; callers must not change it)."""
    path = Path(run_dir) / EVALUATIONS_TABLE.path
    st = path.stat() if path.exists() else None
    return _expected_sets(str(run_dir), (st.st_ino, st.st_mtime_ns, st.st_size) if st else None)


@functools.lru_cache(maxsize=8)
def _expected_sets(run_dir: str, stamp: tuple[int, int, int] | None) -> dict[str, set[EvalSet]]:
    table = load(Path(run_dir), EVALUATIONS_TABLE, ["model_id", "corruption", "severity"])
    out: dict[str, set[EvalSet]] = {}
    for m, c, s in zip(*(table.column(k).to_pylist() for k in table.column_names)):
        out.setdefault(m, set()).add(EvalSet(c, s))
    return out


def clean_samples(run_dir: Path, model_ids: list[str], columns: list[str], num_classes: int) -> pa.Table:
    """The clean rows of the given models, with model_id; models without clean samples are left out."""
    return set_samples(run_dir, model_ids, columns, num_classes, CLEAN_SET)


def set_samples(
    run_dir: Path, model_ids: list[str], columns: list[str], num_classes: int, evalset: EvalSet
) -> pa.Table:
    """The rows of one evaluation set of the given models, with model_id; models without it are left out."""
    expected = expected_sets(run_dir) if model_ids else {}
    parts = []
    for mid in model_ids:
        index = SamplesIndex(run_dir, mid, expected.get(mid))
        if evalset in index.files:
            t = read_samples(index, evalset, columns, num_classes)
            parts.append(t.add_column(0, "model_id", pa.array([mid] * t.num_rows, pa.string())))
    if not parts:
        return pa.table({c: pa.array([], pa.float32()) for c in ["model_id", *columns]})
    return pa.concat_tables(parts)


def attribution_shape(meta: dict[str, Any]) -> tuple[int, int] | None:
    """(H, W) of a run's attribution maps: run.json `attribution.shape`, else the images' shape."""
    at = meta.get("attribution")
    shape = at.get("shape") if isinstance(at, dict) else None
    if shape is None and isinstance(meta.get("image_shape"), list):
        shape = meta["image_shape"][:2]
    ok = isinstance(shape, list) and len(shape) == 2 and all(isinstance(v, int) and v > 0 for v in shape)
    return (shape[0], shape[1]) if ok else None


def attribution_models(run_dir: Path) -> list[str]:
    """The models with an attributions partition (none when the run has no maps)."""
    root = Path(run_dir) / ATTRIBUTIONS_DIR
    if not root.is_dir():
        return []
    return sorted(p.name.split("=", 1)[1] for p in root.iterdir() if p.is_dir() and p.name.startswith("model_id="))


def read_attributions(run_dir: Path, model_id: str, columns: list[str] | None = None) -> pa.Table:
    """Every attribution row of one model (any file names in its partition), conformed to the
    contract; the columns asked for (default all). An empty table when the model has no maps."""
    columns = columns or ATTRIBUTIONS_TABLE.names
    part = partition_dir(run_dir, ATTRIBUTIONS_DIR, model_id)
    files = sorted(p for p in part.glob("*.parquet") if not p.name.startswith((".", "_"))) if part.is_dir() else []
    parts = []
    for path in files:
        where = f"{ATTRIBUTIONS_DIR}/{part.name}/{path.name}"
        table = read_table(path, columns=_present(path, columns))
        parts.append(conform(table, ATTRIBUTIONS_TABLE, columns, where=where)[0])
    if not parts:
        return ATTRIBUTIONS_TABLE.schema().empty_table().select(columns)
    return pa.concat_tables(parts)
