"""Model similarity (issue 16): agreement and linear CKA recomputed with literal implementations on a
small run, the MDS embedding, `report --similarity`, and the model map's and similarity map's figures."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from app.figures.evaltable import evaluation_table, table_frame
from app.figures.modelmap import lineage, map_frame, model_map, similarity_map
from app.reader import StoreReader
from pipeline import store
from pipeline.store import similarity
from pipeline.store.similarity import agreement_matrix, cka_matrix, mds_embedding, run_similarity
from tests.evaltable_shapes import models_in

REPO = Path(__file__).resolve().parents[1]


def literal_agreement(a: list[int], b: list[int]) -> float:
    """Share of positions where two prediction lists agree, counted one by one."""
    same = 0
    for x, y in zip(a, b):
        if x == y:
            same += 1
    return same / len(a)


def literal_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA by the textbook HSIC formula: HSIC(K, L) = tr(K H L H) / (n − 1)², K = X Xᵀ, L = Y Yᵀ."""
    n = len(x)
    h = np.eye(n) - np.ones((n, n)) / n
    k, l_ = x @ x.T, y @ y.T

    def hsic(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.trace(a @ h @ b @ h)) / (n - 1) ** 2

    return hsic(k, l_) / np.sqrt(hsic(k, k) * hsic(l_, l_))


def clean_parquet(run_dir: Path, folder: str, model_id: str) -> pd.DataFrame:
    return pd.read_parquet(run_dir / folder / f"model_id={model_id}" / "clean.parquet").sort_values("sample_id")


def test_agreement_and_cka_equal_literal_implementations(tiny_run):
    sim = run_similarity(tiny_run)
    models = pd.read_parquet(tiny_run / "models.parquet")["model_id"].tolist()
    assert sim.model_ids == models and sim.evalset == store.CLEAN_SET
    preds = {m: clean_parquet(tiny_run, "samples", m)["pred"].tolist() for m in models}
    feats = {
        m: np.stack(clean_parquet(tiny_run, "features", m)["feature"].to_numpy()).astype(np.float64) for m in models
    }
    assert sim.n == sim.cka_n == len(preds[models[0]]) == 120
    for i, a in enumerate(models):
        for j, b in enumerate(models):
            assert sim.agreement[i, j] == pytest.approx(literal_agreement(preds[a], preds[b]), abs=1e-12)
            assert sim.cka[i, j] == pytest.approx(literal_cka(feats[a], feats[b]), abs=2e-4)
    off = sim.agreement[~np.eye(len(models), dtype=bool)]
    assert off.min() < 1.0, "the pruned models do not all predict as the dense one: the test can tell them apart"


def test_agreement_leaves_out_missing_predictions():
    preds = np.array([[0, 1, 2, -1], [0, 1, 1, 3], [-1, -1, -1, -1]])
    got = agreement_matrix(preds)
    assert got[0, 1] == pytest.approx(2 / 3)  # samples 0..2, both predicted
    assert got[1, 1] == 1.0 and np.isnan(got[0, 2]) and np.isnan(got[2, 2])


def test_cka_is_invariant_to_rotation_and_scale_and_compares_widths():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 8))
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    wide = np.hstack([x @ q * 3.0, rng.normal(size=(60, 4))])
    noise = rng.normal(size=(60, 3))
    got = cka_matrix([x, x @ q * 3.0 + 5.0, wide, noise])
    assert got[0, 1] == pytest.approx(1.0, abs=1e-5)
    assert got[0, 2] == pytest.approx(literal_cka(x, wide), abs=1e-5)
    assert got[0, 3] == pytest.approx(literal_cka(x, noise), abs=1e-5) and got[0, 3] < 0.5
    np.testing.assert_allclose(got, got.T)


def test_cka_on_a_seeded_subset_when_the_set_is_large(tiny_run, monkeypatch):
    monkeypatch.setattr(similarity, "CKA_SAMPLES", 50)
    sim = run_similarity(tiny_run)
    assert sim.cka_n == 50 and sim.n == 120 and any("subset of 50" in n for n in sim.notes)
    again = run_similarity(tiny_run)
    np.testing.assert_array_equal(sim.cka, again.cka)  # seeded
    assert np.allclose(np.diag(sim.cka), 1.0, atol=1e-5)


