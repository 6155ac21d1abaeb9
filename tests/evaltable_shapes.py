"""Reading the evaluation table's bars back from its figure: they are SVG paths of rectangles in
layout shapes named by what they draw ("fill <colour>", "difference +", "veil", "outline selected", …),
and trace 0 holds a point at each bar's slot (its model, corruption and severity in customdata) for
hover, click and the keyboard. From a figure (unit tests) or from the page (browser tests: the page
side, shared with scripts/screenshots.py, is scripts/table_points.py)."""

from __future__ import annotations

import re

import numpy as np
import plotly.graph_objects as go

from app.figures import decode_array
from scripts.table_points import click, drawn, point_to

__all__ = ["bars_drawn", "click", "count", "covered", "drawn", "drawn_in", "models_in", "point_to", "rects", "shape"]

RECT = re.compile(r"M([^,]+),([^H]+)H([^V]+)V([^H]+)H[^Z]+Z")


def rects(path: str) -> np.ndarray:
    """The rectangles of a shape's path (figures.evaltable.rects), one row each: x0, x1, y0, y1."""
    found = [[float(m[0]), float(m[2]), float(m[1]), float(m[3])] for m in RECT.findall(path)]  # M x0,y0 H x1 V y1
    return np.array(found, dtype=float).reshape(-1, 4)


def covered(x, y, model_ids, path: str) -> set[str]:
    """The models whose points (a bar's slot centre each) lie in a rectangle of `path`."""
    b = rects(path)
    inside = [((b[:, 0] <= u) & (u <= b[:, 1]) & (b[:, 2] <= v) & (v <= b[:, 3])).any() for u, v in zip(x, y)]
    return {m for m, hit in zip(model_ids, inside) if hit}


def shape(fig: go.Figure | dict, name: str) -> dict:
    """The layout shape of that name."""
    fig = fig if isinstance(fig, go.Figure) else go.Figure(fig)
    return next(s for s in fig.layout.shapes if s.name == name).to_plotly_json()


def models_in(fig: go.Figure | dict, name: str) -> set[str]:
    """The models whose bars' slots the named shape covers (outlines, the veil)."""
    fig = fig if isinstance(fig, go.Figure) else go.Figure(fig)
    points = fig.data[0]
    x, y = (np.asarray(decode_array(v), dtype=float) for v in (points.x, points.y))
    return covered(x, y, [c[0] for c in points.customdata], shape(fig, name)["path"])


def drawn_in(table: dict | None, name: str) -> set[str]:
    """The models whose bars' slots the named shape of the drawn table covers."""
    return covered(table["x"], table["y"], table["ids"], table["paths"][name]) if table else set()


def count(table: dict | None, prefix: str) -> int:
    """The rectangles the drawn table's shapes whose names start with `prefix` draw ("fill": the bars)."""
    paths = (p for n, p in (table or {}).get("paths", {}).items() if n.startswith(prefix))
    return sum(len(rects(p)) for p in paths)


def bars_drawn(table: dict | None) -> str:
    """The drawn bars (every fill shape's path): what changes when the bars show another accuracy."""
    return "".join(p for n, p in sorted((table or {}).get("paths", {}).items()) if n.startswith("fill"))
