"""evaluations.parquet's optional `preds` (the clean set's predictions, written by the pipeline):
the similarity view reads them instead of every model's samples file, with the same numbers as a
run without them; `validate` holds them to the samples; a malformed value is a message."""

from __future__ import annotations

import base64
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
from pipeline.store import io as store_io
from pipeline.store.similarity import Similarity, run_similarity
from tests.foreign_runs import write_foreign_run


def copy_run(run: Path, tmp_path: Path) -> Path:
    out = tmp_path / "store" / run.name
    shutil.copytree(run, out)
    return out


def with_preds(run: Path, edit) -> None:
    """Rewrite evaluations.parquet's `preds` as `edit(list of arrays or None)` returns them."""
    table = pq.read_table(run / store.EVALUATIONS)
    values = [None if v is None else np.array(v, np.int64) for v in table.column("preds").to_pylist()]
    i = table.schema.get_field_index("preds")
    column = pa.array([None if v is None else list(v) for v in edit(values)], pa.list_(pa.int64()))
    pq.write_table(table.set_column(i, "preds", column), run / store.EVALUATIONS)


def assert_same(a: Similarity, b: Similarity) -> None:
    assert a.model_ids == b.model_ids and a.n == b.n and a.evalset == b.evalset
    np.testing.assert_array_equal(a.agreement, b.agreement)


def no_samples_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_io, "read_samples", lambda *a, **k: pytest.fail("read a samples file"))


def test_the_pipeline_stores_the_clean_predictions_as_the_samples_hold_them(browser_store):
    run = browser_store / "tiny"
    evals, classes = pq.read_table(run / store.EVALUATIONS).to_pylist(), set()
    assert {e["corruption"] for e in evals} > {store.CLEAN}, "a run with corrupted sets: only clean ones get preds"
    for ev in evals:
        if ev["corruption"] != store.CLEAN:
            assert ev["preds"] is None
            continue
        samples = pq.read_table(store.samples_path(run, ev["model_id"], store.CLEAN, 0)).to_pandas()
        want = np.full(samples["sample_id"].max() + 1, -1)
        want[samples["sample_id"]] = samples["pred"]
        assert ev["preds"] == want.tolist()
        classes |= set(ev["preds"])
    assert len(classes) > 1, "predictions of more than one class: a stored array can be told from another"
    assert [p for p in store.check_run(run) if p.error] == []


def test_similarity_reads_the_stored_predictions_with_the_numbers_of_the_samples(browser_store, tmp_path, monkeypatch):
    """With `preds`, no samples file is opened; without them (another tool's run), with them null
    for one model, or on a set that has none, the samples give the same agreement."""
    run = copy_run(browser_store / "tiny", tmp_path)
    with monkeypatch.context() as m:
        no_samples_read(m)
        stored = run_similarity(run)
        with pytest.raises(pytest.fail.Exception, match="read a samples file"):
            run_similarity(run, store.EvalSet("fog", 3))  # no preds on a corrupted set: the samples
    assert stored.warnings == [] and len(stored.model_ids) > 2 and stored.n == 120
    assert (stored.agreement[~np.eye(len(stored.model_ids), dtype=bool)] < 1).any()
    with_preds(run, lambda v: [None if i == 1 else p for i, p in enumerate(v)])
    assert_same(run_similarity(run), stored)
    table = pq.read_table(run / store.EVALUATIONS)
    pq.write_table(table.drop_columns(["preds"]), run / store.EVALUATIONS)
    assert_same(run_similarity(run), stored)
    assert [p for p in store.check_run(run) if p.error or "preds" in p.what] == [], "an absent column: no warning"
    assert_same(StoreReader(run.parent).similarity("tiny"), stored)


