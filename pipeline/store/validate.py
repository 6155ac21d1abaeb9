"""Checking a run folder against the contract: errors (the run, or part of it, cannot be read)
and warnings (read with a default or a cast)."""

from __future__ import annotations

import math
import os
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.store.bits import KEYS as BIT_KEYS
from pipeline.store.bits import bit_matrix, row_counts, scan_bits
from pipeline.store.errors import Problem, PruneScopeError
from pipeline.store.io import (
    RESUME,
    SamplesIndex,
    attribution_models,
    attribution_shape,
    conform,
    read_table,
    run_meta,
    samples_dataset,
    samples_names,
    set_samples,
)
from pipeline.store.layout import ATTRIBUTIONS_DIR, CLEAN, RUN_JSON, SAFE_ID, SAMPLES_DIR, EvalSet, partition_dir
from pipeline.store.preds import FIX as PREDS_FIX
from pipeline.store.preds import NO_PRED, unpack_preds
from pipeline.store.schema import (
    ANGLES_ALL,
    ANGLES_CLEAN,
    ATTRIBUTIONS_TABLE,
    EVALUATIONS_TABLE,
    HEADS_TABLE,
    IMAGES_TABLE,
    MARGIN_DEFINITIONS,
    MODELS_TABLE,
    RUN_JSON_FEATURES,
    RUN_JSON_KEYS,
    RUN_JSON_OPTIONAL,
    SAMPLES_TABLE,
    TableSpec,
    angles_stored,
    margin_definition,
)

FIX_TABLE = "write it as docs/store.md describes (python -m pipeline validate RUN checks it)"


def check_run(run_dir: Path, deep: bool = True) -> list[Problem]:
    """Every problem of a run, errors first. Needs only the files of the contract.

    `deep=False` (the dashboard's panel, at page load) lists the per-sample files and glances at
    their Parquet magic bytes (all of them in a run of at most GLANCE_FILES files, else a sample:
    _glance_at_samples), reading no footer: a truncated file is found, a wrong column in one is
    reported by the view that reads it.
    """
    run_dir = Path(run_dir)
    try:
        meta, problems = run_meta(run_dir)
    except PruneScopeError as exc:
        return [Problem.of(exc, RUN_JSON)]
    problems += [Problem(RUN_JSON, f"key {k!r} is missing", FIX_TABLE) for k in RUN_JSON_KEYS if k not in meta]
    problems += [
        Problem(RUN_JSON, f"optional key {k!r} is missing", error=False)
        for k in RUN_JSON_OPTIONAL
        if k not in meta and k not in RUN_JSON_FEATURES
    ]
    if margin_definition(meta) not in MARGIN_DEFINITIONS:
        problems.append(
            Problem(RUN_JSON, f"margin {meta['margin']!r} is not a margin definition", "use one of: eq5, signed")
        )
    problems += _check_angles_key(meta)
    num_classes = meta["num_classes"]
    tables = {}
    for spec in (MODELS_TABLE, EVALUATIONS_TABLE, HEADS_TABLE, IMAGES_TABLE):
        if not spec.required and not (run_dir / spec.path).exists():
            problems.append(Problem(spec.path, "is missing: the gallery shows no images", error=False))
            continue
        try:
            tables[spec.name], notes = conform(read_table(run_dir / spec.path), spec)
            problems += notes
        except PruneScopeError as exc:
            problems.append(Problem.of(exc, spec.path))
    if "models" in tables:
        problems += _check_models(run_dir, tables["models"], tables, num_classes, deep)
    return _summarise(problems)


def _check_angles_key(meta: dict) -> list[Problem]:
    """run.json "angles": `full` is "all" or "clean", and a run whose corrupted rows keep k angles says k."""
    if "angles" not in meta:
        return []
    stored = angles_stored(meta)
    fix = 'write {"full": "clean", "k": K} (or {"full": "all"}); docs/store.md'
    if not isinstance(meta["angles"], dict) or stored["full"] not in (ANGLES_ALL, ANGLES_CLEAN):
        return [Problem(RUN_JSON, f"angles {meta['angles']!r} does not say which rows hold every angle", fix)]
    if stored["full"] == ANGLES_CLEAN and stored["k"] is None:
        return [Problem(RUN_JSON, "angles.k is not a positive integer", fix)]
    return []


def validate_run(run_dir: Path) -> list[str]:
    """The errors of a run as lines (empty when the run is readable; warnings are left out)."""
    return [str(p.problem) for p in check_run(run_dir) if p.error]


