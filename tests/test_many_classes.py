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

from app.reader import StoreReader
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
