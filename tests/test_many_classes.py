"""Runs of many classes (issue 14): the k-nearest form of the angles, read next to the full form."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from app.export import build_snapshot
from app.figures import decode_array
from app.figures.local import MAX_CLASSES, RANK_CHANGE, RANK_CONFUSION, class_ranking, classes_to_show
from app.figures.parallel import MAX_AXES, STRIP_HALF, density_strips, dimensions, rank_axes
from app.reader import StoreError, StoreReader
from app.state import Combo
from app.views import global_
from app.views.local import class_options, ranking, single
from pipeline import store
from pipeline.store import Problem
from pipeline.store.io import angle_matrix
from tests.conftest import MANY_CLASSES
from tests.foreign_runs import CLASSES, write_foreign_run

K = 2


def nearest_form(angles: np.ndarray, k: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The k nearest classes of every row of an (N, C) angle matrix and their angles."""
    order = np.argsort(angles, axis=1, kind="stable")[:, :k]
    return list(order), list(np.take_along_axis(angles, order, axis=1))


def test_angle_matrix_reads_either_form_row_by_row():
    full = pa.array([[10.0, 20.0, 30.0], None, None, [1.0, 2.0]], pa.list_(pa.float32()))
    nearest = pa.array([None, [2, 0], [1, 7], [0]], pa.list_(pa.int64()))
    near = pa.array([None, [5.0, 6.0], [4.0, 9.0], [3.0]], pa.list_(pa.float64()))
    mat = angle_matrix(pa.table({"angles": full, "nearest": nearest, "nearest_angles": near}), 3, "f")
    np.testing.assert_array_equal(mat[0], [10, 20, 30])
    np.testing.assert_array_equal(mat[1], [6, np.nan, 5])
    np.testing.assert_array_equal(mat[2], [np.nan, 4, np.nan]), "a class out of range is left out"
    np.testing.assert_array_equal(mat[3], [3, np.nan, np.nan]), "a short `angles` row is not used"
    with pytest.raises(Problem, match="neither `angles` nor `nearest`"):
        angle_matrix(pa.table({"nearest": nearest}), 3, "f")
    with pytest.raises(Problem, match="do not read as lists"):
        angle_matrix(pa.table({"angles": pa.array([1.0, 2.0, 3.0, 4.0])}), 3, "f")


@pytest.fixture(scope="module")
def nearest_store(tmp_path_factory) -> Path:
    """The foreign run rewritten with write_run: clean rows every angle, corrupted rows the K nearest."""
    root = tmp_path_factory.mktemp("nearest")
    src = write_foreign_run(root / "src")
    samples = pd.concat(
        [
            pd.read_parquet(p).assign(model_id=p.parent.name.split("=", 1)[1])
            for p in sorted((src / "samples").glob("*/*.parquet"))
        ],
        ignore_index=True,
    )
    angles = np.stack(samples["angles"].to_numpy())
    nearest, near = nearest_form(angles, K)
    clean = samples["corruption"] == "clean"
    samples = samples.assign(
        angles=[a if c else None for a, c in zip(samples["angles"], clean)],
        nearest=[None if c else n for n, c in zip(nearest, clean)],
        nearest_angles=[None if c else a for a, c in zip(near, clean)],
    )
    store.write_run(
        root / "run",
        pd.read_parquet(src / "models.parquet"),
        samples,
        pd.read_parquet(src / "heads.parquet"),
        CLASSES,
        angles={"full": store.ANGLES_CLEAN, "k": K},
    )
    return root


def test_a_run_with_k_nearest_angles_validates_and_reads(nearest_store):
    run = nearest_store / "run"
    assert store.validate_run(run) == []
    reader = StoreReader(nearest_store)
    clean = reader.samples("run", "dense", "clean", 0, with_angles=True)
    fog = reader.samples("run", "dense", "fog", 2, with_angles=True)
    cols = [f"a{j}" for j in range(len(CLASSES))]
    assert clean[cols].notna().all().all(), "clean rows hold every angle"
    assert (fog[cols].notna().sum(axis=1) == K).all(), "corrupted rows hold their K nearest"
    stored = fog[cols].to_numpy()
    np.testing.assert_allclose(np.nanmin(stored, axis=1), fog[cols].min(axis=1))
    assert reader.angle_summary("run")["n"].gt(0).all(), "Fig. 3 reads the clean angles"


def test_validate_names_a_samples_file_without_any_angles_and_a_bad_angles_key(nearest_store, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(nearest_store / "run", run)
    path = run / "samples" / "model_id=dense" / "fog-1.parquet"
    pq.write_table(pq.read_table(path).drop_columns(["nearest"]), path)
    errors = store.validate_run(run)
    assert any("neither `angles` nor `nearest`" in e for e in errors), errors
    meta = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**meta, "angles": {"full": "clean"}}))
    assert any("angles.k" in e for e in store.validate_run(run))


