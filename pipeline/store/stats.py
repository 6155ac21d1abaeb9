"""Robustness statistics of shared/DESIGN.md §1, as pure numpy functions (no torch).

Shared by the terminal report and the dashboard, which reads the store only; part of the
contract package so that both compute them the same way.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.store.populations import main_models
from pipeline.store.schema import INIT_UNTRAINED, TOP_FRACTION

TABLE1_MEASURES = ("angle", "length", "margin")
TRIM = 0.005  # drop the lowest and highest 0.5 % before plotting a density (Fig. 10)
# A model is at chance when its clean accuracy is at most the share of the most frequent
# test class plus this margin: it predicts (nearly) one class, and its correlations in
# Table 1 say nothing about its geometry.
CHANCE_MARGIN = 0.02


def chance_level(labels: np.ndarray) -> float:
    """Accuracy of always predicting the most frequent class of `labels`."""
    labels = np.asarray(labels)
    return float(np.bincount(labels).max() / len(labels)) if len(labels) else float("nan")


def at_chance(accuracy: float, labels: np.ndarray) -> bool:
    """Whether a clean accuracy is no better than predicting the most frequent class (+ CHANCE_MARGIN)."""
    return at_chance_level(accuracy, chance_level(labels))


def at_chance_level(accuracy: float, chance: float) -> bool:
    """at_chance() from the share of the most frequent class (`chance`; NaN: no labels, never at chance)."""
    return bool(np.isfinite(accuracy) and np.isfinite(chance) and accuracy <= chance + CHANCE_MARGIN)


def map_drift(a: np.ndarray, b: np.ndarray, top: float = TOP_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """Drift between two stacks of attribution maps (N, H·W), row by row: the Spearman rank
    correlation (ties ranked by their mean rank; NaN when a map is constant) and the IoU of the
    ceil(top · H·W) highest pixels of each (ties broken by pixel order). A map against itself: 1, 1."""
    from scipy.stats import rankdata

    a, b = np.atleast_2d(np.asarray(a, np.float64)), np.atleast_2d(np.asarray(b, np.float64))
    ra, rb = rankdata(a, axis=1), rankdata(b, axis=1)
    ra, rb = ra - ra.mean(axis=1, keepdims=True), rb - rb.mean(axis=1, keepdims=True)
    denom = np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(denom > 0, (ra * rb).sum(axis=1) / denom, np.nan)
    k = max(1, int(np.ceil(top * a.shape[1])))
    rows = np.arange(a.shape[0])[:, None]
    in_a = np.zeros(a.shape, bool)
    in_b = np.zeros(b.shape, bool)
    in_a[rows, np.argsort(-a, axis=1, kind="stable")[:, :k]] = True
    in_b[rows, np.argsort(-b, axis=1, kind="stable")[:, :k]] = True
    iou = (in_a & in_b).sum(axis=1) / (in_a | in_b).sum(axis=1)
    return rho.astype(np.float32), iou.astype(np.float32)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation over the pairs where both values are finite (NaN when undefined)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 2 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def relative_margin_change(clean_margin: np.ndarray, corrupted_margin: np.ndarray) -> np.ndarray:
    """(m_clean − m_corrupted) / m_clean per sample and corrupted version (Fig. 10).

    Shapes: clean (N,), corrupted (N,) or (K, N) for K corrupted versions; NaN where the
    clean margin is zero or undefined.
    """
    clean = np.asarray(clean_margin, np.float64)
    corrupted = np.asarray(corrupted_margin, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        change = (clean - corrupted) / clean
    return np.where(np.isfinite(change), change, np.nan)


def trim(values: np.ndarray, fraction: float = TRIM) -> np.ndarray:
    """The finite values without the lowest and highest `fraction` of them."""
    v = np.asarray(values, np.float64).ravel()
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return v
    lo, hi = np.quantile(v, [fraction, 1.0 - fraction])
    return v[(v >= lo) & (v <= hi)]


def margin_change_values(clean: pa.Table, corrupted: list[pa.Table]) -> np.ndarray:
    """trim(relative_margin_change()) of one model (Fig. 10): its clean rows and each corrupted
    set's rows (columns sample_id, margin), matched by sample id; margins as stored (float32)."""
    tables = [clean, *corrupted]
    n = max((int(np.max(t.column("sample_id").to_numpy())) + 1 if t.num_rows else 0) for t in tables)
    matrix = np.full((len(tables), n), np.nan, np.float32)
    for row, t in enumerate(tables):
        matrix[row, t.column("sample_id").to_numpy()] = t.column("margin").to_numpy(zero_copy_only=False)
    return trim(relative_margin_change(matrix[0], matrix[1:]))