def _check_models(
    run_dir: Path, models: pa.Table, tables: dict[str, pa.Table], num_classes: int, deep: bool
) -> list[Problem]:
    problems: list[Problem] = []
    where = MODELS_TABLE.path
    ids = models.column("model_id").to_pylist()
    if len(set(ids)) != len(ids):
        problems.append(Problem(where, "model_id is not unique", "give every model its own id"))
    for mid in ids:
        if not SAFE_ID.match(str(mid)):
            problems.append(
                Problem(where, f"model_id {mid!r} is not a safe identifier", "use letters, digits, _ . + -")
            )
    known = {m for m in ids if isinstance(m, str) and SAFE_ID.match(m)}
    for parent in models.column("parent_id").to_pylist():
        if parent is not None and parent not in known:
            problems.append(Problem(where, f"parent_id {parent!r} is not a model of the run", "use a model_id or null"))
    for ckpt in models.column("checkpoint").to_pylist():
        if ckpt and not (run_dir / ckpt).is_file():
            problems.append(Problem(ckpt, "the checkpoint is missing (only re-evaluating needs it)", error=False))
    evals = tables.get("evaluations")
    wanted: dict[str, set[EvalSet]] = {m: set() for m in known}
    if evals is not None:
        for m, c, s in zip(*(evals.column(k).to_pylist() for k in ("model_id", "corruption", "severity"))):
            if m not in known:
                problems.append(Problem(EVALUATIONS_TABLE.path, f"model_id {m!r} is not in {where}", FIX_TABLE))
            else:
                wanted[m].add(EvalSet(c, s))
        for m, c, s, n, length in zip(
            *(evals.column(k).to_pylist() for k in ("model_id", "corruption", "severity", "n", "mean_length"))
        ):
            if n and (length is None or not math.isfinite(length)):
                problems.append(
                    Problem(
                        EVALUATIONS_TABLE.path,
                        f"model {m!r} on {EvalSet(c, s).label}: the features are NaN or infinite, so is its geometry",
                        "check the model's weights and its input normalization",
                        error=False,
                    )
                )
        problems += _check_bits(run_dir, evals, num_classes, deep)
        problems += _check_preds(run_dir, evals, num_classes, deep)
    if "heads" in tables:
        counts = pa.TableGroupBy(tables["heads"], "model_id").aggregate([([], "count_all")]).to_pydict()
        rows = dict(zip(counts["model_id"], counts["count_all"]))
        for mid in sorted(known):
            if rows.get(mid, 0) != num_classes:
                problems.append(
                    Problem(
                        HEADS_TABLE.path,
                        f"model {mid!r} has {rows.get(mid, 0)} class rows, expected {num_classes}",
                        FIX_TABLE,
                    )
                )
    problems += _check_samples(run_dir, wanted, num_classes) if deep else _glance_at_samples(run_dir, wanted)
    problems += _check_attributions(run_dir, known, deep)
    return problems


def _check_bits(run_dir: Path, evals: pa.Table, num_classes: int, deep: bool) -> list[Problem]:
    """The optional correctness bitsets agree with each evaluation's n and accuracy and, when
    `deep`, bit for bit with the samples' `correct` (a stale or misordered bitset would make
    the dashboard's selections wrong)."""
    bits = evals.column("correct_bits").to_pylist()
    if all(b is None for b in bits):
        return []
    keys = [tuple(evals.column(k).to_pylist()) for k in BIT_KEYS]
    stored = dict(zip(zip(*keys), bits))
    ns, accs = evals.column("n").to_pylist(), evals.column("accuracy").to_pylist()
    fix = "rewrite correct_bits from the samples (pipeline.store.pack_correct), or drop the column"
    problems = []
    counts = row_counts(bit_matrix([b or b"" for b in bits]))  # one pass over every bitset
    for (m, c, s), b, n, acc, count in zip(stored, bits, ns, accs, counts.tolist()):
        if b is not None and n and acc is not None and math.isfinite(acc) and count != round(acc * n):
            what = f"correct_bits marks {count} samples correct, accuracy × n says {round(acc * n)}"
            problems.append(Problem(EVALUATIONS_TABLE.path, f"model {m!r} on {EvalSet(c, s).label}: {what}", fix))
    if not deep or problems:
        return problems
    try:
        rows = samples_dataset(run_dir, num_classes).to_table(columns=[*BIT_KEYS, "sample_id", "correct"])
    except (pa.ArrowException, OSError):
        return []  # the samples' own checks name the damage
    scanned, matrix = scan_bits(rows.to_pandas())
    for (m, c, s), row in zip(scanned.itertuples(index=False, name=None), matrix):
        b = stored.get((m, c, s))
        width = max(len(row), len(b or b""))
        if b is not None and not np.array_equal(bit_matrix([b], width)[0], np.pad(row, (0, width - len(row)))):
            what = f"model {m!r} on {EvalSet(c, s).label}: correct_bits differ from the samples' correct"
            problems.append(Problem(EVALUATIONS_TABLE.path, what, fix))
    return problems


