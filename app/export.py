"""Static HTML snapshots of a comparison: one self-contained file that needs no server or network.

    python -m app.export --store DIR --run NAME --reference MODEL_ID --compare MODEL_ID \
        [--corruption NAME --severity S] [--class K] --out FILE.html

Every view with a `snapshot` function draws its own part (app.snapshot.Part) with the code its
callbacks use; this module loops over the views, inlines plotly.js once and the app's CSS, and
writes the page. A small inlined script (app/snapshot/snapshot.js) links the parts: a box or
lasso selection in a geometry plot, or a box over axes of the parallel coordinates, highlights
the same samples everywhere and fills the gallery.
"""

from __future__ import annotations

import argparse
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
from plotly.io.json import to_json_plotly

from app import plotlyjs
from app.figures import Figure, decode_array
from app.reader import StoreError, StoreReader
from app.snapshot import Context
from app.state import Combo
from app.views import views
from app.views.local import default_class, flips_per_class
from pipeline import store
from pipeline.store import PruneScopeError

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT_DIR = Path(__file__).resolve().parent / "snapshot"
PERCENT = 100  # progress is reported as a percentage

Progress = Callable[[int, int], None]


def _ids_of(fig: Figure) -> dict[int, list[int]]:
    """Sample ids of every marker trace (its customdata: the ids, or rows that start with them), by trace index."""
    out = {}
    for i, trace in enumerate(fig["data"]):
        custom = decode_array(trace.get("customdata"))
        if trace.get("type") in ("scatter", "scattergl") and custom is not None and "markers" in trace.get("mode", ""):
            custom = np.asarray(custom)
            out[i] = [int(v) for v in (custom[:, 0] if custom.ndim == 2 else custom.ravel())]
    return out


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
    """The snapshot's HTML. Names are checked against the store before anything is read; the
    class in focus defaults to the one with the most flips (as in the dashboard)."""
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
    if focus is None:
        focus = default_class(flips_per_class(reader, run, ref, cmp)) if cmp else 0
    if not 0 <= focus < len(names):
        raise StoreError(f"class {focus} is not a class of run {run!r}", f"pick one of 0..{len(names) - 1}")
    ctx = Context(reader, run, names, ref, cmp, focus, store.margin_label(meta))
    parts = [v for v in views() if hasattr(v, "snapshot")]
    sections, figures, linked, data = [], {}, {}, {}
    for done, view in enumerate(parts, 1):
        part = view.snapshot(ctx)
        sections.append(part.html)
        figures.update(part.figures)
        linked.update({k: _ids_of(part.figures[k]) for k in part.linked})
        if part.data:
            data[view.__name__.rsplit(".", 1)[-1].rstrip("_")] = part.data
        step(round(PERCENT * done / (len(parts) + 1)), PERCENT)
    payload = {
        "figures": {k: json.loads(to_json_plotly(f)) for k, f in figures.items()},
        "linked": linked,
        "views": data,
        "classNames": names,
        "compared": cmp is not None,
    }
    text = _render(run, meta, ref, cmp, names[focus], payload, "".join(sections))
    step(PERCENT, PERCENT)
    return text


HTML_UNSAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def script_json(data: object) -> str:
    """JSON to embed in a <script> block: `<`, `>` and `&` escaped as \\u003c etc., so no value (a class
    named `<!--<script>` or `</script>`) can end the block or switch the HTML parser's script state."""
    return json.dumps(data, separators=(",", ":"), allow_nan=False).translate(HTML_UNSAFE)


def _render(run: str, meta: dict, ref: Combo, cmp: Combo | None, focus_name: str, data: dict, sections: str) -> str:
    template = Template((SNAPSHOT_DIR / "template.html").read_text())
    what = f"{ref.model_id} vs {cmp.model_id}" if cmp else ref.model_id
    payload = script_json(data)
    return template.substitute(
        title=html.escape(f"PruneScope · {run} · {what}"),
        run=html.escape(run),
        dataset=html.escape(str(meta.get("dataset", ""))),
        reference=html.escape(ref.model_id),
        compared=html.escape(cmp.model_id) if cmp else "none",
        evalset=html.escape(ref.evalset),
        focus=html.escape(focus_name),
        created=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        css=(REPO / "assets" / "style.css").read_text() + (SNAPSHOT_DIR / "snapshot.css").read_text(),
        sections=sections,
        plotlyjs=plotlyjs.source(),
        data=payload,
        script=(SNAPSHOT_DIR / "snapshot.js").read_text(),
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