DENSITY_BINS = 256  # a density of more values than this is estimated from their histogram of this many bins
SCOTT = 1.06  # Scott's rule: bandwidth 1.06 · std · n^(-1/5)


def density_bins(
    values: np.ndarray, lo: float | None = None, hi: float | None = None, bins: int = DENSITY_BINS
) -> dict | None:
    """What a Gaussian kernel density estimate of the finite `values` needs: their count `n`,
    Scott's bandwidth `bw`, the ends `lo`, `hi` of the values (unless given), and the `values`
    themselves, or for more than `bins` of them their `counts` in `bins` even bins on
    [lo − bw, hi + bw] (at that many values the estimate of the binned values is the same to the
    eye, cheaper, and a summary of fixed size). None when undefined: under two values, or all equal."""
    v = np.asarray(values, np.float64).ravel()
    v = v[np.isfinite(v)]
    if len(v) < 2 or np.ptp(v) == 0:
        return None
    lo = float(v.min()) if lo is None else float(lo)
    hi = float(v.max()) if hi is None else float(hi)
    centred = v - v.mean()
    bw = float(SCOTT * np.sqrt(centred @ centred / len(v)) * len(v) ** (-1 / 5))  # v.std(), without its checks
    if len(v) > bins:
        return {"n": len(v), "bw": bw, "lo": lo, "hi": hi, "counts": _histogram(v, bins, lo - bw, hi + bw)}
    return {"n": len(v), "bw": bw, "lo": lo, "hi": hi, "values": v}


def _histogram(values: np.ndarray, bins: int, start: float, stop: float) -> np.ndarray:
    """np.histogram(values, bins, (start, stop))[0] as int64, 6× faster on a few hundred values (a view
    estimates dozens of densities an interaction); a value on an inner edge may fall in either bin."""
    inside = values[(values >= start) & (values <= stop)]
    index = ((inside - start) * (bins / (stop - start))).astype(np.intp)
    return np.bincount(np.minimum(index, bins - 1), minlength=bins).astype(np.int64)


MARGIN_CHANGE_KEY = "prunescope.margin_change"  # a published clean file's footer: margin_change_summary()


def margin_change_summary(changes: np.ndarray) -> dict:
    """Fig. 10's density of one model from its trimmed relative margin changes: `n` and `median`
    of the finite ones, and density_bins() of them where defined (`bw`, `lo`, `hi`, `counts` or `values`)."""
    v = np.asarray(changes, np.float64).ravel()
    v = v[np.isfinite(v)]
    return {"n": len(v), "median": float(np.median(v)) if len(v) else None} | (density_bins(v) or {})


@functools.lru_cache(maxsize=8192)
def _footer(path: str, mtime_ns: int, size: int) -> tuple[dict[bytes, bytes], int]:
    """A Parquet file's key-value metadata and row count, read once per version of the file (its
    path, modification time and size): a model's clean file holds several summaries, which the
    first page reads in several callbacks (one footer read a file instead of one a summary)."""
    meta = pq.read_metadata(path)
    return dict(meta.metadata or {}), meta.num_rows


