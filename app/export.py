"""Static HTML snapshots of a comparison: one self-contained file that needs no server or network.

    python -m app.export --store DIR --run NAME --reference MODEL_ID --compare MODEL_ID \
        [--corruption NAME --severity S] [--class K] --out FILE.html

The figures come from the same builders the live dashboard uses; plotly.js is inlined once,
the images of the samples are embedded, and a small inlined script (app/snapshot/snapshot.js)
links the figures: a box or lasso selection in a geometry plot, or a box over axes of the
parallel coordinates, highlights the same samples everywhere and fills the gallery.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import html
import json
import os
import stat
import sys
from pathlib import Path
from string import Template
from typing import Callable

import numpy as np
import pandas as pd
from plotly.io.json import to_json_plotly

from app import plotlyjs
from app.figures import Figure, decode_array
from app.figures.evaltable import evaluation_table, table_frame
from app.figures.local import classes_to_show, comparison, small_multiples, trajectories
from app.figures.parallel import (
    axis_positions,
    axis_ranges,
    density_strips,
    dimensions,
    parallel_coordinates,
    rank_axes,
    shown_lines,
)
from app.figures.robustness import margin_change
from app.figures.sweetspot import accuracy_vs_sparsity
from app.reader import StoreError, StoreReader
from app.state import Combo
from pipeline import store
from pipeline.store import PruneScopeError

SNAPSHOT_DIR = Path(__file__).resolve().parent / "snapshot"
IMAGE_BUDGET = 3_000_000  # bytes of embedded PNGs: the class in focus first, then the samples that moved most
MAX_IMAGES = 5000  # samples considered for embedding, before the byte budget
STEPS = 6

Progress = Callable[[int, int], None]


def _ids_of(fig: Figure) -> dict[int, list[int]]:
    """Sample ids of every marker trace (its customdata), by trace index."""
    out = {}
    for i, trace in enumerate(fig["data"]):
        custom = decode_array(trace.get("customdata"))
        if trace.get("type") in ("scatter", "scattergl") and custom is not None and "markers" in trace.get("mode", ""):
            out[i] = [int(v) for v in np.asarray(custom).ravel()]
    return out


def _plain(v: object) -> bool | int | float | None:
    """A sample field as JSON: bools and ints as they are, floats rounded, NaN as null."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    v = float(v)
    return None if np.isnan(v) else round(v, 3)


def _png_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def default_focus(moves: pd.DataFrame) -> int:
    """The class whose samples changed correctness most between reference and compared (with no
    change, the lowest class)."""
    if moves.empty:
        return 0
    flips = moves[moves["category"].isin(["right_wrong", "wrong_right"])].groupby("label").size()
    return int(flips.idxmax()) if len(flips) else int(moves["label"].min())


def _samples(a: pd.DataFrame, b: pd.DataFrame | None, focus: int) -> pd.DataFrame:
    """One row per sample with reference (and compared) prediction and metrics, most moved first."""
    cols = ["sample_id", "label", "pred", "correct", "angle", "length", "margin"]
    df = (
        a[cols].merge(b[cols[:1] + cols[2:]], on="sample_id", suffixes=("", "_cmp"))
        if b is not None
        else a[cols].copy()
    )
    moved = (df["margin_cmp"] - df["margin"]).abs() if b is not None else -df["margin"]
    return (
        df.assign(move=moved, _focus=df["label"] != focus)
        .sort_values(["_focus", "move"], ascending=[True, False], kind="stable")
        .drop(columns="_focus")
    )