def test_models_without_features_have_no_cka(tiny_run, tmp_path):
    run = tmp_path / "tiny"
    shutil.copytree(tiny_run, run)
    gone = pd.read_parquet(run / "models.parquet")["model_id"].iloc[2]
    shutil.rmtree(run / "features" / f"model_id={gone}")
    sim = run_similarity(run)
    i = sim.model_ids.index(gone)
    assert np.isnan(sim.cka[i]).all() and np.isfinite(sim.agreement[i]).all()
    assert np.isfinite(np.delete(np.delete(sim.cka, i, 0), i, 1)).all()
    assert any("no stored features" in n for n in sim.notes)
    ids, xy = sim.embedding("cka")
    assert gone not in ids and len(ids) == len(sim.model_ids) - 1 and xy.shape == (len(ids), 2)


def test_unknown_evaluation_set_is_a_message(tiny_run):
    with pytest.raises(store.PruneScopeError, match="no model of run 'tiny' was evaluated on fog-3") as err:
        run_similarity(tiny_run, store.EvalSet("fog", 3))
    assert "clean" in err.value.fix


def test_mds_is_seeded_and_follows_the_dissimilarity():
    rng = np.random.default_rng(1)
    points = rng.normal(size=(7, 2))
    dist = np.linalg.norm(points[:, None] - points[None], axis=-1)
    sim = 1 - dist / dist.max()
    a, b = mds_embedding(sim, seed=3), mds_embedding(sim, seed=3)
    np.testing.assert_array_equal(a, b)
    got = np.linalg.norm(a[:, None] - a[None], axis=-1)
    assert np.corrcoef(got.ravel(), (dist / dist.max()).ravel())[0, 1] > 0.99
    assert mds_embedding(np.array([[1.0, 0.8], [0.8, 1.0]])).shape == (2, 2)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )


