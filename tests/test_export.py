"""HTML snapshots: the builder, the file it writes and the command line."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.export import build_snapshot, script_json, snapshot_filename, write_file
from app.figures.local import trajectories
from app.reader import StoreError, StoreReader
from app.state import Combo
from app.views.local import default_class, flips_per_class
from pipeline import store
from pipeline.errors import PruneScopeError
from tests.conftest import HOSTILE_NAMES

REPO = Path(__file__).resolve().parents[1]
REF, CMP = "digits_cnn-dense", "digits_cnn-magnitude-global-oneshot-s80-ft1"


def snapshot_data(text: str) -> dict:
    m = re.search(r'<script type="application/json" id="snapshot-data">(.*?)</script>', text, re.S)
    assert m, "the data block is embedded"
    return json.loads(m.group(1))


@pytest.fixture(scope="module")
def snapshot(tiny_run) -> str:
    return build_snapshot(StoreReader(tiny_run.parent), "tiny", REF, CMP)


def test_snapshot_is_self_contained(snapshot):
    assert snapshot.count("Plotly.newPlot") == 1  # our script draws every figure from the embedded data
    assert len(re.findall(r"<script>", snapshot)) == 2  # plotly.js once, then our script
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=[\"']?(https?:)?//", snapshot), "nothing is fetched"
    assert "@import" not in snapshot
    assert len(snapshot.encode()) < 10_000_000


def test_snapshot_holds_every_figure_and_the_linking_data(snapshot, tiny_run):
    data = snapshot_data(snapshot)
    assert set(data["figures"]) == {
        "evaltable",
        "modelmap",
        "local",
        "trajectories",
        "global",
        "density",
        "margin",
        "sweetspot",
        "attribution",
        "dimension",
    }
    assert all(f'<div id="fig-{k}" class="fig"></div>' in snapshot for k in data["figures"])
    assert [t["name"] for t in data["figures"]["global"]["data"][:3]] == ["reference", "compared", "selected"]
    reader = StoreReader(tiny_run.parent)
    focus = default_class(flips_per_class(reader, "tiny", Combo(REF, "clean", 0), Combo(CMP, "clean", 0)))
    assert f"<dd>{reader.meta('tiny')['class_names'][focus]}</dd>" in snapshot
    samples = reader.samples("tiny", REF, "clean", 0)
    in_focus = set(samples.loc[samples["label"] == focus, "sample_id"])
    lines = data["views"]["global"]
    assert set(lines["ids"]) == in_focus and len(lines["ids"]) == 2 * len(in_focus)  # reference and compared lines
    assert sorted(set(lines["group"])) == [0, 1]
    positions = lines["positions"]
    assert len(positions) == len(data["figures"]["global"]["layout"]["xaxis"]["ticktext"])
    assert all(len(p) == 2 * len(in_focus) and min(p) == 0 and max(p) == 1 for p in positions)
    linked = {i for traces in data["linked"]["local"].values() for i in traces}
    assert linked == set(samples["sample_id"])  # every sample of the small multiples can be selected
    assert all(i in in_focus for traces in data["linked"]["trajectories"].values() for i in traces)
    gallery = data["views"]["samples"]
    assert {sid for sid, _ in gallery["order"]} == set(samples["sample_id"]) == {int(k) for k in gallery["cards"]}
    card = gallery["cards"][str(gallery["order"][0][0])]
    assert 'class="sample-card"' in card and "data:image/png;base64," in card and "cmp:" in card
    assert REF in snapshot and CMP in snapshot and "Table 1" in snapshot
    rings = {t["name"]: t for t in data["figures"]["modelmap"]["data"] if t["name"] in ("reference", "compared")}
    assert set(rings) == {"reference", "compared"}, "the model map rings the snapshot's two models"


def test_single_model_snapshot_and_chosen_class(tiny_run):
    text = build_snapshot(StoreReader(tiny_run.parent), "tiny", REF, None, focus=3)
    data = snapshot_data(text)
    assert "trajectories" not in data["figures"] and data["views"]["samples"]["focus"] == 3
    assert data["compared"] is False and "cmp:" not in next(iter(data["views"]["samples"]["cards"].values()))
    assert [t["name"] for t in data["figures"]["global"]["data"][:3]] == ["correct", "incorrect", "selected"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"reference": "nope"}, "has no model 'nope'"),
        ({"compare": "../../etc"}, "has no model"),
        ({"corruption": "fog", "severity": 3}, "has no evaluation on fog-3"),
        ({"focus": 99}, "class 99 is not a class"),
    ],
)
def test_snapshot_refuses_what_the_run_does_not_have(tiny_run, kwargs, message):
    args = {"reference": REF, "compare": CMP, **kwargs}
    with pytest.raises(StoreError, match=message):
        build_snapshot(StoreReader(tiny_run.parent), "tiny", **args)


def test_default_class_is_the_class_with_the_most_flips(tiny_run):
    reader = StoreReader(tiny_run.parent)
    moves = trajectories(reader.samples("tiny", REF, "clean", 0), reader.samples("tiny", CMP, "clean", 0))
    flips = (moves["correct_ref"] != moves["correct_cmp"]).groupby(moves["label"]).sum()
    counted = flips_per_class(reader, "tiny", Combo(REF, "clean", 0), Combo(CMP, "clean", 0))
    assert counted.reindex(flips.index, fill_value=0).tolist() == flips.tolist()
    assert flips.max() > 0 and flips[default_class(counted)] == flips.max()
    assert default_class(counted.iloc[0:0]) == 0
    assert snapshot_filename("tiny", REF, CMP) == f"prunescope-tiny-{REF}-vs-{CMP}.html"


def test_command_line_writes_the_file_and_explains_errors(tiny_run, tmp_path):
    out = tmp_path / "snap.html"
    cmd = [
        sys.executable,
        "-m",
        "app.export",
        "--store",
        str(tiny_run.parent),
        "--run",
        "tiny",
        "--reference",
        REF,
        "--compare",
        CMP,
        "--out",
        str(out),
    ]
    ok = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert out.stat().st_size > 1_000_000 and "wrote" in ok.stdout
    for bad, message in (
        (["--run", "nope"], "there is no run 'nope'"),
        (["--severity", "9", "--corruption", "fog"], "--severity 9 is not 1..5"),
        (["--store", str(tmp_path / "missing")], "there is no store folder"),
        (["--out", str(tmp_path / "no" / "x.html")], "does not exist"),
        (["--out", str(tmp_path)], "is a folder"),
    ):
        res = subprocess.run(cmd + bad, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr, res.stderr


def test_embedded_json_escapes_what_could_end_the_script_block(hostile_store):
    text = build_snapshot(StoreReader(hostile_store), "tiny", REF, CMP, focus=0)
    block = re.search(r'<script type="application/json" id="snapshot-data">(.*?)</script>', text, re.S).group(1)
    assert not set("<>&") & set(block)
    assert json.loads(block)["classNames"][:3] == HOSTILE_NAMES
    assert script_json({"k": "<!--</script>&"}) == '{"k":"\\u003c!--\\u003c/script\\u003e\\u0026"}'


def _export(tiny_run, out: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "app.export", "--store", str(tiny_run.parent), "--run", "tiny"]
    cmd += ["--reference", REF, "--compare", CMP, "--out", str(out)]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)


def test_export_writes_through_a_private_temporary_file(tiny_run, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "snap.html"
    (tmp_path / "snap.html.tmp").symlink_to(victim)  # a planted link where the old code wrote
    out.write_text("old snapshot")
    res = _export(tiny_run, out)
    assert res.returncode == 0, res.stderr
    assert victim.read_text() == "precious"
    assert (tmp_path / "snap.html.tmp").is_symlink() and not out.is_symlink()
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap.html", "snap.html.tmp", "victim.txt"]


@pytest.mark.parametrize("kind", ["socket", "link", "fifo"])
def test_export_refuses_to_replace_what_is_not_a_regular_file(tiny_run, tmp_path, kind, monkeypatch, request):
    """A link, a pipe and a socket stand for every file that is not a regular one (a device node is
    refused by the same check, and making one needs root). The socket is bound by a relative name
    from tmp_path: a socket's path has a length limit (108 bytes on Linux) that tmp_path can pass."""
    out = tmp_path / "snap.html"
    if kind == "socket":
        listener = socket.socket(socket.AF_UNIX)
        request.addfinalizer(listener.close)  # closed even when an assertion fails
        monkeypatch.chdir(tmp_path)
        listener.bind(out.name)
    elif kind == "link":
        (tmp_path / "target.html").write_text("kept")
        out.symlink_to(tmp_path / "target.html")
    else:
        os.mkfifo(out)
    res = _export(tiny_run, out)
    assert res.returncode == 2 and "is not a regular file" in res.stderr and "Traceback" not in res.stderr
    if kind == "socket":
        assert out.is_socket()
    if kind == "link":
        assert out.is_symlink() and (tmp_path / "target.html").read_text() == "kept"
    assert not list(tmp_path.glob(".*.tmp"))


def test_write_file_reports_a_failed_write(tmp_path):
    (tmp_path / "afile").write_text("")
    with pytest.raises(PruneScopeError, match="cannot write"):
        write_file(tmp_path / "afile" / "x.html", "text")


def test_snapshot_names_the_runs_margin_definition(snapshot):
    """Table 1, the parallel coordinates' title and the margin densities say which margin they show
    (the tiny run has no corrupted sets, so no Fig. 10: its builder is checked on its own)."""
    from app.figures.robustness import margin_change

    data = snapshot_data(snapshot)
    label = "margin (eq. 5)"
    assert f"<th>{label}</th>" in snapshot
    assert f"last axis: {label}" in data["figures"]["global"]["layout"]["title"]["text"]
    fig10 = margin_change([("m", store.margin_change_summary(np.linspace(-1, 1, 50)))], label)
    assert label in fig10["layout"]["title"]["text"] and "signed margin" not in fig10["layout"]["title"]["text"]
    titles = [v.get("title", {}).get("text") for k, v in data["figures"]["local"]["layout"].items() if "axis" in k]
    assert any(title and label in title for title in titles), titles