def build_snapshot(
    reader: StoreReader,
    run: str,
    reference: str,
    compare: str | None,
    corruption: str = store.CLEAN,
    severity: int = 0,
    focus: int | None = None,
    progress: Progress | None = None,
) -> str:
    """The snapshot's HTML. Names are checked against the store before anything is read."""
    step = progress or (lambda done, total: None)
    severity = 0 if corruption == store.CLEAN else int(severity)
    ref = Combo(reader.check_model(run, reference), *reader.check_evalset(run, reference, corruption, severity))
    cmp = (
        Combo(reader.check_model(run, compare), *reader.check_evalset(run, compare, corruption, severity))
        if compare
        else None
    )
    meta = reader.meta(run)
    names: list[str] = meta["class_names"]
    margin_label = store.margin_label(meta)
    step(1, STEPS)

    a_all = reader.samples(run, ref.model_id, corruption, severity, with_angles=True)
    b_all = reader.samples(run, cmp.model_id, corruption, severity, with_angles=True) if cmp else None
    moves = trajectories(a_all, b_all) if b_all is not None else pd.DataFrame()
    if focus is None:
        focus = default_focus(moves) if cmp else 0
    if not 0 <= focus < len(names):
        raise StoreError(f"class {focus} is not a class of run {run!r}", f"pick one of 0..{len(names) - 1}")
    step(2, STEPS)

    figures: dict[str, Figure] = {}
    evals = reader.evaluations(run)
    figures["evaltable"] = evaluation_table(
        table_frame(evals, severity if severity else 3), ref.model_id, cmp.model_id if cmp else None
    )
    figures["local"] = small_multiples(
        a_all, names, classes_to_show(a_all, focus, len(names)), margin_label=margin_label
    )
    if cmp:
        figures["trajectories"] = comparison(moves[moves["label"] == focus], names[focus])
    a = a_all[a_all["label"] == focus].reset_index(drop=True)
    b = b_all[b_all["label"] == focus].reset_index(drop=True) if b_all is not None else None
    dims = dimensions(rank_axes(a, b, focus, len(names)), names)
    figures["global"] = parallel_coordinates(a, dims, f"{ref.model_id} · {ref.evalset} · last axis: {margin_label}")
    figures["density"] = density_strips(a, b, dims)
    step(3, STEPS)

    curves = [(c.model_id, reader.margin_changes(run, c.model_id)) for c in dict.fromkeys(c for c in (ref, cmp) if c)]
    figures["margin"] = margin_change(curves, margin_label)
    figures["sweetspot"] = accuracy_vs_sparsity(
        reader.models(run), selected=ref.model_id, title="clean accuracy vs sparsity", legend_below=True, height=420
    )
    t1 = reader.table1(run)
    step(4, STEPS)

    samples = _samples(a_all, b_all, focus)
    candidates = samples["sample_id"].head(MAX_IMAGES).tolist()
    pngs, corrupted = reader.images(run, candidates, corruption, severity)
    embedded: dict[int, str] = {}
    budget = IMAGE_BUDGET
    for sid in candidates:
        png = pngs.get(int(sid))
        if png is not None and len(png) <= budget:
            budget -= len(png)
            embedded[int(sid)] = _png_uri(png)
    step(5, STEPS)

    lines = shown_lines(a)
    data = {
        "figures": {k: json.loads(to_json_plotly(f)) for k, f in figures.items()},
        "linked": {k: _ids_of(figures[k]) for k in ("local", "trajectories") if k in figures},
        "parallel": {  # each shown line's position (0 bottom, 1 top) on every axis, to brush and repaint in the browser
            "ids": lines["sample_id"].astype(int).tolist(),
            "correct": lines["correct"].astype(int).tolist(),
            "positions": axis_positions(lines, dims, axis_ranges(a, dims)),
        },
        "samples": [
            {k: _plain(v) for k, v in row.items()} | {"img": embedded.get(int(row["sample_id"]))}
            for row in samples.drop(columns="move").to_dict("records")
        ],
        "classNames": names,
        "focus": focus,
        "compared": cmp is not None,
    }
    step(6, STEPS)
    return _render(run, meta, ref, cmp, names[focus], data, t1, corrupted, len(embedded), len(samples))


