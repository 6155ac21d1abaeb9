"""Table 1 from the numbers the writers store in each clean file's footer (`prunescope.table1`),
against the same numbers computed from the clean rows (pipeline.store.table1_stats): equal where
the footer holds for the file, and a footer that does not hold (another tool's file, rows
rewritten, an odd record) is not trusted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline import store
from pipeline.store import io as store_io
from pipeline.store import validate
from pipeline.store.stats import TABLE1_MEASURES


def clean_files(run_dir: Path) -> list[Path]:
    return sorted((run_dir / store.SAMPLES_DIR).glob("*/clean.parquet"))


def footer(path: Path) -> dict:
    return json.loads(pq.read_metadata(path).metadata[store.TABLE1_KEY.encode()])


def rewrite_footer(path: Path, record: object | None) -> None:
    """The file with its Table 1 key replaced by `record` (JSON, or raw bytes), or dropped (None)."""
    table = pq.read_table(path)
    meta = {k: v for k, v in (table.schema.metadata or {}).items() if k != store.TABLE1_KEY.encode()}
    if record is not None:
        meta[store.TABLE1_KEY.encode()] = record if isinstance(record, bytes) else json.dumps(record).encode()
    pq.write_table(table.replace_schema_metadata(meta), path)


def from_rows(path: Path) -> dict[str, float]:
    t = pq.read_table(path, columns=["label", "robustness", *TABLE1_MEASURES]).to_pandas()
    return store.table1_stats(t["label"].to_numpy(), t["robustness"].to_numpy(), t)


def assert_same_stats(stored: dict, computed: dict) -> None:
    assert stored.keys() == computed.keys()
    np.testing.assert_allclose([stored[k] for k in stored], [computed[k] for k in stored], rtol=1e-12, atol=1e-15)


def without_footers(run_dir: Path, tmp_path: Path) -> Path:
    """A copy of the run whose clean files hold no Table 1 numbers (as another tool writes them)."""
    copy = tmp_path / "copy" / run_dir.name
    shutil.copytree(run_dir, copy)
    for path in clean_files(copy):
        rewrite_footer(path, None)
    return copy


def no_rows(monkeypatch) -> None:
    """Reading clean rows for Table 1 fails the test: the footers must be enough."""
    monkeypatch.setattr(store_io, "clean_samples", lambda *a, **k: pytest.fail("clean rows read, not the footers"))


@pytest.fixture(scope="module")
def external_run(tmp_path_factory) -> Path:
    """A run of another tool through write_run: 3 models, robustness correlated with the margin;
    model c at chance."""
    rng = np.random.default_rng(0)
    n, frames = 400, []
    for model in ("a", "b", "c"):
        for corruption, severity in (("clean", 0), ("fog", 3)):
            margin = rng.normal(1, 0.5, n).astype(np.float32)
            frames.append(
                pd.DataFrame(
                    {
                        "model_id": model,
                        "sample_id": np.arange(n),
                        "corruption": corruption,
                        "severity": severity,
                        "label": rng.integers(0, 4, n),
                        "pred": rng.integers(0, 4, n),
                        "correct": rng.random(n) < 0.8,
                        "confidence": rng.random(n),
                        "loss": rng.random(n),
                        "length": rng.gamma(2, 1, n),
                        "margin": margin,
                        "angle": rng.uniform(0, 90, n),
                        "angles": list(rng.uniform(0, 180, (n, 4)).astype(np.float32)),
                        "robustness": np.clip(margin / 2 + rng.normal(0, 0.2, n), 0, 1),
                    }
                )
            )
    models = pd.DataFrame(
        {
            "model_id": ["a", "b", "c"],
            "arch": "net",
            "method": "dense",
            "scope": None,
            "schedule": None,
            "finetune_epochs": 0,
            "target_sparsity": 0.0,
            "sparsity": 0.0,
            "params_total": 100,
            "params_nonzero": 100,
            "parent_id": None,
            "clean_accuracy": [0.8, 0.7, 0.2],
            "seed": [0, 1, 2],
            "checkpoint": None,
        }
    )
    heads = pd.DataFrame(
        {
            "model_id": np.repeat(["a", "b", "c"], 4),
            "class_index": np.tile(np.arange(4), 3),
            "weight": list(rng.normal(size=(12, 8)).astype(np.float32)),
            "bias": np.zeros(12, np.float32),
        }
    )
    return store.write_run(
        tmp_path_factory.mktemp("ext") / "ext", models, pd.concat(frames), heads, [f"c{i}" for i in range(4)]
    )


def test_the_pipeline_stores_table1_numbers_equal_to_those_of_the_rows(browser_store, tmp_path, monkeypatch):
    run = browser_store / "tiny"
    for path in clean_files(run):
        record = footer(path)
        assert record["rows"] == pq.read_metadata(path).num_rows
        assert_same_stats(store.stored_table1(path), from_rows(path))
    computed = store.run_table1(without_footers(run, tmp_path))
    no_rows(monkeypatch)
    pd.testing.assert_frame_equal(store.run_table1(run), computed, rtol=1e-12)


def test_write_run_stores_them_and_table1_from_them_is_the_one_from_the_rows(external_run, tmp_path, monkeypatch):
    for path in clean_files(external_run):
        assert_same_stats(store.stored_table1(path), from_rows(path))
    computed = store.run_table1(without_footers(external_run, tmp_path))
    assert computed["margin"].loc[["a", "b"]].gt(0.5).all()  # correlated by construction: numbers, not NaN
    assert np.isnan(computed.loc["c", "margin"]) and computed.loc["c", "note"].startswith("at chance")
    no_rows(monkeypatch)
    pd.testing.assert_frame_equal(store.run_table1(external_run), computed, rtol=1e-12)


def test_the_synthetic_store_stores_them(tmp_path):
    from benchmarks.make_synthetic_store import write_synthetic_run

    run = write_synthetic_run(tmp_path, "syn", models=2, n_evalsets=3, samples=120, classes=3)
    for path in clean_files(run):
        assert footer(path)["rows"] == 120
        assert_same_stats(store.stored_table1(path), from_rows(path))


def odd(record: dict) -> dict[str, object]:
    """Records a reader must not trust, from a good `record`."""
    return {
        "not json": b"{not json",
        "a list": [1, 2],
        "rows of another file": record | {"rows": record["rows"] + 1},
        "no rows": {k: v for k, v in record.items() if k != "rows"},
        "no margin": {k: v for k, v in record.items() if k != "margin"},
        "a correlation above 1": record | {"angle": 1.5},
        "a string correlation": record | {"length": "high"},
        "an infinite correlation": record | {"margin": float("inf")},
        "chance of 0": record | {"chance": 0},
        "chance above 1": record | {"chance": 1.5},
        "no chance": {k: v for k, v in record.items() if k != "chance"},
    }


@pytest.mark.parametrize("case", list(odd({"rows": 1})))
def test_an_odd_or_stale_record_is_not_trusted_and_table1_comes_from_the_rows(external_run, tmp_path, case):
    expected = store.run_table1(external_run)
    copy = tmp_path / "ext"
    shutil.copytree(external_run, copy)
    path = store.samples_path(copy, "a", store.CLEAN, 0)
    rewrite_footer(path, odd(footer(path) | {"margin": 0.25})[case])  # a wrong number, if it were trusted
    assert store.stored_table1(path) is None
    pd.testing.assert_frame_equal(store.run_table1(copy), expected, rtol=1e-12)


def test_a_clean_file_of_another_name_is_read_from_its_rows(external_run, tmp_path):
    expected = store.run_table1(external_run)
    copy = tmp_path / "ext"
    shutil.copytree(external_run, copy)
    path = store.samples_path(copy, "a", store.CLEAN, 0)
    rewrite_footer(path, footer(path) | {"margin": 0.25})
    path.rename(path.with_name("all.parquet"))  # any name may hold any sets: its footer is not the contract's
    pd.testing.assert_frame_equal(store.run_table1(copy), expected, rtol=1e-12)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def errors(run: Path, deep: bool) -> list[str]:
    return [f"{p.where}: {p.what}" for p in store.check_run(run, deep=deep) if p.error]


def test_the_quick_check_glances_at_every_file_of_a_small_run_and_at_a_sample_of_a_large_one(
    browser_store, tmp_path, monkeypatch
):
    run = tmp_path / "tiny"
    shutil.copytree(browser_store / "tiny", run)
    files = sorted((run / store.SAMPLES_DIR).glob("*/*.parquet"))
    clean = [p for p in files if p.name == "clean.parquet"]
    corrupted = [p for p in files if p.name != "clean.parquet"]
    truncate(clean[0])
    truncate(corrupted[0])
    found = errors(run, deep=False)
    assert len(files) <= validate.GLANCE_FILES and len(found) == 2  # all glanced
    assert all("is not a readable samples file (truncated" in e for e in found)
    glanced = []
    looks = validate._looks_like_parquet
    monkeypatch.setattr(validate, "_looks_like_parquet", lambda p: glanced.append(p) or looks(p))
    monkeypatch.setattr(validate, "GLANCE_FILES", len(clean) + 1)  # a large run: every clean file and one more
    found = errors(run, deep=False)
    assert len(glanced) == len(clean) + 1 and set(map(str, clean)) <= set(map(str, glanced))
    assert f"{clean[0].parent.name}/clean.parquet: is not" in found[0]
    assert len(errors(run, deep=True)) == 2  # validate checks every file


def test_the_quick_check_names_an_evaluation_set_without_its_file_as_validate_does(browser_store, tmp_path):
    run = tmp_path / "tiny"
    shutil.copytree(browser_store / "tiny", run)
    model = "digits_cnn-dense"
    store.samples_path(run, model, "fog", 3).unlink()
    message = f"{store.SAMPLES_DIR}/model_id={model}/: evaluation fog s3 is in evaluations.parquet but has no"
    assert errors(run, deep=False) == errors(run, deep=True) and len(errors(run, deep=True)) == 1
    assert errors(run, deep=False)[0].startswith(message)
    # a file of another name may hold any sets: the listing cannot tell, the deep check reads its footer
    shutil.copy(store.samples_path(run, model, "gaussian_noise", 3), store.samples_path(run, model, "x", 0))
    assert errors(run, deep=False) == [] and [e[: len(message)] for e in errors(run, deep=True)] == [message]
