"""Fig. 10's density from the summary the pipeline stores in a model's clean file, against the one
computed from the margins of its evaluation files (pipeline.store.margin_change_summary)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from app.figures import decode_array
from app.figures.density import kde
from app.figures.robustness import margin_change
from app.reader import StoreReader
from app.state import Combo
from app.views.robustness import margin_figure
from pipeline import store

MODEL = "digits_cnn-magnitude-global-oneshot-s80-ft1"
SETS = [("fog", 3), ("gaussian_noise", 3)]


def clean_file(run_dir: Path, model_id: str = MODEL) -> Path:
    return store.samples_path(run_dir, model_id, store.CLEAN, 0)


def footer(path: Path) -> dict:
    return json.loads(pq.read_metadata(path).metadata[store.MARGIN_CHANGE_KEY.encode()])


def rewrite_footer(path: Path, record: object | None) -> None:
    """The file with its margin change key replaced by `record` (JSON, or raw bytes), or dropped (None)."""
    table = pq.read_table(path)
    meta = {k: v for k, v in (table.schema.metadata or {}).items() if k != store.MARGIN_CHANGE_KEY.encode()}
    if record is not None:
        meta[store.MARGIN_CHANGE_KEY.encode()] = record if isinstance(record, bytes) else json.dumps(record).encode()
    pq.write_table(table.replace_schema_metadata(meta), path)


def arr(value: object) -> np.ndarray:
    """A trace's numbers (figures hold them as float32 typed arrays)."""
    return np.asarray(decode_array(value), np.float64)


def assert_same_figure(a: dict, b: dict) -> None:
    assert len(a["data"]) == len(b["data"]) > 0
    assert [t["name"] for t in a["data"]] == [t["name"] for t in b["data"]]
    for ta, tb in zip(a["data"], b["data"]):
        np.testing.assert_allclose(arr(ta["x"]), arr(tb["x"]), rtol=1e-6)
        np.testing.assert_allclose(arr(ta["y"]), arr(tb["y"]), rtol=1e-6)


@pytest.fixture
def copied_run(browser_store, tmp_path) -> Path:
    shutil.copytree(browser_store / "tiny", tmp_path / "tiny")
    return tmp_path / "tiny"


def test_the_pipeline_stores_the_summary_and_the_figure_from_it_is_the_one_from_the_raw_values(
    browser_store, monkeypatch
):
    reader = StoreReader(browser_store)
    record = footer(clean_file(browser_store / "tiny"))
    assert (
        record["sets"] == [list(s) for s in SETS]
        and record["rows"] == pq.read_metadata(clean_file(browser_store / "tiny")).num_rows
    )
    raw = reader.margin_changes("tiny", MODEL)  # what the view drew before the summary: kde of the values
    assert record["n"] == len(raw) > 1 and len(record["values"]) == len(raw)  # few: the values themselves
    monkeypatch.setattr(reader, "margin_changes", lambda *a: pytest.fail("the files were read, not the footer"))
    stored = reader.margin_change("tiny", MODEL)
    fig = margin_change([(MODEL, stored)])
    x, d = kde(raw, points=160)
    (trace,) = fig["data"]
    np.testing.assert_allclose(arr(trace["x"]), x, rtol=1e-6)
    np.testing.assert_allclose(arr(trace["y"]), d, rtol=1e-6)
    assert trace["name"] == f"{MODEL} (median {np.median(raw):+.2f})"
    assert stored["median"] == pytest.approx(np.median(raw), rel=1e-12)
    assert_same_figure(fig, margin_change([(MODEL, store.margin_change_summary(raw))]))


def test_a_model_without_corrupted_sets_stores_an_empty_summary_and_draws_the_message(tiny_run):
    model = store.load(tiny_run, store.TABLES["models"]).column("model_id")[0].as_py()
    assert footer(clean_file(tiny_run, model)) == {
        "n": 0,
        "median": None,
        "rows": footer(clean_file(tiny_run, model))["rows"],
        "sets": [],
    }
    fig = margin_figure(StoreReader(tiny_run.parent), "tiny", Combo.parse(f"{model}|clean"), None, "margin")
    assert "no corrupted evaluations" in fig["layout"]["annotations"][0]["text"]


def test_a_run_without_the_summary_draws_the_same_from_its_files(browser_store, copied_run):
    ref, cmp = Combo.parse(f"{MODEL}|clean"), Combo.parse("digits_cnn-dense|clean")
    stored = margin_figure(StoreReader(browser_store), "tiny", ref, cmp, "margin")
    for model in (MODEL, "digits_cnn-dense"):
        rewrite_footer(clean_file(copied_run, model), None)
    reader = StoreReader(copied_run.parent)
    calls = []
    files = reader.margin_changes
    reader.margin_changes = lambda *a: calls.append(a) or files(*a)
    assert_same_figure(margin_figure(reader, "tiny", ref, cmp, "margin"), stored)
    assert len(calls) == 2  # both from the files