def _table1_html(t1: pd.DataFrame, highlight: set[str], margin_label: str) -> str:
    rows = []
    for r in t1.itertuples():
        cells = "".join(
            f"<td>{'' if np.isnan(getattr(r, k)) else f'{getattr(r, k):+.3f}'}</td>"
            for k in ("angle", "length", "margin")
        )
        cells += f"<td>{html.escape(str(getattr(r, 'note', '') or ''))}</td>"
        rows.append(
            f'<tr class="{"hl" if r.model_id in highlight else ""}"><td>{html.escape(str(r.model_id))}</td>{cells}</tr>'
        )
    return (
        '<table class="t1"><thead><tr><th>model</th><th>angle</th><th>length</th>'
        f"<th>{html.escape(margin_label)}</th><th>note</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


HTML_UNSAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def script_json(data: object) -> str:
    """JSON to embed in a <script> block: `<`, `>` and `&` escaped as \\u003c etc., so no value (a class
    named `<!--<script>` or `</script>`) can end the block or switch the HTML parser's script state."""
    return json.dumps(data, separators=(",", ":"), allow_nan=False).translate(HTML_UNSAFE)


def _render(
    run: str,
    meta: dict,
    ref: Combo,
    cmp: Combo | None,
    focus_name: str,
    data: dict,
    t1: pd.DataFrame,
    corrupted: bool,
    n_images: int,
    n_samples: int,
) -> str:
    template = Template((SNAPSHOT_DIR / "template.html").read_text())
    what = f"{ref.model_id} vs {cmp.model_id}" if cmp else ref.model_id
    image_note = f"{n_images} of {n_samples} sample images embedded" + (
        f" ({ref.evalset} versions)"
        if corrupted
        else (" (clean versions: the corrupted set is not cached in this run)" if ref.corruption != store.CLEAN else "")
    )
    payload = script_json(data)
    return template.substitute(
        title=html.escape(f"PruneScope · {run} · {what}"),
        run=html.escape(run),
        dataset=html.escape(str(meta.get("dataset", ""))),
        reference=html.escape(ref.model_id),
        compared=html.escape(cmp.model_id) if cmp else "none",
        evalset=html.escape(ref.evalset),
        focus=html.escape(focus_name),
        image_note=html.escape(image_note),
        created=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        css=(SNAPSHOT_DIR / "snapshot.css").read_text(),
        plotlyjs=plotlyjs.source(),
        data=payload,
        script=(SNAPSHOT_DIR / "snapshot.js").read_text(),
        table1=_table1_html(t1, {ref.model_id, cmp.model_id if cmp else ""}, store.margin_label(meta)),
    )


def check_replaceable(out: Path) -> None:
    """Refuse an --out that exists and is not a regular file: a folder, a device, a link, a pipe."""
    try:
        mode = os.lstat(out).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return
    if stat.S_ISDIR(mode):
        raise PruneScopeError(f"--out {out} is a folder", "name the HTML file to write, e.g. --out comparison.html")
    if not stat.S_ISREG(mode):
        raise PruneScopeError(
            f"--out {out} exists and is not a regular file (a link, device or pipe)", "remove it or pick another path"
        )


def write_file(out: Path, text: str) -> None:
    """Write `text` to `out` through a private temporary file that mkstemp creates in the same folder
    (O_EXCL, no link followed), then rename it onto `out`: a planted `out.tmp` link redirects nothing,
    and a killed export leaves the old file whole."""
    check_replaceable(out)
    try:
        with store.atomic_path(out) as tmp:
            tmp.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise PruneScopeError(f"cannot write {out}: {exc.strerror}", "pick a folder you can write to") from None


def snapshot_filename(run: str, reference: str, compare: str | None) -> str:
    return f"prunescope-{run}-{reference}" + (f"-vs-{compare}" if compare else "") + ".html"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m app.export", description="Write a self-contained HTML snapshot of a comparison."
    )
    ap.add_argument("--store", required=True, help="store folder")
    ap.add_argument("--run", required=True, help="run name (python -m pipeline ls STORE lists them)")
    ap.add_argument("--reference", required=True, help="model id of the reference (grey)")
    ap.add_argument("--compare", required=True, help="model id of the compared model (yellow)")
    ap.add_argument("--corruption", default=store.CLEAN, help="evaluation set: clean (default) or a corruption name")
    ap.add_argument("--severity", type=int, default=0, help="severity 1..5 of --corruption")
    ap.add_argument(
        "--class",
        dest="focus",
        type=int,
        default=None,
        help="class in focus (default: the one whose samples changed most)",
    )
    ap.add_argument("--out", required=True, help="the HTML file to write")
    args = ap.parse_args(argv)
    out = Path(args.out)
    try:
        if not Path(args.store).is_dir():
            raise PruneScopeError(
                f"there is no store folder {args.store}",
                "pass the folder your runs were written to (python -m pipeline run CONFIG --store DIR)",
            )
        if args.corruption != store.CLEAN and not 1 <= args.severity <= 5:
            raise PruneScopeError(f"--severity {args.severity} is not 1..5", "pass --severity 1..5 with --corruption")
        if not out.parent.is_dir():
            raise PruneScopeError(f"the folder of --out {out} does not exist", "create it or pick another path")
        check_replaceable(out)
        text = build_snapshot(
            StoreReader(args.store), args.run, args.reference, args.compare, args.corruption, args.severity, args.focus
        )
    except PruneScopeError as exc:
        print(f"error: {exc.problem}\nfix: {exc.fix}", file=sys.stderr)
        return 2
    try:
        write_file(out, text)
    except PruneScopeError as exc:
        print(f"error: {exc.problem}\nfix: {exc.fix}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
