"""The store contract: round trip, validation of good and broken runs, clear read errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
import torch

from pipeline import store
from pipeline.errors import PruneScopeError
from tests.conftest import tiny_config
from tests.test_metrics import eq5_margin


def copy_run(run: Path, tmp_path: Path) -> Path:
    dst = tmp_path / run.name
    shutil.copytree(run, dst)
    return dst


def test_tiny_run_is_valid_and_complete(tiny_run):
    assert store.validate_run(tiny_run) == []
    meta = store.read_run_json(tiny_run)
    assert meta["schema_version"] == store.SCHEMA_VERSION and meta["num_classes"] == 10
    assert meta["prunable_layers"]["digits_cnn"] == ["0", "2", "6", "8"]
    models = pq.read_table(tiny_run / store.MODELS).to_pandas()
    assert len(models) == 9 and models["model_id"].is_unique
    dense = models.set_index("model_id").loc["digits_cnn-dense"]
    assert dense["method"] == "dense" and pd.isna(dense["parent_id"])
    assert set(models["parent_id"].dropna()) == {"digits_cnn-dense"}


def test_measured_sparsity_matches_saved_weights(tiny_run):
    models = pq.read_table(tiny_run / store.MODELS).to_pandas()
    for row in models.itertuples():
        state = torch.load(tiny_run / row.checkpoint, weights_only=True)
        weights = [state[f"{n}.weight"] for n in ("0", "2", "6", "8")]
        zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
        assert row.sparsity == pytest.approx(zeros)
        assert abs(row.sparsity - row.target_sparsity) < 1e-4
        assert row.params_nonzero == sum(
            int((v != 0).sum()) for k, v in state.items() if k.endswith(("weight", "bias"))
        )


def test_samples_round_trip(tiny_run):
    ds = store.samples_dataset(tiny_run)
    table = ds.to_table(filter=pads.field("model_id") == "digits_cnn-dense")
    assert table.num_rows == 120
    df = table.to_pandas()
    assert df["sample_id"].tolist() == list(range(120))
    assert len(df["angles"].iloc[0]) == 10
    np.testing.assert_allclose([a[lab] for a, lab in zip(df["angles"], df["label"])], df["angle"], rtol=1e-6)
    assert ((df["margin"] > 0) == df["correct"]).all()
    evals = pq.read_table(tiny_run / store.EVALUATIONS).to_pandas().set_index("model_id")
    assert evals.loc["digits_cnn-dense", "accuracy"] == pytest.approx(df["correct"].mean())
    heads = pq.read_table(tiny_run / store.HEADS).to_pandas()
    assert (heads.groupby("model_id").size() == 10).all()
    images = pq.read_table(tiny_run / store.IMAGES).to_pandas()
    assert len(images) == 120 and images["png"].iloc[0].startswith(b"\x89PNG")
    feats = pq.read_table(store.features_path(tiny_run, "digits_cnn-dense", "clean", 0))
    assert feats.num_rows == 120 and feats.schema.field("feature").type.list_size == 128


def stored_geometry(run: Path, model_id: str) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """A model's clean samples, features, head weight and bias, as the store holds them."""
    samples = pq.read_table(store.samples_path(run, model_id, store.CLEAN, 0)).to_pandas().set_index("sample_id")
    feats = pq.read_table(store.features_path(run, model_id, store.CLEAN, 0)).to_pandas().set_index("sample_id")
    x = np.stack(feats.loc[samples.index, "feature"].to_numpy())
    head = pq.read_table(run / store.HEADS).to_pandas()
    head = head[head["model_id"] == model_id].sort_values("class_index")
    return samples, x, np.stack(head["weight"].to_numpy()), head["bias"].to_numpy()


def test_stored_margin_is_eq5_recomputed_from_features_and_heads(tiny_run):
    """The run records the definition, and every model's clean `margin` is paper eq. 5 of its stored
    features and head, computed per sample and class, wrong predictions included."""
    assert store.margin_definition(store.read_run_json(tiny_run)) == store.MARGIN_EQ5
    models = pq.read_table(tiny_run / store.MODELS).column("model_id").to_pylist()
    wrong = 0
    for model_id in models:
        samples, x, w, b = stored_geometry(tiny_run, model_id)
        pred = np.argmax(x @ w.T + b, axis=1)
        np.testing.assert_array_equal(pred, samples["pred"])
        expected = [eq5_margin(xi, w, int(y), bool(c)) for xi, y, c in zip(x, samples["label"], samples["correct"])]
        np.testing.assert_allclose(samples["margin"], expected, rtol=1e-4, atol=1e-5)
        wrong += int((~samples["correct"]).sum())
    assert wrong > 50  # the check covers wrong predictions, where eq. 5 and the signed margin part


