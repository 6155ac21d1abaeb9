"""The published contract: docs/store.md against the schema, runs written by other tools,
tolerant reading, write_run, page checksums, and damaged runs answered with messages."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable
from urllib.request import Request, urlopen

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from werkzeug.serving import make_server

from app import ids
from app.main import create_app
from app.reader import StoreReader
from pipeline import store
from pipeline.store import Problem, PruneScopeError
from pipeline.store.io import expected_sets
from tests.conftest import free_port
from tests.foreign_runs import CLASSES, DAMAGES, DENSE, SETS, N, write_foreign_run

REPO = Path(__file__).resolve().parents[1]
PRUNED = "digits_cnn-magnitude-global-oneshot-s80-ft1"


@pytest.fixture(scope="module")
def foreign_store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("foreign")
    write_foreign_run(root / "toy")
    return root


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=300)


# ---------------------------------------------------------------- docs/store.md


def documented_columns() -> dict[str, list[tuple[str, str, str, str]]]:
    """The column tables of docs/store.md: path -> [(column, kind, required, default)]."""
    out: dict[str, list[tuple[str, str, str, str]]] = {}
    current = None
    for line in (REPO / "docs" / "store.md").read_text().splitlines():
        heading = re.match(r"### `([^`]+)`", line)
        if heading:
            current = out.setdefault(heading.group(1), [])
        row = re.match(r"\| `([^`]+)` \| `([^`]+)` \| (required|optional) \| ([^|]*) \|", line)
        if row and current is not None:
            current.append((row.group(1), row.group(2), row.group(3), row.group(4).strip()))
    return out


def test_docs_store_md_documents_every_column_and_nothing_else():
    docs = documented_columns()
    assert set(docs) == {t.path for t in store.TABLES.values()}
    for table in store.TABLES.values():
        expected = [
            (
                c.name,
                c.kind_name,
                "required" if c.required else "optional",
                "" if c.required else ("null" if c.default is None else json.dumps(c.default).replace("NaN", "NaN")),
            )
            for c in table.columns
        ]
        assert docs[table.path] == expected, table.path


def test_docs_store_md_lists_the_run_json_keys():
    text = (REPO / "docs" / "store.md").read_text()
    for key in store.RUN_JSON_KEYS:
        assert f"| `{key}` | required |" in text
    for key in store.RUN_JSON_OPTIONAL:
        assert f"| `{key}` | optional |" in text


# ---------------------------------------------------------------- another tool's run


def test_a_run_written_from_the_docs_validates_with_warnings_only(foreign_store):
    out = run_cli("-m", "pipeline", "validate", str(foreign_store / "toy"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 error" not in out.stdout and "error(s)" not in out.stdout
    assert "warning(s)" in out.stdout and "valid" in out.stdout
    for expected in (
        "'steps' is missing; read as 1",
        "'severity' is int64; read as int8",
        "'angles' is list<element: double>; read as fixed_size_list<item: float>[3]",
    ):
        assert expected in out.stdout


def test_validate_exits_1_on_errors_and_names_each_fix(tiny_run, tmp_path):
    run = tmp_path / "tiny"
    shutil.copytree(tiny_run, run)
    for damage in ("truncated samples file", "3 class names for 10 labels"):
        DAMAGES[damage][0](run)
    out = run_cli("-m", "pipeline", "validate", str(run))
    assert out.returncode == 1 and "2 error(s)" in out.stdout, out.stdout
    assert "clean.parquet: is not a readable samples file" in out.stdout and "3 class names" in out.stdout
    assert out.stdout.count("(fix: ") == 2 and "Traceback" not in out.stderr


def test_the_reader_reads_another_tools_run(foreign_store):
    reader = StoreReader(foreign_store)
    models = reader.models("toy").set_index("model_id")
    assert models.loc["pruned", "steps"] == 1 and models["params_total"].dtype == np.int64
    for corruption, severity in SETS:
        df = reader.samples("toy", "pruned", corruption, severity, with_angles=True)
        assert df["sample_id"].tolist() == list(range(N))
        assert {"a0", "a1", "a2"} <= set(df.columns) and df["a0"].dtype == np.float32
        assert df["robustness"].isna().all()
    keys, rows = reader.correctness("toy")
    assert rows.shape[1] == len(keys) == 2 * len(SETS) and rows.shape[0] * 8 >= N
    assert reader.margin_change("toy", "pruned")["n"] > 0
    assert set(reader.table1("toy")["model_id"]) == {"dense", "pruned"}
    images, corrupted = reader.images("toy", [0, 1])
    assert set(images) == {0, 1} and not corrupted
    assert reader.meta("toy")["class_names"] == CLASSES
    assert [p for p in reader.problems("toy") if p.error] == []


def test_a_file_may_hold_any_sets_under_any_name(foreign_store, tmp_path):
    run = tmp_path / "toy"
    shutil.copytree(foreign_store / "toy", run)
    part = run / "samples" / "model_id=dense"
    table = pq.read_table(part / "part-0.parquet")
    fog = pa.compute.equal(table.column("corruption"), "fog")
    pq.write_table(table.filter(fog), part / "b.parquet")
    pq.write_table(table.filter(pa.compute.invert(fog)), part / "a-clean-only.parquet")
    (part / "part-0.parquet").unlink()
    index = store.SamplesIndex(run, "dense")
    assert index.sets() == sorted(store.EvalSet(c, s) for c, s in SETS)
    got = store.read_samples(index, store.EvalSet("fog", 2), ["sample_id", "angles"], len(CLASSES))
    assert got.num_rows == N and got.schema.field("angles").type == pa.list_(pa.float32(), 3)
    assert store.validate_run(run) == []
    (part / "b.parquet").rename(part / "fog-1.parquet")  # a set's name promises that set only
    assert any("is named after fog s1 but holds fog s1, fog s2" in p for p in store.validate_run(run))


def test_a_set_reads_the_same_from_its_row_groups_as_from_a_filtered_scan(foreign_store, tmp_path):
    """One file per model with a row group per set reads only that set's row groups; a row group
    holding several sets is scanned with a filter; both give the rows a scan gives, labels too."""
    run = tmp_path / "toy"
    shutil.copytree(foreign_store / "toy", run)
    part = run / "samples" / "model_id=dense"
    table = pq.read_table(part / "part-0.parquet").sort_by([("corruption", "ascending"), ("severity", "ascending")])
    df = table.to_pandas()
    assert len(df) == N * len(SETS)
    for rows_per_group, per_set in ((N // 2, True), (3 * N, False)):  # row groups of one set; of several sets
        pq.write_table(table, part / "part-0.parquet", row_group_size=rows_per_group)
        index = store.SamplesIndex(run, "dense")
        assert bool(index.groups) == per_set
        for (c, s), labels in itertools.product(SETS, (None, [1])):
            want = df[(df["corruption"] == c) & (df["severity"] == s) & (df["label"].isin(labels or range(99)))]
            got = store.read_samples(index, store.EvalSet(c, s), ["sample_id", "margin"], len(CLASSES), labels)
            assert 0 < got.num_rows == len(want)
            assert sorted(zip(*got.to_pydict().values())) == sorted(
                zip(want["sample_id"], want["margin"].astype(np.float32).tolist())
            )


def test_expected_sets_follow_a_rewritten_evaluations_table(foreign_store, tmp_path):
    run = tmp_path / "toy"
    shutil.copytree(foreign_store / "toy", run)
    assert set(expected_sets(run)) == {"dense", "pruned"}
    evals = pq.read_table(run / "evaluations.parquet")
    store.write_table(evals.filter(pa.compute.equal(evals.column("model_id"), "dense")), run / "evaluations.parquet")
    assert set(expected_sets(run)) == {"dense"}  # read again: not the first version's


def test_casts_that_lose_information_are_errors():
    spec = store.TABLES["samples"]
    big = pa.table({"sample_id": pa.array([2**40], pa.int64())})
    with pytest.raises(Problem, match="'sample_id' is int64 and does not cast to int32"):
        store.conform(big, spec, ["sample_id"])
    ragged = pa.table({"angles": pa.array([[1.0, 2.0], [1.0]])})
    with pytest.raises(Problem, match="'angles'"):
        store.conform(ragged, spec, ["angles"], {"num_classes": 2})
    with pytest.raises(Problem, match="required column 'label' is missing"):
        store.conform(pa.table({"sample_id": [1]}), spec, ["sample_id", "label"])


def test_write_run_makes_a_valid_run_the_app_reads(foreign_store, tmp_path):
    src = foreign_store / "toy"
    models = pd.read_parquet(src / "models.parquet")
    heads = pd.read_parquet(src / "heads.parquet")
    images = pd.read_parquet(src / "images.parquet")
    samples = pd.concat(
        [
            pd.read_parquet(p).assign(model_id=p.parent.name.split("=", 1)[1])
            for p in sorted((src / "samples").glob("*/*.parquet"))
        ],
        ignore_index=True,
    )
    run = store.write_run(tmp_path / "mine", models, samples, heads, CLASSES, images=images, dataset="toy")
    assert store.validate_run(run) == []
    reader = StoreReader(tmp_path)
    assert len(reader.evaluations("mine")) == 2 * len(SETS)
    ours = reader.samples("mine", "dense", "fog", 1)
    theirs = samples[(samples.model_id == "dense") & (samples.corruption == "fog") & (samples.severity == 1)]
    np.testing.assert_allclose(ours["margin"], theirs["margin"].to_numpy(), rtol=1e-6)
    assert pq.read_table(run / store.EVALUATIONS).column("correct_bits").null_count == 0
    given = pd.read_parquet(run / store.EVALUATIONS).drop(columns=["correct_bits"])  # their own summaries
    again = store.write_run(tmp_path / "given", models, samples, heads, CLASSES, evaluations=given, dataset="toy")
    assert pq.read_table(again / store.EVALUATIONS).column("correct_bits").null_count == 0, "bits from the samples"
    with pytest.raises(PruneScopeError, match="exists"):
        store.write_run(run, models, samples, heads, CLASSES)
    with pytest.raises(PruneScopeError, match="required column 'sparsity' is missing"):
        store.write_run(tmp_path / "bad", models.drop(columns=["sparsity"]), samples, heads, CLASSES)


# ---------------------------------------------------------------- checksums


def test_a_flipped_byte_in_evaluations_parquet_is_an_error_not_wrong_data(tmp_path):
    rng = np.random.default_rng(0)
    table = pa.table(
        {
            "model_id": ["m"] * 64,
            "corruption": ["fog"] * 64,
            "severity": pa.array([3] * 64, pa.int8()),
            "n": pa.array(np.arange(64), pa.int64()),
            "accuracy": rng.random(64),
            "mean_angle": rng.random(64),
            "mean_length": rng.random(64),
            "mean_margin": rng.random(64),
        }
    )
    path = tmp_path / "evaluations.parquet"
    store.write_table(table, path)
    original = path.read_bytes()
    chunk = pq.read_metadata(path).row_group(0).column(table.schema.get_field_index("accuracy"))
    start = chunk.data_page_offset
    silently_wrong = 0
    for pos in range(start, start + chunk.total_compressed_size):
        data = bytearray(original)
        data[pos] ^= 0x10
        path.write_bytes(bytes(data))
        try:
            unchecked = pq.read_table(path)
            silently_wrong += not unchecked.equals(table)
        except (pa.ArrowException, OSError):
            pass
        try:
            got = store.read_table(path)
        except PruneScopeError as exc:
            assert "evaluations.parquet is not a readable Parquet file" in exc.problem and exc.fix
            continue
        assert got.equals(table), f"byte {pos}: read back different data"
    assert silently_wrong > 0, "without checksums some flips read back as wrong numbers"


# ---------------------------------------------------------------- damaged runs


def fire_every_callback(base: str) -> list[tuple[str, int, str]]:
    """Post every server callback of the page once, with the inputs the page starts with.

    Returns (output, HTTP status, body) per callback, as the browser's requests would get them.
    """
    layout = json.loads(urlopen(base + "/_dash-layout", timeout=60).read())
    props: dict[str, dict] = {}

    def walk(node):
        if isinstance(node, dict):
            if "props" in node and "type" in node:
                p = node["props"]
                if isinstance(p.get("id"), str):
                    props[p["id"]] = p
                walk(p.get("children"))
                for v in p.values():
                    if isinstance(v, (dict, list)):
                        walk(v)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(layout)
    answers = []
    for dep in json.loads(urlopen(base + "/_dash-dependencies", timeout=60).read()):
        if dep.get("clientside_function") or "{" in dep["output"] or dep.get("background") or dep.get("long"):
            continue

        def spec(item):
            return {**item, "value": props.get(item["id"], {}).get(item["property"])}

        multi = dep["output"].startswith("..")
        outs = [o.rsplit(".", 1) for o in dep["output"].strip(".").split("...")]
        outputs = [{"id": i, "property": p.split("@")[0]} for i, p in outs]
        body = {
            "output": dep["output"],
            "outputs": outputs if multi else outputs[0],
            "inputs": [spec(i) for i in dep["inputs"]],
            "state": [spec(s) for s in dep["state"]],
            "changedPropIds": [f"{i['id']}.{i['property']}" for i in dep["inputs"][:1]],
        }
        req = Request(base + "/_dash-update-component", json.dumps(body).encode(), {"Content-Type": "application/json"})
        try:
            with urlopen(req, timeout=120) as resp:
                answers.append((dep["output"], resp.status, resp.read().decode()))
        except Exception as exc:  # HTTPError carries the status
            answers.append((dep["output"], getattr(exc, "code", 0), str(exc)))
    return answers


def readable(body: str) -> str:
    """A response body's text as a user reads it: JSON escapes decoded, a figure message's line breaks as spaces."""
    try:
        body = json.dumps(json.loads(body), ensure_ascii=False)
    except ValueError:
        pass
    return body.replace("<br>", " ")


def serve(app) -> tuple[str, Callable[[], None]]:
    server = make_server("127.0.0.1", free_port(), app.server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server.shutdown


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_run_opens_with_its_message_and_no_500(tiny_run, tmp_path, damage):
    run = tmp_path / "store" / "tiny"
    shutil.copytree(tiny_run, run)
    apply, phrase, shown_in = DAMAGES[damage]
    apply(run)
    base, stop = serve(create_app(run.parent, "tiny", cache_dir=tmp_path / "dc"))
    try:
        answers = fire_every_callback(base)
    finally:
        stop()
    assert len(answers) > 10
    assert [(o, s) for o, s, _ in answers if s >= 500] == []
    table = next(b for o, _, b in answers if o.startswith(f"..{ids.EVAL_TABLE}.figure"))
    assert '"type":"bar"' in table.replace(" ", ""), "the evaluation table draws whatever else is damaged"
    panel = next(b for o, _, b in answers if o.startswith(ids.RUN_PROBLEMS) or ids.RUN_PROBLEMS in o)
    showing = [o for o, _, b in answers if phrase and phrase in readable(b)]
    if phrase is None:
        assert '"children":null' in panel.replace(" ", ""), panel
    else:
        assert len(showing) >= shown_in, (damage, showing)


def test_a_foreign_run_answers_every_callback(foreign_store, tmp_path):
    base, stop = serve(create_app(foreign_store, "toy", cache_dir=tmp_path / "dc"))
    try:
        answers = fire_every_callback(base)
    finally:
        stop()
    assert [(o, s) for o, s, _ in answers if s >= 500] == []
    bodies = "\n".join(b for _, _, b in answers)
    assert "could not be" not in bodies and "Fix:" not in bodies, bodies[:2000]


@pytest.mark.parametrize("damage", [d for d, (_, phrase, _) in DAMAGES.items() if phrase])
def test_report_and_export_answer_a_damaged_run_in_one_line(tiny_run, tmp_path, damage):
    run = tmp_path / "store" / "tiny"
    shutil.copytree(tiny_run, run)
    DAMAGES[damage][0](run)
    report = run_cli("-m", "pipeline", "report", str(run))
    export = run_cli(
        "-m",
        "app.export",
        "--store",
        str(run.parent),
        "--run",
        "tiny",
        "--reference",
        DENSE,
        "--compare",
        PRUNED,
        "--out",
        str(tmp_path / "s.html"),
    )
    for out in (report, export):
        assert "Traceback" not in out.stderr, out.stderr
        if out.returncode:
            assert out.stderr.startswith("error: ") and len(out.stderr.strip().splitlines()) <= 2, out.stderr


def test_correct_bits_hold_the_samples_correct_and_serve_selections_like_a_scan(tiny_run, tmp_path, monkeypatch):
    """The pipeline writes each evaluation's bitset; the reader's matrix from them equals the one
    a scan of the samples gives; a bitset that disagrees with accuracy × n is a validate error."""
    evals = pq.read_table(tiny_run / store.EVALUATIONS).to_pylist()
    for ev in evals:
        samples = pq.read_table(store.samples_path(tiny_run, ev["model_id"], ev["corruption"], ev["severity"]))
        want = store.pack_correct(samples.column("sample_id").to_numpy(), samples.column("correct").to_numpy())
        assert ev["correct_bits"] == want and store.count_correct(want) == round(ev["accuracy"] * ev["n"])
    run = tmp_path / "store" / "tiny"
    shutil.copytree(tiny_run, run)
    with monkeypatch.context() as m:  # the bitsets alone: no scan of the samples
        m.setattr(store, "samples_dataset", lambda *a: pytest.fail("scanned the samples"))
        fast_keys, fast = StoreReader(tiny_run.parent).correctness("tiny")
    table = pq.read_table(run / store.EVALUATIONS)
    pq.write_table(table.drop_columns(["correct_bits"]), run / store.EVALUATIONS)
    assert StoreReader(tiny_run.parent, tmp_path / "dc1").correctness_ready("tiny"), "bitsets: no background job"
    assert not StoreReader(run.parent, tmp_path / "dc2").correctness_ready("tiny"), "a scan: a background job"
    scan_keys, scan = StoreReader(run.parent).correctness("tiny")
    order = lambda keys: keys.sort_values(list(keys.columns)).index.to_numpy()  # noqa: E731
    pd.testing.assert_frame_equal(
        fast_keys.iloc[order(fast_keys)].reset_index(drop=True), scan_keys.iloc[order(scan_keys)].reset_index(drop=True)
    )
    np.testing.assert_array_equal(fast[:, order(fast_keys)], scan[:, order(scan_keys)])  # a column per evaluation
    idx = table.schema.get_field_index("correct_bits")

    def rewrite(bits: list[bytes]) -> None:
        pq.write_table(table.set_column(idx, "correct_bits", pa.array(bits, pa.binary())), run / store.EVALUATIONS)

    stale = table.column("correct_bits").to_pylist()
    stale[0] = bytes([stale[0][0] ^ 0x80]) + stale[0][1:]  # sample 0 flipped: the count no longer matches
    rewrite(stale)
    errors = [p for p in store.check_run(run) if p.error]
    assert len(errors) == 1 and "correct_bits marks" in errors[0].what and "drop the column" in errors[0].fix
    keys, matrix = StoreReader(run.parent).correctness("tiny")  # the app trusts the samples instead
    np.testing.assert_array_equal(matrix[:, order(keys)], scan[:, order(scan_keys)])
    bits = table.column("correct_bits").to_pylist()  # least significant bit first: the counts hold, only a scan sees it
    rewrite([np.packbits(np.unpackbits(np.frombuffer(b, np.uint8)), bitorder="little").tobytes() for b in bits])
    assert not [p for p in store.check_run(run, deep=False) if p.error]
    errors = [p for p in store.check_run(run) if p.error]
    assert errors and all("differ from the samples' correct" in p.what for p in errors)


def test_column_has_no_nulls_reads_the_named_column_from_the_footer(tmp_path):
    path = tmp_path / "e.parquet"
    pq.write_table(pa.table({"nested": [{"a": 1}, {"a": None}], "bits": [b"\x01", None], "full": [b"", b"\x00"]}), path)
    assert not store.column_has_no_nulls(path, "bits") and store.column_has_no_nulls(path, "full")
    assert not store.column_has_no_nulls(path, "absent") and not store.column_has_no_nulls(tmp_path / "no", "bits")