def odd(record: dict) -> dict[str, object]:
    """Summaries a reader must not trust, from a good `record`."""
    counts = record["counts"]
    return {
        "not json": b"{not json",
        "a list": [1, 2],
        "rows of another file": record | {"rows": record["rows"] + 1},
        "other sets": record | {"sets": [["fog", 3]]},
        "sets not pairs": record | {"sets": 7},
        "counts that do not add up": record | {"counts": [c + 1 for c in counts]},
        "negative counts": record | {"counts": [-c for c in counts]},
        "float counts": record | {"counts": [c + 0.5 for c in counts]},
        "huge counts": record | {"counts": [10**30] * len(counts)},
        "no bandwidth": {k: v for k, v in record.items() if k != "bw"},
        "zero bandwidth": record | {"bw": 0},
        "nan bandwidth": record | {"bw": float("nan")},
        "string bandwidth": record | {"bw": "wide"},
        "lo above hi": record | {"lo": record["hi"] + 1},
        "counts and values": record | {"values": [0.0] * record["n"]},
        "values of the wrong length": {k: v for k, v in record.items() if k != "counts"} | {"values": [0.0, 1.0]},
        "n a string": record | {"n": "many"},
        "n negative": record | {"n": -1},
        "no median": record | {"median": None},
        "infinite median": record | {"median": float("inf")},
    }


def test_a_summary_of_any_number_of_bins_is_read_and_drawn_from_its_counts(copied_run):
    path, raw = clean_file(copied_run), StoreReader(copied_run.parent).margin_changes("tiny", MODEL)
    record = {k: v for k, v in footer(path).items() if k != "values"}
    record["counts"] = store.density_bins(raw, bins=64)["counts"].tolist()
    rewrite_footer(path, record)
    stored = StoreReader(copied_run.parent).margin_change("tiny", MODEL)
    assert len(stored["counts"]) == 64 and stored["n"] == len(raw)
    (trace,) = margin_change([(MODEL, stored)])["data"]
    x, d = kde(raw, points=160)
    np.testing.assert_allclose(arr(trace["x"]), x, rtol=1e-6)
    y = arr(trace["y"])
    assert not np.allclose(y, d, rtol=1e-3) and np.trapezoid(y, x) == pytest.approx(1, abs=0.02)


@pytest.mark.parametrize("case", list(odd({"counts": [1], "rows": 1, "n": 1, "hi": 0})))
def test_an_odd_summary_is_not_trusted_and_the_figure_comes_from_the_files(browser_store, copied_run, case):
    path, raw = clean_file(copied_run), StoreReader(browser_store).margin_changes("tiny", MODEL)
    record = {k: v for k, v in footer(path).items() if k != "values"}
    record["counts"] = store.density_bins(raw, bins=64)["counts"].tolist()
    rewrite_footer(path, odd(record)[case])
    reader = StoreReader(copied_run.parent)
    assert store.stored_margin_change(path, SETS) is None
    ref = Combo.parse(f"{MODEL}|clean")
    expected = margin_figure(StoreReader(browser_store), "tiny", ref, None, "margin")
    assert_same_figure(margin_figure(reader, "tiny", ref, None, "margin"), expected)


def test_a_small_summary_holds_the_values_and_draws_as_they_do():
    values = np.random.default_rng(1).normal(0.1, 0.3, 200)
    summary = store.margin_change_summary(values)
    assert "values" in summary and "counts" not in summary
    x, d = kde(values, points=160)
    (trace,) = margin_change([("m", summary)])["data"]
    np.testing.assert_array_equal(arr(trace["x"]), x.astype(np.float32))
    np.testing.assert_array_equal(arr(trace["y"]), d.astype(np.float32))
    assert store.margin_change_summary([2.0, 2.0]) == {"n": 2, "median": 2.0}  # no density: a legend, no curve


def test_the_synthetic_store_writes_the_summary_the_reader_would_compute(tmp_path):
    from benchmarks.make_synthetic_store import write_synthetic_run

    run = write_synthetic_run(tmp_path, "syn", models=2, n_evalsets=4, samples=150, classes=3)
    reader = StoreReader(tmp_path)
    for model in reader.models("syn")["model_id"]:
        stored = reader.margin_change("syn", model)
        computed = store.margin_change_summary(reader.margin_changes("syn", model))
        assert footer(clean_file(run, model))["n"] == stored["n"] == computed["n"] > store.DENSITY_BINS
        np.testing.assert_array_equal(stored["counts"], computed["counts"])
        assert [stored[k] for k in ("median", "bw", "lo", "hi")] == [computed[k] for k in ("median", "bw", "lo", "hi")]


def test_write_run_stores_the_summary_as_the_pipeline_does(browser_store, tmp_path):
    src = browser_store / "tiny"
    samples = pd.concat(
        [
            pd.read_parquet(p).assign(model_id=p.parent.name.split("=", 1)[1])
            for p in sorted((src / store.SAMPLES_DIR).glob("*/*.parquet"))
        ],
        ignore_index=True,
    )
    models, heads = pd.read_parquet(src / store.MODELS), pd.read_parquet(src / store.HEADS)
    run = store.write_run(tmp_path / "mine", models, samples, heads, store.read_run_json(src)["class_names"])
    assert footer(clean_file(run))["sets"] == [list(s) for s in SETS]
    reader = StoreReader(tmp_path)
    stored, computed = (
        reader.margin_change("mine", MODEL),
        store.margin_change_summary(reader.margin_changes("mine", MODEL)),
    )
    assert_same_figure(margin_change([(MODEL, stored)]), margin_change([(MODEL, computed)]))
    assert stored["n"] == footer(clean_file(src))["n"]