def _check_preds(run_dir: Path, evals: pa.Table, num_classes: int, deep: bool) -> list[Problem]:
    """The optional stored predictions hold one class in range per evaluated sample and, when
    `deep`, equal the samples' `pred` (a stale array would make the similarity view wrong)."""
    stored, wrong = unpack_preds(evals, num_classes)
    where = EVALUATIONS_TABLE.path
    problems = [
        Problem(where, f"model {m!r} on {EvalSet(c, s).label}: {what}", PREDS_FIX) for (m, c, s), what in wrong.items()
    ]
    if not deep or problems:
        return problems
    for es in sorted({EvalSet(c, s) for _, c, s in stored}, key=lambda e: e.name):
        got = {m: row for (m, c, s), row in stored.items() if EvalSet(c, s) == es}
        try:
            rows = set_samples(run_dir, list(got), ["sample_id", "pred"], num_classes, es)
        except (PruneScopeError, pa.ArrowException, OSError):
            continue  # the samples' own checks name the damage
        for m, mine in rows.to_pandas().groupby("model_id"):
            ids, want = mine["sample_id"].to_numpy(np.int64), np.full(len(got[m]), NO_PRED, np.int64)
            fits = not len(ids) or (ids.min() >= 0 and ids.max() < len(want))
            if fits:
                want[ids] = mine["pred"].to_numpy()
            if not fits or not np.array_equal(want, got[m]):
                what = f"model {m!r} on {es.label}: preds differ from the samples' pred"
                problems.append(Problem(where, what, PREDS_FIX))
    return problems


def _check_attributions(run_dir: Path, known: set[str], deep: bool) -> list[Problem]:
    """The optional attributions partitions: known models, the contract's columns, maps of H×W values."""
    models = attribution_models(run_dir)
    if not models:
        return []
    problems: list[Problem] = []
    shape = attribution_shape(run_meta(run_dir)[0])
    if shape is None:
        problems.append(
            Problem(
                RUN_JSON,
                "attribution.shape is missing, so the maps cannot be drawn",
                'add "attribution": {"shape": [H, W]}',
            )
        )
    for mid in models:
        part = partition_dir(run_dir, ATTRIBUTIONS_DIR, mid)
        if mid not in known:
            problems.append(
                Problem(f"{ATTRIBUTIONS_DIR}/{part.name}", "is a model that models.parquet does not list", FIX_TABLE)
            )
            continue
        for path in sorted(p for p in part.glob("*.parquet") if not p.name.startswith((".", "_"))):
            where = f"{ATTRIBUTIONS_DIR}/{part.name}/{path.name}"
            found = _check_schema(path, ATTRIBUTIONS_TABLE, {}, where)
            problems += found
            if not deep or shape is None or any(p.error for p in found):
                continue
            try:
                lengths = pc.list_value_length(read_table(path, ["map"]).column("map"))
            except PruneScopeError as exc:
                problems.append(Problem.of(exc, where))
                continue
            wrong = pc.sum(pc.not_equal(lengths, shape[0] * shape[1])).as_py() or 0
            if wrong:
                problems.append(
                    Problem(
                        where,
                        f"{wrong} maps do not have {shape[0]}×{shape[1]} values (run.json attribution.shape)",
                        "write every map as H×W values, row-major",
                    )
                )
    return problems


def _check_samples(run_dir: Path, wanted: dict[str, set[EvalSet]], num_classes: int) -> list[Problem]:
    root = run_dir / SAMPLES_DIR
    if not root.is_dir():
        return [Problem(SAMPLES_DIR + "/", "the folder of per-sample tables is missing", FIX_TABLE)]
    problems: list[Problem] = []
    for part in sorted(root.iterdir()):
        if part.name.startswith((".", "_")):
            continue
        if not part.is_dir() or not part.name.startswith("model_id="):
            problems.append(Problem(f"{SAMPLES_DIR}/{part.name}", "is not a model_id=<id> partition", FIX_TABLE))
        elif part.name.split("=", 1)[1] not in wanted:
            problems.append(
                Problem(f"{SAMPLES_DIR}/{part.name}", "is a model that models.parquet does not list", FIX_TABLE)
            )
    for mid in sorted(wanted):
        try:
            index = SamplesIndex(run_dir, mid)
        except Problem as exc:
            problems.append(exc)
            continue
        problems += index.damaged
        held: dict[Path, set[EvalSet]] = {}
        for es, paths in index.files.items():
            for path in paths:
                held.setdefault(path, set()).add(es)
        named = {es.name: es for es in wanted[mid]}
        for path, sets in sorted(held.items()):
            where = f"{index.where}/{path.name}"
            problems += _check_sample_schema(path, num_classes, where)
            if path.stem in named and sets != {named[path.stem]}:
                problems.append(
                    Problem(
                        where,
                        f"is named after {named[path.stem].label} but holds {', '.join(e.label for e in sorted(sets))}",
                        "a file named <set>.parquet holds that set only: rename it (any other name may hold any sets)",
                    )
                )
        if not index.damaged:
            problems += [_no_samples(index.where, es) for es in sorted(wanted[mid] - set(index.files))]
    return problems


