"""Attribution maps (issue 15): Captum's methods as registered, their defining properties on a
tiny model, the drift measures, and a run's stored maps against Captum called directly."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.compute as pc
import pytest
import torch
from torch import nn

from pipeline import store
from pipeline.attribution import ATTRIBUTIONS, compute_maps, last_conv, select_samples
from pipeline.config import AttributionConfig, parse_config
from pipeline.errors import PruneScopeError
from pipeline.models import build_model, load_state
from pipeline.plan import ATTRIBUTION, ATTRIBUTION_SAMPLES, MODEL, plan_run, unit_key
from pipeline.runner import build_run
from pipeline.store.io import read_attributions
from tests.conftest import ATTRIBUTION as ATTRIBUTION_TABLE
from tests.conftest import tiny_config

DENSE = "digits_cnn-dense"
CHILD = "digits_cnn-magnitude-global-oneshot-s90-ft0"


def tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 6 * 6, 3),
    ).eval()


def batch(n: int = 3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(n, 1, 6, 6, generator=gen), torch.full((1, 1, 6, 6), -0.5), torch.tensor([0, 2, 1][:n])


@pytest.mark.parametrize("method", ATTRIBUTIONS.names())
def test_every_method_maps_a_batch_to_one_finite_map_per_sample(method):
    model = tiny_cnn()
    x, base, targets = batch()
    cfg = AttributionConfig((method,), window=2, stride=2, n_steps=8)
    maps = compute_maps(model, method, x, base, targets, cfg)
    assert maps.shape == (3, 6, 6) and maps.dtype == np.float32
    assert np.isfinite(maps).all() and np.abs(maps).sum() > 0
    np.testing.assert_array_equal(maps, compute_maps(model, method, x, base, targets, cfg))  # deterministic
    other = compute_maps(model, method, x, base, torch.tensor([1, 0, 2]), cfg)
    assert not np.allclose(maps, other), "the map depends on the class it explains"
    assert not x.requires_grad and not any(p.grad is not None for p in model.parameters())


def test_occlusion_equals_a_literal_loop_over_windows():
    model = tiny_cnn()
    x, base, targets = batch()
    window, stride = 3, 1
    maps = compute_maps(model, "occlusion", x, base, targets, AttributionConfig(window=window, stride=stride))
    with torch.no_grad():
        score = model(x)[torch.arange(3), targets]
        total, count = torch.zeros(3, 6, 6), torch.zeros(6, 6)
        for top in range(0, 6 - window + 1, stride):
            for left in range(0, 6 - window + 1, stride):
                occluded = x.clone()
                occluded[:, :, top : top + window, left : left + window] = base[:, :, :window, :window]
                drop = score - model(occluded)[torch.arange(3), targets]
                total[:, top : top + window, left : left + window] += drop[:, None, None]
                count[top : top + window, left : left + window] += 1
    np.testing.assert_allclose(maps, (total / count).numpy(), rtol=1e-5, atol=1e-6)


def test_integrated_gradients_are_complete():
    """Sum of the attributions ≈ f(x) − f(black) for the target class (the axiom of completeness)."""
    model = tiny_cnn()
    x, base, targets = batch()
    maps = compute_maps(model, "integrated_gradients", x, base, targets, AttributionConfig(n_steps=64))
    with torch.no_grad():
        gap = (model(x) - model(base.expand_as(x)))[torch.arange(3), targets].numpy()
    np.testing.assert_allclose(maps.sum(axis=(1, 2)), gap, rtol=0.02, atol=1e-3)
    assert np.abs(gap).min() > 1e-3, "the test can fail: the gap is not zero"


def test_gradcam_without_a_conv_layer_names_the_problem_and_the_fix():
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(36, 3))
    with pytest.raises(PruneScopeError) as err:
        last_conv(mlp, "model 'mlp'")
    assert "nn.Conv2d" in err.value.problem and '"gradcam"' in err.value.fix
    assert last_conv(tiny_cnn())[0] == "2"


def test_a_run_with_gradcam_on_a_model_without_conv_layers_fails_before_it_starts(user_nets, tmp_path):
    cfg = tiny_config(models=[{"import": "usernets:make"}], attribution={"methods": ["gradcam"]})
    with pytest.raises(PruneScopeError, match="nn.Conv2d"):
        build_run(parse_config(cfg), tmp_path)
    assert not (tmp_path / "tiny").exists() or not any((tmp_path / "tiny" / "_units").glob("*"))


def test_drift_of_a_map_with_itself_is_zero_and_spearman_is_scipys():
    from scipy.stats import spearmanr

    gen = np.random.default_rng(0)
    a, b = gen.normal(size=(5, 64)), gen.normal(size=(5, 64))
    b[1, :10] = b[1, 10]  # ties
    rho, iou = store.map_drift(a, a)
    assert np.allclose(rho, 1) and np.allclose(iou, 1)
    rho, iou = store.map_drift(a, b)
    np.testing.assert_allclose(rho, [spearmanr(x, y)[0] for x, y in zip(a, b)], rtol=1e-5)
    assert (iou < 1).all()
    k = 7  # ceil(0.1 · 64)
    top = lambda m: set(np.argsort(-m, kind="stable")[:k])  # noqa: E731
    assert iou[0] == pytest.approx(len(top(a[0]) & top(b[0])) / len(top(a[0]) | top(b[0])))


def test_samples_are_chosen_by_flips_then_loss_change_plus_a_fixed_number_per_class():
    labels = np.array([0, 0, 1, 1, 2, 2])
    preds = {"d": np.array([0, 0, 1, 1, 2, 2]), "p1": np.array([0, 1, 1, 0, 2, 2]), "p2": np.array([0, 1, 1, 1, 2, 2])}
    losses = {"d": np.zeros(6), "p1": np.array([0, 1, 0, 3, 0, 0.5]), "p2": np.array([0, 1, 0, 0, 0, 0.1])}
    cfg = AttributionConfig(per_class=1, top_flips=2)
    assert select_samples(labels, preds, losses, {"p1": "d", "p2": "d"}, cfg) == [0, 1, 2, 3, 4]
    assert select_samples(
        labels, preds, losses, {"p1": "d", "p2": "d"}, AttributionConfig(per_class=0, top_flips=3)
    ) == [1, 3, 5]


@pytest.mark.parametrize(
    "table, words",
    [
        ({"methods": ["saliency"]}, "unknown attribution method"),
        ({"methods": []}, "is empty"),
        ({"window": 0}, "at least 1"),
        ({"per_class": 0, "top_flips": 0}, "selects no samples"),
        ({"colour": 1}, "unknown key"),
    ],
)
def test_bad_attribution_settings_are_refused_with_a_fix(table, words):
    with pytest.raises(PruneScopeError, match=words):
        parse_config(tiny_config(attribution=table))


def test_the_plan_maps_every_model_after_its_parent_once_the_samples_are_chosen():
    cfg = parse_config(tiny_config(attribution=ATTRIBUTION_TABLE))
    units = {u.key: u for u in plan_run(cfg).units}
    child = units[unit_key(ATTRIBUTION, "digits_cnn-random-global-oneshot-s50-ft0")]
    assert set(child.deps) == {
        unit_key(ATTRIBUTION_SAMPLES),
        unit_key(MODEL, child.model_id),
        unit_key(ATTRIBUTION, DENSE),
    }
    assert len([u for u in units.values() if u.kind == ATTRIBUTION]) == 9
    assert not any(u.kind.startswith("attribution") for u in plan_run(parse_config(tiny_config())).units)


# ---------------------------------------------------------------- a run's maps


def test_every_model_has_maps_of_the_same_samples_with_drift_against_its_parent(attribution_store):
    run_dir = attribution_store / "tiny"
    assert store.validate_run(run_dir) == []
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["attribution"]["shape"] == [8, 8]
    dense, child = (read_attributions(run_dir, m).to_pandas() for m in (DENSE, CHILD))
    assert len(dense) == len(child) > 3 * 10 and set(dense["method"]) == set(ATTRIBUTION_TABLE["methods"])
    assert sorted(dense["sample_id"].unique()) == sorted(child["sample_id"].unique())
    assert dense["spearman"].isna().all() and dense["iou_top10"].isna().all()
    merged = child.merge(dense, on=["sample_id", "method"], suffixes=("", "_p"))
    rho, iou = store.map_drift(np.stack(merged["map"]), np.stack(merged["map_p"]))
    np.testing.assert_allclose(merged["spearman"], rho, equal_nan=True)
    np.testing.assert_allclose(merged["iou_top10"], iou)
    assert (merged["spearman"] < 0.999).any(), "pruning 90 % moved some map"
    rho, iou = store.map_drift(np.stack(dense["map"]), np.stack(dense["map"]))  # a model against itself
    finite = np.isfinite(rho)
    assert finite.sum() > 0.9 * len(rho) and np.allclose(rho[finite], 1) and np.allclose(iou, 1)


def test_the_stored_maps_of_a_sample_are_what_captum_computes(attribution_store):
    from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, Occlusion

    from pipeline.datasets import load_dataset
    from pipeline.training import make_normalizer

    run_dir = attribution_store / "tiny"
    table = read_attributions(run_dir, CHILD).to_pandas()
    sid = int(table["sample_id"].iloc[-1])
    data = load_dataset("digits", None, 400, 120)
    norm = make_normalizer(data, "train")
    model = build_model("digits_cnn", None, {}, 1, (8, 8), 10)
    load_state(model, store.checkpoint_path(run_dir, CHILD))
    for m in model.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    model.eval()
    x = norm(data.test_images[[sid]], torch.device("cpu"))
    black = norm(np.zeros((1, 8, 8, 1), np.uint8), torch.device("cpu"))
    target = int(data.test_labels[sid])
    cfg = AttributionConfig()
    expected = {
        "occlusion": Occlusion(model).attribute(
            x,
            sliding_window_shapes=(1, cfg.window, cfg.window),
            strides=(1, cfg.stride, cfg.stride),
            baselines=black,
            target=target,
        ),
        "integrated_gradients": IntegratedGradients(model).attribute(x, black, target=target, n_steps=cfg.n_steps),
        "gradcam": LayerAttribution.interpolate(
            LayerGradCam(model, model[2]).attribute(x, target=target, relu_attributions=True), (8, 8), "bilinear"
        ),
    }
    for method, attr in expected.items():
        row = table[(table["sample_id"] == sid) & (table["method"] == method)].iloc[0]
        assert row["target"] == target
        np.testing.assert_allclose(
            np.asarray(row["map"]).reshape(8, 8), attr.detach()[0].sum(0).numpy(), rtol=1e-4, atol=1e-5, err_msg=method
        )


def test_a_lost_map_is_redone_with_its_childrens_and_nothing_else(attribution_store, tmp_path):
    import shutil

    run_dir = tmp_path / "tiny"
    shutil.copytree(attribution_store / "tiny", run_dir)
    before = read_attributions(run_dir, CHILD).to_pandas()
    (run_dir / store.UNITS_DIR / f"attribution-{DENSE}.json").unlink()
    cfg = parse_config(
        tiny_config(prune=[{"method": "magnitude", "sparsity": [0.5, 0.9]}], attribution=ATTRIBUTION_TABLE)
    )
    summary = build_run(cfg, tmp_path)
    assert summary.units_done == 3  # the dense model's maps and its two children's
    after = read_attributions(run_dir, CHILD).to_pandas()
    np.testing.assert_allclose(np.stack(after["map"]), np.stack(before["map"]), rtol=1e-5, atol=1e-6)


def test_validate_names_a_map_of_the_wrong_size(attribution_store, tmp_path):
    import shutil

    import pyarrow as pa

    run_dir = tmp_path / "tiny"
    shutil.copytree(attribution_store / "tiny", run_dir)
    path = store.attributions_path(run_dir, CHILD, "clean", 0)
    table = store.read_table(path)
    short = pc.list_slice(table.column("map"), 0, 10)
    store.write_table(
        table.set_column(table.schema.get_field_index("map"), "map", short.cast(pa.list_(pa.float32()))), path
    )
    errors = store.validate_run(run_dir)
    assert any("do not have 8×8 values" in e for e in errors), errors


def test_corrupted_sets_are_mapped_when_asked(tmp_path):
    from app.reader import StoreReader

    cfg = tiny_config(
        dataset={"name": "digits", "train_limit": 200, "test_limit": 40},
        train={"epochs": 1, "batch_size": 64, "lr": 0.05},
        prune=[{"method": "magnitude", "sparsity": 0.7}],
        evaluation={"corruptions": ["fog"], "severities": [3]},
        attribution={"methods": ["gradcam"], "per_class": 1, "top_flips": 0, "corrupted": True},
        execution={"threads": 1},
    )
    run_dir = build_run(parse_config(cfg), tmp_path).run_dir
    assert store.validate_run(run_dir) == []
    child = "digits_cnn-magnitude-global-oneshot-s70-ft0"
    for mid in (DENSE, child):
        sets = set(zip(*(read_attributions(run_dir, mid).column(k).to_pylist() for k in ("corruption", "severity"))))
        assert sets == {("clean", 0), ("fog", 3)}
    fog = StoreReader(tmp_path, tmp_path / "dc").attribution_maps("tiny", child, "gradcam", "fog", 3)
    clean = StoreReader(tmp_path, tmp_path / "dc").attribution_maps("tiny", child, "gradcam", "clean", 0)
    assert set(fog["corruption"]) == {"fog"} and len(fog) == len(clean) == 10
    assert not np.allclose(np.stack(fog["map"]), np.stack(clean["map"])), "fog moves the maps"
    assert np.isfinite(fog["iou_top10"]).all(), "drift against the parent's fog maps"


def test_maps_written_by_another_tool_read_with_casts_and_defaults(attribution_store, tmp_path):
    """float64 maps, int64 ids, no drift columns, any file name: read and validated with warnings only."""
    import shutil

    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from app.reader import StoreReader

    run_dir = tmp_path / "tiny"
    shutil.copytree(attribution_store / "tiny", run_dir)
    part = store.partition_dir(run_dir, store.ATTRIBUTIONS_DIR, CHILD)
    shutil.rmtree(part)
    part.mkdir()
    frame = pd.DataFrame(
        {
            "sample_id": [3, 7],
            "corruption": ["clean", "clean"],
            "severity": [0, 0],
            "method": ["saliency", "saliency"],
            "target": [1, 2],
            "map": [np.arange(64, dtype=np.float64), -np.arange(64, dtype=np.float64)],
        }
    )
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), part / "from-my-tool.parquet")
    problems = store.check_run(run_dir)
    assert not [p for p in problems if p.error], [str(p.problem) for p in problems if p.error]
    assert any("spearman" in p.what for p in problems), "the missing optional column is a warning"
    table = read_attributions(run_dir, CHILD)
    assert table.schema.equals(store.ATTRIBUTIONS_SCHEMA) and np.isnan(table.column("spearman").to_numpy()).all()
    maps = StoreReader(tmp_path, tmp_path / "dc").attribution_maps("tiny", CHILD, "saliency", "clean", 0)
    assert maps["map"].iloc[1].shape == (8, 8) and maps["map"].iloc[1][0, 1] == -1.0