def test_an_imagefolder_of_1000_classes_builds_a_valid_run_with_k_nearest_corrupted_rows(many_classes_store):
    run = many_classes_store / "many"
    assert store.validate_run(run) == []
    meta = json.loads((run / "run.json").read_text())
    assert meta["num_classes"] == MANY_CLASSES
    assert meta["angles"] == {"full": "clean", "k": 5, "max_classes": store.ANGLES_FULL_MAX_CLASSES}
    reader = StoreReader(many_classes_store)
    models = reader.models("many")
    assert len(models) == 2
    pruned = models.loc[models["method"] != "dense", "model_id"].iloc[0]
    clean = pq.read_table(run / "samples" / f"model_id={pruned}" / "clean.parquet")
    noisy = pq.read_table(run / "samples" / f"model_id={pruned}" / "gaussian_noise-3.parquet")
    assert "angles" in clean.column_names and "nearest" not in clean.column_names
    assert "angles" not in noisy.column_names and noisy.schema.field("nearest").type.list_size == 5
    rows = reader.samples("many", pruned, "gaussian_noise", 3, with_angles=True, labels=[0, 1])
    wide = rows[[f"a{j}" for j in range(MANY_CLASSES)]].to_numpy()
    assert (np.isfinite(wide).sum(axis=1) == 5).all()
    near = noisy.column("nearest_angles").combine_chunks().flatten().to_numpy().reshape(-1, 5)
    assert (np.diff(near, axis=1) >= 0).all(), "nearest first"
    full = reader.samples("many", pruned, "clean", 0, with_angles=True, labels=[3])
    own = full["angle"].to_numpy()
    np.testing.assert_allclose(full["a3"].to_numpy(), own, rtol=1e-6), "the clean rows hold every angle"


def label_runs(path: Path) -> list[tuple[int, int]]:
    """(min, max) label of each row group of a Parquet file, from its footer."""
    meta = pq.read_metadata(path)
    col = meta.schema.to_arrow_schema().names.index("label")
    return [
        (meta.row_group(g).column(col).statistics.min, meta.row_group(g).column(col).statistics.max)
        for g in range(meta.num_row_groups)
    ]