def test_signed_margin_option_is_recorded_and_kept(tmp_path):
    from pipeline.config import parse_config
    from pipeline.runner import build_run

    cfg = tiny_config(prune=[], evaluation={"margin": "signed"})
    run = build_run(parse_config(cfg), tmp_path).run_dir
    assert store.read_run_json(run)["margin"] == store.MARGIN_SIGNED
    samples, x, w, b = stored_geometry(run, "digits_cnn-dense")
    z = x @ w.T + b
    for i, y in enumerate(samples["label"]):
        d = [(z[i, y] - z[i, j]) / np.linalg.norm(w[y] - w[j]) for j in range(len(w)) if j != y]
        assert samples["margin"].iloc[i] == pytest.approx(min(d), rel=1e-4, abs=1e-5)
    # a run from before the key existed, with the config that now means eq. 5: resuming must not mix them
    meta = store.read_run_json(run)
    del meta["margin"]
    meta["config"] = tiny_config(prune=[])
    store.write_json(meta, run / store.RUN_JSON)
    with pytest.raises(PruneScopeError, match="holds the 'signed' margin"):
        build_run(parse_config(tiny_config(prune=[])), tmp_path)


def test_unknown_margin_definition_is_refused():
    from pipeline.config import parse_config

    with pytest.raises(PruneScopeError, match="unknown margin definition 'hinge'"):
        parse_config(tiny_config(evaluation={"margin": "hinge"}))


@pytest.mark.parametrize(
    "damage,expected",
    [
        (lambda r: (r / store.HEADS).unlink(), "heads.parquet is missing"),
        (lambda r: (r / store.MODELS).write_bytes(b"not parquet"), "models.parquet is not a readable Parquet"),
        (
            lambda r: next((r / store.SAMPLES_DIR).glob("*/clean.parquet")).write_bytes(b"PAR1junk"),
            "clean.parquet: is not a readable samples file",
        ),
        (lambda r: shutil.rmtree(next((r / store.SAMPLES_DIR).iterdir())), "are missing"),
        (lambda r: (r / store.RUN_JSON).write_text("{"), "not valid JSON"),
    ],
)
def test_validate_finds_broken_runs(tiny_run, tmp_path, damage, expected):
    run = copy_run(tiny_run, tmp_path)
    damage(run)
    problems = store.validate_run(run)
    assert any(expected in p for p in problems), problems


def test_a_missing_checkpoint_is_a_warning(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path)
    next((run / store.CHECKPOINTS_DIR).iterdir()).unlink()
    assert store.validate_run(run) == []
    (warning,) = [p for p in store.check_run(run) if not p.error]
    assert warning.where.startswith("checkpoints/") and "missing" in warning.what


def test_newer_schema_and_non_runs(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path)
    meta = json.loads((run / store.RUN_JSON).read_text())
    meta["schema_version"] = store.SCHEMA_VERSION + 1
    (run / store.RUN_JSON).write_text(json.dumps(meta))
    with pytest.raises(PruneScopeError, match="newer than this PruneScope reads") as info:
        store.read_run_json(run)
    assert "upgrade" in info.value.fix
    with pytest.raises(PruneScopeError, match="is not a PruneScope run"):
        store.read_run_json(tmp_path)
    with pytest.raises(PruneScopeError, match="does not exist"):
        store.read_run_json(tmp_path / "nope")


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "t.json"
    store.write_json({"v": 1}, target)
    with pytest.raises(RuntimeError):
        with store.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["t.json"]


@pytest.mark.parametrize("bad", ["../x", "/abs", "a/b", "", ".", "..", "x" * 200])
def test_ids_are_single_safe_path_components(bad):
    with pytest.raises(PruneScopeError):
        store.check_id(bad)


def test_margin_label_follows_run_json():
    assert store.margin_label({"margin": "eq5"}) == "margin (eq. 5)"
    assert store.margin_label({"margin": "signed"}).startswith("signed margin")
    assert store.margin_label({}).startswith("signed margin")  # runs from before the key held the signed margin