def test_report_similarity_text_and_json(tiny_run):
    sim = run_similarity(tiny_run)
    out = cli("report", str(tiny_run), "--similarity", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["models"] == sim.model_ids and data["evaluation_set"] == "clean" and data["samples"] == 120
    np.testing.assert_allclose(np.array(data["agreement"], float), sim.agreement, atol=1e-6)
    np.testing.assert_allclose(np.array(data["cka"], float), sim.cka, atol=1e-6)
    text = cli("report", str(tiny_run), "--similarity")
    assert text.returncode == 0, text.stderr
    assert "prediction agreement (%" in text.stdout and "linear CKA" in text.stdout
    assert all(m in text.stdout for m in sim.model_ids)
    bad = cli("report", str(tiny_run), "--json")
    assert bad.returncode == 2 and "--similarity" in bad.stderr and "Traceback" not in bad.stderr
    unknown = cli("report", str(tiny_run), "--similarity", "--evaluation-set", "fog-3")
    assert unknown.returncode == 2 and "fix: pick one of: clean" in unknown.stderr


MODELS = pd.DataFrame(
    {
        "model_id": ["d", "m50", "m50ft", "it50", "it70", "it90", "other"],
        "arch": ["a"] * 7,
        "method": ["dense", "magnitude", "magnitude", "magnitude", "magnitude", "magnitude", "random"],
        "scope": [None, "global", "global", "global", "global", "global", "global"],
        "schedule": [None, "oneshot", "oneshot", "iterative", "iterative", "iterative", "oneshot"],
        "steps": [1, 1, 1, 3, 3, 3, 1],
        "finetune_epochs": [0, 0, 2, 1, 1, 1, 2],
        "target_sparsity": [0.0, 0.5, 0.5, 0.5, 0.7, 0.9, 0.5],
        "sparsity": [0.0, 0.5, 0.5, 0.5, 0.7, 0.9, 0.5],
        "parent_id": [None, "d", "d", "d", "d", "d", "d"],
        "clean_accuracy": [0.9, 0.85, 0.88, 0.87, 0.86, 0.8, 0.5],
        "seed": [0, 1, 2, 3, 4, 5, 6],
        "init": ["trained"] + ["parent"] * 6,
    }
)


def test_lineage_chains_fine_tuning_and_iterative_steps():
    got = lineage(MODELS).set_index("model_id")
    assert got.loc["d", "from_id"] is None
    assert (got.loc["m50", "from_id"], got.loc["m50", "stored"]) == ("d", True)
    assert (got.loc["m50ft", "from_id"], got.loc["m50ft", "stored"]) == ("m50", False)  # pruned → fine-tuned
    assert got.loc["it50", "from_id"] == "d" and got.loc["it70", "from_id"] == "it50"  # iterative steps as a chain
    assert got.loc["it90", "from_id"] == "it70"
    assert (got.loc["other", "from_id"], got.loc["other", "stored"]) == ("d", True)  # no unfine-tuned twin


def evals_of(models: pd.DataFrame, corrupted: bool) -> pd.DataFrame:
    rows = [(m, "clean", 0, a) for m, a in zip(models["model_id"], models["clean_accuracy"])]
    if corrupted:
        rows += [
            (m, "fog", s, a - 0.1 * s) for m, a in zip(models["model_id"], models["clean_accuracy"]) for s in (1, 3)
        ]
    ev = pd.DataFrame(rows, columns=["model_id", "corruption", "severity", "accuracy"])
    return ev.merge(models.drop(columns=["clean_accuracy"]), on="model_id")


def test_model_map_places_colours_sizes_and_rings():
    frame = map_frame(MODELS, evals_of(MODELS, corrupted=True))
    assert frame.set_index("model_id").loc["m50", "robustness"] == pytest.approx(0.85 - 0.2)
    fig = model_map(frame, "robustness", ref="d", cmp="it90", highlighted={"d", "m50"})
    go.Figure(fig)
    nodes = {t["name"]: t for t in fig["data"]}
    assert set(nodes) == {"dense", "magnitude", "random", "reference", "compared"}
    mag = nodes["magnitude"]
    assert [c[0] for c in mag["customdata"]] == ["m50", "m50ft", "it50", "it70", "it90"]
    assert mag["customdata"][0] == ["m50", "clean", 0]  # a click picks the model on the clean set
    assert mag["marker"]["color"] == "#0072B2"
    np.testing.assert_allclose(map_opacity(mag), [1.0, 0.2, 0.2, 0.2, 0.2], atol=1e-6)
    sizes = decoded(mag["marker"]["size"])
    assert sizes[4] > sizes[3] > sizes[0], "size grows with sparsity"
    assert decoded(nodes["compared"]["x"])[0] == pytest.approx(0.8)
    prov = model_map(frame, "provenance", ref="d")
    go.Figure(prov)
    lines = {t["name"]: t for t in prov["data"] if t["mode"] == "lines"}
    assert len(decoded(lines["pruned from (store's parent)"]["x"])) == 3 * 3  # m50, it50, other
    assert len(decoded(lines["next stage of a recipe"]["x"])) == 3 * 3  # m50ft, it70, it90


def map_opacity(trace: dict) -> np.ndarray:
    return decoded(trace["marker"]["opacity"])


def decoded(value) -> np.ndarray:
    from app.figures import decode_array

    return np.asarray(decode_array(value), dtype=float)


def test_model_map_without_corruptions_says_so_and_uses_provenance():
    fig = model_map(map_frame(MODELS, evals_of(MODELS, corrupted=False)), "robustness")
    assert "no corrupted evaluations" in fig["layout"]["title"]["text"]
    assert any(t["mode"] == "lines" for t in fig["data"])


def test_similarity_map_and_evaluation_table_highlight(tiny_run):
    reader = StoreReader(tiny_run.parent)
    frame = map_frame(reader.models("tiny"), reader.evaluations("tiny"))
    emb = reader.similarity_embedding("tiny", "clean", 0, "agreement")
    assert list(emb.columns) == ["model_id", "x", "y"] and len(emb) == len(frame)
    fig = similarity_map(frame, emb, "prediction agreement", ref=frame["model_id"][0])
    go.Figure(fig)
    assert fig["layout"]["dragmode"] == "lasso" and "MDS" in fig["layout"]["title"]["text"]
    chosen = set(frame["model_id"][:2])
    table = evaluation_table(table_frame(reader.evaluations("tiny"), 3), highlighted=chosen)
    go.Figure(table)
    ids = {c[0] for c in table["data"][0]["customdata"]}
    assert models_in(table, "veil") == ids - chosen, "a veil fades the bars of the models outside the group"
    assert reader.similarity("tiny") is reader.similarity("tiny"), "memoised per run"


def test_a_per_layer_scope_gets_its_own_lane():
    models = MODELS.assign(scope=MODELS["scope"].where(MODELS["model_id"] != "other", "layer:conv1"))
    lanes = map_frame(models, evals_of(models, corrupted=False)).set_index("model_id")["lane"]
    assert lanes["other"] == "a · random, ft 2, layer:conv1" and lanes["m50ft"] == "a · magnitude, ft 2"