def footer_record(path: Path, key: str) -> dict | None:
    """The JSON object under `key` in a Parquet file's metadata where it holds for the file's rows
    (its `rows` equals the file's row count), else None (no such key, another JSON value, an
    unreadable file, rows rewritten since it was written)."""
    try:
        stat = Path(path).stat()
        metadata, rows = _footer(str(path), stat.st_mtime_ns, stat.st_size)
        raw = metadata.get(key.encode())
        record = json.loads(raw) if raw else None
    except (pa.ArrowException, OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("rows") == rows else None


def read_margins(run_dir: Path, model_id: str, sets: list[tuple[str, int]]) -> list[pa.Table]:
    """sample_id and margin of each of `sets` of a model, from the files the pipeline writes (one a
    set): a plain read of two columns, page checksums verified (a dataset scan costs twice as much
    a file, and a model has 95 corrupted sets)."""
    from pipeline.store.layout import samples_path

    out = []
    for corruption, severity in sets:
        with pq.ParquetFile(
            samples_path(run_dir, model_id, corruption, severity), page_checksum_verification=True
        ) as f:
            out.append(f.read(["sample_id", "margin"], use_threads=False))
    return out


def with_margin_change(clean: pa.Table, corrupted: list[pa.Table], sets: list[tuple[str, int]]) -> pa.Table:
    """The `clean` rows of a model with margin_change_summary() of them and its `corrupted` sets'
    rows (sample_id, margin; one table a set of `sets`) in their footer (key MARGIN_CHANGE_KEY,
    with the clean row count and the sets it holds for), so that the dashboard reads one footer
    instead of every evaluation file of the model."""
    summary = margin_change_summary(margin_change_values(clean.select(["sample_id", "margin"]), corrupted))
    for key in ("counts", "values"):
        if key in summary:
            summary[key] = summary[key].tolist()
    record = {**summary, "rows": clean.num_rows, "sets": sorted([str(c), int(s)] for c, s in sets)}
    footer = {**(clean.schema.metadata or {}), MARGIN_CHANGE_KEY.encode(): json.dumps(record).encode()}
    return clean.replace_schema_metadata(footer)


def stored_margin_change(path: Path, sets: list[tuple[str, int]]) -> dict | None:
    """margin_change_summary() of a model from its clean samples file's footer (docs/store.md), or
    None where the footer does not hold one for the file's rows and the model's corrupted `sets`
    (another tool's file, an older run, rows or sets changed since) or holds an odd one."""
    record = footer_record(path, MARGIN_CHANGE_KEY)
    if record is None:
        return None
    try:
        if sorted((str(c), int(s)) for c, s in record["sets"]) != sorted((str(c), int(s)) for c, s in sets):
            return None
        return _checked_density(record)
    except (KeyError, TypeError, ValueError, OverflowError):
        return None


def _checked_density(record: dict) -> dict | None:
    """A stored margin_change_summary() with its numbers checked (arrays as numpy), or None when
    it does not describe a density: a wrong type, a count that does not add up, a bandwidth ≤ 0."""
    n = record["n"]
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        return None
    median = None if record.get("median") is None else float(record["median"])
    if (median is None) != (n == 0) or (median is not None and not np.isfinite(median)):
        return None
    out = {"n": n, "median": median}
    if not {"bw", "counts", "values"} & record.keys():
        return out  # no density: under two values, or all equal
    bw, lo, hi = float(record["bw"]), float(record["lo"]), float(record["hi"])
    if not (np.isfinite([bw, lo, hi]).all() and bw > 0 and lo <= hi and n >= 2):
        return None
    if ("counts" in record) == ("values" in record):
        return None
    if "counts" in record:
        counts = np.asarray(record["counts"])
        if counts.ndim != 1 or not len(counts) or counts.dtype.kind not in "iu" or counts.min() < 0:
            return None
        if int(counts.sum()) != n:
            return None
        return out | {"bw": bw, "lo": lo, "hi": hi, "counts": counts}
    values = np.asarray(record["values"], np.float64)
    if values.shape != (n,) or not np.isfinite(values).all():
        return None
    return out | {"bw": bw, "lo": lo, "hi": hi, "values": values}


TABLE1_KEY = "prunescope.table1"  # a clean samples file's footer: table1_stats() of its rows


def table1_stats(labels: np.ndarray, robustness: np.ndarray, measures: dict[str, np.ndarray]) -> dict[str, float]:
    """Table 1's numbers of one model's clean rows: the Pearson correlation of per-sample
    `robustness` with each of TABLE1_MEASURES (arrays in `measures`), and `chance`, the share of
    the most frequent label (chance_level), which decides with the model's accuracy whether it is
    left out."""
    return {m: pearson(robustness, measures[m]) for m in TABLE1_MEASURES} | {"chance": chance_level(labels)}


def table1_row(stats: dict[str, float], accuracy: float) -> dict:
    """One row of Table 1 from table1_stats(): the correlations and an empty note, or NaN and a
    note for a model whose clean `accuracy` is at chance (at most `chance` + CHANCE_MARGIN)."""
    if at_chance_level(accuracy, stats["chance"]):
        return dict.fromkeys(TABLE1_MEASURES, float("nan")) | {"note": f"at chance (accuracy {accuracy:.3f}): left out"}
    return {m: stats[m] for m in TABLE1_MEASURES} | {"note": ""}


def table1(rows: dict[str, dict]) -> pd.DataFrame:
    """Table 1 from table1_row() of each model (by model id): one row per model, sorted by id."""
    return pd.DataFrame.from_dict(
        {m: rows[m] for m in sorted(rows)}, orient="index", columns=[*TABLE1_MEASURES, "note"]
    ).astype(dict.fromkeys(TABLE1_MEASURES, float))


def with_table1(clean: pa.Table) -> pa.Table:
    """The `clean` rows of a model with table1_stats() of them in their footer (key TABLE1_KEY,
    with the row count they hold for; an undefined correlation as null), so that Table 1 reads
    one footer a model instead of its clean rows. As given where a column Table 1 needs is missing."""
    names = ["label", "robustness", *TABLE1_MEASURES]
    if not set(names) <= set(clean.column_names):
        return clean
    cols = {c: clean.column(c).to_numpy(zero_copy_only=False) for c in names}
    stats = table1_stats(cols.pop("label"), cols.pop("robustness"), cols)
    record = {k: v if np.isfinite(v) else None for k, v in stats.items()} | {"rows": clean.num_rows}
    return clean.replace_schema_metadata({**(clean.schema.metadata or {}), TABLE1_KEY.encode(): json.dumps(record)})


def stored_table1(path: Path) -> dict[str, float] | None:
    """table1_stats() of a clean samples file from its footer (docs/store.md), or None where the
    footer does not hold them for the file's rows (another tool's file, rows rewritten since) or
    holds an odd record (a correlation outside [-1, 1], a share outside (0, 1], a NaN or an
    infinity where undefined is null)."""
    record = footer_record(path, TABLE1_KEY)
    if record is None:
        return None
    try:
        out = {k: float("nan") if record[k] is None else float(record[k]) for k in (*TABLE1_MEASURES, "chance")}
    except (KeyError, TypeError, ValueError, OverflowError):
        return None
    held = [record[k] is not None for k in out]
    if any(h and not np.isfinite(v) for h, v in zip(held, out.values())):
        return None  # undefined is null: a NaN or an infinity written as a number is odd
    if any(not -1.0 <= out[m] <= 1.0 for m in TABLE1_MEASURES if np.isfinite(out[m])):
        return None
    if np.isfinite(out["chance"]) and not 0.0 < out["chance"] <= 1.0:
        return None
    return out


def run_table1(run_dir: Path) -> pd.DataFrame:
    """Table 1 of a run folder, per main model: from its clean file's footer where the pipeline
    wrote it for the file's rows (one footer a model), else from its clean rows; models at chance
    left out with a note."""
    from pipeline.store.io import SamplesIndex, clean_samples, expected_sets, load, run_meta
    from pipeline.store.layout import CLEAN, CLEAN_SET
    from pipeline.store.schema import MODELS_TABLE

    run_dir = Path(run_dir)
    meta, _ = run_meta(run_dir)
    frame = load(run_dir, MODELS_TABLE, ["model_id", "clean_accuracy", "scope", "replicate"]).to_pandas()
    accuracy = dict(zip(frame["model_id"], frame["clean_accuracy"].astype(float)))
    expected = expected_sets(run_dir)
    stats, unread = {}, []
    for model_id in frame.loc[main_models(frame), "model_id"]:
        files = SamplesIndex(run_dir, model_id, expected.get(model_id)).files.get(CLEAN_SET, [])
        found = stored_table1(files[0]) if len(files) == 1 and files[0].stem == CLEAN else None
        if found is not None:
            stats[model_id] = found
        elif files:
            unread.append(model_id)
    columns = ["label", "robustness", *TABLE1_MEASURES]
    samples = clean_samples(run_dir, unread, columns, meta["num_classes"]).to_pandas() if unread else None
    for model_id, g in samples.groupby("model_id", sort=False) if samples is not None else ():
        stats[model_id] = table1_stats(g["label"].to_numpy(), g["robustness"].to_numpy(), g)
    return table1({m: table1_row(s, accuracy.get(m, float("nan"))) for m, s in stats.items()})


# Kinds of model in Fig. 3, from models.parquet: an untrained network, the trained dense one, and pruned ones.
KINDS = ("untrained", "dense", "pruned")


def model_kinds(method: pd.Series, init: pd.Series) -> pd.Series:
    """The Fig. 3 kind of each model: "untrained" (`init` untrained: a dense model trained for
    0 epochs), else "dense" for the unpruned, else "pruned"."""
    kind = pd.Series(np.where(method.eq("dense"), "dense", "pruned"), index=method.index)
    return kind.mask(init.eq(INIT_UNTRAINED), "untrained")


QUADRATURE_CELLS = 4000


def random_angle_stats(dims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation, in degrees, of the angle between two independent isotropic
    random vectors of each dimension d (Fig. 3, top): its density is ∝ sin^(d−2) θ on [0°, 180°],
    so the mean is 90° and the spread shrinks about as 57.3°/√d. Exact by quadrature (no sampling):
    the midpoint rule in u = θ − 90° over ±12 spreads of the density ∝ cos^(d−2) u (all of it for
    small d), 4,000 cells whatever d, within 1e-6 of the exact values (a few ms for Fig. 3's grid)."""
    dims = np.asarray(dims, dtype=np.int64)
    mean, std = np.full(dims.shape, 90.0), np.empty(dims.shape)
    for i, d in enumerate(dims.ravel()):
        if d < 2:  # two random signs: 0° or 180°
            std.flat[i] = 90.0
            continue
        half = min(np.pi / 2, 12 / np.sqrt(d - 1))  # the spread is about 1/√(d − 1) rad
        u = (np.arange(QUADRATURE_CELLS) + 0.5) * (2 * half / QUADRATURE_CELLS) - half
        w = np.exp((d - 2) * np.log(np.cos(u)))
        std.flat[i] = np.degrees(np.sqrt(np.sum(w * u * u) / np.sum(w)))
    return mean, std


def pooled(n: pd.Series, mean: pd.Series, std: pd.Series) -> tuple[float, float]:
    """Mean and (population) standard deviation of the union of groups given by their sizes, means and stds."""
    n, mean, std = (np.asarray(v, np.float64) for v in (n, mean, std))
    ok = (n > 0) & np.isfinite(mean) & np.isfinite(std)
    if not ok.any():
        return float("nan"), float("nan")
    total = n[ok].sum()
    m = float((n[ok] * mean[ok]).sum() / total)
    second = float((n[ok] * (std[ok] ** 2 + mean[ok] ** 2)).sum() / total)
    return m, float(np.sqrt(max(second - m * m, 0.0)))


ANGLE_SUMMARY = (
    "model_id",
    "method",
    "kind",
    "dim",
    "sparsity",
    "clean_accuracy",
    "n",
    "angle_mean",
    "angle_std",
    "other_mean",
    "other_std",
    "above_30",
)


def _other_class_stats(mat: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Mean and std of the finite angles of (N, C) float32 `mat` to the classes other than each
    row's label, without a float64 copy of the matrix (1000 classes × 50,000 samples is 200 MB):
    sums of the values centred on a first estimate (one float32 copy, squared in place), then the
    own class taken out."""
    rows = np.arange(len(mat))
    own = mat[rows, labels].astype(np.float64)
    own_ok = np.isfinite(own)
    bad = ~np.isfinite(mat)
    some_bad = bool(bad.any())
    count = mat.size - (int(bad.sum()) if some_bad else 0) - int(own_ok.sum())
    if count <= 0:
        return np.nan, np.nan
    head = mat[: min(len(mat), 256)]
    shift = float(np.nanmean(np.where(np.isfinite(head), head, np.nan))) if np.isfinite(head).any() else 0.0
    centred = np.subtract(mat, np.float32(shift))
    if some_bad:
        centred[bad] = 0
    own_c = np.where(own_ok, own - shift, 0.0)
    total = float(centred.sum(dtype=np.float64)) - own_c.sum()
    np.square(centred, out=centred)
    squares = float(centred.sum(dtype=np.float64)) - np.square(own_c).sum()
    mean = total / count
    return shift + mean, float(np.sqrt(max(squares / count - mean**2, 0.0)))


ANGLE_STATS_KEY = "prunescope.angle_stats"  # a clean samples file's footer: angle_stats() of its rows
ANGLE_STATS = ("n", "angle_mean", "angle_std", "other_mean", "other_std", "above_30")


def angle_stats(labels: np.ndarray, own: np.ndarray, mat: np.ndarray) -> dict[str, float]:
    """Fig. 3's numbers of one model's clean rows (`own` the angle to the true class, `mat` every
    angle, NaN where not held): `n` finite own-class angles, their mean, std and share above 30°,
    and the mean and std of the angles to the other classes."""
    own = np.asarray(own, np.float64)
    ok = own[np.isfinite(own)]
    other_mean, other_std = _other_class_stats(mat, np.asarray(labels, np.int64))
    return {
        "n": int(len(ok)),
        "angle_mean": float(ok.mean()) if len(ok) else np.nan,
        "angle_std": float(ok.std()) if len(ok) else np.nan,
        "other_mean": float(other_mean),
        "other_std": float(other_std),
        "above_30": float((ok > 30).mean()) if len(ok) else np.nan,
    }


def stored_angle_stats(path: Path) -> dict[str, float] | None:
    """angle_stats() of a clean samples file from its footer (docs/store.md), or None where the
    footer does not hold them for the file's rows (another tool's file, or rows rewritten since)."""
    stats = footer_record(path, ANGLE_STATS_KEY)
    if stats is None:
        return None
    try:
        return {k: int(stats[k]) if k == "n" else float(stats[k]) for k in ANGLE_STATS}
    except (KeyError, TypeError, ValueError):
        return None


def run_angle_summary(run_dir: Path) -> pd.DataFrame:
    """Fig. 3's numbers per model, from the clean samples: the width of the last feature layer
    (`dim`, from heads.parquet), the mean and std angle of the samples to their own class
    direction and to the other classes' directions, and the share of own-class angles above 30°.
    Zero feature vectors (NaN angles) are left out; `n` counts the samples used. A clean file
    whose footer holds them (the pipeline writes them, see write_samples) is not read: at 1000
    classes its angles are 20 MB a model."""
    from pipeline.store.io import SamplesIndex, clean_samples, expected_sets, load, run_meta
    from pipeline.store.layout import CLEAN, CLEAN_SET
    from pipeline.store.schema import HEADS_TABLE, MODELS_TABLE

    run_dir = Path(run_dir)
    meta, _ = run_meta(run_dir)
    models = load(run_dir, MODELS_TABLE).to_pandas()
    models = models[main_models(models)]
    heads = load(run_dir, HEADS_TABLE, ["model_id", "weight"])
    dims = pd.Series(
        pc.list_value_length(heads.column("weight")).to_numpy(zero_copy_only=False),
        index=heads.column("model_id").to_pandas(),
    )
    expected = expected_sets(run_dir)
    rows = []
    for model_id in sorted(models["model_id"]):  # one model at a time: C angles a row add up at many classes
        files = SamplesIndex(run_dir, model_id, expected.get(model_id)).files.get(CLEAN_SET, [])
        stats = stored_angle_stats(files[0]) if len(files) == 1 and files[0].stem == CLEAN else None
        if stats is None:
            t = clean_samples(run_dir, [model_id], ["label", "angle", "angles"], meta["num_classes"])
            if not t.num_rows:
                continue
            mat = pc.list_flatten(t.column("angles")).to_numpy().reshape(t.num_rows, -1)
            stats = angle_stats(t.column("label").to_numpy(), t.column("angle").to_numpy(), mat)
        rows.append({"model_id": model_id, **stats})
    if not rows:
        return pd.DataFrame(columns=list(ANGLE_SUMMARY))
    df = pd.DataFrame(rows).merge(models, on="model_id", how="left")
    df["kind"] = model_kinds(df["method"], df["init"])
    df["dim"] = df["model_id"].map(dims.groupby(level=0).first()).fillna(0).astype(int)
    return df[list(ANGLE_SUMMARY)]