GLANCE_FILES = 512  # the quick check glances at every samples file of a run of at most this many, else at a sample


def _glance_at_samples(run_dir: Path, wanted: dict[str, set[EvalSet]]) -> list[Problem]:
    """Every model has a samples partition; where every file of it is named after a set, each of
    its sets has its file (a directory listing); and the files start and end as Parquet does:
    every file of a run of at most GLANCE_FILES, else every model's `clean.parquet` (the first
    views read them) and a seeded sample of the others up to GLANCE_FILES. A glance is a random
    read on a cold disk: at 19,200 files (100 M rows, load 8) glancing at every one took 11.6 s of
    the first request (1.5 s with the files in the page cache), the listing and 512 glances 0.16 s
    (cached); `python -m pipeline validate` checks every file."""
    problems: list[Problem] = []
    clean, others = [], []
    for mid in sorted(wanted):
        part = partition_dir(run_dir, SAMPLES_DIR, mid)
        where = f"{SAMPLES_DIR}/{part.name}"
        try:
            listing = samples_names(part)  # names only: a path for each of 19,200 files cost 0.3 s
        except OSError:
            problems.append(Problem(f"{where}/", f"the samples of model {mid!r} are missing", RESUME))
            continue
        stems = {n.removesuffix(".parquet") for n in listing}
        names = {es.name: es for es in wanted[mid]}
        if stems <= names.keys():  # no file of another name that could hold a set
            problems += [_no_samples(where, names[n]) for n in sorted(names.keys() - stems)]
        for n in listing:
            (clean if n == f"{CLEAN}.parquet" else others).append((f"{where}/{n}", os.path.join(part, n)))
    room = max(0, GLANCE_FILES - len(clean))
    glanced = clean + (others if len(others) <= room else random.Random(0).sample(others, room))
    for where, path in sorted(glanced):
        if not _looks_like_parquet(path):
            problems.append(Problem(where, "is not a readable samples file (truncated or not Parquet)", RESUME))
    return problems


def _looks_like_parquet(path: str | Path) -> bool:
    """Whether a file starts and ends with Parquet's magic bytes (two small reads)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        size = os.fstat(fd).st_size
        return size >= 12 and os.pread(fd, 4, 0) == b"PAR1" and os.pread(fd, 4, size - 4) == b"PAR1"
    except OSError:
        return False
    finally:
        os.close(fd)


def _no_samples(where: str, es: EvalSet) -> Problem:
    return Problem(where + "/", f"evaluation {es.label} is in evaluations.parquet but has no samples", FIX_TABLE)


def _check_sample_schema(path: Path, num_classes: int, where: str) -> list[Problem]:
    """A samples file's columns against the contract; of the angle columns it holds `angles`, or
    `nearest` and `nearest_angles` (lists of any length), or all three."""
    quiet = ("column 'angles' is missing", "column 'nearest'", "column 'nearest_angles'")
    problems = [
        p
        for p in _check_schema(path, SAMPLES_TABLE, {"num_classes": num_classes}, where)
        if p.error or not any(q in p.problem for q in quiet)
    ]
    try:
        names = set(pq.read_schema(path).names)
    except (pa.ArrowException, OSError):
        return problems
    if "angles" not in names and not {"nearest", "nearest_angles"} <= names:
        problems.append(
            Problem(
                where,
                "holds neither `angles` nor `nearest` and `nearest_angles`",
                "write the angle to every class (angles) or the k nearest classes with their angles (docs/store.md)",
            )
        )
    return problems


def _check_schema(path: Path, spec: TableSpec, sizes: dict[str, int], where: str) -> list[Problem]:
    """A file's columns against the contract, from its footer only."""
    try:
        empty = pq.read_schema(path).empty_table()
        return conform(empty, spec, sizes=sizes, where=where)[1]
    except Problem as exc:
        return [exc]
    except (pa.ArrowException, OSError) as exc:
        return [Problem(where, f"is not readable Parquet: {exc}", FIX_TABLE)]


def _summarise(problems: list[Problem]) -> list[Problem]:
    """Errors first; a warning repeated over many files is reported once, with the count."""
    errors = [p for p in problems if p.error]
    seen: dict[str, list[Problem]] = {}
    for p in problems:
        if not p.error:
            seen.setdefault(p.what, []).append(p)
    warnings = []
    for what, same in seen.items():
        first = same[0]
        where = first.where if len(same) == 1 else f"{first.where} and {len(same) - 1} more files"
        warnings.append(Problem(where, what, first.fix, error=False))
    return errors + warnings
