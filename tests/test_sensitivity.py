"""Per-layer sensitivity, seeds and PIE (issue #16): the pipeline's models, the store's tables
recomputed literally, and `pipeline report --sensitivity | --pie`."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from pipeline import store
from pipeline.cli import main
from pipeline.config import parse_config
from pipeline.errors import PruneScopeError
from pipeline.plan import plan_models, plan_run
from tests.conftest import SENSITIVITY_CONFIG, tiny_config

LAYERS = {"digits_cnn": ["0", "2", "6", "8"]}


@pytest.fixture(scope="module")
def run_dir(sensitivity_store: Path) -> Path:
    return sensitivity_store / "sens"


def models_of(run_dir: Path) -> pd.DataFrame:
    return pq.read_table(run_dir / "models.parquet").to_pandas()


# ---------------------------------------------------------------- config and plan


def test_sensitivity_and_seeds_plan_one_model_per_layer_sparsity_and_seed():
    plans = plan_models(parse_config(tiny_config(**SENSITIVITY_CONFIG)), LAYERS)
    by_id = {p.model_id: p for p in plans}
    assert [p.model_id for p in plans if p.spec is None] == [
        "digits_cnn-dense",
        "digits_cnn-dense-seed1",
        "digits_cnn-dense-seed2",
    ]
    mag = [p for p in plans if p.spec is not None and p.spec.method == "magnitude" and p.spec.scope == "global"]
    assert [(p.replicate, p.parent_id) for p in mag] == [
        (0, "digits_cnn-dense"),
        (1, "digits_cnn-dense-seed1"),
        (2, "digits_cnn-dense-seed2"),
    ]
    assert len({p.population for p in mag}) == 1 and mag[0].population == mag[0].model_id
    single = [p for p in plans if p.spec is not None and p.spec.scope.startswith("layer:")]
    assert sorted((p.spec.scope, p.spec.sparsity) for p in single) == sorted(
        (f"layer:{n}", s) for n in LAYERS["digits_cnn"] for s in (0.5, 0.9)
    )
    assert all(p.clean_only and p.parent_id == "digits_cnn-dense" for p in single)
    assert by_id["digits_cnn-random-global-oneshot-s50-ft0"].replicate == 0


def test_sensitivity_models_are_evaluated_on_clean_data_unless_asked():
    cfg = parse_config(tiny_config(**SENSITIVITY_CONFIG))
    evals = {u.key for u in plan_run(cfg, LAYERS).units if u.kind == "eval"}
    single = "digits_cnn-magnitude-layer-0-oneshot-s50-ft0"
    assert f"eval:{single}:clean" in evals and f"eval:{single}:fog-3" not in evals
    assert "eval:digits_cnn-dense-seed1:fog-3" in evals
    asked = tiny_config(**{**SENSITIVITY_CONFIG, "sensitivity": [{"sparsity": 0.5, "corruptions": True}]})
    evals = {u.key for u in plan_run(parse_config(asked), LAYERS).units if u.kind == "eval"}
    assert f"eval:{single}:fog-3" in evals


def test_replicas_clean_evaluates_the_models_of_other_seeds_on_clean_data_only():
    ev = {**SENSITIVITY_CONFIG["evaluation"], "replicas": "clean"}
    cfg = parse_config(tiny_config(**{**SENSITIVITY_CONFIG, "evaluation": ev}))
    evals = {u.key for u in plan_run(cfg, LAYERS).units if u.kind == "eval"}
    assert "eval:digits_cnn-dense:fog-3" in evals and "eval:digits_cnn-magnitude-global-oneshot-s70-ft0:fog-3" in evals
    assert "eval:digits_cnn-dense-seed1:clean" in evals and "eval:digits_cnn-dense-seed1:fog-3" not in evals
    assert "eval:digits_cnn-magnitude-global-oneshot-s70-ft0-seed2:fog-3" not in evals


def test_a_layer_scope_naming_no_layer_lists_the_valid_ones():
    cfg = parse_config(tiny_config(prune=[{"method": "magnitude", "sparsity": 0.5, "scope": "layer:conv9"}]))
    with pytest.raises(PruneScopeError) as err:
        plan_models(cfg, LAYERS)
    assert "conv9" in err.value.problem and err.value.fix == "use one of: layer:0, layer:2, layer:6, layer:8"


@pytest.mark.parametrize(
    "change, words",
    [
        ({"prune": [{"method": "magnitude", "sparsity": 0.5, "seeds": [0, 3]}]}, "no dense model of seed(s) [3]"),
        ({"models": [{"arch": "digits_cnn", "seeds": [0, 0]}]}, "distinct"),
        ({"prune": [{"method": "mpt", "sparsity": 0.5, "scope": "layer:0"}]}, "single-layer scope"),
        ({"sensitivity": [{"method": "magnitude"}]}, "sparsity"),
        ({"sensitivity": [{"sparsity": [0.5, 1.2]}]}, "fractions"),
        ({"sensitivity": [{"sparsity": 0.5, "layers": ["0"]}]}, "unknown key"),
    ],
)
def test_bad_seeds_and_sensitivity_tables_are_one_line_errors(change, words):
    with pytest.raises(PruneScopeError) as err:
        parse_config(tiny_config(**change))
    assert words in err.value.problem and err.value.fix


# ---------------------------------------------------------------- the built run


def test_sensitivity_masks_touch_only_their_layer(run_dir):
    models = models_of(run_dir)
    single = models[models["scope"].str.startswith("layer:", na=False)]
    assert len(single) == 8
    for m in single.itertuples():
        layer = m.scope.removeprefix("layer:")
        mine = torch.load(run_dir / m.checkpoint, weights_only=True)
        parent = torch.load(store.checkpoint_path(run_dir, m.parent_id), weights_only=True)
        assert mine.keys() == parent.keys()
        for key in mine:
            if key == f"{layer}.weight":
                removed = (mine[key] == 0) & (parent[key] != 0)
                assert abs(float(removed.float().mean()) - m.target_sparsity) < 0.01, key
                assert torch.equal(mine[key][~removed], parent[key][~removed])
            else:
                assert torch.equal(mine[key], parent[key]), (m.model_id, key)


def test_models_of_each_seed_are_trained_apart_and_keep_their_parent(run_dir):
    models = models_of(run_dir).set_index("model_id")
    dense = models.loc[["digits_cnn-dense", "digits_cnn-dense-seed1", "digits_cnn-dense-seed2"]]
    assert list(dense["replicate"]) == [0, 1, 2] and set(dense["population"]) == {"digits_cnn-dense"}
    assert dense["seed"].nunique() == 3
    weights = [torch.load(run_dir / c, weights_only=True)["0.weight"] for c in dense["checkpoint"]]
    assert not torch.equal(weights[0], weights[1]) and not torch.equal(weights[1], weights[2])
    pruned = models[models["population"] == "digits_cnn-magnitude-global-oneshot-s70-ft0"]
    assert sorted(zip(pruned["replicate"], pruned["parent_id"])) == [
        (0, "digits_cnn-dense"),
        (1, "digits_cnn-dense-seed1"),
        (2, "digits_cnn-dense-seed2"),
    ]
    evals = pq.read_table(run_dir / "evaluations.parquet").to_pandas()
    single = models.index[models["scope"].str.startswith("layer:", na=False)]
    assert set(evals[evals["model_id"].isin(single)]["corruption"]) == {"clean"}
    assert store.check_run(run_dir) == [] or all(not p.error for p in store.check_run(run_dir))


def literal_pie(run_dir: Path, population: str) -> tuple[set[int], str]:
    """PIE by the definition, sample by sample: Counter modes of the pruned population and of
    the dense models they were pruned from (ties: the smallest class)."""
    models = models_of(run_dir)
    pruned = models[models["population"] == population]
    dense_ids = list(pruned["parent_id"])
    preds: dict[str, dict[int, int]] = {}
    for mid in list(pruned["model_id"]) + dense_ids:
        t = pq.read_table(store.samples_path(run_dir, mid, "clean", 0)).to_pylist()
        preds[mid] = {row["sample_id"]: row["pred"] for row in t}

    def mode(ids: list[str], sid: int) -> int:
        counts = Counter(preds[m][sid] for m in ids)
        top = max(counts.values())
        return min(c for c, k in counts.items() if k == top)

    out = set()
    for sid in preds[dense_ids[0]]:
        if mode(list(pruned["model_id"]), sid) != mode(dense_ids, sid):
            out.add(sid)
    return out, "flips" if len(pruned) == 1 else "pie"


def test_pie_match_a_literal_implementation(run_dir):
    table = store.run_pie_table(run_dir)
    assert len(table) == 2 + 8  # the seeded magnitude population, random, the single-layer models
    names = json.loads((run_dir / "run.json").read_text())["class_names"]
    for row in table.to_dict("records"):
        expected, mode = literal_pie(run_dir, row["population"])
        result = store.run_pie(run_dir, row["population"])
        got = set(result.samples.loc[result.samples["pie"], "sample_id"])
        assert got == expected and row["pie"] == len(expected) and row["mode"] == result.mode == mode
        labels = result.samples.set_index("sample_id")["label"]
        counts = Counter(int(labels[s]) for s in expected)
        assert [row[n] for n in names] == [counts.get(c, 0) for c in range(len(names))]
    seeded = table[table["population"] == "digits_cnn-magnitude-global-oneshot-s70-ft0"].iloc[0]
    assert (seeded["pruned_models"], seeded["dense_models"], seeded["mode"]) == (3, 3, "pie")


def test_pie_ties_go_to_the_smallest_class_and_one_model_each_falls_back_to_flips():
    models = pd.DataFrame(
        {
            "model_id": ["d0", "d1", "p0", "p1"],
            "parent_id": [None, None, "d0", "d1"],
            "population": ["d", "d", "p", "p"],
        }
    )
    preds = pd.DataFrame(
        {
            "model_id": ["d0", "d0", "d1", "d1", "p0", "p0", "p1", "p1"],
            "sample_id": [0, 1] * 4,
            "label": [0, 1] * 4,
            "pred": [2, 1, 0, 1, 0, 1, 2, 0],  # sample 0: dense 2|0 tie -> 0, pruned 0|2 -> 0; sample 1: 1 vs 1|0 -> 0
        }
    )
    res = store.pie_of(models, "p1", preds, 3)
    assert res.mode == store.PIE and list(res.samples["pie"]) == [False, True]
    single = models.assign(population=["d0", "d1", "p0", "p1"])
    res = store.pie_of(single, "p1", preds, 3)
    assert res.mode == store.FLIPS and res.dense == ("d1",) and list(res.samples["pie"]) == [True, True]
    assert "one seed per model" in res.note
    with pytest.raises(PruneScopeError):
        store.pie_of(models, "d0", preds, 3)


def test_sensitivity_table_against_the_evaluations_and_samples(run_dir):
    table = store.run_sensitivity(run_dir)
    evals = pq.read_table(run_dir / "evaluations.parquet").to_pandas().query("corruption == 'clean'")
    acc = evals.set_index("model_id")["accuracy"]
    margin = evals.set_index("model_id")["mean_margin"]
    for row in table.itertuples():
        assert row.delta_accuracy == pytest.approx(acc[row.model_id] - acc[row.parent_id])
        assert row.delta_margin == pytest.approx(margin[row.model_id] - margin[row.parent_id])
        mine = pq.read_table(store.samples_path(run_dir, row.model_id, "clean", 0)).to_pylist()
        parent = pq.read_table(store.samples_path(run_dir, row.parent_id, "clean", 0)).to_pylist()
        assert row.flips == sum(a["pred"] != b["pred"] for a, b in zip(mine, parent))
    grid = store.sensitivity_grid(table, "flips")
    assert list(grid.index) == ["0", "2", "6", "8"] and list(grid.columns) == [0.5, 0.9]


def test_a_run_without_the_new_columns_reads_as_one_model_populations(run_dir, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(run_dir, old)
    table = pq.read_table(old / "models.parquet").drop_columns(["replicate", "population"])
    pq.write_table(table, old / "models.parquet")
    pie = store.run_pie_table(old)
    assert set(pie["mode"]) == {"flips"} and len(pie) == 3 + 1 + 8
    assert len(store.run_sensitivity(old)) == 8


# ---------------------------------------------------------------- report


def test_report_sensitivity_and_pie_text_and_json(run_dir, capsys):
    assert main(["report", str(run_dir), "--sensitivity"]) == 0
    text = capsys.readouterr().out
    assert "magnitude: flipped predictions (layer × sparsity)" in text and "s=0.9" in text
    assert main(["report", str(run_dir), "--sensitivity", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)["sensitivity"]
    expected = store.run_sensitivity(run_dir)
    assert [r["model_id"] for r in records] == list(expected["model_id"])
    assert [r["flips"] for r in records] == list(expected["flips"])
    assert main(["report", str(run_dir), "--pie"]) == 0
    text = capsys.readouterr().out
    assert "mode flips: one seed per model" in text and "digits_cnn-magnitude-global-oneshot-s70-ft0" in text
    assert main(["report", str(run_dir), "--pie", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)["pie"]
    assert {r["population"]: r["pie"] for r in records} == dict(
        zip(store.run_pie_table(run_dir)["population"], store.run_pie_table(run_dir)["pie"])
    )


def test_report_sensitivity_on_a_run_without_it_says_how_to_get_it(tiny_run, capsys):
    assert main(["report", str(tiny_run), "--sensitivity"]) == 0
    assert "add a [[sensitivity]] table" in capsys.readouterr().out


# ---------------------------------------------------------------- the HTML snapshot


def test_the_snapshot_carries_the_sensitivity_heatmap_and_leaves_it_out_without_a_study(run_dir, tiny_run, tmp_path):
    from app.export import build_snapshot
    from app.reader import StoreReader

    model = "digits_cnn-magnitude-layer-0-oneshot-s90-ft0"
    page = build_snapshot(StoreReader(run_dir.parent, tmp_path / "c1"), "sens", "digits_cnn-dense", model)
    assert 'id="fig-sensitivity"' in page and "Per-layer sensitivity" in page
    assert '"type":"heatmap"' in page.replace(" ", "")
    plain = build_snapshot(StoreReader(tiny_run.parent, tmp_path / "c2"), "tiny", "digits_cnn-dense", None)
    assert 'id="fig-sensitivity"' not in plain


def test_whole_run_analyses_count_each_population_once_by_its_seed_0_model(run_dir):
    from app.figures.evaltable import table_frame
    from app.reader import StoreReader

    models = models_of(run_dir)
    main = set(models.loc[store.main_models(models), "model_id"])
    assert main == {
        "digits_cnn-dense",
        "digits_cnn-magnitude-global-oneshot-s70-ft0",
        "digits_cnn-random-global-oneshot-s50-ft0",
    }
    assert set(store.run_table1(run_dir).index) == main
    assert set(store.run_angle_summary(run_dir)["model_id"]) == main
    evals = StoreReader(run_dir.parent).evaluations("sens")
    assert set(table_frame(evals, 3)["model_id"]) == main