def test_write_samples_groups_wide_angle_rows_by_label_and_leaves_other_files_as_given(tmp_path):
    n, c = 6000, store.ANGLES_FULL_MAX_CLASSES + 1
    labels = (np.arange(n) * 7) % c
    wide = pa.table(
        {
            "sample_id": pa.array(np.arange(n), pa.int32()),
            "label": pa.array(labels, pa.int16()),
            "margin": pa.array(np.ones(n, np.float32)),
            "angles": pa.FixedSizeListArray.from_arrays(np.zeros(n * c, np.float32), c),
        },
        metadata={"k": "v"},
    )
    store.write_samples(wide, tmp_path / "wide.parquet")
    back = pq.read_table(tmp_path / "wide.parquet")
    assert back.schema.metadata == {b"k": b"v"}
    assert back.column("label").to_pylist() == sorted(labels.tolist())
    runs = label_runs(tmp_path / "wide.parquet")
    assert len(runs) == -(-n // (store.LABEL_GROUP_BYTES // (4 * c))) and len(runs) > 1
    assert all(hi <= lo for (_, hi), (lo, _) in zip(runs, runs[1:])), "row groups in label order"
    narrow = wide.drop_columns(["angles"])
    store.write_samples(narrow, tmp_path / "narrow.parquet")
    assert pq.read_table(tmp_path / "narrow.parquet").column("label").to_pylist() == labels.tolist()


def test_a_many_class_runs_clean_file_is_grouped_by_label_and_a_shuffled_one_reads_the_same(
    many_classes_store, tmp_path
):
    run = many_classes_store / "many"
    pruned = StoreReader(many_classes_store).models("many")["model_id"].iloc[-1]
    path = run / "samples" / f"model_id={pruned}" / "clean.parquet"
    runs = label_runs(path)
    assert len(runs) > 1 and all(hi <= lo for (_, hi), (lo, _) in zip(runs, runs[1:])), "grouped by label"
    assert pq.read_table(path, columns=["label"]).column("label").to_numpy().tolist() == sorted(
        pq.read_table(path, columns=["label"]).column("label").to_pylist()
    )
    foreign = tmp_path / "store"
    shutil.copytree(many_classes_store / "many", foreign / "many")
    table = pq.read_table(path)
    shuffled = table.take(np.random.default_rng(0).permutation(table.num_rows))
    pq.write_table(shuffled, foreign / "many" / path.relative_to(run))  # another tool's file: any order
    assert len(label_runs(foreign / "many" / path.relative_to(run))) == 1
    grouped, other = StoreReader(many_classes_store), StoreReader(foreign)
    for labels in ([7], [0, 999], None):
        a = grouped.samples("many", pruned, "clean", 0, with_angles=True, labels=labels)
        b = other.samples("many", pruned, "clean", 0, with_angles=True, labels=labels)
        assert len(a) == (2 * len(labels) if labels else 2 * MANY_CLASSES)
        pd.testing.assert_frame_equal(a, b)


# ---------------------------------------------------------------- app: pre-selection, axes, views


def frame(labels: list[int], correct: list[bool], margin: list[float] | None = None) -> pd.DataFrame:
    n = len(labels)
    return pd.DataFrame(
        {
            "sample_id": np.arange(n),
            "label": labels,
            "correct": correct,
            "margin": margin if margin is not None else [1.0] * n,
        }
    )


def test_class_ranking_puts_the_most_confused_or_most_changed_classes_first():
    ref = frame([0, 0, 1, 1, 2, 2], [True, True, False, True, False, False], [1, 1, 1, 1, -1, -2])
    assert class_ranking(ref, None, RANK_CONFUSION, 4)["class"].tolist() == [2, 1, 0, 3], "no samples: last"
    cmp = frame([0, 0, 1, 1, 2, 2], [False, False, False, True, False, False])
    ranked = class_ranking(ref, cmp, RANK_CHANGE, 4)
    assert ranked["class"].tolist()[:2] == [0, 1] and ranked["flips"].tolist()[:2] == [2, 0]
    assert class_ranking(ref, None, RANK_CHANGE, 4)["class"].tolist() == [2, 1, 0, 3], "no comparison: confusion"
    options = class_options(["a", "b", "c", "d"], ranked)
    assert options[0] == {"label": "0: a (2 flips) · 100% right", "value": 0}
    assert options[-1]["label"] == "3: d (0 flips) · no samples"
    assert classes_to_show(list(range(30))[::-1], 5, 30) == [5, 29, 28, 27, 26, 25, 24, 23, 22, 21]
    assert classes_to_show([2, 1, 0], 1, 3) == [0, 1, 2], "few classes: all, in class order"


def test_parallel_axes_of_many_classes_count_an_angle_not_held_as_the_kth_nearest():
    c = 40
    wide = np.full((4, c), np.nan)
    wide[:, 0] = 30  # the class in focus
    wide[:, 7] = 50  # every sample's second nearest
    wide[:2, 9] = 40  # half the samples hold it (40); the others count their k-th nearest (60): mean 50, not 40
    wide[2:, 11] = 60
    ref = pd.DataFrame(wide, columns=[f"a{j}" for j in range(c)]).assign(label=0, length=1.0, margin=1.0)
    axes = rank_axes(ref, None, 0, c, k=4)
    assert axes[:3] == [0, 7, 9] and len(axes) == 4, "9 ties with 7 (mean 50), the class order breaks it"
    moved = ref.assign(a11=20.0, a30=0.0)  # 11 moved from 60 (rows 2, 3); 30 is not held by the reference
    assert rank_axes(ref, moved, 0, c, k=4) == [0, 7, 9, 11], "the most moved of the angles both hold joins"
    # a strip an axis whose held values vary (a constant one has no density): 7, and 9 from its two rows
    varied = ref.assign(a7=[48.0, 49.0, 51.0, 52.0], a9=[39.0, 41.0, np.nan, np.nan])
    (strips,) = density_strips(varied, None, dimensions(axes, [f"c{j}" for j in range(c)]))["data"]
    x = decode_array(strips["x"])
    left = x[np.r_[0, np.flatnonzero(np.isnan(x))[:-1] + 1]]  # each polygon starts at its strip's left edge
    assert np.allclose(left, [axes.index(7) - STRIP_HALF, axes.index(9) - STRIP_HALF]), left


def test_every_view_draws_the_1000_class_run(many_classes_store):
    reader = StoreReader(many_classes_store)
    models = reader.models("many")
    dense = models.loc[models["method"] == "dense", "model_id"].iloc[0]
    pruned = models.loc[models["method"] != "dense", "model_id"].iloc[0]
    ref, cmp = Combo(dense, "clean", 0), Combo(pruned, "gaussian_noise", 3)
    ranked = ranking(reader, "many", ref, cmp, RANK_CHANGE)
    assert len(ranked) == MANY_CLASSES and ranked["flips"].is_monotonic_decreasing
    focus = int(ranked["class"].iloc[0])
    fig = single(reader, "many", ref, focus, None)
    titles = [a["text"] for a in fig["layout"]["annotations"] if "<b>" in a.get("text", "")]
    assert len(titles) == MAX_CLASSES and f"<b>c{focus:04d}</b>" in titles[0]
    lines, strips, note = global_.figures(reader, "many", ref, cmp, focus, None)
    assert len(lines["layout"]["xaxis"]["ticktext"]) == MAX_AXES + 2
    assert "20 of 1000 class axes" in note and "5 nearest classes" in note
    html = build_snapshot(reader, "many", dense, pruned, "gaussian_noise", 3)
    assert "c0000" in html and len(html) < 20_000_000


def test_modal_prediction_of_1000_classes_matches_counting_with_ties_to_the_smallest_class():
    from collections import Counter

    from pipeline.store.populations import modal

    preds = np.random.default_rng(0).integers(0, MANY_CLASSES, (4, 300))
    preds[:, 0] = [999, 5, 999, 5]  # a tie: the smallest class
    counted = [min(Counter(col).items(), key=lambda kv: (-kv[1], kv[0]))[0] for col in preds.T.tolist()]
    assert modal(preds, MANY_CLASSES).tolist() == counted and counted[0] == 5
    assert modal(preds[:0], MANY_CLASSES).tolist() == [0] * 300


def test_reading_one_class_of_a_grouped_file_decodes_only_the_row_groups_that_hold_it(many_classes_store, tmp_path):
    """A flipped byte in the angles of the last row group fails a read of every row (page checksums)
    but not a read of class 0, which lies in the first row group: the other groups are skipped."""
    shutil.copytree(many_classes_store / "many", tmp_path / "many")
    pruned = StoreReader(many_classes_store).models("many")["model_id"].iloc[-1]
    path = tmp_path / "many" / "samples" / f"model_id={pruned}" / "clean.parquet"
    meta = pq.read_metadata(path)
    last = meta.row_group(meta.num_row_groups - 1)
    col = next(last.column(i) for i in range(last.num_columns) if last.column(i).path_in_schema.startswith("angles"))
    data = bytearray(path.read_bytes())
    data[col.data_page_offset + col.total_compressed_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    reader = StoreReader(tmp_path)
    rows = reader.samples("many", pruned, "clean", 0, with_angles=True, labels=[0])
    assert rows["label"].tolist() == [0, 0] and np.isfinite(rows[[f"a{j}" for j in range(MANY_CLASSES)]]).all(None)
    with pytest.raises(StoreError):
        reader.samples("many", pruned, "clean", 0, with_angles=True)


def test_other_class_angle_stats_leave_out_the_own_class_and_angles_not_held():
    from pipeline.store.stats import _other_class_stats

    rng = np.random.default_rng(1)
    mat = rng.normal(90, 6, (50, MANY_CLASSES)).astype(np.float32)
    labels = rng.integers(0, MANY_CLASSES, 50)
    mat[3] = np.nan  # a zero feature vector
    mat[7, 11] = np.nan
    keep = np.isfinite(mat) & (np.arange(MANY_CLASSES)[None, :] != labels[:, None])
    mean, std = _other_class_stats(mat, labels)
    assert mean == pytest.approx(mat[keep].astype(np.float64).mean(), rel=1e-6)
    assert std == pytest.approx(mat[keep].astype(np.float64).std(), rel=1e-5)


def test_the_angle_summary_reads_clean_footers_and_equals_the_one_computed_from_the_angles(
    many_classes_store, tmp_path
):
    run = many_classes_store / "many"
    clean = sorted((run / "samples").glob("*/clean.parquet"))
    assert all(store.stats.stored_angle_stats(p) is not None for p in clean), "the pipeline writes them"
    from_footers = store.run_angle_summary(run)
    shutil.copytree(run, tmp_path / "many")
    for p in sorted((tmp_path / "many" / "samples").glob("*/clean.parquet")):
        t = pq.read_table(p)
        pq.write_table(t.replace_schema_metadata(None), p)  # another tool's file: no footer statistics
        assert store.stats.stored_angle_stats(p) is None
    computed = store.run_angle_summary(tmp_path / "many")
    pd.testing.assert_frame_equal(from_footers, computed, rtol=1e-6)
    first = sorted((tmp_path / "many" / "samples").glob("*/clean.parquet"))[0]
    stale = pq.read_table(clean[0])
    pq.write_table(stale.slice(0, 10), first)  # rows rewritten, footer kept: it no longer holds for them
    assert store.stats.stored_angle_stats(first) is None


def test_the_class_in_focus_is_named_once_whatever_its_name():
    dims = [{}, {}, {}, {}]  # two class axes plus the two fixed ones
    assert global_._note(["0", "1"], 1, dims, False) == "class 1"
    assert global_._note(["class 0", "class 1"], 1, dims, False) == "class 1"
