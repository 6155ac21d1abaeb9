"""`python -m pipeline paper`: the paper's claims checked on a run, each verdict able to fail."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import store
from pipeline.paper import ALL_AT_CHANCE, check_claims, fig7_claims, fig10_claims, table1_claims
from pipeline.store.stats import at_chance

REPO = Path(__file__).resolve().parents[1]


def test_table1_verdicts_follow_signs_and_sizes():
    good = pd.DataFrame({"angle": [-0.8, -0.7], "length": [0.3, 0.2], "margin": [0.8, 0.6]}, index=["d", "p"])
    assert {c.verdict for c in table1_claims(good, ["d"])} == {"yes"}
    bad = good.assign(angle=[0.2, -0.1], length=[0.9, 0.9])
    verdicts = [c.verdict for c in table1_claims(bad, ["d"])]
    assert verdicts[0] == "partly" and verdicts[3] == "no" and verdicts[-1] == "no"
    assert {c.verdict for c in table1_claims(good.iloc[0:0], ["d"])} == {"n/a"}
    assert {c.run for c in table1_claims(good.iloc[0:0], ["d"], ALL_AT_CHANCE)} == {ALL_AT_CHANCE}


def test_fig7_needs_every_sign_and_a_growing_shift():
    models = pd.DataFrame(
        {
            "model_id": ["d", "m1", "m5"],
            "method": ["dense", "magnitude", "magnitude"],
            "finetune_epochs": [0, 0, 0],
            "schedule": [None, "oneshot", "oneshot"],
            "parent_id": [None, "d", "d"],
            "sparsity": [0.0, 0.1, 0.5],
        }
    )
    evals = pd.DataFrame(
        {
            "model_id": ["d", "m1", "m5"],
            "corruption": "clean",
            "mean_angle": [60.0, 60.5, 65.0],
            "mean_length": [5.0, 5.1, 4.0],  # 10 % grows the length: not the paper's direction
            "mean_margin": [1.0, 0.9, 0.95],  # shrinks less at 50 % than at 10 %
        }
    )
    verdicts = {c.claim.split("clean ")[1].split(" ")[0]: c.verdict for c in fig7_claims(models, evals)}
    assert verdicts == {"angle": "yes", "length": "partly", "margin": "partly"}


def test_fig10_compares_mpt_with_dense_per_corruption():
    models = pd.DataFrame({"model_id": ["d", "mpt"], "method": ["dense", "mpt"]})
    rng = np.random.default_rng(0)
    changes = {
        "d": {"fog": rng.normal(0.5, 0.1, 200), "snow": rng.normal(0.5, 0.1, 200)},
        "mpt": {"fog": rng.normal(0.2, 0.1, 200), "snow": rng.normal(0.7, 0.1, 200)},
    }
    (claim,) = fig10_claims(changes, models, {"d": 0.9, "mpt": 0.9})
    assert claim.verdict == "partly" and "1 of 2 corruptions" in claim.run
    changes["mpt"]["snow"] = rng.normal(0.1, 0.1, 200)
    assert fig10_claims(changes, models, {})[0].verdict == "yes"
    assert fig10_claims({}, models, {})[0].verdict == "n/a"


def test_paper_on_a_run_with_corruptions(browser_store):
    run = browser_store / "tiny"
    meta, claims, notes = check_claims(run)
    t1 = store.run_table1(run)
    models = store.read_table(run / store.MODELS).to_pandas().set_index("model_id")
    labels = store.clean_samples(run, [t1.index[0]], ["label"], meta["num_classes"]).column("label").to_numpy()
    chance = [m for m in t1.index if at_chance(models.loc[m, "clean_accuracy"], labels)]
    kept = t1.drop(index=chance)
    angle = next(c for c in claims if c.claim.startswith("angle–robustness"))
    assert f"{len(kept)} models above chance: median {kept['angle'].median():+.2f}" in angle.run
    assert any("at chance" in n for n in notes) == bool(chance)
    assert any(n.startswith("margin: margin (eq. 5)") for n in notes)
    assert {c.source for c in claims} >= {"Table 1", "Fig. 3 (top)", "Fig. 7", "Fig. 10"}
    assert next(c for c in claims if c.source == "Fig. 10").verdict == "n/a"  # no MPT model in the tiny run


def test_paper_cli_by_run_name(browser_store):
    out = subprocess.run(
        [sys.executable, "-m", "pipeline", "paper", "tiny", "--store", str(browser_store)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "Table 1" in out.stdout and "paper:" in out.stdout
    tally = out.stdout.split("reproduces: ")[1].splitlines()[0]
    assert [w.split(" ")[0] for w in tally.split(", ")] == ["yes", "partly", "no", "n/a"]
    missing = subprocess.run(
        [sys.executable, "-m", "pipeline", "paper", "nope", "--store", str(browser_store)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