def test_stored_predictions_are_what_similarity_uses_and_validate_holds_them_to_the_samples(tiny_run, tmp_path):
    """A stale array changes the agreement (it is read) and is a deep validate error; a value out of
    range or a count other than n is an error of both validates and read from the samples instead."""
    run = copy_run(tiny_run, tmp_path)
    truth = run_similarity(run)

    def stale(values: list) -> list:
        values[0] = values[0].copy()
        values[0][:40] = (values[0][:40] + 1) % 10
        return values

    with_preds(run, stale)
    assert not np.array_equal(run_similarity(run).agreement, truth.agreement), "the stored preds are read"
    assert [p for p in store.check_run(run, deep=False) if p.error] == []
    errors = [p for p in store.check_run(run) if p.error]
    assert len(errors) == 1 and "preds differ from the samples' pred" in errors[0].what
    assert "drop the column" in errors[0].fix
    for damage, phrase in (
        (lambda v: [np.where(np.arange(len(p)) == 3, 999, p) if p is not None else p for p in v], "holds class 999"),
        (lambda v: [p[:-5] if p is not None else p for p in v], "holds 115 predictions, n says 120"),
    ):
        shutil.rmtree(run)
        shutil.copytree(tiny_run, run)
        with_preds(run, damage)
        for deep in (False, True):
            errors = [p for p in store.check_run(run, deep=deep) if p.error]
            assert errors and all(phrase in p.what and "preds" in p.fix for p in errors), errors
        sim = run_similarity(run)
        assert_same(sim, truth)
        assert len(sim.warnings) == 1 and phrase in sim.warnings[0], sim.warnings
        assert f"preds of {len(truth.model_ids)} model(s) on clean are malformed" in sim.warnings[0]


def test_a_preds_column_that_does_not_cast_is_a_message_and_the_samples_answer(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path)
    truth = run_similarity(run)
    table = pq.read_table(run / store.EVALUATIONS)
    i = table.schema.get_field_index("preds")
    pq.write_table(table.set_column(i, "preds", pa.array(["x"] * table.num_rows)), run / store.EVALUATIONS)
    sim = run_similarity(run)
    assert_same(sim, truth)
    assert len(sim.warnings) == 1 and "column 'preds' is string and does not cast" in sim.warnings[0]
    errors = [p for p in store.check_run(run, deep=False) if p.error]
    assert any("preds" in p.what and "list<item: int16>" in p.fix for p in errors), errors


def test_runs_written_by_write_run_and_by_other_tools(tmp_path):
    """write_run computes preds from the samples at hand; another tool's run (no column) reads the samples."""
    foreign = write_foreign_run(tmp_path / "foreign" / "toy")
    models, heads = pd.read_parquet(foreign / store.MODELS), pd.read_parquet(foreign / store.HEADS)
    samples = pd.concat(
        [
            pd.read_parquet(p).assign(model_id=p.parent.name.split("=", 1)[1])
            for p in sorted((foreign / "samples").glob("*/*.parquet"))
        ],
        ignore_index=True,
    )
    classes = json.loads((foreign / store.RUN_JSON).read_text())["class_names"]
    theirs = run_similarity(foreign)
    assert theirs.warnings == [] and len(theirs.model_ids) == 2
    mine = store.write_run(tmp_path / "mine" / "toy", models, samples, heads, classes, dataset="toy")
    preds = pq.read_table(mine / store.EVALUATIONS).to_pandas().set_index(["model_id", "corruption"])["preds"]
    assert preds.xs(store.CLEAN, level="corruption").notna().all()
    assert preds.drop(store.CLEAN, level="corruption").isna().all()
    assert_same(run_similarity(mine), theirs)


def test_assemble_takes_the_record_or_for_older_records_the_file(tiny_run):
    from pipeline.runner import record_preds
    from pipeline.units import eval_record

    model_id = pq.read_table(tiny_run / store.MODELS).column("model_id")[0].as_py()
    record = eval_record(tiny_run, model_id, store.CLEAN, 0)
    got = record_preds(tiny_run, model_id, record)
    older = record_preds(tiny_run, model_id, {k: v for k, v in record.items() if k != "preds"})
    assert np.frombuffer(base64.b64decode(record["preds"]), "<i2").tolist() == got.tolist() == older.tolist()
    assert record_preds(tiny_run, model_id, {**record, "corruption": "fog", "severity": 3}) is None
